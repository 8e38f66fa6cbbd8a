"""Signed checkpoints as an inspector meets them: opened, compared with what a claim says, extended. Pure.

A checkpoint (C2SP tlog-checkpoint, a C2SP signed-note) is the one thing the
ledger signs: every proof is checked against a checkpoint that verifies with
the ledger key the inspector trusts. This module holds what every verifier
here does with one: open a checkpoint a source served (a malformed note fails
verification like a bad signature), settle a value a file claims against the
one the inspector or the checkpoint gives, and prove that one checkpoint's log
extends another's (RFC 9162 §2.1.4, consistency). `ledger.errors.failure_context` names
the evidence a failure is about in the error itself. Formats: docs/formats.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from ledger.core.checkpoint import Checkpoint, open_checkpoint
from ledger.core.encoding import hash_from_hex
from ledger.core.keys import VerifierKey
from ledger.core.proof import verify_consistency
from ledger.errors import EncodingError, VerificationError, failure_context

T = TypeVar("T", int, str)


def settle(what: str, given: T | None, given_by: str, claimed: T | None, claimed_by: str) -> T | None:
    """The value `given_by` gives, else the one a file claims; when both are present they must be equal.

    A difference means the evidence is not about what the inspector asked, so it
    fails verification (VerificationError) rather than being an input error.
    """
    if given is not None and claimed is not None and given != claimed:
        raise VerificationError(
            f"{claimed_by} is about another {what} than {given_by}",
            expected=str(given),
            calculated=str(claimed),
            labels=(given_by, claimed_by),
        )
    return given if given is not None else claimed


def parse_hashes(values: Sequence[str], what: str) -> list[bytes]:
    """Decode proof hashes written as 64 lowercase hex digits each; EncodingError names the bad one."""
    return [hash_from_hex(value, f"{what} #{number}") for number, value in enumerate(values, 1)]


def open_served_checkpoint(data: bytes, verifier: VerifierKey, origin: str | None, where: str) -> Checkpoint:
    """Verify a checkpoint a source served; a malformed one fails verification like a bad signature.

    `where` names the source in the failure (a URL or a file). With `origin`, the
    checkpoint must name that log.
    """
    with failure_context(f"checkpoint {where}"):
        try:
            return open_checkpoint(data, verifier, origin)
        except EncodingError as exc:
            raise VerificationError(f"not a signed checkpoint: {exc}") from exc


def open_checkpoints(
    old: str | bytes,
    new: str | bytes,
    verifier: VerifierKey,
    origin: str | None,
    *,
    subjects: tuple[str, str] = ("old checkpoint", "new checkpoint"),
) -> tuple[Checkpoint, Checkpoint]:
    """Open two signed checkpoints of one log: both verify with `verifier`, the new names the old's origin.

    `subjects` name the two notes in a failure (for example the files they came
    from). With `origin`, the old checkpoint must name that log.
    """
    with failure_context(subjects[0]):
        old_signed = open_checkpoint(old, verifier, origin)
    with failure_context(subjects[1]):
        new_signed = open_checkpoint(new, verifier, old_signed.origin)
    return old_signed, new_signed


def verify_extension(
    old: Checkpoint,
    new: Checkpoint,
    proof: Sequence[bytes],
    *,
    claimed_sizes: tuple[int | None, int | None] = (None, None),
    claimed_by: str = "the proof",
) -> None:
    """Check that the log of checkpoint `new` is an append-only extension of the log of `old`.

    `proof` is the RFC 9162 §2.1.4 consistency proof from `old.size` to `new.size`
    (empty when a size is 0 or both are equal). `claimed_sizes` are the sizes a
    proof file says it is about (None: it says nothing), checked with `settle`
    before the proof. Precondition: both checkpoints are opened (`open_checkpoints`).
    VerificationError (RootMismatchError for a proof that rebuilds another root).
    """
    settle("tree size", old.size, "the old checkpoint", claimed_sizes[0], claimed_by)
    settle("tree size", new.size, "the new checkpoint", claimed_sizes[1], claimed_by)
    verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)
