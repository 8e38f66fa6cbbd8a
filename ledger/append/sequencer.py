"""The sequencer: group commit of concurrent appends (docs/architecture.md).

Requests queue up; one loop per process takes as many as fit in a batch (up
to `max_batch` envelopes, or whatever arrived within `max_delay` of the first)
and integrates them in one transaction under the row lock on the log head.
Callers are answered only after that transaction commits; if it fails, every
request of the batch fails and nothing of it is visible (no gap, no partial
write). One exception: when the store refuses a value of the batch itself
(UnstorableError), the batch is split in halves, each retried alone, until the
request that carries the value fails by itself and the others are appended.
The queue is bounded: past `max_pending` envelopes or `max_pending_bytes` bytes of
them, `append` raises UnavailableError at once instead of growing memory (a request
larger than the byte bound alone is still taken when the queue is empty).

Before it extends the log, a batch checks what it builds on (ledger.rules.log_state):
the locked head must be the tree of a checkpoint signed by the ledger key, and
admin records another process appended are replayed from their entries, never
taken from a derived table. Entry times come from one clock, the database's,
read once the head is locked; a batch is refused (UnavailableError) when that
clock and this process's own disagree by more than `max_clock_skew`, or when
it has gone back that far behind the newest entry. A batch whose write collides
with a statement already recorded is planned again with the recorded entries
looked up, and those requests are answered with them (`Appended.statement_replay`).

It knows the storage Protocol only: no SQL, no HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ledger.append.batch import BatchPlan, IndexInput, PendingRequest, plan_batch
from ledger.core.append_proofs import appended_inclusion_paths
from ledger.core.compact_range import CompactRange
from ledger.core.encoding import parse_time
from ledger.core.keys import SignerKey, VerifierKey
from ledger.core.sparse_merkle import KEY_EVENTS_KEY, artifact_key, is_chained_digest, release_key
from ledger.errors import (
    DuplicateStatementError,
    LedgerError,
    LogIntegrityError,
    UnavailableError,
    UnstorableError,
)
from ledger.query.index_follow import IndexFollower, committed_index
from ledger.records.admin import ADMIN_KINDS
from ledger.rules.chains import Chains
from ledger.rules.log_state import check_head, check_key_chain, replay_admin_entries, verified_checkpoint
from ledger.rules.registry import KeyRegistry
from ledger.storage.protocol import (
    AppendTransaction,
    ChainHead,
    CheckpointRow,
    EntryRow,
    Head,
    IdempotencyRow,
    LogStore,
)

log = logging.getLogger(__name__)
BATCH_FAILED = "the batch could not be committed (the server log has the cause); retry"
DEFAULT_MAX_CLOCK_SKEW = 10.0  # seconds: NTP keeps hosts within milliseconds; more is an incident


@dataclass(frozen=True, slots=True)
class Appended:
    """Where a request's entries went: [first_index, first_index + count) under checkpoint_size.

    `entries` holds the rows when they were just written, with their inclusion `paths`
    (computed from memory) and the batch's `time` (None / empty for an idempotent replay).
    `replayed` is True when an earlier request with the same idempotency key appended them;
    `statement_replay` holds the indices of the entries that already record the request's
    statements (in order) when it was answered with them instead of appending anything.
    """

    first_index: int
    count: int
    checkpoint_size: int
    checkpoint_note: str
    entries: tuple[EntryRow, ...] | None = None
    replayed: bool = False
    body_hash: bytes = b""
    paths: tuple[list[bytes], ...] | None = None
    time: str = ""
    statement_replay: tuple[int, ...] | None = None


@dataclass(slots=True)
class _Batch:
    """The requests one transaction integrates; `lookup`: look their statements up before planning."""

    waiting: list[_Waiting] = field(default_factory=list)
    lookup: bool = False


def request_bytes(request: PendingRequest) -> int:
    """What a request's envelopes weigh in the queue: their text (the entries they become are as big)."""
    return sum(
        len(a.envelope.payload)
        + len(a.envelope.payload_type)
        + sum(len(s.keyid) + len(s.sig) for s in a.envelope.signatures)
        for a in request.submissions
    )


@dataclass(slots=True)
class _Waiting:
    request: PendingRequest
    nbytes: int = 0
    future: asyncio.Future[Appended] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def size(self) -> int:
        return len(self.request.submissions)


class Sequencer:
    """Batches appends into transactions; one instance per process, several processes per database."""

    def __init__(  # noqa: PLR0913 - tuning knobs with defaults, named at every call site
        self,
        store: LogStore,
        signer: SignerKey,
        registry: KeyRegistry,
        *,
        max_batch: int = 1000,
        max_delay: float = 0.002,
        max_pending: int = 20_000,
        max_clock_skew: float = DEFAULT_MAX_CLOCK_SKEW,
        max_pending_bytes: int = 64 << 20,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Sequence into `store`, signing checkpoints with the ledger key `signer`.

        `registry` must reflect the log as stored, replayed and verified (ledger.append.bootstrap
        `load_registry`); the sequencer keeps it current. `clock` is this process's own
        clock, held against the database's (`max_clock_skew` seconds apart at most).
        """
        self._store = store
        self._signer = signer
        self.ledger_key: VerifierKey = signer.verifier()
        self.origin: str | None = None  # the log's, once a batch has read the head
        self.registry = registry
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._max_pending = max_pending
        self._max_skew = timedelta(seconds=max_clock_skew)
        self._max_pending_bytes = max_pending_bytes
        self._clock = clock
        self._queue: deque[_Waiting] = deque()
        self._retry: deque[_Batch] = deque()  # parts of a refused batch, or one to look up: next, in order
        self._verified_head: Head | None = None  # the head this process last wrote or checked
        self._chained_from: int | None = None  # the ledger's first chained index, once read
        self._index_guard = asyncio.Lock()
        self.completeness = IndexFollower(guard=self._index_guard)  # shared with the proof route
        self._pending = 0
        self._pending_bytes = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.batches = 0
        self.entries = 0
        self.last_checkpoint: CheckpointRow | None = None  # the newest this process committed

    @property
    def running(self) -> bool:
        """Whether the integration loop is running and taking appends."""
        return self._task is not None and not self._task.done() and not self._stopping

    @property
    def pending(self) -> int:
        """Envelopes waiting to be integrated."""
        return self._pending

    @property
    def pending_bytes(self) -> int:
        """Bytes of the envelopes waiting to be integrated (see `request_bytes`)."""
        return self._pending_bytes

    def start(self) -> None:
        """Start the integration loop on the running event loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sequencer")

    async def stop(self) -> None:
        """Integrate everything already queued, then stop the loop; later appends are refused."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def append(self, request: PendingRequest) -> Appended:
        """Queue a request and wait until its entries are durable; raise why it was refused.

        Raises UnavailableError immediately when the queue is full, by count or by bytes.
        """
        if self._task is None or self._stopping:
            raise UnavailableError("the sequencer is not running")
        nbytes = request_bytes(request)
        if self._pending + len(request.submissions) > self._max_pending or (
            self._pending_bytes and self._pending_bytes + nbytes > self._max_pending_bytes
        ):
            raise UnavailableError("the append queue is full; retry shortly", retry_after=1)
        waiting = _Waiting(request, nbytes)
        self._queue.append(waiting)
        self._pending += waiting.size
        self._pending_bytes += nbytes
        self._wakeup.set()
        return await waiting.future

    def _take_batch(self) -> list[_Waiting]:
        """Dequeue up to `max_batch` envelopes' worth of requests; a larger first request goes alone."""
        batch: list[_Waiting] = []
        taken = taken_bytes = 0
        keys: set[tuple[int, str]] = set()
        deferred: list[_Waiting] = []
        while self._queue and (not batch or taken + self._queue[0].size <= self._max_batch):
            waiting = self._queue.popleft()
            idem = waiting.request.idempotency
            if idem is not None and (idem.token_id, idem.key) in keys:
                deferred.append(waiting)  # a duplicate key waits for the next batch, then replays
                continue
            if idem is not None:
                keys.add((idem.token_id, idem.key))
            batch.append(waiting)
            taken += waiting.size
            taken_bytes += waiting.nbytes
        self._queue.extendleft(reversed(deferred))
        self._pending -= taken
        self._pending_bytes -= taken_bytes
        return batch

    async def _run(self) -> None:
        while not (self._stopping and not self._queue and not self._retry):
            await self._wakeup.wait()
            self._wakeup.clear()
            if self._max_delay > 0 and self._pending < self._max_batch:
                await asyncio.sleep(self._max_delay)  # let concurrent requests join this batch
            while self._queue or self._retry:
                batch = _Batch()  # filled once the head is locked
                try:
                    await self._integrate(batch)
                except DuplicateStatementError as exc:
                    if batch.lookup:  # the statements were looked up under this very lock: not a race
                        log.error("a batch collided with recorded statements it had looked up")  # noqa: TRY400 - no traceback: the error says it all
                        self._fail(batch.waiting, UnavailableError(BATCH_FAILED))
                    else:
                        log.info("a batch repeats a recorded statement (%s); planning it again", exc)
                        self._retry.appendleft(_Batch(batch.waiting, lookup=True))
                except UnstorableError as exc:
                    self._isolate(batch, exc)
                except LedgerError as exc:
                    if isinstance(exc, UnavailableError):
                        log.error("batch refused: %s", exc)  # noqa: TRY400 - the cause is in the message
                    self._fail(batch.waiting or self._next_batch().waiting, exc)
                except Exception:
                    batch.waiting = batch.waiting or self._next_batch().waiting  # empty: head not locked
                    log.exception("batch of %d requests failed", len(batch.waiting))
                    # The cause goes to the log only: it may name tables and indexes, and it is the
                    # same text for every client of the batch, whoever caused it.
                    self._fail(batch.waiting, UnavailableError(BATCH_FAILED))
                # Drop the last batch now: while the loop waits for work, this reference would keep its
                # envelopes and entries (up to a whole batch's bytes) alive after their requests end.
                del batch

    def _next_batch(self) -> _Batch:
        """The next batch: a refused batch's part, or one to look up, still to retry; else what is queued."""
        return self._retry.popleft() if self._retry else _Batch(self._take_batch())

    def _isolate(self, batch: _Batch, exc: UnstorableError) -> None:
        """Retry the halves of a batch the store refused, each alone; a lone request fails (422)."""
        waiting = batch.waiting
        if len(waiting) <= 1:
            self._fail(waiting, exc)
            return
        half = len(waiting) // 2
        # The first half goes first.
        self._retry.extendleft([_Batch(waiting[half:], batch.lookup), _Batch(waiting[:half], batch.lookup)])

    @staticmethod
    def _fail(batch: list[_Waiting], exc: LedgerError) -> None:
        for waiting in batch:
            if not waiting.future.done():
                waiting.future.set_exception(exc)

    async def _integrate(self, batch: _Batch) -> None:
        """Lock the head, then take into `batch` whatever is queued by then, and integrate it.

        Taking the batch once the lock is held lets requests that arrived while another
        process held it join this transaction instead of waiting for the next one.
        """
        guard = self._index_guard
        try:
            await self._integrate_locked(batch, guard)
        finally:
            if guard.locked():
                guard.release()

    async def _integrate_locked(self, batch: _Batch, guard: asyncio.Lock) -> None:
        """`_integrate` under the head lock; takes `guard` just before the commit (see IndexFollower)."""
        async with self._store.append_transaction() as txn:
            taken = self._next_batch()
            batch.waiting.extend(taken.waiting)
            batch.lookup = taken.lookup
            head = await txn.head()
            checkpoint = await self._check_head(txn, head)
            now = self._batch_time(await txn.now(), head)
            registry = self.registry
            if head.last_admin_entry > registry.applied_through:
                rows = await txn.entries_of_kinds(ADMIN_KINDS, registry.applied_through + 1)
                registry = replay_admin_entries(registry, rows, below=head.tree_size)
            check_key_chain(registry, head.last_key_event, f"the log head at size {head.tree_size}")
            replays = await self._find_replays(txn, batch.waiting)
            fresh = [w for w in batch.waiting if id(w) not in replays]
            recorded = await self._recorded(txn, fresh) if batch.lookup else None
            index = await self._index_input(txn, head, fresh, checkpoint)
            chains = await self._chain_heads(txn, fresh, index)
            plan = plan_batch(
                head, [w.request for w in fresh], registry, self._signer, now,
                chains=chains, recorded=recorded, index=index,
            )  # fmt: skip
            if plan.write is not None:
                await txn.write(plan.write)
                await guard.acquire()  # no proof reads a snapshot between this commit and `applied`
        # Committed: only now may anyone learn of it.
        self.registry = plan.registry if plan.write is not None else registry
        paths: list[list[bytes]] = []
        if plan.write is not None:
            if plan.index is not None:
                self.completeness.applied(plan.index, plan.write.head.tree_size)
            self.last_checkpoint = plan.write.checkpoint
            self._verified_head = plan.write.head
            old = CompactRange(head.tree_size, list(head.compact_range))
            paths = appended_inclusion_paths(old, [e.leaf_hash for e in plan.write.entries])
        self._resolve(batch.waiting, fresh, plan, replays, paths)

    async def _chain_heads(self, txn: AppendTransaction, fresh: list[_Waiting], index: IndexInput) -> Chains:
        """The heads of the release and artifact chains the fresh requests join, read under the head lock.

        A release's head comes from its entries (its kind says whether a seal closed it); an
        artifact's from the index buckets `index` already read for the batch (no second read).
        """
        submissions = [item for w in fresh for item in w.request.submissions]
        releases = sorted({r for item in submissions if (r := item.release)})
        stored = {key: head for content in index.buckets.values() for key, head in content}
        artifacts = {}
        for digest in {d for item in submissions for d in item.subjects if is_chained_digest(d)}:
            found = stored.get(artifact_key(digest))
            if found is not None:
                artifacts[digest] = ChainHead(found.last_index, found.last_leaf, found.count - 1)
        return Chains(
            await txn.release_heads(releases) if releases else {},
            artifacts=artifacts,
            chained_from=index.chained_from,
        )

    async def _index_input(
        self, txn: AppendTransaction, head: Head, fresh: list[_Waiting], checkpoint: CheckpointRow | None
    ) -> IndexInput:
        """The completeness index at the locked head, with every bucket the fresh requests may change.

        Brings this process's tree up to the head first: another process's batches are copied
        in from their stored deltas when they run unbroken from the tree's size, else re-planned
        from the stored heads that changed since. Then reads the buckets of every chain the
        requests may extend: their releases, chained subjects and the key-event chain.
        `checkpoint` is the head's, when `_check_head` read it (another process moved the head).
        """
        if self._chained_from is None:
            self._chained_from = await txn.chained_from()  # set once, by the migration: it never changes
        follower = self.completeness
        submissions = [item for w in fresh for item in w.request.submissions]
        keys = [KEY_EVENTS_KEY, *(release_key(*r) for item in submissions if (r := item.release))]
        keys += [artifact_key(d) for item in submissions for d in item.subjects if is_chained_digest(d)]
        committed = committed_index(checkpoint) if checkpoint is not None else None
        since, copied = follower.size, False
        if committed is not None and 0 < since < head.tree_size:
            copied = follower.take_deltas(await txn.index_deltas(since), head.tree_size)
        # Every stored head has updated_size >= 1: from size 0, the read takes every bucket (start-up).
        buckets = sorted({follower.tree.bucket_of(k) for k in keys})
        contents = await txn.index_buckets(buckets, head.tree_size if copied else follower.size)
        follower.bring_to(head.tree_size, contents)
        if committed is not None and follower.tree.root() != committed[0]:
            await self._rebuild_index(txn, head, committed[0], copied)
        return IndexInput(follower.tree, contents, self._chained_from)

    async def _rebuild_index(
        self, txn: AppendTransaction, head: Head, committed: bytes, copied: bool
    ) -> None:
        """Rebuild the tree from every stored head: it missed the root the head's checkpoint commits to.

        LogIntegrityError when the stored heads do not make that root either: the index and
        the log disagree, and no batch may commit to either until an operator runs `audit`.
        """
        follower = self.completeness
        log.warning(
            "the completeness index taken on %s at size %d does not have the root its checkpoint "
            "commits to: rebuilding it from every stored head",
            "from stored deltas" if copied else "from the stored heads",
            head.tree_size,
        )
        follower.rebuild(head.tree_size, await txn.index_buckets([], -1))
        if follower.tree.root() != committed:
            raise LogIntegrityError(
                f"the completeness index's stored heads at size {head.tree_size} do not make the index "
                "root its checkpoint commits to; appends stop until an operator runs `evledger audit`"
            )

    async def _check_head(self, txn: AppendTransaction, head: Head) -> CheckpointRow | None:
        """The locked head is the tree of a checkpoint the ledger key signed (LogIntegrityError if not).

        Skipped when it is the head this process last wrote or checked (the head only moves
        forward, so an equal head is the same one); with several processes, one checkpoint
        read and one signature check a batch after another's commit. Returns the checkpoint
        it checked, None when skipped.
        """
        self.origin = head.origin
        if head.tree_size == 0 or head == self._verified_head:
            return None  # before entry 0 (nothing signed yet), or the head this process wrote or checked
        checkpoint = await txn.head_checkpoint()
        if checkpoint is None:
            raise LogIntegrityError(f"the log head at size {head.tree_size} has no checkpoint")
        check_head(head, verified_checkpoint(checkpoint, self.ledger_key, head.origin))
        self._verified_head = head
        return checkpoint

    def _batch_time(self, database_now: datetime, head: Head) -> datetime:
        """The time to stamp: the database's; UnavailableError when the clocks make it implausible."""
        local = self._clock()
        if abs(database_now - local) > self._max_skew:
            raise UnavailableError(
                f"the database's clock ({database_now.isoformat()}) and this server's "
                f"({local.isoformat()}) differ by more than {self._max_skew.total_seconds():g} s: "
                "appends stop until they agree, so no entry gets a wrong time"
            )
        if head.last_time and database_now < parse_time(head.last_time) - self._max_skew:
            raise UnavailableError(
                f"the database's clock ({database_now.isoformat()}) is behind the newest entry's time "
                f"({head.last_time}) by more than {self._max_skew.total_seconds():g} s: appends stop "
                "until it catches up, so entry times never go back"
            )
        return database_now

    @staticmethod
    async def _recorded(txn: AppendTransaction, waiting: list[_Waiting]) -> dict[bytes, int]:
        hashes = {item.statement_hash for w in waiting for item in w.request.submissions}
        return await txn.recorded_statements(sorted(hashes))

    @staticmethod
    async def _find_replays(txn: AppendTransaction, batch: list[_Waiting]) -> dict[int, IdempotencyRow]:
        keyed = {
            (w.request.idempotency.token_id, w.request.idempotency.key): w
            for w in batch
            if w.request.idempotency is not None
        }
        if not keyed:
            return {}
        return {id(keyed[(row.token_id, row.key)]): row for row in await txn.find_idempotency(list(keyed))}

    def _resolve(
        self,
        batch: list[_Waiting],
        fresh: list[_Waiting],
        plan: BatchPlan,
        replays: dict[int, IdempotencyRow],
        paths: list[list[bytes]],
    ) -> None:
        write = plan.write
        for position, waiting in enumerate(fresh):
            if position in plan.rejected:
                waiting.future.set_exception(plan.rejected[position])
                continue
            if position in plan.replayed:
                indices = plan.replayed[position]
                waiting.future.set_result(Appended(indices[0], len(indices), 0, "", statement_replay=indices))
                continue
            assert write is not None  # noqa: S101 - a placed request implies a write
            first, count = plan.placed[position]
            offset = first - write.entries[0].index
            waiting.future.set_result(
                Appended(
                    first,
                    count,
                    write.checkpoint.tree_size,
                    write.checkpoint.note,
                    tuple(write.entries[offset : offset + count]),
                    paths=tuple(paths[offset : offset + count]),
                    time=write.head.last_time,
                )
            )
        if write is not None:
            self.batches += 1
            self.entries += len(write.entries)
        for waiting in batch:
            row = replays.get(id(waiting))
            if row is not None:
                waiting.future.set_result(
                    Appended(
                        row.first_index,
                        row.count,
                        row.checkpoint_size,
                        "",
                        replayed=True,
                        body_hash=row.body_hash,
                    )
                )
