"""The delivery and audit-readiness measures, read from the ledger (issue #15; docs/http-api.md, "Metrics").

Fetching only: the events each measure reads come from the evidence index through
`ledger.query.timeline.search` (one ordered scan of the kind index per kind, bounded in time),
releases' compliance from `ledger.query.release_record.evaluate_release`, exactly as the
compliance route answers it; the measures themselves are `ledger.compliance.delivery_metrics`.
Every answer's work is bounded (`LIMITS`, echoed in the answer, which says when a bound cut it
short): MAX_EVENTS entries of each kind, MAX_RELEASES releases' histories, MAX_EVALUATED
compliance evaluations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from ledger.compliance import metrics_facts as facts
from ledger.compliance.delivery_metrics import delivery_metrics, first_deployments, readiness_metrics
from ledger.compliance.metrics_answers import DeliveryMetrics, Limits, ReadinessMetrics, Scope
from ledger.core.encoding import format_time
from ledger.errors import InputError, NotFoundError, PermissionDeniedError
from ledger.query import timeline
from ledger.query.release_record import evaluate_release, policy_in_force
from ledger.records.statement import MAX_NAME
from ledger.rules.events import Event
from ledger.storage.protocol import EvidenceIndex, LogStore

MAX_EVENTS = 10_000  # entries of one kind read for one answer (deployments, approvals, …)
MAX_RELEASES = 200  # releases whose first change and deployments are read (lead time, restore)
MAX_EVALUATED = 50  # releases whose compliance is evaluated (the most recently deployed)
LIMITS = Limits(events_per_kind=MAX_EVENTS, releases_read=MAX_RELEASES, releases_evaluated=MAX_EVALUATED)
DEFAULT_ENVIRONMENT = "production"
_TIMES_AT_ONCE = 1000  # entry times read in one query
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the measures are read: the log, its evidence index, and who names the signers."""

    store: LogStore
    index: EvidenceIndex
    holder: timeline.RegistryHolder


@dataclass(frozen=True, slots=True)
class MetricsQuery:
    """What was asked, as the route received it; every field is optional."""

    product: str | None = None
    environment: str | None = None
    since: str | None = None  # RFC 3339 with a zone, inclusive
    until: str | None = None  # exclusive


def products_in_scope(granted: Sequence[str], product: str | None) -> tuple[str, ...] | None:
    """The products an answer covers: `product`, else the token's (None: every product).

    `granted` is the token's product scope (empty: every product); asking for a product
    outside it is PermissionDeniedError, whether or not that product exists.
    """
    if product:
        if granted and product not in granted:
            raise PermissionDeniedError(f"this token may not read the metrics of product {product!r}")
        return (product,)
    return tuple(sorted(granted)) if granted else None


async def _scope(src: Sources, query: MetricsQuery, granted: Sequence[str], now: datetime) -> Scope:
    """The checked request: InputError for a bad value, 403 out of scope, NotFoundError: no such product."""
    for name, value in (("product", query.product), ("environment", query.environment)):
        if value is not None and len(value) > MAX_NAME:
            raise InputError(f"{name} is at most {MAX_NAME} characters")
    products = products_in_scope(granted, query.product)
    span = facts.period(
        timeline.parse_moment(query.since, "since"), timeline.parse_moment(query.until, "until"), now
    )
    if query.product and not await src.index.releases(product=query.product, after=None, count=1):
        raise NotFoundError(f"no release of product {query.product!r} is recorded")
    environment = query.environment or DEFAULT_ENVIRONMENT
    return Scope(products, environment, span, now, truncated=False, limits=LIMITS)


async def _kind(
    src: Sources, kind: str, products: tuple[str, ...] | None, since: datetime | None, until: datetime
) -> tuple[list[Event], bool]:
    """The events of `kind` recorded in [since, until) about `products` (None: any); and whether cut short.

    One ordered scan of the kind index, a page at a time, reading at most MAX_EVENTS entries
    (of any product: the scope is applied to what was read).
    """
    found: list[Event] = []
    cursor, read = None, 0
    while True:
        page = await timeline.search(
            src.store,
            src.index,
            src.holder,
            timeline.SearchQuery(
                kind=kind,
                since=None if since is None else format_time(since),
                until=format_time(until),
                cursor=cursor,
                limit=timeline.MAX_PAGE,
            ),
        )
        read += len(page.events)
        found += [e for e in page.events if products is None or (e.release and e.release[0] in products)]
        if page.next_cursor is None:
            return found, False
        if read >= MAX_EVENTS:
            return found, True
        cursor = page.next_cursor


def _read(events: Iterable[Event], reader: Callable[[Event], T | None]) -> list[T]:
    return [value for event in events if (value := reader(event)) is not None]


async def _release_events(src: Sources, kind: str, release: facts.Release, limit: int) -> list[Event]:
    query = timeline.SearchQuery(kind=kind, product=release[0], version=release[1], limit=limit)
    return (await timeline.search(src.store, src.index, src.holder, query)).events


async def _histories(
    src: Sources, releases: Sequence[facts.Release]
) -> tuple[dict[facts.Release, facts.ReleaseHistory], bool]:
    """The first change and the deployments of each release, for the first MAX_RELEASES of them."""
    found = {}
    for release in releases[:MAX_RELEASES]:
        changes = await _release_events(src, "change", release, 1)
        deployments = _read(
            await _release_events(src, "deployment", release, timeline.MAX_PAGE), facts.deployed
        )
        first_change = facts.recorded_at(changes[0]) if changes else None
        found[release] = facts.ReleaseHistory(first_change, tuple(deployments))
    return found, len(releases) > MAX_RELEASES


async def delivery(
    src: Sources, query: MetricsQuery, granted: Sequence[str], now: datetime
) -> DeliveryMetrics:
    """`GET /v1/metrics/delivery`: the delivery measures of the period, for the products in scope.

    `granted` is the token's product scope (empty: every product). InputError for a bad time or
    period, PermissionDeniedError for a product out of scope, NotFoundError for an unknown one.
    """
    scope = await _scope(src, query, granted, now)
    span = scope.period
    deployment_events, cut = await _kind(src, "deployment", scope.products, span.since, span.until)
    rollback_events, cut_back = await _kind(src, "rollback", scope.products, span.since, span.until)
    deployments = _read(deployment_events, facts.deployed)
    rollbacks = _read(rollback_events, facts.rolled_back)
    wanted = [d.release for d in first_deployments(span, scope.environment, deployments)]
    wanted += sorted(
        {r.release for r in rollbacks if r.environment == scope.environment} - set(wanted), reverse=True
    )
    histories, cut_releases = await _histories(src, wanted)
    truncated = cut or cut_back or cut_releases
    scope = replace(scope, truncated=truncated)
    return delivery_metrics(scope, deployments, rollbacks, histories)


async def _entry_times(src: Sources, indices: Iterable[int]) -> dict[int, datetime]:
    wanted = sorted(set(indices))
    times: dict[int, datetime] = {}
    for start in range(0, len(wanted), _TIMES_AT_ONCE):
        rows = await src.store.entries_at(wanted[start : start + _TIMES_AT_ONCE])
        times.update((row.index, row.integrated_at) for row in rows)
    return times


async def _statuses(
    src: Sources, shipped: Sequence[facts.Deployed], now: datetime, before: int
) -> tuple[dict[facts.Release, str], int | None]:
    """The compliance status now of the MAX_EVALUATED most recently deployed; and the policy entry."""
    try:
        policy = await policy_in_force(src.index, before)
    except NotFoundError:
        return {}, None  # no policy yet: nothing can be judged complete
    statuses: dict[facts.Release, str] = {}
    for d in shipped[:MAX_EVALUATED]:
        product, version = d.release
        result, _ = await evaluate_release(
            src.store, src.index, src.holder, product, version,
            environment=None, now=format_time(now), before=before, policy=policy,
        )  # fmt: skip
        statuses[d.release] = result.status
    return statuses, policy[1].index


async def readiness(
    src: Sources, query: MetricsQuery, granted: Sequence[str], now: datetime, before: int
) -> ReadinessMetrics:
    """`GET /v1/metrics/readiness`: the audit-readiness measures of the period, for the products in scope.

    Compliance is evaluated as of the tree size `before` (the newest checkpoint's), at `now`.
    Errors as `delivery`'s.
    """
    scope = await _scope(src, query, granted, now)
    span = scope.period
    deployment_events, cut = await _kind(src, "deployment", scope.products, span.since, span.until)
    shipped = first_deployments(span, scope.environment, _read(deployment_events, facts.deployed))
    statuses, policy_entry = await _statuses(src, shipped, now, before)
    approval_events, cut_approvals = await _kind(src, "approval", scope.products, span.since, span.until)
    decisions = _read(approval_events, facts.decision)
    entry_times = await _entry_times(
        src, (a.reviewed_up_to for a in decisions if a.reviewed_up_to is not None)
    )
    exception_events, cut_exceptions = await _kind(src, "exception", scope.products, None, span.until)
    review_events, cut_reviews = await _kind(src, "exception-review", scope.products, None, span.until)
    truncated = cut or cut_approvals or cut_exceptions or cut_reviews or len(shipped) > MAX_EVALUATED
    scope = replace(scope, truncated=truncated)
    return readiness_metrics(
        scope,
        shipped=shipped,
        statuses=statuses,
        policy_entry=policy_entry,
        decisions=decisions,
        entry_times=entry_times,
        exceptions=_read(exception_events, facts.granted),
        reviews=_read(review_events, facts.reviewed),
    )
