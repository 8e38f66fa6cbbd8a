"""The sequencer against an in-memory store: group commit, all-or-nothing batches, back-pressure.

The fake store implements `ledger.storage.protocol.LogStore`: its append
transaction works on a copy of the data and publishes it only when the block
ends normally, so a failure inside a batch leaves nothing behind, exactly as a
rolled-back PostgreSQL transaction does.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
import pytest

from ledger.admin import KeyRegistered, KeyRevoked, encode_admin_record
from ledger.admission import admit
from ledger.batch import Idempotency, PendingRequest, plan_batch
from ledger.bootstrap import genesis_request
from ledger.core.checkpoint import open_checkpoint
from ledger.core.compact_range import root_from_leaf_hashes
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE, Envelope, sign_envelope
from ledger.core.entry import parse_entry, verify_chain
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.errors import (
    DuplicateStatementError,
    LedgerError,
    PermissionDeniedError,
    SignatureError,
    UnavailableError,
    UnstorableError,
)
from ledger.registry import KeyRegistry
from ledger.sequencer import Appended, Sequencer
from ledger.storage.protocol import (
    BatchWrite,
    ChainHead,
    CheckpointRow,
    EntryRow,
    Head,
    IdempotencyRow,
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

    def copy(self) -> _Data:
        return _Data(
            self.head,
            dict(self.entries),
            dict(self.tiles),
            dict(self.checkpoints),
            dict(self.idempotency),
            dict(self.statements),
        )

    def admin_entries_since(self, index: int) -> list[EntryRow]:
        admin = {"key.registered", "key.revoked", "policy.published"}
        return [self.entries[i] for i in sorted(self.entries) if i >= index and self.entries[i].kind in admin]


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

    async def admin_entries_since(self, index: int) -> list[EntryRow]:
        return self.data.admin_entries_since(index)

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

    async def admin_entries_since(self, index: int) -> list[EntryRow]:
        return self.data.admin_entries_since(index)

    async def recorded_statements(self, statement_hashes: Sequence[bytes]) -> dict[bytes, int]:
        return {h: self.data.statements[h] for h in statement_hashes if h in self.data.statements}

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


# --- tests ----------------------------------------------------------------------------------


def test_concurrent_appends_are_grouped_into_fewer_batches() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.01)
        batches_before, size_before = sequencer.batches, store.size
        envelopes = [evidence(ALICE if n % 2 else BOB, n) for n in range(60)]
        results = await asyncio.gather(*(sequencer.append(request(sequencer, e)) for e in envelopes))
        batches = sequencer.batches - batches_before
        assert 1 <= batches < len(envelopes)
        assert store.commits == batches + 2  # genesis + registrations + these
        assert sorted(r.first_index for r in results) == list(range(size_before, size_before + 60))
        for appended, envelope in zip(results, envelopes, strict=True):
            check_appended(store, appended, [envelope])
        # Requests queued in order are integrated in order.
        assert [r.first_index for r in results] == sorted(r.first_index for r in results)
        check_log(store)
        await sequencer.stop()

    asyncio.run(scenario())


def test_receipts_are_given_only_after_the_batch_commits() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.005)
        size_before = store.size
        tasks: list[asyncio.Task[Appended]] = []
        seen_before_commit: list[list[bool]] = []

        async def hold_commit() -> None:
            await asyncio.sleep(0.02)  # room for any premature answer to show up
            seen_before_commit.append([t.done() for t in tasks])

        committed_when_answered: list[bool] = []

        async def append(n: int) -> Appended:
            appended = await sequencer.append(request(sequencer, evidence(ALICE, n)))
            # The store must already show the entry to anyone who reads it.
            committed_when_answered.append(store.size >= appended.first_index + 1)
            return appended

        store.before_commit = hold_commit
        tasks.extend(asyncio.create_task(append(n)) for n in range(10))
        results = await asyncio.gather(*tasks)
        assert seen_before_commit
        assert all(not any(done) for done in seen_before_commit)
        assert committed_when_answered == [True] * 10
        assert sorted(r.first_index for r in results) == list(range(size_before, size_before + 10))
        store.before_commit = None
        await sequencer.stop()

    asyncio.run(scenario())


def test_failed_write_fails_every_request_of_the_batch_and_leaves_no_gap() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.01)
        size_before, checkpoints_before = store.size, dict(store.data.checkpoints)
        batches_before = sequencer.batches
        store.fail_next_write = True
        doomed = [request(sequencer, evidence(ALICE, n)) for n in range(8)]
        outcomes = await asyncio.gather(*(sequencer.append(r) for r in doomed), return_exceptions=True)
        assert store.writes >= 1
        assert all(isinstance(o, UnavailableError) for o in outcomes), outcomes
        assert not [o for o in outcomes if "disk is full" in str(o)]  # the cause stays in the server log
        assert sequencer.batches == batches_before
        assert store.size == size_before
        assert len(store.data.entries) == size_before
        assert store.data.checkpoints == checkpoints_before

        # The next batch carries on from the same head: contiguous, no hole where the failure was.
        envelopes = [evidence(BOB, 100 + n) for n in range(5)]
        results = await asyncio.gather(*(sequencer.append(request(sequencer, e)) for e in envelopes))
        assert sorted(r.first_index for r in results) == list(range(size_before, size_before + 5))
        check_log(store)
        await sequencer.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize("culprits", [[5], [0, 13], [7, 8, 9]], ids=["one", "two_apart", "three_adjacent"])
def test_requests_the_store_cannot_hold_fail_alone_and_the_rest_of_their_batch_is_appended(
    culprits: list[int],
) -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.05)
        size_before = store.size
        store.unstorable = {f"sha256:{n:064x}" for n in culprits}
        requests = [request(sequencer, evidence(ALICE, n)) for n in range(16)]
        outcomes = await asyncio.gather(*(sequencer.append(r) for r in requests), return_exceptions=True)
        refused = [n for n, o in enumerate(outcomes) if isinstance(o, BaseException)]
        assert refused == culprits, outcomes
        assert all(isinstance(outcomes[n], UnstorableError) for n in culprits)
        appended = [o for o in outcomes if isinstance(o, Appended)]
        assert len(appended) == 16 - len(culprits)
        # Gapless and in one piece: the others' indices fill the log from where it stood.
        assert sorted(a.first_index for a in appended) == list(
            range(size_before, size_before + len(appended))
        )
        assert store.size == size_before + len(appended)
        check_log(store)
        await sequencer.stop()

    asyncio.run(scenario())


def test_a_head_that_cannot_be_locked_fails_the_waiting_requests_and_the_next_batch_goes_on() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.01)
        size_before = store.size
        store.fail_next_lock = True
        doomed = [request(sequencer, evidence(ALICE, n)) for n in range(4)]
        outcomes = await asyncio.gather(*(sequencer.append(r) for r in doomed), return_exceptions=True)
        assert all(isinstance(o, UnavailableError) for o in outcomes), outcomes
        assert sequencer.pending == 0
        assert store.size == size_before
        appended = await sequencer.append(request(sequencer, evidence(BOB, 99)))
        assert appended.first_index == size_before
        check_log(store)
        await sequencer.stop()

    asyncio.run(scenario())


def test_requests_that_arrive_while_another_process_holds_the_head_join_the_next_transaction() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.0)
        batches_before = sequencer.batches
        async with store._lock:  # another process holds the head's row lock
            first = asyncio.ensure_future(sequencer.append(request(sequencer, evidence(ALICE, 1))))
            await asyncio.sleep(0.01)  # the sequencer is now waiting for the lock
            later = [
                asyncio.ensure_future(sequencer.append(request(sequencer, evidence(BOB, n))))
                for n in range(2, 6)
            ]
            await asyncio.sleep(0.01)
        results = await asyncio.gather(first, *later)
        # One transaction once the lock was free, not one for the first request and another after.
        assert sequencer.batches == batches_before + 1
        assert sorted(r.first_index for r in results) == list(
            range(results[0].first_index, results[0].first_index + 5)
        )
        check_log(store)
        await sequencer.stop()

    asyncio.run(scenario())


def test_queue_full_is_refused_at_once_with_unavailable() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.0, max_pending=3)
        gate = asyncio.Event()

        # More envelopes in one request than the queue may ever hold.
        with pytest.raises(UnavailableError) as too_many:
            await sequencer.append(request(sequencer, *[evidence(ALICE, n) for n in range(4)]))
        assert too_many.value.retry_after >= 1

        holding = asyncio.Event()

        async def hold_until_gate() -> None:
            holding.set()
            await gate.wait()

        store.before_commit = hold_until_gate  # the first batch holds the head until the gate opens
        in_flight = asyncio.create_task(sequencer.append(request(sequencer, evidence(ALICE, 10))))
        await holding.wait()
        queued = [
            asyncio.create_task(sequencer.append(request(sequencer, evidence(BOB, 20 + n)))) for n in range(3)
        ]
        await asyncio.sleep(0)
        assert sequencer.pending == 3
        # Refused immediately, not after waiting for room.
        with pytest.raises(UnavailableError):
            await asyncio.wait_for(sequencer.append(request(sequencer, evidence(BOB, 99))), timeout=0.5)
        gate.set()
        results = await asyncio.gather(in_flight, *queued)
        assert len({r.first_index for r in results}) == 4
        store.before_commit = None
        check_log(store)
        await sequencer.stop()

    asyncio.run(scenario())


def test_key_revoked_earlier_in_the_same_batch_cannot_sign_later_requests_of_it() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.01)
        size_before, batches_before = store.size, sequencer.batches
        # All three were admitted while ALICE was still valid.
        revoke_alice = request(sequencer, revocation(ALICE))
        by_alice = request(sequencer, evidence(ALICE, 1))
        by_bob = request(sequencer, evidence(BOB, 2))
        revoked, refused, accepted = await asyncio.gather(
            sequencer.append(revoke_alice),
            sequencer.append(by_alice),
            sequencer.append(by_bob),
            return_exceptions=True,
        )
        assert sequencer.batches == batches_before + 1  # one batch
        assert isinstance(revoked, Appended)
        assert isinstance(refused, SignatureError)
        assert isinstance(accepted, Appended)
        assert revoked.first_index == size_before
        assert accepted.first_index == size_before + 1  # no gap where the refused request would have gone
        assert revoked.checkpoint_size == accepted.checkpoint_size == size_before + 2
        assert store.size == size_before + 2
        check_log(store)
        await sequencer.stop()

    asyncio.run(scenario())


def test_attack_admin_record_cosigned_by_an_admin_key_revoked_earlier_in_the_batch() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.01)
        await sequencer.append(request(sequencer, registration(CAROL, ["admin"])))
        size_before = store.size
        mallory = SignerKey.from_seed("mallory.test/x", bytes(range(4, 36)))
        # CAROL (admin) is revoked first; her admin record, co-signed by the non-admin ALICE, follows.
        revoke_carol = request(sequencer, revocation(CAROL))
        sneak = request(sequencer, registration(mallory, ["admin"], signers=[CAROL, ALICE]))
        revoked, outcome = await asyncio.gather(
            sequencer.append(revoke_carol), sequencer.append(sneak), return_exceptions=True
        )
        assert isinstance(revoked, Appended)
        # At its index the record's only admin signature is by a revoked key: it must be refused.
        assert isinstance(outcome, (PermissionDeniedError, SignatureError)), outcome
        assert store.size == size_before + 1
        assert mallory.keyid not in sequencer.registry.keys
        await sequencer.stop()

    asyncio.run(scenario())


def test_duplicate_idempotency_keys_in_one_batch_give_one_append_and_one_replay() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.01)
        size_before = store.size
        envelope = evidence(ALICE, 7)
        body_hash = hashlib.sha256(b"the request body").digest()
        key = Idempotency(token_id=1, key="retry-7", body_hash=body_hash)
        first, second = await asyncio.gather(
            sequencer.append(request(sequencer, envelope, idempotency=key)),
            sequencer.append(request(sequencer, envelope, idempotency=key)),
        )
        assert sorted([first.replayed, second.replayed]) == [False, True]
        fresh, replay = (first, second) if second.replayed else (second, first)
        assert replay.first_index == fresh.first_index == size_before
        assert replay.count == fresh.count == 1
        assert replay.checkpoint_size == fresh.checkpoint_size
        assert replay.body_hash == body_hash
        assert store.size == size_before + 1
        assert list(store.data.idempotency) == [(1, "retry-7")]
        check_log(store)
        await sequencer.stop()

    asyncio.run(scenario())


def test_stop_integrates_what_is_queued_then_refuses_appends() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.05)
        size_before = store.size
        envelopes = [evidence(BOB, n) for n in range(6)]
        tasks = [asyncio.create_task(sequencer.append(request(sequencer, e))) for e in envelopes]
        await asyncio.sleep(0)  # every task has queued its request
        assert sequencer.pending == 6
        await sequencer.stop()
        assert all(t.done() for t in tasks)
        results = [t.result() for t in tasks]
        assert sorted(r.first_index for r in results) == list(range(size_before, size_before + 6))
        assert store.size == size_before + 6
        assert not sequencer.running
        with pytest.raises(UnavailableError):
            await sequencer.append(request(sequencer, evidence(BOB, 99)))
        assert store.size == size_before + 6
        check_log(store)

    asyncio.run(scenario())


def test_request_refused_whole_leaves_the_rest_of_the_batch_gapless() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.01)
        size_before = store.size
        dave = SignerKey.from_seed("dave.test/ci", bytes(range(5, 37)))
        # A request of two envelopes whose second registers an already registered key: refused whole.
        bad = request(sequencer, evidence(ALICE, 1), registration(BOB, ["appender"]))
        good_before = request(sequencer, evidence(BOB, 2))
        good_after = request(sequencer, registration(dave, ["appender"]), evidence(ALICE, 3))
        outcomes = await asyncio.gather(
            sequencer.append(good_before),
            sequencer.append(bad),
            sequencer.append(good_after),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], Appended)
        assert isinstance(outcomes[1], LedgerError)
        assert isinstance(outcomes[2], Appended)
        assert outcomes[0].first_index == size_before
        assert outcomes[2].first_index == size_before + 1
        assert store.size == size_before + 3
        check_log(store)
        await sequencer.stop()

    asyncio.run(scenario())
