"""Release timelines read from log entries: event records, per-kind summaries, chain completeness. Pure.

An `EventRecord` is one entry as the timeline, artifact and search views show
it: place, time, kind, signer (owner and roles from the key registry), subjects
and a `summary` of the fields an auditor reads for that kind. `chain_is_complete`
walks a release's back-links from its head to seq 0 (ledger.rules.chains builds them),
so a timeline that left out one of its release's entries says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE, envelope_payload
from ledger.core.entry import ReleaseLink, parse_entry
from ledger.core.hashing import leaf_hash
from ledger.records import predicates as p
from ledger.records.statement import decode_statement, subject_digests
from ledger.rules.events import ReleaseEvent, Signer
from ledger.rules.registry import KeyRegistry
from ledger.rules.summaries import admin_summary, summary_of

UNKNOWN_OWNER = "(key not in the registry)"


class EventRecord(msgspec.Struct, frozen=True, gc=False):
    """One entry as a timeline, artifact or search result shows it (evidence or admin record).

    Not tracked by the garbage collector (it holds no reference cycles): a
    timeline makes hundreds per request.
    """

    index: int
    leaf_hash: bytes
    time: str
    kind: str  # short name (change, build, …, `evidence`) or the admin record's kind
    predicate_type: str  # the statement's predicate type, or the admin payload type
    release: tuple[str, str] | None  # (product, version) of the chain the entry is on
    release_seq: int | None
    signer: Signer
    subjects: tuple[str, ...]
    summary: dict[str, Any]


class Decoded(msgspec.Struct, frozen=True, gc=False):
    """An entry's record beside its parsed release back-link (what chain checks read).

    Only the link is kept of the parsed entry: a timeline holds hundreds of these
    while it is built, and the fewer objects the garbage collector tracks, the
    rarer and shorter its full collections (which set the tail latency).
    """

    link: ReleaseLink | None
    record: EventRecord


class SignerNames:
    """Names signers from a key registry, once per keyid (a timeline has a handful of signers)."""

    __slots__ = ("_cache", "_registry")

    def __init__(self, registry: KeyRegistry) -> None:
        """Use `registry` as it is now; build a new one when the registry is replaced."""
        self._registry = registry
        self._cache: dict[str, Signer] = {}

    def __call__(self, keyid: str) -> Signer:
        """The key's registered owner and roles; an unknown keyid gets a placeholder owner and no roles."""
        signer = self._cache.get(keyid)
        if signer is None:
            key = self._registry.keys.get(keyid)
            owner, roles = (UNKNOWN_OWNER, ()) if key is None else (key.owner, tuple(sorted(key.roles)))
            signer = self._cache[keyid] = Signer(keyid, owner, roles)
        return signer


def decode_record(data: bytes, signer_keyid: str, names: SignerNames) -> Decoded:
    """Parse an entry once into its record; `signer_keyid` is the signer recorded at admission.

    Precondition: the entry was accepted by the ledger (its statement or admin
    record decodes). The registry behind `names` should know the signer (else a placeholder).
    """
    entry = parse_entry(data)
    envelope = entry.envelope
    signer = names(signer_keyid)
    digest = leaf_hash(data)
    payload = envelope_payload(envelope)
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE:
        kind, summary = admin_summary(payload) if envelope.payload_type == ADMIN_PAYLOAD_TYPE else ("?", {})
        record = EventRecord(
            entry.index, digest, entry.time, kind, envelope.payload_type, None, None, signer, (), summary
        )
        return Decoded(None, record)
    link = entry.release
    release, seq = ((link.product, link.version), link.seq) if link is not None else (None, None)
    statement = decode_statement(payload)
    predicate_type = statement.predicate_type
    predicate = _predicate(predicate_type, statement.predicate)
    kind = p.kind_name(predicate_type)
    subjects = subject_digests(statement)
    summary = summary_of(predicate, statement.predicate, signer.owner)
    record = EventRecord(
        entry.index, digest, entry.time, kind, predicate_type, release, seq, signer, subjects, summary
    )
    return Decoded(link, record)


def summarize(event: ReleaseEvent) -> dict[str, Any]:
    """The fields an auditor reads for a release event, as the timeline's `summary` shows them."""
    return summary_of(event.predicate, event.raw_predicate, event.signer.owner)


def _predicate(predicate_type: str, raw: dict[str, Any]) -> p.Predicate | None:
    """The typed predicate, for its summary; None for generic evidence.

    Admission validated it in full (`predicates.decode_predicate`); reading it back only
    needs its shape. One that no longer fits its type (accepted under an earlier
    schema) is shown as generic evidence rather than failing the whole timeline.
    """
    cls = p.PREDICATE_TYPES.get(predicate_type)
    if cls is None:
        return None
    try:
        value: p.Predicate = msgspec.convert(raw, cls)
    except msgspec.ValidationError:
        return None
    return value


def chain_is_complete(chain: Sequence[Decoded], product: str, version: str) -> bool:
    """Whether walking back-links from the head (highest seq) reaches seq 0 through every entry given.

    Each step must land on the entry the link names, by index and by the leaf
    hash computed from its bytes, one seq lower; the walk must visit all of
    `chain` and end at an entry with seq 0 and no link. Precondition: `chain`
    holds the release-chain entries of (product, version) as stored.
    """
    if not chain:
        return False
    by_index: dict[int, Decoded] = {}
    for item in chain:
        link = item.link
        if link is None or (link.product, link.version) != (product, version):
            return False
        by_index[item.record.index] = item
    current = max(chain, key=lambda d: d.record.release_seq or 0)
    visited = 1
    while (link := current.link) is not None and link.prev is not None:
        previous = by_index.get(link.prev.index)
        if previous is None or previous.record.leaf_hash.hex() != link.prev.leaf_hash:
            return False
        if previous.record.release_seq != link.seq - 1:
            return False
        current, visited = previous, visited + 1
    return current.record.release_seq == 0 and visited == len(by_index) == len(chain)
