"""The completeness index's stored heads and per-artifact chains on PostgreSQL (issue #13).

`index_heads` holds the head of every release, artifact and key-event chain, written in the
transaction of the batch that extends it (011_index_heads.sql); a head only moves forward.
Artifact chains hold across batches and across two service processes, and a ledger upgraded
to the index begins its artifact chains at its size then (`index_state.chained_from`).
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import msgspec
import pytest
from ledger_harness import Ledger, evidence, init_ledger, live_server, register, to_json, token
from litestar.testing import TestClient
from pre_issue9_support import OLD_SIZE, UNDATED_APPROVAL, entry_envelope, ledger_key, resigned, restore

from ledger.append.appender import append_direct
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.encoding import format_time
from ledger.core.entry import ChainLink, parse_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.core.sparse_merkle import KEY_EVENTS_KEY, Head, artifact_key, release_key
from ledger.rules.chains import Chains
from ledger.rules.replay import LogReplayer
from ledger.service.app import Settings, create_app
from ledger.storage.migrate import migrate
from ledger.storage.postgres import PostgresStore
from ledger.storage.protocol import IndexHeadRow
from ledger.verify.audit import audit_store

pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <_io.FileIO:pytest.PytestUnraisableExceptionWarning"
)
_HEADS_SQL = """SELECT key_hash, bucket, kind, product, version, digest, count, last_idx, last_leaf
                FROM index_heads"""


async def _fetch(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def stored_heads(dsn: str) -> dict[bytes, IndexHeadRow]:
    rows = asyncio.run(_fetch(dsn, _HEADS_SQL))
    return {
        bytes(r[0]): IndexHeadRow(bytes(r[0]), r[1], r[2], r[3], r[4], r[5], Head(r[6], r[7], bytes(r[8])))
        for r in rows
    }


def log_of(dsn: str) -> list[bytes]:
    return [bytes(r[0]) for r in asyncio.run(_fetch(dsn, "SELECT data FROM entries ORDER BY idx"))]


def recomputed_heads(log: list[bytes]) -> dict[bytes, IndexHeadRow]:
    """Every chain's head, from the entries' own links (every chain is complete from its first member)."""
    chains = Chains()
    for data in log:
        entry = parse_entry(data)
        chains.advance(entry.index, leaf_hash(data), entry.release, entry.keys, "", entry.artifacts)
    return {row.key_hash: row for row in chains.index_rows()}


def assert_artifact_chains_whole(log: list[bytes]) -> dict[str, int]:
    """Every artifact chain runs seq 0..n-1, each member linking to the one before; returns the lengths."""
    newest: dict[str, tuple[int, bytes, int]] = {}
    for data in log:
        entry = parse_entry(data)
        for link in entry.artifacts or ():
            before = newest.get(link.digest)
            if before is None:
                assert (link.seq, link.prev) == (0, None), entry.index
            else:
                assert link.seq == before[2] + 1, entry.index
                assert link.prev == ChainLink(before[0], before[1].hex()), entry.index
            newest[link.digest] = (entry.index, leaf_hash(data), link.seq)
    return {d: seq + 1 for d, (_, _, seq) in newest.items()}


def replay(log: list[bytes], chained_from: int | None) -> None:
    replayer = LogReplayer(chained_from=chained_from)
    for data in log:
        replayer.check(data)


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        (("release", "prod", "1.0"), release_key("prod", "1.0")),
        (("release", "Prödükt \\ x", "v2 ü"), release_key("Prödükt \\ x", "v2 ü")),
        (("artifact", "sha256:" + "ab" * 32), artifact_key("sha256:" + "ab" * 32)),
        (("keys",), KEY_EVENTS_KEY),
    ],
)
def test_the_key_hash_sql_computes_is_the_index_key(
    fresh_dsn: str, fields: tuple[str, ...], key: bytes
) -> None:
    asyncio.run(migrate(fresh_dsn))
    placeholders = ", ".join(f"${n + 1}::text" for n in range(len(fields)))
    rows = asyncio.run(_fetch(fresh_dsn, f"SELECT evledger_index_key({placeholders})", *fields))
    assert bytes(rows[0][0]) == key


@pytest.fixture
def service(fresh_dsn: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Ledger, SignerKey]]:
    ledger = init_ledger(fresh_dsn, tmp_path)
    admin = {"Authorization": f"Bearer {token(fresh_dsn, 'admin')}"}
    with TestClient(create_app(Settings(dsn=fresh_dsn, signer=ledger.signer, max_delay=0))) as client:
        pipeline = SignerKey.generate("ci.test/pipeline")
        body = to_json(register(ledger.signer, pipeline, ["appender"]))
        assert client.post("/v1/entries", content=body, headers=admin).status_code == 201
        yield client, admin, ledger, pipeline


def test_index_heads_hold_every_chains_head_after_random_appends(service) -> None:
    client, headers, ledger, pipeline = service
    rng = random.Random(11)  # noqa: S311 - a repeatable workload, not a secret
    numbers = itertools.count()
    for _ in range(25):
        bodies = []
        for _ in range(rng.choice([1, 1, 3, 8])):
            product = rng.choice([None, "prod", "other"])
            bodies.append(to_json(evidence(pipeline, product=product, version=rng.choice(["1.0", "2.0"]),
                                           n=rng.randrange(6), serial=next(numbers))))  # fmt: skip
        if len(bodies) == 1:
            response = client.post("/v1/entries", content=bodies[0], headers=headers)
        else:
            content = b'{"envelopes":[' + b",".join(bodies) + b"]}"
            response = client.post("/v1/entries/batch", content=content, headers=headers)
        assert response.status_code == 201, response.text
    log = log_of(ledger.dsn)
    lengths = assert_artifact_chains_whole(log)
    assert len(lengths) == 6
    assert sum(lengths.values()) == len(log) - 2  # every statement names one artifact
    stored = stored_heads(ledger.dsn)
    assert stored == recomputed_heads(log)
    assert {row.kind for row in stored.values()} == {"release", "artifact", "keys"}
    assert stored[KEY_EVENTS_KEY].head.count == 2
    replay(log, 0)  # a ledger created with the index: chained from its first entry
    chained_from = asyncio.run(_fetch(ledger.dsn, "SELECT chained_from FROM index_state"))[0][0]
    assert chained_from == 0


def test_a_statement_naming_more_than_64_sha256_subjects_is_refused_with_422(service) -> None:
    client, headers, _ledger, pipeline = service

    def naming(count: int) -> bytes:
        body = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": f"a{n}", "digest": {"sha256": f"{n:064x}"}} for n in range(count)],
            "predicateType": "https://evledger.test/generic/v1",
            "predicate": {},
        }
        return to_json(sign_envelope(INTOTO_PAYLOAD_TYPE, msgspec.json.encode(body), [pipeline]))

    refused = client.post("/v1/entries", content=naming(65), headers=headers)
    assert refused.status_code == 422, refused.text
    assert "at most 64" in refused.text
    accepted = client.post("/v1/entries", content=naming(64), headers=headers)
    assert accepted.status_code == 201, accepted.text


def test_a_head_only_moves_forward_and_is_never_deleted(service) -> None:
    client, headers, ledger, pipeline = service
    for n in range(2):
        body = to_json(evidence(pipeline, n=1, serial=n))
        assert client.post("/v1/entries", content=body, headers=headers).status_code == 201
    key = artifact_key(f"sha256:{1:064x}")
    assert stored_heads(ledger.dsn)[key].head.count == 2
    refused = [
        ("UPDATE index_heads SET count = 1 WHERE key_hash = $1", "may only move forward"),
        ("UPDATE index_heads SET last_idx = 0 WHERE key_hash = $1", "may only move forward"),
        ("UPDATE index_heads SET digest = 'sha256:00' WHERE key_hash = $1", "may only move forward"),
        ("DELETE FROM index_heads WHERE key_hash = $1", "never removed"),
    ]
    for sql, message in refused:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=message):
            asyncio.run(_fetch(ledger.dsn, sql, key))
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        asyncio.run(_fetch(ledger.dsn, "TRUNCATE index_heads"))
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        asyncio.run(_fetch(ledger.dsn, "UPDATE index_state SET chained_from = 5"))
    asyncio.run(
        _fetch(
            ledger.dsn, "UPDATE index_heads SET count = 3, last_idx = last_idx + 1 WHERE key_hash = $1", key
        )
    )


# --- an upgraded ledger ---------------------------------------------------------------------------


def test_an_upgraded_ledger_chains_artifacts_from_its_size_then(fresh_dsn: str) -> None:
    asyncio.run(restore(fresh_dsn))
    asyncio.run(migrate(fresh_dsn))
    assert asyncio.run(_fetch(fresh_dsn, "SELECT chained_from FROM index_state"))[0][0] == OLD_SIZE
    old = log_of(fresh_dsn)
    assert len(old) == OLD_SIZE
    assert all(parse_entry(data).artifacts is None for data in old)
    stored = stored_heads(fresh_dsn)
    assert stored == recomputed_heads(old)  # its release chains and its key-event chain
    assert stored[KEY_EVENTS_KEY].head.count == 7
    assert {row.kind for row in stored.values()} == {"release", "keys"}
    assert sum(row.kind == "release" for row in stored.values()) >= 2

    signer = ledger_key()
    approval = asyncio.run(entry_envelope(fresh_dsn, UNDATED_APPROVAL))  # about an artifact named 19 times
    now = format_time(datetime.now(UTC))
    first = resigned(approval, signer, comment="after the upgrade", signed_at=now)
    second = resigned(approval, signer, comment="after the upgrade, again", signed_at=now)
    receipts = asyncio.run(append_direct(fresh_dsn, signer, [first]))
    receipts += asyncio.run(append_direct(fresh_dsn, signer, [second]))
    assert [r.index for r in receipts] == [OLD_SIZE, OLD_SIZE + 1]
    log = log_of(fresh_dsn)
    lengths = assert_artifact_chains_whole(log)  # they begin at the upgrade, not at older mentions
    assert lengths == {"sha256:" + "4f2a" * 16: 2}
    assert stored_heads(fresh_dsn) == recomputed_heads(log)
    replay(log, OLD_SIZE)
    replay(log, None)  # without a stated first chained index: where links begin

    async def audited() -> int:
        store = await PostgresStore.connect(fresh_dsn, min_size=1, max_size=2)
        try:
            return (await audit_store(store, signer.verifier(), progress=False)).tree_size
        finally:
            await store.close()

    assert asyncio.run(audited()) == OLD_SIZE + 2


# --- two service processes ------------------------------------------------------------------------


@pytest.fixture
def two_servers(fresh_dsn: str, tmp_path: Path) -> Iterator[tuple[Ledger, list[str]]]:
    ledger = init_ledger(fresh_dsn, tmp_path)
    servers = [live_server(ledger) for _ in range(2)]
    with ExitStack() as stack:
        with ThreadPoolExecutor(max_workers=2) as pool:
            starting = [pool.submit(server.__enter__) for server in servers]
        for server, future in zip(servers, starting, strict=True):
            if future.exception() is None:
                stack.push(server)
        yield ledger, [future.result() for future in starting]


def test_artifact_chains_hold_across_two_service_processes(two_servers: tuple[Ledger, list[str]]) -> None:
    ledger, urls = two_servers
    admin, appender = token(ledger.dsn, "admin"), token(ledger.dsn, "appender")
    key = SignerKey.generate("ci.test/two")
    response = httpx.post(
        urls[0] + "/v1/entries", content=to_json(register(ledger.signer, key, ["appender"])),
        headers={"Authorization": f"Bearer {admin}"}, timeout=30,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    serials = itertools.count()

    async def client(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            for _ in range(15):
                serial = next(serials)
                body = msgspec.json.encode(evidence(key, n=serial % 3, serial=serial))
                reply = await http.post(
                    "/v1/entries", content=body, headers={"Authorization": f"Bearer {appender}"}
                )
                assert reply.status_code == 201, reply.text

    async def load() -> None:
        await asyncio.gather(*(client(url) for url in urls for _ in range(3)))

    asyncio.run(load())
    log = log_of(ledger.dsn)
    assert assert_artifact_chains_whole(log) == {f"sha256:{n:064x}": 30 for n in range(3)}
    assert stored_heads(ledger.dsn) == recomputed_heads(log)
    replay(log, 0)
