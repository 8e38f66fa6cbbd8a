"""Log entries, the leaves of the tree (docs/formats.md#entries).

An entry is the UTF-8 bytes of one JSON object with sorted keys, no
insignificant whitespace and no floating-point numbers, at most 65,535 bytes:
`{"envelope":{...},"index":N,"prev":"<hex leaf hash of N-1>","time":"...","v":1}`.

Canonical means: the bytes are exactly what `encode_entry` produces for the
values they decode to. `parse_entry` enforces that, which rejects unsorted or
duplicate keys, whitespace, floats and unknown fields in one rule. Verifiers
always hash the bytes they were given and never re-encode them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import msgspec

from ledger.core.dsse import Envelope
from ledger.core.encoding import JSON_ERRORS, format_time, hash_from_hex, parse_time
from ledger.core.hashing import HASH_SIZE, leaf_hash
from ledger.core.sparse_merkle import MAX_CHAINED_SUBJECTS, is_chained_digest
from ledger.core.tiles import MAX_ENTRY_SIZE
from ledger.errors import ChainError, EncodingError, TooLargeError

ENTRY_VERSION = 1
GENESIS_PREV = bytes(HASH_SIZE)


class ChainLink(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A back-link to an earlier entry: its index and hex leaf hash."""

    index: int
    leaf_hash: str


class ReleaseLink(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """The per-release hash chain: this is event `seq` (from 0) of the release; `prev` its predecessor."""

    product: str
    version: str
    seq: int
    prev: ChainLink | None = None


class KeyLink(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """The chain of key registrations and revocations: this is key event `seq`; `prev` its predecessor."""

    seq: int
    prev: ChainLink | None = None


class ArtifactLink(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """The chain of one artifact (docs/completeness-index.md): this is entry `seq` naming `digest`.

    `digest` is a `sha256:<hex>` subject digest as stored; `prev` the chain's entry before.
    """

    digest: str
    seq: int
    prev: ChainLink | None = None


class Entry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """The decoded fields of one log entry; `prev` is the hex leaf hash of the entry before.

    `release`, `keys` and `artifacts` are the sequencer's back-links (absent when the entry
    is neither release-scoped, nor a key event, nor names a sha256 subject, or when it was
    recorded before the ledger chained artifacts); they sort into place among the keys.
    `artifacts` holds one link per distinct sha256 subject digest, sorted by digest.
    """

    envelope: Envelope
    index: int
    prev: str
    time: str
    v: int
    keys: KeyLink | None = None
    release: ReleaseLink | None = None
    artifacts: list[ArtifactLink] | None = None


_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder(Entry)


def encode_entry(  # noqa: PLR0913 - the entry's fields, one argument each
    index: int,
    prev: bytes,
    time: datetime | str,
    envelope: Envelope,
    *,
    release: ReleaseLink | None = None,
    keys: KeyLink | None = None,
    artifacts: Sequence[ArtifactLink] | None = None,
) -> bytes:
    """Build the canonical bytes of entry `index` whose predecessor's leaf hash is `prev`."""
    if index < 0:
        raise EncodingError(f"entry index {index} is negative")
    if len(prev) != HASH_SIZE:
        raise EncodingError(f"prev must be a {HASH_SIZE}-byte leaf hash")
    stamp = time if isinstance(time, str) else format_time(time)
    parse_time(stamp)
    entry = Entry(
        envelope=envelope,
        index=index,
        prev=prev.hex(),
        time=stamp,
        v=ENTRY_VERSION,
        keys=keys,
        release=release,
        artifacts=None if artifacts is None else list(artifacts),
    )
    data = _encoder.encode(entry)
    if len(data) > MAX_ENTRY_SIZE:
        raise TooLargeError(f"entry is {len(data)} bytes, over the {MAX_ENTRY_SIZE}-byte limit")
    return data


def parse_entry(data: bytes) -> Entry:
    """Decode entry bytes, refusing anything that is not the canonical encoding of a v1 entry."""
    if len(data) > MAX_ENTRY_SIZE:
        raise TooLargeError(f"entry is {len(data)} bytes, over the {MAX_ENTRY_SIZE}-byte limit")
    try:
        entry = _decoder.decode(data)
    except JSON_ERRORS as exc:  # RecursionError too: an unknown envelope field is skipped recursively
        raise EncodingError(f"entry is not a valid entry object: {exc}") from exc
    if entry.v != ENTRY_VERSION:
        raise EncodingError(f"entry version {entry.v} is not {ENTRY_VERSION}")
    if entry.index < 0:
        raise EncodingError(f"entry index {entry.index} is negative")
    hash_from_hex(entry.prev, "entry prev")
    parse_time(entry.time)
    for name, link in (("release", entry.release), ("keys", entry.keys)):
        if link is not None:
            _check_link(name, entry.index, link.seq, link.prev)
    if entry.artifacts is not None:
        _check_artifact_links(entry.index, entry.artifacts)
    if _encoder.encode(entry) != data:
        raise EncodingError(
            f"entry {entry.index} is not canonical JSON (sorted keys, no whitespace, no floats)"
        )
    return entry


def _check_link(name: str, index: int, seq: int, prev: ChainLink | None) -> None:
    """A chain's first event has no `prev`; every later one links to an earlier index."""
    if seq < 0 or (seq == 0) != (prev is None):
        raise EncodingError(f"entry {index}: {name} link seq {seq} and prev do not agree")
    if prev is not None:
        hash_from_hex(prev.leaf_hash, f"{name} link leaf_hash")
        if not 0 <= prev.index < index:
            raise EncodingError(
                f"entry {index}: {name} link points to entry {prev.index}, not an earlier one"
            )


def _check_artifact_links(index: int, links: Sequence[ArtifactLink]) -> None:
    """1 to MAX_CHAINED_SUBJECTS links, strictly sorted by sha256 digest, each well formed."""
    if not 0 < len(links) <= MAX_CHAINED_SUBJECTS:
        raise EncodingError(
            f"entry {index}: artifact links name 1 to {MAX_CHAINED_SUBJECTS} digests, not {len(links)}"
        )
    previous = ""
    for link in links:
        if not is_chained_digest(link.digest):
            raise EncodingError(f"entry {index}: artifact link digest {link.digest!r} is not a sha256 digest")
        if link.digest <= previous:
            raise EncodingError(
                f"entry {index}: artifact links are not sorted by digest without repeats ({link.digest})"
            )
        previous = link.digest
        _check_link(f"artifact {link.digest}", index, link.seq, link.prev)


class ChainVerifier:
    """Checks a stream of entries, in log order, for gapless indices, unbroken `prev` links and times.

    Entry times never go backwards in index order (the sequencer stamps every batch with
    one clock and never earlier than the entry before), so a time earlier than its
    predecessor's is a chain break. Holds only the next expected index, the last leaf hash
    and the last time, so memory is flat however long the log.
    """

    __slots__ = ("last_time", "next_index", "prev_leaf_hash")

    def __init__(
        self, next_index: int = 0, prev_leaf_hash: bytes = GENESIS_PREV, last_time: str = ""
    ) -> None:
        """Start at `next_index`, whose `prev` must be `prev_leaf_hash` and time at least `last_time`."""
        self.next_index = next_index
        self.prev_leaf_hash = prev_leaf_hash
        self.last_time = last_time

    def check(self, data: bytes) -> tuple[Entry, bytes]:
        """Parse the next entry, check its index and link; return it with its leaf hash."""
        entry = parse_entry(data)
        if entry.index != self.next_index:
            raise ChainError(
                "entry names the wrong index",
                expected=str(self.next_index),
                calculated=str(entry.index),
                labels=("next index", "entry names"),
            )
        if entry.prev != self.prev_leaf_hash.hex():
            raise ChainError(
                f"entry {entry.index} does not link to the leaf hash of entry {entry.index - 1}",
                expected=self.prev_leaf_hash.hex(),
                calculated=entry.prev,
                labels=("previous leaf hash", "entry's prev"),
            )
        # The fixed-width format (format_time) orders as text exactly as in time.
        if entry.time < self.last_time:
            raise ChainError(
                f"entry {entry.index} is stamped earlier than entry {entry.index - 1}: time went back",
                expected=self.last_time,
                calculated=entry.time,
                labels=("entry before stamped", "this entry stamped"),
            )
        digest = leaf_hash(data)
        self.next_index += 1
        self.prev_leaf_hash = digest
        self.last_time = entry.time
        return entry, digest


def verify_chain(entries: Iterable[bytes], start: int = 0, prev: bytes = GENESIS_PREV) -> bytes:
    """Check a run of entries starting at `start`; return the last leaf hash (or `prev` if empty)."""
    chain = ChainVerifier(start, prev)
    for data in entries:
        chain.check(data)
    return chain.prev_leaf_hash
