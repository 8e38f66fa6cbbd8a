"""The per-row comparisons of `evledger audit`: what a stored row must say, given the replayed log. Pure.

Each check raises a VerificationError naming the row and both values
(`expected` what the log's own bytes imply, `calculated` what the row
stores), so the audit can report the first disagreement in plain words.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.core.checkpoint import Checkpoint, open_checkpoint
from ledger.core.encoding import parse_time
from ledger.core.hashing import leaf_hash
from ledger.core.keys import VerifierKey, parse_verifier_key
from ledger.errors import EncodingError, RootMismatchError, VerificationError
from ledger.records.admin import KeyRegistered
from ledger.rules.chains import KEY_CHAIN_EXTENSION
from ledger.rules.replay import ReplayedEntry
from ledger.storage.protocol import Beyond, CheckpointRow, EntryRow, Head


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
    """The query columns (release, kind, subjects, signer, time, statement) say what the entry says.

    They are what release timelines and dossiers are built from, so a changed
    column could hide evidence from a release even with the entry intact; and a
    changed statement_hash would answer a new statement with another's entry.
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
        "statement_hash": admitted.statement_hash.hex(),
    }
    stored: dict[str, object] = {
        "payload_type": row.payload_type,
        "kind": row.kind,
        "product": row.product,
        "version": row.version,
        "subjects": row.subjects,
        "integrated_at": row.integrated_at,
        "release_seq": row.release_seq,
        "statement_hash": row.statement_hash.hex(),
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


def check_head(  # noqa: PLR0913 - one argument per head column it checks
    head: Head,
    compact: Sequence[bytes],
    last_leaf: bytes,
    last_time: str,
    *,
    last_key_event: int,
    last_admin_entry: int,
) -> None:
    """The stored log head is the state the replayed entries end in.

    `last_key_event` and `last_admin_entry` are the indices of the newest key event and
    of the newest admin record among them, -1 for none.
    """
    fields: list[tuple[str, object, object]] = [
        ("compact_range", tuple(h.hex() for h in compact), tuple(h.hex() for h in head.compact_range)),
        ("last_leaf_hash", last_leaf.hex(), head.last_leaf_hash.hex()),
        ("last_time", last_time, head.last_time),
        ("last_key_event", last_key_event, head.last_key_event),
        ("last_admin_entry", last_admin_entry, head.last_admin_entry),
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


def check_nothing_beyond(beyond: Beyond, size: int) -> None:
    """No entry, checkpoint or hash tile lies past a head of `size` (VerificationError naming the first).

    Such rows were written around the sequencer: the database refuses them
    (007_log_integrity.sql) unless a superuser forced them in, and they would wedge
    or poison the next batch that reaches them.
    """
    found = [
        f"entry {beyond.entry}" if beyond.entry is not None else "",
        f"a checkpoint at size {beyond.checkpoint}" if beyond.checkpoint is not None else "",
        f"hash tile {beyond.tile[0]}/{beyond.tile[1]} of width {beyond.tile[2]}" if beyond.tile else "",
    ]
    if any(found):
        raise VerificationError(
            f"the database holds rows beyond the log head (size {size}), written around the ledger: "
            + ", ".join(f for f in found if f)
        )
