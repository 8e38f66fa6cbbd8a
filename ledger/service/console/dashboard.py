"""The dashboard (`/ui/dashboard`, docs/console.md): delivery and audit-readiness measures, with charts.

The page shows the answers of `GET /v1/metrics/delivery` and `GET /v1/metrics/readiness` for the
same filters (`ledger.query.metrics`, under the signed-in token's product scope), so the page and
the API agree. Charts are drawn here, on the server, as inline SVG: bars placed by `bar_chart`,
styled by console.css through classes (the page's CSP allows no inline style), each with an
accessible name, a short description and its numbers as a table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from litestar import Response, get
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template

from ledger.compliance.metrics_answers import DeliveryMetrics, ReadinessMetrics
from ledger.core.encoding import format_time
from ledger.errors import InputError, LedgerError
from ledger.query import metrics
from ledger.service.console.pages import SESSION, ConsoleSvc, SignedIn, frame, page
from ledger.service.errors import status_of

PERIODS = (30, 90, 180, 365)  # the days a person picks from; 90 by default, as the API's
WIDTH, HEIGHT = 420, 220  # the charts' view box; CSS scales them to the column's width
LEFT, RIGHT, TOP, BOTTOM = 50, 8, 12, 30  # room for the value axis and the week labels
MAX_LABELS = 5  # week labels shown under a chart (every n-th week)


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: where it is drawn, its series (a CSS class) and what it says."""

    x: float
    y: float
    width: float
    height: float
    series: int
    text: str


@dataclass(frozen=True, slots=True)
class Tick:
    """A value line across the chart and its label."""

    y: float
    text: str


@dataclass(frozen=True, slots=True)
class Label:
    """A week's label under the chart."""

    x: float
    text: str


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG bar chart and the table of its numbers (the same figures, for every reader)."""

    key: str
    title: str
    description: str
    series: list[str]
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[Label]
    rows: list[tuple[str, list[str]]]  # (week, its value in each series, as text)
    empty: bool
    width: int = WIDTH
    height: int = HEIGHT
    base: float = HEIGHT - BOTTOM  # where the bars stand
    left: float = LEFT  # where the plot starts, right of the value axis's labels
    right: float = WIDTH - RIGHT


def duration_text(seconds: int | None) -> str:
    """A duration for people: seconds, minutes, hours and minutes, or days and hours; "—" for none."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 48 * 3600:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(seconds // 3600, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def percent_text(ratio: float | None) -> str:
    """A ratio as a percentage for people; "—" when there is nothing to divide by."""
    return "—" if ratio is None else f"{ratio * 100:.0f}%"


def _step(value: float, *, whole: bool) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (1 at least for whole counts)."""
    if value <= 0 or (whole and value <= 1):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1.0, 2.0, 5.0, 10.0) if step * power >= value)


def axis_top(highest: float, unit: str) -> float:
    """The value at the top of a chart's axis, so that its four steps are round numbers.

    Percentages always go to 100; counts (no unit) step by whole numbers.
    """
    if unit == "%":
        return 100.0
    return 4 * _step(highest / 4, whole=unit == "")


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def bar_chart(  # noqa: PLR0913 - what a chart shows, each named
    key: str,
    title: str,
    weeks: list[str],
    series: dict[str, list[float | None]],
    *,
    unit: str = "",
    shown: list[list[str]] | None = None,
) -> Chart:
    """Grouped bars, one group a week, one bar per series (None: no bar); `shown` the table's texts.

    Precondition: every series has one value per week.
    """
    names = list(series)
    values = [v for column in series.values() for v in column if v is not None]
    top = axis_top(max(values, default=0), unit)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(weeks), 1)
    bar_w = slot * 0.8 / max(len(names), 1)
    bars = []
    for w in range(len(weeks)):
        for s, name in enumerate(names):
            value = series[name][w]
            if value is None:
                continue
            height = plot_h * value / top
            x = LEFT + w * slot + slot * 0.1 + s * bar_w
            text = f"{name}, week of {weeks[w]}: {_number(value)}{unit}"
            bars.append(
                Bar(round(x, 1), round(TOP + plot_h - height, 1), round(bar_w, 1), round(height, 1), s, text)
            )
    ticks = [Tick(round(TOP + plot_h - plot_h * i / 4, 1), _number(top * i / 4) + unit) for i in range(5)]
    every = max(1, math.ceil(len(weeks) / MAX_LABELS))
    labels = [Label(round(LEFT + w * slot + slot / 2, 1), weeks[w][5:]) for w in range(0, len(weeks), every)]
    texts = shown or [
        [("—" if v is None else _number(v) + unit) for v in column] for column in series.values()
    ]
    rows = [(weeks[w], [column[w] for column in texts]) for w in range(len(weeks))]
    total = ", ".join(
        f"{name}: highest {_number(max((v for v in series[name] if v is not None), default=0))}{unit}"
        for name in names
    )
    description = f"{len(weeks)} weeks from {weeks[0] if weeks else '—'}; {total}."
    return Chart(key, title, description, names, bars, ticks, labels, rows, empty=not values)


DURATION_UNITS = ((2 * 3600, 60, " min"), (72 * 3600, 3600, " h"), (math.inf, 86400, " d"))


def _in_unit(seconds: list[int | None]) -> tuple[list[float | None], str]:
    """Durations in minutes, hours or days, whichever suits the longest; and that unit."""
    longest = max((s for s in seconds if s is not None), default=0)
    size, unit = next((size, unit) for bound, size, unit in DURATION_UNITS if longest < bound)
    return [None if s is None else round(s / size, 1) for s in seconds], unit


def _percent(ratio: float | None) -> float | None:
    return None if ratio is None else ratio * 100


def charts(delivery: DeliveryMetrics, readiness: ReadinessMetrics) -> list[Chart]:
    """The dashboard's charts: one a measure, week by week."""
    weeks = [w.start[:10] for w in delivery.weeks]
    dw, rw = delivery.weeks, readiness.weeks
    lead = [w.lead_time_median_seconds for w in dw]
    latency = [w.approval_latency_median_seconds for w in rw]
    (lead_values, lead_unit), (latency_values, latency_unit) = _in_unit(lead), _in_unit(latency)
    moves: dict[str, list[float | None]] = {
        "Deployments": [w.deployments for w in dw],
        "Failed deployments": [w.failed_deployments for w in dw],
        "Rollbacks": [w.rollbacks for w in dw],
    }
    exceptions: dict[str, list[float | None]] = {
        "Exceptions granted": [w.exceptions_granted for w in rw],
        "Reviews open": [w.open_reviews for w in rw],
        "Reviews overdue": [w.overdue_reviews for w in rw],
    }
    complete = [
        f"{percent_text(w.share_complete)} ({w.releases_complete} of {w.releases_evaluated})" for w in rw
    ]
    return [
        bar_chart("deployments", "Deployments, failed deployments and rollbacks per week", weeks, moves),
        bar_chart(
            "lead-time",
            "Lead time from change to production, median per week",
            weeks,
            {"Median lead time": lead_values},
            unit=lead_unit,
            shown=[[duration_text(s) for s in lead]],
        ),
        bar_chart(
            "change-failure",
            "Change failure rate per week (rollbacks per deployment)",
            weeks,
            {"Change failure rate": [_percent(w.change_failure_rate) for w in dw]},
            unit="%",
        ),
        bar_chart(
            "evidence",
            "Releases deployed with complete evidence, by week of deployment",
            weeks,
            {"Complete evidence": [_percent(w.share_complete) for w in rw]},
            unit="%",
            shown=[complete],
        ),
        bar_chart(
            "approval-latency",
            "Approval latency, median per week",
            weeks,
            {"Median approval latency": latency_values},
            unit=latency_unit,
            shown=[[duration_text(s) for s in latency]],
        ),
        bar_chart(
            "exceptions",
            "Exceptions granted per week, and exception reviews open and overdue",
            weeks,
            exceptions,
        ),
    ]


def plural(count: int, word: str) -> str:
    """`count` and `word`, with an s unless it is one."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _day(text: str | None, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"{what} must be a date, YYYY-MM-DD") from exc


def period_query(days: str | None, start: str | None, end: str | None, now: datetime) -> tuple[str, str]:
    """The API's `since` and `until` for the form's period.

    `until`: the day after `to` (included) at 00:00 UTC, else `now`; `since`: `from` at 00:00
    UTC, else `days` (90 by default) before `until`.

    InputError for a date that is not YYYY-MM-DD, or a number of days not offered.
    """
    first, last = _day(start, "from"), _day(end, "to")
    if days and days not in {str(d) for d in PERIODS}:
        raise InputError(f"the period is one of {', '.join(map(str, PERIODS))} days")
    until = now if last is None else datetime.combine(last + timedelta(days=1), time(), UTC)
    since = until - timedelta(days=int(days or 90)) if first is None else datetime.combine(first, time(), UTC)
    return format_time(since), format_time(until)


@get("/dashboard", dependencies=SESSION)
async def dashboard(  # noqa: PLR0913, PLR0917 - one query parameter per filter
    svc: ConsoleSvc,
    session: SignedIn,
    product: FromQuery[str | None] = None,
    environment: FromQuery[str | None] = None,
    days: FromQuery[str | None] = None,
    start: Annotated[str | None, QueryParameter(name="from")] = None,
    end: Annotated[str | None, QueryParameter(name="to")] = None,
) -> Template | Response[bytes]:
    """The measures of the token's products (or the one picked) over the period picked, with charts.

    A refused filter (a bad date, a product out of the token's scope or with no release) shows
    the form again with the reason, under the API's status for it.
    """
    granted = session.token.row.products
    form = {
        "product": product or "", "environment": environment or "", "days": days or "90",
        "start": start or "", "end": end or "", "periods": PERIODS, "granted": sorted(granted),
    }  # fmt: skip
    now = datetime.now(UTC)
    try:
        since, until = period_query(days, start, end, now)
        query = metrics.MetricsQuery(product or None, environment or None, since, until)
        src = metrics.Sources(svc.store, svc.index, svc.sequencer)
        delivery = await metrics.delivery(src, query, granted, now)
        before = (await svc.latest_checkpoint(fresh=True)).tree_size
        readiness = await metrics.readiness(src, query, granted, now, before)
    except LedgerError as exc:
        status, _ = status_of(exc)
        if status >= 500:
            raise
        return page("dashboard.html", status=status, **frame(session, problem=str(exc), form=form))
    return page(
        "dashboard.html",
        **frame(
            session, problem=None, form=form, delivery=delivery, readiness=readiness,
            charts=charts(delivery, readiness), duration=duration_text, percent=percent_text,
            plural=plural,
        ),
    )  # fmt: skip
