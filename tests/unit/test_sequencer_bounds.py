"""The sequencer's queue bounded by bytes, and no request's envelopes kept alive after its answer.

Uses the in-memory store and helpers of test_sequencer.py.
"""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest
from test_sequencer import ALICE, BOB, FakeStore, check_log, evidence, request, started

from ledger.append.batch import PendingRequest
from ledger.append.sequencer import Sequencer, request_bytes
from ledger.errors import UnavailableError
from ledger.rules.admission import Admitted


def _one(sequencer: Sequencer, n: int) -> PendingRequest:
    return request(sequencer, evidence(ALICE if n % 2 else BOB, n))


def test_request_bytes_count_the_envelopes_text() -> None:
    async def scenario() -> None:
        sequencer = await started(FakeStore(), max_delay=0.0)
        pending = request(sequencer, evidence(ALICE, 1), evidence(BOB, 2))
        envelopes = [a.envelope for a in pending.submissions]
        expected = sum(
            len(e.payload) + len(e.payload_type) + sum(len(s.keyid) + len(s.sig) for s in e.signatures)
            for e in envelopes
        )
        assert request_bytes(pending) == expected > 2 * 300
        await sequencer.stop()

    asyncio.run(scenario())


def test_queue_full_by_bytes_is_refused_at_once_and_writes_nothing() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.0)
        first, *waiting = [_one(sequencer, n) for n in (10, 20, 21)]
        refused_one = _one(sequencer, 99)
        room = sum(request_bytes(r) for r in waiting)
        sequencer._max_pending_bytes = room + request_bytes(refused_one) - 1
        gate, holding = asyncio.Event(), asyncio.Event()

        async def hold_until_gate() -> None:
            holding.set()
            await gate.wait()

        store.before_commit = hold_until_gate  # the first batch holds the head until the gate opens
        in_flight = asyncio.create_task(sequencer.append(first))
        await holding.wait()
        queued = [asyncio.create_task(sequencer.append(r)) for r in waiting]
        await asyncio.sleep(0)
        assert sequencer.pending_bytes == room
        size = store.size
        with pytest.raises(UnavailableError) as refused:
            await asyncio.wait_for(sequencer.append(refused_one), timeout=0.5)
        assert refused.value.retry_after >= 1
        assert sequencer.pending_bytes == room  # the refused request took no room
        gate.set()
        results = await asyncio.gather(in_flight, *queued)
        assert len({r.first_index for r in results}) == 3
        assert store.size == size + 3  # the refused one was never written
        assert sequencer.pending_bytes == 0
        store.before_commit = None
        check_log(store)
        await sequencer.stop()

    asyncio.run(scenario())


def test_a_request_larger_than_the_byte_bound_is_taken_when_the_queue_is_empty() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.0, max_pending_bytes=100)
        appended = await sequencer.append(request(sequencer, *[evidence(ALICE, n) for n in range(3)]))
        assert appended.count == 3
        assert sequencer.pending_bytes == 0
        check_log(store)
        await sequencer.stop()

    asyncio.run(scenario())


class _Submissions(list[Admitted]):
    """A request's envelopes in a list that can be watched with a weak reference."""


def test_a_requests_envelopes_are_not_kept_alive_after_its_answer() -> None:
    async def scenario() -> weakref.ref[_Submissions]:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.0)
        submissions = _Submissions(request(sequencer, *[evidence(ALICE, n) for n in range(5)]).submissions)
        watched = weakref.ref(submissions)
        appended = await sequencer.append(PendingRequest(submissions))
        assert appended.count == 5
        del submissions, appended
        await asyncio.sleep(0.05)  # the loop is idle again, waiting for work
        gc.collect()
        assert watched() is None, "the sequencer keeps the last batch's envelopes while it waits"
        await sequencer.stop()
        return watched

    asyncio.run(scenario())
