"""Real builder output through the HTTP API (issue #12): a Statement v0.1 with SLSA Provenance v0.2.

The envelope is sent in the shape the SLSA GitHub generator writes it (tests/unit/fixtures/intoto):
an empty `keyid` and a Sigstore `cert` on its signature; its exact payload bytes are re-signed
with a key the ledger registers. The ledger stores the payload byte for byte and the signature
naming its key, without the `cert`; the whole log then audits, and a dossier of a release that
holds such an entry verifies offline. Neither verifier needed a change: the stored entry names
the key.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from ledger_harness import Ledger, register, token
from litestar.testing import TestClient
from service_support import bearer, scratch_ledger, service

from cli.demo import POLICY_FILE
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.entry import parse_entry
from ledger.core.keys import SignerKey
from ledger.records.admin import encode_policy_record
from ledger.records.policy import load_policy_toml
from ledger.storage.postgres import PostgresStore
from ledger.verify.audit import audit_store
from ledger.verify.dossier import Dossier, verify_dossier

FIXTURE = (
    Path(__file__).parents[1]
    / "unit"
    / "fixtures"
    / "intoto"
    / "slsa-generic-v1.2.1-provenance-v0.2.intoto.jsonl"
)
ORIGINAL: dict[str, Any] = msgspec.json.decode(FIXTURE.read_bytes())
PAYLOAD = base64.b64decode(ORIGINAL["payload"])
SUBJECT = "sha256:ec8ff1bb40da2a36e3e9113dd7a5dd452c5125f7013e849519c0754b3c9fda89"
PRODUCT, VERSION = "example-package", "1.2.1"


@dataclass
class Api:
    client: TestClient  # type: ignore[type-arg]
    ledger: Ledger
    token: str
    builder: SignerKey

    def post(self, body: object) -> dict[str, Any]:
        response = self.client.post(
            "/v1/entries", content=msgspec.json.encode(body), headers=bearer(self.token)
        )
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def get(self, path: str) -> Any:
        response = self.client.get(path, headers=bearer(self.token))
        assert response.status_code == 200, response.text
        return response.json()

    def stored(self, index: int) -> bytes:
        return base64.b64decode(self.get(f"/v1/entries/{index}")["entry"])


@pytest.fixture(scope="module")
def api(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("intoto")) as ledger:
        builder = SignerKey.generate("builder.test/slsa-github-generator")
        other = SignerKey.generate("other.test/ci")
        with service(ledger) as client:
            api = Api(client, ledger, token(ledger.dsn, "admin"), builder)
            policy = encode_policy_record(load_policy_toml(POLICY_FILE.read_text(encoding="utf-8")))
            api.post(sign_envelope(ADMIN_PAYLOAD_TYPE, policy, [ledger.signer]))
            api.post(register(ledger.signer, other, ["developer"]))  # tried first for a keyless signature
            api.post(register(ledger.signer, builder, ["developer"]))
            yield api


def as_builders_send_it(payload: bytes, signer: SignerKey) -> dict[str, Any]:
    """`payload` signed by `signer`, in the fixture's shape: keyid "" and a `cert` on the signature."""
    signed = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, [signer])
    signature = {"keyid": "", "sig": signed.signatures[0].sig, "cert": ORIGINAL["signatures"][0]["cert"]}
    return {"payloadType": ORIGINAL["payloadType"], "payload": signed.payload, "signatures": [signature]}


def with_release(payload: bytes) -> bytes:
    """The real provenance naming its release in `predicate.release`, as a v1 provenance joins one."""
    body = msgspec.json.decode(payload)
    body["predicate"]["release"] = {"product": PRODUCT, "version": VERSION}
    return msgspec.json.encode(body)


def test_real_slsa_v0_2_provenance_is_stored_byte_for_byte_naming_its_signer(api: Api) -> None:
    receipt = api.post(as_builders_send_it(PAYLOAD, api.builder))
    data = api.stored(receipt["index"])
    envelope = parse_entry(data).envelope
    assert base64.b64decode(envelope.payload) == PAYLOAD
    assert [(s.keyid, s.sig) for s in envelope.signatures] == [
        (api.builder.keyid, sign_envelope(INTOTO_PAYLOAD_TYPE, PAYLOAD, [api.builder]).signatures[0].sig)
    ]
    assert b"CERTIFICATE" not in data
    # Indexed as evidence about its subject, of the build kind.
    about = {e["index"]: e for e in api.get(f"/v1/artifacts/{SUBJECT}")["events"]}
    assert about[receipt["index"]]["kind"] == "build"
    assert about[receipt["index"]]["signer"]["keyid"] == api.builder.keyid


def test_slsa_v0_2_provenance_naming_a_release_is_a_build_of_it(api: Api) -> None:
    receipt = api.post(as_builders_send_it(with_release(PAYLOAD), api.builder))
    timeline = api.get(f"/v1/releases/{PRODUCT}/{VERSION}/timeline")
    kinds = {e["index"]: e["kind"] for e in timeline["events"]}
    assert kinds[receipt["index"]] == "build", timeline


def test_the_log_audits_and_a_dossier_with_a_keyless_append_verifies(api: Api) -> None:
    api.post(as_builders_send_it(with_release(PAYLOAD.replace(b"workflow_dispatch", b"push")), api.builder))

    async def audit() -> int:
        store = await PostgresStore.connect(api.ledger.dsn, min_size=1, max_size=2)
        try:
            return (await audit_store(store, api.ledger.signer.verifier(), progress=False)).tree_size
        finally:
            await store.close()

    assert asyncio.run(audit()) >= 6
    raw = api.client.get(f"/v1/releases/{PRODUCT}/{VERSION}/dossier", headers=bearer(api.token))
    assert raw.status_code == 200, raw.text
    dossier = msgspec.json.decode(raw.content, type=Dossier)
    report = verify_dossier(dossier, api.ledger.signer.verifier())
    signers = {parse_entry(base64.b64decode(e.entry)).envelope.signatures[0].keyid for e in dossier.entries}
    assert signers == {api.builder.keyid}
    assert report is not None
