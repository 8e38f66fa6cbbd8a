"""Release policies (ledger.records.policy): the TOML file, its digest, the admin record, the CLI.

The example in schemas/ must load; every kind of bad file is refused with a
message that names the offending key, so a QA lead can fix it without reading
code. Publishing signs an admin record that the ledger's decoder accepts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from typer.testing import CliRunner

import cli.append_cmds
from cli.main import app
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, Envelope, envelope_payload, verify_envelope
from ledger.core.keys import SignerKey
from ledger.errors import EncodingError
from ledger.records import policy as pol
from ledger.records.admin import (
    PolicyPublished,
    decode_admin_record,
    encode_admin_record,
    encode_policy_record,
    policy_from_record,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "schemas" / "policy.example.toml"
TEXT = EXAMPLE.read_text(encoding="utf-8")
runner = CliRunner()


def edited(old: str, new: str) -> str:
    assert old in TEXT, old
    return TEXT.replace(old, new, 1)


def test_example_policy_loads_with_three_tiers() -> None:
    policy = pol.load_policy_toml(TEXT)
    assert policy.tier("low").required_suites == ["unit", "regression"]
    assert policy.tier("high").require_validation
    assert set(policy.tier("high").required_approval_roles) == {
        "qa",
        "clinical",
        "security",
        "release-manager",
    }
    assert policy.continuity.environments == ["production"]
    assert policy.separation_of_duties.approver_not_author
    assert policy.approvals.after_evidence
    assert policy.approvals.checks_entries()
    assert policy.gated_environments() == ["production"]
    assert policy.deployments_after_evidence()
    assert policy.rules_in_force() == tuple(pol.RULES)  # the example applies every rule


def test_digest_is_sha256_of_canonical_json_and_ignores_toml_layout() -> None:
    policy = pol.load_policy_toml(TEXT)
    digest = pol.policy_digest(policy)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    stripped = "\n".join(line.split("#", 1)[0] for line in TEXT.splitlines())  # no comment holds a '#' value
    assert pol.policy_digest(pol.load_policy_toml(stripped)) == digest
    canonical = pol.encode_policy(policy)
    assert json.loads(canonical) == msgspec.to_builtins(policy)
    assert canonical == json.dumps(json.loads(canonical), sort_keys=True, separators=(",", ":")).encode()
    changed = pol.load_policy_toml(edited("max_duration_days = 14", "max_duration_days = 13"))
    assert pol.policy_digest(changed) != digest


def test_admin_record_round_trip_carries_the_whole_policy() -> None:
    policy = pol.load_policy_toml(TEXT)
    record = decode_admin_record(encode_policy_record(policy))
    assert isinstance(record, PolicyPublished)
    assert record.name == policy.name
    assert record.digest == pol.policy_digest(policy)
    assert policy_from_record(record) == policy


def test_admin_record_with_a_wrong_digest_is_refused() -> None:
    payload = json.loads(encode_policy_record(pol.load_policy_toml(TEXT)))
    payload["policy"]["tiers"]["high"]["required_approval_roles"] = ["qa"]  # weakened after hashing
    with pytest.raises(EncodingError, match="digest"):
        decode_admin_record(json.dumps(payload).encode())


def test_admin_record_with_an_invalid_policy_is_refused() -> None:
    payload = json.loads(encode_policy_record(pol.load_policy_toml(TEXT)))
    payload["policy"]["exceptions"]["allowed_rules"] = ["no.such-rule"]
    with pytest.raises(EncodingError, match=r"no\.such-rule"):
        decode_admin_record(json.dumps(payload).encode())


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        pytest.param("[approvals]\n", "[approvals]\ncolour = 1\n", "approvals.colour", id="unknown-key"),
        pytest.param('version = "2026.1"', "", "version", id="missing-key"),
        pytest.param(
            "max_duration_days = 14",
            'max_duration_days = "14"',
            "exceptions.max_duration_days",
            id="wrong-type",
        ),
        pytest.param(
            '"security", "performance"]',
            '"security", "smoke"]',
            "tiers.high.required_suites[5]",
            id="unknown-suite",
        ),
        pytest.param('"findings.max-open"]', '"findings.max-opne"]', "findings.max-opne", id="unknown-rule"),
        pytest.param(
            '"findings.max-open"]', '"exceptions.valid"]', "exceptions.valid", id="rule-never-waivable"
        ),
        pytest.param('["qa"]', '["QA"]', "tiers.low.required_approval_roles[0]", id="role-not-a-role-name"),
        pytest.param('["unit", "regression"]', '["unit", "unit"]', "tiers.low", id="duplicate-suite"),
        pytest.param(
            "max_duration_days = 14",
            "max_duration_days = 0",
            "exceptions.max_duration_days",
            id="zero-duration",
        ),
        pytest.param(
            "critical = 0", "critical = -1", "tiers.low.max_open_findings.critical", id="negative-limit"
        ),
        pytest.param("[tiers.medium]", "[tiers.medium-ish]", "tiers.medium-ish", id="unknown-tier"),
        pytest.param(
            "require_validation = true",
            "require_validation = 1",
            "tiers.high.require_validation",
            id="int-for-bool",
        ),
        pytest.param(
            'require_gate_allow = ["production"]',
            'require_gate_allow = ["staging"]',
            "deployments.require_gate_allow names 'staging', which continuity.environments does not list",
            id="gate-for-an-environment-not-in-continuity",
        ),
        pytest.param(
            'require_gate_allow = ["production"]',
            'require_gate_allow = ["production", "production"]',
            "require_gate_allow lists 'production' twice",
            id="duplicate-gated-environment",
        ),
        pytest.param(
            "not_before_evidence = true\n",
            "",
            "missing key deployments.not_before_evidence",
            id="deployments-section-needs-both-keys",
        ),
        pytest.param(
            "[deployments]\n",
            "[deployments]\ncolour = 1\n",
            "deployments.colour",
            id="unknown-deployments-key",
        ),
        pytest.param(
            "entries_in_release = true",
            'entries_in_release = "yes"',
            "approvals.entries_in_release",
            id="entries-in-release-not-a-bool",
        ),
    ],
)
def test_bad_policy_is_refused_naming_the_key(old: str, new: str, named: str) -> None:
    with pytest.raises(EncodingError) as caught:
        pol.load_policy_toml(edited(old, new))
    assert named in str(caught.value)


def test_invalid_toml_is_refused() -> None:
    with pytest.raises(EncodingError, match="not valid TOML"):
        pol.load_policy_toml("name = = 1")


def test_every_rule_is_described_and_waivable_ones_exclude_the_process_rules() -> None:
    lines = pol.describe_policy(pol.load_policy_toml(TEXT))
    assert all(any(rule in line for line in lines) for rule in pol.RULES)
    assert pol.RULES.keys() >= pol.NOT_WAIVABLE


def test_policy_md_documents_every_rule() -> None:
    text = (EXAMPLE.parent / "POLICY.md").read_text(encoding="utf-8")
    assert all(f"`{rule}`" in text for rule in pol.RULES)


def test_cli_check_prints_the_rules(tmp_path: Path) -> None:
    result = runner.invoke(app, ["policy", "check", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "tier high:" in result.output
    assert pol.policy_digest(pol.load_policy_toml(TEXT)) in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text(edited("[approvals]\n", "[approvals]\ncolour = 1\n"), encoding="utf-8")
    result = runner.invoke(app, ["policy", "check", str(bad)])
    assert result.exit_code == 2
    assert "approvals.colour" in result.output


def test_cli_publish_signs_an_admin_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = SignerKey.generate("admin.example/qa")
    key_file = tmp_path / "admin.key"
    key_file.write_text(admin.format(), encoding="utf-8")
    sent: list[Envelope] = []

    def fake_append(envelopes: list[Envelope], **_: Any) -> list[dict[str, Any]]:
        sent.extend(envelopes)
        return [{"index": 42, "leaf_hash": "00" * 32, "time": "2026-03-02T09:00:00.000Z"}]

    monkeypatch.setattr(cli.append_cmds, "append", fake_append)
    result = runner.invoke(app, ["policy", "publish", str(EXAMPLE), "--key", str(key_file), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    policy = pol.load_policy_toml(TEXT)
    assert (out["index"], out["digest"]) == (42, pol.policy_digest(policy))
    (envelope,) = sent
    assert envelope.payload_type == ADMIN_PAYLOAD_TYPE
    verify_envelope(envelope, lambda keyid: admin.verifier() if keyid == admin.keyid else None)
    record = decode_admin_record(envelope_payload(envelope))
    assert isinstance(record, PolicyPublished)
    assert encode_admin_record(record) == encode_policy_record(policy)
