"""Policies published before the deployment and approval-entries rules keep their digest and meaning.

A policy without `[deployments]` and without `approvals.entries_in_release` decodes, is
encoded without them (so its digest is the one it was signed under: the example policy's
digest before the rules existed is written here), applies none of the three rules, and a
release that breaks all three is judged exactly as before.
"""

from __future__ import annotations

import json

import msgspec
from compliance_support import (
    CI,
    COMMIT,
    D1,
    EXAMPLE,
    FIRST,
    QUINN,
    Step,
    approval,
    at,
    compliant_steps,
    deployment,
    rules,
    run,
)

from ledger.records import policy as pol
from ledger.records import predicates as p
from ledger.records.admin import (
    PolicyPublished,
    decode_admin_record,
    encode_policy_record,
    policy_from_record,
)

NEW_KEYS = (
    "entries_in_release = true\n",
    '[deployments]\nrequire_gate_allow = ["production"]\nnot_before_evidence = true\n',
)
# policy_digest of schemas/policy.example.toml as it was before these keys existed (computed then).
DIGEST_BEFORE = "sha256:b7d71a4779122a5f349b1aa56ab45b477a194fe515cb1128d94ecc81bae15a21"
NEW_RULES = {pol.DEPLOY_GATE_ALLOW, pol.DEPLOY_AFTER_EVIDENCE, pol.APPROVALS_ENTRIES_IN_RELEASE}


def _old_text() -> str:
    text = EXAMPLE.read_text(encoding="utf-8")
    for key in NEW_KEYS:
        assert key in text, key
        text = text.replace(key, "")
    return text


OLD = pol.load_policy_toml(_old_text())
NEW = pol.load_policy_toml(EXAMPLE.read_text(encoding="utf-8"))


def test_an_old_policy_decodes_and_keeps_its_digest() -> None:
    assert pol.policy_digest(OLD) == DIGEST_BEFORE
    canonical = json.loads(pol.encode_policy(OLD))
    assert "deployments" not in canonical
    assert "entries_in_release" not in canonical["approvals"]
    assert pol.policy_digest(NEW) != DIGEST_BEFORE


def test_an_old_policy_record_replays_to_the_same_policy() -> None:
    record = decode_admin_record(encode_policy_record(OLD))
    assert isinstance(record, PolicyPublished)
    assert record.digest == DIGEST_BEFORE
    assert policy_from_record(record) == OLD
    assert pol.policy_from_data(msgspec.to_builtins(OLD)) == OLD


def test_an_old_policy_applies_none_of_the_new_rules() -> None:
    assert not NEW_RULES & set(OLD.rules_in_force())
    assert set(NEW.rules_in_force()) >= NEW_RULES
    assert set(NEW.rules_in_force()) - set(OLD.rules_in_force()) == NEW_RULES
    lines = pol.describe_policy(OLD)
    assert all(f"  {rule}: {pol.RULES[rule]} (off)" in lines for rule in NEW_RULES)


def _breaking_all_three() -> list[Step]:
    """No gate before the deployment, which started before the build; QA lists another release's entry."""
    other = p.Build(p.Release("analyzer", "2.5.0"), "git.example/analyzer", COMMIT, "b-9", "ci", [])
    owner, pred, subjects = approval("qa", QUINN)
    qa = owner, msgspec.structs.replace(pred, entries=[FIRST, FIRST + len(compliant_steps())]), subjects
    return [*compliant_steps(), (CI, other, (D1,)), qa, deployment(started=at(0))]


def test_a_release_breaking_the_new_rules_is_judged_as_before_under_an_old_policy() -> None:
    steps = _breaking_all_three()
    old = run(steps, environment=None, policy=OLD)
    assert old.status == "compliant", old.findings
    assert old.entries == [i for i in range(FIRST, FIRST + len(steps)) if i != FIRST + len(compliant_steps())]
    new = run(steps, environment=None, policy=NEW)
    assert rules(new) == NEW_RULES
    assert new.status == "non-compliant"
