"""What the sequencer refuses to build on or record (issue #9), against the in-memory store.

- A signed statement is recorded once: sent again it is answered with its entry.
- A decision evaluated on a release chain that has moved on is refused, not appended.
- Entry times come from the database's clock, and appends stop when that clock and the
  process's own disagree or go back, instead of stamping an implausible time.
- The head is built on only when its checkpoint is signed by the ledger key, and admin
  records appended by another process are replayed from their entries with the verifiers'
  rules (a forged one stops appends).
- A seal needs a key with a role the policy in force names, at the seal's own index.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from sequencer_support import (
    ALICE,
    BOB,
    LEDGER_KEY,
    ORIGIN,
    FakeStore,
    check_log,
    evidence,
    registration,
    request,
    started,
)

from ledger.append.sequencer import Sequencer
from ledger.core.checkpoint import Checkpoint, sign_checkpoint
from ledger.core.compact_range import CompactRange
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE, Envelope, sign_envelope
from ledger.core.encoding import format_time
from ledger.core.entry import ChainLink, KeyLink, encode_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.errors import (
    ConflictError,
    EncodingError,
    LogIntegrityError,
    PermissionDeniedError,
    StaleEvaluationError,
    UnavailableError,
)
from ledger.records import predicates as p
from ledger.records.admin import PolicyPublished, encode_admin_record
from ledger.records.policy import Policy, Sealing, load_policy_toml, policy_digest
from ledger.rules.registry import KeyRegistry
from ledger.storage.protocol import CheckpointRow, EntryRow

DAVE = SignerKey.from_seed("dave.test/release", bytes(range(5, 37)))
EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "schemas" / "policy.example.toml"


def seal(signer: SignerKey, count: int, head: bytes) -> Envelope:
    """A seal of release prod 1.0 (the release `sequencer_support.statement` names)."""
    body = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "release", "digest": {"sha256": "ab" * 32}}],
        "predicateType": p.RELEASE_SEAL,
        "predicate": msgspec.to_builtins(p.Seal(p.Release("prod", "1.0"), count, head.hex())),
    }
    return sign_envelope(INTOTO_PAYLOAD_TYPE, msgspec.json.encode(body), [signer])


def policy(seal_roles: list[str]) -> Envelope:
    example = load_policy_toml(EXAMPLE_POLICY.read_text(encoding="utf-8"))
    chosen: Policy = msgspec.structs.replace(example, sealing=Sealing(seal_roles))
    record = PolicyPublished(chosen, policy_digest(chosen))
    return sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(record), [LEDGER_KEY])


def release_chain(store: FakeStore) -> tuple[int, bytes]:
    """(count, head leaf hash) of release prod 1.0 in the store."""
    chained = [e for e in store.data.entries.values() if e.release_seq is not None]
    head = max(chained, key=lambda e: e.release_seq or 0)
    return len(chained), head.leaf_hash


# --- one statement, one entry --------------------------------------------------------------------


def test_a_statement_sent_again_is_answered_with_its_entry() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0)
        envelope = evidence(ALICE, 1)
        first = await sequencer.append(request(sequencer, envelope))
        size = store.size
        again = await sequencer.append(request(sequencer, envelope))
        assert again.statement_replay == (first.first_index,)
        assert not again.replayed
        assert store.size == size
        check_log(store)
        await sequencer.stop()

    asyncio.run(scenario())


def test_the_same_statement_in_two_requests_of_one_batch_is_placed_once() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.02)
        size = store.size
        envelope = evidence(BOB, 2)
        first, second = await asyncio.gather(
            sequencer.append(request(sequencer, envelope)), sequencer.append(request(sequencer, envelope))
        )
        assert first.statement_replay is None
        assert second.statement_replay == (first.first_index,)
        assert store.size == size + 1
        await sequencer.stop()

    asyncio.run(scenario())


def test_a_request_mixing_recorded_and_new_statements_is_refused_whole() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0)
        recorded = evidence(ALICE, 3)
        await sequencer.append(request(sequencer, recorded))
        size = store.size
        with pytest.raises(ConflictError, match="already recorded"):
            await sequencer.append(request(sequencer, evidence(ALICE, 4), recorded))
        assert store.size == size
        await sequencer.stop()

    asyncio.run(scenario())


def test_a_request_repeating_one_statement_is_refused() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0)
        size = store.size
        envelope = evidence(ALICE, 5)
        with pytest.raises(EncodingError, match="same signed statement twice"):
            await sequencer.append(request(sequencer, envelope, envelope))
        assert store.size == size
        await sequencer.stop()

    asyncio.run(scenario())


# --- decisions on a chain that moved --------------------------------------------------------------


def test_a_decision_evaluated_on_a_chain_that_moved_is_refused() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0)
        await sequencer.append(request(sequencer, evidence(ALICE, 6)))
        seen = release_chain(store)
        await sequencer.append(request(sequencer, evidence(BOB, 7)))  # joins the chain after the evaluation
        decision = request(sequencer, evidence(ALICE, 8))
        stale = dataclasses.replace(decision.submissions[0], expected_chain=(seen[0], seen[1].hex()))
        size = store.size
        with pytest.raises(StaleEvaluationError):
            await sequencer.append(dataclasses.replace(decision, submissions=[stale]))
        assert store.size == size
        current = release_chain(store)
        fresh = dataclasses.replace(decision.submissions[0], expected_chain=(current[0], current[1].hex()))
        appended = await sequencer.append(dataclasses.replace(decision, submissions=[fresh]))
        assert appended.first_index == size
        await sequencer.stop()

    asyncio.run(scenario())


# --- one clock ------------------------------------------------------------------------------------


def test_entries_are_stamped_with_the_database_clock_not_the_process_clock() -> None:
    async def scenario() -> None:
        store = FakeStore()
        database_now = datetime.now(UTC) + timedelta(seconds=3)  # within the allowed skew
        store.clock = lambda: database_now
        sequencer = await started(store, max_delay=0)
        appended = await sequencer.append(request(sequencer, evidence(ALICE, 9)))
        assert appended.time == format_time(database_now)
        await sequencer.stop()

    asyncio.run(scenario())


def beside(store: FakeStore, sequencer: Sequencer, **knobs: object) -> Sequencer:
    """A second sequencer on the same store, as another service process would run one."""
    other = Sequencer(store, LEDGER_KEY, sequencer.registry, max_delay=0, **knobs)  # type: ignore[arg-type]
    other.start()
    return other


TEN_YEARS = timedelta(days=3652)


@pytest.mark.parametrize("fast", ["process", "database"])
def test_a_clock_ten_years_fast_stops_appends_instead_of_stamping_them(fast: str) -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0)
        if fast == "database":
            store.clock = lambda: datetime.now(UTC) + TEN_YEARS
        else:
            await sequencer.stop()
            sequencer = beside(store, sequencer, clock=lambda: datetime.now(UTC) + TEN_YEARS)
        size, last_time = store.size, store.data.head.last_time
        with pytest.raises(UnavailableError, match="differ by more than 10 s"):
            await sequencer.append(request(sequencer, evidence(ALICE, 10)))
        assert (store.size, store.data.head.last_time) == (size, last_time)
        await sequencer.stop()

    asyncio.run(scenario())


def test_a_database_clock_gone_back_stops_appends_and_a_small_step_back_never_stamps_earlier() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0)
        newest = store.data.head.last_time
        back = datetime.fromisoformat(newest) - timedelta(seconds=2)  # within the skew: stamped as before
        store.clock = lambda: back
        await sequencer.stop()
        sequencer = beside(store, sequencer, clock=lambda: back)
        appended = await sequencer.append(request(sequencer, evidence(ALICE, 12)))
        assert appended.time == newest
        an_hour_back = datetime.fromisoformat(newest) - timedelta(hours=1)
        store.clock = lambda: an_hour_back
        await sequencer.stop()
        sequencer = beside(store, sequencer, clock=lambda: an_hour_back)
        size = store.size
        with pytest.raises(UnavailableError, match="behind the newest entry"):
            await sequencer.append(request(sequencer, evidence(ALICE, 13)))
        assert store.size == size
        await sequencer.stop()

    asyncio.run(scenario())


# --- what the head and the admin records rest on --------------------------------------------------


def test_a_head_whose_checkpoint_the_ledger_did_not_sign_stops_appends() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0)
        await sequencer.stop()
        size = store.size
        genuine = store.data.checkpoints[size]
        store.data.checkpoints[size] = CheckpointRow(size, genuine.root_hash, "bogus\n")
        other = beside(store, sequencer)
        with pytest.raises(LogIntegrityError, match="not signed by the ledger key"):
            await other.append(request(other, evidence(BOB, 14)))
        assert store.size == size
        await other.stop()

    asyncio.run(scenario())


def test_admin_records_another_process_appended_are_replayed_from_their_entries() -> None:
    async def scenario() -> None:
        store = FakeStore()
        first = await started(store, max_delay=0)
        second = beside(store, first)
        await first.append(request(first, registration(DAVE, ["appender"])))
        assert DAVE.keyid not in second.registry.keys
        # Admitted where DAVE is known; integrated by the process that has not heard of him yet.
        appended = await second.append(request(first, evidence(DAVE, 15)))
        assert appended.first_index == store.size - 1
        assert DAVE.keyid in second.registry.keys
        check_log(store)
        await first.stop()
        await second.stop()

    asyncio.run(scenario())


def test_an_admin_record_forged_into_the_store_stops_appends() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0)
        await sequencer.stop()
        # Someone who holds the ledger key but went around the sequencer: a registration signed by
        # the key it registers (no admin signed it), under a checkpoint the ledger key signed.
        forged = registration(DAVE, ["admin"], signers=[DAVE])
        _plant(store, forged, sequencer.registry)
        other = beside(store, sequencer)
        with pytest.raises(LogIntegrityError, match="does not replay"):
            await other.append(request(other, evidence(ALICE, 16)))
        await other.stop()

    asyncio.run(scenario())


def _plant(store: FakeStore, envelope: Envelope, registry: KeyRegistry) -> None:
    """Append a key event as the next entry directly: chained, hashed and checkpointed as the ledger would.

    Its key-chain link, the checkpoint's `evledger-keys` line and the head are all right and the
    checkpoint is signed with the ledger key: only the registration's own signature is wrong.
    """
    head = store.data.head
    index = head.tree_size
    last = registry.key_head
    assert last is not None
    link = KeyLink(last.seq + 1, ChainLink(last.index, last.leaf_hash.hex()))
    data = encode_entry(index, head.last_leaf_hash, head.last_time, envelope, keys=link)
    row = EntryRow(index, leaf_hash(data), data, datetime.fromisoformat(head.last_time), DAVE.keyid,
                   ADMIN_PAYLOAD_TYPE, "key.registered", None, None, ())  # fmt: skip
    store.data.entries[index] = row
    compact = CompactRange(head.tree_size, list(head.compact_range))
    compact.append(row.leaf_hash)
    checkpoint = Checkpoint(ORIGIN, index + 1, compact.root(), (f"evledger-keys {index}",))
    store.data.checkpoints[index + 1] = CheckpointRow(
        index + 1, compact.root(), sign_checkpoint(checkpoint, LEDGER_KEY)
    )
    store.data.head = dataclasses.replace(
        head, tree_size=index + 1, compact_range=tuple(compact.hashes), last_leaf_hash=row.leaf_hash,
        last_key_event=index, last_admin_entry=index,
    )  # fmt: skip


# --- who may seal ---------------------------------------------------------------------------------


def test_a_seal_needs_a_key_with_a_sealing_role() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0)
        await sequencer.append(request(sequencer, registration(DAVE, ["release-manager"])))
        await sequencer.append(request(sequencer, evidence(ALICE, 17)))
        count, head = release_chain(store)
        with pytest.raises(PermissionDeniedError, match="role release-manager"):
            request(sequencer, seal(ALICE, count, head))  # an appender key: refused at admission
        sealed = await sequencer.append(request(sequencer, seal(DAVE, count, head)))
        assert sealed.first_index == store.size - 1
        await sequencer.stop()

    asyncio.run(scenario())


def test_a_seal_is_held_to_the_policy_in_force_at_its_own_index() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.02)
        await sequencer.append(request(sequencer, registration(DAVE, ["release-manager"])))
        await sequencer.append(request(sequencer, evidence(ALICE, 18)))
        count, head = release_chain(store)
        admitted = request(sequencer, seal(DAVE, count, head))  # admitted under the default roles
        size = store.size
        # A policy naming another sealing role lands in the same batch, just before the seal.
        published, refused = await asyncio.gather(
            sequencer.append(request(sequencer, policy(["qa-lead"]))),
            sequencer.append(admitted),
            return_exceptions=True,
        )
        assert not isinstance(published, BaseException), published
        assert isinstance(refused, PermissionDeniedError), refused
        assert "qa-lead" in str(refused)
        assert store.size == size + 1
        assert sequencer.registry.seal_roles == frozenset({"qa-lead"})
        await sequencer.stop()

    asyncio.run(scenario())


def test_the_default_sealing_role_is_release_manager() -> None:
    assert KeyRegistry().seal_roles == frozenset({"release-manager"})
