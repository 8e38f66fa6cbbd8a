"""Release events: log entries read as evidence about a release. Pure.

A `ReleaseEvent` is what the timeline, the compliance evaluation, the dossier
and the printable report all read: the entry's place and time, its kind, the
decoded statement and predicate, and who signed it (the key's registered owner
and roles at that index).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, envelope_payload
from ledger.core.entry import Entry, parse_entry
from ledger.core.hashing import leaf_hash
from ledger.errors import EncodingError
from ledger.records.predicates import Predicate, decode_predicate, kind_name
from ledger.records.statement import Statement, decode_statement, subject_digests
from ledger.rules.registry import KeyRegistry


@dataclass(frozen=True, slots=True)
class Signer:
    """Who signed: the keyid, and the key's registered owner (printed name) and roles."""

    keyid: str
    owner: str
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReleaseEvent:
    """One piece of evidence as an auditor reads it."""

    index: int
    leaf_hash: bytes
    time: str
    kind: str  # short name: change, build, test-run, … or `evidence` for generic statements
    predicate_type: str
    statement: Statement
    predicate: Predicate | None  # None for generic evidence
    subjects: tuple[str, ...]
    signer: Signer
    release_seq: int | None  # place in the release's chain; None for generic evidence linked by subject

    @property
    def raw_predicate(self) -> dict[str, Any]:
        """The predicate exactly as signed."""
        return self.statement.predicate


def event_from_entry(
    data: bytes, registry: KeyRegistry, signer_keyid: str | None = None
) -> ReleaseEvent | None:
    """Read an entry as evidence (None for admin records); `registry` must know its signer.

    `signer_keyid` is the signature admission accepted (the stored column, or what a
    verifier's own admission returned); without it the first registered keyid is taken.
    Precondition: the entry was accepted by the ledger (or checked by a replay), so its
    statement decodes and it carries a signature by a registered key.
    """
    entry: Entry = parse_entry(data)
    envelope = entry.envelope
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE:
        return None
    statement = decode_statement(envelope_payload(envelope))
    keyid = signer_keyid or next((s.keyid for s in envelope.signatures if s.keyid in registry.keys), None)
    key = registry.keys.get(keyid or "")
    if keyid is None or key is None:
        raise EncodingError(f"entry {entry.index} is signed by no key the registry knows")
    return ReleaseEvent(
        index=entry.index,
        leaf_hash=leaf_hash(data),
        time=entry.time,
        kind=kind_name(statement.predicate_type),
        predicate_type=statement.predicate_type,
        statement=statement,
        predicate=decode_predicate(statement.predicate_type, statement.predicate),
        subjects=subject_digests(statement),
        signer=Signer(keyid, key.owner, tuple(sorted(key.roles))),
        release_seq=entry.release.seq if entry.release is not None else None,
    )


def events_from_entries(entries: Iterable[tuple[bytes, str]], registry: KeyRegistry) -> list[ReleaseEvent]:
    """Every evidence entry among (entry bytes, admitted signer keyid) pairs, in index order."""
    events = [e for data, keyid in entries if (e := event_from_entry(data, registry, keyid)) is not None]
    return sorted(events, key=lambda e: e.index)
