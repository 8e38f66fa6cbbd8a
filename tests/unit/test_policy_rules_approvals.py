"""approvals.entries-in-release: every entry an approval lists is an entry of its release.

The release's entries are the ones the evaluation is given that belong to it: its typed
evidence, gate decisions and seal, and generic evidence about its artifacts. An entry
naming another release, or one not in the log when the release is evaluated, is not.
Like approvals.after-evidence, only each role's latest approval of a candidate is checked.
"""

from __future__ import annotations

import hashlib

import msgspec
from compliance_support import (
    CI,
    COMMIT,
    D1,
    FIRST,
    NOW,
    POLICY,
    POLICY_ENTRY,
    QUINN,
    REL,
    Step,
    approval,
    compliant_steps,
    entry_time,
    event,
    events,
    gate_decision,
    only,
    rules,
    run,
)

from ledger.compliance.evaluate import evaluate
from ledger.records import policy as pol
from ledger.records import predicates as p
from ledger.records.statement import STATEMENT_TYPE_V1, ResourceDescriptor, Statement
from ledger.rules.events import Event, Signer

RULE = pol.APPROVALS_ENTRIES_IN_RELEASE
OTHER = p.Release("analyzer", "2.5.0")


def _qa_listing(entries: list[int]) -> Step:
    """QA's approval of D1, listing `entries` (it replaces the reference release's QA approval)."""
    owner, pred, subjects = approval("qa", QUINN)
    return owner, msgspec.structs.replace(pred, entries=entries), subjects


def _other_release_build() -> Step:
    pred = p.Build(OTHER, "git.example/analyzer", COMMIT, "b-9", "ci", [p.Artifact("analyzer.tar", D1)])
    return CI, pred, (D1,)


def _with(qa: Step) -> list[Step]:
    """The reference release with QA's approval replaced by `qa`."""
    steps = compliant_steps()
    steps[steps.index(approval("qa", QUINN))] = qa
    return steps


def test_approvals_listing_entries_of_their_release_are_compliant() -> None:
    result = run(compliant_steps())
    assert RULE not in rules(result)
    assert RULE in POLICY.rules_in_force()


def test_an_approval_listing_an_entry_of_another_release_is_a_finding() -> None:
    other = FIRST + len(compliant_steps())  # another release's build, recorded after this one's evidence
    qa = _qa_listing([FIRST, FIRST + 1, other])  # QA approves again, naming it
    steps = [*compliant_steps(), _other_release_build(), qa]
    result = run(steps)
    assert result.release == REL
    status, entries = only(result, RULE)
    assert (status, entries) == ("fail", [FIRST + len(steps) - 1])
    message = next(f.message for f in result.findings if f.rule == RULE)
    assert f"not entries of release {REL.product} {REL.version}" in message
    assert message.endswith(f": {other}")
    assert result.status == "non-compliant"


def test_an_approval_listing_an_entry_not_in_the_log_is_a_finding() -> None:
    result = run(_with(_qa_listing([FIRST, 9999])))
    assert only(result, RULE)[0] == "fail"
    assert next(f.message for f in result.findings if f.rule == RULE).endswith(": 9999")


def test_a_later_approval_in_the_same_role_replaces_one_that_listed_a_foreign_entry() -> None:
    steps = [*_with(_qa_listing([9999])), approval("qa", QUINN)]
    assert RULE not in rules(run(steps))


def test_gate_decisions_and_generic_evidence_of_the_release_may_be_listed() -> None:
    steps = [*compliant_steps(), gate_decision()]
    gate, generic = FIRST + len(steps) - 1, FIRST + len(steps)
    qa = _qa_listing([FIRST, gate, generic])  # QA approves again, naming the gate and an SBOM
    found = [*events(steps), _generic(generic), event(generic + 1, qa)]
    result = evaluate(found, POLICY, POLICY_ENTRY, now=NOW, environment="production")
    assert result.status == "compliant", result.findings
    assert generic not in result.entries  # generic evidence is no typed evidence of the release
    not_found = evaluate(
        [*events(steps), event(generic + 1, qa)], POLICY, POLICY_ENTRY, now=NOW, environment=None
    )
    assert only(not_found, RULE)[0] == "fail"  # without the SBOM in the log, its index is foreign


def test_the_rule_is_off_without_the_key() -> None:
    off = msgspec.structs.replace(POLICY, approvals=pol.ApprovalRules(after_evidence=True))
    assert RULE not in rules(run(_with(_qa_listing([FIRST, 9999])), policy=off))
    assert RULE not in off.rules_in_force()
    explicit = msgspec.structs.replace(
        POLICY, approvals=pol.ApprovalRules(after_evidence=True, entries_in_release=False)
    )
    assert RULE not in rules(run(_with(_qa_listing([FIRST, 9999])), policy=explicit))


def _generic(index: int) -> Event:
    """Generic evidence (an SBOM, say) about the release's artifact, as ledger.rules.events reads it."""
    algorithm, value = D1.split(":", 1)
    statement = Statement(
        STATEMENT_TYPE_V1,
        [ResourceDescriptor(name="sbom", digest={algorithm: value})],
        "https://spdx.dev/Document",
        {},
    )
    return Event(
        index=index,
        leaf_hash=hashlib.sha256(b"%d" % index).digest(),
        time=entry_time(index),
        kind="evidence",
        predicate_type=statement.predicate_type,
        signer=Signer("ci+00000000", "ci", ("ci",)),
        subjects=(D1,),
        statement=statement,
        predicate=None,
        release_seq=None,
    )
