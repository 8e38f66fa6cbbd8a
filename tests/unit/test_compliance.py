"""Compliance evaluation (ledger.compliance.evaluate) and gate decisions (ledger.compliance.gate).

The reference release (compliance_support.compliant_steps) is fully compliant
under the example policy's high tier; each test changes one thing and checks
that the right rule catches it, with the right status and entries.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from compliance_support import (
    APPROVERS,
    D1,
    D2,
    DANA,
    FIRST,
    MONTH,
    NOW,
    POLICY,
    POLICY_ENTRY,
    QUINN,
    REL,
    RITA,
    SAM,
    SIGNED,
    WEEK,
    approval,
    at,
    build,
    change,
    compliant_steps,
    deployed_steps,
    deployment,
    events,
    exception,
    gate,
    index_of,
    only,
    review,
    rules,
    run,
    scan,
    suite_run,
    validation,
    with_exception,
)

from ledger.compliance.evaluate import PolicyInForce, decode_result, encode_result, evaluate
from ledger.compliance.gate import LEAF_DIGEST, gate_statement
from ledger.errors import InputError
from ledger.records import policy as pol
from ledger.records import predicates as p
from ledger.records.statement import subject_digests

# --- the reference release -------------------------------------------------------------------


def test_compliant_high_risk_release_before_deployment() -> None:
    result = run(compliant_steps())
    assert result.status == "compliant", result.findings
    assert result.findings == []
    assert result.risk_class == "high"
    assert result.release == REL
    assert [c.digest for c in result.candidates] == [D1]
    assert result.policy == PolicyInForce(
        POLICY_ENTRY, pol.policy_digest(POLICY), POLICY.name, POLICY.version
    )
    assert result.entries == list(range(FIRST, FIRST + len(compliant_steps())))


def test_compliant_release_deployed_to_production() -> None:
    steps = deployed_steps()
    result = run(steps, environment=None)
    assert result.status == "compliant", result.findings
    assert result.entries == list(range(FIRST, FIRST + len(steps)))  # the deciding gate decision too


def test_result_is_deterministic_and_independent_of_event_order() -> None:
    steps = [*compliant_steps(), scan(high=3)]
    first = encode_result(run(steps))
    shuffled = events(steps)
    random.Random(7).shuffle(shuffled)  # noqa: S311 - a fixed shuffle, not cryptography
    again = encode_result(evaluate(shuffled, POLICY, POLICY_ENTRY, now=NOW, environment="production"))
    assert first == again
    assert encode_result(decode_result(first)) == first


def test_evaluation_time_must_be_rfc3339() -> None:
    with pytest.raises(InputError, match="RFC 3339"):
        run(compliant_steps(), now="yesterday")


# --- one test per rule ---------------------------------------------------------------------------


def test_unclassified_release_is_incomplete() -> None:
    result = run(compliant_steps()[1:])
    assert result.status == "incomplete"
    assert only(result, pol.CHANGE_CLASSIFIED) == ("missing", [])
    assert result.risk_class is None


def test_missing_suite_is_incomplete() -> None:
    steps = [s for s in compliant_steps() if s != suite_run("performance")]
    result = run(steps)
    assert result.status == "incomplete"
    status, entries = only(result, pol.TESTS_REQUIRED)
    assert (status, entries) == ("missing", [FIRST + 1])  # the build whose artifact lacks the suite
    assert "performance" in result.findings[0].message


def test_failed_test_run_is_non_compliant() -> None:
    steps = [suite_run("regression", result="failed", failed=2) if s == suite_run("regression") else s
             for s in compliant_steps()]  # fmt: skip
    result = run(steps)
    assert result.status == "non-compliant"
    assert only(result, pol.TESTS_PASSED) == ("fail", [FIRST + 4])


def test_run_reporting_failures_under_a_passed_result_counts_as_failed() -> None:
    result = run([suite_run("other", failed=1), *compliant_steps()])
    assert only(result, pol.TESTS_PASSED)[0] == "fail"


def test_author_approving_own_change_is_non_compliant() -> None:
    steps = [approval("qa", DANA) if s == APPROVERS[0] else s for s in compliant_steps()]
    result = run(steps)
    assert result.status == "non-compliant"
    assert only(result, pol.SOD_NOT_AUTHOR) == ("fail", [FIRST, index_of(steps, approval("qa", DANA))])


@pytest.mark.parametrize(
    ("author", "approver"),
    [(DANA, " dana  DEV"), (" dana  DEV", DANA), (DANA, "DANA\tDev"), ("Dana Dev", "dana dev ")],
)
def test_author_is_recognised_whatever_the_case_and_spacing_of_the_names(author: str, approver: str) -> None:
    # A name is compared as a person: case and runs of whitespace do not make another person.
    steps = [change(author=author) if s == change() else s for s in compliant_steps()]
    steps = [approval("qa", approver) if s == APPROVERS[0] else s for s in steps]
    result = run(steps)
    assert result.status == "non-compliant"
    assert only(result, pol.SOD_NOT_AUTHOR) == ("fail", [FIRST, index_of(steps, approval("qa", approver))])


def test_a_similar_name_is_another_person() -> None:
    steps = [approval("qa", "Dana Devlin") if s == APPROVERS[0] else s for s in compliant_steps()]
    result = run(steps)
    assert pol.SOD_NOT_AUTHOR not in rules(result)
    assert result.status == "compliant"


@pytest.mark.parametrize("second_name", [QUINN, " quinn  QA"])
def test_one_person_filling_two_required_roles_is_non_compliant(second_name: str) -> None:
    steps = [approval("clinical", second_name) if s == APPROVERS[1] else s for s in compliant_steps()]
    result = run(steps)
    assert result.status == "non-compliant"
    assert only(result, pol.SOD_ONE_ROLE) == (
        "fail",
        [index_of(steps, APPROVERS[0]), index_of(steps, approval("clinical", second_name))],
    )


def test_approval_before_tests_is_non_compliant() -> None:
    steps = compliant_steps()
    steps.remove(APPROVERS[0])
    steps.insert(2, APPROVERS[0])  # QA approves right after the build, before any test
    result = run(steps)
    assert result.status == "non-compliant"
    status, entries = only(result, pol.APPROVALS_AFTER_EVIDENCE)
    assert status == "fail"
    assert entries[0] == FIRST + 2
    assert index_of(steps, suite_run("unit")) in entries
    assert index_of(steps, validation()) in entries


def test_evidence_after_approval_needs_a_new_approval() -> None:
    steps = [*compliant_steps(), suite_run("unit")]
    result = run(steps)
    assert len([f for f in result.findings if f.rule == pol.APPROVALS_AFTER_EVIDENCE]) == 4
    assert run([*steps, *APPROVERS, approval("release-manager", RITA)]).status == "compliant"


def test_approval_listing_a_later_entry_is_non_compliant() -> None:
    role, owner = "release-manager", RITA
    pred = p.Approval(REL, role, "approval", "approved", D1, [FIRST, FIRST + 40], SIGNED)
    steps = [*compliant_steps()[:-1], (owner, pred, (D1,))]
    result = run(steps)
    assert only(result, pol.APPROVALS_AFTER_EVIDENCE) == ("fail", [FIRST + len(steps) - 1, FIRST + 40])


def test_too_many_high_findings_are_non_compliant() -> None:
    steps = [scan(high=2) if s == scan() else s for s in compliant_steps()]
    result = run(steps)
    assert result.status == "non-compliant"
    assert only(result, pol.FINDINGS_MAX_OPEN) == ("fail", [index_of(steps, scan(high=2))])
    assert "high 2 (at most 0)" in result.findings[0].message


def test_rescan_by_the_same_tool_replaces_the_earlier_one() -> None:
    steps = compliant_steps()
    steps.insert(steps.index(scan()), scan(high=2))
    assert run(steps).status == "compliant"


def test_deployed_digest_other_than_approved_is_non_compliant() -> None:
    steps = [*compliant_steps(), deployment(D2)]
    result = run(steps, environment=None)
    assert result.status == "non-compliant"
    status, entries = only(result, pol.CONTINUITY)
    assert status == "fail"
    deployed = FIRST + len(steps) - 1
    assert deployed in entries
    assert {index_of(steps, a) for a in APPROVERS} <= set(entries)
    assert "no build of this release produced it" in next(
        f.message for f in result.findings if f.rule == pol.CONTINUITY
    )
    assert [c.digest for c in result.candidates] == [D2]


def test_deploying_a_rebuild_that_was_not_tested_is_non_compliant() -> None:
    result = run([*compliant_steps(), build(D2), deployment(D2)], environment=None)
    message = next(f.message for f in result.findings if f.rule == pol.CONTINUITY)
    assert "not what was tested" in message
    assert "not what was approved" in message


def test_rejected_approval_is_non_compliant_until_approved_again() -> None:
    rejection = approval("security", SAM, decision="rejected")
    steps = [*compliant_steps(), rejection]
    result = run(steps)
    assert result.status == "non-compliant"
    assert only(result, pol.APPROVALS_REJECTED) == ("fail", [index_of(steps, rejection)])
    assert pol.APPROVALS_REQUIRED not in rules(result)
    assert run([*steps, approval("security", SAM)]).status == "compliant"


def test_an_approval_signed_before_a_rejection_but_recorded_after_it_does_not_undo_it() -> None:
    steps = compliant_steps()
    n = len(steps)  # the next entry is recorded at at(n)
    rejection = approval("security", SAM, decision="rejected", signed_at=at(n))
    held_back = approval("security", SAM, signed_at=at(n - 1))  # signed a minute before the rejection
    steps = [*steps, rejection, held_back]
    result = run(steps)
    assert result.status == "non-compliant"
    assert only(result, pol.APPROVALS_REJECTED) == ("fail", [index_of(steps, rejection)])
    assert run([*steps, approval("security", SAM, signed_at=at(n + 2))]).status == "compliant"


def test_an_approval_dated_ahead_counts_from_when_it_was_recorded() -> None:
    steps = compliant_steps()
    n = len(steps)
    dated_ahead = approval("security", SAM, signed_at=at(n + 100))  # recorded at at(n), claims a later time
    rejection = approval("security", SAM, decision="rejected", signed_at=at(n + 1))
    result = run([*steps, dated_ahead, rejection])
    assert result.status == "non-compliant"
    assert pol.APPROVALS_REJECTED in rules(result)


def test_missing_role_is_incomplete() -> None:
    result = run(compliant_steps()[:-1])
    assert result.status == "incomplete"
    assert only(result, pol.APPROVALS_REQUIRED)[0] == "missing"
    assert "release-manager" in result.findings[0].message


def test_missing_validation_is_incomplete_and_failed_validation_fails() -> None:
    assert (
        only(run([s for s in compliant_steps() if s != validation()]), pol.VALIDATION_REQUIRED)[0]
        == "missing"
    )
    failed = run([*compliant_steps(), validation(result="failed")])
    assert only(failed, pol.VALIDATION_REQUIRED)[0] == "fail"


def test_low_risk_tier_needs_less() -> None:
    steps = [change(risk="low"), build(), suite_run("unit"), suite_run("regression"), scan(),
             approval("qa", QUINN)]  # fmt: skip
    result = run(steps)
    assert result.status == "compliant", result.findings
    assert result.risk_class == "low"
    assert run([*steps, change(risk="high")]).status == "incomplete"  # a reclassification up applies


def test_no_build_is_incomplete_with_nothing_to_check_against() -> None:
    result = run([change()])
    assert result.status == "incomplete"
    assert {pol.CONTINUITY, pol.TESTS_REQUIRED, pol.APPROVALS_REQUIRED} <= rules(result)
    assert result.candidates == []


# --- exceptions --------------------------------------------------------------------------------


def test_valid_exception_waives_its_rule() -> None:
    steps = with_exception(pol.FINDINGS_MAX_OPEN, at(WEEK), at(MONTH))
    result = run(steps)
    assert result.status == "compliant", result.findings
    (waived,) = result.findings
    assert (waived.rule, waived.status, waived.waived_by) == (
        pol.FINDINGS_MAX_OPEN,
        "waived",
        FIRST + len(steps) - 1,
    )


def test_expired_exception_does_not_waive() -> None:
    result = run(with_exception(pol.FINDINGS_MAX_OPEN, at(60), at(MONTH)), now=at(90))
    assert result.status == "non-compliant"
    assert only(result, pol.FINDINGS_MAX_OPEN)[0] == "fail"
    assert only(result, pol.EXCEPTION_VALID)[0] == "fail"
    assert "expired" in next(f.message for f in result.findings if f.rule == pol.EXCEPTION_VALID)


def test_exception_expired_at_deployment_does_not_waive_even_if_evaluated_earlier() -> None:
    steps = with_exception(pol.FINDINGS_MAX_OPEN, at(20), at(MONTH), deployment())
    steps = [*steps[:-1], *[change()] * 10, steps[-1]]  # the deployment lands after the expiry
    result = run(steps, now=at(19), environment=None)
    status, entries = only(result, pol.EXCEPTION_VALID)
    assert status == "fail"
    assert FIRST + len(steps) - 1 in entries


def test_exception_for_a_rule_not_allowed_is_a_finding() -> None:
    steps = [suite_run("other", result="failed", failed=1), *compliant_steps()]
    steps.append(exception(pol.TESTS_PASSED, at(WEEK), at(MONTH)))
    result = run(steps)
    assert result.status == "non-compliant"
    assert only(result, pol.TESTS_PASSED)[0] == "fail"
    status, entries = only(result, pol.EXCEPTION_VALID)
    assert (status, entries) == ("fail", [FIRST + len(steps) - 1])
    message = next(f.message for f in result.findings if f.rule == pol.EXCEPTION_VALID)
    assert "does not allow exceptions to rule tests.passed" in message


def test_exception_longer_than_allowed_is_a_finding() -> None:
    result = run(with_exception(pol.FINDINGS_MAX_OPEN, at(3 * WEEK), at(MONTH)))
    assert only(result, pol.EXCEPTION_VALID)[0] == "fail"
    assert only(result, pol.FINDINGS_MAX_OPEN)[0] == "fail"


def test_exception_review_overdue_is_a_finding() -> None:
    steps = with_exception(pol.FINDINGS_MAX_OPEN, at(60), at(100))
    result = run(steps, now=at(200), environment=None)
    assert only(result, pol.EXCEPTION_REVIEW) == ("fail", [FIRST + len(steps) - 1])
    reviewed = [*steps, review(FIRST + len(steps) - 1)]
    assert pol.EXCEPTION_REVIEW not in rules(run(reviewed, now=at(200), environment=None))


def test_exception_reviewed_late_is_a_finding() -> None:
    steps = with_exception(pol.FINDINGS_MAX_OPEN, at(WEEK), at(10))
    exception_entry = FIRST + len(steps) - 1
    result = run([*steps, review(exception_entry)], now=at(200))
    assert only(result, pol.EXCEPTION_REVIEW) == ("fail", [exception_entry, exception_entry + 1])


# --- gate decisions ----------------------------------------------------------------------------


def test_gate_allows_a_compliant_release() -> None:
    steps = compliant_steps()
    statement, decision = gate(run(steps), steps)
    assert (decision.decision, decision.verification_result) == ("allow", "PASSED")
    assert statement.predicate_type == p.GATE_DECISION
    assert subject_digests(statement) == (D1,)
    assert decision.policy.digest == {"sha256": pol.policy_digest(POLICY).removeprefix("sha256:")}
    assert decision.release == REL
    assert LEAF_DIGEST in decision.input_attestations[0].digest


def test_gate_denies_and_carries_the_findings() -> None:
    steps = [scan(high=5) if s == scan() else s for s in compliant_steps()]
    _, decision = gate(run(steps), steps)
    assert (decision.decision, decision.verification_result, decision.verified_levels) == (
        "deny",
        "FAILED",
        ["FAILED"],  # SLSA VSA v1: verifiedLevels is "FAILED" if policy verification failed
    )
    assert [f["rule"] for f in decision.findings] == [pol.FINDINGS_MAX_OPEN]


def test_gate_without_a_build_names_the_release_digest() -> None:
    steps = [change()]
    statement, decision = gate(run(steps), steps)
    assert decision.decision == "deny"
    expected = hashlib.sha256(b"analyzer@2.4.0").hexdigest()
    assert subject_digests(statement) == (f"sha256:{expected}",)


def test_gate_refuses_a_result_for_another_policy() -> None:
    with pytest.raises(InputError, match="policy"):
        gate_statement(
            run(compliant_steps()),
            REL,
            environment="production",
            policy_ref=(POLICY_ENTRY + 1, pol.policy_digest(POLICY)),
            input_entries=[],
            verifier_id="ledger.example/prod",
            time=NOW,
        )


def test_exception_can_waive_a_missing_suite() -> None:
    steps = [s for s in compliant_steps() if s != suite_run("performance")]
    steps.insert(2, exception(pol.TESTS_REQUIRED, at(WEEK), at(MONTH)))
    result = run(steps)
    assert result.status == "compliant", result.findings
    assert only(result, pol.TESTS_REQUIRED) == ("waived", [FIRST + 1, FIRST + 2])
