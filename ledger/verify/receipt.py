"""Receipts and inclusion claims: a leaf is at an index of the tree a signed checkpoint commits to. Pure.

`Receipt` is the receipt of an append (`POST /v1/entries`, docs/formats.md):
the entry's index, leaf hash and time, the signed checkpoint of the batch that
included it, and the inclusion proof against that checkpoint. This module owns
that format; the append path builds receipts of this type and the CLI reads
them. `InclusionClaim` is what any such evidence says (a receipt, or a
checkpoint file with a proof file); `verify_inclusion_claim` checks it trusting
only the ledger key: the checkpoint's signature (C2SP signed-note), then the
RFC 9162 §2.1.3.2 inclusion proof against its root. The time a receipt states
is not covered by the proof; it is carried along, never checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from ledger.core.checkpoint import Checkpoint, open_checkpoint
from ledger.core.encoding import JSON_ERRORS, hash_from_hex
from ledger.core.hashing import leaf_hash
from ledger.core.keys import VerifierKey
from ledger.core.proof import verify_inclusion
from ledger.errors import EncodingError, failure_context
from ledger.verify.checkpoints import parse_hashes, settle


class Receipt(msgspec.Struct, frozen=True):
    """Proof of an append: the entry's place, its inclusion proof and the checkpoint it is under."""

    index: int
    leaf_hash: str
    time: str
    checkpoint: str
    inclusion_proof: list[str]


# Read from a file, a receipt may lack `time` or give null (the proof does not cover it):
# Receipt's own fields, with only that one relaxed. Unknown keys are ignored, as by Receipt.
_ReceiptFile = msgspec.defstruct(
    "Receipt",
    [
        (field.name, field.type | None, None) if field.name == "time" else (field.name, field.type)
        for field in msgspec.structs.fields(Receipt)
    ],
    kw_only=True,
)
_receipt_file_decoder = msgspec.json.Decoder(_ReceiptFile)


@dataclass(frozen=True, slots=True)
class InclusionClaim:
    """What the evidence says: the signed checkpoint, the proof, and maybe the index and leaf hash.

    `source` names the evidence in messages (`receipt r.json`, `proof file p.json`),
    `checkpoint_source` the checkpoint's note. `leaf_hash` is 64 lowercase hex
    digits when given; `tree_size` is the size a proof file says it is about.
    """

    checkpoint_note: str | bytes
    checkpoint_source: str
    hashes: list[bytes]
    source: str
    index: int | None = None
    leaf_hash: str | None = None
    tree_size: int | None = None
    time: str | None = None


def _receipt_claim(fields: dict[str, Any], source: str) -> InclusionClaim:
    """The claim of a decoded receipt; its leaf hash and proof hashes are checked to be hex."""
    hash_from_hex(fields["leaf_hash"], f"{source} leaf_hash")
    hashes = parse_hashes(fields["inclusion_proof"], f"{source} inclusion_proof hash")
    return InclusionClaim(
        fields["checkpoint"],
        f"{source} checkpoint",
        hashes,
        source,
        fields["index"],
        fields["leaf_hash"],
        None,
        fields["time"],
    )


def receipt_claim(receipt: Receipt, source: str = "the receipt") -> InclusionClaim:
    """What `receipt` claims; EncodingError (naming `source`) when a hash in it is not hex."""
    return _receipt_claim(msgspec.structs.asdict(receipt), source)


def receipt_file_claim(data: bytes | str, source: str) -> InclusionClaim:
    """What a receipt file (JSON) claims; EncodingError naming `source` when it is not a receipt.

    As the service writes it (`Receipt`), except that `time` may be absent or null.
    """
    try:
        decoded = _receipt_file_decoder.decode(data)
    except JSON_ERRORS as exc:
        raise EncodingError(f"{source} is not a receipt object: {exc}") from exc
    return _receipt_claim(msgspec.structs.asdict(decoded), source)


def verify_inclusion_claim(
    claim: InclusionClaim, verifier: VerifierKey, index: int, leaf_hash_hex: str, origin: str | None = None
) -> Checkpoint:
    """Check that leaf `leaf_hash_hex` is at `index` of the tree the claim's checkpoint commits to.

    Preconditions: `index` and `leaf_hash_hex` were settled with what the claim says
    (`settle`), the hash is 64 lowercase hex digits. The checkpoint must verify with
    `verifier` (and name `origin`, when given) and be of the size a proof file claims;
    then the RFC 9162 §2.1.3.2 inclusion proof must rebuild its root. Returns the
    verified checkpoint; VerificationError (or one of its kinds) otherwise.
    """
    with failure_context(claim.checkpoint_source):
        signed = open_checkpoint(claim.checkpoint_note, verifier, origin)
    settle("tree size", signed.size, "the checkpoint", claim.tree_size, claim.source)
    verify_inclusion(index, signed.size, bytes.fromhex(leaf_hash_hex), claim.hashes, signed.root_hash)
    return signed


def verify_receipt(
    receipt: Receipt, verifier: VerifierKey, *, entry: bytes | None = None, origin: str | None = None
) -> Checkpoint:
    """Check a receipt trusting only the ledger key: its entry is logged under its signed checkpoint.

    With `entry` (the entry's exact bytes), the receipt must be about that entry
    (RFC 9162 §2.1.1 leaf hash). Returns the verified checkpoint; EncodingError for
    a malformed receipt, VerificationError when it does not hold.
    """
    claim = receipt_claim(receipt)
    if entry is not None:
        settle("leaf hash", leaf_hash(entry).hex(), "the entry given", receipt.leaf_hash, claim.source)
    return verify_inclusion_claim(claim, verifier, receipt.index, receipt.leaf_hash, origin)
