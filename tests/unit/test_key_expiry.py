"""Key expiry (issue #12): a registration may say when its key stops being able to sign."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from sequencer_support import LEDGER_KEY, ORIGIN, FakeStore, evidence, request, started

from ledger.append.batch import PendingRequest, plan_batch
from ledger.append.bootstrap import genesis_request
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, sign_envelope
from ledger.core.keys import SignerKey
from ledger.errors import EncodingError, SignatureError
from ledger.records.admin import KeyRegistered, KeyRevoked, decode_admin_record, encode_admin_record
from ledger.rules.admission import AS_OF_NOW, admit
from ledger.rules.registry import KeyRegistry
from ledger.rules.replay import LogReplayer
from ledger.storage.protocol import Head

EXPIRY = datetime(2030, 6, 30, tzinfo=UTC)
KEY = SignerKey.from_seed("people.test/ann", bytes(range(7, 39)))


def registered(expires: str | None = "2030-06-30T00:00:00Z") -> KeyRegistered:
    record = KeyRegistered(KEY.verifier().format(), "Ann Approver", ["appender"])
    return record if expires is None else msgspec.structs.replace(record, expires=expires)


def test_a_registration_without_expiry_keeps_its_bytes_and_never_expires() -> None:
    record = registered(None)
    payload = encode_admin_record(record)
    assert b"expires" not in payload  # records written before expiry existed read the same
    assert decode_admin_record(payload) == record
    registry = KeyRegistry()
    registry.register(3, record)
    assert registry.signing_key(KEY.keyid, 4, datetime(2999, 1, 1, tzinfo=UTC)) == KEY.verifier()


@pytest.mark.parametrize("bad", ["2030-06-30", "2030-06-30T00:00:00", "soon", "2030-02-30T00:00:00Z", ""])
def test_a_registration_with_a_malformed_expiry_is_refused(bad: str) -> None:
    with pytest.raises(EncodingError, match=r"expires .* is not an RFC 3339 date-time with an offset"):
        decode_admin_record(encode_admin_record(registered(bad)))


def test_the_key_signs_before_its_expiry_and_not_at_or_after_it() -> None:
    registry = KeyRegistry()
    registry.register(3, registered("2030-06-30T02:00:00+02:00"))  # the same moment as EXPIRY
    just_before = EXPIRY - timedelta(milliseconds=1)
    assert registry.signing_key(KEY.keyid, 4, just_before) == KEY.verifier()
    assert registry.signing_key(KEY.keyid, 4, EXPIRY) is None
    assert registry.signing_key(KEY.keyid, 4, EXPIRY + timedelta(days=1)) is None
    reason = registry.explain_refusal([KEY.keyid], 4, EXPIRY)
    assert reason == (
        f"{KEY.keyid} expired at 2030-06-30T00:00:00.000Z (its registration, entry 3, set that expiry; "
        "register a new key for Ann Approver)"
    )
    # a revocation is named first: it is the older reason
    registry.revoke(5, KeyRevoked(KEY.keyid, "left"))
    assert "was revoked at entry 5" in registry.explain_refusal([KEY.keyid], 6, EXPIRY)


def test_the_sequencer_refuses_what_it_would_stamp_at_or_after_the_expiry() -> None:
    """Admitted while the key was valid, sequenced after its expiry: refused at the batch's own time."""

    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store)
        record = sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(registered()), [LEDGER_KEY])
        await sequencer.append(request(sequencer, record))
        async with store.append_transaction() as txn:
            head = await txn.head()
        by_ann = request(sequencer, evidence(KEY, 1))
        on_time = plan_batch(head, [by_ann], sequencer.registry, LEDGER_KEY, EXPIRY - timedelta(seconds=1))
        assert not on_time.rejected
        late = plan_batch(head, [by_ann], sequencer.registry, LEDGER_KEY, EXPIRY)
        (refusal,) = late.rejected.values()
        assert isinstance(refusal, SignatureError)
        assert "expired at 2030-06-30T00:00:00.000Z" in str(refusal)
        await sequencer.stop()

    asyncio.run(scenario())


def forged_log() -> list[bytes]:
    """Entry 0, entry 1 registering KEY to expire at EXPIRY, entry 2 signed by KEY a day after it.

    Written by the real planner, whose registry copy was made to forget the expiry (an operator
    who edits the sequencer): every other check passes, only the expiry tells.
    """
    head = Head(ORIGIN, 0, (), bytes(32), "", -1)
    start = EXPIRY - timedelta(days=30)
    genesis = plan_batch(
        head, [genesis_request(LEDGER_KEY, "ledger")], KeyRegistry(), LEDGER_KEY, start, genesis=True
    )
    assert genesis.write is not None
    record = sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(registered()), [LEDGER_KEY])
    item = admit(record, genesis.registry, AS_OF_NOW, at=start)
    registering = plan_batch(
        genesis.write.head, [PendingRequest([item])], genesis.registry, LEDGER_KEY, start
    )
    assert registering.write is not None
    forgetful = registering.registry.copy()
    forgetful.keys[KEY.keyid].expires = None
    late = EXPIRY + timedelta(days=1)
    signed = admit(evidence(KEY, 1), forgetful, AS_OF_NOW, at=late)
    forged = plan_batch(registering.write.head, [PendingRequest([signed])], forgetful, LEDGER_KEY, late)
    assert forged.write is not None
    return [e.data for w in (genesis.write, registering.write, forged.write) for e in w.entries]


def test_attack_a_verifier_refuses_an_entry_signed_after_its_keys_expiry() -> None:
    zero, one, two = forged_log()
    replayer = LogReplayer()
    replayer.check(zero)
    replayer.check(one)
    with pytest.raises(SignatureError, match=f"{re.escape(KEY.keyid)} expired at 2030-06-30T00:00:00.000Z"):
        replayer.check(two)


def test_an_honest_planner_refuses_what_the_forger_wrote() -> None:
    with pytest.raises(SignatureError, match="expired at"):
        admit(evidence(KEY, 1), _registry_with_key(), AS_OF_NOW, at=EXPIRY)
    assert admit(evidence(KEY, 1), _registry_with_key(), AS_OF_NOW, at=EXPIRY - timedelta(seconds=1))


def _registry_with_key() -> KeyRegistry:
    registry = KeyRegistry()
    registry.register(1, registered())
    return registry
