"""`LogStore` on PostgreSQL through asyncpg (docs/architecture.md#storage); the entries' one column list.

The pool's sessions run as the role `evledger_app` (set at connection start),
which may read and append but never UPDATE, DELETE or TRUNCATE the log; the
triggers of 002_append_only.sql refuse those to everybody. A batch holds the
row lock on `log_head` for the length of one transaction, which serialises
batches across every service process on the database. The evidence index
(`postgres_index.PostgresEvidenceIndex`) reads the same entries through this
store's pool, with the column list and row conversion defined here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ledger.core.entry import parse_entry
from ledger.core.sparse_merkle import KEY_EVENTS_KEY, artifact_key, stored_bucket
from ledger.core.sparse_merkle import Head as IndexHead
from ledger.errors import DuplicateStatementError, LogIntegrityError, UnstorableError
from ledger.records.admin import KEY_EVENT_KINDS
from ledger.storage.outage import COMMAND_TIMEOUT, CONNECT_TIMEOUT, open_connection, unavailable_on_outage
from ledger.storage.protocol import (
    MAX_INDEX,
    BatchWrite,
    Beyond,
    BucketContents,
    ChainHead,
    CheckpointRow,
    EntryRow,
    Head,
    IdempotencyRow,
    IndexDelta,
    IndexView,
    TileRow,
    TokenRow,
)

log = logging.getLogger(__name__)
APP_ROLE = "evledger_app"
_Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
# The entries table's columns, in the order COPY writes them and `entry_row` reads them by name.
ENTRY_COLUMNS = (
    "idx",
    "leaf_hash",
    "data",
    "integrated_at",
    "signer_keyid",
    "payload_type",
    "kind",
    "product",
    "version",
    "subjects",
    "release_seq",
    "statement_hash",
)
SELECT_ENTRIES = f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries"  # noqa: S608 - constant column list
_HEAD_SQL = """SELECT origin, tree_size, compact_range, last_leaf_hash, last_time, last_key_event,
                      last_admin_entry
               FROM log_head WHERE id = 1"""
# The head, locked; its checkpoint; and the database's clock once the lock is held (the outer query
# runs after the CTE has locked the row), which is the one source of entry times. The checkpoint is
# read by a volatile function (007_log_integrity.sql), with a snapshot of its own: this statement's
# snapshot predates a wait for the lock, so a plain join would miss the checkpoint of the very
# commit it waited for. One round trip for all three.
_LOCK_HEAD_SQL = f"""WITH head AS ({_HEAD_SQL} FOR UPDATE)
                     SELECT head.*, clock_timestamp() AS now, c.root_hash AS cp_root, c.note AS cp_note
                     FROM head CROSS JOIN LATERAL evledger_checkpoint_at(head.tree_size) AS c"""  # noqa: S608
_CHECKPOINT_SQL = "SELECT tree_size, root_hash, note FROM checkpoints WHERE tree_size = $1"
# One (kind, idx) index range per kind.
_KINDS_SQL = f"{SELECT_ENTRIES} WHERE kind = ANY($1::text[]) AND idx >= $2 ORDER BY idx"
# The first entry of each statement: a log begun before 007_log_integrity.sql may repeat one.
_RECORDED_SQL = """SELECT statement_hash, min(idx) FROM entries WHERE statement_hash = ANY($1::bytea[])
                   GROUP BY statement_hash"""
_RELEASE_HEADS_SQL = """SELECT r.product, r.version, e.idx, e.leaf_hash, e.release_seq, e.kind
                        FROM unnest($1::text[], $2::text[]) AS r(product, version)
                        CROSS JOIN LATERAL (
                            SELECT idx, leaf_hash, release_seq, kind FROM entries
                            WHERE product = r.product AND version = r.version AND release_seq IS NOT NULL
                            ORDER BY release_seq DESC LIMIT 1) e"""  # one backward index probe per release
# Everything a batch writes besides its entries, in one statement (one round trip inside the head
# lock), before them: the head moves first, because the database accepts entries only below a head
# moved past them (007_log_integrity.sql). The tile appends, the checkpoint and the idempotency keys
# ride along; their triggers check them against the moved head when the transaction commits. So do
# the new heads of the chains the batch extended (011_index_heads.sql), stamped with the new size.
_BATCH_TAIL_SQL = """
    WITH tiles AS (
        INSERT INTO tiles AS t (level, idx, width, hashes)
        SELECT level, idx, length(hashes) / 32, hashes
        FROM unnest($1::smallint[], $2::bigint[], $3::bytea[]) AS a(level, idx, hashes)
        ON CONFLICT (level, idx) DO UPDATE
        SET width = t.width + EXCLUDED.width, hashes = t.hashes || EXCLUDED.hashes
    ), checkpoint AS (
        INSERT INTO checkpoints (tree_size, root_hash, note) VALUES ($4, $5, $6)
    ), idempotency AS (
        INSERT INTO idempotency_keys (token_id, key, body_hash, first_idx, count, checkpoint_size)
        SELECT * FROM unnest($7::bigint[], $8::text[], $9::bytea[],
                             $10::bigint[], $11::integer[], $12::bigint[])
    ), index_heads AS (
        INSERT INTO index_heads (key_hash, bucket, kind, product, version, digest,
                                 count, last_idx, last_leaf, updated_size)
        SELECT *, $13 FROM unnest($19::bytea[], $20::integer[], $21::text[], $22::text[], $23::text[],
                                  $24::text[], $25::bigint[], $26::bigint[], $27::bytea[])
        ON CONFLICT (bucket, key_hash) DO UPDATE
        SET count = EXCLUDED.count, last_idx = EXCLUDED.last_idx, last_leaf = EXCLUDED.last_leaf,
            updated_size = EXCLUDED.updated_size
    ), index_delta AS (
        INSERT INTO index_deltas (to_size, from_size, delta)
        SELECT $13, $28::bigint, $29::bytea WHERE $29::bytea IS NOT NULL
    ), index_deltas_expired AS (
        DELETE FROM index_deltas WHERE to_size <= $13 - $30::bigint
    )
    UPDATE log_head SET tree_size = $13, compact_range = $14, last_leaf_hash = $15,
                        last_time = $16, last_key_event = $17, last_admin_entry = $18
    WHERE id = 1"""
# The index deltas kept (012_index_deltas.sql): those of the batches within this many entries of the
# head. Under load the processes take turns, so a process is a batch or two behind when it takes the
# head lock; one further behind re-plans the changed buckets from index_heads instead.
INDEX_DELTA_WINDOW = 20_000
_INDEX_DELTAS_SQL = "SELECT from_size, to_size, delta FROM index_deltas WHERE to_size > $1 ORDER BY to_size"
# Whole buckets of the completeness index (011_index_heads.sql): those asked for, and those with a
# head changed after a size. The second kind's numbers are gathered first (an index scan of
# updated_size), so that the rows are one index scan of bucket: an OR of the two conditions
# would read the whole table every batch.
_INDEX_BUCKETS_SQL = """SELECT key_hash, bucket, count, last_idx, last_leaf FROM index_heads
    WHERE bucket = ANY($1::integer[] || ARRAY(SELECT bucket FROM index_heads WHERE updated_size > $2))"""
# A proof's read (`index_view` without `at`): the newest checkpoint and the asked and changed buckets
# in one statement, so in one snapshot; the checkpoint's columns ride on every row.
_INDEX_VIEW_SQL = f"""WITH cp AS (
        SELECT tree_size, root_hash, note FROM checkpoints ORDER BY tree_size DESC LIMIT 1)
    SELECT cp.tree_size, cp.root_hash, cp.note, h.key_hash, h.bucket, h.count, h.last_idx, h.last_leaf
    FROM cp LEFT JOIN ({_INDEX_BUCKETS_SQL}) AS h ON true"""  # noqa: S608 - our own constant
# Rewinding the completeness index to an earlier checkpoint (`index_view` with `at`): the chains
# whose head moved after it, and each one's head there, found from its members below it.
_MOVED_AFTER_SQL = """SELECT key_hash, kind, product, version, digest FROM index_heads
                      WHERE updated_size > $1"""
_RELEASE_HEADS_AT_SQL = """SELECT evledger_index_key('release', r.product, r.version) AS key_hash,
                                  e.idx, e.leaf_hash, e.release_seq
    FROM unnest($1::text[], $2::text[]) AS r(product, version)
    JOIN LATERAL (SELECT idx, leaf_hash, release_seq FROM entries
                  WHERE product = r.product AND version = r.version AND release_seq IS NOT NULL
                    AND idx < $3 ORDER BY release_seq DESC LIMIT 1) e ON true"""
_ARTIFACT_HEADS_AT_SQL = """SELECT d.digest, e.idx, e.leaf_hash, e.data
    FROM unnest($1::text[]) AS d(digest)
    JOIN LATERAL (SELECT idx, leaf_hash, data FROM entries
                  WHERE subjects @> ARRAY[d.digest] AND idx >= $2 AND idx < $3
                  ORDER BY idx DESC LIMIT 1) e ON true"""
_KEY_HEAD_AT_SQL = """SELECT idx, leaf_hash, data FROM entries WHERE kind = ANY($1::text[]) AND idx < $2
                      ORDER BY idx DESC LIMIT 1"""
_IDEMPOTENCY_SQL = """SELECT i.token_id, i.key, i.body_hash, i.first_idx, i.count, i.checkpoint_size
                      FROM idempotency_keys i
                      JOIN unnest($1::bigint[], $2::text[]) AS k(token_id, key)
                        ON i.token_id = k.token_id AND i.key = k.key"""


async def _heads_at(conn: _Connection, at: int) -> dict[bytes, IndexHead | None]:
    """The head, at tree size `at`, of every chain whose stored head moved after it (None: no member then).

    Each from its chain's members below `at`: a release's newest by release_seq, the key events'
    newest, an artifact's newest naming it from the first chained index on (its link says its seq).
    """
    moved = await conn.fetch(_MOVED_AFTER_SQL, at)
    heads: dict[bytes, IndexHead | None] = {r["key_hash"]: None for r in moved}
    releases = [r for r in moved if r["kind"] == "release"]
    if releases:
        for r in await conn.fetch(
            _RELEASE_HEADS_AT_SQL, [r["product"] for r in releases], [r["version"] for r in releases], at
        ):
            heads[r["key_hash"]] = IndexHead(r["release_seq"] + 1, r["idx"], r["leaf_hash"])
    digests = [r["digest"] for r in moved if r["kind"] == "artifact"]
    if digests:
        since = await conn.fetchval("SELECT chained_from FROM index_state")
        for r in await conn.fetch(_ARTIFACT_HEADS_AT_SQL, digests, since, at):
            link = next(a for a in parse_entry(r["data"]).artifacts or () if a.digest == r["digest"])
            heads[artifact_key(r["digest"])] = IndexHead(link.seq + 1, r["idx"], r["leaf_hash"])
    if any(r["kind"] == "keys" for r in moved):
        r = await conn.fetchrow(_KEY_HEAD_AT_SQL, list(KEY_EVENT_KINDS), at)
        keys = None if r is None else parse_entry(r["data"]).keys
        if r is not None and keys is not None:
            heads[KEY_EVENTS_KEY] = IndexHead(keys.seq + 1, r["idx"], r["leaf_hash"])
    return heads


def _bucket_contents(rows: Sequence[asyncpg.Record]) -> BucketContents:
    contents: BucketContents = {}
    for r in rows:
        head = IndexHead(r["count"], r["last_idx"], r["last_leaf"])
        contents.setdefault(r["bucket"], []).append((r["key_hash"], head))
    return contents


def _head(row: asyncpg.Record) -> Head:
    return Head(
        origin=row["origin"],
        tree_size=row["tree_size"],
        compact_range=tuple(row["compact_range"]),
        last_leaf_hash=row["last_leaf_hash"],
        last_time=row["last_time"],
        last_key_event=row["last_key_event"],
        last_admin_entry=row["last_admin_entry"],
    )


def entry_row(row: asyncpg.Record) -> EntryRow:
    """An entry as stored, from a row holding ENTRY_COLUMNS (a SELECT_ENTRIES query's row)."""
    return EntryRow(
        index=row["idx"],
        leaf_hash=row["leaf_hash"],
        data=row["data"],
        integrated_at=row["integrated_at"],
        signer_keyid=row["signer_keyid"],
        payload_type=row["payload_type"],
        kind=row["kind"],
        product=row["product"],
        version=row["version"],
        subjects=tuple(row["subjects"]),
        release_seq=row["release_seq"],
        statement_hash=row["statement_hash"],
    )


def _idempotency(row: asyncpg.Record) -> IdempotencyRow:
    return IdempotencyRow(
        token_id=row["token_id"],
        key=row["key"],
        body_hash=row["body_hash"],
        first_index=row["first_idx"],
        count=row["count"],
        checkpoint_size=row["checkpoint_size"],
    )


async def _find_idempotency(
    conn: _Connection | asyncpg.Pool[Any], keys: Sequence[tuple[int, str]]
) -> list[IdempotencyRow]:
    if not keys:
        return []
    rows = await conn.fetch(_IDEMPOTENCY_SQL, [k[0] for k in keys], [k[1] for k in keys])
    return [_idempotency(r) for r in rows]


@contextmanager
def _refusing_values(count: int) -> Iterator[None]:
    """Turn PostgreSQL's refusal of a batch into the ledger's errors.

    A value it cannot hold (SQLSTATE 22, 54) is UnstorableError; a statement hash already recorded
    is DuplicateStatementError; any other integrity violation (a row beyond the head, written around
    the sequencer, or a trigger of 007_log_integrity.sql) is LogIntegrityError.
    """
    try:
        yield
    except (asyncpg.exceptions.DataError, asyncpg.exceptions.ProgramLimitExceededError) as exc:
        log.warning("PostgreSQL refused a value of a batch of %d: %s", count, exc)
        msg = f"the ledger's database cannot store this entry ({type(exc).__name__})"
        raise UnstorableError(msg) from exc
    except asyncpg.exceptions.UniqueViolationError as exc:
        if exc.constraint_name == "entries_statement":
            raise DuplicateStatementError("a statement of this batch is already recorded") from exc
        raise _integrity(exc) from exc
    except asyncpg.exceptions.IntegrityConstraintViolationError as exc:
        raise _integrity(exc) from exc


def _integrity(exc: asyncpg.PostgresError) -> LogIntegrityError:
    log.error("the ledger's database refused a batch as inconsistent with the log: %s", exc)
    return LogIntegrityError(
        "the ledger's database holds rows that do not follow the log (written around the ledger); "
        "appends are stopped until an operator runs `evledger audit` and repairs it"
    )


async def _keep_session(_: object) -> None:
    """Pool release without asyncpg's reset query (a round trip per request).

    The service keeps no session state: no SET, LISTEN, advisory lock or open
    cursor outlives a call, and the role is fixed at connection start. A setting
    a call needs is made with SET LOCAL inside its own transaction, which ends it
    (`postgres_index.PostgresEvidenceIndex`'s searches).
    """


@unavailable_on_outage
class PostgresAppendTransaction:
    """An open transaction that holds `SELECT ... FOR UPDATE` on the log head."""

    def __init__(self, conn: _Connection, locked: asyncpg.Record) -> None:
        """Wrap a connection inside a transaction whose head row is locked (`_LOCK_HEAD_SQL`'s row)."""
        self._conn = conn
        self._head = _head(locked)
        self._now: datetime = locked["now"]
        note = locked["cp_note"]
        self._checkpoint = (
            None if note is None else CheckpointRow(self._head.tree_size, locked["cp_root"], note)
        )

    async def head(self) -> Head:
        """The head as locked at the start of the transaction."""
        return self._head

    async def head_checkpoint(self) -> CheckpointRow | None:
        """The stored checkpoint at the locked head's size (read once the lock was held)."""
        return self._checkpoint

    async def now(self) -> datetime:
        """The database's clock when the head was locked."""
        return self._now

    async def entries_of_kinds(self, kinds: Sequence[str], start: int) -> list[EntryRow]:
        """The entries of these kinds at log index >= `start`, in log order."""
        return [entry_row(r) for r in await self._conn.fetch(_KINDS_SQL, list(kinds), start)]

    async def recorded_statements(self, statement_hashes: Sequence[bytes]) -> dict[bytes, int]:
        """The index recording each of these statement hashes, for those recorded."""
        return await _recorded(self._conn, statement_hashes)

    async def find_idempotency(self, keys: Sequence[tuple[int, str]]) -> list[IdempotencyRow]:
        """Recorded uses of these (token id, key) pairs."""
        return await _find_idempotency(self._conn, keys)

    async def release_heads(self, releases: Sequence[tuple[str, str]]) -> dict[tuple[str, str], ChainHead]:
        """The newest chained entry of each release, one index probe each; UnstorableError as for write."""
        if not releases:
            return {}
        with _refusing_values(len(releases)):
            rows = await self._conn.fetch(
                _RELEASE_HEADS_SQL, [r[0] for r in releases], [r[1] for r in releases]
            )
        return {(r[0], r[1]): ChainHead(r[2], r[3], r[4], r[5]) for r in rows}

    async def index_buckets(self, buckets: Sequence[int], since: int) -> BucketContents:
        """The whole content of these buckets and of every bucket with a head changed after `since`."""
        return _bucket_contents(await self._conn.fetch(_INDEX_BUCKETS_SQL, list(buckets), since))

    async def index_deltas(self, since: int) -> list[IndexDelta]:
        """The stored index deltas of the batches that ended after size `since`, oldest first (012)."""
        rows = await self._conn.fetch(_INDEX_DELTAS_SQL, since)
        return [IndexDelta(r[0], r[1], r[2]) for r in rows]

    async def chained_from(self) -> int:
        """The ledger's first chained index, as 011_index_heads.sql recorded it (index_state)."""
        value = await self._conn.fetchval("SELECT chained_from FROM index_state")
        if value is None:
            raise LogIntegrityError("the ledger's database has no first chained index (index_state is empty)")
        return int(value)

    async def write(self, batch: BatchWrite) -> None:
        """Write head, tiles, checkpoint, idempotency keys and chain heads in one statement; then the entries.

        The head goes first: the database takes entries only below a head moved past them
        (007_log_integrity.sql). Raises UnstorableError when PostgreSQL refuses a value itself
        (SQLSTATE classes 22 and 54: data exceptions, program limits such as an index row over
        2,704 bytes), DuplicateStatementError when a statement hash is already recorded.
        """
        with _refusing_values(len(batch.entries)):
            await self._write(batch)

    async def _write(self, batch: BatchWrite) -> None:
        conn = self._conn
        tiles, cp, head, idem, heads = (
            batch.tiles,
            batch.checkpoint,
            batch.head,
            batch.idempotency,
            batch.index_heads,
        )
        await conn.execute(
            _BATCH_TAIL_SQL,
            [t.level for t in tiles],
            [t.index for t in tiles],
            [t.hashes for t in tiles],
            cp.tree_size,
            cp.root_hash,
            cp.note,
            [i.token_id for i in idem],
            [i.key for i in idem],
            [i.body_hash for i in idem],
            [i.first_index for i in idem],
            [i.count for i in idem],
            [i.checkpoint_size for i in idem],
            head.tree_size,
            list(head.compact_range),
            head.last_leaf_hash,
            head.last_time,
            head.last_key_event,
            head.last_admin_entry,
            [h.key_hash for h in heads],
            [h.bucket for h in heads],
            [h.kind for h in heads],
            [h.product for h in heads],
            [h.version for h in heads],
            [h.digest for h in heads],
            [h.head.count for h in heads],
            [h.head.last_index for h in heads],
            [h.head.last_leaf for h in heads],
            batch.entries[0].index,
            batch.index_delta,
            INDEX_DELTA_WINDOW,
        )
        await conn.copy_records_to_table(
            "entries",
            columns=ENTRY_COLUMNS,
            records=[
                (
                    e.index,
                    e.leaf_hash,
                    e.data,
                    e.integrated_at,
                    e.signer_keyid,
                    e.payload_type,
                    e.kind,
                    e.product,
                    e.version,
                    list(e.subjects),
                    e.release_seq,
                    e.statement_hash,
                )
                for e in batch.entries
            ],
        )


async def _recorded(conn: _Connection, statement_hashes: Sequence[bytes]) -> dict[bytes, int]:
    if not statement_hashes:
        return {}
    rows = await conn.fetch(_RECORDED_SQL, list(statement_hashes))
    return {bytes(r[0]): int(r[1]) for r in rows}


@unavailable_on_outage  # a lost connection is a 503 with Retry-After, not a 500
class PostgresStore:
    """The log (`LogStore`) in one PostgreSQL database, through an asyncpg pool.

    Its evidence index is `postgres_index.PostgresEvidenceIndex(store.pool)`.
    """

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        """Use an open pool (see `connect`)."""
        self._pool = pool

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 2, max_size: int = 10) -> PostgresStore:
        """Open a pool whose sessions run as the service role (INSERT/SELECT on the log).

        Precondition: the database is migrated (the role exists and the DSN's user may use it).
        """
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            server_settings={"role": APP_ROLE},
            reset=_keep_session,
            connect=open_connection,
            timeout=CONNECT_TIMEOUT,
            command_timeout=COMMAND_TIMEOUT,
        )
        return cls(pool)

    @property
    def pool(self) -> asyncpg.Pool[Any]:
        """The store's pool, for an evidence index on the same database (it must not outlive `close`)."""
        return self._pool

    async def close(self) -> None:
        """Close the pool (and so end every evidence index built on it)."""
        await self._pool.close()

    @asynccontextmanager
    async def append_transaction(self) -> AsyncIterator[PostgresAppendTransaction]:
        """Open a transaction, lock the head row; commit on normal exit, roll back on error.

        The commit runs the deferred checks of 007_log_integrity.sql; their refusal is raised
        as LogIntegrityError (a duplicate statement, as DuplicateStatementError).
        """
        async with self._pool.acquire() as conn:
            with _refusing_values(0):
                async with conn.transaction():
                    row = await conn.fetchrow(_LOCK_HEAD_SQL)
                    if row is None:
                        msg = "the ledger is not initialised (run `evledger init`)"
                        raise RuntimeError(msg)
                    yield PostgresAppendTransaction(conn, row)

    async def head(self) -> Head | None:
        """The current head without locking it (None before `init`)."""
        row = await self._pool.fetchrow(_HEAD_SQL)
        return None if row is None else _head(row)

    async def index_changes(self, since: int) -> tuple[int, BucketContents]:
        """The log's size, and every bucket with a head changed after `since`, in one snapshot."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            size = await conn.fetchval("SELECT tree_size FROM log_head WHERE id = 1")
            rows = await conn.fetch(_INDEX_BUCKETS_SQL, [], since)
        return int(size or 0), _bucket_contents(rows)

    async def index_view(self, since: int, bucket: int, at: int | None = None) -> IndexView:
        """The newest checkpoint, the buckets changed after `since`, and `bucket`, in one snapshot.

        With `at` (an earlier checkpoint's size): that checkpoint too, the head each chain
        changed since had there (`IndexView.rewind`), and the whole content of their buckets.
        """
        if at is None:  # the common case, one statement (one snapshot): checkpoint and buckets together
            rows = await self._pool.fetch(_INDEX_VIEW_SQL, [bucket], since)
            if not rows:
                return IndexView(None, {}, [])
            first = rows[0]
            newest = CheckpointRow(first["tree_size"], first["root_hash"], first["note"])
            contents = _bucket_contents([r for r in rows if r["key_hash"] is not None])
            changed = contents if newest.tree_size > since else {}
            return IndexView(newest, changed, contents.get(bucket, []), contents)
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            row = await conn.fetchrow(
                "SELECT tree_size, root_hash, note FROM checkpoints ORDER BY tree_size DESC LIMIT 1"
            )
            checkpoint = None if row is None else CheckpointRow(row[0], row[1], row[2])
            past, rewind = None, {}
            wanted = [bucket]
            if checkpoint is not None and at is not None and at < checkpoint.tree_size:
                found = await conn.fetchrow(_CHECKPOINT_SQL, at)
                past = None if found is None else CheckpointRow(found[0], found[1], found[2])
                rewind = await _heads_at(conn, at)
                wanted += [stored_bucket(key) for key in rewind]
            rows = await conn.fetch(_INDEX_BUCKETS_SQL, wanted, since) if checkpoint is not None else []
        contents = _bucket_contents(rows)
        own = contents.get(bucket, [])
        # The asked buckets ride along with the changed ones; taking them on again changes nothing.
        changed = contents if checkpoint is not None and checkpoint.tree_size > since else {}
        return IndexView(checkpoint, changed, own, contents, past, rewind)

    async def latest_checkpoint(self) -> CheckpointRow | None:
        """The newest checkpoint."""
        row = await self._pool.fetchrow(
            "SELECT tree_size, root_hash, note FROM checkpoints ORDER BY tree_size DESC LIMIT 1"
        )
        return None if row is None else CheckpointRow(row[0], row[1], row[2])

    async def checkpoint(self, tree_size: int) -> CheckpointRow | None:
        """The checkpoint issued at exactly this size, if one was."""
        row = await self._pool.fetchrow(_CHECKPOINT_SQL, tree_size)
        return None if row is None else CheckpointRow(row[0], row[1], row[2])

    async def entries(self, start: int, limit: int) -> list[EntryRow]:
        """Entries [start, start+limit) that exist, in index order (an index range scan)."""
        if not 0 <= start < MAX_INDEX:
            return []
        limit = min(limit, MAX_INDEX - start)
        rows = await self._pool.fetch(
            f"{SELECT_ENTRIES} WHERE idx >= $1 AND idx < $2 ORDER BY idx",
            start,
            start + limit,
        )
        return [entry_row(r) for r in rows]

    async def entry_index_by_leaf_hash(self, leaf_hash: bytes) -> int | None:
        """The index of the entry with this leaf hash."""
        value = await self._pool.fetchval("SELECT idx FROM entries WHERE leaf_hash = $1", leaf_hash)
        return None if value is None else int(value)

    async def tiles(self, coords: Sequence[tuple[int, int]]) -> list[TileRow]:
        """The stored tiles among these (level, index) pairs: one primary-key lookup each."""
        coords = [c for c in coords if 0 <= c[0] < 32 and 0 <= c[1] < MAX_INDEX]
        if not coords:
            return []
        rows = await self._pool.fetch(
            """SELECT t.level, t.idx, t.width, t.hashes
               FROM unnest($1::smallint[], $2::bigint[]) AS c(level, idx)
               JOIN tiles t ON t.level = c.level AND t.idx = c.idx""",
            [c[0] for c in coords],
            [c[1] for c in coords],
        )
        return [TileRow(r[0], r[1], r[2], r[3]) for r in rows]

    async def entries_of_kinds(self, kinds: Sequence[str], start: int) -> list[EntryRow]:
        """The entries of these kinds at log index >= `start`, in log order (the kind index)."""
        return [entry_row(r) for r in await self._pool.fetch(_KINDS_SQL, list(kinds), start)]

    async def first_checkpoint_covering(self, index: int) -> CheckpointRow | None:
        """The smallest checkpoint whose tree holds entry `index`: the one its batch issued."""
        row = await self._pool.fetchrow(
            """SELECT tree_size, root_hash, note FROM checkpoints
               WHERE tree_size > $1 ORDER BY tree_size LIMIT 1""",
            min(index, MAX_INDEX),
        )
        return None if row is None else CheckpointRow(row[0], row[1], row[2])

    async def token(self, token_hash: bytes) -> TokenRow | None:
        """The grants, expiry and revocation of the token whose SHA-256 is `token_hash` (a unique index)."""
        row = await self._pool.fetchrow(
            "SELECT id, role, products, expires_at, revoked_at FROM api_tokens WHERE token_hash = $1",
            token_hash,
        )
        return None if row is None else TokenRow(row[0], row[1], tuple(row[2]), row[3], row[4])

    async def find_idempotency(self, keys: Sequence[tuple[int, str]]) -> list[IdempotencyRow]:
        """Recorded uses of these (token id, key) pairs."""
        return await _find_idempotency(self._pool, keys)

    async def rows_beyond(self, tree_size: int) -> Beyond:
        """What lies past a head of `tree_size` (two index probes and a scan of the few tile rows)."""
        async with self._pool.acquire() as conn:
            entry = await conn.fetchval("SELECT min(idx) FROM entries WHERE idx >= $1", tree_size)
            checkpoint = await conn.fetchval(
                "SELECT min(tree_size) FROM checkpoints WHERE tree_size > $1", tree_size
            )
            tile = await conn.fetchrow(
                """SELECT level, idx, width FROM tiles
                   WHERE idx * 256 + width > ($1::bigint >> (8 * level)) ORDER BY level, idx LIMIT 1""",
                tree_size,
            )
        return Beyond(entry, checkpoint, None if tile is None else (tile[0], tile[1], tile[2]))

    async def checkpoints_from(self, tree_size: int, limit: int) -> list[CheckpointRow]:
        """Up to `limit` checkpoints of tree size >= `tree_size`, smallest first (a primary-key range scan).

        Read-only, for audits that page through every checkpoint. Precondition: `limit` >= 1.
        """
        rows = await self._pool.fetch(
            """SELECT tree_size, root_hash, note FROM checkpoints
               WHERE tree_size >= $1 ORDER BY tree_size LIMIT $2""",
            tree_size,
            limit,
        )
        return [CheckpointRow(r[0], r[1], r[2]) for r in rows]

    async def entries_at(self, indices: Sequence[int]) -> list[EntryRow]:
        """The entries at these indices that exist, index order (one primary-key probe each)."""
        wanted = sorted({i for i in indices if 0 <= i < MAX_INDEX})
        if not wanted:
            return []
        rows = await self._pool.fetch(
            f"{SELECT_ENTRIES} WHERE idx = ANY($1::bigint[]) ORDER BY idx",
            wanted,
        )
        return [entry_row(r) for r in rows]
