"""C2SP tlog-proof v1: a self-contained, offline-verifiable proof that one entry is logged.

Format (c2sp.org/tlog-proof): the line `c2sp.org/tlog-proof@v1`, an optional
`extra <base64>` line (here: the entry's exact bytes, so the leaf hash can be
recomputed), `index <N>`, the inclusion proof as base64 hashes one per line
(leaf sibling first), an empty line, then the signed checkpoint verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.core.checkpoint import open_checkpoint
from ledger.core.encoding import b64decode_strict, b64encode
from ledger.core.hashing import HASH_SIZE, leaf_hash
from ledger.core.keys import VerifierKey
from ledger.core.proof import verify_inclusion
from ledger.errors import EncodingError

HEADER = "c2sp.org/tlog-proof@v1"
_INDEX = re.compile(r"index (0|[1-9][0-9]*)")


@dataclass(frozen=True, slots=True)
class TlogProof:
    """An entry's index, its inclusion proof, the checkpoint, and (optionally) the entry bytes."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None


def format_tlog_proof(proof: TlogProof) -> str:
    """The text of a `.tlog-proof` file."""
    lines = [HEADER]
    if proof.extra is not None:
        lines.append(f"extra {b64encode(proof.extra)}")
    lines.append(f"index {proof.index}")
    lines += [b64encode(h) for h in proof.proof]
    return "\n".join(lines) + "\n\n" + proof.checkpoint


def parse_tlog_proof(text: str) -> TlogProof:
    """Parse a `.tlog-proof` file strictly (the checkpoint is not verified here)."""
    head, sep, checkpoint = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or not lines or lines[0] != HEADER:
        raise EncodingError(f"not a tlog-proof: it must start with {HEADER!r} and hold a checkpoint")
    position, extra = 1, None
    if len(lines) > 1 and lines[1].startswith("extra "):
        extra = b64decode_strict(lines[1][len("extra ") :], "tlog-proof extra data")
        position = 2
    match = _INDEX.fullmatch(lines[position]) if len(lines) > position else None
    if match is None:
        raise EncodingError("tlog-proof needs an `index N` line (decimal, no leading zeros)")
    hashes = tuple(b64decode_strict(line, "tlog-proof hash") for line in lines[position + 1 :])
    if any(len(h) != HASH_SIZE for h in hashes):
        raise EncodingError(f"tlog-proof hashes must be {HASH_SIZE} bytes")
    return TlogProof(int(match.group(1)), hashes, checkpoint, extra)


def verify_tlog_proof(proof: TlogProof, verifier: VerifierKey, entry: bytes | None = None) -> bytes:
    """Check the checkpoint's signature and the inclusion of `entry` (default: the extra data).

    Returns the entry bytes that were proven. VerificationError on any failure.
    """
    data = entry if entry is not None else proof.extra
    if data is None:
        raise EncodingError("no entry given and the tlog-proof carries no extra data")
    checkpoint = open_checkpoint(proof.checkpoint, verifier)
    verify_inclusion(proof.index, checkpoint.size, leaf_hash(data), list(proof.proof), checkpoint.root_hash)
    return data


def tlog_proofs(entries: Sequence[tuple[int, bytes, Sequence[bytes]]], checkpoint: str) -> list[TlogProof]:
    """One TlogProof per (index, entry bytes, inclusion proof), all against `checkpoint`."""
    return [TlogProof(index, tuple(path), checkpoint, data) for index, data, path in entries]
