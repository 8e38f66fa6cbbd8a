"""The per-release and key-event back-link chains, end to end through the service."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from ledger_harness import evidence, init_ledger, register, revoke, to_json, token
from litestar.testing import TestClient

from ledger.core.checkpoint import open_checkpoint
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.encoding import b64decode_strict
from ledger.core.entry import parse_entry
from ledger.core.keys import SignerKey
from ledger.errors import ChainError
from ledger.records.predicates import RELEASE_SEAL
from ledger.rules.replay import LogReplayer
from ledger.service.app import Settings, create_app


def _seal(signer: SignerKey, count: int, head: str, product: str = "prod", version: str = "1.0") -> bytes:
    body = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "release", "digest": {"sha256": "ab" * 32}}],
        "predicateType": RELEASE_SEAL,
        "predicate": {"release": {"product": product, "version": version}, "count": count, "head": head},
    }
    return to_json(sign_envelope(INTOTO_PAYLOAD_TYPE, msgspec.json.encode(body), [signer]))


@pytest.fixture
def service(fresh_dsn: str, tmp_path: Path):
    ledger = init_ledger(fresh_dsn, tmp_path)
    admin = {"Authorization": f"Bearer {token(fresh_dsn, 'admin')}"}
    with TestClient(create_app(Settings(dsn=fresh_dsn, signer=ledger.signer, max_delay=0))) as client:
        pipeline = SignerKey.generate("ci.test/pipeline")
        response = client.post(
            "/v1/entries",
            content=to_json(register(ledger.signer, pipeline, ["appender", "release-manager"])),
            headers=admin,
        )
        assert response.status_code == 201, response.text
        yield client, admin, ledger, pipeline


def _entries(client: TestClient, headers: dict[str, str]) -> list[bytes]:
    page = client.get("/v1/entries", params={"start": 0, "limit": 1000}, headers=headers).json()
    return [b64decode_strict(e["entry"]) for e in page["entries"]]


def test_release_events_form_their_own_chain_and_a_seal_closes_it(service) -> None:
    client, headers, _ledger, pipeline = service
    receipts = []
    for n in range(3):
        body = to_json(evidence(pipeline, product="prod", version="1.0", n=n))
        receipts.append(client.post("/v1/entries", content=body, headers=headers).json())
        other = to_json(evidence(pipeline, product="prod", version="2.0", n=n))
        assert client.post("/v1/entries", content=other, headers=headers).status_code == 201
    entries = {parse_entry(data).index: parse_entry(data) for data in _entries(client, headers)}
    links = [entries[r["index"]].release for r in receipts]
    assert [link.seq for link in links] == [0, 1, 2]
    assert links[0].prev is None
    assert (links[1].prev.index, links[1].prev.leaf_hash) == (receipts[0]["index"], receipts[0]["leaf_hash"])
    assert (links[2].prev.index, links[2].prev.leaf_hash) == (receipts[1]["index"], receipts[1]["leaf_hash"])

    stale = client.post("/v1/entries", content=_seal(pipeline, 2, receipts[1]["leaf_hash"]), headers=headers)
    assert stale.status_code == 409, stale.text
    sealed = client.post("/v1/entries", content=_seal(pipeline, 3, receipts[2]["leaf_hash"]), headers=headers)
    assert sealed.status_code == 201, sealed.text
    late = client.post("/v1/entries", content=to_json(evidence(pipeline, n=9)), headers=headers)
    assert late.status_code == 409, late.text
    assert "sealed" in late.json()["detail"]
    # Other releases are unaffected by the seal.
    assert (
        client.post(
            "/v1/entries", content=to_json(evidence(pipeline, version="2.0", n=9)), headers=headers
        ).status_code
        == 201
    )


def test_key_events_chain_and_checkpoints_name_the_newest(service) -> None:
    client, headers, ledger, _pipeline = service
    second = SignerKey.generate("ci.test/second")
    client.post(
        "/v1/entries", content=to_json(register(ledger.signer, second, ["appender"])), headers=headers
    )
    receipt = client.post(
        "/v1/entries", content=to_json(revoke(ledger.signer, second.keyid)), headers=headers
    ).json()
    entries = [parse_entry(data) for data in _entries(client, headers)]
    key_links = [(e.index, e.keys.seq) for e in entries if e.keys is not None]
    assert key_links == [(0, 0), (1, 1), (2, 2), (3, 3)]
    checkpoint = open_checkpoint(receipt["checkpoint"], ledger.signer.verifier())
    assert checkpoint.extensions[0] == f"evledger-keys {receipt['index']}"
    assert checkpoint.extensions[1].startswith("evledger-index ")  # the completeness index follows


def test_the_replayer_accepts_the_log_and_catches_a_forged_back_link(service) -> None:
    client, headers, _ledger, pipeline = service
    for n in range(4):
        client.post("/v1/entries", content=to_json(evidence(pipeline, n=n)), headers=headers)
    log = _entries(client, headers)
    replayer = LogReplayer()
    for data in log:
        replayer.check(data)
    # A log whose release chain skips an event (entry 3 claims to follow entry 1) is refused.
    forged = parse_entry(log[4])
    link = msgspec.structs.replace(forged.release, prev=parse_entry(log[3]).release.prev, seq=1)
    from ledger.core.entry import encode_entry  # noqa: PLC0415 - local to the attack

    tampered = encode_entry(
        forged.index, bytes.fromhex(forged.prev), forged.time, forged.envelope, release=link
    )
    replayer = LogReplayer()
    for data in log[:4]:
        replayer.check(data)
    with pytest.raises(ChainError, match="release back-link"):
        replayer.check(tampered)
