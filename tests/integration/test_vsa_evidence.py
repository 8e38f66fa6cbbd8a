"""SLSA VSAs as evidence (issue #12): others' VSAs are generic evidence; old gate decisions still count."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import msgspec
import pytest
from ledger_harness import Ledger, register, to_json, token
from litestar.testing import TestClient
from service_support import bearer, scratch_ledger, service

from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.keys import SignerKey
from ledger.records import predicates as p

PRODUCT, VERSION = "vsa-prod", "1.0"

# The example of https://slsa.dev/spec/v1.0/verification_summary, with full digests.
SPEC_EXAMPLE = {
    "verifier": {"id": "https://example.com/publication_verifier"},
    "timeVerified": "1985-04-12T23:20:50.52Z",
    "resourceUri": "https://example.com/example-1.2.3.tar.gz",
    "policy": {"uri": "https://example.com/example_tarball.policy", "digest": {"sha256": "12" * 32}},
    "inputAttestations": [
        {
            "uri": "https://example.com/provenances/example-1.2.3.tar.gz.intoto.jsonl",
            "digest": {"sha256": "ab" * 32},
        }
    ],
    "verificationResult": "PASSED",
    "verifiedLevels": ["SLSA_BUILD_LEVEL_3"],
    "dependencyLevels": {"SLSA_BUILD_LEVEL_3": 5, "SLSA_BUILD_LEVEL_2": 7, "SLSA_BUILD_LEVEL_1": 1},
    "slsaVersion": "1.0",
}


def _statement(predicate: dict[str, object], digest: str) -> bytes:
    return msgspec.json.encode(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "out/example-1.2.3.tar.gz", "digest": {"sha256": digest}}],
            "predicateType": p.GATE_DECISION,
            "predicate": predicate,
        }
    )


def legacy_gate_predicate(verifier: str, decision: str) -> dict[str, object]:
    """A gate decision as the ledger wrote it before issue #12 (its fields at the top level)."""
    return {
        "verifier": {"id": verifier},
        "timeVerified": "2026-03-02T09:00:00Z",
        "resourceUri": f"urn:evledger:release:{PRODUCT}:{VERSION}",
        "policy": {"uri": "urn:evledger:entry:0", "digest": {"sha256": "34" * 32}},
        "inputAttestations": [],
        "verificationResult": "PASSED" if decision == "allow" else "FAILED",
        "verifiedLevels": ["EVLEDGER_POLICY_COMPLIANT"] if decision == "allow" else [],
        "release": {"product": PRODUCT, "version": VERSION},
        "environment": "production",
        "decision": decision,
        "findings": [],
    }


@dataclass(frozen=True)
class Api:
    client: TestClient  # type: ignore[type-arg]
    ledger: Ledger
    admin: str
    auditor: str
    other: SignerKey

    def append(self, payload: bytes, key: SignerKey) -> dict[str, object]:
        envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, [key])
        response = self.client.post("/v1/entries", content=to_json(envelope), headers=bearer(self.admin))
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def timeline(self) -> list[dict[str, object]]:
        response = self.client.get(f"/v1/releases/{PRODUCT}/{VERSION}/timeline", headers=bearer(self.auditor))
        assert response.status_code == 200, response.text
        return response.json()["events"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def api(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("vsa")) as ledger:
        admin, auditor = token(ledger.dsn, "admin"), token(ledger.dsn, "auditor")
        other = SignerKey.generate("verifier.example/publication")
        with service(ledger) as client:
            registration = register(ledger.signer, other, ["ci"])
            response = client.post("/v1/entries", content=to_json(registration), headers=bearer(admin))
            assert response.status_code == 201, response.text
            yield Api(client, ledger, admin, auditor, other)


def test_the_spec_example_vsa_is_admitted_as_generic_evidence(api: Api) -> None:
    receipt = api.append(_statement(SPEC_EXAMPLE, "56" * 32), api.other)
    assert isinstance(receipt["index"], int)  # 201, not the 422 it got before issue #12


def test_an_old_shape_gate_decision_still_counts_and_anothers_is_evidence(api: Api) -> None:
    ledger_key = api.ledger.signer
    ours = api.append(_statement(legacy_gate_predicate(ledger_key.name, "deny"), "78" * 32), ledger_key)
    theirs = api.append(
        _statement(legacy_gate_predicate("https://example.com/v", "allow"), "9a" * 32), api.other
    )
    kinds = {e["index"]: e["kind"] for e in api.timeline()}
    assert kinds[ours["index"]] == "gate-decision"
    assert kinds[theirs["index"]] == "evidence"
