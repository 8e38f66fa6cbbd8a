"""Receipts: proof that an append is durable (docs/http-api.md, contract).

A receipt names the entry's index, leaf hash and time, the signed checkpoint
of the batch that included it, and the inclusion proof against that
checkpoint. The same function serves fresh appends and idempotent replays,
so a replayed receipt is byte-for-byte the original.
"""

from __future__ import annotations

from ledger.append.sequencer import Appended
from ledger.core.encoding import format_time
from ledger.errors import NotFoundError
from ledger.query.proofs import ProofReader
from ledger.storage.protocol import CheckpointRow, EntryRow, LogStore
from ledger.verify.receipt import Receipt as Receipt  # noqa: PLC0414 - re-exported: the verifier owns it


async def build_receipts(store: LogStore, proofs: ProofReader, appended: Appended) -> list[Receipt]:
    """Receipts for committed entries, with inclusion proofs against their batch's checkpoint.

    Fresh appends carry their rows, paths and time from the sequencer (no read);
    an idempotent replay reads them back and proves them from the stored tiles; a
    statement replay gets each recording entry's original receipt (its batch's checkpoint).
    """
    if appended.entries is not None and appended.paths is not None:
        note, stamp = appended.checkpoint_note, appended.time
        return [
            Receipt(r.index, r.leaf_hash.hex(), stamp, note, [h.hex() for h in path])
            for r, path in zip(appended.entries, appended.paths, strict=True)
        ]
    if appended.statement_replay is not None:
        return [await _original_receipt(store, proofs, index) for index in appended.statement_replay]
    rows = await store.entries(appended.first_index, appended.count)
    checkpoint = await store.checkpoint(appended.checkpoint_size)
    if checkpoint is None:
        raise NotFoundError(f"no checkpoint at size {appended.checkpoint_size}")
    return await _receipts(proofs, rows, checkpoint)


async def _original_receipt(store: LogStore, proofs: ProofReader, index: int) -> Receipt:
    """The receipt entry `index` got when it was appended: under its own batch's checkpoint."""
    rows = await store.entries_at([index])
    checkpoint = await store.first_checkpoint_covering(index)
    if not rows or checkpoint is None:
        raise NotFoundError(f"entry {index} or its checkpoint is not stored")
    return (await _receipts(proofs, rows, checkpoint))[0]


async def _receipts(proofs: ProofReader, rows: list[EntryRow], checkpoint: CheckpointRow) -> list[Receipt]:
    paths = await proofs.inclusion_many([r.index for r in rows], checkpoint.tree_size)
    return [
        Receipt(
            r.index, r.leaf_hash.hex(), format_time(r.integrated_at), checkpoint.note, [h.hex() for h in path]
        )
        for r, path in zip(rows, paths, strict=True)
    ]
