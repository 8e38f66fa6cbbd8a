"""Deployment rules (ledger.compliance.deployments): a gate allow first, no deployment before its evidence.

`deployments.gate-allow`: into an environment `[deployments] require_gate_allow` lists,
the latest gate decision recorded before the deployment for the same environment and
digest must be an allow. `deployments.after-evidence`: a deployment's window may not begin
before the ledger recorded the evidence of its digest that precedes it. The reference
release (compliance_support.deployed_steps) meets both under the example policy.
"""

from __future__ import annotations

import msgspec
import pytest
from compliance_support import (
    D2,
    FIRST,
    MONTH,
    POLICY,
    RITA,
    WEEK,
    Step,
    approval,
    at,
    build,
    compliant_steps,
    deployed_steps,
    deployment,
    entry_time,
    exception,
    gate,
    gate_decision,
    only,
    rules,
    run,
    suite_run,
)

from ledger.compliance.evaluate import ComplianceResult
from ledger.records import policy as pol

GATE, AFTER = pol.DEPLOY_GATE_ALLOW, pol.DEPLOY_AFTER_EVIDENCE
OFF = msgspec.structs.replace(POLICY, deployments=msgspec.UNSET)


def _at(steps: list[Step], step: Step) -> int:
    """The index of the last occurrence of `step` (steps repeat: a gate decision, a deployment)."""
    return FIRST + len(steps) - 1 - steps[::-1].index(step)


def _released(*steps: Step, environment: str | None = None, policy: pol.Policy = POLICY) -> ComplianceResult:
    return run([*compliant_steps(), *steps], environment=environment, policy=policy)


# --- deployments.gate-allow ---------------------------------------------------------------------


@pytest.mark.parametrize("environment", [None, "production"])
def test_a_deployment_after_a_gate_allow_for_its_digest_and_environment_is_compliant(
    environment: str | None,
) -> None:
    steps = deployed_steps()
    result = run(steps, environment=environment)
    assert result.status == "compliant", result.findings
    assert _at(steps, gate_decision()) in result.entries  # the decision it relied on is an input


def test_a_production_deployment_without_a_gate_decision_is_a_finding() -> None:
    result = _released(deployment())
    assert result.status == "non-compliant"
    status, entries = only(result, GATE)
    assert (status, entries) == ("fail", [FIRST + len(compliant_steps())])
    assert "no gate decision before it" in next(f.message for f in result.findings if f.rule == GATE)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(gate_decision(digest=D2), id="another-digest"),
        pytest.param(gate_decision(environment="staging"), id="another-environment"),
    ],
)
def test_a_gate_allow_for_another_digest_or_environment_does_not_count(other: Step) -> None:
    result = _released(other, deployment())
    status, entries = only(result, GATE)
    assert (status, entries) == ("fail", [FIRST + len(compliant_steps()) + 1])
    assert FIRST + len(compliant_steps()) not in result.entries  # the other gate was not relied on


def test_a_gate_allow_recorded_after_the_deployment_does_not_count() -> None:
    result = _released(deployment(), gate_decision())
    assert only(result, GATE) == ("fail", [FIRST + len(compliant_steps())])


def test_a_deployment_after_a_deny_is_a_finding_naming_the_decision() -> None:
    steps = [*compliant_steps(), gate_decision("deny"), deployment()]
    result = run(steps, environment=None)
    status, entries = only(result, GATE)
    assert (status, entries) == ("fail", [_at(steps, gate_decision("deny")), _at(steps, deployment())])
    assert "denied it" in next(f.message for f in result.findings if f.rule == GATE)


def test_a_deny_after_the_allow_revokes_it_and_an_allow_after_a_deny_restores_it() -> None:
    assert only(_released(gate_decision(), gate_decision("deny"), deployment()), GATE)[0] == "fail"
    assert GATE not in rules(_released(gate_decision("deny"), gate_decision(), deployment()))


def test_a_gate_decision_of_the_shape_before_issue_12_counts() -> None:
    result = _released(gate_decision(legacy=True), deployment(), environment="production")
    assert result.status == "compliant", result.findings


def test_each_deployment_needs_its_own_earlier_allow_and_a_failed_one_counts_too() -> None:
    failed = deployment()
    failed = (failed[0], msgspec.structs.replace(failed[1], result="failed"), failed[2])
    result = _released(failed, gate_decision(), deployment())
    assert only(result, GATE) == ("fail", [FIRST + len(compliant_steps())])


def test_deployments_into_an_environment_the_policy_does_not_gate_need_no_gate() -> None:
    policy = msgspec.structs.replace(
        POLICY, continuity=pol.Continuity(["production", "staging"])
    )  # staging is checked for continuity, but not gated
    assert GATE not in rules(_released(deployment(environment="staging"), environment=None, policy=policy))
    assert GATE not in rules(_released(deployment(environment="staging"), environment="staging"))


def test_without_a_deployments_section_no_gate_is_needed() -> None:
    result = _released(deployment(), environment=None, policy=OFF)
    assert result.status == "compliant", result.findings
    assert GATE not in OFF.rules_in_force()


def test_the_gate_rule_can_be_waived_only_when_the_policy_allows_it() -> None:
    late = exception(GATE, at(WEEK), at(MONTH))
    refused = _released(late, deployment(), environment=None)
    assert only(refused, GATE)[0] == "fail"
    assert only(refused, pol.EXCEPTION_VALID)[0] == "fail"
    allowed = pol.ExceptionRules([*POLICY.exceptions.allowed_rules, GATE], 14, 30)
    policy = msgspec.structs.replace(POLICY, exceptions=allowed)
    result = _released(late, deployment(), environment=None, policy=policy)
    assert result.status == "compliant", result.findings
    assert [(f.rule, f.status) for f in result.findings] == [(GATE, "waived")]


def test_a_gate_statement_names_the_gate_decision_it_relied_on_among_its_inputs() -> None:
    steps = [*deployed_steps(), gate_decision()]  # a later gate, after the release was deployed
    _, decision = gate(run(steps[:-1]), steps[:-1])
    assert f"urn:evledger:entry:{_at(steps[:-1], gate_decision())}" in {
        a.uri for a in decision.input_attestations
    }


# --- deployments.after-evidence -----------------------------------------------------------------


def test_a_deployment_that_started_before_the_build_was_recorded_is_a_finding() -> None:
    steps = [*compliant_steps(), gate_decision(), deployment(started=at(0))]
    result = run(steps, environment=None)
    status, entries = only(result, AFTER)
    assert status == "fail"
    build_index, deployed = FIRST + 1, _at(steps, deployment(started=at(0)))
    assert {build_index, deployed} <= set(entries)
    message = next(f.message for f in result.findings if f.rule == AFTER)
    assert f"entry {build_index} at {entry_time(build_index)}" in message
    assert "began at " + at(0) in message


def test_a_deployment_that_started_before_an_approval_was_recorded_names_that_approval() -> None:
    steps = compliant_steps()
    manager = FIRST + len(steps) - 1  # the release manager's approval comes last
    started = at(manager - FIRST - 0.5)  # after every other piece of evidence, before that approval
    result = run([*steps, gate_decision(), deployment(started=started)], environment=None)
    status, entries = only(result, AFTER)
    assert status == "fail"
    assert manager in entries
    assert manager - 1 not in entries


def test_a_window_that_ends_before_it_starts_begins_at_its_end() -> None:
    result = _released(gate_decision(), deployment(finished=at(0)))
    assert only(result, AFTER)[0] == "fail"


def test_evidence_recorded_after_the_deployment_is_not_what_it_deployed() -> None:
    smoke = suite_run("system")  # a test in production, after the deployment
    result = run([*deployed_steps(), smoke], environment=None)
    assert AFTER not in rules(result)


def test_a_deployment_of_a_digest_without_evidence_has_nothing_to_follow() -> None:
    result = _released(gate_decision(digest=D2), deployment(D2, started=at(0)))
    assert AFTER not in rules(result)
    assert only(result, pol.CONTINUITY)[0] == "fail"


def test_only_the_deployments_evaluated_are_checked_and_the_rule_can_be_off() -> None:
    early = deployment(environment="staging", started=at(0))
    assert AFTER not in rules(_released(early, gate_decision(), deployment(), environment=None))
    off = msgspec.structs.replace(
        POLICY, deployments=pol.DeploymentRules(["production"], not_before_evidence=False)
    )
    assert AFTER not in rules(_released(gate_decision(), deployment(started=at(0)), policy=off))
    assert AFTER not in off.rules_in_force()
    assert only(_released(gate_decision(), deployment(started=at(0))), AFTER)[0] == "fail"


def test_a_rebuild_recorded_before_the_deployment_counts_as_its_evidence() -> None:
    rebuilt = build()
    steps = [
        *compliant_steps(),
        rebuilt,
        gate_decision(),
        deployment(started=at(len(compliant_steps()) - 0.5)),
    ]
    result = run(steps, environment=None)
    assert only(result, AFTER)[1] == [FIRST + len(compliant_steps()), FIRST + len(steps) - 1]


def test_an_approval_of_authorship_is_not_evidence_of_the_deployment() -> None:
    author = approval("release-manager", RITA)
    author = (author[0], msgspec.structs.replace(author[1], meaning="authorship"), author[2])
    steps = [
        *compliant_steps(),
        author,
        gate_decision(),
        deployment(started=at(len(compliant_steps()) - 0.5)),
    ]
    assert AFTER not in rules(run(steps, environment=None))
