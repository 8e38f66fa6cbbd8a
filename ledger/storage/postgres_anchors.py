"""`AnchorStore` on PostgreSQL: witness cosignatures and RFC 3161 tokens beside the checkpoints.

Two append-only tables (migrations/010_checkpoint_anchors.sql), written by the service's
witnessing task through the log store's pool, whose sessions run as the service role
(which may only SELECT and INSERT them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from ledger.storage.outage import unavailable_on_outage
from ledger.storage.protocol import Anchors

_ADD_COSIGNATURE_SQL = """
INSERT INTO checkpoint_cosignatures (tree_size, witness, line) VALUES ($1, $2, $3)
ON CONFLICT (tree_size, witness) DO NOTHING
"""
_ADD_TIMESTAMP_SQL = """
INSERT INTO checkpoint_timestamps (tree_size, tsa, token) VALUES ($1, $2, $3)
ON CONFLICT (tree_size, tsa) DO NOTHING
"""
_COSIGNATURES_SQL = (
    "SELECT line FROM checkpoint_cosignatures WHERE tree_size = $1 ORDER BY received_at, witness"
)
_TIMESTAMPS_SQL = (
    "SELECT tsa, token FROM checkpoint_timestamps WHERE tree_size = $1 ORDER BY received_at, tsa"
)
# The newest size with enough cosigners. First among the newest rows only (a backward scan of the
# primary key, bounded): witnesses cosign the same recent checkpoints, so it is nearly always there.
_RECENT_ROWS = 512
_LATEST_COSIGNED_SQL = """
SELECT tree_size FROM (
    SELECT tree_size FROM checkpoint_cosignatures WHERE witness = ANY($1::text[])
    ORDER BY tree_size DESC LIMIT $3
) AS recent
GROUP BY tree_size HAVING count(*) >= $2 ORDER BY tree_size DESC LIMIT 1
"""
_LAG_SQL = """
SELECT extract(epoch FROM clock_timestamp() - created_at)::float8 FROM checkpoints
WHERE tree_size > $1 ORDER BY tree_size LIMIT 1
"""
# The advisory lock key of the witnessing lease: the first 8 bytes of SHA-256("evledger witnessing").
WITNESSING_LOCK = 0x45222258E420F671


@unavailable_on_outage  # a lost connection is a 503 with Retry-After, not a 500
class PostgresAnchorStore:
    """The checkpoint anchors of one PostgreSQL ledger database, through its log store's pool."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        """Use `pool`, a `PostgresStore`'s (`store.pool`), which the store closes.

        Precondition: the database is migrated to 010_checkpoint_anchors.sql.
        """
        self._pool = pool

    async def add_cosignature(self, tree_size: int, witness: str, line: str) -> None:
        """Keep a witness's cosignature line; the first line per (size, witness) stands."""
        await self._pool.execute(_ADD_COSIGNATURE_SQL, tree_size, witness, line.removesuffix("\n"))

    async def add_timestamp(self, tree_size: int, authority: str, token: bytes) -> None:
        """Keep an authority's token; the first token per (size, authority) stands."""
        await self._pool.execute(_ADD_TIMESTAMP_SQL, tree_size, authority, token)

    async def anchors(self, tree_size: int) -> Anchors:
        """The lines and tokens kept for one checkpoint, oldest first (one connection, two index reads)."""
        async with self._pool.acquire() as conn:
            lines = await conn.fetch(_COSIGNATURES_SQL, tree_size)
            tokens = await conn.fetch(_TIMESTAMPS_SQL, tree_size)
        return Anchors(
            tree_size,
            tuple(r["line"] for r in lines),
            tuple((r["tsa"], bytes(r["token"])) for r in tokens),
        )

    async def latest_cosigned(self, witnesses: Sequence[str], quorum: int) -> int | None:
        """The largest size with `quorum` cosignatures among `witnesses`."""
        size: int | None = await self._pool.fetchval(
            _LATEST_COSIGNED_SQL, list(witnesses), quorum, _RECENT_ROWS
        )
        if size is None:  # a witness long absent: look through every row (NULL: no limit)
            size = await self._pool.fetchval(_LATEST_COSIGNED_SQL, list(witnesses), quorum, None)
        return size

    async def latest_timestamped(self) -> int | None:
        """The largest size with a token (the primary key's last entry)."""
        size: int | None = await self._pool.fetchval(
            "SELECT tree_size FROM checkpoint_timestamps ORDER BY tree_size DESC LIMIT 1"
        )
        return size

    async def witnessing_lag(self, cosigned: int | None) -> float:
        """Seconds since the first checkpoint past `cosigned` was issued; 0.0 when none is."""
        lag: float | None = await self._pool.fetchval(_LAG_SQL, -1 if cosigned is None else cosigned)
        return max(0.0, lag or 0.0)

    @asynccontextmanager
    async def witnessing_lease(self) -> AsyncIterator[bool]:
        """A session-level advisory lock on one pooled connection, held for the block."""
        async with self._pool.acquire() as conn:
            got: bool = await conn.fetchval("SELECT pg_try_advisory_lock($1)", WITNESSING_LOCK)
            try:
                yield got
            finally:
                if got:
                    await conn.execute("SELECT pg_advisory_unlock($1)", WITNESSING_LOCK)
