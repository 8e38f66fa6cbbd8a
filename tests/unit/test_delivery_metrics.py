"""The delivery and audit-readiness measures (issue #15), on hand-built event summaries.

Each test builds the few records a measure reads (ledger.compliance.metrics_facts) and checks the
figure docs/http-api.md ("Metrics") defines: the period's edges, no deployment at all, releases
deployed before the period, rollbacks restored, not restored or undoing nothing known, approvals
signed before or after they were recorded, and exceptions open, overdue or reviewed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.compliance import metrics_facts as facts
from ledger.compliance.delivery_metrics import (
    delivery_metrics,
    durations,
    first_deployments,
    readiness_metrics,
)
from ledger.compliance.metrics_answers import Limits, ReadinessMetrics, Scope
from ledger.compliance.metrics_facts import (
    Decision,
    Deployed,
    Granted,
    Period,
    ReleaseHistory,
    Reviewed,
    RolledBack,
)
from ledger.errors import InputError
from ledger.records import predicates as p
from ledger.rules.events import Event, Signer

SINCE = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
UNTIL = SINCE + timedelta(days=28)
PERIOD = Period(SINCE, UNTIL)
LIMITS = Limits(10, 10, 10)
PROD = "production"
A, B, C = ("analyzer", "1.0"), ("analyzer", "1.1"), ("analyzer", "1.2")
DA, DB, DC = ("sha256:" + c * 64 for c in "abc")
HOUR, DAY = 3600, 86400


def day(n: float) -> datetime:
    return SINCE + timedelta(days=n)


def scope(now: datetime = UNTIL + timedelta(days=1), products: tuple[str, ...] | None = None) -> Scope:
    return Scope(products, PROD, PERIOD, now, truncated=False, limits=LIMITS)


def deploy(index: int, when: datetime, release=A, digest=DA, env=PROD, *, ok: bool = True) -> Deployed:
    return Deployed(index, when, release, env, ok, digest)


def rollback(
    index: int, when: datetime, release: facts.Release = B, from_digest: str = DB, *, ok: bool = True
) -> RolledBack:
    return RolledBack(index, when, release, PROD, ok, from_digest)


def test_a_period_defaults_to_the_last_90_days_and_refuses_one_backwards_or_too_long() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert facts.period(None, None, now) == Period(now - timedelta(days=90), now)
    assert facts.period(SINCE, None, now) == Period(SINCE, now)
    assert facts.period(None, UNTIL, now) == Period(UNTIL - timedelta(days=90), UNTIL)
    with pytest.raises(InputError, match="before until"):
        facts.period(UNTIL, SINCE, now)
    with pytest.raises(InputError, match="before until"):
        facts.period(SINCE, SINCE, now)
    with pytest.raises(InputError, match="366 days"):
        facts.period(SINCE, SINCE + timedelta(days=367), now)
    assert facts.period(SINCE, SINCE + timedelta(days=366), now).until == SINCE + timedelta(days=366)


def test_weeks_start_at_since_and_the_last_one_stops_at_until() -> None:
    weeks = Period(SINCE, SINCE + timedelta(days=10)).weeks()
    assert [(w.since, w.until) for w in weeks] == [(day(0), day(7)), (day(7), day(10))]
    assert len(facts.period(None, None, UNTIL).weeks()) == 13  # 90 days: 12 weeks and 6 days


def test_no_deployment_gives_zeros_and_no_rate() -> None:
    answer = delivery_metrics(scope(), [], [], {})
    assert (answer.deployments, answer.failed_deployments, answer.rollbacks) == (0, 0, 0)
    assert answer.change_failure_rate is None
    assert answer.deployments_per_week == 0
    assert answer.lead_time == durations([]) == answer.time_to_restore
    assert answer.lead_time.median_seconds is None
    assert len(answer.weeks) == 4
    assert all(w.deployments == 0 and w.change_failure_rate is None for w in answer.weeks)
    assert answer.since == "2026-01-05T00:00:00.000Z"
    assert answer.until == "2026-02-02T00:00:00.000Z"


def test_deployments_count_inside_the_period_only_and_in_the_environment_asked() -> None:
    deployments = [
        deploy(1, SINCE - timedelta(milliseconds=1)),  # just before: out
        deploy(2, SINCE, release=B, digest=DB),  # the first instant: in
        deploy(3, day(8), release=C, digest=DC, ok=False),  # failed: counted apart
        deploy(4, day(9), release=C, digest=DC, env="staging"),  # another environment
        deploy(5, UNTIL - timedelta(milliseconds=1), release=C, digest=DC),  # the last instant: in
        deploy(6, UNTIL, release=A),  # at until: out
    ]
    answer = delivery_metrics(scope(), deployments, [], {})
    assert (answer.deployments, answer.failed_deployments, answer.releases_deployed) == (2, 1, 2)
    assert answer.deployments_per_week == 0.5
    assert [w.deployments for w in answer.weeks] == [1, 0, 0, 1]
    assert [w.failed_deployments for w in answer.weeks] == [0, 1, 0, 0]


def test_lead_time_runs_from_the_first_change_to_the_first_deployment_there() -> None:
    deployments = [
        deploy(20, day(2)),
        deploy(21, day(3)),  # a redeployment of A: not a new delivery
        deploy(22, day(9), release=B, digest=DB),  # B was deployed there before the period
        deploy(23, day(10), release=C, digest=DC),  # C has no change record
    ]
    histories = {
        A: ReleaseHistory(
            day(0.5), (deploy(3, day(-1), env="staging"), deploy(20, day(2)), deploy(21, day(3)))
        ),
        B: ReleaseHistory(day(-20), (deploy(4, day(-10), release=B, digest=DB), deploy(22, day(9), B, DB))),
        C: ReleaseHistory(None, (deploy(23, day(10), release=C, digest=DC),)),
    }
    answer = delivery_metrics(scope(), deployments, [], histories)
    assert answer.releases_deployed == 3
    assert answer.lead_time == durations([int(1.5 * DAY)])
    assert answer.releases_without_change == 1
    assert [w.lead_time_median_seconds for w in answer.weeks] == [int(1.5 * DAY), None, None, None]
    late_change = {A: ReleaseHistory(day(2.5), histories[A].deployments)}
    assert delivery_metrics(scope(), deployments[:1], [], late_change).releases_without_change == 1


def test_a_rollback_restores_from_the_deployment_it_undid_and_counts_as_a_failure() -> None:
    deployments = [deploy(10, day(1)), deploy(11, day(2), release=B, digest=DB)]
    rollbacks = [rollback(12, day(2) + timedelta(hours=3))]
    answer = delivery_metrics(scope(), deployments, rollbacks, {})
    assert answer.rollbacks == 1
    assert answer.change_failure_rate == 0.5
    assert answer.time_to_restore == durations([3 * HOUR])
    assert (answer.unrestored, answer.rollbacks_unmatched) == (0, 0)
    assert [w.change_failure_rate for w in answer.weeks] == [0.5, None, None, None]


def test_a_failed_rollback_is_restored_by_the_next_deployment_or_not_at_all() -> None:
    deployments = [deploy(10, day(1), release=B, digest=DB)]
    failed = [rollback(11, day(1) + timedelta(hours=1), ok=False)]
    alone = delivery_metrics(scope(), deployments, failed, {})
    assert (alone.rollbacks, alone.unrestored, alone.time_to_restore.count) == (1, 1, 0)
    fixed = [*deployments, deploy(12, day(1) + timedelta(hours=5), release=C, digest=DC)]
    later = delivery_metrics(scope(), fixed, failed, {})
    assert later.unrestored == 0
    assert later.time_to_restore == durations([5 * HOUR])
    after_the_period = [*deployments, deploy(12, UNTIL + timedelta(hours=1), release=C, digest=DC)]
    assert delivery_metrics(scope(), after_the_period, failed, {}).unrestored == 1


def test_a_rollback_of_a_digest_never_deployed_is_unmatched_and_one_before_the_period_is_found() -> None:
    rollbacks = [rollback(30, day(3), from_digest=DC)]
    answer = delivery_metrics(scope(), [], rollbacks, {})
    assert (answer.rollbacks, answer.rollbacks_unmatched, answer.time_to_restore.count) == (1, 1, 0)
    assert answer.change_failure_rate is None  # no deployment in the period to divide by
    histories = {B: ReleaseHistory(None, (deploy(5, day(-2), release=B, digest=DC),))}
    found = delivery_metrics(scope(), [], rollbacks, histories)
    assert found.time_to_restore == durations([5 * DAY])


def test_the_environment_and_other_products_rollbacks_do_not_mix() -> None:
    deployments = [deploy(10, day(1), release=("other", "9"), digest=DB)]
    answer = delivery_metrics(scope(), deployments, [rollback(11, day(2))], {})
    assert answer.rollbacks_unmatched == 1  # the digest went out in another product


def test_durations_median_and_nearest_rank_p90() -> None:
    assert durations([5]) == durations([5])
    assert (durations([1, 3]).median_seconds, durations([1, 2, 4]).median_seconds) == (2, 2)
    ten = durations(range(1, 11))
    assert (ten.count, ten.p90_seconds, ten.max_seconds) == (10, 9, 10)


def _readiness(**given: Any) -> ReadinessMetrics:
    inputs = {
        "shipped": [],
        "statuses": {},
        "policy_entry": 3,
        "decisions": [],
        "entry_times": {},
        "exceptions": [],
        "reviews": [],
    } | given
    now = inputs.pop("now", UNTIL + timedelta(days=1))
    return readiness_metrics(scope(now), **inputs)


def test_the_share_of_complete_evidence_counts_the_releases_evaluated() -> None:
    shipped = first_deployments(
        PERIOD,
        PROD,
        [deploy(1, day(1)), deploy(2, day(2), B, DB), deploy(3, day(9), C, DC), deploy(4, day(3))],
    )
    assert [d.release for d in shipped] == [C, B, A]  # newest first, each release once
    statuses = {A: "compliant", C: "non-compliant"}  # B was not evaluated
    evidence = _readiness(shipped=shipped, statuses=statuses).evidence
    assert (evidence.releases_deployed, evidence.evaluated, evidence.compliant) == (3, 2, 1)
    assert (evidence.incomplete, evidence.non_compliant, evidence.share_complete) == (0, 1, 0.5)
    assert [(r.version, r.status) for r in evidence.releases] == [
        ("1.2", "non-compliant"),
        ("1.1", None),
        ("1.0", "compliant"),
    ]
    weeks = _readiness(shipped=shipped, statuses=statuses).weeks
    assert [(w.releases_evaluated, w.share_complete) for w in weeks] == [
        (1, 1.0),
        (1, 0.0),
        (0, None),
        (0, None),
    ]
    assert _readiness(shipped=shipped, statuses={}, policy_entry=None).evidence.share_complete is None


def test_approval_latency_runs_from_the_newest_entry_reviewed_to_the_signature() -> None:
    decisions = [
        Decision(50, day(2), A, "qa", "approved", day(1) + timedelta(hours=2), 40),
        Decision(51, day(2), A, "clinical", "approved", day(3), 40),  # signed "after": counts when recorded
        Decision(52, day(2), A, "qa", "rejected", day(0.5), 40),  # signed before the evidence: 0
        Decision(53, day(2), A, "security", "approved", None, None),  # lists no entry
        Decision(54, day(-1), A, "qa", "approved", None, 40),  # before the period
    ]
    approvals = _readiness(decisions=decisions, entry_times={40: day(1)}).approvals
    assert (approvals.count, approvals.approved, approvals.rejected) == (4, 3, 1)
    assert approvals.without_reviewed_entries == 1
    assert approvals.latency == durations([2 * HOUR, DAY, 0])
    assert [(r.role, r.count, r.median_seconds) for r in approvals.by_role] == [
        ("clinical", 1, DAY),
        ("qa", 2, HOUR),
        ("security", 1, None),
    ]


def test_exceptions_open_overdue_and_reviewed() -> None:
    def granted(index: int, when: datetime, due: datetime) -> Granted:
        return Granted(index, when, A, "findings.max-open", due, due.isoformat())

    exceptions = [
        granted(10, day(-30), day(-2)),  # before the period, overdue and never reviewed
        granted(11, day(1), day(20)),  # reviewed in time
        granted(12, day(2), day(10)),  # reviewed late
        granted(13, day(3), day(40)),  # open, not yet due
    ]
    reviews = [
        Reviewed(20, day(5), 11),
        Reviewed(21, day(15), 12),
        Reviewed(9, day(-40), 13),  # an entry before the exception reviews nothing
    ]
    answer = _readiness(exceptions=exceptions, reviews=reviews).exceptions
    assert (answer.granted, answer.reviewed, answer.reviewed_late) == (3, 2, 1)
    assert [(r.rule, r.count) for r in answer.by_rule] == [("findings.max-open", 3)]
    assert (answer.open_reviews, answer.overdue_reviews) == (2, 1)
    assert [o.entry for o in answer.overdue] == [10]
    assert answer.as_of == "2026-02-02T00:00:00.000Z"
    weeks = _readiness(exceptions=exceptions, reviews=reviews).weeks
    assert [w.exceptions_granted for w in weeks] == [3, 0, 0, 0]
    assert [(w.open_reviews, w.overdue_reviews) for w in weeks] == [(3, 1), (3, 2), (2, 1), (2, 1)]


def test_reviews_are_counted_as_of_now_when_the_period_ends_later() -> None:
    exceptions = [Granted(11, day(1), A, "r", day(3), "x")]
    now = day(2)
    answer = _readiness(exceptions=exceptions, now=now)
    assert (answer.exceptions.open_reviews, answer.exceptions.overdue_reviews) == (1, 0)
    assert answer.exceptions.as_of == "2026-01-07T00:00:00.000Z"
    assert [w.open_reviews for w in answer.weeks] == [1, 0, 0, 0]  # weeks after now: nothing known


def _event(index: int, predicate: object, release: tuple[str, str] | None = None) -> Event:
    kind = p.kind_name(next(t for t, cls in p.PREDICATE_TYPES.items() if isinstance(predicate, cls)))
    signer = Signer("k+00000000", "someone", ())
    return Event(index, b"", "2026-01-06T10:00:00.000Z", kind, "t", signer, (), None, predicate, 0, release)  # type: ignore[arg-type]


def test_events_are_read_into_the_summaries_the_measures_take() -> None:
    rel = p.Release(*A)
    deployment = p.Deployment(rel, PROD, DA.upper().replace("SHA256", "sha256"), "x", "y", "failed")
    read = facts.deployed(_event(7, deployment, A))
    assert read == Deployed(7, day(1) + timedelta(hours=10), A, PROD, False, DA)  # noqa: FBT003 - the dataclass field
    back = facts.rolled_back(_event(8, p.Rollback(rel, PROD, DB, DA, "bad", "x", "y", "succeeded")))
    assert back is not None
    assert (back.release, back.from_digest, back.succeeded) == (A, DB, True)
    approval = p.Approval(rel, "qa", "approval", "approved", DA, [3, 9, 5], "2026-01-06T09:00:00+01:00")
    decided = facts.decision(_event(9, approval, A))
    assert decided is not None
    assert decided.reviewed_up_to == 9
    assert decided.signed_at == datetime(2026, 1, 6, 8, tzinfo=UTC)
    exception = p.PolicyException(
        rel, "findings.max-open", "why", "2026-01-09T00:00:00Z", "2026-01-20T00:00:00Z"
    )
    got = facts.granted(_event(10, exception, A))
    assert got is not None
    assert got.review_due == datetime(2026, 1, 20, tzinfo=UTC)
    assert got.review_due_text == "2026-01-20T00:00:00Z"
    assert facts.reviewed(_event(11, p.ExceptionReview(rel, 10, "accepted", "ok"), A)) == Reviewed(
        11, day(1) + timedelta(hours=10), 10
    )
    assert facts.deployed(_event(12, approval, A)) is None
    assert facts.granted(_event(12, deployment, A)) is None
