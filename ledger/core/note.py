"""C2SP signed-note: text signed by one or more named Ed25519 keys.

Format (c2sp.org/signed-note): the note text (ending in a newline), a blank
line, then one or more lines `— <key name> <base64(keyid4 || signature)>`.
Verification follows the spec's rules: signatures by unknown keys are
ignored; a signature by a known key (same name *and* key ID) must verify or
the whole note is rejected; at least one known signature must verify.
"""

from __future__ import annotations

import binascii
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ledger.core.encoding import b64decode_strict, b64encode
from ledger.core.keys import SignerKey, VerifierKey, check_key_name
from ledger.errors import EncodingError, LedgerError, SignatureError

SIGNATURE_PREFIX = "\u2014 "  # em dash, space
MAX_SIGNATURES = 100
_KEY_ID = struct.Struct(">I")
_CONTROL_EXCEPT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f]")


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: the key's name, its 32-bit ID and the raw signature bytes."""

    name: str
    key_id: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class Note:
    """A parsed note: its text and every signature line, with the ones that verified."""

    text: str
    signatures: tuple[NoteSignature, ...]
    verified: tuple[VerifierKey, ...] = ()


def check_note_text(text: str) -> None:
    """Note text must be non-empty, end in a newline and hold no control character but newline."""
    if not text.endswith("\n"):
        raise EncodingError("note text must end with a newline")
    if _CONTROL_EXCEPT_NEWLINE.search(text):
        raise EncodingError("note text must not contain control characters other than newline")


def sign_note(text: str, signers: Sequence[SignerKey]) -> str:
    """Sign `text` with every signer and return the whole signed note."""
    check_note_text(text)
    if not signers:
        raise LedgerError("a note needs at least one signer")
    message = text.encode()
    lines = [
        f"{SIGNATURE_PREFIX}{s.name} {b64encode(_KEY_ID.pack(s.key_id) + s.sign(message))}\n" for s in signers
    ]
    return text + "\n" + "".join(lines)


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into text and signature lines without verifying anything."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EncodingError("signed note is not valid UTF-8") from exc
    if _CONTROL_EXCEPT_NEWLINE.search(note):
        raise EncodingError("signed note contains control characters other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise EncodingError("signed note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise EncodingError("signed note's signature block must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise EncodingError(f"signed note has over {MAX_SIGNATURES} signatures")
    return Note(text, tuple(_parse_signature_line(line) for line in lines))


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise EncodingError(f"malformed signature line {line[:60]!r}")
    name, sep, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not sep or " " in encoded:
        raise EncodingError(f"malformed signature line {line[:60]!r}")
    check_key_name(name)
    try:
        raw = b64decode_strict(encoded, "note signature")
    except (EncodingError, binascii.Error) as exc:
        raise EncodingError(f"signature by {name} is not base64") from exc
    if len(raw) < _KEY_ID.size:
        raise EncodingError(f"signature by {name} is shorter than its key ID")
    (key_id,) = _KEY_ID.unpack_from(raw)
    return NoteSignature(name, key_id, raw[_KEY_ID.size :])


def open_note(note: str | bytes, verifiers: Iterable[VerifierKey]) -> Note:
    """Parse and verify a signed note against trusted keys (c2sp.org/signed-note §Signatures).

    Returns the note with the keys that verified. Raises SignatureError when a
    known key's signature fails, or when no known key signed the note.
    """
    parsed = parse_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    message = parsed.text.encode()
    verified: dict[tuple[str, int], VerifierKey] = {}
    for sig in parsed.signatures:
        key = known.get((sig.name, sig.key_id))
        if key is None:
            continue
        try:
            key.verify(message, sig.signature)
        except SignatureError as exc:
            raise SignatureError(f"note signature by known key {key.keyid} does not verify") from exc
        verified[(sig.name, sig.key_id)] = key
    if not verified:
        names = ", ".join(f"{s.name}+{s.key_id:08x}" for s in parsed.signatures)
        trusted = ", ".join(v.keyid for v in known.values())
        raise SignatureError(
            "note is not signed by any trusted key",
            expected=trusted,
            calculated=names,
            labels=("trusted key", "signed by"),
        )
    return Note(parsed.text, parsed.signatures, tuple(verified.values()))
