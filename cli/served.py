"""What a ledger server serves to a verifier, fetched and decoded, never trusted.

Each answer is only decoded here; the caller verifies it against the keys and policy it
trusts. A malformed answer fails verification (exit 1), like a bad signature: the server
is what is being checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from cli.client import LedgerClient
from cli.files import ProofFile
from ledger.core.checkpoint import Checkpoint
from ledger.core.encoding import JSON_ERRORS, b64decode_strict
from ledger.core.keys import VerifierKey
from ledger.errors import EncodingError, VerificationError
from ledger.verify.anchoring import (
    Anchoring,
    Trust,
    check_anchoring,
    decode_served_anchors,
    decode_timestamps,
)
from ledger.verify.checkpoints import open_served_checkpoint, parse_hashes, settle, verify_extension

_consistency_decoder = msgspec.json.Decoder(ProofFile)


def fetch_consistency_proof(client: LedgerClient, first: int, second: int) -> list[bytes]:
    """The server's RFC 9162 consistency proof from `first` to `second` (needs 0 < first < second)."""
    response = client.get("/v1/proofs/consistency", first=first, second=second)
    try:
        served = _consistency_decoder.decode(response.content)
        settle("tree size", first, "the old checkpoint", served.first, "the server's proof")
        settle("tree size", second, "the new checkpoint", served.second, "the server's proof")
        return parse_hashes(served.hashes, "server proof hash")
    except (*JSON_ERRORS, EncodingError) as exc:
        raise VerificationError(f"the server's consistency proof is malformed: {exc}") from exc


class _IndexProofAnswer(msgspec.Struct):
    """What a verifier reads of `GET /v1/index/proof` (docs/http-api.md); other fields are ignored."""

    tree_size: int
    checkpoint: str
    proof: str  # base64


@dataclass(frozen=True, slots=True)
class ServedIndexProof:
    """A served index proof, decoded (not yet verified): its checkpoint's size and note, and its bytes."""

    tree_size: int
    checkpoint: str
    proof: bytes


_index_proof_decoder = msgspec.json.Decoder(_IndexProofAnswer)


def served_index_proof(client: LedgerClient, query: dict[str, str]) -> ServedIndexProof:
    """The server's completeness-index proof of the chain `query` names (`artifact=`, `release=`, ...).

    VerificationError when the answer is not what the API documents (exit 1: the server is checked).
    """
    response = client.get("/v1/index/proof", **query)
    try:
        answer = _index_proof_decoder.decode(response.content)
        proof = b64decode_strict(answer.proof, "index proof")
    except (*JSON_ERRORS, EncodingError) as exc:
        raise VerificationError(f"the server's index proof answer is malformed: {exc}") from exc
    return ServedIndexProof(answer.tree_size, answer.checkpoint, proof)


def served_index_proof_bytes(client: LedgerClient, query: dict[str, str]) -> tuple[int, bytes]:
    """`served_index_proof`, as `ledger.verify.index_check.ServedProof` takes it: the size and the bytes."""
    answer = served_index_proof(client, query)
    return answer.tree_size, answer.proof


def served_anchors(client: LedgerClient, tree_size: int | None = None) -> tuple[str, list[bytes]]:
    """The note (with its cosignatures) and the tokens the server keeps for a checkpoint (GET /v1/anchors).

    `tree_size` None asks for the checkpoint `GET /checkpoint` serves.
    """
    params = {} if tree_size is None else {"tree_size": tree_size}
    served = decode_served_anchors(client.get("/v1/anchors", **params).content, "the server")
    if tree_size is not None and served.tree_size != tree_size:
        raise VerificationError(f"the server answered with the anchors of checkpoint {served.tree_size}")
    return served.checkpoint, decode_timestamps(served.timestamps, "served")


def anchored_extension(
    client: LedgerClient, signed: Checkpoint, verifier: VerifierKey, trust: Trust
) -> tuple[Checkpoint, Anchoring]:
    """The server's anchored checkpoint, holding what `trust` requires, proven to extend `signed`.

    For evidence whose own checkpoint the ledger signed alone (a receipt): the newest
    checkpoint the server serves with its anchors is opened with `verifier`, its anchors are
    checked, and an RFC 9162 consistency proof shows it extends `signed`. VerificationError
    when any of that fails, or when the anchored checkpoint does not cover `signed` yet.
    """
    note, tokens = served_anchors(client)
    newer = open_served_checkpoint(note.encode(), verifier, signed.origin, "served by /v1/anchors")
    anchoring = check_anchoring(note, tokens, trust)
    if newer.size < signed.size:
        raise VerificationError(
            "the server's anchored checkpoint does not cover this one yet; try again in a few seconds",
            expected=f">= {signed.size}",
            calculated=str(newer.size),
            labels=("tree size needed", "anchored tree size"),
        )
    proof = fetch_consistency_proof(client, signed.size, newer.size) if 0 < signed.size < newer.size else []
    verify_extension(signed, newer, proof)
    return newer, anchoring
