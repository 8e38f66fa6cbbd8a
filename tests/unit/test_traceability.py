"""The traceability matrix (ledger.compliance.traceability) and a baseline's groups (baseline_groups).

The matrix is computed from a release's entries only: the newest requirements entry gives
the rows (its groups), the test runs on the candidate give each row's tests and status, and
anomaly records disposition failed and skipped cases recorded before them. The full
baseline, when the caller has it, adds titles and risk-control links. Each test builds a
small release and checks rows, statuses and entries exactly.
"""

from __future__ import annotations

import hashlib
import json
import random

import msgspec
import pytest
from compliance_support import (
    CI,
    D1,
    D2,
    POLICY,
    REL,
    Step,
    build,
    change,
    deployment,
    events,
    gate_decision,
    index_of,
)
from test_policy_rules_traceability import anomaly, result, traced_run

from ledger.compliance.facts import candidates, collect
from ledger.compliance.traceability import (
    STATUSES,
    BaselineRef,
    MatrixSummary,
    TraceabilityMatrix,
    TraceRow,
    TraceTest,
    UnknownRequirement,
    encode_matrix,
    release_matrix,
    status_on,
    traceability_matrix,
)
from ledger.errors import InputError
from ledger.records import predicates as p
from ledger.records.requirements import Baseline, baseline_groups, encode_baseline, parse_baseline

SOURCE = "sha256:" + "5e" * 32
BASELINE = parse_baseline(
    json.dumps(
        {
            "document": {"id": "SRS-ANALYZER", "version": "3"},
            "requirements": [
                {"id": "SYS-1", "title": "Report results", "type": "system", "risk_class": "high"},
                {"id": "SRS-1", "title": "Round half up", "type": "software", "risk_class": "high",
                 "implements": ["RC-1"]},
                {"id": "SRS-2", "title": "Flag borderline", "type": "software", "risk_class": "high",
                 "implements": ["RC-1", "RC-2"]},
                {"id": "SRS-3", "title": "UI text", "type": "software", "risk_class": "low"},
                {"id": "SRS-4", "title": "Log format", "type": "software"},
                {"id": "RC-1", "title": "Borderline results are flagged", "type": "risk-control"},
                {"id": "RC-2", "title": "Results are double-checked", "type": "risk-control",
                 "risk_class": "high"},
            ],
        }
    ).encode()
)  # fmt: skip
DIGEST = "sha256:" + hashlib.sha256(encode_baseline(BASELINE)).hexdigest()


def requirements(baseline: Baseline = BASELINE, digest: str = DIGEST) -> Step:
    pred = p.Requirements(REL, baseline.document_id, baseline.document_version, baseline_groups(baseline),
                          digest, SOURCE)  # fmt: skip
    return CI, pred, (SOURCE,)


UNIT = traced_run(result("SRS-1"), result("SRS-3"), result("SRS-99"), result("SYS-1"), suite="unit")
SYSTEM = traced_run(result("SRS-2", passed=3, failed=1), result("RC-1", passed=2), result("SRS-3", skipped=1))
ON_D2 = traced_run(result("RC-2"), result("SRS-77"), suite="integration", digest=D2)


def release() -> list[Step]:
    """Change, build of D1, the baseline, two runs on D1 and one on D2, an anomaly for SRS-2."""
    return [change(), build(), requirements(), UNIT, SYSTEM, ON_D2, anomaly("SRS-2")]


def matrix(steps: list[Step], baseline: Baseline | None = None) -> TraceabilityMatrix:
    facts = collect(events(steps))
    return traceability_matrix(facts, [c.digest for c in candidates(facts, [])], baseline)


def row(found: TraceabilityMatrix, requirement: str) -> TraceRow:
    (match,) = [r for r in found.rows if r.id == requirement]
    return match


# --- baseline_groups ---------------------------------------------------------------------------------


def test_groups_come_by_type_then_class_none_first_ids_sorted() -> None:
    assert baseline_groups(BASELINE) == [
        p.RequirementGroup("system", "high", ["SYS-1"]),
        p.RequirementGroup("software", None, ["SRS-4"]),
        p.RequirementGroup("software", "low", ["SRS-3"]),
        p.RequirementGroup("software", "high", ["SRS-1", "SRS-2"]),
        p.RequirementGroup("risk-control", None, ["RC-1"]),
        p.RequirementGroup("risk-control", "high", ["RC-2"]),
    ]


def test_groups_do_not_depend_on_the_order_requirements_are_listed() -> None:
    reordered = msgspec.structs.replace(BASELINE, requirements=BASELINE.requirements[::-1])
    assert baseline_groups(reordered) == baseline_groups(BASELINE)
    groups = baseline_groups(BASELINE)
    assert sorted(i for g in groups for i in g.ids) == sorted(r.id for r in BASELINE.requirements)


# --- statuses ----------------------------------------------------------------------------------------


def test_each_status_follows_from_the_counted_cases() -> None:
    found = matrix(release())
    statuses = {r.id: (r.status, r.dispositioned) for r in found.rows}
    assert statuses == {
        "RC-1": ("verified", True),
        "RC-2": ("not-verified", True),  # its passing run is on another artifact
        "SRS-1": ("verified", True),
        "SRS-2": ("failed", True),  # the anomaly after the run dispositions it
        "SRS-3": ("incomplete", False),  # a skipped case, and no anomaly names it
        "SRS-4": ("not-verified", True),
        "SYS-1": ("verified", True),
    }
    assert [r.id for r in found.rows] == sorted(statuses)
    assert found.summary == MatrixSummary(
        requirements=7, verified=3, failed=1, incomplete=1, not_verified=2, undispositioned=1, unknown=1
    )


def test_a_row_names_its_tests_totals_and_anomalies() -> None:
    steps = release()
    found = matrix(steps)
    unit, system, note = index_of(steps, UNIT), index_of(steps, SYSTEM), index_of(steps, anomaly("SRS-2"))
    assert row(found, "SRS-2") == TraceRow(
        id="SRS-2", type="software", risk_class="high", title=None, implements=[], implemented_by=[],
        tests=[TraceTest(system, "system", [D1], 3, 1, 0, ["tests.test_calc::test_srs-2"])],
        passed=3, failed=1, skipped=0, anomalies=[note], status="failed", dispositioned=True,
    )  # fmt: skip
    srs3 = row(found, "SRS-3")
    assert [(t.entry, t.passed, t.skipped) for t in srs3.tests] == [(unit, 1, 0), (system, 1, 1)]
    assert (srs3.passed, srs3.failed, srs3.skipped) == (2, 0, 1)
    assert found.unknown == [UnknownRequirement("SRS-99", [unit])]  # SRS-77 is reported on D2 only
    assert found.baseline == BaselineRef(index_of(steps, requirements()), "SRS-ANALYZER", "3", DIGEST)
    assert found.candidates == [D1]
    assert found.release == REL


def test_an_anomaly_before_the_run_does_not_disposition_it() -> None:
    steps = [change(), build(), requirements(), anomaly("SRS-2"), SYSTEM]
    srs2 = row(matrix(steps), "SRS-2")
    assert (srs2.status, srs2.dispositioned) == ("failed", False)
    assert srs2.anomalies == [index_of(steps, anomaly("SRS-2"))]  # listed, but it came first


def test_a_passing_rerun_does_not_erase_a_failure() -> None:
    rerun = traced_run(result("SRS-2", passed=4), suite="system")
    steps = [change(), build(), requirements(), SYSTEM, rerun]
    srs2 = row(matrix(steps), "SRS-2")
    assert srs2.status == "failed"
    assert [t.entry for t in srs2.tests] == [index_of(steps, SYSTEM), index_of(steps, rerun)]


def test_status_precedence_on_one_candidate() -> None:
    assert status_on([]) == "not-verified"
    assert status_on([result("R", passed=0)]) == "not-verified"  # named, but no case counted
    assert status_on([result("R")]) == "verified"
    assert status_on([result("R"), result("R", passed=0, skipped=1)]) == "incomplete"
    assert status_on([result("R", skipped=1), result("R", failed=1)]) == "failed"
    assert STATUSES == ("failed", "not-verified", "incomplete", "verified")


def test_a_requirement_listed_twice_in_a_run_counts_once_with_its_cases_added() -> None:
    twice = traced_run(result("SRS-1"), result("SRS-1", passed=2, failed=1))
    steps = [change(), build(), requirements(), twice]
    (test,) = row(matrix(steps), "SRS-1").tests
    assert (test.passed, test.failed, test.skipped) == (3, 1, 0)
    assert test.failing_tests == ["tests.test_calc::test_srs-1"]


# --- candidates --------------------------------------------------------------------------------------


def test_with_two_candidates_a_row_takes_its_worst_status() -> None:
    artifacts = [p.Artifact("analyzer.tar", D1), p.Artifact("analyzer-arm.tar", D2)]
    both = (CI, p.Build(REL, "git.example/analyzer", "c0ffee", "b-2", "ci", artifacts), (D1, D2))
    steps = [change(), both, requirements(), UNIT, traced_run(result("SRS-1"), result("SYS-1"), digest=D2)]
    found = matrix(steps)
    assert found.candidates == [D1, D2]
    assert row(found, "SRS-1").status == "verified"  # passed on both
    assert row(found, "SRS-3").status == "not-verified"  # passed on D1 only
    assert [t.candidates for t in row(found, "SRS-1").tests] == [[D1], [D2]]


def test_before_any_build_every_row_is_not_verified() -> None:
    found = matrix([change(), requirements()])
    assert found.candidates == []
    assert {r.status for r in found.rows} == {"not-verified"}


def test_the_release_matrix_is_on_the_deployed_digest() -> None:
    steps = [change(), build(), requirements(), UNIT, build(D2), gate_decision(), deployment()]
    deployed = release_matrix(events(steps), POLICY, environment=None)
    assert deployed.candidates == [D1]  # deployed to production, though D2 was built last
    assert row(deployed, "SRS-1").status == "verified"
    latest = release_matrix(events(steps[:-2]), POLICY, environment=None)
    assert latest.candidates == [D2]
    assert row(latest, "SRS-1").status == "not-verified"


# --- the baseline ------------------------------------------------------------------------------------


def test_the_full_baseline_adds_titles_and_risk_control_links() -> None:
    found = matrix(release(), BASELINE)
    assert row(found, "SRS-2").title == "Flag borderline"
    assert row(found, "SRS-2").implements == ["RC-1", "RC-2"]
    assert row(found, "RC-1").implemented_by == ["SRS-1", "SRS-2"]
    assert row(found, "RC-2").implemented_by == ["SRS-2"]
    assert row(found, "SYS-1").implemented_by == []
    bare = matrix(release())
    assert [
        msgspec.structs.replace(r, title=None, implements=[], implemented_by=[]) for r in found.rows
    ] == bare.rows


def test_a_baseline_that_is_not_the_one_in_force_is_refused() -> None:
    other = msgspec.structs.replace(BASELINE, document_version="4")
    with pytest.raises(InputError, match="not the one in force"):
        matrix(release(), other)
    with pytest.raises(InputError, match="records none"):
        matrix([change(), build(), UNIT], BASELINE)


def test_the_newest_baseline_is_in_force() -> None:
    smaller = Baseline("SRS-ANALYZER", "2", [r for r in BASELINE.requirements if r.id != "SRS-2"])
    older = requirements(smaller, "sha256:" + hashlib.sha256(encode_baseline(smaller)).hexdigest())
    steps = [change(), build(), requirements(), older, SYSTEM]
    found = matrix(steps, smaller)
    assert found.baseline is not None
    assert (found.baseline.entry, found.baseline.document_version) == (index_of(steps, older), "2")
    assert "SRS-2" not in [r.id for r in found.rows]
    assert found.unknown == [UnknownRequirement("SRS-2", [index_of(steps, SYSTEM)])]


def test_without_a_baseline_every_reported_id_is_unknown() -> None:
    steps = [change(), build(), UNIT, SYSTEM]
    found = matrix(steps)
    assert (found.baseline, found.rows) == (None, [])
    assert [u.id for u in found.unknown] == ["RC-1", "SRS-1", "SRS-2", "SRS-3", "SRS-99", "SYS-1"]
    assert row_entries(found, "SRS-3") == [index_of(steps, UNIT), index_of(steps, SYSTEM)]


def row_entries(found: TraceabilityMatrix, requirement: str) -> list[int]:
    (match,) = [u for u in found.unknown if u.id == requirement]
    return match.entries


# --- encoding ----------------------------------------------------------------------------------------


def test_the_matrix_is_deterministic_and_serialises_to_json() -> None:
    steps = release()
    shuffled = events(steps)
    random.Random(3).shuffle(shuffled)  # noqa: S311 - a fixed shuffle, not cryptography
    again = collect(shuffled)
    assert encode_matrix(traceability_matrix(again, [D1], BASELINE)) == encode_matrix(matrix(steps, BASELINE))
    data = json.loads(encode_matrix(matrix(steps, BASELINE)))
    assert list(data) == ["release", "baseline", "candidates", "rows", "unknown", "summary"]
    assert data["summary"]["not-verified"] == 2
    assert data["rows"][0]["id"] == "RC-1"
    assert msgspec.json.decode(encode_matrix(matrix(steps)), type=TraceabilityMatrix) == matrix(steps)
