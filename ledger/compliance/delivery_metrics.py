"""Delivery and audit-readiness measures of a period, from the ledger's events (issue #15). Pure.

Event summaries in (`ledger.compliance.metrics_facts`), measures out, as the answers of
`GET /v1/metrics/delivery` and `GET /v1/metrics/readiness` (`ledger.compliance.metrics_answers`).
Each measure is defined in docs/http-api.md ("Metrics"); in short, every time is the time the
ledger recorded an entry (never a time a pipeline claims), except an approval's `signed_at`,
which counts no later than the approval was recorded (as for compliance). A period is
[since, until), cut into weeks of seven days from `since`; the last week ends at `until` and may
be shorter. `ledger.query.metrics` fetches what these functions read.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from ledger.compliance.metrics_answers import (
    ApprovalMeasures,
    DeliveryMetrics,
    DeliveryWeek,
    Durations,
    EvidenceShare,
    ExceptionMeasures,
    ExceptionRef,
    ReadinessMetrics,
    ReadinessWeek,
    ReleaseEvidence,
    RoleLatency,
    RuleCount,
    Scope,
)
from ledger.compliance.metrics_facts import (
    WEEK,
    Decision,
    Deployed,
    Granted,
    Period,
    Release,
    ReleaseHistory,
    Reviewed,
    RolledBack,
)
from ledger.core.encoding import format_time

COMPLETE = "compliant"  # the compliance status that counts as complete evidence


# --- statistics ----------------------------------------------------------------------------------


def _seconds(delta: timedelta) -> int:
    return round(delta.total_seconds())


def durations(values: Iterable[int]) -> Durations:
    """Count, median (the mean of the two middle values for an even count, rounded), nearest-rank p90, max."""
    ordered = sorted(values)
    if not ordered:
        return Durations(0, None, None, None)
    return Durations(len(ordered), _median(ordered), ordered[math.ceil(0.9 * len(ordered)) - 1], ordered[-1])


def _median(ordered: Sequence[int]) -> int | None:
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return round((ordered[middle - 1] + ordered[middle]) / 2)


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


# --- delivery ------------------------------------------------------------------------------------


def first_deployments(period: Period, environment: str, deployments: Iterable[Deployed]) -> list[Deployed]:
    """Each release's first successful deployment into `environment` in the period, newest first."""
    first: dict[Release, Deployed] = {}
    for d in sorted(deployments, key=lambda d: d.index):
        if d.environment == environment and d.succeeded and d.recorded in period:
            first.setdefault(d.release, d)
    return sorted(first.values(), key=lambda d: d.index, reverse=True)


def _lead_times(
    environment: str, shipped: list[Deployed], histories: Mapping[Release, ReleaseHistory]
) -> tuple[dict[Release, tuple[Deployed, int]], int]:
    """Lead time of each release first deployed into `environment` (ever) in the period.

    With the number of those releases whose first change record is not before that deployment.
    """
    found, without_change = {}, 0
    for d in shipped:
        history = histories.get(d.release)
        if history is None:
            continue  # not read (over the limit): the answer says it was truncated
        earlier = [
            h for h in history.deployments
            if h.environment == environment and h.succeeded and h.index < d.index
        ]  # fmt: skip
        if earlier:
            continue  # deployed there before the period: not a new delivery
        if history.first_change is None or history.first_change > d.recorded:
            without_change += 1
            continue
        found[d.release] = (d, _seconds(d.recorded - history.first_change))
    return found, without_change


def _restore_times(
    scope: Scope, known: Sequence[Deployed], rollbacks: Sequence[RolledBack]
) -> tuple[list[int], int, int]:
    """Each rollback's time to restore; with the counts of unrestored and unmatched rollbacks.

    From the recording of the deployment it undid (the latest successful one into the same
    environment, of the same product, of the digest it took out) to the recording of the
    restoration: the rollback itself when it succeeded, else the next successful deployment or
    rollback into that environment of that product, recorded before `until`.
    """
    moves = sorted(
        [(d.index, d.recorded, d.release[0], d.environment) for d in known if d.succeeded]
        + [(r.index, r.recorded, r.release[0], r.environment) for r in rollbacks if r.succeeded]
    )
    times, unrestored, unmatched = [], 0, 0
    for r in rollbacks:
        product = r.release[0]
        restored_at = r.recorded if r.succeeded else next(
            (
                when for index, when, other, environment in moves
                if index > r.index and other == product and environment == r.environment
                and when < scope.period.until
            ),
            None,
        )  # fmt: skip
        undone = [
            d for d in known
            if d.release[0] == product and d.environment == r.environment and d.succeeded
            and d.digest == r.from_digest and d.index < r.index
        ]  # fmt: skip
        if restored_at is None:
            unrestored += 1
        elif not undone:
            unmatched += 1
        else:
            times.append(_seconds(restored_at - max(undone, key=lambda d: d.index).recorded))
    return times, unrestored, unmatched


def delivery_metrics(
    scope: Scope,
    deployments: Sequence[Deployed],
    rollbacks: Sequence[RolledBack],
    histories: Mapping[Release, ReleaseHistory],
) -> DeliveryMetrics:
    """The delivery measures of `scope` (docs/http-api.md, "Metrics").

    `deployments` and `rollbacks`: those recorded in the period (any environment; others are
    ignored); `histories`: the releases read for lead time and restore (see `first_deployments`).
    """
    period, env = scope.period, scope.environment
    here = [d for d in deployments if d.environment == env and d.recorded in period]
    back = sorted(
        (r for r in rollbacks if r.environment == env and r.recorded in period), key=lambda r: r.index
    )
    succeeded = [d for d in here if d.succeeded]
    shipped = first_deployments(period, env, here)
    leads, without_change = _lead_times(env, shipped, histories)
    known = {d.index: d for h in histories.values() for d in h.deployments} | {
        d.index: d for d in deployments
    }
    restores, unrestored, unmatched = _restore_times(
        scope, sorted(known.values(), key=lambda d: d.index), back
    )
    weeks = []
    for week in period.weeks():
        done = sum(1 for d in succeeded if d.recorded in week)
        undone = sum(1 for r in back if r.recorded in week)
        week_leads = sorted(s for d, s in leads.values() if d.recorded in week)
        weeks.append(
            DeliveryWeek(
                start=format_time(week.since),
                end=format_time(week.until),
                deployments=done,
                failed_deployments=sum(1 for d in here if not d.succeeded and d.recorded in week),
                rollbacks=undone,
                change_failure_rate=_ratio(undone, done),
                lead_time_median_seconds=_median(week_leads),
            )
        )
    span = (period.until - period.since) / WEEK
    return DeliveryMetrics(
        products=None if scope.products is None else list(scope.products),
        environment=env,
        since=format_time(period.since),
        until=format_time(period.until),
        computed_at=format_time(scope.now),
        deployments=len(succeeded),
        failed_deployments=len(here) - len(succeeded),
        releases_deployed=len(shipped),
        deployments_per_week=round(len(succeeded) / span, 2),
        lead_time=durations(s for _, s in leads.values()),
        releases_without_change=without_change,
        rollbacks=len(back),
        change_failure_rate=_ratio(len(back), len(succeeded)),
        time_to_restore=durations(restores),
        unrestored=unrestored,
        rollbacks_unmatched=unmatched,
        weeks=weeks,
        truncated=scope.truncated,
        limits=scope.limits,
    )


# --- audit readiness -----------------------------------------------------------------------------


def _latencies(
    decisions: Sequence[Decision], entry_times: Mapping[int, datetime]
) -> list[tuple[Decision, int]]:
    """Each approval's latency: from the recording of the newest entry it reviewed to its decision.

    The decision is made when it was signed (`signed_at`), no later than it was recorded; a
    decision signed before that entry was recorded counts as 0. Approvals listing no entry (or
    none the ledger holds) have none.
    """
    found = []
    for a in decisions:
        ready = None if a.reviewed_up_to is None else entry_times.get(a.reviewed_up_to)
        if ready is None:
            continue
        decided = a.recorded if a.signed_at is None else min(a.signed_at, a.recorded)
        found.append((a, max(0, _seconds(decided - ready))))
    return found


def open_reviews(exceptions: Sequence[Granted], reviews: Sequence[Reviewed], at: datetime) -> list[Granted]:
    """The exceptions recorded before `at` with no review recorded after them and before `at`."""
    reviewed_at: dict[int, list[Reviewed]] = {}
    for r in reviews:
        reviewed_at.setdefault(r.exception_entry, []).append(r)
    return [
        e for e in exceptions
        if e.recorded < at
        and not any(r.index > e.index and r.recorded < at for r in reviewed_at.get(e.index, []))
    ]  # fmt: skip


def overdue(still_open: Iterable[Granted], at: datetime) -> list[Granted]:
    """The open exceptions whose review date passed before `at`."""
    return [e for e in still_open if e.review_due is not None and e.review_due < at]


def _evidence(
    shipped: Sequence[Deployed], statuses: Mapping[Release, str], policy_entry: int | None
) -> EvidenceShare:
    counts = Counter(statuses.get(d.release) for d in shipped)
    evaluated = sum(n for status, n in counts.items() if status is not None)
    releases = [
        ReleaseEvidence(d.release[0], d.release[1], d.index, format_time(d.recorded), statuses.get(d.release))
        for d in shipped
    ]
    return EvidenceShare(
        releases_deployed=len(shipped),
        evaluated=evaluated,
        compliant=counts[COMPLETE],
        incomplete=counts["incomplete"],
        non_compliant=counts["non-compliant"],
        share_complete=_ratio(counts[COMPLETE], evaluated),
        policy_entry=policy_entry,
        releases=releases,
    )


def _approvals(decisions: Sequence[Decision], latencies: Sequence[tuple[Decision, int]]) -> ApprovalMeasures:
    roles = sorted({a.role for a in decisions})
    by_role = [
        RoleLatency(role, sum(1 for a in decisions if a.role == role),
                    _median(sorted(s for a, s in latencies if a.role == role)))
        for role in roles
    ]  # fmt: skip
    return ApprovalMeasures(
        count=len(decisions),
        approved=sum(1 for a in decisions if a.decision == "approved"),
        rejected=sum(1 for a in decisions if a.decision == "rejected"),
        latency=durations(s for _, s in latencies),
        without_reviewed_entries=len(decisions) - len(latencies),
        by_role=by_role,
    )


def _exceptions(
    scope: Scope, exceptions: Sequence[Granted], reviews: Sequence[Reviewed]
) -> ExceptionMeasures:
    period = scope.period
    as_of = min(period.until, scope.now)
    in_period = [e for e in exceptions if e.recorded in period]
    by_index = {e.index: e for e in exceptions}
    reviews_in_period = [r for r in reviews if r.recorded in period]
    late = [
        r for r in reviews_in_period
        if (e := by_index.get(r.exception_entry)) is not None and e.review_due is not None
        and r.recorded > e.review_due
    ]  # fmt: skip
    still_open = open_reviews(exceptions, reviews, as_of)
    late_ones = sorted(overdue(still_open, as_of), key=lambda e: (e.review_due or e.recorded, e.index))
    return ExceptionMeasures(
        granted=len(in_period),
        by_rule=[RuleCount(rule, n) for rule, n in sorted(Counter(e.rule for e in in_period).items())],
        reviewed=len(reviews_in_period),
        reviewed_late=len(late),
        as_of=format_time(as_of),
        open_reviews=len(still_open),
        overdue_reviews=len(late_ones),
        overdue=[
            ExceptionRef(
                e.index, format_time(e.recorded), e.release[0], e.release[1], e.rule, e.review_due_text
            )
            for e in late_ones
        ],
    )


def readiness_metrics(  # noqa: PLR0913 - one argument per kind of evidence read
    scope: Scope,
    *,
    shipped: Sequence[Deployed],
    statuses: Mapping[Release, str],
    policy_entry: int | None,
    decisions: Sequence[Decision],
    entry_times: Mapping[int, datetime],
    exceptions: Sequence[Granted],
    reviews: Sequence[Reviewed],
) -> ReadinessMetrics:
    """The audit-readiness measures of `scope` (docs/http-api.md, "Metrics").

    `shipped`: `first_deployments` of the period; `statuses`: the compliance status now of those
    evaluated (under the policy entry `policy_entry`); `decisions`: the approvals recorded in the
    period, and `entry_times` the recording times of the entries they reviewed up to;
    `exceptions` and `reviews`: every one recorded before `until`, whenever.
    """
    period = scope.period
    as_of = min(period.until, scope.now)
    decided = [a for a in decisions if a.recorded in period]
    latencies = _latencies(decided, entry_times)
    weeks = []
    for week in period.weeks():
        judged = [d for d in shipped if d.recorded in week and d.release in statuses]
        complete = sum(1 for d in judged if statuses[d.release] == COMPLETE)
        at = min(week.until, as_of)
        still_open = open_reviews(exceptions, reviews, at) if week.since < as_of else []
        weeks.append(
            ReadinessWeek(
                start=format_time(week.since),
                end=format_time(week.until),
                releases_evaluated=len(judged),
                releases_complete=complete,
                share_complete=_ratio(complete, len(judged)),
                approvals=sum(1 for a in decided if a.recorded in week),
                approval_latency_median_seconds=_median(
                    sorted(s for a, s in latencies if a.recorded in week)
                ),
                exceptions_granted=sum(1 for e in exceptions if e.recorded in week),
                open_reviews=len(still_open),
                overdue_reviews=len(overdue(still_open, at)),
            )
        )
    return ReadinessMetrics(
        products=None if scope.products is None else list(scope.products),
        environment=scope.environment,
        since=format_time(period.since),
        until=format_time(period.until),
        computed_at=format_time(scope.now),
        evidence=_evidence(shipped, statuses, policy_entry),
        approvals=_approvals(decided, latencies),
        exceptions=_exceptions(scope, exceptions, reviews),
        weeks=weeks,
        truncated=scope.truncated,
        limits=scope.limits,
    )
