"""Receipts: proof that an append is durable (DESIGN.md §4, contract).

A receipt names the entry's index, leaf hash and time, the signed checkpoint
of the batch that included it, and the inclusion proof against that
checkpoint. The same function serves fresh appends and idempotent replays,
so a replayed receipt is byte-for-byte the original.
"""

from __future__ import annotations

import msgspec

from ledger.core.encoding import format_time
from ledger.errors import NotFoundError
from ledger.proofs import ProofReader
from ledger.sequencer import Appended
from ledger.storage.protocol import LogStore


class Receipt(msgspec.Struct, frozen=True):
    """Proof of an append: the entry's place, its inclusion proof and the checkpoint it is under."""

    index: int
    leaf_hash: str
    time: str
    checkpoint: str
    inclusion_proof: list[str]


async def build_receipts(store: LogStore, proofs: ProofReader, appended: Appended) -> list[Receipt]:
    """Receipts for committed entries, with inclusion proofs against their batch's checkpoint.

    Fresh appends carry their rows, paths and time from the sequencer (no read);
    an idempotent replay reads them back and proves them from the stored tiles.
    """
    if appended.entries is not None and appended.paths is not None:
        note, stamp = appended.checkpoint_note, appended.time
        return [
            Receipt(r.index, r.leaf_hash.hex(), stamp, note, [h.hex() for h in path])
            for r, path in zip(appended.entries, appended.paths, strict=True)
        ]
    rows = await store.entries(appended.first_index, appended.count)
    checkpoint = await store.checkpoint(appended.checkpoint_size)
    if checkpoint is None:
        raise NotFoundError(f"no checkpoint at size {appended.checkpoint_size}")
    paths = await proofs.inclusion_many([r.index for r in rows], appended.checkpoint_size)
    return [
        Receipt(
            r.index, r.leaf_hash.hex(), format_time(r.integrated_at), checkpoint.note, [h.hex() for h in path]
        )
        for r, path in zip(rows, paths, strict=True)
    ]
