"""Pooled sessions keep no state between calls: a search's planner setting ends with the search.

The pool releases connections without asyncpg's reset query (`postgres._keep_session`), so
anything a call SETs at session level would outlive it and reach every later call on that
connection, append transactions included. A pool of one connection makes "the next call"
certain to run on the connection the search used. Real PostgreSQL.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from ledger_harness import Ledger, init_ledger

from ledger.storage.postgres import PostgresStore
from ledger.storage.postgres_index import PostgresEvidenceIndex

DIGEST = "sha256:" + "ab" * 32
SHOW = "SHOW plan_cache_mode"


@pytest.fixture
def ledger(fresh_dsn: str, tmp_path: Path) -> Ledger:
    return init_ledger(fresh_dsn, tmp_path)


async def _modes_around_searches(dsn: str) -> dict[str, str]:
    """plan_cache_mode on the pool's one connection: before, during and after searches, when appending."""
    store = await PostgresStore.connect(dsn, min_size=1, max_size=1)
    index = PostgresEvidenceIndex(store.pool)
    try:
        pool = store.pool
        modes = {"default": await pool.fetchval(SHOW)}
        async with index._custom_plans() as conn:  # what every search and artifact query runs under
            modes["searching"] = await conn.fetchval(SHOW)
        modes["after searching"] = await pool.fetchval(SHOW)
        await index.search_entries(
            start=0, stop=None, kinds=["key.registered"], product=None, version=None, signers=(), limit=10
        )
        modes["after search"] = await pool.fetchval(SHOW)
        await index.search_entries(
            start=0, stop=None, kinds=["key.registered"], product="p", version=None, signers=(), limit=10
        )  # a combination: searched a window at a time
        modes["after combined search"] = await pool.fetchval(SHOW)
        await index.entries_about_artifact(DIGEST, 0, 10)
        modes["after artifact"] = await pool.fetchval(SHOW)
        async with store.append_transaction() as txn:
            modes["in append transaction"] = await txn._conn.fetchval(SHOW)
        return modes
    finally:
        await store.close()


def test_a_search_leaves_the_next_call_on_its_connection_with_the_default_plan_cache_mode(
    ledger: Ledger,
) -> None:
    modes = asyncio.run(_modes_around_searches(ledger.dsn))
    default = modes.pop("default")
    assert default != "force_custom_plan"  # the server's own setting: `auto` unless configured
    assert modes.pop("searching") == "force_custom_plan"  # searches still plan for their values
    assert modes == dict.fromkeys(modes, default)
