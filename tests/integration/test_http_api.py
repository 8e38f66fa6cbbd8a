"""The HTTP API's happy paths (docs/http-api.md): receipts that prove themselves, reads, tiles, operations.

Everything a client is given is checked with the pure core only (`ledger.core`):
the checkpoint's signature with the ledger key, inclusion and consistency
proofs, leaf hashes of the exact entry bytes, and the tree root rebuilt from tiles.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from ledger_harness import Ledger, evidence, register, revoke, token
from litestar.testing import TestClient
from service_support import (
    bearer,
    check_error,
    nothing_written,
    opened,
    scratch_ledger,
    service,
    verify_receipt,
    written,
)

from ledger.core.checkpoint import Checkpoint
from ledger.core.compact_range import root_from_leaf_hashes
from ledger.core.dsse import Envelope
from ledger.core.entry import parse_entry, verify_chain
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.core.proof import verify_consistency, verify_inclusion
from ledger.core.tiles import TILE_WIDTH, decode_entry_bundle, encode_index, split_tile, subtree_hash

_numbers = itertools.count()


@dataclass
class Api:
    client: TestClient  # type: ignore[type-arg]
    ledger: Ledger
    admin: str
    auditor: str

    def post(self, path: str, body: object, tok: str | None = None) -> httpx.Response:
        return self.client.post(path, content=msgspec.json.encode(body), headers=bearer(tok or self.admin))

    def get(self, path: str, tok: str | None = None) -> httpx.Response:
        response = self.client.get(path, headers=bearer(tok or self.auditor))
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response

    def checkpoint(self) -> Checkpoint:
        response = self.get("/v1/checkpoint")
        assert response.status_code == 200, response.text
        return opened(response.text, self.ledger)

    def entry(self, index: int) -> bytes:
        response = self.get(f"/v1/entries/{index}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"index", "leaf_hash", "entry"}
        data = base64.b64decode(body["entry"], validate=True)
        assert body["index"] == index
        assert body["leaf_hash"] == leaf_hash(data).hex()
        return data


@pytest.fixture(scope="module")
def api(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("http-api")) as ledger:
        admin, auditor = token(ledger.dsn, "admin"), token(ledger.dsn, "auditor")
        with service(ledger) as client:
            yield Api(client, ledger, admin, auditor)


def fresh(api: Api, signer: SignerKey | None = None) -> Envelope:
    return evidence(signer or api.ledger.signer, n=next(_numbers))


def stored_checkpoint_note(dsn: str, size: int) -> str | None:
    async def run() -> str | None:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval("SELECT note FROM checkpoints WHERE tree_size = $1", size)  # type: ignore[no-any-return]
        finally:
            await conn.close()

    return asyncio.run(run())


def hashes(hex_list: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hex_list]


def test_append_returns_a_receipt_proving_inclusion_under_a_durable_checkpoint(api: Api) -> None:
    envelope = fresh(api)
    response = api.post("/v1/entries", envelope)
    assert response.status_code == 201, response.text
    receipt = response.json()
    checkpoint = verify_receipt(receipt, api.ledger)
    assert receipt["index"] < checkpoint.size

    # The exact entry bytes: their leaf hash is the receipt's, and they hold the envelope we sent.
    data = api.entry(receipt["index"])
    assert leaf_hash(data).hex() == receipt["leaf_hash"]
    entry = parse_entry(data)
    assert entry.index == receipt["index"]
    assert entry.time == receipt["time"]
    assert entry.envelope == envelope
    prev = api.entry(receipt["index"] - 1)
    assert entry.prev == leaf_hash(prev).hex()

    # The receipt's checkpoint is stored, and the log has only grown from it.
    assert stored_checkpoint_note(api.ledger.dsn, checkpoint.size) == receipt["checkpoint"]
    latest = api.checkpoint()
    assert latest.size >= checkpoint.size
    proof = api.get(f"/v1/proofs/consistency?first={checkpoint.size}&second={latest.size}").json()
    assert (proof["first"], proof["second"]) == (checkpoint.size, latest.size)
    verify_consistency(
        checkpoint.size, latest.size, hashes(proof["hashes"]), checkpoint.root_hash, latest.root_hash
    )

    # The proof service gives the same path as the receipt at the receipt's tree size.
    again = api.get(f"/v1/proofs/inclusion?index={receipt['index']}&tree_size={checkpoint.size}").json()
    assert again == {
        "index": receipt["index"],
        "tree_size": checkpoint.size,
        "leaf_hash": receipt["leaf_hash"],
        "hashes": receipt["inclusion_proof"],
    }


def test_batch_of_300_gets_300_receipts_in_order_with_gapless_indices(api: Api) -> None:
    envelopes = [fresh(api) for _ in range(300)]
    size_before = written(api.ledger.dsn)[0]
    response = api.post("/v1/entries/batch", {"envelopes": envelopes})
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"receipts"}
    receipts = body["receipts"]
    assert [r["index"] for r in receipts] == list(range(size_before, size_before + 300))
    checkpoints = {verify_receipt(r, api.ledger) for r in receipts}
    assert len(checkpoints) == 1  # one request, one batch, one checkpoint
    page = api.get(f"/v1/entries?start={size_before}&limit=300").json()["entries"]
    for receipt, view, envelope in zip(receipts, page, envelopes, strict=True):
        data = base64.b64decode(view["entry"])
        assert view["index"] == receipt["index"]
        assert leaf_hash(data).hex() == receipt["leaf_hash"] == view["leaf_hash"]
        assert parse_entry(data).envelope == envelope


def test_entry_pages_cover_the_log_as_one_unbroken_chain(api: Api) -> None:
    if written(api.ledger.dsn)[0] < 150:
        assert (
            api.post("/v1/entries/batch", {"envelopes": [fresh(api) for _ in range(150)]}).status_code == 201
        )
    size = api.checkpoint().size
    views: list[dict[str, Any]] = []
    start: int | None = 0
    pages = 0
    while start is not None:
        page = api.get(f"/v1/entries?start={start}&limit=64").json()
        assert set(page) == {"entries", "next"}
        assert [v["index"] for v in page["entries"]] == list(range(start, start + len(page["entries"])))
        views.extend(page["entries"])
        start = page["next"]
        pages += 1
    assert pages >= size // 64
    assert [v["index"] for v in views] == list(range(size))
    data = [base64.b64decode(v["entry"]) for v in views]
    assert [leaf_hash(d).hex() for d in data] == [v["leaf_hash"] for v in views]
    verify_chain(data)
    assert root_from_leaf_hashes(leaf_hash(d) for d in data) == api.checkpoint().root_hash


def test_inclusion_proof_by_leaf_hash_verifies_at_latest_and_older_sizes(api: Api) -> None:
    receipt = api.post("/v1/entries", fresh(api)).json()
    later = api.post("/v1/entries", fresh(api))
    assert later.status_code == 201
    latest = api.checkpoint()
    for query, size in [("", latest.size), (f"&tree_size={receipt['index'] + 1}", receipt["index"] + 1)]:
        proof = api.get(f"/v1/proofs/inclusion?leaf_hash={receipt['leaf_hash']}{query}").json()
        assert (proof["index"], proof["tree_size"], proof["leaf_hash"]) == (
            receipt["index"],
            size,
            receipt["leaf_hash"],
        )
        if size == latest.size:
            root = latest.root_hash
        else:
            leaves = [
                bytes.fromhex(v["leaf_hash"])
                for v in api.get(f"/v1/entries?start=0&limit={size}").json()["entries"]
            ]
            root = root_from_leaf_hashes(leaves)
        verify_inclusion(
            receipt["index"], size, bytes.fromhex(receipt["leaf_hash"]), hashes(proof["hashes"]), root
        )


def _tile(api: Api, path: str) -> tuple[bytes, str]:
    response = api.get(path)
    assert response.status_code == 200, (path, response.text)
    assert response.headers["content-type"].startswith("application/octet-stream")
    return response.content, response.headers.get("cache-control", "")


def test_tiles_and_entry_bundles_rebuild_the_checkpoint(api: Api) -> None:
    size = api.checkpoint().size
    if size <= TILE_WIDTH or size % TILE_WIDTH == 0:
        grow = max(TILE_WIDTH + 1 - size, 0) + 1
        assert (
            api.post("/v1/entries/batch", {"envelopes": [fresh(api) for _ in range(grow)]}).status_code == 201
        )
    checkpoint_text = api.get("/checkpoint").text
    assert checkpoint_text == api.get("/v1/checkpoint").text
    checkpoint = opened(checkpoint_text, api.ledger)
    size = checkpoint.size
    full, width = divmod(size, TILE_WIDTH)
    assert full >= 1
    assert width > 0

    paths = [f"/tile/0/{encode_index(k)}" for k in range(full)] + [f"/tile/0/{encode_index(full)}.p/{width}"]
    assert paths[0] == "/tile/0/000"
    assert paths[-1] == f"/tile/0/{full:03d}.p/{width}"
    leaves: list[bytes] = []
    level_one: list[bytes] = []
    for k, path in enumerate(paths):
        data, cache = _tile(api, path)
        tile_hashes = split_tile(data)
        if k < full:
            assert len(tile_hashes) == TILE_WIDTH
            assert "immutable" in cache
            level_one.append(subtree_hash(tile_hashes))
        else:
            assert len(tile_hashes) == width
            assert "immutable" not in cache
        leaves.extend(tile_hashes)
        # The entry bundle of the same tile: each entry hashes to the tile's leaf hash.
        bundle_path = path.replace("/tile/0/", "/tile/entries/")
        bundle, bundle_cache = _tile(api, bundle_path)
        entries = decode_entry_bundle(bundle, len(tile_hashes))
        assert [leaf_hash(e) for e in entries] == tile_hashes
        assert ("immutable" in bundle_cache) == (k < full)
        assert [parse_entry(e).index for e in entries] == list(
            range(k * TILE_WIDTH, k * TILE_WIDTH + len(entries))
        )
    assert len(leaves) == size
    assert root_from_leaf_hashes(leaves) == checkpoint.root_hash

    # Level 1 holds the roots of the full level-0 tiles.
    data, _ = _tile(api, f"/tile/1/000.p/{full}")
    assert split_tile(data) == level_one
    # A narrower partial of a stored tile is its prefix (C2SP: clients may ask for any width they know).
    prefix, _ = _tile(api, "/tile/0/000.p/5")
    assert split_tile(prefix) == leaves[:5]


def test_health_readiness_metrics_and_schema(api: Api) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    size = api.checkpoint().size
    assert ready.json()["tree_size"] == size

    metrics = api.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    lines = metrics.text.splitlines()
    assert "# TYPE evledger_tree_size gauge" in lines
    assert any(line.startswith("evledger_tree_size ") and float(line.split()[1]) == size for line in lines)
    for line in lines:
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            assert name
            float(value)

    schema = api.client.get("/schema/openapi.json")
    assert schema.status_code == 200
    document = json.loads(schema.text)
    assert document["openapi"].startswith("3.")
    for path in ["/v1/entries", "/v1/entries/batch", "/v1/checkpoint", "/v1/proofs/inclusion"]:
        assert path in document["paths"], path
    assert api.client.get("/schema").status_code == 200
    # The hot routes answer with ready-encoded JSON; their models are still documented.
    for path, method, status, model in [
        ("/v1/entries", "post", "201", "Receipt"),
        ("/v1/entries", "post", "200", "Receipt"),
        ("/v1/entries/batch", "post", "201", "BatchReceipts"),
        ("/v1/proofs/inclusion", "get", "200", "InclusionProof"),
        ("/v1/proofs/consistency", "get", "200", "ConsistencyProof"),
    ]:
        content = document["paths"][path][method]["responses"][status]["content"]["application/json"]
        assert content["schema"] == {"$ref": f"#/components/schemas/{model}"}, (path, status)
    assert set(document["components"]["schemas"]["InclusionProof"]["properties"]) == {
        "index",
        "tree_size",
        "leaf_hash",
        "hashes",
    }


def test_openapi_documents_the_bodies_the_append_routes_decode_by_hand(api: Api) -> None:
    document = api.client.get("/schema/openapi.json").json()
    schemas = document["components"]["schemas"]
    for path, model in [("/v1/entries", "Envelope"), ("/v1/entries/batch", "BatchRequest")]:
        body = document["paths"][path]["post"]["requestBody"]
        assert body["required"] is True
        assert body["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{model}"}
    envelope = schemas["Envelope"]
    assert set(envelope["required"]) == {"payloadType", "payload", "signatures"}  # the wire names
    assert "additionalProperties" not in envelope  # DSSE: unknown fields are ignored (and not stored)
    assert envelope["properties"]["signatures"]["items"] == {"$ref": "#/components/schemas/Signature"}
    assert set(schemas["Signature"]["required"]) == {"sig"}  # DSSE: keyid is optional
    envelopes = schemas["BatchRequest"]["properties"]["envelopes"]
    assert envelopes["items"] == {"$ref": "#/components/schemas/Envelope"}


def test_openapi_documents_every_error_with_the_one_error_body(api: Api) -> None:
    document = api.client.get("/schema/openapi.json").json()
    # Litestar's own validation error body (`status_code`, `detail`, `extra`) is never sent.
    assert '"status_code"' not in json.dumps(document)
    assert set(document["components"]["schemas"]["ErrorBody"]["required"]) == {"status", "error", "detail"}
    errors = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) < 400 or (path, status) == ("/readyz", "503"):  # readiness has its own body
                    continue
                errors += 1
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
    assert errors > 40
    append = document["paths"]["/v1/entries"]["post"]["responses"]
    assert {"400", "401", "403", "409", "413", "422", "503"} <= set(append)


def test_key_registered_through_the_api_signs_at_once_and_not_after_revocation(api: Api) -> None:
    key = SignerKey.generate("fresh.test/ci")
    registered = api.post("/v1/entries", register(api.ledger.signer, key, ["appender"], ["prod"]))
    assert registered.status_code == 201, registered.text
    verify_receipt(registered.json(), api.ledger)

    appender = token(api.ledger.dsn, "appender", ["prod"])
    signed = api.post("/v1/entries", fresh(api, key), tok=appender)
    assert signed.status_code == 201, signed.text
    receipt = signed.json()
    verify_receipt(receipt, api.ledger)
    assert parse_entry(api.entry(receipt["index"])).envelope.signatures[0].keyid == key.keyid

    revoked = api.post("/v1/entries", revoke(api.ledger.signer, key.keyid, "rotated"))
    assert revoked.status_code == 201, revoked.text
    with nothing_written(api.ledger.dsn):
        refused = api.post("/v1/entries", fresh(api, key), tok=appender)
    check_error(refused, 422)


def test_proofs_across_tile_boundaries_verify_against_roots_rebuilt_from_leaves(api: Api) -> None:
    size = api.checkpoint().size
    if size < TILE_WIDTH + 3:
        grow = TILE_WIDTH + 3 - size
        assert (
            api.post("/v1/entries/batch", {"envelopes": [fresh(api) for _ in range(grow)]}).status_code == 201
        )
    latest = api.checkpoint()
    size = latest.size
    leaves = [
        bytes.fromhex(v["leaf_hash"]) for v in api.get(f"/v1/entries?start=0&limit={size}").json()["entries"]
    ]
    assert root_from_leaf_hashes(leaves) == latest.root_hash
    sizes = sorted({1, 2, 3, 255, 256, 257, size - 1, size})
    roots = {n: root_from_leaf_hashes(leaves[:n]) for n in sizes}
    for first in sizes:
        proof = api.get(f"/v1/proofs/consistency?first={first}&second={size}").json()
        verify_consistency(first, size, hashes(proof["hashes"]), roots[first], latest.root_hash)
    for tree_size in [256, 257, size]:
        for index in sorted({0, 1, 254, 255, tree_size - 1} & set(range(tree_size))):
            proof = api.get(f"/v1/proofs/inclusion?index={index}&tree_size={tree_size}").json()
            assert proof["leaf_hash"] == leaves[index].hex()
            verify_inclusion(
                index,
                tree_size,
                leaves[index],
                hashes(proof["hashes"]),
                roots.get(tree_size) or root_from_leaf_hashes(leaves[:tree_size]),
            )
    same = api.get(f"/v1/proofs/consistency?first={size}&second={size}").json()
    assert same == {"first": size, "second": size, "hashes": []}


def test_checkpoint_is_plain_text_signed_by_the_ledger_key(api: Api) -> None:
    for path in ["/v1/checkpoint", "/checkpoint"]:
        response = api.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        checkpoint = opened(response.text, api.ledger)
        assert checkpoint.origin == api.ledger.signer.name
        assert checkpoint.size == written(api.ledger.dsn)[0]
