"""Ed25519 keys in the C2SP signed-note key formats (docs/formats.md#keys).

* key ID: first 4 bytes, big-endian, of SHA-256(name || 0x0A || type || pub32)
* verifier key: `<name>+<keyid 8 hex>+<base64(type || pub32)>`
* signer key:   `PRIVATE+KEY+<name>+<keyid 8 hex>+<base64(type || seed32)>`
* keyid string (the DSSE `keyid`): `<name>+<keyid 8 hex>`

`type` is the signature type byte (c2sp.org/signed-note §Signature types): 0x01 for the
ledger's and signers' keys (signed notes, DSSE), 0x04 for a witness's `cosignature/v1` key
(c2sp.org/tlog-cosignature, `ledger.core.cosignature`). The same Ed25519 seed under two
types is two keys with two IDs; a key of one type is never accepted as the other.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.signing

from ledger.core.encoding import b64decode_strict, b64encode
from ledger.errors import KeyFormatError, SignatureError

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
_TYPE_NAMES = {
    ALG_ED25519: "an Ed25519 key (algorithm byte 0x01 + 32 bytes)",
    ALG_COSIGNATURE_V1: "a cosignature/v1 key (type byte 0x04 + 32 bytes)",
}
SIGNER_PREFIX = "PRIVATE+KEY+"
_KEY_SIZE = 32
_HEX8 = re.compile(r"[0-9a-f]{8}")
MAX_KEY_NAME = 256  # keyids are indexed as text (entries.signer_keyid); this keeps their index rows small


def check_key_name(name: str) -> str:
    """Return `name` if it is a valid key name: 1 to 256 printable characters, no whitespace, no `+`."""
    if not name or "+" in name or any(ch.isspace() for ch in name) or not name.isprintable():
        raise KeyFormatError(f"key name {name!r} must be non-empty, printable, without spaces or '+'")
    if len(name) > MAX_KEY_NAME:
        raise KeyFormatError(f"key name {name[:40]!r}… is longer than {MAX_KEY_NAME} characters")
    return name


def compute_key_id(name: str, public_key: bytes, key_type: int = ALG_ED25519) -> int:
    r"""The 32-bit key ID: first 4 bytes of SHA-256(name || '\n' || type || pub32), big-endian."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A named Ed25519 public key; `verify` raises SignatureError on a bad signature."""

    name: str
    key_id: int
    public_key: bytes
    _nacl: nacl.signing.VerifyKey = field(repr=False, compare=False, hash=False)
    keyid: str = field(init=False, repr=False, compare=False, hash=False)
    """The keyid string used in DSSE signatures: `<name>+<keyid 8 hex>` (looked up per signature: kept)."""
    key_type: int = ALG_ED25519

    def __post_init__(self) -> None:
        """Compute `keyid` once."""
        object.__setattr__(self, "keyid", f"{self.name}+{self.key_id:08x}")

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes, key_type: int = ALG_ED25519) -> VerifierKey:
        """Build the verifier for a raw 32-byte Ed25519 public key of signature type `key_type`."""
        check_key_name(name)
        if len(public_key) != _KEY_SIZE:
            raise KeyFormatError(f"Ed25519 public key must be 32 bytes, got {len(public_key)}")
        key_id = compute_key_id(name, public_key, key_type)
        return cls(name, key_id, public_key, nacl.signing.VerifyKey(public_key), key_type=key_type)

    def format(self) -> str:
        """The verifier key string (the one line of a `.pub` file)."""
        return f"{self.keyid}+{b64encode(bytes([self.key_type]) + self.public_key)}"

    def verify(self, message: bytes, signature: bytes) -> None:
        """Check an Ed25519 signature over `message`; raise SignatureError if it does not verify."""
        try:
            self._nacl.verify(message, signature)
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError) as exc:
            raise SignatureError(f"signature by {self.keyid} does not verify") from exc


@dataclass(frozen=True, slots=True)
class SignerKey:
    """A named Ed25519 private key (its 32-byte seed)."""

    name: str
    key_id: int
    seed: bytes = field(repr=False)
    _nacl: nacl.signing.SigningKey = field(repr=False, compare=False, hash=False)
    key_type: int = ALG_ED25519

    @classmethod
    def from_seed(cls, name: str, seed: bytes, key_type: int = ALG_ED25519) -> SignerKey:
        """Build a signer of signature type `key_type` from a 32-byte Ed25519 seed.

        Precondition: a seed serves one type only. A cosignature/v1 message does not
        commit to the signer's name and a 0x01 note signature has no prefix, so one seed
        used for both could be made to sign a note text that reads as a cosignature.
        """
        check_key_name(name)
        if len(seed) != _KEY_SIZE:
            raise KeyFormatError(f"Ed25519 seed must be 32 bytes, got {len(seed)}")
        signing = nacl.signing.SigningKey(seed)
        key_id = compute_key_id(name, bytes(signing.verify_key), key_type)
        return cls(name, key_id, seed, signing, key_type)

    @classmethod
    def generate(cls, name: str, key_type: int = ALG_ED25519) -> SignerKey:
        """A fresh random key (OS randomness through libsodium)."""
        return cls.from_seed(name, bytes(nacl.signing.SigningKey.generate()), key_type)

    @property
    def keyid(self) -> str:
        """The keyid string used in DSSE signatures: `<name>+<keyid 8 hex>`."""
        return f"{self.name}+{self.key_id:08x}"

    def verifier(self) -> VerifierKey:
        """The matching public key."""
        return VerifierKey.from_public_key(self.name, bytes(self._nacl.verify_key), self.key_type)

    def format(self) -> str:
        """The signer key string (the one line of a `.key` file)."""
        return f"{SIGNER_PREFIX}{self.keyid}+{b64encode(bytes([self.key_type]) + self.seed)}"

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message`."""
        return bytes(self._nacl.sign(message).signature)


def _decode_key_material(name: str, hex_id: str, material: str, what: str, key_type: int) -> bytes:
    check_key_name(name)
    if not _HEX8.fullmatch(hex_id):
        raise KeyFormatError(f"{what} key ID {hex_id!r} is not 8 lowercase hex digits")
    raw = b64decode_strict(material, f"{what} key material")
    if len(raw) != 1 + _KEY_SIZE or raw[0] != key_type:
        raise KeyFormatError(f"{what} key is not {_TYPE_NAMES[key_type]}")
    return raw[1:]


def parse_verifier_key(text: str, key_type: int = ALG_ED25519) -> VerifierKey:
    """Parse `<name>+<hex id>+<base64>` of signature type `key_type`.

    KeyFormatError for another type or an ID that does not match the name and key: a key is
    never converted between types.
    """
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError("verifier key must look like <name>+<keyid>+<base64 key>")
    name, hex_id, material = parts
    material_bytes = _decode_key_material(name, hex_id, material, "verifier", key_type)
    key = VerifierKey.from_public_key(name, material_bytes, key_type)
    if f"{key.key_id:08x}" != hex_id:
        raise KeyFormatError(f"verifier key ID {hex_id} does not match its name and key")
    return key


def parse_signer_key(text: str, key_type: int = ALG_ED25519) -> SignerKey:
    """Parse `PRIVATE+KEY+<name>+<hex id>+<base64 seed>` of signature type `key_type`; check its key ID."""
    text = text.strip()
    if not text.startswith(SIGNER_PREFIX):
        raise KeyFormatError("signer key must start with PRIVATE+KEY+")
    parts = text.split("+", 4)
    if len(parts) != 5:
        raise KeyFormatError("signer key must look like PRIVATE+KEY+<name>+<keyid>+<base64 seed>")
    _, _, name, hex_id, material = parts
    key = SignerKey.from_seed(
        name, _decode_key_material(name, hex_id, material, "signer", key_type), key_type
    )
    if f"{key.key_id:08x}" != hex_id:
        raise KeyFormatError(f"signer key ID {hex_id} does not match its name and key")
    return key
