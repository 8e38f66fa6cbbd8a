"""The per-row comparisons of `evledger audit`: what a stored row must say, given the replayed log. Pure.

Each check raises a VerificationError naming the row and both values
(`expected` what the log's own bytes imply, `calculated` what the row
stores), so the audit can report the first disagreement in plain words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

from ledger.admin import KeyRegistered, KeyRevoked
from ledger.chains import KEY_CHAIN_EXTENSION
from ledger.core.checkpoint import Checkpoint, open_checkpoint
from ledger.core.encoding import parse_time
from ledger.core.hashing import leaf_hash
from ledger.core.keys import VerifierKey, parse_verifier_key
from ledger.errors import EncodingError, RootMismatchError, VerificationError
from ledger.replay import ReplayedEntry
from ledger.storage.protocol import CheckpointRow, EntryRow, Head, KeyEventRow


def check_row_hash(row: EntryRow, index: int) -> None:
    """The row is entry `index` and its leaf_hash column is the hash of its data column."""
    if row.index != index:
        raise VerificationError(
            f"entry {index} is missing: the next stored entry is {row.index}",
            expected=str(index),
            calculated=str(row.index),
            labels=("missing index", "next stored index"),
        )
    calculated = leaf_hash(row.data)
    if row.leaf_hash != calculated:
        raise VerificationError(
            f"entry {index}: the leaf hash of its data is not its stored leaf_hash",
            expected=row.leaf_hash.hex(),
            calculated=calculated.hex(),
            labels=("stored leaf_hash", "hash of its data"),
        )


def check_row_columns(row: EntryRow, replayed: ReplayedEntry) -> None:
    """The query columns (release, kind, subjects, signer, time) say what the entry itself says.

    They are what release timelines and dossiers are built from, so a changed
    column could hide evidence from a release even with the entry intact.
    """
    admitted = replayed.admitted
    expected: dict[str, object] = {
        "payload_type": admitted.envelope.payload_type,
        "kind": admitted.kind,
        "product": admitted.product,
        "version": admitted.version,
        "subjects": admitted.subjects,
        "integrated_at": parse_time(replayed.entry.time),
        "release_seq": replayed.entry.release.seq if replayed.entry.release is not None else None,
    }
    stored: dict[str, object] = {
        "payload_type": row.payload_type,
        "kind": row.kind,
        "product": row.product,
        "version": row.version,
        "subjects": row.subjects,
        "integrated_at": row.integrated_at,
        "release_seq": row.release_seq,
    }
    for column, value in expected.items():
        if stored[column] != value:
            raise VerificationError(
                f"entry {row.index}: its {column} column does not match the entry",
                expected=str(value),
                calculated=str(stored[column]),
                labels=("the entry says", "the column holds"),
            )
    signers = [signer.keyid for signer in admitted.signers]
    if row.signer_keyid not in signers:
        raise VerificationError(
            f"entry {row.index}: its signer_keyid column names no key that signed it",
            expected=", ".join(signers),
            calculated=row.signer_keyid,
            labels=("signed by", "signer_keyid column"),
        )


def expected_key_event(replayed: ReplayedEntry) -> KeyEventRow | None:
    """The key_events row an entry implies (as the sequencer writes it), or None for other entries."""
    record = replayed.admitted.admin
    index = replayed.entry.index
    seq = replayed.entry.keys.seq if replayed.entry.keys is not None else None
    if isinstance(record, KeyRegistered):
        keyid = parse_verifier_key(record.key).keyid
        roles, products = tuple(record.roles), tuple(record.products)
        return KeyEventRow(index, "key.registered", keyid, record.key, record.owner, roles, products, seq=seq)
    if isinstance(record, KeyRevoked):
        return KeyEventRow(index, "key.revoked", record.keyid, reason=record.reason, seq=seq)
    return None


def check_key_event(expected: KeyEventRow | None, stored: KeyEventRow | None, index: int) -> None:
    """The key_events row at `index` (None: there is none) is exactly what entry `index` implies."""
    if expected == stored:
        return
    if stored is None:
        raise VerificationError(f"entry {index} is a key record but key_events has no row for it")
    if expected is None:
        raise VerificationError(f"key_events has a row at index {index}, whose entry is no key record")
    for column in fields(KeyEventRow):
        wanted, found = getattr(expected, column.name), getattr(stored, column.name)
        if wanted != found:
            raise VerificationError(
                f"entry {index}: the {column.name} column of its key_events row differs from the key record",
                expected=str(wanted),
                calculated=str(found),
                labels=("the key record says", "the row holds"),
            )


def ledger_key_of(genesis: ReplayedEntry, trusted: VerifierKey | None) -> VerifierKey:
    """The ledger key entry 0 registers; VerificationError if it is not `trusted` (when given)."""
    record = genesis.admitted.admin
    registered = parse_verifier_key(record.key) if isinstance(record, KeyRegistered) else None
    if registered is None or (trusted is not None and registered != trusted):
        raise VerificationError(
            "entry 0 does not register the trusted ledger key",
            expected=trusted.format() if trusted is not None else "a key registration",
            calculated=registered.format() if registered is not None else "-",
            labels=("trusted ledger key", "entry 0 registers"),
        )
    return registered


def check_checkpoint_row(row: CheckpointRow, root: bytes, key: VerifierKey, origin: str) -> Checkpoint:
    """A stored checkpoint: its note verifies with `key`, names `origin`, matches its row and `root`.

    Precondition: `root` is the root rebuilt from the first `row.tree_size` entries.
    """
    try:
        signed = open_checkpoint(row.note, key, origin)
    except EncodingError as exc:
        raise VerificationError(f"its note is not a signed checkpoint: {exc}") from exc
    if signed.size != row.tree_size:
        raise VerificationError(
            "its signed note states another tree size than its tree_size column",
            expected=str(signed.size),
            calculated=str(row.tree_size),
            labels=("signed note", "tree_size column"),
        )
    if signed.root_hash != row.root_hash:
        raise VerificationError(
            "its root_hash column is not the root its signed note states",
            expected=signed.root_hash.hex(),
            calculated=row.root_hash.hex(),
            labels=("signed note", "root_hash column"),
        )
    if root != signed.root_hash:
        raise RootMismatchError(
            f"the entries 0..{row.tree_size - 1} rebuild another root than the signed checkpoint",
            expected=signed.root_hash.hex(),
            calculated=root.hex(),
            labels=("checkpoint root", "computed root"),
        )
    return signed


def check_head(
    head: Head, compact: Sequence[bytes], last_leaf: bytes, last_time: str, last_event: int
) -> None:
    """The stored log head is the state the replayed entries end in."""
    fields: list[tuple[str, object, object]] = [
        ("compact_range", tuple(h.hex() for h in compact), tuple(h.hex() for h in head.compact_range)),
        ("last_leaf_hash", last_leaf.hex(), head.last_leaf_hash.hex()),
        ("last_time", last_time, head.last_time),
        ("last_key_event", last_event, head.last_key_event),
    ]
    for name, expected, stored in fields:
        if expected != stored:
            raise VerificationError(
                f"log_head: its {name} is not what the {head.tree_size} entries imply",
                expected=str(expected),
                calculated=str(stored),
                labels=("the entries imply", "log_head holds"),
            )


def check_key_chain_claim(checkpoint: Checkpoint, last_key_event: int) -> None:
    """A checkpoint's `evledger-keys N` line, when present, names the newest key record under it.

    Dossier verification trusts that line to know it holds every key event, so
    a whole-log audit checks it. Precondition: `last_key_event` is the index of
    the newest key registration or revocation among the checkpoint's entries.
    """
    for line in checkpoint.extensions:
        name, _, value = line.partition(" ")
        if name == KEY_CHAIN_EXTENSION and value != str(last_key_event):
            raise VerificationError(
                f"its {KEY_CHAIN_EXTENSION} line names another newest key event than its entries hold",
                expected=value,
                calculated=str(last_key_event),
                labels=("checkpoint names", "newest key record"),
            )
