"""The completeness index through the service (issue #13): committed by every checkpoint, proven over HTTP.

Every checkpoint's `evledger-index` line must be the root recomputed from the entries below it
(a replay from entry 0); `GET /v1/index/proof` must prove each chain's head, or its absence,
against the checkpoint it returns, also after another process appended.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from ledger_harness import Ledger, evidence, live_server, register, to_json, token
from litestar.testing import TestClient
from service_support import bearer, check_error, scratch_ledger, service

from cli.demo import POLICY_FILE
from ledger.core.checkpoint import open_checkpoint
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.encoding import b64decode_strict
from ledger.core.keys import SignerKey
from ledger.core.sparse_merkle import (
    KEY_EVENTS_KEY,
    Head,
    artifact_key,
    index_root,
    release_key,
    verify_index_proof,
)
from ledger.query.index_follow import IndexFollower
from ledger.records.admin import encode_policy_record
from ledger.records.policy import load_policy_toml
from ledger.rules.chains import index_line_of
from ledger.rules.replay import LogReplayer
from ledger.storage.postgres import PostgresStore

PRODUCTS = [("app", "1.0"), ("app", "2.0"), ("tool", "0.1")]


@dataclass
class World:
    client: TestClient  # type: ignore[type-arg]
    ledger: Ledger
    writer: dict[str, str]
    reader: dict[str, str]
    pipeline: SignerKey

    def post(self, body: bytes) -> dict[str, Any]:
        response = self.client.post("/v1/entries", content=body, headers=self.writer)
        assert response.status_code == 201, response.text
        receipt: dict[str, Any] = response.json()
        return receipt

    def proof(self, **params: str) -> dict[str, Any]:
        response = self.client.get("/v1/index/proof", params=params, headers=self.reader)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def two_subjects(signer: SignerKey, product: str, version: str, a: int, b: int, *, step: int) -> bytes:
    body = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": "a", "digest": {"sha256": f"{a:064x}"}},
            {"name": "b", "digest": {"sha256": f"{b:064x}"}},
            {"name": "commit", "digest": {"gitCommit": "ab" * 20}},
        ],
        "predicateType": "https://evledger.test/generic/v1",
        "predicate": {"release": {"product": product, "version": version}, "pair": [a, b, step]},
    }
    return to_json(sign_envelope(INTOTO_PAYLOAD_TYPE, msgspec.json.encode(body), [signer]))


@pytest.fixture(scope="module")
def world(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("index")) as ledger, service(ledger) as client:
        writer = bearer(token(ledger.dsn, "admin"))
        pipeline = SignerKey.generate("ci.test/pipeline")
        w = World(client, ledger, writer, bearer(token(ledger.dsn, "auditor")), pipeline)
        w.post(to_json(register(ledger.signer, pipeline, ["appender"])))
        rng = random.Random(13)  # noqa: S311 - a reproducible workload, not a secret
        for n in range(40):
            product, version = rng.choice(PRODUCTS)
            artifact = rng.randrange(8)  # few artifacts, so their chains grow
            if n % 5 == 4:
                w.post(two_subjects(pipeline, product, version, artifact, rng.randrange(8), step=n))
            else:
                w.post(to_json(evidence(pipeline, product=product, version=version, n=artifact, step=n)))
        yield w


def stored(dsn: str) -> tuple[list[bytes], list[tuple[int, str]]]:
    async def read() -> tuple[list[bytes], list[tuple[int, str]]]:
        conn = await asyncpg.connect(dsn)
        try:
            entries = [r[0] for r in await conn.fetch("SELECT data FROM entries ORDER BY idx")]
            checkpoints = [(r[0], r[1]) for r in await conn.fetch("SELECT tree_size, note FROM checkpoints")]
        finally:
            await conn.close()
        return entries, checkpoints

    return asyncio.run(read())


def test_every_checkpoint_commits_to_the_index_recomputed_from_the_entries(world: World) -> None:
    entries, checkpoints = stored(world.ledger.dsn)
    notes = dict(checkpoints)
    assert len(notes) >= 40
    replayer = LogReplayer(chained_from=0)
    checked = 0
    for size, data in enumerate(entries, start=1):
        replayer.check(data)
        if size not in notes:
            continue
        checkpoint = open_checkpoint(notes[size], world.ledger.signer.verifier())
        line = index_line_of(checkpoint.extensions)
        assert line is not None, f"checkpoint {size} carries no evledger-index line"
        root, chained_from = line
        assert chained_from == 0
        assert root == index_root(replayer.chains.index().items()), f"checkpoint {size}"
        checked += 1
    assert checked == len(notes)


def _head(proof: dict[str, Any], key: bytes, world: World) -> Head | None:
    checkpoint = open_checkpoint(proof["checkpoint"], world.ledger.signer.verifier())
    assert checkpoint.size == proof["tree_size"]
    line = index_line_of(checkpoint.extensions)
    assert line is not None
    head = verify_index_proof(line[0], key, b64decode_strict(proof["proof"], "proof"))
    assert proof["key"] == key.hex()
    shown = proof["head"]
    assert (shown is None) == (head is None)
    if head is not None:
        assert (shown["count"], shown["last_index"], shown["last_leaf"]) == (
            head.count,
            head.last_index,
            head.last_leaf.hex(),
        )
    return head


def test_a_release_proof_names_the_head_of_its_timeline(world: World) -> None:
    for product, version in PRODUCTS:
        proof = world.proof(release=f"{product}/{version}")
        head = _head(proof, release_key(product, version), world)
        timeline = world.client.get(f"/v1/releases/{product}/{version}/timeline", headers=world.reader).json()
        assert head is not None
        assert (head.count, head.last_index, head.last_leaf.hex()) == (
            timeline["count"],
            timeline["head"]["index"],
            timeline["head"]["leaf_hash"],
        )


def test_an_artifact_proof_counts_every_entry_naming_it(world: World) -> None:
    for n in range(8):
        digest = f"sha256:{n:064x}"
        head = _head(world.proof(artifact=digest), artifact_key(digest), world)
        listed = world.client.get(f"/v1/artifacts/{digest}", headers=world.reader).json()["events"]
        naming = [e for e in listed if digest in e["subjects"]]
        if not naming:
            assert head is None
            continue
        assert head is not None
        assert head.count == len(naming)
        assert head.last_index == max(e["index"] for e in naming)


def test_an_artifact_nobody_recorded_is_proven_absent(world: World) -> None:
    digest = "sha256:" + "ee" * 32
    proof = world.proof(artifact=digest)
    assert proof["head"] is None
    assert _head(proof, artifact_key(digest), world) is None
    assert proof["chain"] == "artifact"
    assert proof["name"] == digest


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"release": "app/1.0", "artifact": "sha256:" + "00" * 32},
        {"release": "no-slash"},
        {"release": "/1.0"},
        {"release": "app/"},
        {"release": "p" * 257 + "/1"},
        {"artifact": "sha256:xyz"},
        {"artifact": "md5:" + "00" * 16},
        {"artifact": "sha256:" + "00" * 33},
        {"product": "app"},
        {"version": "1.0"},
        {"product": "app", "version": "1.0", "release": "app/1.0"},
        {"product": "", "version": "1.0"},
    ],
)
def test_a_malformed_proof_request_is_400(world: World, params: dict[str, str]) -> None:
    response = world.client.get("/v1/index/proof", params=params, headers=world.reader)
    check_error(response, 400)


def test_a_proof_needs_a_read_token(world: World) -> None:
    check_error(world.client.get("/v1/index/proof", params={"release": "app/1.0"}), 401)
    wrong = {"Authorization": "Bearer evl_not-a-token"}
    check_error(world.client.get("/v1/index/proof", params={"release": "app/1.0"}, headers=wrong), 401)


def test_another_process_appends_and_this_one_proves_the_new_head(world: World) -> None:
    with service(world.ledger) as other:
        receipt = other.post(
            "/v1/entries",
            content=to_json(evidence(world.pipeline, product="app", version="1.0", n=901)),
            headers=world.writer,
        ).json()
    proof = world.proof(release="app/1.0")  # this process's tree learns the other's batch from the heads
    head = _head(proof, release_key("app", "1.0"), world)
    assert head is not None
    assert head.last_index == receipt["index"]
    digest = f"sha256:{901:064x}"
    fresh = _head(world.proof(artifact=digest), artifact_key(digest), world)
    assert fresh == Head(1, receipt["index"], bytes.fromhex(receipt["leaf_hash"]))


def test_a_proof_at_an_earlier_checkpoint_puts_back_the_heads_moved_since(world: World) -> None:
    """What a dossier under an anchored (older) checkpoint needs: the index as it was there."""
    before = world.proof(release="app/2.0")
    at = before["tree_size"]
    old_head = before["head"]
    moved = [
        world.post(to_json(evidence(world.pipeline, product="app", version="2.0", n=3, step=2000 + i)))
        for i in range(3)
    ]
    world.post(to_json(register(world.ledger.signer, SignerKey.generate("ci.test/later"), ["appender"])))
    assert moved[-1]["index"] >= at

    async def prove_then() -> dict[bytes, Any]:
        store = await PostgresStore.connect(world.ledger.dsn, min_size=1, max_size=2)
        try:
            follower = IndexFollower()
            keys = {
                "release": release_key("app", "2.0"),
                "artifact": artifact_key(f"sha256:{3:064x}"),
                "absent": artifact_key("sha256:" + "ee" * 32),
                "keys": KEY_EVENTS_KEY,
            }
            return {name: await follower.prove(store, key, at) for name, key in keys.items()}
        finally:
            await store.close()

    proven = asyncio.run(prove_then())
    entries, notes = stored(world.ledger.dsn)
    replayer = LogReplayer(chained_from=0)
    for data in entries[:at]:
        replayer.check(data)
    then = replayer.chains.index()
    checkpoint = open_checkpoint(dict(notes)[at], world.ledger.signer.verifier())
    line = index_line_of(checkpoint.extensions)
    assert line is not None
    for name, key in {
        "release": release_key("app", "2.0"),
        "artifact": artifact_key(f"sha256:{3:064x}"),
        "absent": artifact_key("sha256:" + "ee" * 32),
        "keys": KEY_EVENTS_KEY,
    }.items():
        assert proven[name].checkpoint.tree_size == at
        assert verify_index_proof(line[0], key, proven[name].proof) == then.get(key), name
    assert then[release_key("app", "2.0")].last_index == old_head["last_index"]


def test_a_product_whose_name_holds_a_slash_is_proven_with_product_and_version(world: World) -> None:
    world.post(to_json(evidence(world.pipeline, product="acme/analyzer", version="5.0", n=77, step=77)))
    proof = world.proof(product="acme/analyzer", version="5.0")
    head = _head(proof, release_key("acme/analyzer", "5.0"), world)
    assert head is not None
    assert head.count == 1
    assert proof["name"] == "acme/analyzer/5.0"
    # `release=` splits at the first slash: product "acme", version "analyzer/5.0", which has no events.
    split = world.proof(release="acme/analyzer/5.0")
    assert split["head"] is None
    assert _head(split, release_key("acme", "analyzer/5.0"), world) is None


def test_proofs_and_dossiers_answer_while_the_same_process_appends(world: World) -> None:
    """A proof reads a snapshot while this process's sequencer commits batches: it must still answer.

    Without the guard between a proof's read and a batch's commit, the tree kept moving past every
    snapshot under steady appends, and proofs gave up with 503 (found by test_outage).
    """
    stop = threading.Event()
    statuses: list[int] = []
    numbers = itertools.count(5000)  # one statement each, across the threads

    def append() -> None:
        with httpx.Client(base_url=url, headers=world.writer, timeout=30) as client:
            while not stop.is_set():
                n = next(numbers)
                body = to_json(evidence(world.pipeline, product="app", version="3.0", n=n, step=n))
                statuses.append(client.post("/v1/entries", content=body).status_code)

    policy = load_policy_toml(POLICY_FILE.read_text(encoding="utf-8"))  # a dossier evaluates one
    world.post(
        to_json(sign_envelope(ADMIN_PAYLOAD_TYPE, encode_policy_record(policy), [world.ledger.signer]))
    )
    with live_server(world.ledger) as url:
        threads = [threading.Thread(target=append) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            with httpx.Client(base_url=url, headers=world.reader, timeout=30) as client:
                release = {"release": "app/3.0"}
                answers = [client.get("/v1/index/proof", params=release).status_code for _ in range(60)]
                answers += [client.get("/v1/releases/app/3.0/dossier").status_code for _ in range(10)]
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert set(statuses) == {201}
    assert len(statuses) > 50  # the appends really ran beside the proofs
    assert answers == [200] * 70
