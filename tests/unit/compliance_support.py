"""Builders for compliance tests: evidence Events made straight from predicates, no log needed.

A release is a list of steps (who signed which predicate about which subjects),
numbered from entry 10 on, one minute apart. `compliant_steps` is a high-risk
release that is fully compliant under schemas/policy.example.toml; a deployment
into production under that policy needs a `gate_decision` allowing it first
(`deployed_steps`). A deployment's window ends when it is recorded unless told.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from ledger.compliance.evaluate import ComplianceResult, evaluate
from ledger.compliance.gate import gate_statement
from ledger.records import policy as pol
from ledger.records import predicates as p
from ledger.records.statement import (
    STATEMENT_TYPE_V1,
    ResourceDescriptor,
    Statement,
    decode_statement,
    subject_digests,
)
from ledger.rules.events import Event, Signer

EXAMPLE = Path(__file__).resolve().parents[2] / "schemas" / "policy.example.toml"
POLICY = pol.load_policy_toml(EXAMPLE.read_text(encoding="utf-8"))
POLICY_ENTRY = 3
REL = p.Release("analyzer", "2.4.0")
D1 = "sha256:" + "a1" * 32
D2 = "sha256:" + "b2" * 32
COMMIT = "c0ffee" * 6 + "0000"
BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FIRST = 10
SIGNED = "2026-01-01T00:00:00Z"  # before every entry: approvals are then in log order (decided_at)
DANA, QUINN, CLEO, SAM, RITA, CI = "Dana Dev", "Quinn QA", "Cleo Clinic", "Sam Sec", "Rita Release", "ci"
HIGH_SUITES = ("unit", "integration", "regression", "system", "security", "performance")
TYPES = {cls: t for t, cls in p.PREDICATE_TYPES.items()}

Step = tuple[str, Any, tuple[str, ...]]  # (signer owner, predicate, subject digests)


def at(minutes: float) -> str:
    return (BASE + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def entry_time(index: int) -> str:
    return at(index - FIRST)


NOW = at(120)


def change(risk: str = "high", author: str = DANA) -> Step:
    summary = p.ChangeSummary("rounding fix", "borderline results", "result values", "golden datasets")
    pred = p.Change(
        REL,
        "CHG-7",
        summary,
        risk,  # type: ignore[arg-type]
        affects_intended_use=True,
        patient_facing_output=True,
        components=["calc"],
        author=author,
    )
    return DANA, pred, ("gitCommit:" + COMMIT,)


def build(digest: str = D1) -> Step:
    pred = p.Build(REL, "git.example/analyzer", COMMIT, "b-1", "ci", [p.Artifact("analyzer.tar", digest)])
    return CI, pred, (digest,)


def suite_run(suite: str, digest: str = D1, result: str = "passed", failed: int = 0) -> Step:
    pred = p.TestRun(REL, suite, f"make {suite}", COMMIT, "ci", 10, failed, 0, result)  # type: ignore[arg-type]
    return CI, pred, (digest,)


def scan(high: int = 0, digest: str = D1, tool: str = "trivy") -> Step:
    return CI, p.Scan(REL, tool, "0.50", p.Findings(high=high, low=1)), (digest,)


def validation(digest: str = D1, result: str = "passed") -> Step:
    dataset = p.Dataset("golden", "7", "sha256:" + "d" * 64)
    return CI, p.Validation(REL, "borderline rounding", dataset, result), (digest,)  # type: ignore[arg-type]


def approval(
    role: str, owner: str, digest: str = D1, decision: str = "approved", signed_at: str = SIGNED
) -> Step:
    pred = p.Approval(REL, role, "approval", decision, digest, [FIRST, FIRST + 1], signed_at)  # type: ignore[arg-type]
    return owner, pred, (digest,)


def exception(rule: str, expires: str, review_due: str, justification: str = "hotfix for site 12") -> Step:
    return RITA, p.PolicyException(REL, rule, justification, expires, review_due), (D1,)


def review(entry: int) -> Step:
    return RITA, p.ExceptionReview(REL, entry, "accepted", "root cause fixed"), (D1,)


AT_ENTRY = "(the minute before the deployment is recorded)"  # replaced by `event`


def deployment(
    digest: str = D1, environment: str = "production", started: str = AT_ENTRY, finished: str = AT_ENTRY
) -> Step:
    pred = p.Deployment(REL, environment, digest, started, finished, "succeeded")
    return CI, pred, (digest,)


LEDGER = "evledger ledger"


def gate_decision(
    decision: str = "allow", digest: str = D1, environment: str = "production", *, legacy: bool = False
) -> Step:
    """A gate decision signed by the ledger key: VSA v1 shape, or (legacy) the shape before issue #12."""
    fields: dict[str, Any] = {
        "verifier": {
            "id": "ledger.example/prod" if legacy else "https://evledger.dev/verifier/ledger.example/prod"
        },
        "timeVerified": NOW,
        "resourceUri": "urn:evledger:release:analyzer:2.4.0",
        "policy": {"uri": f"urn:evledger:entry:{POLICY_ENTRY}", "digest": {"sha256": "0" * 64}},
        "inputAttestations": [],
        "verificationResult": "PASSED" if decision == "allow" else "FAILED",
        "verifiedLevels": ["EVLEDGER_POLICY_COMPLIANT"] if decision == "allow" else ["FAILED"],
    }
    gate = {
        "release": msgspec.to_builtins(REL),
        "environment": environment,
        "decision": decision,
        "findings": [],
    }
    raw = {**fields, **gate} if legacy else {**fields, p.GATE_EXTENSION: gate, "slsaVersion": "1.0"}
    pred = p.decode_predicate(p.GATE_DECISION, raw)  # the one reader of both shapes
    assert isinstance(pred, p.GateDecision)
    return LEDGER, (pred, raw), (digest,)


APPROVERS = (approval("qa", QUINN), approval("clinical", CLEO), approval("security", SAM))


def deployed_steps(*extra: Step) -> list[Step]:
    """The compliant release, `extra` steps, the production gate's allow, then the deployment."""
    return [*compliant_steps(), *extra, gate_decision(), deployment()]


def compliant_steps() -> list[Step]:
    """A high-risk release: change, build, every suite, scan, validation, then four approvals."""
    return [
        change(),
        build(),
        *(suite_run(s) for s in HIGH_SUITES),
        scan(),
        validation(),
        *APPROVERS,
        approval("release-manager", RITA),
    ]


def event(index: int, step: Step) -> Event:
    owner, pred, subjects = step
    raw = None
    if isinstance(pred, tuple):  # a gate decision: the predicate as read, and its raw shape as signed
        pred, raw = pred
    if isinstance(pred, p.Deployment):
        window = {"started": entry_time(index - 1), "finished": entry_time(index)}
        pred = msgspec.structs.replace(
            pred, **{k: v for k, v in window.items() if getattr(pred, k) == AT_ENTRY}
        )
    descriptors = [ResourceDescriptor(name="s", digest=dict([s.split(":", 1)])) for s in subjects]
    raw = msgspec.to_builtins(pred) if raw is None else raw
    statement = Statement(STATEMENT_TYPE_V1, descriptors, TYPES[type(pred)], raw)
    role = pred.role if isinstance(pred, p.Approval) else "ci"
    return Event(
        index=index,
        leaf_hash=hashlib.sha256(b"%d" % index).digest(),
        time=entry_time(index),
        kind=p.kind_name(statement.predicate_type),
        predicate_type=statement.predicate_type,
        statement=statement,
        predicate=pred,
        subjects=subject_digests(statement),
        signer=Signer(f"{owner.split()[0].lower()}+0000000{index % 10}", owner, (role,), owner == LEDGER),
        release_seq=index - FIRST,
    )


def events(steps: list[Step]) -> list[Event]:
    return [event(FIRST + n, step) for n, step in enumerate(steps)]


def run(
    steps: list[Step], *, now: str = NOW, environment: str | None = "production", policy: pol.Policy = POLICY
) -> ComplianceResult:
    return evaluate(events(steps), policy, POLICY_ENTRY, now=now, environment=environment)


def only(result: ComplianceResult, rule: str) -> tuple[str, list[int]]:
    """The status and entries of the one finding of `rule`; the test fails if there are more or none."""
    found = [f for f in result.findings if f.rule == rule]
    assert len(found) == 1, result.findings
    return found[0].status, found[0].entries


def rules(result: ComplianceResult) -> set[str]:
    return {f.rule for f in result.findings}


def index_of(steps: list[Step], step: Step) -> int:
    return FIRST + steps.index(step)


OVER_LIMIT = scan(high=2)
WEEK, MONTH = 7 * 24 * 60, 30 * 24 * 60


def with_exception(rule: str, expires: str, review_due: str, *extra: Step) -> list[Step]:
    steps = [OVER_LIMIT if s == scan() else s for s in compliant_steps()]
    return [*steps, exception(rule, expires, review_due), *extra]


def gate(result: ComplianceResult, steps: list[Step]) -> tuple[Statement, p.GateDecision]:
    """Sign nothing: build the gate statement for `result`, parse it back, and check its inputs."""
    inputs = [(i, hashlib.sha256(b"%d" % i).hexdigest()) for i in result.entries]
    data = gate_statement(
        result,
        REL,
        environment="production",
        policy_ref=(POLICY_ENTRY, pol.policy_digest(POLICY)),
        input_entries=inputs,
        verifier_id="ledger.example/prod",
        time=NOW,
    )
    statement = decode_statement(data)
    decision = p.decode_predicate(statement.predicate_type, statement.predicate)
    assert isinstance(decision, p.GateDecision)
    assert len(decision.input_attestations) == len(steps)
    return statement, decision
