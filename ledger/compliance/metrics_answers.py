"""The answers of `GET /v1/metrics/delivery` and `GET /v1/metrics/readiness` (docs/http-api.md). Pure.

Frozen msgspec structs, the wire types of both routes and what the console's dashboard shows, so
that the page and the API show the same figures. `ledger.compliance.delivery_metrics` fills them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec

from ledger.compliance.metrics_facts import Period


class Durations(msgspec.Struct, frozen=True):
    """How long, in whole seconds: how many were measured, their median, 90th percentile and longest."""

    count: int
    median_seconds: int | None
    p90_seconds: int | None
    max_seconds: int | None


class Limits(msgspec.Struct, frozen=True):
    """The bounds on one answer's work (docs/http-api.md, "Metrics")."""

    events_per_kind: int
    releases_read: int
    releases_evaluated: int


class DeliveryWeek(msgspec.Struct, frozen=True):
    """One week of the delivery measures (the last week of a period may be shorter)."""

    start: str
    end: str
    deployments: int
    failed_deployments: int
    rollbacks: int
    change_failure_rate: float | None
    lead_time_median_seconds: int | None


class DeliveryMetrics(msgspec.Struct, frozen=True):
    """`GET /v1/metrics/delivery`: how often and how well releases reach `environment`."""

    products: list[str] | None  # the products measured; null: every product
    environment: str
    since: str
    until: str
    computed_at: str
    deployments: int
    failed_deployments: int
    releases_deployed: int
    deployments_per_week: float
    lead_time: Durations
    releases_without_change: int
    rollbacks: int
    change_failure_rate: float | None
    time_to_restore: Durations
    unrestored: int
    rollbacks_unmatched: int
    weeks: list[DeliveryWeek]
    truncated: bool
    limits: Limits


class ReleaseEvidence(msgspec.Struct, frozen=True):
    """A release deployed in the period, and its compliance now (null: not evaluated)."""

    product: str
    version: str
    deployed_entry: int
    deployed_at: str
    status: str | None


class EvidenceShare(msgspec.Struct, frozen=True):
    """Of the releases deployed in the period, how many have complete evidence."""

    releases_deployed: int
    evaluated: int
    compliant: int
    incomplete: int
    non_compliant: int
    share_complete: float | None
    policy_entry: int | None
    releases: list[ReleaseEvidence]


class RoleLatency(msgspec.Struct, frozen=True):
    """Approval latency in one role."""

    role: str
    count: int
    median_seconds: int | None


class ApprovalMeasures(msgspec.Struct, frozen=True):
    """The approval records of the period and how long each waited for its decision."""

    count: int
    approved: int
    rejected: int
    latency: Durations
    without_reviewed_entries: int
    by_role: list[RoleLatency]


class RuleCount(msgspec.Struct, frozen=True):
    """Exceptions granted to one rule."""

    rule: str
    count: int


class ExceptionRef(msgspec.Struct, frozen=True):
    """An exception whose review is overdue."""

    entry: int
    time: str
    product: str
    version: str
    rule: str
    review_due: str


class ExceptionMeasures(msgspec.Struct, frozen=True):
    """ExceptionMeasures granted in the period, and the reviews open and overdue at `as_of`."""

    granted: int
    by_rule: list[RuleCount]
    reviewed: int
    reviewed_late: int
    as_of: str
    open_reviews: int
    overdue_reviews: int
    overdue: list[ExceptionRef]


class ReadinessWeek(msgspec.Struct, frozen=True):
    """One week of the audit-readiness measures; reviews are counted at the week's end."""

    start: str
    end: str
    releases_evaluated: int
    releases_complete: int
    share_complete: float | None
    approvals: int
    approval_latency_median_seconds: int | None
    exceptions_granted: int
    open_reviews: int
    overdue_reviews: int


class ReadinessMetrics(msgspec.Struct, frozen=True):
    """`GET /v1/metrics/readiness`: whether what shipped could face an audit today."""

    products: list[str] | None
    environment: str
    since: str
    until: str
    computed_at: str
    evidence: EvidenceShare
    approvals: ApprovalMeasures
    exceptions: ExceptionMeasures
    weeks: list[ReadinessWeek]
    truncated: bool
    limits: Limits


@dataclass(frozen=True, slots=True)
class Scope:
    """What an answer is about and how it was fetched (echoed in the answer)."""

    products: tuple[str, ...] | None
    environment: str
    period: Period
    now: datetime
    truncated: bool
    limits: Limits
