"""The dashboard's own parts (issue #15): its period form, durations for people, and the SVG bars.

The figures themselves are ledger.compliance.delivery_metrics' (tests/unit/test_delivery_metrics.py);
the page in a browser is tests/integration/test_console_dashboard.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ledger.errors import InputError
from ledger.service.console.dashboard import (
    HEIGHT,
    axis_top,
    bar_chart,
    duration_text,
    percent_text,
    period_query,
    plural,
)

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (0, "0 s"),
        (59, "59 s"),
        (60, "1 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (5400, "1 h 30 min"),
        (47 * 3600, "47 h"),
        (48 * 3600, "2 d"),
        (50 * 3600 + 59, "2 d 2 h"),
    ],
)
def test_durations_read_as_people_say_them(seconds: int | None, text: str) -> None:
    assert duration_text(seconds) == text


def test_percentages_and_plurals() -> None:
    assert (percent_text(None), percent_text(0.5), percent_text(1 / 3)) == ("—", "50%", "33%")
    assert (plural(1, "release"), plural(0, "release"), plural(2, "release")) == (
        "1 release",
        "0 releases",
        "2 releases",
    )


def test_the_period_form_becomes_the_apis_since_and_until() -> None:
    assert period_query(None, None, None, NOW) == ("2025-12-10T15:30:00.000Z", "2026-03-10T15:30:00.000Z")
    assert period_query("30", None, None, NOW)[0] == "2026-02-08T15:30:00.000Z"
    assert period_query("30", None, "2026-01-31", NOW) == (
        "2026-01-02T00:00:00.000Z",
        "2026-02-01T00:00:00.000Z",
    )
    assert period_query("365", "2026-01-05", "2026-01-05", NOW) == (
        "2026-01-05T00:00:00.000Z",
        "2026-01-06T00:00:00.000Z",
    )
    with pytest.raises(InputError, match="from must be a date"):
        period_query(None, "05/01/2026", None, NOW)
    with pytest.raises(InputError, match="to must be a date"):
        period_query(None, None, "2026-02-30", NOW)
    with pytest.raises(InputError, match="one of 30, 90, 180, 365 days"):
        period_query("1000", None, None, NOW)


@pytest.mark.parametrize(
    ("highest", "unit", "top"),
    [(0, "", 4), (2, "", 4), (5, "", 8), (41, "", 80), (0.3, " h", 0.4), (7.5, " d", 8), (33, "%", 100)],
)
def test_the_axis_steps_by_round_numbers(highest: float, unit: str, top: float) -> None:
    assert axis_top(highest, unit) == pytest.approx(top)


def test_bars_stand_on_the_axis_in_proportion_and_none_draws_nothing() -> None:
    chart = bar_chart("k", "Title", ["2026-01-05", "2026-01-12"], {"A": [2, None], "B": [4, 0]})
    assert [(b.series, b.height) for b in chart.bars] == [(0, 89.0), (1, 178.0), (1, 0.0)]
    assert all(round(b.y + b.height, 1) == chart.base == HEIGHT - 30 for b in chart.bars)
    assert chart.bars[0].x < chart.bars[1].x < chart.bars[2].x
    assert chart.bars[0].text == "A, week of 2026-01-05: 2"
    assert [t.text for t in chart.ticks] == ["0", "1", "2", "3", "4"]
    assert chart.rows == [("2026-01-05", ["2", "4"]), ("2026-01-12", ["—", "0"])]
    assert chart.description == "2 weeks from 2026-01-05; A: highest 2, B: highest 4."
    assert not chart.empty
    nothing = bar_chart("k", "Title", ["2026-01-05"], {"A": [None]})
    assert (nothing.empty, nothing.bars) == (True, [])
