r"""C2SP tlog-witness `add-checkpoint`: the wire formats and the witness's decision, pure.

Both sides of the protocol (c2sp.org/tlog-witness §add-checkpoint) live here, so that the
witness service (`ledger.witness`) and a log submitting its checkpoints read and write the
same bytes:

* request body: `old <size>\n`, 0 to 63 lines of one base64 hash each, an empty line, then
  the checkpoint's signed note (c2sp.org/tlog-checkpoint, c2sp.org/signed-note);
* 409 body: `<size>\n` with Content-Type `text/x.tlog.size`, the size of the latest
  checkpoint the witness cosigned for that origin;
* 200 body: one or more cosignature lines `— <name> <base64>\n` (c2sp.org/tlog-cosignature).

The decision (`authenticate`, `judge`, `decide`) follows the order of checks of
tlog-witness §add-checkpoint: origin (404), signature (403), old size above the checkpoint's
(400), old size against the stored one (409), consistency proof (422), same size with
another root (409). No I/O: the caller holds the stored checkpoint and persists the result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ledger.core.checkpoint import Checkpoint, parse_checkpoint_text
from ledger.core.cosignature import verify_cosignature
from ledger.core.encoding import b64decode_strict, b64encode
from ledger.core.hashing import HASH_SIZE
from ledger.core.keys import VerifierKey
from ledger.core.note import SIGNATURE_PREFIX, open_note, parse_note
from ledger.core.proof import verify_consistency
from ledger.errors import EncodingError, SignatureError, TooLargeError, VerificationError

SIZE_CONTENT_TYPE = "text/x.tlog.size"
"""tlog-witness §add-checkpoint: the Content-Type of a 409 response's size body."""
MAX_PROOF_LINES = 63
"""tlog-witness §add-checkpoint: a client MUST NOT send more than 63 consistency proof lines."""
MAX_BODY_BYTES = 64 * 1024
"""Largest add-checkpoint body accepted (63 proof lines take 2.8 KB; the rest is the signed note)."""
MAX_RESPONSE_BYTES = 64 * 1024
"""Largest cosignature response (or size body) a client reads."""
MAX_TREE_SIZE = 2**64 - 1
"""Tree sizes are uint64 in every C2SP log format; a larger old size is malformed."""

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_OLD_PREFIX = "old "


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    """One add-checkpoint request: the old size, the consistency proof, the signed checkpoint note.

    `checkpoint` is the signed note exactly as sent (all its signature lines kept).
    """

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: str

    @property
    def origin(self) -> str:
        """The checkpoint's origin line, read without verifying any signature."""
        return parse_checkpoint_text(parse_note(self.checkpoint).text).origin


def _decode_utf8(body: bytes, what: str) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EncodingError(f"{what} is not valid UTF-8") from exc


def _parse_size(text: str, what: str) -> int:
    if not _DECIMAL.fullmatch(text) or int(text) > MAX_TREE_SIZE:
        raise EncodingError(f"{what} {text[:30]!r} is not a canonical decimal tree size")
    return int(text)


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    r"""Parse an add-checkpoint request body strictly (tlog-witness §add-checkpoint).

    Precondition: none; any body may be given. Raises TooLargeError over MAX_BODY_BYTES, and
    EncodingError for anything else the spec does not allow: not UTF-8, no `old <size>` first
    line with a canonical decimal (no leading zeros, no sign), a proof line that is not one
    32-byte hash in canonical padded base64, more than 63 proof lines, proof lines with old
    size 0 (the proof MUST be empty then), no empty line before the checkpoint, or a
    checkpoint that is not a well-formed signed checkpoint note. Signatures are not checked.
    """
    if len(body) > MAX_BODY_BYTES:
        raise TooLargeError(f"add-checkpoint body is {len(body)} bytes, over {MAX_BODY_BYTES}")
    text = _decode_utf8(body, "add-checkpoint body")
    head, blank, note = text.partition("\n\n")
    if not blank:
        raise EncodingError("add-checkpoint body has no empty line before the checkpoint")
    lines = head.split("\n")
    old_line, proof_lines = lines[0], lines[1:]
    if not old_line.startswith(_OLD_PREFIX):
        raise EncodingError(f"add-checkpoint body must start with 'old <size>', not {old_line[:30]!r}")
    old_size = _parse_size(old_line[len(_OLD_PREFIX) :], "old size")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise EncodingError(f"consistency proof has {len(proof_lines)} lines, over {MAX_PROOF_LINES}")
    proof = tuple(_parse_proof_hash(line, i) for i, line in enumerate(proof_lines))
    if old_size == 0 and proof:
        raise EncodingError("the consistency proof must be empty when the old size is 0")
    parsed = parse_note(note)
    parse_checkpoint_text(parsed.text)
    return AddCheckpoint(old_size, proof, note)


def _parse_proof_hash(line: str, index: int) -> bytes:
    value = b64decode_strict(line, f"consistency proof line {index + 1}")
    if len(value) != HASH_SIZE:
        raise EncodingError(f"consistency proof line {index + 1} is {len(value)} bytes, not {HASH_SIZE}")
    return value


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: str) -> bytes:
    """The add-checkpoint request body for `note` (tlog-witness §add-checkpoint), what a log POSTs.

    Precondition: `note` is a signed checkpoint note, `proof` the RFC 6962 §2.1.2 consistency
    proof from `old_size` (the size the witness last cosigned, 0 if none) to its size, empty
    when `old_size` is 0. The result is checked with `parse_add_checkpoint` (EncodingError or
    TooLargeError when it would be refused).
    """
    lines = [f"{_OLD_PREFIX}{old_size}\n", *(b64encode(h) + "\n" for h in proof), "\n", note]
    body = "".join(lines).encode()
    parse_add_checkpoint(body)
    return body


def format_size_body(size: int) -> bytes:
    r"""The 409 body `<size>\n` (tlog-witness §add-checkpoint). Precondition: 0 <= size < 2^64."""
    if not 0 <= size <= MAX_TREE_SIZE:
        raise EncodingError(f"tree size {size} is outside 0..2^64-1")
    return f"{size}\n".encode()


def parse_size_body(body: bytes) -> int:
    r"""The size in a 409 body `<size>\n` (tlog-witness §add-checkpoint); EncodingError otherwise.

    Precondition: none. The caller checks the Content-Type is SIZE_CONTENT_TYPE.
    """
    if len(body) > MAX_RESPONSE_BYTES:
        raise TooLargeError(f"size body is {len(body)} bytes, over {MAX_RESPONSE_BYTES}")
    text = _decode_utf8(body, "size body")
    if not text.endswith("\n"):
        raise EncodingError("size body must end with a newline")
    return _parse_size(text[:-1], "size body")


def parse_cosignature_response(body: bytes, checkpoint_note: str, witness_key: VerifierKey) -> list[str]:
    r"""The cosignature lines of a 200 response that verify by `witness_key` over `checkpoint_note`.

    tlog-witness §add-checkpoint: the body is one or more signature lines, each `— ` ... `\n`;
    lines by other keys are ignored. Precondition: `checkpoint_note` is the signed note that was
    submitted and `witness_key` a cosignature/v1 (type 0x04) key. Raises EncodingError for a body
    that is not such lines, SignatureError when a line by the witness's name and key ID does not
    verify, or when no line does. Each line returned ends with a newline, ready for
    `ledger.core.cosignature.add_cosignatures`.
    """
    if len(body) > MAX_RESPONSE_BYTES:
        raise TooLargeError(f"cosignature response is {len(body)} bytes, over {MAX_RESPONSE_BYTES}")
    text = _decode_utf8(body, "cosignature response")
    if not text.endswith("\n") or not text.startswith(SIGNATURE_PREFIX):
        raise EncodingError("cosignature response must be one or more signature lines")
    checkpoint_text = parse_note(checkpoint_note).text
    parse_checkpoint_text(checkpoint_text)
    # Parse the lines as the signature block of the checkpoint: the note parser checks each one.
    signatures = parse_note(checkpoint_text + "\n" + text).signatures
    verified: list[str] = []
    for line, signature in zip(text[:-1].split("\n"), signatures, strict=True):
        if (signature.name, signature.key_id) != (witness_key.name, witness_key.key_id):
            continue
        try:
            verify_cosignature(checkpoint_text, signature, witness_key)
        except EncodingError as exc:
            raise SignatureError(f"cosignature by witness {witness_key.keyid} is malformed") from exc
        verified.append(line + "\n")
    if not verified:
        raise SignatureError(
            "witness response holds no cosignature by the witness",
            expected=witness_key.keyid,
            calculated=", ".join(f"{s.name}+{s.key_id:08x}" for s in signatures),
            labels=("witness key", "signed by"),
        )
    return verified


@dataclass(frozen=True, slots=True)
class Refusal:
    r"""Why the witness does not cosign: the HTTP status tlog-witness §add-checkpoint prescribes.

    `latest_size` is set for a 409 (the body `<size>\n`). `evidence` marks a refusal of a
    checkpoint whose signature verified but which contradicts what the witness cosigned (a
    proof that does not verify, or another root at the same size): the spec lets the witness
    log these as possible proof of log misbehaviour.
    """

    status: int
    reason: str
    latest_size: int | None = None
    evidence: bool = False


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A submitted checkpoint whose signature verified with a trusted key of its origin."""

    checkpoint: Checkpoint
    text: str
    """The note text (what is cosigned), without signature lines."""
    verified: tuple[VerifierKey, ...]


def authenticate(
    request: AddCheckpoint, logs: Mapping[str, Sequence[VerifierKey]]
) -> Authenticated | Refusal:
    """The first two checks of tlog-witness §add-checkpoint, which need no stored state.

    `logs` maps each known origin to the log keys trusted for it. An unknown origin is a 404;
    a checkpoint with no verifying signature by one of its origin's keys, or with a failing
    one by such a key, a 403 (signatures by unknown keys are ignored, c2sp.org/signed-note).
    Precondition: `request` came from `parse_add_checkpoint`.
    """
    origin = request.origin
    keys = logs.get(origin)
    if not keys:
        return Refusal(404, f"unknown log origin {origin[:200]!r}")
    try:
        note = open_note(request.checkpoint, keys)
    except SignatureError as exc:
        return Refusal(403, f"checkpoint for {origin[:200]!r}: {exc}")
    return Authenticated(parse_checkpoint_text(note.text), note.text, note.verified)


def judge(request: AddCheckpoint, submitted: Checkpoint, latest: Checkpoint | None) -> Refusal | None:
    """The checks of tlog-witness §add-checkpoint against the stored state; None means cosign.

    `latest` is the latest checkpoint the witness cosigned for `submitted.origin` (None if
    never). Precondition: `submitted` is the authenticated checkpoint of `request`, and the
    caller holds that origin's lock from reading `latest` until it has persisted `submitted`
    (the spec's rollback race). Refusals: old size above the checkpoint's size 400; old size
    other than the stored size 409; a consistency proof (RFC 6962 §2.1.2) that does not lead
    from the stored checkpoint to the submitted one 422; the stored size with another root 409.
    """
    stored_size = latest.size if latest is not None else 0
    if request.old_size > submitted.size:
        return Refusal(400, f"old size {request.old_size} is above the checkpoint's size {submitted.size}")
    if request.old_size != stored_size:
        return Refusal(
            409,
            f"old size {request.old_size} is not the size {stored_size} of the latest cosigned checkpoint",
            latest_size=stored_size,
        )
    if latest is None or (stored_size == 0 and submitted.size > 0):
        # Nothing cosigned to be consistent with. An empty proof: checked by parse_add_checkpoint,
        # again here for callers that build requests themselves.
        return (
            Refusal(400, "the consistency proof must be empty when the old size is 0")
            if request.proof
            else None
        )
    if submitted.size == stored_size:
        return _judge_same_size(request, submitted, latest)
    try:
        verify_consistency(stored_size, submitted.size, request.proof, latest.root_hash, submitted.root_hash)
    except VerificationError as exc:
        return Refusal(422, f"consistency proof from {stored_size} to {submitted.size}: {exc}", evidence=True)
    return None


def _judge_same_size(request: AddCheckpoint, submitted: Checkpoint, latest: Checkpoint) -> Refusal | None:
    """tlog-witness §add-checkpoint at the cosigned size: empty proof (else 422), same root (else 409)."""
    if request.proof:
        return Refusal(422, "the consistency proof must be empty when the sizes are equal")
    if submitted.root_hash != latest.root_hash:
        return Refusal(
            409,
            f"another root hash at the cosigned size {latest.size}: the log forked",
            latest_size=latest.size,
            evidence=True,
        )
    return None


def decide(
    request: AddCheckpoint, logs: Mapping[str, Sequence[VerifierKey]], latest: Checkpoint | None
) -> Authenticated | Refusal:
    """`authenticate` then `judge` (tlog-witness §add-checkpoint): what to cosign, or the refusal.

    Precondition: `latest` is the stored latest cosigned checkpoint for `request.origin`.
    """
    outcome = authenticate(request, logs)
    if isinstance(outcome, Refusal):
        return outcome
    refusal = judge(request, outcome.checkpoint, latest)
    return refusal if refusal is not None else outcome
