"""Wire types of the HTTP API (DESIGN.md §4, contract): frozen msgspec structs, built once.

`Receipt` lives in `ledger.receipts` (the CLI builds receipts without the service) and is re-exported.
"""

from __future__ import annotations

import msgspec

from ledger.core.dsse import Envelope
from ledger.receipts import Receipt


class ErrorBody(msgspec.Struct, frozen=True):
    """Every error response: `{"status", "error", "detail"}`."""

    status: int
    error: str
    detail: str


__all__ = ["Receipt"]


class BatchRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/entries/batch` body: up to 1,000 envelopes, appended all or nothing."""

    envelopes: list[Envelope]


class BatchReceipts(msgspec.Struct, frozen=True):
    """`POST /v1/entries/batch` response."""

    receipts: list[Receipt]


class EntryView(msgspec.Struct, frozen=True):
    """One stored entry: its exact bytes in base64."""

    index: int
    leaf_hash: str
    entry: str


class EntryPage(msgspec.Struct, frozen=True):
    """A page of entries; `next` is the start of the next page, or null at the end."""

    entries: list[EntryView]
    next: int | None


class InclusionProof(msgspec.Struct, frozen=True):
    """`GET /v1/proofs/inclusion` response."""

    index: int
    tree_size: int
    leaf_hash: str
    hashes: list[str]


class ConsistencyProof(msgspec.Struct, frozen=True):
    """`GET /v1/proofs/consistency` response."""

    first: int
    second: int
    hashes: list[str]


envelope_decoder = msgspec.json.Decoder(Envelope)
batch_decoder = msgspec.json.Decoder(BatchRequest)
canonical_encoder = msgspec.json.Encoder(order="sorted")
