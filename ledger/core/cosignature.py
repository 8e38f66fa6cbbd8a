r"""C2SP tlog-cosignature `cosignature/v1`: timestamped Ed25519 cosignatures on checkpoints.

A cosigner (a witness) states that, as of a time, the checkpoint is the largest consistent tree
it has seen for that log. Its cosignature is one more signed-note signature line on the
checkpoint (c2sp.org/tlog-cosignature §Format):

* keys: the signed-note key formats of `ledger.core.keys` with signature type 0x04
  (`ALG_COSIGNATURE_V1`, c2sp.org/signed-note §Signature types), never the 0x01 of an ordinary
  note key: key ID SHA-256(name || 0x0A || 0x04 || pub32)[:4], verifier key
  `<name>+<keyid>+base64(0x04 || pub32)`, signer key `PRIVATE+KEY+<name>+<keyid>+base64(0x04 || seed32)`
  (as Go's transparency-dev/formats note package writes them);
* line:         `— <name> base64(keyid4 || timestamp u64 big-endian || Ed25519 sig64)`
  (tlog-cosignature §Format, the `timestamped_signature` struct);
* signed message: `cosignature/v1\ntime <timestamp>\n` then the whole checkpoint note text,
  final newline included, signature lines excluded (tlog-cosignature §Ed25519 signed message).

The ML-DSA-44 type (0x06) is not implemented: a line of that type is by an unknown key here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from ledger.core.checkpoint import parse_checkpoint_text
from ledger.core.encoding import b64encode
from ledger.core.keys import ALG_COSIGNATURE_V1, SignerKey, VerifierKey
from ledger.core.note import SIGNATURE_PREFIX, NoteSignature, check_note_text, parse_note
from ledger.errors import EncodingError, KeyFormatError, SignatureError

COSIGNATURE_HEADER = "cosignature/v1"
MAX_TIMESTAMP = 2**63 - 1
"""tlog-cosignature §Format: `timestamp` MUST NOT exceed 2^63 - 1."""
_KEY_SIZE = 32
_SIGNATURE_SIZE = 64
_KEY_ID = struct.Struct(">I")
_TIMESTAMP = struct.Struct(">Q")
_COSIGNATURE_SIZE = _TIMESTAMP.size + _SIGNATURE_SIZE  # what follows the key ID on the line


def cosigned_message(body: str, timestamp: int) -> bytes:
    """The bytes a cosigner signs (tlog-cosignature §Ed25519 signed message).

    Precondition: `body` is checkpoint note text (origin, size, root, extension lines, final
    newline, no signature lines) and `0 <= timestamp <= 2^63 - 1`; otherwise EncodingError.
    """
    check_note_text(body)
    parse_checkpoint_text(body)
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise EncodingError(f"cosignature timestamp {timestamp} is outside 0..2^63-1")
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n{body}".encode()


def _require_cosigner(key: SignerKey | VerifierKey) -> None:
    if key.key_type != ALG_COSIGNATURE_V1:
        raise KeyFormatError(f"{key.keyid} is not a cosignature/v1 key (signature type 0x04)")


def sign_cosignature(body: str, cosigner: SignerKey, timestamp: int) -> bytes:
    """`timestamp(8, big-endian) || Ed25519 signature(64)` over `cosigned_message(body, timestamp)`.

    Precondition: `cosigner` is a type-0x04 key (`SignerKey.generate(name, ALG_COSIGNATURE_V1)`);
    KeyFormatError otherwise.
    """
    _require_cosigner(cosigner)
    message = cosigned_message(body, timestamp)  # refuses a timestamp out of range first
    return _TIMESTAMP.pack(timestamp) + cosigner.sign(message)


def open_cosignature(body: str, cosignature: bytes, cosigner: VerifierKey) -> int:
    """Check `timestamp(8) || signature(64)` by `cosigner` over checkpoint text `body`; return the timestamp.

    Raises KeyFormatError when `cosigner` is not a type-0x04 key, EncodingError when
    `cosignature` is not 72 bytes or its timestamp exceeds 2^63 - 1, SignatureError when it
    does not verify.
    """
    _require_cosigner(cosigner)
    if len(cosignature) != _COSIGNATURE_SIZE:
        raise EncodingError(
            f"cosignature by {cosigner.keyid} is {len(cosignature)} bytes, not {_COSIGNATURE_SIZE}"
        )
    (timestamp,) = _TIMESTAMP.unpack_from(cosignature)
    message = cosigned_message(body, timestamp)
    try:
        cosigner.verify(message, cosignature[_TIMESTAMP.size :])
    except SignatureError as exc:
        raise SignatureError(f"cosignature by {cosigner.keyid} does not verify") from exc
    return int(timestamp)


def cosign(body: str, cosigner: SignerKey, timestamp: int) -> str:
    r"""The cosignature line `— <name> base64(keyid || timestamp || sig)\n` for checkpoint text `body`.

    Precondition: `body` is the checkpoint's note text without signature lines (for a signed
    note, `parse_note(note).text`) and the caller has checked the log's signature and the
    checkpoint's consistency: cosigning is the statement that it did.
    """
    raw = _KEY_ID.pack(cosigner.key_id) + sign_cosignature(body, cosigner, timestamp)
    return f"{SIGNATURE_PREFIX}{cosigner.name} {b64encode(raw)}\n"


def verify_cosignature(body: str, line: str | NoteSignature, verifier: VerifierKey) -> int:
    """Verify one cosignature line (or parsed signature) on checkpoint text `body`; return its timestamp.

    Raises SignatureError when the line names another key (name or key ID) or does not verify,
    EncodingError when it is malformed. Timestamps in the future are returned, not refused: the
    caller compares them with its clock (tlog-cosignature §Format: verifiers MAY reject them).
    """
    if isinstance(line, str):
        signatures = parse_note(body + "\n" + line.removesuffix("\n") + "\n").signatures
        if len(signatures) != 1:
            raise EncodingError(f"expected one cosignature line, got {len(signatures)}")
        line = signatures[0]
    if (line.name, line.key_id) != (verifier.name, verifier.key_id):
        raise SignatureError(
            "cosignature is not by this cosigner",
            expected=verifier.keyid,
            calculated=f"{line.name}+{line.key_id:08x}",
            labels=("trusted cosigner", "signed by"),
        )
    return open_cosignature(body, line.signature, verifier)


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A cosigner whose cosignature on a note verified, and the time it states."""

    verifier: VerifierKey
    timestamp: int


def add_cosignatures(note: str, lines: Iterable[str]) -> str:
    """Append cosignature lines to a signed note; a line already on the note is not repeated.

    Precondition: the lines were verified (`verify_cosignature`) against this note's text; this
    only checks that the result is a well-formed signed note (EncodingError otherwise).
    """
    parse_note(note)
    present = set(note[note.rfind("\n\n") + 2 :].split("\n"))
    added = []
    for line in lines:
        bare = line.removesuffix("\n")
        if "\n" in bare or not bare.startswith(SIGNATURE_PREFIX):
            raise EncodingError(f"not one signature line: {bare[:60]!r}")
        if bare not in present:
            present.add(bare)
            added.append(bare + "\n")
    result = note + "".join(added)
    parse_note(result)
    return result


def cosignatures_of(note: str | bytes, cosigners: Iterable[VerifierKey]) -> tuple[Cosignature, ...]:
    """The known cosigners that cosigned `note`, each once with its latest verified timestamp.

    Follows c2sp.org/signed-note §Signatures: lines by unknown keys (including the log's own
    signature) are ignored; a line whose name and key ID match a known cosigner must verify or
    the whole note is rejected (SignatureError). Precondition: the caller checks the log's own
    signature (`open_checkpoint`) and the quorum; an empty result is not an error here.
    """
    parsed = parse_note(note)
    parse_checkpoint_text(parsed.text)
    known = {(v.name, v.key_id): v for v in cosigners}
    found: dict[tuple[str, int], Cosignature] = {}
    for sig in parsed.signatures:
        key = known.get((sig.name, sig.key_id))
        if key is None:
            continue
        try:
            timestamp = open_cosignature(parsed.text, sig.signature, key)
        except EncodingError as exc:
            raise SignatureError(f"cosignature by known cosigner {key.keyid} is malformed") from exc
        earlier = found.get((sig.name, sig.key_id))
        if earlier is None or timestamp > earlier.timestamp:
            found[(sig.name, sig.key_id)] = Cosignature(key, timestamp)
    return tuple(found.values())
