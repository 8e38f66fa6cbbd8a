"""Compliance of a release with the policy in force (schemas/POLICY.md; docs/http-api.md). Pure.

`evaluate` is a deterministic function of (events, policy, policy entry,
evaluation time, environment): the service computes it for
`GET /v1/releases/{product}/{version}/compliance` and for gate decisions, and
the offline dossier verifier recomputes it from the dossier's evidence and
policy entry and must get the same bytes (`encode_result`). It reads no clock
and no database.

Status: `non-compliant` when recorded evidence contradicts the policy (any
`fail` finding), else `incomplete` when evidence the policy needs is not
recorded yet (any `missing` finding), else `compliant`. Waived findings (an
exception in force) are reported but do not count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from ledger.compliance.checks import (
    Context,
    Finding,
    check_after_evidence,
    check_approvals,
    check_classified,
    check_entries_in_release,
    check_findings,
    check_separation,
    check_tests,
    check_validation,
)
from ledger.compliance.checks_traceability import (
    check_anomalies,
    check_component_risk,
    check_coverage,
    check_sbom,
)
from ledger.compliance.deployments import check_deployed_after_evidence, check_gate_allow, gate_entries
from ledger.compliance.facts import candidates, collect, scoped_deployments
from ledger.compliance.waivers import apply_exceptions, check_continuity
from ledger.core.encoding import JSON_ERRORS
from ledger.errors import EncodingError, InputError
from ledger.records import predicates as p
from ledger.records.admin import policy_from_record
from ledger.records.formats import parse_offset_time
from ledger.records.policy import Policy, policy_digest
from ledger.records.predicates import RISK_CLASSES, RiskClass
from ledger.rules.events import Event

if TYPE_CHECKING:
    from ledger.records.admin import PolicyPublished

__all__ = [
    "ComplianceResult",
    "Finding",
    "PolicyInForce",
    "Status",
    "decode_result",
    "encode_result",
    "evaluate",
    "evaluate_record",
    "result_data",
    "status_of",
]

Status = Literal["compliant", "non-compliant", "incomplete"]


class PolicyInForce(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The policy a result was evaluated against: its log entry and digest, name and version."""

    entry: int
    digest: str
    name: str
    version: str


class ComplianceResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A release's compliance: status, what was evaluated, and the findings sorted by rule and entries."""

    status: Status
    release: p.Release | None
    policy: PolicyInForce
    evaluated_at: str
    environment: str | None
    risk_class: RiskClass | None
    candidates: list[p.Artifact]  # the artifacts the rules were checked against
    entries: list[int]  # the evidence entries evaluated (and the gate decisions deployments.gate-allow read)
    findings: list[Finding]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ComplianceResult)


def status_of(findings: Sequence[Finding]) -> Status:
    """non-compliant if any finding fails, else incomplete if any is missing, else compliant."""
    statuses = {f.status for f in findings}
    if "fail" in statuses:
        return "non-compliant"
    if "missing" in statuses:
        return "incomplete"
    return "compliant"


def _risk_class(changes: Sequence[p.Change]) -> RiskClass | None:
    """The highest risk class the release's change records state (a reclassification never lowers it)."""
    if not changes:
        return None
    return max((c.risk_class for c in changes), key=RISK_CLASSES.index)


def evaluate(
    events: Sequence[Event],
    policy: Policy,
    policy_entry: int,
    *,
    now: str,
    environment: str | None,
) -> ComplianceResult:
    """Evaluate a release's evidence against `policy` (published at log index `policy_entry`).

    Preconditions: `events` are the release's events (its timeline: entries that name it, and
    generic evidence about its artifacts; events naming another release are ignored); `now` is
    an RFC 3339 time with offset (InputError otherwise), normally the time of the newest
    checkpoint or the gate request; `environment` is the deployment target a gate asks about,
    or None for the release as a whole (its deployments into the policy's continuity
    environments). The release is the one the events' chain names.
    The result depends on nothing else (docs/cli.md: `verify` re-evaluates it offline).
    """
    now_time = parse_offset_time(now)
    if now_time is None:
        raise InputError(f"evaluation time {now!r} is not an RFC 3339 time with an offset")
    facts = collect(events)
    risk = _risk_class([c.pred for c in facts.changes])
    deployments = scoped_deployments(facts, policy, environment)
    ctx = Context(
        facts=facts,
        policy=policy,
        tier=policy.tier(risk) if risk is not None else None,
        candidates=candidates(facts, deployments),
        deployments=deployments,
    )
    findings = [
        *check_classified(ctx),
        *check_component_risk(ctx),
        *check_tests(ctx),
        *check_coverage(ctx),
        *check_anomalies(ctx),
        *check_validation(ctx),
        *check_sbom(ctx),
        *check_approvals(ctx),
        *check_separation(ctx),
        *check_after_evidence(ctx),
        *check_entries_in_release(ctx),
        *check_findings(ctx),
        *check_continuity(ctx),
        *check_gate_allow(ctx),
        *check_deployed_after_evidence(ctx),
    ]
    findings, exception_findings = apply_exceptions(ctx, findings, now_time, now)
    ordered = sorted([*findings, *exception_findings], key=lambda f: (f.rule, f.entries, f.status, f.message))
    return ComplianceResult(
        status=status_of(ordered),
        release=facts.release,
        policy=PolicyInForce(policy_entry, policy_digest(policy), policy.name, policy.version),
        evaluated_at=now,
        environment=environment,
        risk_class=risk,
        candidates=ctx.candidates,
        entries=sorted({*facts.entries, *gate_entries(ctx)}),
        findings=ordered,
    )


def evaluate_record(
    events: Sequence[Event],
    record: PolicyPublished,
    policy_entry: int,
    *,
    now: str,
    environment: str | None,
) -> ComplianceResult:
    """`evaluate` against the policy a `policy.published` record carries (its digest is checked first)."""
    return evaluate(
        events,
        policy_from_record(record),
        policy_entry,
        now=now,
        environment=environment,
    )


def encode_result(result: ComplianceResult) -> bytes:
    """The result as JSON, fields in declaration order: equal results give equal bytes."""
    return _encoder.encode(result)


def decode_result(data: bytes) -> ComplianceResult:
    """Parse a result written by `encode_result`; EncodingError for anything else."""
    try:
        return _decoder.decode(data)
    except JSON_ERRORS as exc:
        raise EncodingError(f"compliance result is invalid: {exc}") from exc


def result_data(result: ComplianceResult) -> dict[str, Any]:
    """The result as plain JSON data (as dossiers and the HTTP API carry it)."""
    data: dict[str, Any] = msgspec.to_builtins(result)
    return data
