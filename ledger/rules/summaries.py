"""What an auditor reads of each kind of evidence: one plain dict per predicate. Pure.

The timeline, artifact and search views put this dict in each event's
`summary`. Generic evidence (a predicate type of someone else's) shows its
predicate's keys and its top-level plain values; admin records show what they
register or revoke.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ledger.records import predicates as p
from ledger.records.admin import KeyRegistered, KeyRevoked, decode_admin_record

Summary = dict[str, Any]
_SCALARS = (str, int, bool, type(None))


def _change(v: p.Change, _: str) -> Summary:
    return {
        "change_id": v.change_id, "risk_class": v.risk_class, "summary": msgspec.to_builtins(v.summary),
        "affects_intended_use": v.affects_intended_use, "patient_facing_output": v.patient_facing_output,
        "author": v.author,
    }  # fmt: skip


def _build(v: p.Build, _: str) -> Summary:
    return {
        "repository": v.repository, "commit": v.commit, "build_id": v.build_id, "builder": v.builder,
        "artifacts": [{"name": a.name, "digest": a.digest} for a in v.artifacts],
    }  # fmt: skip


def _test_run(v: p.TestRun, _: str) -> Summary:
    return {
        "suite": v.suite, "result": v.result, "passed": v.passed, "failed": v.failed, "skipped": v.skipped,
        "environment": v.environment, "commit": v.commit,
    }  # fmt: skip


def _scan(v: p.Scan, _: str) -> Summary:
    return {"tool": v.tool, "tool_version": v.tool_version, "findings": msgspec.to_builtins(v.findings)}


def _validation(v: p.Validation, _: str) -> Summary:
    return {
        "objective": v.objective, "dataset": msgspec.to_builtins(v.dataset), "result": v.result,
        "defects": v.defects, "manual": v.manual,
    }  # fmt: skip


def _approval(v: p.Approval, approver: str) -> Summary:
    return {
        "role": v.role, "meaning": v.meaning, "decision": v.decision, "artifact_digest": v.artifact_digest,
        "entries": v.entries, "comment": v.comment, "approver": approver, "signed_at": v.signed_at,
    }  # fmt: skip


def _exception(v: p.PolicyException, _: str) -> Summary:
    return {
        "rule": v.rule,
        "justification": v.justification,
        "expires": v.expires,
        "review_due": v.review_due,
    }


def _exception_review(v: p.ExceptionReview, _: str) -> Summary:
    return {"exception_entry": v.exception_entry, "outcome": v.outcome, "comment": v.comment}


def _deployment(v: p.Deployment, _: str) -> Summary:
    return {
        "environment": v.environment, "digests": [v.artifact_digest], "result": v.result,
        "started": v.started, "finished": v.finished,
    }  # fmt: skip


def _rollback(v: p.Rollback, _: str) -> Summary:
    return {
        "environment": v.environment, "digests": [v.from_digest, v.to_digest], "from_digest": v.from_digest,
        "to_digest": v.to_digest, "reason": v.reason, "result": v.result, "started": v.started,
        "finished": v.finished,
    }  # fmt: skip


def _seal(v: p.Seal, _: str) -> Summary:
    return {"count": v.count, "head": v.head}


def _gate(v: p.GateDecision, _: str) -> Summary:
    return {
        "environment": v.environment,
        "decision": v.decision,
        "verification_result": v.verification_result,
    }


_BY_TYPE: dict[type[Any], Callable[[Any, str], Summary]] = {
    p.Change: _change, p.Build: _build, p.TestRun: _test_run, p.Scan: _scan, p.Validation: _validation,
    p.Approval: _approval, p.PolicyException: _exception, p.ExceptionReview: _exception_review,
    p.Deployment: _deployment, p.Rollback: _rollback, p.Seal: _seal, p.GateDecision: _gate,
}  # fmt: skip


def generic_summary(raw: dict[str, Any]) -> Summary:
    """Generic evidence: its predicate's keys, and the top-level values that are plain scalars."""
    values = {k: v for k, v in raw.items() if isinstance(v, _SCALARS) and not isinstance(v, float)}
    return {"predicate_keys": sorted(raw), "values": values}


def summary_of(predicate: p.Predicate | None, raw: dict[str, Any], approver: str) -> Summary:
    """The fields an auditor reads for a predicate; `raw` is the predicate as signed.

    Preconditions: `predicate` is the typed form of `raw` (None for generic
    evidence); `approver` is the signing key's registered owner.
    """
    summarizer = _BY_TYPE.get(type(predicate))
    return generic_summary(raw) if summarizer is None else summarizer(predicate, approver)


def admin_summary(payload: bytes) -> tuple[str, Summary]:
    """An admin record's kind and what it says. Precondition: the payload was admitted as one."""
    record = decode_admin_record(payload)
    kind = str(type(record).__struct_config__.tag)
    if isinstance(record, KeyRegistered):
        return kind, {
            "key": record.key,
            "owner": record.owner,
            "roles": record.roles,
            "products": record.products,
        }
    if isinstance(record, KeyRevoked):
        return kind, {"keyid": record.keyid, "reason": record.reason}
    return kind, {"name": record.name}
