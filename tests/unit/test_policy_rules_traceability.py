"""Rules sbom.required, requirements.coverage, anomalies.dispositioned and change.component-risk.

Each rule is switched on by a policy setting (a tier's `require_sbom`, `coverage`,
`require_anomaly_disposition`; the `[classification]` table). The reference release
(compliance_support.compliant_steps) is compliant under the example policy, which leaves
them all out; each test adds the setting to the high tier (or the table) and the evidence,
and checks that exactly the expected finding appears, with its status and entries, or that
none does. A policy without the settings evaluates exactly as before, whatever traceability
evidence the release records.
"""

from __future__ import annotations

import re

import msgspec
import pytest
from compliance_support import (
    CI,
    D1,
    D2,
    EXAMPLE,
    FIRST,
    MONTH,
    POLICY,
    REL,
    RITA,
    WEEK,
    Step,
    at,
    build,
    change,
    compliant_steps,
    deployed_steps,
    exception,
    index_of,
    only,
    rules,
    run,
)

from ledger.compliance.evaluate import ComplianceResult
from ledger.errors import EncodingError
from ledger.records import policy as pol
from ledger.records import predicates as p

SBOM, COVERAGE, ANOMALIES, COMPONENTS = (
    pol.SBOM_REQUIRED,
    pol.REQUIREMENTS_COVERAGE,
    pol.ANOMALIES_DISPOSITIONED,
    pol.CHANGE_COMPONENT_RISK,
)
NEW_RULES = {SBOM, COVERAGE, ANOMALIES, COMPONENTS}
FILE = "sha256:" + "f0" * 32
GROUPS = [
    p.RequirementGroup("system", "high", ["SYS-1"]),
    p.RequirementGroup("software", "low", ["SRS-3"]),
    p.RequirementGroup("software", "high", ["SRS-1", "SRS-2"]),
    p.RequirementGroup("risk-control", None, ["RC-1"]),
]
SELECTED = ("RC-1", "SRS-1", "SRS-2")  # software and risk-control, of class medium, high or unclassified


# --- evidence builders -------------------------------------------------------------------------------


def sbom(digest: str = D1) -> Step:
    pred = p.Sbom(REL, "CycloneDX", "1.5", ["cyclonedx-py"], 12, p.SoupGaps(0, 1, 0), FILE, FILE)
    return CI, pred, (digest,)


def baseline(groups: list[p.RequirementGroup] = GROUPS, digest: str = FILE, version: str = "3") -> Step:
    pred = p.Requirements(REL, "SRS-ANALYZER", version, groups, digest, FILE)
    return CI, pred, (FILE,)


def result(requirement: str, passed: int = 1, failed: int = 0, skipped: int = 0) -> p.RequirementResult:
    failing = [f"tests.test_calc::test_{requirement.lower()}"] if failed + skipped else []
    return p.RequirementResult(requirement, passed, failed, skipped, failing)


def traced_run(*results: p.RequirementResult, suite: str = "system", digest: str = D1) -> Step:
    """A test run of `suite` on `digest` with per-requirement results (failed when a case failed)."""
    failed = sum(r.failed for r in results)
    skipped = sum(r.skipped for r in results)
    passed = sum(r.passed for r in results)
    pred = p.TestRun(
        REL, suite, f"make {suite}", "c0ffee", "ci", passed, failed, skipped,  # type: ignore[arg-type]
        "failed" if failed else "passed", requirements=list(results),
    )  # fmt: skip
    return CI, pred, (digest,)


def anomaly(*requirements: str, anomaly_id: str = "ANOM-1") -> Step:
    pred = p.Anomaly(
        REL, anomaly_id, "rounding differs in the 4th decimal", list(requirements),
        "below the reporting precision; no clinical effect", "fix scheduled for 2.4.1",
    )  # fmt: skip
    return RITA, pred, (D1,)


def evidenced(*extra: Step) -> list[Step]:
    """The reference release with `extra` recorded before its approvals (they approve what came first)."""
    steps = compliant_steps()
    return [*steps[:-4], *extra, *steps[-4:]]


ALL_PASS = traced_run(*(result(i) for i in (*SELECTED, "SRS-3", "SYS-1")))


# --- policies ----------------------------------------------------------------------------------------


def high_tier(**settings: object) -> pol.Policy:
    """The example policy with `settings` added to its high tier."""
    tier = msgspec.structs.replace(POLICY.tier("high"), **settings)
    return msgspec.structs.replace(POLICY, tiers=msgspec.structs.replace(POLICY.tiers, high=tier))


def allowing(policy: pol.Policy, rule: str) -> pol.Policy:
    rules_ = [*policy.exceptions.allowed_rules, rule]
    return msgspec.structs.replace(
        policy, exceptions=msgspec.structs.replace(policy.exceptions, allowed_rules=rules_)
    )


SBOM_POLICY = high_tier(require_sbom=True)
COVERAGE_POLICY = high_tier(
    coverage=pol.Coverage(["software", "risk-control"], ["medium", "high", "unclassified"])
)
ANOMALY_POLICY = high_tier(require_anomaly_disposition=True)
CLASSIFIED = msgspec.structs.replace(
    POLICY, classification=pol.Classification({"Result Calculator": "high", "report-renderer": "medium"})
)


def message(result_: ComplianceResult, rule: str) -> str:
    found = [f.message for f in result_.findings if f.rule == rule]
    assert len(found) == 1, found
    return found[0]


# --- sbom.required -----------------------------------------------------------------------------------


def test_an_sbom_of_the_candidate_is_compliant() -> None:
    result_ = run(evidenced(sbom()), policy=SBOM_POLICY)
    assert result_.status == "compliant", result_.findings


def test_no_sbom_is_missing_naming_the_build() -> None:
    result_ = run(compliant_steps(), policy=SBOM_POLICY)
    assert result_.status == "incomplete"
    assert rules(result_) == {SBOM}
    assert only(result_, SBOM) == ("missing", [FIRST + 1])
    assert message(result_, SBOM) == f"no SBOM recorded for analyzer.tar ({D1}); the tier requires one"


def test_an_sbom_of_another_artifact_does_not_count() -> None:
    steps = evidenced(sbom(D2))
    result_ = run(steps, policy=SBOM_POLICY)
    assert only(result_, SBOM) == ("missing", [FIRST + 1])
    assert f"the SBOMs at entries {index_of(steps, sbom(D2))} describe other artifacts" in message(
        result_, SBOM
    )


def test_an_sbom_of_an_earlier_build_does_not_count_for_a_rebuild() -> None:
    steps = evidenced(sbom(), build(D2))
    result_ = run(steps, policy=SBOM_POLICY)
    assert [c.digest for c in result_.candidates] == [D2]
    assert only(result_, SBOM) == ("missing", [index_of(steps, build(D2))])


def test_no_build_yet_is_missing_without_entries() -> None:
    result_ = run([change()], policy=SBOM_POLICY)
    assert only(result_, SBOM) == ("missing", [])


def test_a_lower_tier_without_the_setting_needs_no_sbom() -> None:
    result_ = run([change("low"), *compliant_steps()[1:]], policy=SBOM_POLICY)
    assert SBOM not in rules(result_)


def test_an_exception_the_policy_allows_waives_a_missing_sbom() -> None:
    steps = [*compliant_steps(), exception(SBOM, at(WEEK), at(MONTH))]
    result_ = run(steps, policy=allowing(SBOM_POLICY, SBOM))
    assert result_.status == "compliant", result_.findings
    (waived,) = result_.findings
    assert (waived.rule, waived.status, waived.waived_by) == (SBOM, "waived", index_of(steps, steps[-1]))
    not_allowed = run(steps, policy=SBOM_POLICY)
    assert rules(not_allowed) == {SBOM, pol.EXCEPTION_VALID}


# --- requirements.coverage ---------------------------------------------------------------------------


def test_every_selected_requirement_passing_on_the_candidate_is_compliant() -> None:
    only_selected = traced_run(*(result(i) for i in SELECTED))  # SRS-3 (low) and SYS-1 (system): not selected
    result_ = run(evidenced(baseline(), only_selected), policy=COVERAGE_POLICY)
    assert result_.status == "compliant", result_.findings


def test_an_unverified_requirement_is_missing_naming_the_baseline() -> None:
    steps = evidenced(baseline(), traced_run(result("SRS-1"), result("SRS-2")))
    result_ = run(steps, policy=COVERAGE_POLICY)
    assert result_.status == "incomplete"
    assert rules(result_) == {COVERAGE}
    assert only(result_, COVERAGE) == ("missing", [index_of(steps, baseline())])
    entry = index_of(steps, baseline())
    assert message(result_, COVERAGE) == (
        "1 of the 3 software, risk-control requirements of risk medium, high, unclassified in the baseline "
        f"SRS-ANALYZER 3 (entry {entry}) have no passing test on analyzer.tar ({D1}): RC-1"
    )


def test_a_requirement_with_only_skipped_or_failed_cases_is_not_covered() -> None:
    run_ = traced_run(
        result("SRS-1"), result("SRS-2", passed=0, failed=1), result("RC-1", passed=0, skipped=2)
    )
    steps = evidenced(baseline(), run_)
    result_ = run(steps, policy=COVERAGE_POLICY)
    assert only(result_, COVERAGE) == ("missing", [index_of(steps, baseline()), index_of(steps, run_)])
    assert message(result_, COVERAGE).endswith(": RC-1, SRS-2")
    assert pol.TESTS_PASSED in rules(result_)  # the failed case is tests.passed's finding too


def test_a_pass_in_any_run_on_the_candidate_covers_a_requirement() -> None:
    first = traced_run(result("SRS-1"), result("SRS-2"), suite="unit")
    second = traced_run(result("RC-1", passed=1, skipped=1), suite="integration")
    result_ = run(evidenced(baseline(), first, second), policy=COVERAGE_POLICY)
    assert COVERAGE not in rules(result_)


def test_coverage_without_a_baseline_is_missing() -> None:
    result_ = run(evidenced(ALL_PASS), policy=COVERAGE_POLICY)
    assert only(result_, COVERAGE) == ("missing", [])
    assert message(result_, COVERAGE).startswith("no requirements baseline recorded for this release")


def test_coverage_without_a_build_is_missing() -> None:
    result_ = run([change(), baseline()], policy=COVERAGE_POLICY)
    assert only(result_, COVERAGE) == ("missing", [])


def test_tests_on_another_artifact_do_not_cover_the_candidate() -> None:
    steps = evidenced(baseline(), traced_run(*(result(i) for i in SELECTED), digest=D2))
    result_ = run(steps, policy=COVERAGE_POLICY)
    assert only(result_, COVERAGE) == ("missing", [index_of(steps, baseline())])
    assert message(result_, COVERAGE).startswith("3 of the 3 ")


def test_the_newest_baseline_is_in_force() -> None:
    older = baseline([*GROUPS, p.RequirementGroup("software", "medium", ["SRS-9"])], version="2")
    newer = baseline()
    passing = traced_run(*(result(i) for i in SELECTED))
    assert COVERAGE in rules(run(evidenced(newer, older, passing), policy=COVERAGE_POLICY))
    assert COVERAGE not in rules(run(evidenced(older, newer, passing), policy=COVERAGE_POLICY))


def test_unclassified_requirements_count_only_when_listed() -> None:
    policy = high_tier(coverage=pol.Coverage(["software", "risk-control"], ["medium", "high"]))
    steps = evidenced(baseline(), traced_run(result("SRS-1"), result("SRS-2")))
    assert COVERAGE not in rules(run(steps, policy=policy))  # RC-1 has no risk class


@pytest.mark.parametrize(
    "coverage",
    [pol.Coverage([], ["high"]), pol.Coverage(["software"], [])],
    ids=["no-type", "no-class"],
)
def test_an_empty_selection_requires_nothing(coverage: pol.Coverage) -> None:
    result_ = run(compliant_steps(), policy=high_tier(coverage=coverage))  # no baseline either
    assert result_.status == "compliant", result_.findings


def test_a_long_list_of_uncovered_requirements_is_cut_in_the_message() -> None:
    ids = [f"SRS-{n:02d}" for n in range(25)]
    steps = evidenced(baseline([p.RequirementGroup("software", "high", ids)]))
    text = message(run(steps, policy=COVERAGE_POLICY), COVERAGE)
    assert text.endswith(": " + ", ".join(ids[:20]) + " and 5 more")


# --- anomalies.dispositioned -------------------------------------------------------------------------

FAILING = traced_run(result("SRS-1"), result("SRS-2", passed=2, failed=1))


def test_a_failed_requirement_without_an_anomaly_record_fails_naming_the_run() -> None:
    steps = evidenced(FAILING)
    result_ = run(steps, policy=ANOMALY_POLICY)
    assert result_.status == "non-compliant"
    assert rules(result_) == {ANOMALIES, pol.TESTS_PASSED}
    assert only(result_, ANOMALIES) == ("fail", [index_of(steps, FAILING)])
    assert message(result_, ANOMALIES) == (
        f"system test run (entry {index_of(steps, FAILING)}) on {D1} has failed or skipped cases of "
        "requirements no later anomaly record dispositions: SRS-2 (1 failed, 0 skipped)"
    )


def test_a_later_anomaly_record_dispositions_it() -> None:
    result_ = run(evidenced(FAILING, anomaly("SRS-2")), policy=ANOMALY_POLICY)
    assert ANOMALIES not in rules(result_)
    assert rules(result_) == {pol.TESTS_PASSED}  # the failure itself still counts there


def test_an_anomaly_record_before_the_run_does_not_count() -> None:
    steps = evidenced(anomaly("SRS-2"), FAILING)
    result_ = run(steps, policy=ANOMALY_POLICY)
    assert only(result_, ANOMALIES) == ("fail", [index_of(steps, FAILING)])
    assert f"the anomaly records at entries {index_of(steps, anomaly('SRS-2'))} came before" in message(
        result_, ANOMALIES
    )


def test_an_anomaly_naming_another_requirement_does_not_count() -> None:
    steps = evidenced(FAILING, anomaly("SRS-1"))
    assert only(run(steps, policy=ANOMALY_POLICY), ANOMALIES) == ("fail", [index_of(steps, FAILING)])


def test_skipped_cases_need_a_disposition_too() -> None:
    skipping = traced_run(result("SRS-1"), result("RC-1", passed=0, skipped=1))
    steps = evidenced(skipping)
    result_ = run(steps, policy=ANOMALY_POLICY)
    assert rules(result_) == {ANOMALIES}  # a skipped case is no failed test for tests.passed
    assert only(result_, ANOMALIES) == ("fail", [index_of(steps, skipping)])
    assert run([*steps, anomaly("RC-1")], policy=ANOMALY_POLICY).status == "compliant"


def test_a_rerun_failing_after_the_disposition_needs_its_own() -> None:
    rerun = traced_run(result("SRS-2", passed=0, failed=1), suite="regression")
    steps = evidenced(FAILING, anomaly("SRS-2"), rerun)
    result_ = run(steps, policy=ANOMALY_POLICY)
    assert only(result_, ANOMALIES) == ("fail", [index_of(steps, rerun)])
    again = run([*steps, anomaly("SRS-2", anomaly_id="ANOM-2")], policy=ANOMALY_POLICY)
    assert ANOMALIES not in rules(again)


def test_a_later_passing_run_does_not_erase_a_failure() -> None:
    passing = traced_run(result("SRS-1"), result("SRS-2"), suite="regression")
    steps = evidenced(FAILING, passing)
    assert only(run(steps, policy=ANOMALY_POLICY), ANOMALIES) == ("fail", [index_of(steps, FAILING)])


def test_runs_on_another_artifact_need_no_disposition() -> None:
    other = traced_run(result("SRS-2", passed=0, failed=1), digest=D2)
    assert ANOMALIES not in rules(run(evidenced(other), policy=ANOMALY_POLICY))


def test_without_the_setting_failed_requirements_need_no_anomaly_record() -> None:
    result_ = run(evidenced(FAILING), policy=POLICY)
    assert rules(result_) == {pol.TESTS_PASSED}


# --- change.component-risk ---------------------------------------------------------------------------


def touching(risk: str, *components: str, change_id: str = "CHG-7") -> Step:
    owner, pred, subjects = change(risk)
    return owner, msgspec.structs.replace(pred, components=list(components), change_id=change_id), subjects


def _release(first_change: Step, *extra: Step) -> list[Step]:
    return [first_change, *compliant_steps()[1:], *extra]


def test_a_change_classified_at_its_components_minimum_is_compliant() -> None:
    result_ = run(_release(touching("high", "result calculator", "ui")), policy=CLASSIFIED)
    assert result_.status == "compliant", result_.findings


def test_a_change_classified_below_its_components_minimum_fails_naming_it() -> None:
    result_ = run(
        _release(touching("medium", "  RESULT   calculator ", "report-renderer", "ui")), policy=CLASSIFIED
    )
    assert COMPONENTS in rules(result_)
    assert only(result_, COMPONENTS) == ("fail", [FIRST])
    assert message(result_, COMPONENTS) == (
        "change CHG-7 (entry 10, classified medium) touches   RESULT   calculator  (at least high), "
        "but the release's risk class is medium"
    )
    assert result_.status == "non-compliant"


def test_every_component_above_the_class_is_named() -> None:
    result_ = run(_release(touching("low", "report-renderer", "Result Calculator")), policy=CLASSIFIED)
    assert only(result_, COMPONENTS) == ("fail", [FIRST])
    assert "touches Result Calculator (at least high), report-renderer (at least medium)," in message(
        result_, COMPONENTS
    )


def test_a_later_change_record_raising_the_class_clears_it() -> None:
    steps = _release(touching("medium", "result-calculator", "result calculator"))
    assert only(run(steps, policy=CLASSIFIED), COMPONENTS) == ("fail", [FIRST])
    raised = [steps[0], touching("high", "ui", change_id="CHG-7r"), *steps[1:]]
    assert COMPONENTS not in rules(run(raised, policy=CLASSIFIED))


def test_a_second_change_touching_a_classified_component_is_named_alone() -> None:
    steps = _release(touching("medium", "ui"), touching("low", "report-renderer", change_id="CHG-8"))
    policy = msgspec.structs.replace(POLICY, classification=pol.Classification({"report-renderer": "high"}))
    result_ = run(steps, policy=policy)
    assert only(result_, COMPONENTS) == ("fail", [index_of(steps, steps[-1])])


def test_unlisted_components_and_a_policy_without_classification_require_nothing() -> None:
    assert COMPONENTS not in rules(run(_release(touching("low", "ui", "docs")), policy=CLASSIFIED))
    assert COMPONENTS not in rules(run(_release(touching("low", "result calculator")), policy=POLICY))


def test_an_exception_the_policy_allows_waives_a_misclassification() -> None:
    steps = _release(touching("medium", "result calculator"), exception(COMPONENTS, at(WEEK), at(MONTH)))
    waived = run(steps, policy=allowing(CLASSIFIED, COMPONENTS))
    found = [(f.rule, f.status, f.waived_by) for f in waived.findings if f.rule == COMPONENTS]
    assert found == [(COMPONENTS, "waived", index_of(steps, steps[-1]))]
    assert only(run(steps, policy=CLASSIFIED), COMPONENTS) == ("fail", [FIRST])


# --- a policy without the settings evaluates as before --------------------------------------------------


def _breaking_all_four() -> list[Step]:
    """Medium change to the result calculator, failed and skipped cases, no SBOM, no coverage of RC-1."""
    steps = evidenced(
        baseline(),
        traced_run(result("SRS-1"), result("SRS-2", passed=0, skipped=1)),
        sbom(D2),
        anomaly("SYS-1"),
    )
    return [touching("high", "result calculator"), *steps[1:]]


FULL = msgspec.structs.replace(
    high_tier(
        require_sbom=True,
        coverage=pol.Coverage(["software", "risk-control"], ["high", "unclassified"]),
        require_anomaly_disposition=True,
    ),
    classification=pol.Classification({"result calculator": "high"}),
)


def test_the_example_policy_ignores_traceability_evidence() -> None:
    steps = _breaking_all_four()
    before = run(steps, policy=POLICY)
    assert before.status == "compliant", before.findings
    assert before.entries == list(range(FIRST, FIRST + len(steps)))  # the new kinds are evaluated entries
    full = run(steps, policy=FULL)
    assert rules(full) == {SBOM, COVERAGE, ANOMALIES}
    lowered = run([touching("medium", "result calculator"), *steps[1:]], environment=None, policy=FULL)
    assert COMPONENTS in rules(lowered)


def test_new_rules_are_in_force_and_described_whatever_the_policy() -> None:
    assert set(POLICY.rules_in_force()) >= NEW_RULES
    lines = pol.describe_policy(POLICY)
    assert "  SBOM:            not required" in lines
    assert "  coverage:        not required" in lines
    assert "components' least risk class: (none)" in lines
    full = pol.describe_policy(FULL)
    assert "  SBOM:            required" in full
    assert (
        "  coverage:        a passing test of each of the software, risk-control requirements of risk high, "
        "unclassified" in full
    )
    assert "components' least risk class: result calculator high" in full


# --- the policy file ---------------------------------------------------------------------------------


def _example_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


COMMENTED = re.compile(
    r"^# (require_sbom = |require_anomaly_disposition = |\[tiers\.high\.coverage\]|types = |risk_classes = "
    r"|\[classification\.components\]|\"result-calculator\" = |\"report-renderer\" = )",
    re.MULTILINE,
)


def _uncommented() -> str:
    """The example policy with its commented-out traceability settings turned on."""
    text, count = COMMENTED.subn(r"\1", _example_text())
    assert count == 8, count
    return text


def test_the_example_leaves_the_settings_out_and_keeps_its_digest() -> None:
    policy = pol.load_policy_toml(_example_text())
    assert policy == POLICY
    assert policy.classification is msgspec.UNSET
    for risk in p.RISK_CLASSES:
        tier = policy.tier(risk)
        assert (tier.require_sbom, tier.coverage, tier.require_anomaly_disposition) == (msgspec.UNSET,) * 3
    canonical = pol.encode_policy(policy)
    for key in (b"require_sbom", b"coverage", b"require_anomaly_disposition", b"classification"):
        assert key not in canonical


def test_the_example_settings_uncommented_are_valid() -> None:
    policy = pol.load_policy_toml(_uncommented())
    high = policy.tier("high")
    assert high.requires_sbom()
    assert high.requires_anomaly_disposition()
    assert high.coverage_required() == pol.Coverage(
        ["software", "risk-control"], ["medium", "high", "unclassified"]
    )
    assert policy.component_minimum("Result-Calculator") == "high"
    assert policy.component_minimum("report-renderer") == "medium"
    assert policy.component_minimum("ui") is None
    assert pol.policy_digest(policy) != pol.policy_digest(POLICY)
    assert pol.policy_from_data(msgspec.to_builtins(policy)) == policy  # the published record's round trip


def _edited(old: str, new: str) -> str:
    text = _uncommented()
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        pytest.param("[tiers.high.coverage]\n", "[tiers.high.coverage]\ncolour = 1\n",
                     "unknown key tiers.high.coverage.colour", id="unknown-coverage-key"),
        pytest.param('risk_classes = ["medium", "high", "unclassified"]\n', "",
                     "missing key tiers.high.coverage.risk_classes", id="coverage-needs-both-keys"),
        pytest.param('types = ["software", "risk-control"]', 'types = ["software", "hardware"]',
                     "key tiers.high.coverage.types[1]: Invalid enum value 'hardware'", id="unknown-type"),
        pytest.param('"medium", "high", "unclassified"]', '"medium", "critical"]',
                     "key tiers.high.coverage.risk_classes[1]", id="unknown-class"),
        pytest.param('types = ["software", "risk-control"]', 'types = ["software", "software"]',
                     "types lists 'software' twice", id="duplicate-type"),
        pytest.param("require_sbom = true", 'require_sbom = "yes"', "key tiers.high.require_sbom",
                     id="sbom-not-a-bool"),
        pytest.param("require_anomaly_disposition = true", "require_anomaly_disposition = 1",
                     "key tiers.high.require_anomaly_disposition", id="anomalies-not-a-bool"),
        pytest.param('"report-renderer" = "medium"', '"report-renderer" = "critical"',
                     "key classification.components.report-renderer: 'critical' is not a risk class",
                     id="unknown-component-class"),
        pytest.param('"report-renderer" = "medium"', '"Result-Calculator" = "medium"',
                     "components 'result-calculator' and 'Result-Calculator' name the same component",
                     id="same-component-twice"),
        pytest.param('"report-renderer" = "medium"', '" " = "medium"',
                     "key classification.components (a name in it)", id="blank-component"),
        pytest.param("[classification.components]\n", "[classification.components]\n[classification.x]\n",
                     "unknown key classification.x", id="unknown-classification-key"),
    ],
)  # fmt: skip
def test_bad_traceability_settings_are_refused_naming_the_key(old: str, new: str, named: str) -> None:
    with pytest.raises(EncodingError) as caught:
        pol.load_policy_toml(_edited(old, new))
    assert named in str(caught.value)


def test_a_deployed_release_names_the_sbom_rule_per_deployed_digest() -> None:
    steps = deployed_steps()
    result_ = run(steps, environment=None, policy=SBOM_POLICY)
    assert only(result_, SBOM) == ("missing", [FIRST + 1])
