"""Entry times come from one clock, the database's (issue #9), read once the head is locked.

A sequencer whose own clock is a few seconds off (within the allowed skew) still stamps
the database's time; one ten years fast refuses to stamp at all. Real PostgreSQL.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from ledger_harness import Ledger, evidence, init_ledger

from ledger.append.batch import PendingRequest
from ledger.append.bootstrap import load_registry
from ledger.append.sequencer import Appended, Sequencer
from ledger.core.encoding import parse_time
from ledger.errors import UnavailableError
from ledger.rules.admission import AS_OF_NOW, admit
from ledger.storage.postgres import PostgresStore


async def _append_with_clock(ledger: Ledger, offset: timedelta) -> tuple[Appended | BaseException, datetime]:
    """Append one envelope through a sequencer whose clock is off by `offset`; also the database's time."""
    store = await PostgresStore.connect(ledger.dsn)
    try:
        registry = await load_registry(store, ledger.signer.verifier())
        sequencer = Sequencer(
            store, ledger.signer, registry, max_delay=0, clock=lambda: datetime.now(UTC) + offset
        )
        sequencer.start()
        item = admit(evidence(ledger.signer, n=int(offset.total_seconds())), registry, AS_OF_NOW)
        try:
            outcome: Appended | BaseException = await sequencer.append(PendingRequest([item]))
        except UnavailableError as exc:
            outcome = exc
        await sequencer.stop()
    finally:
        await store.close()
    conn = await asyncpg.connect(ledger.dsn)
    try:
        database_now: datetime = await conn.fetchval("SELECT clock_timestamp()")
    finally:
        await conn.close()
    return outcome, database_now


@pytest.fixture
def ledger(fresh_dsn: str, tmp_path: Path) -> Ledger:
    return init_ledger(fresh_dsn, tmp_path)


def test_a_sequencer_a_few_seconds_off_stamps_the_database_time(ledger: Ledger) -> None:
    outcome, database_now = asyncio.run(_append_with_clock(ledger, timedelta(seconds=6)))
    assert isinstance(outcome, Appended), outcome
    stamped = parse_time(outcome.time)
    # Stamped by the database a moment ago, not by the process clock six seconds ahead.
    assert database_now - timedelta(seconds=3) <= stamped <= database_now


def test_a_sequencer_ten_years_fast_appends_nothing(ledger: Ledger) -> None:
    outcome, _ = asyncio.run(_append_with_clock(ledger, timedelta(days=3652)))
    assert isinstance(outcome, UnavailableError), outcome
    assert "differ by more than 10 s" in str(outcome)
    assert outcome.retry_after >= 1
