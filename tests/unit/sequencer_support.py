"""An in-memory `LogStore` for the sequencer's tests, with keys, envelopes and log checks.

The fake store implements `ledger.storage.protocol.LogStore`: its append
transaction works on a copy of the data and publishes it only when the block
ends normally, so a failure inside a batch leaves nothing behind, exactly as a
rolled-back PostgreSQL transaction does. Its `write` refuses a statement hash
already recorded, as the unique index of 007_log_integrity.sql does, and its
`clock` is the database's clock the sequencer stamps with.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from ledger.append.batch import Idempotency, PendingRequest, plan_batch
from ledger.append.bootstrap import genesis_request
from ledger.append.sequencer import Appended, Sequencer
from ledger.core.checkpoint import open_checkpoint
from ledger.core.compact_range import root_from_leaf_hashes
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE, Envelope, sign_envelope
from ledger.core.entry import parse_entry, verify_chain
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.errors import (
    DuplicateStatementError,
    UnstorableError,
)
from ledger.records.admin import KeyRegistered, KeyRevoked, encode_admin_record
from ledger.rules.admission import admit
from ledger.rules.chains import Chains
from ledger.rules.registry import KeyRegistry
from ledger.storage.protocol import (
    BatchWrite,
    BucketContents,
    ChainHead,
    CheckpointRow,
    EntryRow,
    Head,
    IdempotencyRow,
    IndexDelta,
    IndexHeadRow,
    IndexView,
    LogStore,
    TileRow,
    TokenRow,
)

ORIGIN = "ledger.test/unit"
LEDGER_KEY = SignerKey.from_seed(ORIGIN, bytes(range(32)))
ALICE = SignerKey.from_seed("alice.test/ci", bytes(range(1, 33)))
BOB = SignerKey.from_seed("bob.test/ci", bytes(range(2, 34)))
CAROL = SignerKey.from_seed("carol.test/admin", bytes(range(3, 35)))
NOW_OR_LATER = 2**62  # admission judges keys "as of now", as the service does


# --- the fake store --------------------------------------------------------------------------


@dataclass
class _Data:
    head: Head
    entries: dict[int, EntryRow] = field(default_factory=dict)
    tiles: dict[tuple[int, int], bytes] = field(default_factory=dict)
    checkpoints: dict[int, CheckpointRow] = field(default_factory=dict)
    idempotency: dict[tuple[int, str], IdempotencyRow] = field(default_factory=dict)
    statements: dict[bytes, int] = field(default_factory=dict)  # the unique statement-hash index
    index_heads: dict[bytes, IndexHeadRow] = field(default_factory=dict)  # index_heads, by key hash
    chained_from: int = 0  # index_state: the first chained index
    index_updated: dict[bytes, int] = field(default_factory=dict)  # index_heads.updated_size, by key hash
    index_deltas: dict[int, IndexDelta] = field(default_factory=dict)  # index_deltas, by to_size

    def copy(self) -> _Data:
        return _Data(
            self.head,
            dict(self.entries),
            dict(self.tiles),
            dict(self.checkpoints),
            dict(self.idempotency),
            dict(self.statements),
            dict(self.index_heads),
            self.chained_from,
            dict(self.index_updated),
            dict(self.index_deltas),
        )

    def entries_of_kinds(self, kinds: Sequence[str], start: int) -> list[EntryRow]:
        return [self.entries[i] for i in sorted(self.entries) if i >= start and self.entries[i].kind in kinds]


class FakeTransaction:
    """Works on a private snapshot; the store publishes it on commit."""

    def __init__(self, store: FakeStore, data: _Data) -> None:
        self._store = store
        self.data = data

    async def head(self) -> Head:
        return self.data.head

    async def head_checkpoint(self) -> CheckpointRow | None:
        return self.data.checkpoints.get(self.data.head.tree_size)

    async def now(self) -> datetime:
        return self._store.clock()

    async def entries_of_kinds(self, kinds: Sequence[str], start: int) -> list[EntryRow]:
        return self.data.entries_of_kinds(kinds, start)

    async def recorded_statements(self, statement_hashes: Sequence[bytes]) -> dict[bytes, int]:
        return {h: self.data.statements[h] for h in statement_hashes if h in self.data.statements}

    async def find_idempotency(self, keys: Sequence[tuple[int, str]]) -> list[IdempotencyRow]:
        return [self.data.idempotency[k] for k in keys if k in self.data.idempotency]

    async def release_heads(self, releases: Sequence[tuple[str, str]]) -> dict[tuple[str, str], ChainHead]:
        heads: dict[tuple[str, str], ChainHead] = {}
        for row in self.data.entries.values():
            release = (row.product or "", row.version or "")
            seq = getattr(row, "release_seq", None)
            if release not in releases or seq is None:
                continue
            if release not in heads or heads[release].seq < seq:
                heads[release] = ChainHead(row.index, row.leaf_hash, seq, row.kind)
        return heads

    async def chained_from(self) -> int:
        return self.data.chained_from

    async def index_buckets(self, buckets: Sequence[int], since: int) -> BucketContents:
        """What 011_index_heads.sql's two indexes find: these buckets, and those changed after `since`."""
        changed = {
            r.bucket for r in self.data.index_heads.values() if self.data.index_updated[r.key_hash] > since
        }
        wanted = changed | set(buckets)
        contents: BucketContents = {}
        for row in self.data.index_heads.values():
            if row.bucket in wanted:
                contents.setdefault(row.bucket, []).append((row.key_hash, row.head))
        return contents

    async def index_deltas(self, since: int) -> list[IndexDelta]:
        return [self.data.index_deltas[size] for size in sorted(self.data.index_deltas) if size > since]

    async def write(self, batch: BatchWrite) -> None:
        self._store.writes += 1
        if self._store.fail_next_write:
            self._store.fail_next_write = False
            msg = "injected failure: the disk is full"
            raise RuntimeError(msg)
        if any(set(row.subjects) & self._store.unstorable for row in batch.entries):
            msg = "a value this store cannot hold"
            raise UnstorableError(msg)
        data = self.data
        first = data.head.tree_size
        # What a primary key and the head lock guarantee in PostgreSQL: no overwrite, no gap.
        assert [e.index for e in batch.entries] == list(range(first, first + len(batch.entries)))
        for row in batch.entries:
            if row.statement_hash in data.statements:  # what the unique index refuses
                msg = "a statement of this batch is already recorded"
                raise DuplicateStatementError(msg)
            data.statements[row.statement_hash] = row.index
            data.entries[row.index] = row
        for tile in batch.tiles:
            key = (tile.level, tile.index)
            data.tiles[key] = data.tiles.get(key, b"") + tile.hashes
        assert batch.checkpoint.tree_size not in data.checkpoints
        data.checkpoints[batch.checkpoint.tree_size] = batch.checkpoint
        for row in batch.idempotency:
            key = (row.token_id, row.key)
            assert key not in data.idempotency
            data.idempotency[key] = row
        for head in batch.index_heads:  # an upsert; what the trigger of 011_index_heads.sql guards
            old = data.index_heads.get(head.key_hash)
            assert old is None or (old.head.count, old.head.last_index) < (
                head.head.count,
                head.head.last_index,
            )
            data.index_heads[head.key_hash] = head
            data.index_updated[head.key_hash] = batch.head.tree_size
        if (
            batch.index_delta is not None
        ):  # 012_index_deltas.sql: the window is not modelled, every delta kept
            data.index_deltas[batch.head.tree_size] = IndexDelta(
                first, batch.head.tree_size, batch.index_delta
            )
        data.head = batch.head


class FakeStore:
    """A dict-based `LogStore`: commit on normal exit of the transaction, discard on exception."""

    def __init__(self) -> None:
        self.data = _Data(Head(ORIGIN, 0, (), bytes(32), "", -1))
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # the database's clock
        self._lock = asyncio.Lock()
        self.fail_next_write = False
        self.fail_next_lock = False
        self.unstorable: set[str] = set()  # subject digests whose entries `write` refuses
        self.writes = 0
        self.commits = 0
        self.before_commit: Callable[[], Awaitable[None]] | None = None

    async def index_changes(self, since: int) -> tuple[int, BucketContents]:
        """The log's size and every bucket with a head changed after `since` (as 011's indexes find them)."""
        data = self.data
        changed = {r.bucket for r in data.index_heads.values() if data.index_updated[r.key_hash] > since}
        contents: BucketContents = {}
        for row in data.index_heads.values():
            if row.bucket in changed:
                contents.setdefault(row.bucket, []).append((row.key_hash, row.head))
        return data.head.tree_size, contents

    async def index_view(self, since: int, bucket: int, at: int | None = None) -> IndexView:
        """As PostgresStore's: the newest checkpoint, the changed and asked buckets; with `at`, the rewind.

        The heads at `at` come from the entries' own links (what 011's `_heads_at` reads from them).
        """
        data = self.data
        newest = data.checkpoints[max(data.checkpoints)] if data.checkpoints else None
        wanted = {r.bucket for r in data.index_heads.values() if data.index_updated[r.key_hash] > since}
        contents: BucketContents = {}
        for row in data.index_heads.values():
            if row.bucket in wanted | {bucket}:
                contents.setdefault(row.bucket, []).append((row.key_hash, row.head))
        past, rewind = None, {}
        if newest is not None and at is not None and at < newest.tree_size:
            past = data.checkpoints.get(at)
            chains = Chains()
            for index in range(at):
                entry = parse_entry(data.entries[index].data)
                chains.advance(
                    index, data.entries[index].leaf_hash, entry.release, entry.keys, "", entry.artifacts
                )
            then = chains.index()
            rewind = {k: then.get(k) for k, size in data.index_updated.items() if size > at}
        changed = contents if newest is not None and newest.tree_size > since else {}
        return IndexView(newest, changed, contents.get(bucket, []), contents, past, rewind)

    @asynccontextmanager
    async def append_transaction(self) -> AsyncIterator[FakeTransaction]:
        if self.fail_next_lock:
            self.fail_next_lock = False
            msg = "injected failure: the database is unreachable"
            raise ConnectionError(msg)
        async with self._lock:
            snapshot = self.data.copy()
            yield FakeTransaction(self, snapshot)
            # Reached only when the block ended normally: commit.
            if self.before_commit is not None:
                await self.before_commit()
            self.data = snapshot
            self.commits += 1

    async def head(self) -> Head | None:
        return self.data.head

    async def latest_checkpoint(self) -> CheckpointRow | None:
        if not self.data.checkpoints:
            return None
        return self.data.checkpoints[max(self.data.checkpoints)]

    async def checkpoint(self, tree_size: int) -> CheckpointRow | None:
        return self.data.checkpoints.get(tree_size)

    async def checkpoints_from(self, tree_size: int, limit: int) -> list[CheckpointRow]:
        sizes = sorted(s for s in self.data.checkpoints if s >= tree_size)[:limit]
        return [self.data.checkpoints[s] for s in sizes]

    async def entries(self, start: int, limit: int) -> list[EntryRow]:
        return [self.data.entries[i] for i in range(start, start + limit) if i in self.data.entries]

    async def entry_index_by_leaf_hash(self, digest: bytes) -> int | None:
        return next((r.index for r in self.data.entries.values() if r.leaf_hash == digest), None)

    async def tiles(self, coords: Sequence[tuple[int, int]]) -> list[TileRow]:
        found = [(c, self.data.tiles[c]) for c in coords if c in self.data.tiles]
        return [TileRow(level, index, len(h) // 32, h) for (level, index), h in found]

    async def entries_of_kinds(self, kinds: Sequence[str], start: int) -> list[EntryRow]:
        return self.data.entries_of_kinds(kinds, start)

    async def first_checkpoint_covering(self, index: int) -> CheckpointRow | None:
        sizes = [s for s in self.data.checkpoints if s > index]
        return self.data.checkpoints[min(sizes)] if sizes else None

    async def token(self, token_hash: bytes) -> TokenRow | None:
        del token_hash
        return None

    async def find_idempotency(self, keys: Sequence[tuple[int, str]]) -> list[IdempotencyRow]:
        return [self.data.idempotency[k] for k in keys if k in self.data.idempotency]

    # --- views for assertions ---

    @property
    def size(self) -> int:
        return self.data.head.tree_size

    def entry_bytes(self) -> list[bytes]:
        return [self.data.entries[i].data for i in range(self.size)]


def _typed_store(store: FakeStore) -> LogStore:
    return store  # a static check that the fake satisfies the Protocol


# --- envelopes and requests -----------------------------------------------------------------


def statement(n: int, product: str = "prod") -> bytes:
    return msgspec.json.encode(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": f"artifact-{n}", "digest": {"sha256": f"{n:064x}"}}],
            "predicateType": "https://evledger.test/generic/v1",
            "predicate": {"release": {"product": product, "version": "1.0"}, "n": n},
        }
    )


def evidence(signer: SignerKey, n: int) -> Envelope:
    return sign_envelope(INTOTO_PAYLOAD_TYPE, statement(n), [signer])


def registration(key: SignerKey, roles: list[str], signers: list[SignerKey] | None = None) -> Envelope:
    record = KeyRegistered(key.verifier().format(), f"owner of {key.name}", roles, [])
    return sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(record), signers or [LEDGER_KEY])


def revocation(key: SignerKey, signers: list[SignerKey] | None = None) -> Envelope:
    record = KeyRevoked(key.keyid, "compromised")
    return sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(record), signers or [LEDGER_KEY])


def request(
    sequencer: Sequencer, *envelopes: Envelope, idempotency: Idempotency | None = None
) -> PendingRequest:
    admitted = [admit(e, sequencer.registry, NOW_OR_LATER) for e in envelopes]
    return PendingRequest(admitted, idempotency)


async def genesis(store: FakeStore) -> KeyRegistry:
    """Write entry 0 as `evledger init` does; return the registry it leaves."""
    async with store.append_transaction() as txn:
        head = await txn.head()
        plan = plan_batch(
            head,
            [genesis_request(LEDGER_KEY, "ledger")],
            KeyRegistry(),
            LEDGER_KEY,
            datetime.now(UTC),
            genesis=True,
        )
        assert plan.write is not None
        await txn.write(plan.write)
    return plan.registry


async def started(store: FakeStore, **knobs: float) -> Sequencer:
    """A running sequencer on a store holding entry 0 and appender keys for ALICE and BOB."""
    registry = await genesis(store)
    sequencer = Sequencer(_typed_store(store), LEDGER_KEY, registry, **knobs)  # type: ignore[arg-type]
    sequencer.start()
    await sequencer.append(
        request(sequencer, registration(ALICE, ["appender"]), registration(BOB, ["appender"]))
    )
    return sequencer


def check_log(store: FakeStore) -> None:
    """The whole stored log: gapless chain, and every checkpoint's root over its prefix."""
    data = store.entry_bytes()
    verify_chain(data)
    leaves = [leaf_hash(d) for d in data]
    assert [store.data.entries[i].leaf_hash for i in range(store.size)] == leaves
    for size, checkpoint in store.data.checkpoints.items():
        opened = open_checkpoint(checkpoint.note, LEDGER_KEY.verifier(), ORIGIN)
        assert opened.size == size
        assert opened.root_hash == checkpoint.root_hash == root_from_leaf_hashes(leaves[:size])


def check_appended(store: FakeStore, appended: Appended, envelopes: Sequence[Envelope]) -> None:
    assert not appended.replayed
    assert appended.count == len(envelopes)
    assert appended.checkpoint_size in store.data.checkpoints
    assert appended.first_index + appended.count <= appended.checkpoint_size
    assert appended.checkpoint_note == store.data.checkpoints[appended.checkpoint_size].note
    assert appended.entries is not None
    for offset, (row, envelope) in enumerate(zip(appended.entries, envelopes, strict=True)):
        assert row.index == appended.first_index + offset
        assert store.data.entries[row.index] == row
        assert parse_entry(row.data).envelope == envelope
