r"""C2SP tlog-checkpoint: the signed statement of a log's size and root (docs/formats.md#checkpoints).

Body: `<origin>\n<size>\n<base64 root>\n[extension lines\n]`, carried as the
text of a C2SP signed note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.core.encoding import b64decode_strict, b64encode
from ledger.core.hashing import HASH_SIZE
from ledger.core.keys import SignerKey, VerifierKey
from ledger.core.note import open_note, sign_note
from ledger.errors import EncodingError, VerificationError

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """The note text of this checkpoint, ending in a newline."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint_text(text: str) -> Checkpoint:
    """Parse checkpoint note text strictly: origin, canonical decimal size, 32-byte root."""
    if not text.endswith("\n"):
        raise EncodingError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise EncodingError(f"checkpoint text has {len(lines)} lines, needs at least 3")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise EncodingError("checkpoint origin is empty")
    if not _DECIMAL.fullmatch(size_text):
        raise EncodingError(f"checkpoint size {size_text!r} is not a canonical decimal")
    root = b64decode_strict(root_text, "checkpoint root hash")
    if len(root) != HASH_SIZE:
        raise EncodingError(f"checkpoint root hash is {len(root)} bytes, not {HASH_SIZE}")
    if any(not line for line in extensions):
        raise EncodingError("checkpoint extension lines must not be empty")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: SignerKey) -> str:
    """The signed note of a checkpoint."""
    return sign_note(checkpoint.text(), [signer])


def open_checkpoint(note: str | bytes, verifier: VerifierKey, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint with the log's key and parse it.

    When `origin` is given, a checkpoint naming another origin is refused even
    if its signature verifies (a key may sign for several logs).
    """
    parsed = open_note(note, [verifier])
    checkpoint = parse_checkpoint_text(parsed.text)
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(
            "checkpoint is for another log",
            expected=origin,
            calculated=checkpoint.origin,
            labels=("trusted origin", "checkpoint origin"),
        )
    return checkpoint
