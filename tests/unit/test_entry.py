"""Log entries (docs/formats.md#entries): canonical bytes, strict parsing, and the `prev` hash chain."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, Envelope, Signature, sign_envelope
from ledger.core.entry import GENESIS_PREV, ChainVerifier, encode_entry, parse_entry, verify_chain
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.errors import ChainError, EncodingError, TooLargeError

ENVELOPE = Envelope(
    payload="e30=",
    payload_type=INTOTO_PAYLOAD_TYPE,
    signatures=[Signature(keyid="k+00000000", sig="c2ln")],
)
TIME = "2024-01-02T03:04:05.006Z"
EXPECTED = (
    b'{"envelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json",'
    b'"signatures":[{"keyid":"k+00000000","sig":"c2ln"}]},'
    b'"index":0,"prev":"' + b"0" * 64 + b'","time":"2024-01-02T03:04:05.006Z","v":1}'
)
SIGNER = SignerKey.from_seed("pipeline.example/ci", hashlib.sha256(b"pipeline").digest())
START = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def _chain(count: int) -> list[bytes]:
    """`count` well-linked entries with real signed envelopes."""
    entries, prev = [], GENESIS_PREV
    for index in range(count):
        envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, b'{"n":%d}' % index, [SIGNER])
        data = encode_entry(index, prev, START + timedelta(seconds=index), envelope)
        entries.append(data)
        prev = leaf_hash(data)
    return entries


CHAIN = _chain(6)


# ---- encoding


def test_entry_bytes_are_exactly_the_canonical_json() -> None:
    assert encode_entry(0, GENESIS_PREV, TIME, ENVELOPE) == EXPECTED


def test_genesis_prev_is_64_zeros() -> None:
    assert bytes(32) == GENESIS_PREV
    assert parse_entry(EXPECTED).prev == "0" * 64


def test_time_is_written_in_utc_with_milliseconds_and_z() -> None:
    moment = datetime(2024, 1, 2, 5, 4, 5, 6999, tzinfo=timezone(timedelta(hours=2)))
    assert encode_entry(0, GENESIS_PREV, moment, ENVELOPE) == EXPECTED  # 05:04+02:00, µs truncated
    with pytest.raises(EncodingError):
        encode_entry(0, GENESIS_PREV, datetime(2024, 1, 2, 3, 4, 5), ENVELOPE)  # noqa: DTZ001 - naive on purpose


def test_encode_refuses_bad_inputs() -> None:
    with pytest.raises(EncodingError):
        encode_entry(-1, GENESIS_PREV, TIME, ENVELOPE)
    with pytest.raises(EncodingError):
        encode_entry(1, bytes(31), TIME, ENVELOPE)
    with pytest.raises(EncodingError):
        encode_entry(1, GENESIS_PREV, "2024-01-02T03:04:05Z", ENVELOPE)


@settings(max_examples=60, deadline=None)
@given(
    index=st.integers(0, 2**63 - 1),
    prev=st.binary(min_size=32, max_size=32),
    millis=st.integers(0, 253_402_300_799_999),  # through 9999-12-31T23:59:59.999Z
    payload=st.binary(max_size=200),
    keyid=st.text(max_size=30),
)
def test_entry_round_trips(index, prev, millis, payload, keyid) -> None:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    envelope = Envelope(
        payload=payload.hex(), payload_type="x/y", signatures=[Signature(keyid=keyid, sig="")]
    )
    data = encode_entry(index, prev, moment, envelope)
    entry = parse_entry(data)
    assert (entry.index, entry.prev, entry.v, entry.envelope) == (index, prev.hex(), 1, envelope)
    assert entry.time.endswith("Z")
    assert datetime.strptime(entry.time, "%Y-%m-%dT%H:%M:%S.%f%z") == moment
    assert encode_entry(entry.index, bytes.fromhex(entry.prev), entry.time, entry.envelope) == data


# ---- strict parsing


def _edit(old: bytes, new: bytes) -> bytes:
    assert old in EXPECTED
    return EXPECTED.replace(old, new, 1)


@pytest.mark.parametrize(
    "data",
    [
        _edit(b'"index":0', b'"index":0.0'),
        _edit(b'"index":0', b'"index":0e0'),
        _edit(b'"v":1', b'"v":1.0'),
        _edit(b'"v":1', b'"v":1E0'),
    ],
    ids=["index-float", "index-exponent", "v-float", "v-exponent"],
)
def test_floats_are_refused(data) -> None:
    with pytest.raises(EncodingError):
        parse_entry(data)


@pytest.mark.parametrize(
    "data",
    [
        _edit(b'"v":1}', b'"v":1,"v":1}'),
        _edit(b'"index":0,', b'"index":0,"index":0,'),
        _edit(b'"index":0,', b'"index":7,"index":0,'),
        _edit(b'"sig":"c2ln"}', b'"sig":"c2ln","sig":"c2ln"}'),
    ],
    ids=["v-twice", "index-twice", "index-shadowed", "nested-sig-twice"],
)
def test_duplicate_keys_are_refused(data) -> None:
    with pytest.raises(EncodingError):
        parse_entry(data)


@pytest.mark.parametrize(
    "data",
    [
        EXPECTED + b"\n",
        b" " + EXPECTED,
        _edit(b'"index":0,', b'"index": 0,'),
        _edit(b'"index":0,', b'"index":0 ,'),
        _edit(b'"index":0,', b'"index":0,\n'),
        _edit(b'[{"keyid"', b'[ {"keyid"'),
        _edit(b'"v":1}', b'"v":1\t}'),
    ],
)
def test_whitespace_is_refused(data) -> None:
    with pytest.raises(EncodingError):
        parse_entry(data)


@pytest.mark.parametrize(
    "data",
    [
        b'{"v":1,' + EXPECTED[1:].replace(b',"v":1}', b"}"),
        _edit(b'"prev":"' + b"0" * 64 + b'","time":"' + TIME.encode() + b'"',
              b'"time":"' + TIME.encode() + b'","prev":"' + b"0" * 64 + b'"'),
        _edit(b'"keyid":"k+00000000","sig":"c2ln"', b'"sig":"c2ln","keyid":"k+00000000"'),
        _edit(b'"payload":"e30=","payloadType":"application/vnd.in-toto+json"',
              b'"payloadType":"application/vnd.in-toto+json","payload":"e30="'),
    ],
    ids=["v-first", "time-before-prev", "nested-sig-before-keyid", "payloadType-before-payload"],
)  # fmt: skip
def test_unsorted_keys_are_refused(data) -> None:
    with pytest.raises(EncodingError):
        parse_entry(data)


@pytest.mark.parametrize(
    "data",
    [
        _edit(b'"time"', b'"release":"1.0","time"'),
        _edit(b'"v":1}', b'"v":1,"w":0}'),
        _edit(b'"payload":', b'"extra":1,"payload":'),
        _edit(b'"sig":"c2ln"', b'"sig":"c2ln","t":1'),
    ],
)
def test_unknown_fields_are_refused(data) -> None:
    with pytest.raises(EncodingError):
        parse_entry(data)


@pytest.mark.parametrize(
    "prev",
    [b"0" * 63, b"0" * 65, b"A" * 64, b"g" * 64, b"", b"0x" + b"0" * 62, b" " + b"0" * 63],
)
def test_bad_prev_hex_is_refused(prev) -> None:
    with pytest.raises(EncodingError):
        parse_entry(_edit(b'"prev":"' + b"0" * 64 + b'"', b'"prev":"' + prev + b'"'))


@pytest.mark.parametrize(
    "time",
    [
        "2024-01-02T03:04:05Z",
        "2024-01-02T03:04:05.0Z",
        "2024-01-02T03:04:05.0060Z",
        "2024-01-02T03:04:05.006000Z",
        "2024-01-02T03:04:05.006+00:00",
        "2024-01-02T03:04:05.006z",
        "2024-01-02t03:04:05.006Z",
        "2024-01-02 03:04:05.006Z",
        "2024-01-02T03:04:05.006",
        "2024-1-02T03:04:05.006Z",
        "2024-02-30T03:04:05.006Z",
        "2024-01-02T24:04:05.006Z",
        "2024-01-02T03:60:05.006Z",
        "2024-01-02T03:04:60.006Z",
        "2024-13-02T03:04:05.006Z",
        "20240102T030405.006Z",
        "",
    ],
)
def test_bad_time_formats_are_refused(time) -> None:
    with pytest.raises(EncodingError):
        parse_entry(_edit(TIME.encode(), time.encode()))
    with pytest.raises(EncodingError):
        encode_entry(0, GENESIS_PREV, time, ENVELOPE)


@pytest.mark.parametrize(
    "time",
    ["\uff12\uff10\uff12\uff14-01-02T03:04:05.006Z", "2024-01-02T03:04:05.\u0660\u0660\u0666Z"],
    ids=["fullwidth-year", "arabic-indic-millis"],
)
def test_non_ascii_digits_in_time_are_refused(time) -> None:
    # Python's \d and int() accept any Unicode digit; the contract is ASCII RFC 3339.
    with pytest.raises(EncodingError):
        parse_entry(_edit(TIME.encode(), time.encode()))
    with pytest.raises(EncodingError):
        encode_entry(0, GENESIS_PREV, time, ENVELOPE)


@pytest.mark.parametrize("version", [b"0", b"2", b"-1", b'"1"', b"true", b"null"])
def test_version_other_than_1_is_refused(version) -> None:
    with pytest.raises(EncodingError):
        parse_entry(_edit(b'"v":1', b'"v":' + version))


@pytest.mark.parametrize(
    "data",
    [
        _edit(b'"index":0', b'"index":-1'),
        _edit(b'"index":0', b'"index":-0'),
        _edit(b'"index":0', b'"index":00'),
        _edit(b'"index":0', b'"index":"0"'),
        _edit(b'"index":0', b'"index":true'),
        _edit(b'"payload":"e30="', b'"payload":"\\u0065\\u0033\\u0030="'),  # escapes re-encode differently
        _edit(b'"keyid":"k+00000000"', b'"keyid":"k\\/00000000"'),
        _edit(b'"signatures":[{"keyid":"k+00000000","sig":"c2ln"}]', b'"signatures":null'),
        EXPECTED[:-1],
        EXPECTED + b"{}",
        b"",
        b"[]",
        b"\xff" + EXPECTED,
    ],
)
def test_malformed_entries_are_refused(data) -> None:
    with pytest.raises(EncodingError):
        parse_entry(data)


def test_entry_of_65535_bytes_is_accepted_and_one_more_is_refused() -> None:
    empty = encode_entry(0, GENESIS_PREV, TIME, Envelope(payload="", payload_type="t", signatures=[]))
    fill = 65_535 - len(empty)
    biggest = encode_entry(
        0, GENESIS_PREV, TIME, Envelope(payload="A" * fill, payload_type="t", signatures=[])
    )
    assert len(biggest) == 65_535
    assert parse_entry(biggest).envelope.payload == "A" * fill
    too_big = biggest.replace(b'"payload":"', b'"payload":"A', 1)
    assert len(too_big) == 65_536
    with pytest.raises(TooLargeError):
        parse_entry(too_big)
    with pytest.raises(TooLargeError):
        encode_entry(
            0, GENESIS_PREV, TIME, Envelope(payload="A" * (fill + 1), payload_type="t", signatures=[])
        )


# ---- hash chain


def test_chain_of_well_linked_entries_verifies() -> None:
    assert verify_chain(CHAIN) == leaf_hash(CHAIN[-1])
    chain = ChainVerifier()
    for index, data in enumerate(CHAIN):
        entry, digest = chain.check(data)
        assert entry.index == index
        assert digest == hashlib.sha256(b"\x00" + data).digest()
    assert chain.next_index == len(CHAIN)


def test_chain_can_resume_in_the_middle() -> None:
    assert verify_chain(CHAIN[3:], start=3, prev=leaf_hash(CHAIN[2])) == leaf_hash(CHAIN[-1])
    assert verify_chain([], start=3, prev=leaf_hash(CHAIN[2])) == leaf_hash(CHAIN[2])
    with pytest.raises(ChainError):
        verify_chain(CHAIN[3:])  # from the genesis, entry 3 is a gap


def test_gap_in_the_chain_is_caught() -> None:
    with pytest.raises(ChainError):
        verify_chain([*CHAIN[:2], *CHAIN[3:]])
    with pytest.raises(ChainError):
        verify_chain(CHAIN[1:])


def test_reordered_pair_is_caught() -> None:
    for i in range(len(CHAIN) - 1):
        swapped = list(CHAIN)
        swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
        with pytest.raises(ChainError):
            verify_chain(swapped)


def test_duplicated_entry_is_caught() -> None:
    with pytest.raises(ChainError):
        verify_chain([*CHAIN[:3], CHAIN[2], *CHAIN[3:]])


def test_wrong_prev_is_caught() -> None:
    entry = parse_entry(CHAIN[3])
    for prev in (GENESIS_PREV, leaf_hash(CHAIN[1]), leaf_hash(CHAIN[3]), hashlib.sha256(CHAIN[2]).digest()):
        relinked = encode_entry(3, prev, entry.time, entry.envelope)
        with pytest.raises(ChainError) as caught:
            verify_chain([*CHAIN[:3], relinked, *CHAIN[4:]])
        assert caught.value.expected == leaf_hash(CHAIN[2]).hex()
        assert caught.value.calculated == prev.hex()


def test_rewritten_entry_with_its_own_index_is_caught_by_the_next_link() -> None:
    # Entry 2 is replaced by a different, well-formed entry 2 that links correctly to entry 1.
    entry = parse_entry(CHAIN[2])
    forged = encode_entry(2, bytes.fromhex(entry.prev), entry.time, ENVELOPE)
    verify_chain([*CHAIN[:2], forged])
    with pytest.raises(ChainError):
        verify_chain([*CHAIN[:2], forged, *CHAIN[3:]])


def test_tampered_byte_in_an_earlier_entry_is_caught() -> None:
    target = CHAIN[1]
    for position in range(len(target)):
        for mask in (0x01, 0x20):
            bad = bytearray(target)
            bad[position] ^= mask
            # The flip breaks the entry's canonical form, or else the chain (its hash, index or prev).
            with pytest.raises((EncodingError, ChainError)):
                verify_chain([CHAIN[0], bytes(bad), *CHAIN[2:]])


def test_tampered_signature_byte_still_parses_but_breaks_the_next_link() -> None:
    # A change that keeps entry 1 canonical passes its own parse: only entry 2's prev can catch it.
    sig = parse_entry(CHAIN[1]).envelope.signatures[0].sig
    swapped = ("B" if sig[0] != "B" else "C") + sig[1:]
    bad = CHAIN[1].replace(sig.encode(), swapped.encode())
    parse_entry(bad)
    with pytest.raises(ChainError) as caught:
        verify_chain([CHAIN[0], bad, *CHAIN[2:]])
    assert caught.value.expected == leaf_hash(bad).hex()
    assert caught.value.calculated == leaf_hash(CHAIN[1]).hex()


def test_wrong_index_is_caught_with_both_values() -> None:
    chain = ChainVerifier()
    chain.check(CHAIN[0])
    with pytest.raises(ChainError) as caught:
        chain.check(CHAIN[2])
    assert (caught.value.expected, caught.value.calculated) == ("1", "2")


def _timed_chain(times: list[datetime]) -> list[bytes]:
    """Well-linked entries stamped with `times`, in order."""
    entries, prev = [], GENESIS_PREV
    for index, moment in enumerate(times):
        envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, b'{"t":%d}' % index, [SIGNER])
        data = encode_entry(index, prev, moment, envelope)
        entries.append(data)
        prev = leaf_hash(data)
    return entries


def test_a_time_going_back_is_a_chain_break_naming_the_entry() -> None:
    # Linked and hashed correctly, but entry 2 is stamped a millisecond before entry 1.
    chain = _timed_chain([START, START + timedelta(seconds=1), START + timedelta(milliseconds=999)])
    with pytest.raises(ChainError, match="entry 2 is stamped earlier than entry 1") as caught:
        verify_chain(chain)
    assert caught.value.calculated == "2024-05-06T07:08:10.122Z"  # START + 0.999 s, in milliseconds


def test_equal_times_are_in_order() -> None:
    # One batch stamps all its entries with one time, and a clock a little behind repeats it.
    chain = _timed_chain([START, START, START])
    assert verify_chain(chain) == leaf_hash(chain[-1])


def test_attack_an_entry_with_a_deeply_nested_unknown_envelope_field_is_an_encoding_error() -> None:
    """Unknown envelope fields are skipped (DSSE, issue #12); skipping one nested past the
    interpreter's recursion limit must still be a refusal of the entry, never a RecursionError."""
    entry = encode_entry(0, GENESIS_PREV, TIME, ENVELOPE)
    nested = b'"x":' + b"[" * 5000 + b"]" * 5000 + b","
    hostile = entry.replace(b'{"envelope":{', b'{"envelope":{' + nested, 1)
    with pytest.raises(EncodingError, match="entry is not a valid entry object"):
        parse_entry(hostile)
