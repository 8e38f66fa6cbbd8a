"""Events: a log entry read once, the way every reader of the log reads it. Pure.

An `Event` is the one model of an entry as evidence or as an admin record: its
place and time, its kind, who signed it (the key's registered owner and roles),
the decoded statement and typed predicate, the release chain it is on, and the
`summary` an auditor reads. The timeline, artifact and search routes project it
onto their wire views (`ledger.service.wire.EventView`); compliance, the dossier
and the printable release record read the same objects. `decode_event` is the
only place an entry's payload is decoded for reading.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE, envelope_payload
from ledger.core.entry import Entry, ReleaseLink, parse_entry
from ledger.core.hashing import leaf_hash
from ledger.errors import EncodingError
from ledger.records import predicates as p
from ledger.records.statement import Statement, decode_statement, subject_digests
from ledger.rules.admission import Admitted
from ledger.rules.registry import KeyRegistry
from ledger.rules.summaries import admin_summary, summary_of

UNKNOWN_OWNER = "(key not in the registry)"


@dataclass(frozen=True, slots=True)
class Signer:
    """Who signed: the keyid, and the key's registered owner (printed name) and roles.

    `ledger` is whether it is the ledger key (the key entry 0 registers): only a VSA it
    signed is one of the ledger's gate decisions; anyone else's is generic evidence.
    """

    keyid: str
    owner: str
    roles: tuple[str, ...]
    ledger: bool = False


class Event(msgspec.Struct, frozen=True, gc=False):
    """One entry as an auditor reads it: evidence (with its statement) or an admin record (without).

    Not tracked by the garbage collector (it holds no reference cycles): a
    timeline makes hundreds per request.
    """

    index: int
    leaf_hash: bytes
    time: str
    kind: str  # short name (change, build, …, `evidence` for generic statements) or the admin record's kind
    predicate_type: str  # the statement's predicate type, or the admin payload type
    signer: Signer
    subjects: tuple[str, ...]
    statement: Statement | None  # None for admin records
    predicate: p.Predicate | None  # the typed predicate; None for generic evidence and admin records
    release_seq: int | None  # place in the release's chain; None off every release chain
    release: tuple[str, str] | None = None  # (product, version) of the chain the entry is on
    summary: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def raw_predicate(self) -> dict[str, Any]:
        """The predicate exactly as signed (empty for an admin record)."""
        return {} if self.statement is None else self.statement.predicate


class Decoded(msgspec.Struct, frozen=True, gc=False):
    """An entry's event beside its parsed release back-link (what chain checks read).

    Only the link is kept of the parsed entry: a timeline holds hundreds of these
    while it is built, and the fewer objects the garbage collector tracks, the
    rarer and shorter its full collections (which set the tail latency).
    """

    link: ReleaseLink | None
    event: Event


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
            ledger = key is not None and key.registered_at == 0
            signer = self._cache[keyid] = Signer(keyid, owner, roles, ledger)
        return signer


def decode_event(data: bytes, signer_keyid: str, names: SignerNames) -> Decoded:
    """Parse an entry once into its event; `signer_keyid` is the signer admission recorded.

    Precondition: the entry was accepted by the ledger or by a verifier's replay (its
    statement or admin record decodes and passed admission's checks). The registry
    behind `names` should know the signer (else a placeholder owner).
    """
    return _decode(parse_entry(data), data, names(signer_keyid))


def _decode(entry: Entry, data: bytes, signer: Signer) -> Decoded:
    envelope = entry.envelope
    digest = leaf_hash(data)
    payload = envelope_payload(envelope)
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE:
        kind, summary = admin_summary(payload) if envelope.payload_type == ADMIN_PAYLOAD_TYPE else ("?", {})
        admin = Event(
            entry.index,
            digest,
            entry.time,
            kind,
            envelope.payload_type,
            signer,
            (),
            None,
            None,
            None,
            summary=summary,
        )
        return Decoded(None, admin)
    statement = decode_statement(payload)
    predicate = _predicate(statement.predicate_type, statement.predicate)
    return Decoded(entry.release, _evidence(entry, digest, signer, statement, predicate))


def _evidence(
    entry: Entry, digest: bytes, signer: Signer, statement: Statement, predicate: p.Predicate | None
) -> Event:
    """The event of an evidence entry whose statement and typed predicate are decoded already."""
    link = entry.release
    release, seq = ((link.product, link.version), link.seq) if link is not None else (None, None)
    predicate_type = statement.predicate_type
    kind = p.kind_name(predicate_type)
    if isinstance(predicate, p.GateDecision) and not signer.ledger:
        predicate = None  # a VSA in our shape, but not signed by the ledger key: not our gate's decision
    if predicate_type == p.GATE_DECISION and predicate is None:
        kind = "evidence"  # someone else's VSA: generic evidence about its subjects
    return Event(
        entry.index,
        digest,
        entry.time,
        kind,
        predicate_type,
        signer,
        subject_digests(statement),
        statement,
        predicate,
        seq,
        release,
        summary_of(predicate, statement.predicate, signer.owner),
    )


def admitted_event(entry: Entry, digest: bytes, admitted: Admitted, signer: Signer) -> Event | None:
    """The event of an entry a verifier just admitted, from what admission decoded; None for admin records.

    Precondition: `admitted` is what `ledger.rules.admission.admit` returned for `entry`'s
    envelope with `keep_decoded=True`, `digest` is its leaf hash, and `signer` names
    `admitted.signer_keyid`. A statement admitted without it is a programming error.
    """
    if admitted.admin is not None:
        return None
    if admitted.statement is None:
        raise ValueError(f"entry {entry.index} was admitted without keep_decoded=True: its statement is gone")
    return _evidence(entry, digest, signer, admitted.statement, admitted.predicate)


def _predicate(predicate_type: str, raw: dict[str, Any]) -> p.Predicate | None:
    """The typed predicate; None for generic evidence.

    Admission validated it in full (`predicates.decode_predicate`); reading it back only
    needs its shape. One that no longer fits its type (accepted under an earlier
    schema) reads as generic evidence rather than failing the whole timeline, and
    so counts for nothing in a compliance evaluation.
    """
    cls = p.PREDICATE_TYPES.get(predicate_type)
    if cls is None:
        return None
    if cls is p.GateDecision:
        try:
            return p.decode_gate(raw)  # either shape (ours before issue #12 too); another's VSA is None
        except EncodingError:
            return None
    try:
        value: p.Predicate = msgspec.convert(raw, cls)
    except msgspec.ValidationError:
        return None
    return value


def event_from_entry(
    data: bytes, registry: KeyRegistry, signer_keyid: str | None = None, *, names: SignerNames | None = None
) -> Event | None:
    """Read an entry as evidence (None for admin records); `registry` must know its signer.

    `signer_keyid` is the signature admission accepted (the stored column, or what a
    verifier's own admission returned); without it the first registered keyid is taken.
    `names`, when given, names signers from `registry` (shared by a run of entries).
    Precondition: as `decode_event`'s. EncodingError if no registered key signed it.
    """
    entry = parse_entry(data)
    if entry.envelope.payload_type != INTOTO_PAYLOAD_TYPE:
        return None
    keyid = signer_keyid or next(
        (s.keyid for s in entry.envelope.signatures if s.keyid in registry.keys), None
    )
    if keyid is None or keyid not in registry.keys:
        raise EncodingError(f"entry {entry.index} is signed by no key the registry knows")
    return _decode(entry, data, (names or SignerNames(registry))(keyid)).event


def events_from_entries(entries: Iterable[tuple[bytes, str]], registry: KeyRegistry) -> list[Event]:
    """Every evidence entry among (entry bytes, admitted signer keyid) pairs, in index order."""
    names = SignerNames(registry)
    read = (event_from_entry(data, registry, keyid, names=names) for data, keyid in entries)
    events = [event for event in read if event is not None]
    return sorted(events, key=lambda e: e.index)
