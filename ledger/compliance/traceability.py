"""The traceability matrix of a release: each requirement, the tests on the candidate, its status. Pure.

IEC 62304 §5.7.1 asks for tests of each software requirement, §7.3.1 for the
verification of each risk control measure, §7.3.3 for traceability from hazard
to risk control to its verification, and §5.8.2/§5.8.3 for the residual
anomalies a release ships with to be evaluated and recorded. The matrix puts
these together from the release's entries (`ledger.compliance.facts.Facts`):

- the requirements are those of the baseline in force (the release's newest
  `requirements` entry), as its `groups` list them: what the policy's rules read;
- a test run counts when its statement's subjects include a candidate's digest
  (the artifacts the release ships: `ledger.compliance.facts.candidates`), and
  it counts with its `requirements` results only (a run without them traces
  nothing). Every such run counts, re-runs included, exactly as the rule
  tests.passed counts them (`ledger.compliance.checks.check_tests`): a failed
  case stays in the record, and a later passing run does not erase it. To ship
  with it, record an anomaly that dispositions it;
- an anomaly record dispositions the failed and skipped cases of the
  requirements it names in the test runs recorded BEFORE it (a lower index): a
  disposition evaluates results that exist, so a run recorded after it, even
  one failing the same way, has not been evaluated and needs its own record.

Status of a requirement on one candidate: `failed` when a counted case failed;
else `incomplete` when one was skipped; else `verified` when one passed; else
`not-verified` (no counted case names it). With several candidates a row takes
the worst status over them, in the order of `STATUSES` (failed, not-verified,
incomplete, verified). `dispositioned` is true when every counted run with a
failed or skipped case of the requirement has a later anomaly record naming it
(vacuously true when there is none).

Ids are compared exactly as written. A requirement id a counted run reports
that the baseline lacks (a typo, another case, or a requirement dropped from
the baseline) is listed under `unknown` with the runs reporting it; without a
baseline every reported id is. The full baseline (titles, and which risk
controls each requirement implements) is a stored file, not in the entry: the
caller may pass it (`baseline`) when it has it; without it titles are None and
the risk-control links empty. Rows, tests, ids and entries are sorted, so equal
inputs give equal bytes (`encode_matrix`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec

from ledger.compliance.facts import Facts, Item, candidates, collect, scoped_deployments
from ledger.errors import InputError
from ledger.records import predicates as p
from ledger.records.policy import Policy
from ledger.records.requirements import Baseline, encode_baseline
from ledger.rules.events import Event

__all__ = [
    "STATUSES",
    "BaselineRef",
    "MatrixSummary",
    "TraceRow",
    "TraceStatus",
    "TraceTest",
    "TraceabilityMatrix",
    "UnknownRequirement",
    "counted_runs",
    "dispositioning",
    "encode_matrix",
    "release_matrix",
    "results_by_requirement",
    "status_on",
    "traceability_matrix",
]

TraceStatus = Literal["failed", "not-verified", "incomplete", "verified"]
STATUSES: tuple[TraceStatus, ...] = ("failed", "not-verified", "incomplete", "verified")  # worst first


class BaselineRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The requirements baseline in force: its entry, document and the digest of its canonical file."""

    entry: int
    document_id: str
    document_version: str
    baseline_digest: str


class TraceTest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One counted test run's cases verifying one requirement (its `requirements` result)."""

    entry: int
    suite: str
    candidates: list[str]  # the candidate digests the run is about
    passed: int
    failed: int
    skipped: int
    failing_tests: list[str]  # up to 20 failed or skipped cases, as the run names them


class TraceRow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One requirement of the baseline in force, its verification on the candidates and its status.

    `implements`: the risk-control requirements it implements; `implemented_by`: for a risk
    control, the requirements implementing it (both empty without the full baseline).
    `anomalies`: the entries of anomaly records naming it, in index order.
    """

    id: str
    type: p.RequirementType
    risk_class: p.RiskClass | None
    title: str | None
    implements: list[str]
    implemented_by: list[str]
    tests: list[TraceTest]
    passed: int
    failed: int
    skipped: int
    anomalies: list[int]
    status: TraceStatus
    dispositioned: bool


class UnknownRequirement(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A requirement id counted test runs report that the baseline in force lacks, with those runs."""

    id: str
    entries: list[int]


class MatrixSummary(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How many rows have each status, how many are not dispositioned, and how many ids are unknown."""

    requirements: int
    verified: int
    failed: int
    incomplete: int
    not_verified: int = msgspec.field(name="not-verified")
    undispositioned: int = 0
    unknown: int = 0


class TraceabilityMatrix(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A release's traceability matrix (IEC 62304 §5.7, §7.3.3): rows sorted by requirement id."""

    release: p.Release | None
    baseline: BaselineRef | None
    candidates: list[str]
    rows: list[TraceRow]
    unknown: list[UnknownRequirement]
    summary: MatrixSummary


_encoder = msgspec.json.Encoder()


def counted_runs(facts: Facts, digests: Iterable[str]) -> list[Item[p.TestRun]]:
    """The test runs about any of `digests` (their subjects include it), in index order; re-runs included.

    Precondition: `digests` are `sha256:<hex>` in lower case, as candidates are.
    """
    wanted = set(digests)
    return [t for t in facts.tests if wanted & set(t.event.subjects)]


def results_by_requirement(run: Item[p.TestRun]) -> dict[str, p.RequirementResult]:
    """A run's results by requirement id; a requirement listed twice counts once, its cases added up."""
    merged: dict[str, p.RequirementResult] = {}
    for result in run.pred.requirements or []:
        before = merged.get(result.requirement)
        merged[result.requirement] = (
            result
            if before is None
            else p.RequirementResult(
                result.requirement,
                before.passed + result.passed,
                before.failed + result.failed,
                before.skipped + result.skipped,
                sorted({*before.failing_tests, *result.failing_tests}),
            )
        )
    return merged


def status_on(results: Iterable[p.RequirementResult]) -> TraceStatus:
    """The status of one requirement on one candidate from its counted results (module docstring)."""
    listed = list(results)
    if any(r.failed > 0 for r in listed):
        return "failed"
    if any(r.skipped > 0 for r in listed):
        return "incomplete"
    if any(r.passed > 0 for r in listed):
        return "verified"
    return "not-verified"


def dispositioning(facts: Facts, requirement: str, run_index: int) -> list[int]:
    """Entries of the anomaly records that disposition `requirement`'s cases in the run at `run_index`.

    Those naming the requirement and recorded after the run (a higher index): IEC 62304 §5.8.2
    asks each residual anomaly to be evaluated, which a record made before the result cannot do.
    """
    return [a.index for a in facts.anomalies if a.index > run_index and requirement in a.pred.requirements]


def _baseline_ref(item: Item[p.Requirements]) -> BaselineRef:
    pred = item.pred
    return BaselineRef(item.index, pred.document_id, pred.document_version, pred.baseline_digest)


def _checked_baseline(facts: Facts, baseline: Baseline | None) -> Baseline | None:
    """The caller's full baseline, once it is shown to be the one in force (its digest is the entry's)."""
    if baseline is None:
        return None
    if facts.baseline is None:
        raise InputError("a requirements baseline was given, but the release records none")
    digest = "sha256:" + hashlib.sha256(encode_baseline(baseline)).hexdigest()
    if digest != facts.baseline.pred.baseline_digest:
        raise InputError(
            f"the requirements baseline given ({digest}) is not the one in force at entry "
            f"{facts.baseline.index} ({facts.baseline.pred.baseline_digest})"
        )
    return baseline


def _worst(statuses: Iterable[TraceStatus]) -> TraceStatus:
    return min(statuses, key=STATUSES.index, default="not-verified")


def traceability_matrix(
    facts: Facts, candidate_digests: Sequence[str], baseline: Baseline | None = None
) -> TraceabilityMatrix:
    """The traceability matrix of the release in `facts`, on the candidates `candidate_digests`.

    Preconditions: `facts` come from `collect`; `candidate_digests` are the candidates'
    `sha256:<hex>` digests in lower case (`ledger.compliance.facts.candidates`; empty before
    any build, then every row is not-verified); `baseline`, when given, is the full baseline
    the release's newest requirements entry names (its canonical encoding hashes to that
    entry's `baseline_digest`), else InputError. Deterministic: see the module docstring.
    """
    full = _checked_baseline(facts, baseline)
    digests = sorted(set(candidate_digests))
    runs = counted_runs(facts, digests)
    results = [(run, results_by_requirement(run)) for run in runs]
    in_force = facts.baseline
    groups = in_force.pred.groups if in_force is not None else []
    listed = {i: (g.type, g.risk_class) for g in groups for i in g.ids}
    titles = {r.id: r for r in full.requirements} if full is not None else {}
    implemented_by: dict[str, list[str]] = {}
    for requirement in full.requirements if full is not None else []:
        for control in requirement.implements:
            implemented_by.setdefault(control, []).append(requirement.id)
    rows = []
    for requirement_id in sorted(listed):
        kind, risk = listed[requirement_id]
        mine = [(run, found[requirement_id]) for run, found in results if requirement_id in found]
        known = titles.get(requirement_id)
        rows.append(
            TraceRow(
                id=requirement_id,
                type=kind,
                risk_class=risk,
                title=known.title if known is not None else None,
                implements=list(known.implements) if known is not None else [],
                implemented_by=sorted(implemented_by.get(requirement_id, [])),
                tests=[_trace_test(run, r, digests) for run, r in mine],
                passed=sum(r.passed for _, r in mine),
                failed=sum(r.failed for _, r in mine),
                skipped=sum(r.skipped for _, r in mine),
                anomalies=[a.index for a in facts.anomalies if requirement_id in a.pred.requirements],
                status=_worst(status_on(r for run, r in mine if run.about(d)) for d in digests),
                dispositioned=all(
                    dispositioning(facts, requirement_id, run.index)
                    for run, r in mine
                    if r.failed + r.skipped > 0
                ),
            )
        )
    reported: dict[str, set[int]] = {}
    for run, found in results:
        for requirement_id in found:
            if requirement_id not in listed:
                reported.setdefault(requirement_id, set()).add(run.index)
    unknown = [UnknownRequirement(i, sorted(reported[i])) for i in sorted(reported)]
    return TraceabilityMatrix(
        release=facts.release,
        baseline=_baseline_ref(in_force) if in_force is not None else None,
        candidates=digests,
        rows=rows,
        unknown=unknown,
        summary=_summary(rows, len(unknown)),
    )


def _trace_test(run: Item[p.TestRun], result: p.RequirementResult, digests: Sequence[str]) -> TraceTest:
    return TraceTest(
        entry=run.index,
        suite=run.pred.suite,
        candidates=[d for d in digests if run.about(d)],
        passed=result.passed,
        failed=result.failed,
        skipped=result.skipped,
        failing_tests=sorted(result.failing_tests),
    )


def _summary(rows: Sequence[TraceRow], unknown: int) -> MatrixSummary:
    count = {status: sum(1 for row in rows if row.status == status) for status in STATUSES}
    return MatrixSummary(
        requirements=len(rows),
        verified=count["verified"],
        failed=count["failed"],
        incomplete=count["incomplete"],
        not_verified=count["not-verified"],
        undispositioned=sum(1 for row in rows if not row.dispositioned),
        unknown=unknown,
    )


def release_matrix(
    events: Sequence[Event], policy: Policy, *, environment: str | None, baseline: Baseline | None = None
) -> TraceabilityMatrix:
    """The matrix of the release `events` name, on the candidates `evaluate` checks the rules against.

    Preconditions as `ledger.compliance.evaluate.evaluate` (the release's events; the policy
    in force, whose continuity environments decide, with `environment`, which deployments make
    the candidates) and `traceability_matrix` (`baseline`).
    """
    facts = collect(events)
    deployed = scoped_deployments(facts, policy, environment)
    return traceability_matrix(facts, [c.digest for c in candidates(facts, deployed)], baseline)


def encode_matrix(matrix: TraceabilityMatrix) -> bytes:
    """The matrix as JSON, fields in declaration order: equal matrices give equal bytes."""
    return _encoder.encode(matrix)
