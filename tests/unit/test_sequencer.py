"""The sequencer against an in-memory store: group commit, all-or-nothing batches, back-pressure.

The store is tests/unit/sequencer_support.py's `FakeStore`, whose transactions
publish their work only on a normal exit, as a PostgreSQL transaction commits.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from sequencer_support import (
    ALICE,
    BOB,
    CAROL,
    FakeStore,
    check_appended,
    check_log,
    evidence,
    registration,
    request,
    revocation,
    started,
)

from ledger.append.batch import Idempotency
from ledger.append.sequencer import Appended
from ledger.core.keys import SignerKey
from ledger.errors import (
    LedgerError,
    PermissionDeniedError,
    SignatureError,
    UnavailableError,
    UnstorableError,
)


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
