"""`EvidenceIndex` on PostgreSQL: release timelines, artifacts, search and kind lookups (issue #4).

The read model over the log's entries table, through the pool of the
`postgres.PostgresStore` it is built on (`PostgresEvidenceIndex(store.pool)`),
whose sessions run as the service role; it never writes. Its SQL is in
`entry_queries`; the rows are read with the log store's column list. Searches
plan each statement for its values (`entry_queries.CUSTOM_PLANS_SQL`) with
SET LOCAL inside a read-only transaction of their own, so the setting ends with
the search and never reaches the connection's next user (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ledger.storage.entry_queries import (
    ARTIFACT_SQL,
    BUILD_KINDS,
    CUSTOM_PLANS_SQL,
    FIRST_INDEX_AT_OR_AFTER_SQL,
    INDICES_OF_KINDS_SQL,
    LATEST_OF_KIND_SQL,
    MAX_WINDOWS,
    RELEASE_CHAIN_SQL,
    RELEASE_ENTRIES_OF_KIND_SQL,
    SCAN_WINDOW,
    UNCHAINED_ABOUT_BUILDS_SQL,
    is_combination,
    release_list_sql,
    search_sql,
)
from ledger.storage.outage import unavailable_on_outage
from ledger.storage.postgres import entry_row
from ledger.storage.protocol import MAX_INDEX, EntryRow, ReleaseSummaryRow


@unavailable_on_outage  # a lost connection is a 503 with Retry-After, not a 500
class PostgresEvidenceIndex:
    """The evidence index of one PostgreSQL ledger database, read through its log store's pool."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        """Read through `pool`, a `PostgresStore`'s (`store.pool`), which the store closes.

        Precondition: the pool's sessions run as the service role, released without a
        reset (`PostgresStore.connect`); the index is not used after the store is closed.
        """
        self._pool = pool

    async def release_timeline_entries(self, product: str, version: str) -> list[EntryRow]:
        """The release's chain, then the unchained evidence about what its builds produced, index order.

        Two index queries on one connection (the chain; then GIN on subjects for the
        digests of the chain's builds), which measured faster than one statement doing both.
        """
        async with self._pool.acquire() as conn:
            chain = [entry_row(r) for r in await conn.fetch(RELEASE_CHAIN_SQL, product, version)]
            builds = [e.index for e in chain if e.kind in BUILD_KINDS]
            about = await conn.fetch(UNCHAINED_ABOUT_BUILDS_SQL, builds) if builds else []
        return sorted(chain + [entry_row(r) for r in about], key=lambda e: e.index)

    async def entries_about_artifact(self, digest: str, start: int, limit: int) -> list[EntryRow]:
        """Entries naming `digest` as a subject or, for builds, as an artifact (two GIN indexes), index order.

        Preconditions: `digest` is `sha256:<64 lowercase hex>`; `limit` >= 1.
        """
        async with self._custom_plans() as conn:
            rows = await conn.fetch(ARTIFACT_SQL, [digest], start, limit)
        return [entry_row(r) for r in rows]

    async def search_entries(  # noqa: PLR0913 - each filter is one keyword, all optional
        self,
        *,
        start: int,
        stop: int | None,
        kinds: Sequence[str],
        product: str | None,
        version: str | None,
        signers: Sequence[str],
        limit: int,
    ) -> tuple[list[EntryRow], int | None]:
        """Entries in [start, stop) matching every filter given, index order; see `entry_queries.search_sql`.

        A combination of filters is searched SCAN_WINDOW indices at a time, at most
        MAX_WINDOWS per call, so no call reads more than that many entries however
        rare the matches: the second value is then where to continue (None when the
        range was searched to its end). Precondition: `limit` >= 1; `version` only with `product`.
        """
        wanted = list(kinds)

        def query(low: int, high: int | None, count: int) -> tuple[str, list[object]]:
            return search_sql(
                start=low,
                stop=high,
                kinds=wanted,
                product=product,
                version=version,
                signers=signers,
                limit=count,
            )

        async with self._custom_plans() as conn:
            if not is_combination(kinds=wanted, product=product, version=version, signers=signers):
                sql, args = query(start, stop, limit)
                return [entry_row(r) for r in await conn.fetch(sql, *args)], None
            end = stop if stop is not None else await conn.fetchval("SELECT tree_size FROM log_head")
            found: list[EntryRow] = []
            low = start
            for _ in range(MAX_WINDOWS):
                if low >= end or len(found) >= limit:
                    break
                high = min(end, low + SCAN_WINDOW)
                sql, args = query(low, high, limit - len(found))
                found += [entry_row(r) for r in await conn.fetch(sql, *args)]
                low = high
        return found, (low if low < end and len(found) < limit else None)

    async def first_index_at_or_after(self, moment: datetime) -> int | None:
        """The first index integrated at or after `moment`: a short range scan of the integrated_at index.

        Entry times never go backwards in index order, so the entries of the earliest
        matching time are the first ones; the smallest index among them is the bound.
        """
        value = await self._pool.fetchval(FIRST_INDEX_AT_OR_AFTER_SQL, moment)
        return None if value is None else int(value)

    async def indices_of_kinds(self, kinds: Sequence[str], before: int) -> list[int]:
        """The indices of every entry of these kinds below `before`, in order (the kind index)."""
        rows = await self._pool.fetch(INDICES_OF_KINDS_SQL, list(kinds), min(before, MAX_INDEX))
        return [int(r[0]) for r in rows]

    async def latest_entry_of_kind(self, kind: str, before: int) -> EntryRow | None:
        """The newest entry of `kind` below `before` (a backward scan of the (kind, idx) index)."""
        row = await self._pool.fetchrow(LATEST_OF_KIND_SQL, kind, min(before, MAX_INDEX))
        return None if row is None else entry_row(row)

    async def releases(
        self, *, product: str | None, after: tuple[str, str] | None, count: int
    ) -> list[ReleaseSummaryRow]:
        """Up to `count` releases after `after` by (product, version): a skip scan (`release_list_sql`)."""
        args: list[object] = [count]
        if after is not None:
            args += after
        if product is not None:
            args.append(product)
        sql = release_list_sql(product=product is not None, after=after is not None)
        async with self._custom_plans() as conn:
            rows = await conn.fetch(sql, *args)
        return [ReleaseSummaryRow(*r) for r in rows]

    async def release_entries_of_kind(self, kind: str, releases: Sequence[tuple[str, str]]) -> list[EntryRow]:
        """The entries of `kind` on these releases' chains, index order: `RELEASE_ENTRIES_OF_KIND_SQL`."""
        if not releases:
            return []
        products, versions = [r[0] for r in releases], [r[1] for r in releases]
        async with self._custom_plans() as conn:
            rows = await conn.fetch(RELEASE_ENTRIES_OF_KIND_SQL, kind, products, versions)
        return [entry_row(r) for r in rows]

    @asynccontextmanager
    async def _custom_plans(self) -> AsyncIterator[PoolConnectionProxy[Any]]:
        """A pooled connection in a read-only transaction that plans each statement for its values.

        CUSTOM_PLANS_SQL is SET LOCAL: it ends with the transaction (committed on normal
        exit, rolled back on error), so the connection goes back to the pool, which does
        not reset it, with the server's plan_cache_mode.
        """
        async with self._pool.acquire() as conn, conn.transaction(readonly=True):
            await conn.execute(CUSTOM_PLANS_SQL)
            yield conn
