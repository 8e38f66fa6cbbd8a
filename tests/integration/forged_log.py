"""A tiny log built in memory by someone holding the ledger key: histories the sequencer would refuse.

The service never appends an envelope by a revoked or unregistered key, so a
dossier with one can only come from a forger who holds the ledger key (or from
a sequencer bug). `ForgedLog` writes such histories with the product's own
pieces (entry encoding, release and key back-links, RFC 9162 hashing, signed
checkpoints with the key-chain extension) and exports them as dossiers whose
every inclusion proof, chain link and compliance result is consistent, so the
only thing wrong with them is the history itself; or, when a test forges one
back-link (`append(..., back_link=...)`), that one link. Pure; no database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from ledger.core.checkpoint import Checkpoint, sign_checkpoint
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, Envelope, envelope_payload, sign_envelope
from ledger.core.encoding import b64encode, format_time
from ledger.core.entry import GENESIS_PREV, ChainLink, encode_entry, parse_entry
from ledger.core.hashing import largest_power_of_two_below, leaf_hash, node_hash
from ledger.core.keys import SignerKey, VerifierKey, parse_verifier_key
from ledger.records.admin import KeyRegistered, PolicyPublished, decode_admin_record, encode_admin_record
from ledger.records.statement import decode_statement, release_of, seal_of, subject_digests
from ledger.rules.admission import Admitted
from ledger.rules.chains import Chains, key_chain_extension
from ledger.rules.events import event_from_entry
from ledger.rules.registry import KeyRegistry
from ledger.verify.dossier import DOSSIER_FORMAT, Dossier, ProvenEntry, Recompute

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def tree_hash(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH over leaf hashes (needs at least one)."""
    if len(leaves) == 1:
        return leaves[0]
    k = largest_power_of_two_below(len(leaves))
    return node_hash(tree_hash(leaves[:k]), tree_hash(leaves[k:]))


def audit_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]), bottom-up."""
    if len(leaves) == 1:
        return []
    k = largest_power_of_two_below(len(leaves))
    if m < k:
        return [*audit_path(m, leaves[:k]), tree_hash(leaves[k:])]
    return [*audit_path(m - k, leaves[k:]), tree_hash(leaves[:k])]


def _admitted(envelope: Envelope, signer: VerifierKey) -> Admitted:
    """What the chains need to know about an envelope, without asking whether its signer may sign."""
    payload = envelope_payload(envelope)
    if envelope.payload_type == ADMIN_PAYLOAD_TYPE:
        record = decode_admin_record(payload)
        kind = str(type(record).__struct_config__.tag)
        return Admitted(envelope, kind, None, None, (), record, (signer,))
    statement = decode_statement(payload)
    product, version = release_of(statement)
    subjects = subject_digests(statement)
    return Admitted(
        envelope, statement.predicate_type, product, version, subjects, None, (signer,), seal_of(statement)
    )


class ForgedLog:
    """Entries appended as told, whoever signed them; entry 0 registers the ledger key."""

    def __init__(self, ledger: SignerKey) -> None:
        self.ledger = ledger
        self.entries: list[bytes] = []
        self.chains = Chains()
        self.names = KeyRegistry()  # every signer, to name them in the compliance result
        self.last_key_event = 0
        genesis = KeyRegistered(ledger.verifier().format(), "the ledger", ["admin"], [])
        self.admin(sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(genesis), [ledger]))

    def admin(self, envelope: Envelope) -> int:
        """Append an admin record signed by the ledger key."""
        return self.append(envelope, self.ledger.verifier())

    def append(self, envelope: Envelope, signer: VerifierKey, *, back_link: ChainLink | None = None) -> int:
        """Append `envelope` (signed by `signer`) at the next index; return the index.

        `back_link`, when given, replaces the `prev` of the entry's release link (or, for
        a key event, of its key link); its `seq` stays the one the chain gives.
        """
        item = _admitted(envelope, signer)
        index = len(self.entries)
        prev = leaf_hash(self.entries[-1]) if self.entries else GENESIS_PREV
        release, keys = self.chains.release_link(item), self.chains.key_link(item)
        if back_link is not None and release is not None:
            release = msgspec.structs.replace(release, prev=back_link)
        elif back_link is not None and keys is not None:
            keys = msgspec.structs.replace(keys, prev=back_link)
        stamp = format_time(START + timedelta(seconds=index))
        data = encode_entry(index, prev, stamp, envelope, release=release, keys=keys)
        self.chains.advance(index, leaf_hash(data), release, keys, item.kind)
        if keys is not None:
            self.last_key_event = index
        if isinstance(item.admin, KeyRegistered):
            self._name(index, item.admin)
        elif item.admin is None and signer.keyid not in self.names.keys:
            self._name(index, KeyRegistered(signer.format(), f"holder of {signer.name}", ["developer"]))
        self.entries.append(data)
        return index

    def _name(self, index: int, record: KeyRegistered) -> None:
        if parse_verifier_key(record.key).keyid not in self.names.keys:
            self.names.register(index, record)

    def _proven(self, index: int, leaves: list[bytes]) -> ProvenEntry:
        path = [h.hex() for h in audit_path(index, leaves)]
        return ProvenEntry(index, b64encode(self.entries[index]), path)

    def dossier(self, product: str, version: str, evaluated_at: str, recompute: Recompute) -> Dossier:
        """The release's dossier under a checkpoint of the whole log, signed with the ledger key."""
        leaves = [leaf_hash(data) for data in self.entries]
        checkpoint = Checkpoint(
            self.ledger.name, len(leaves), tree_hash(leaves), key_chain_extension(self.last_key_event)
        )
        parsed = [parse_entry(data) for data in self.entries]
        keys = [i for i, e in enumerate(parsed) if e.keys is not None]
        chain = [
            i
            for i, e in enumerate(parsed)
            if e.release and (e.release.product, e.release.version) == (product, version)
        ]
        policies = [
            (i, r)
            for i, e in enumerate(parsed)
            if e.envelope.payload_type == ADMIN_PAYLOAD_TYPE
            and isinstance(r := decode_admin_record(envelope_payload(e.envelope)), PolicyPublished)
        ]
        policy_index, policy = policies[-1]
        events = [e for i in chain if (e := event_from_entry(self.entries[i], self.names)) is not None]
        compliance = recompute(events, policy, policy_index, evaluated_at, None)
        return Dossier(
            format=DOSSIER_FORMAT,
            product=product,
            version=version,
            checkpoint=sign_checkpoint(checkpoint, self.ledger),
            entries=[self._proven(i, leaves) for i in chain],
            keys=[self._proven(i, leaves) for i in keys],
            policy=self._proven(policy_index, leaves),
            evaluated_at=evaluated_at,
            environment=None,
            compliance=compliance,
        )
