"""The Appender, the one way in for appends, against the in-memory store (tests/unit/sequencer_support.py).

What the HTTP service and the direct (`--dsn`) path share: idempotency before admission,
admission against a registry caught up from the log, the client's scope per envelope,
one all-or-nothing request to the sequencer, and receipts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from sequencer_support import (
    ALICE,
    BOB,
    CAROL,
    LEDGER_KEY,
    FakeStore,
    evidence,
    registration,
    request,
    started,
)

from ledger.append.appender import Appender
from ledger.append.sequencer import Sequencer
from ledger.core.keys import SignerKey
from ledger.errors import ConflictError, InputError, PermissionDeniedError, SignatureError
from ledger.query.proofs import ProofReader
from ledger.rules.admission import Admitted


@dataclass
class Client:
    """A client that records what it was asked to authorize and refuses one product."""

    client_id: int = 7
    refused: str | None = None
    seen: list[str | None] = field(default_factory=list)

    def authorize(self, admitted: Admitted) -> None:
        self.seen.append(admitted.product)
        if admitted.product == self.refused:
            raise PermissionDeniedError(f"not for {admitted.product}")


async def _appender(store: FakeStore) -> tuple[Appender, Sequencer, list[int]]:
    sequencer = await started(store, max_delay=0)
    committed: list[int] = []
    return Appender(store, sequencer, ProofReader(store), on_commit=committed.append), sequencer, committed


def test_a_fresh_append_is_committed_once_with_receipts_in_order() -> None:
    async def scenario() -> None:
        store = FakeStore()
        appender, sequencer, committed = await _appender(store)
        size = store.size
        receipts, replayed = await appender.append([evidence(ALICE, 1), evidence(BOB, 2)], Client())
        assert not replayed
        assert [r.index for r in receipts] == [size, size + 1]
        assert committed == [2]
        assert store.size == size + 2
        await sequencer.stop()

    asyncio.run(scenario())


def test_each_envelope_is_admitted_then_authorized_and_a_refusal_appends_nothing() -> None:
    async def scenario() -> None:
        store = FakeStore()
        appender, sequencer, committed = await _appender(store)
        size = store.size
        client = Client(refused="prod")
        with pytest.raises(PermissionDeniedError):
            await appender.append([evidence(ALICE, 1), evidence(BOB, 2)], client)
        assert client.seen == ["prod"]  # the first refusal stops the request before the next envelope
        assert (store.size, committed) == (size, [])
        await sequencer.stop()

    asyncio.run(scenario())


def test_an_idempotent_retry_replays_the_receipts_and_another_body_is_a_conflict() -> None:
    async def scenario() -> None:
        store = FakeStore()
        appender, sequencer, committed = await _appender(store)
        first, replayed = await appender.append([evidence(ALICE, 1)], Client(), "key-1")
        assert not replayed
        again, replayed = await appender.append([evidence(ALICE, 1)], Client(), "key-1")
        assert replayed
        assert again == first
        assert committed == [1]
        with pytest.raises(ConflictError, match="key-1"):
            await appender.append([evidence(ALICE, 2)], Client(), "key-1")
        # Keys are per client: another client's same key is its own.
        _, replayed = await appender.append([evidence(ALICE, 3)], Client(client_id=8), "key-1")
        assert not replayed
        with pytest.raises(InputError, match="Idempotency-Key"):
            await appender.append([evidence(ALICE, 4)], Client(), "")
        await sequencer.stop()

    asyncio.run(scenario())


def test_a_key_another_process_registered_is_learnt_from_the_log() -> None:
    async def scenario() -> None:
        store = FakeStore()
        appender, sequencer, _ = await _appender(store)
        # Another process on the same database registers CAROL; this one has not seen it.
        other = Sequencer(store, LEDGER_KEY, sequencer.registry, max_delay=0)  # type: ignore[arg-type]
        other.start()
        await other.append(request(other, registration(CAROL, ["appender"])))
        await other.stop()
        assert CAROL.keyid not in sequencer.registry.keys
        receipts, _ = await appender.append([evidence(CAROL, 1)])
        assert receipts[0].index == store.size - 1
        assert CAROL.keyid in sequencer.registry.keys
        # A key nobody registered is still refused once the registry is caught up.
        with pytest.raises(SignatureError):
            await appender.append([evidence(SignerKey.generate("mallory.test/ci"), 2)])
        await sequencer.stop()

    asyncio.run(scenario())
