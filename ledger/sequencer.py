"""The sequencer: group commit of concurrent appends (DESIGN.md §2, §6).

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

It knows the storage Protocol only: no SQL, no HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ledger.admin import KeyRegistered, KeyRevoked
from ledger.batch import BatchPlan, PendingRequest, plan_batch
from ledger.chains import Chains, is_key_event
from ledger.core.append_proofs import appended_inclusion_paths
from ledger.core.compact_range import CompactRange
from ledger.core.keys import SignerKey
from ledger.errors import LedgerError, UnavailableError, UnstorableError
from ledger.registry import KeyRegistry
from ledger.storage.protocol import (
    AppendTransaction,
    CheckpointRow,
    EntryRow,
    IdempotencyRow,
    KeyEventRow,
    LogStore,
)

log = logging.getLogger(__name__)
BATCH_FAILED = "the batch could not be committed (the server log has the cause); retry"


@dataclass(frozen=True, slots=True)
class Appended:
    """Where a request's entries went: [first_index, first_index + count) under checkpoint_size.

    `entries` holds the rows when they were just written, with their inclusion `paths`
    (computed from memory) and the batch's `time` (None / empty for an idempotent replay).
    `replayed` is True when an earlier request with the same idempotency key appended them.
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


def apply_key_events(registry: KeyRegistry, events: list[KeyEventRow]) -> None:
    """Bring a registry up to date with key events read from storage (in log order)."""
    for event in events:
        if event.index <= registry.applied_through:
            continue
        if event.kind == "key.registered" and event.verifier is not None:
            registry.register(
                event.index,
                KeyRegistered(event.verifier, event.owner or "", list(event.roles), list(event.products)),
            )
        elif event.kind == "key.revoked":
            registry.revoke(event.index, KeyRevoked(event.keyid, event.reason or ""))
        registry.applied_through = event.index


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
        max_pending_bytes: int = 64 << 20,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Sequence into `store`, signing checkpoints with the ledger key `signer`.

        `registry` must reflect the log as stored; the sequencer keeps it current.
        """
        self._store = store
        self._signer = signer
        self.registry = registry
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._max_pending = max_pending
        self._max_pending_bytes = max_pending_bytes
        self._clock = clock
        self._queue: deque[_Waiting] = deque()
        self._halves: deque[list[_Waiting]] = deque()  # parts of a refused batch, each its own batch next
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
        while not (self._stopping and not self._queue and not self._halves):
            await self._wakeup.wait()
            self._wakeup.clear()
            if self._max_delay > 0 and self._pending < self._max_batch:
                await asyncio.sleep(self._max_delay)  # let concurrent requests join this batch
            while self._queue or self._halves:
                batch: list[_Waiting] = []  # filled once the head is locked
                try:
                    await self._integrate(batch)
                except UnstorableError as exc:
                    self._isolate(batch, exc)
                except LedgerError as exc:
                    self._fail(batch or self._next_batch(), exc)
                except Exception:
                    batch = batch or self._next_batch()  # empty: the head could not even be locked
                    log.exception("batch of %d requests failed", len(batch))
                    # The cause goes to the log only: it may name tables and indexes, and it is the
                    # same text for every client of the batch, whoever caused it.
                    self._fail(batch, UnavailableError(BATCH_FAILED))
                # Drop the last batch now: while the loop waits for work, this reference would keep its
                # envelopes and entries (up to a whole batch's bytes) alive after their requests end.
                del batch

    def _next_batch(self) -> list[_Waiting]:
        """The next batch: the first half of a refused batch still to retry, else what is queued."""
        return self._halves.popleft() if self._halves else self._take_batch()

    def _isolate(self, batch: list[_Waiting], exc: UnstorableError) -> None:
        """Retry the halves of a batch the store refused, each alone; a lone request fails (422)."""
        if len(batch) <= 1:
            self._fail(batch, exc)
            return
        half = len(batch) // 2
        self._halves.extendleft([batch[half:], batch[:half]])  # the first half goes first

    @staticmethod
    def _fail(batch: list[_Waiting], exc: LedgerError) -> None:
        for waiting in batch:
            if not waiting.future.done():
                waiting.future.set_exception(exc)

    async def _integrate(self, batch: list[_Waiting]) -> None:
        """Lock the head, then take into `batch` whatever is queued by then, and integrate it.

        Taking the batch once the lock is held lets requests that arrived while another
        process held it join this transaction instead of waiting for the next one.
        """
        async with self._store.append_transaction() as txn:
            batch.extend(self._next_batch())
            head = await txn.head()
            registry = self.registry
            if head.last_key_event > registry.applied_through:
                registry = registry.copy()
                apply_key_events(registry, await txn.key_events_since(registry.applied_through + 1))
            replays = await self._find_replays(txn, batch)
            fresh = [w for w in batch if id(w) not in replays]
            chains = await self._chains(txn, fresh)
            plan = plan_batch(
                head, [w.request for w in fresh], registry, self._signer, self._clock(), chains=chains
            )
            if plan.write is not None:
                await txn.write(plan.write)
        # Committed: only now may anyone learn of it.
        self.registry = plan.registry if plan.write is not None else registry
        paths: list[list[bytes]] = []
        if plan.write is not None:
            self.last_checkpoint = plan.write.checkpoint
            old = CompactRange(head.tree_size, list(head.compact_range))
            paths = appended_inclusion_paths(old, [e.leaf_hash for e in plan.write.entries])
        self._resolve(batch, fresh, plan, replays, paths)

    @staticmethod
    async def _chains(txn: AppendTransaction, waiting: list[_Waiting]) -> Chains:
        """Read the heads of the chains these requests extend (one query each kind, only if needed)."""
        items = [item for w in waiting for item in w.request.submissions]
        releases = sorted({r for item in items if (r := item.release) is not None})
        has_key_event = any(is_key_event(item) for item in items)
        return Chains(
            await txn.release_heads(releases) if releases else {},
            await txn.key_head() if has_key_event else None,
        )

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
