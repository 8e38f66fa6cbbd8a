"""Who may sign what, as the log itself proves it: the registry replayed from admin entries. Pure.

The service enforces the key registry (and the sealing roles of the policy in
force) that the log's own entries imply, never a table derived from them: the
admin entries (key registrations, revocations, policies) are read by their
kind and replayed with the verifiers' rules (each signed by an admin key
registered before it, each key event linked into the key-event chain), and
the result is held to a checkpoint signed by the ledger key, whose
`evledger-keys N` line names the newest key event under it. Rows written
around the sequencer, which the database refuses (007_log_integrity.sql) but
a superuser can force in, therefore cannot grant a key: replay or the
checkpoint catches them, and the ledger stops appending (LogIntegrityError)
rather than sign over them.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.core.checkpoint import Checkpoint, open_checkpoint
from ledger.core.compact_range import CompactRange
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE
from ledger.core.entry import parse_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import VerifierKey
from ledger.errors import LedgerError, LogIntegrityError
from ledger.rules.chains import Chains, key_chain_head_of
from ledger.rules.registry import KeyRegistry
from ledger.rules.replay import apply_recorded
from ledger.storage.protocol import CheckpointRow, EntryRow, Head


def verified_checkpoint(row: CheckpointRow, key: VerifierKey, origin: str | None) -> Checkpoint:
    """A stored checkpoint opened with the ledger key; LogIntegrityError unless it is what it claims.

    Its signature must verify for `origin`, and its size and root must be those of its row.
    """
    try:
        checkpoint = open_checkpoint(row.note, key, origin)
    except LedgerError as exc:
        raise LogIntegrityError(
            f"the stored checkpoint at size {row.tree_size} is not signed by the ledger key ({exc}); "
            "appends are stopped until an operator runs `evledger audit`"
        ) from exc
    if checkpoint.size != row.tree_size or checkpoint.root_hash != row.root_hash:
        raise LogIntegrityError(
            f"the stored checkpoint row at size {row.tree_size} disagrees with its signed note"
        )
    return checkpoint


def check_head(head: Head, checkpoint: Checkpoint) -> None:
    """The locked head is exactly the tree its signed checkpoint describes (LogIntegrityError if not).

    Precondition: `checkpoint` passed `verified_checkpoint` and is the one stored at the head's
    size. The head may only move forward with a checkpoint of the new size (the database's rule),
    so a head that matches a ledger-signed checkpoint was moved by the ledger.
    """
    root = CompactRange(head.tree_size, list(head.compact_range)).root()
    keys = key_chain_head_of(checkpoint.extensions)
    if checkpoint.size != head.tree_size or checkpoint.root_hash != root or keys != head.last_key_event:
        raise LogIntegrityError(
            f"the log head at size {head.tree_size} is not the tree its signed checkpoint describes: "
            "the database was changed around the ledger; appends are stopped until an operator "
            "runs `evledger audit`"
        )


def replay_admin_entries(registry: KeyRegistry, rows: Sequence[EntryRow], below: int) -> KeyRegistry:
    """A copy of `registry` with the admin entries `rows` applied, each checked as a verifier would.

    Preconditions: `rows` are every key registration, revocation and policy after
    `registry.applied_through`, in index order, as the store's kind index returns them;
    `below` is the size of a verified checkpoint. Raises LogIntegrityError for a row that
    is not its entry's own bytes, an entry that fails admission or the key-event chain at
    its index, or an admin entry at or beyond `below` (a row the ledger never signed over).
    """
    fresh = registry.copy()
    for row in rows:
        if row.index >= below:
            raise LogIntegrityError(
                f"entry {row.index} holds an admin record beyond the signed log (size {below}): "
                "the database was changed around the ledger"
            )
        try:
            _apply_admin_entry(fresh, row)
        except LedgerError as exc:
            raise LogIntegrityError(f"the admin record of entry {row.index} does not replay: {exc}") from exc
    return fresh


def _apply_admin_entry(registry: KeyRegistry, row: EntryRow) -> None:
    entry = parse_entry(row.data)
    digest = leaf_hash(row.data)
    if entry.index != row.index or digest != row.leaf_hash or row.index <= registry.applied_through:
        raise LogIntegrityError(f"the row at index {row.index} is not that entry's own bytes")
    if entry.envelope.payload_type != ADMIN_PAYLOAD_TYPE:
        raise LogIntegrityError(f"entry {entry.index} is stored as an admin record but holds none")
    chains = Chains(keys=registry.key_head)  # an admin record is on the key chain or on none
    apply_recorded(entry, digest, registry, chains)
    registry.key_head = chains.keys


def check_key_chain(registry: KeyRegistry, newest_key_event: int | None, where: str) -> None:
    """The replayed registry's newest key event is the one the log names (LogIntegrityError if not).

    `newest_key_event` is what a signed checkpoint's `evledger-keys` line (or the head checked
    against it) names under `where`; None when it names none. Precondition: `registry` was
    replayed from every admin entry below that checkpoint's size.
    """
    held = registry.key_head.index if registry.key_head is not None else -1
    if newest_key_event is not None and newest_key_event != held:
        raise LogIntegrityError(
            f"{where} names key event {newest_key_event} as the newest, but the entries replay to "
            f"{held}: key records are missing or were added around the ledger"
        )
