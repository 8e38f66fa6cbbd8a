"""Shared by the HTTP integration tests: a scratch database, an in-process service, write counters.

Plain functions and context managers; each test module builds its fixtures from them.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from ledger_harness import ORIGIN, Ledger, init_ledger
from litestar.testing import TestClient

from ledger.core.checkpoint import Checkpoint, open_checkpoint
from ledger.core.proof import verify_inclusion
from ledger.service.app import Settings, create_app

# What one append writes, table by table: none of it may move when a request is refused.
_WRITTEN_SQL = """SELECT (SELECT tree_size FROM log_head WHERE id = 1),
                         (SELECT count(*) FROM entries),
                         (SELECT count(*) FROM checkpoints),
                         (SELECT max(encode(statement_hash, 'hex')) FROM entries),
                         (SELECT count(*) FROM idempotency_keys),
                         (SELECT coalesce(sum(width), 0) FROM tiles)"""


async def _execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def scratch_database(server_dsn: str) -> Iterator[str]:
    """A new empty database on the test server for a whole module; dropped afterwards."""
    name = f"evl_mod_{os.getpid()}_{secrets.token_hex(4)}"
    asyncio.run(_execute(server_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(server_dsn)._replace(path=f"/{name}"))
    finally:
        asyncio.run(_execute(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def scratch_ledger(server_dsn: str, directory: Path) -> Iterator[Ledger]:
    """An initialised ledger (entry 0 written) in a scratch database."""
    with scratch_database(server_dsn) as dsn:
        yield init_ledger(dsn, directory)


@contextmanager
def service(ledger: Ledger, **knobs: object) -> Iterator[TestClient]:  # type: ignore[type-arg]
    """The service in-process, its lifespan (pool, registry, sequencer) running for the block."""
    app = create_app(Settings(dsn=ledger.dsn, signer=ledger.signer, **knobs))  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _written(dsn: str) -> tuple[object, ...]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(_WRITTEN_SQL)
    finally:
        await conn.close()
    assert row is not None
    return tuple(row)


def written(dsn: str) -> tuple[object, ...]:
    """(head size, entries, checkpoints, greatest statement hash, idempotency keys, tile hashes) as stored."""
    return asyncio.run(_written(dsn))


@contextmanager
def nothing_written(dsn: str) -> Iterator[None]:
    """Assert that the block leaves every log table exactly as it found it."""
    before = written(dsn)
    yield
    assert written(dsn) == before, "a refused request wrote to the log"


def check_error(response: httpx.Response, status: int) -> dict[str, object]:
    """The response is an error of `status` in the §4 shape, and tells nothing of the internals."""
    assert response.status_code == status, (response.status_code, response.text)
    assert "Traceback" not in response.text
    body = response.json()
    assert set(body) == {"status", "error", "detail"}, body
    assert body["status"] == status
    assert isinstance(body["error"], str)
    assert body["error"]
    assert isinstance(body["detail"], str)
    return body


def opened(note: str, ledger: Ledger) -> Checkpoint:
    """A checkpoint note verified with the ledger's key."""
    return open_checkpoint(note, ledger.signer.verifier(), ORIGIN)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def verify_receipt(receipt: dict[str, object], ledger: Ledger) -> Checkpoint:
    """Check a receipt on its own: its checkpoint is signed by the ledger and its proof leads to the root."""
    assert set(receipt) == {"index", "leaf_hash", "time", "checkpoint", "inclusion_proof"}, receipt
    checkpoint = opened(str(receipt["checkpoint"]), ledger)
    index = receipt["index"]
    assert isinstance(index, int)
    proof = receipt["inclusion_proof"]
    assert isinstance(proof, list)
    verify_inclusion(
        index,
        checkpoint.size,
        bytes.fromhex(str(receipt["leaf_hash"])),
        [bytes.fromhex(h) for h in proof],
        checkpoint.root_hash,
    )
    return checkpoint
