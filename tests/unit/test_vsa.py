"""Gate decisions as SLSA VSA v1 (issue #12): the new shape, and the old one still read."""

from __future__ import annotations

import copy

import msgspec
import pytest
from compliance_support import compliant_steps, gate, run, scan

from ledger.compliance.gate import verifier_uri
from ledger.errors import EncodingError
from ledger.records import predicates as p
from ledger.records.statement import decode_statement, release_of

SPEC_EXAMPLE = {
    "verifier": {"id": "https://example.com/publication_verifier"},
    "timeVerified": "1985-04-12T23:20:50.52Z",
    "resourceUri": "https://example.com/example-1.2.3.tar.gz",
    "policy": {"uri": "https://example.com/example_tarball.policy", "digest": {"sha256": "12" * 32}},
    "inputAttestations": [{"uri": "https://example.com/p.intoto.jsonl", "digest": {"sha256": "ab" * 32}}],
    "verificationResult": "PASSED",
    "verifiedLevels": ["SLSA_BUILD_LEVEL_3"],
    "dependencyLevels": {"SLSA_BUILD_LEVEL_3": 5, "SLSA_BUILD_LEVEL_2": 7, "SLSA_BUILD_LEVEL_1": 1},
    "slsaVersion": "1.0",
}


def test_a_deny_is_failed_with_a_uri_verifier_and_uri_named_extension() -> None:
    steps = [scan(high=5) if s == scan() else s for s in compliant_steps()]
    statement, decision = gate(run(steps), steps)
    raw = statement.predicate
    assert raw["verificationResult"] == "FAILED"
    assert raw["verifiedLevels"] == ["FAILED"]
    assert raw["verifier"]["id"].startswith("https://evledger.dev/verifier/")
    assert raw["slsaVersion"] == "1.0"
    extension = raw[p.GATE_EXTENSION]
    assert extension["decision"] == "deny"
    # every top-level field is one of VSA v1's, or a URI-named extension
    vsa = {
        "verifier", "timeVerified", "resourceUri", "policy", "inputAttestations", "verificationResult",
        "verifiedLevels", "dependencyLevels", "slsaVersion",
    }  # fmt: skip
    assert all(k in vsa or k.startswith("https://") for k in raw)
    assert (decision.decision, decision.release) == ("deny", p.decode_gate(raw).release)  # type: ignore[union-attr]
    assert release_of(statement) == (decision.release.product, decision.release.version)


def test_verifier_uri_keeps_the_key_name_readable() -> None:
    assert verifier_uri("ledger.example/prod") == "https://evledger.dev/verifier/ledger.example/prod"


def test_an_old_shape_decision_still_decodes_with_its_values() -> None:
    legacy = {
        "verifier": {"id": "ledger.example/prod"},
        "timeVerified": "2026-03-02T09:00:00Z",
        "resourceUri": "urn:evledger:release:analyzer:2.4.0",
        "policy": {"uri": "urn:evledger:entry:1", "digest": {"sha256": "34" * 32}},
        "inputAttestations": [],
        "verificationResult": "FAILED",
        "verifiedLevels": [],
        "release": {"product": "analyzer", "version": "2.4.0"},
        "environment": "production",
        "decision": "deny",
        "findings": [],
    }
    value = p.decode_predicate(p.GATE_DECISION, legacy)
    assert isinstance(value, p.GateDecision)
    assert (value.decision, value.environment, value.verified_levels) == ("deny", "production", [])
    assert value.release == p.Release("analyzer", "2.4.0")
    statement = decode_statement(
        msgspec.json.encode(
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "a", "digest": {"sha256": "56" * 32}}],
                "predicateType": p.GATE_DECISION,
                "predicate": legacy,
            }
        )
    )
    assert release_of(statement) == ("analyzer", "2.4.0")


def test_the_spec_example_is_generic_evidence() -> None:
    assert p.decode_predicate(p.GATE_DECISION, copy.deepcopy(SPEC_EXAMPLE)) is None


def test_a_vsa_with_our_extension_must_be_consistent() -> None:
    steps = [scan(high=5) if s == scan() else s for s in compliant_steps()]
    statement, _ = gate(run(steps), steps)
    raw = copy.deepcopy(statement.predicate)
    raw["verifiedLevels"] = []
    with pytest.raises(EncodingError, match="FAILED"):
        p.decode_predicate(p.GATE_DECISION, raw)
    raw = copy.deepcopy(statement.predicate)
    raw[p.GATE_EXTENSION]["decision"] = "allow"
    with pytest.raises(EncodingError, match="PASSED for allow"):
        p.decode_predicate(p.GATE_DECISION, raw)
