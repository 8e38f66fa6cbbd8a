"""Index deltas in PostgreSQL (012_index_deltas.sql): written with each batch, read by the others, expired.

Two sequencers, each with its own pool as two service processes have, take turns on one ledger
database. Each must copy the other's batches in from their stored deltas, only recent deltas may
stay stored, and every checkpoint must still commit to the index the entries make (`audit`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from index_follow_support import count_takes
from ledger_harness import Ledger, evidence, register
from service_support import scratch_ledger

from ledger.append.batch import PendingRequest
from ledger.append.bootstrap import load_registry
from ledger.append.sequencer import Sequencer
from ledger.core.keys import SignerKey
from ledger.rules.admission import AS_OF_NOW, admit
from ledger.storage import postgres
from ledger.storage.postgres import PostgresStore
from ledger.verify.audit import audit_store

KEY = SignerKey.generate("deltas.test/ci")
WINDOW = 6  # entries: with one-entry batches, the deltas of the last six batches stay


@pytest.fixture
def ledger(pg_server_dsn: str, tmp_path: Path) -> Iterator[Ledger]:
    with scratch_ledger(pg_server_dsn, tmp_path) as ledger:
        yield ledger


async def _taking_turns(ledger: Ledger, turns: int) -> None:
    stores = [await PostgresStore.connect(ledger.dsn) for _ in range(2)]
    try:
        sequencers = []
        for store in stores:
            sequencer = Sequencer(store, ledger.signer, await load_registry(store, ledger.signer.verifier()))
            await sequencer.completeness.start(store)
            sequencer.start()
            sequencers.append(sequencer)
        first = sequencers[0]
        await first.append(
            PendingRequest(
                [admit(register(ledger.signer, KEY, ["appender"]), first.registry, AS_OF_NOW)], None
            )
        )
        for turn in range(turns):
            sequencer = sequencers[turn % 2]
            admitted = admit(evidence(KEY, n=turn), first.registry, AS_OF_NOW)
            await sequencer.append(PendingRequest([admitted], None))
        for sequencer in sequencers:
            await sequencer.stop()
    finally:
        for store in stores:
            await store.close()


async def _stored_deltas(dsn: str) -> list[tuple[int, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT from_size, to_size FROM index_deltas ORDER BY to_size")
        return [(r[0], r[1]) for r in rows]
    finally:
        await conn.close()


async def _audited(ledger: Ledger) -> int:
    store = await PostgresStore.connect(ledger.dsn)
    try:
        return (await audit_store(store, ledger.signer.verifier(), progress=False)).tree_size
    finally:
        await store.close()


def test_processes_taking_turns_copy_each_others_batches_and_keep_only_recent_deltas(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "INDEX_DELTA_WINDOW", WINDOW)
    taken = count_takes(monkeypatch)
    asyncio.run(_taking_turns(ledger, turns=12))
    size = asyncio.run(_audited(ledger))  # every checkpoint's index root is the one the entries make
    assert taken.count(True) >= 11, taken
    stored = asyncio.run(_stored_deltas(ledger.dsn))
    assert stored == [(s - 1, s) for s in range(size - WINDOW + 1, size + 1)]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(stored))
