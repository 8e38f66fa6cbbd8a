"""Receipts: proof that an append is durable (DESIGN.md §4, contract).

A receipt names the entry's index, leaf hash and time, the signed checkpoint
of the batch that included it, and the inclusion proof against that
checkpoint. The same function serves fresh appends and idempotent replays,
so a replayed receipt is byte-for-byte the original.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from ledger.core.encoding import format_time
from ledger.errors import NotFoundError
from ledger.proofs import ProofReader
from ledger.sequencer import Appended
from ledger.storage.protocol import EntryRow, LogStore


class Receipt(msgspec.Struct, frozen=True):
    """Proof of an append: the entry's place, its inclusion proof and the checkpoint it is under."""

    index: int
    leaf_hash: str
    time: str
    checkpoint: str
    inclusion_proof: list[str]


async def build_receipts(store: LogStore, proofs: ProofReader, appended: Appended) -> list[Receipt]:
    """Receipts for committed entries, with inclusion proofs against their batch's checkpoint."""
    rows: Sequence[EntryRow] | None = appended.entries
    if rows is None:
        rows = await store.entries(appended.first_index, appended.count)
    note = appended.checkpoint_note
    if not note:
        checkpoint = await store.checkpoint(appended.checkpoint_size)
        if checkpoint is None:
            raise NotFoundError(f"no checkpoint at size {appended.checkpoint_size}")
        note = checkpoint.note
    paths = await proofs.inclusion_many([r.index for r in rows], appended.checkpoint_size)
    return [
        Receipt(r.index, r.leaf_hash.hex(), format_time(r.integrated_at), note, [h.hex() for h in path])
        for r, path in zip(rows, paths, strict=True)
    ]
