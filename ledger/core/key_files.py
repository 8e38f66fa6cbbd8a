"""Passphrase-protected signer key files (docs/formats.md#keys, issue #12, 21 CFR 11.200).

An encrypted signer key is one line:

    ENCRYPTED+KEY+<name>+<keyid 8 hex>+<base64(version || salt || nonce || ciphertext)>

* version: one byte, 0x01; it fixes the KDF and its parameters (below).
* salt: 32 random bytes; the box key is scrypt(passphrase, salt), 32 bytes, at libsodium's
  INTERACTIVE limits (opslimit 2^19, memlimit 16 MiB).
* nonce: 24 random bytes; ciphertext: `nacl.secret.SecretBox` (XSalsa20-Poly1305) of the
  signer key text `PRIVATE+KEY+<name>+<keyid>+<base64>` in UTF-8.

The name and key ID stay readable so tools can say which key a file holds without the
passphrase. They are not covered by the box's MAC, so decryption checks that the key
inside is the key the header names. A wrong passphrase and an altered ciphertext are the
same failure (the MAC does not verify): WrongPassphraseError, which never shows the key.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.exceptions
import nacl.pwhash.scrypt
import nacl.secret
import nacl.utils

from ledger.core.encoding import b64decode_strict, b64encode
from ledger.core.keys import _HEX8, ALG_ED25519, SIGNER_PREFIX, SignerKey, check_key_name, parse_signer_key
from ledger.errors import InputError, KeyFormatError

ENCRYPTED_PREFIX = "ENCRYPTED+KEY+"
FORMAT_VERSION = 0x01
SALT_SIZE = nacl.pwhash.scrypt.SALTBYTES  # 32
NONCE_SIZE = nacl.secret.SecretBox.NONCE_SIZE  # 24
# INTERACTIVE, not SENSITIVE: SENSITIVE needs 1 GiB of memory and seconds of CPU at every
# signature, which fails on small CI runners and containers where signing commands run. The
# passphrase is a second factor over a file already kept at mode 0600; a later version byte
# can raise these limits without breaking files written under this one.
OPSLIMIT = nacl.pwhash.scrypt.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.scrypt.MEMLIMIT_INTERACTIVE
_HEADER_SIZE = 1 + SALT_SIZE + NONCE_SIZE


class WrongPassphraseError(InputError):
    """The passphrase does not open an encrypted key file (or its ciphertext was altered)."""


@dataclass(frozen=True, slots=True)
class EncryptedSignerKey:
    """An encrypted signer key file, parsed but not opened: its readable name and key ID, and the box."""

    name: str
    hex_id: str
    salt: bytes
    nonce: bytes
    ciphertext: bytes

    @property
    def keyid(self) -> str:
        """The keyid string `<name>+<keyid 8 hex>` the file claims to hold (not yet checked)."""
        return f"{self.name}+{self.hex_id}"

    def format(self) -> str:
        """The one line of an encrypted `.key` file."""
        blob = bytes([FORMAT_VERSION]) + self.salt + self.nonce + self.ciphertext
        return f"{ENCRYPTED_PREFIX}{self.keyid}+{b64encode(blob)}"

    def decrypt(self, passphrase: str, key_type: int = ALG_ED25519) -> SignerKey:
        """The signer key inside; WrongPassphraseError if the passphrase (or ciphertext) is wrong.

        KeyFormatError when the key inside is not the key the readable header names.
        """
        box = nacl.secret.SecretBox(_derive(passphrase, self.salt))
        try:
            plain = box.decrypt(self.ciphertext, self.nonce)
        except nacl.exceptions.CryptoError as exc:
            raise WrongPassphraseError(f"wrong passphrase for key {self.keyid}") from exc
        try:
            text = plain.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise KeyFormatError(f"encrypted key {self.keyid} does not hold a signer key") from exc
        if not text.startswith(SIGNER_PREFIX):
            raise KeyFormatError(f"encrypted key {self.keyid} does not hold a signer key")
        key = parse_signer_key(text, key_type)
        if key.keyid != self.keyid:
            raise KeyFormatError(f"encrypted key file names {self.keyid} but holds another key")
        return key


def _derive(passphrase: str, salt: bytes) -> bytes:
    return bytes(
        nacl.pwhash.scrypt.kdf(
            nacl.secret.SecretBox.KEY_SIZE,
            passphrase.encode("utf-8"),
            salt,
            opslimit=OPSLIMIT,
            memlimit=MEMLIMIT,
        )
    )


def is_encrypted_key(text: str) -> bool:
    """Whether `text` is an encrypted signer key (starts with ENCRYPTED+KEY+)."""
    return text.lstrip().startswith(ENCRYPTED_PREFIX)


def encrypt_signer_key(key: SignerKey, passphrase: str) -> EncryptedSignerKey:
    """Seal `key`'s signer key text under `passphrase` with a fresh random salt and nonce."""
    if not passphrase:
        raise InputError("the passphrase must not be empty")
    salt = nacl.utils.random(SALT_SIZE)
    nonce = nacl.utils.random(NONCE_SIZE)
    box = nacl.secret.SecretBox(_derive(passphrase, salt))
    ciphertext = box.encrypt(key.format().encode("utf-8"), nonce).ciphertext
    return EncryptedSignerKey(key.name, f"{key.key_id:08x}", salt, nonce, bytes(ciphertext))


def parse_encrypted_key(text: str) -> EncryptedSignerKey:
    """Parse `ENCRYPTED+KEY+<name>+<keyid>+<base64>` without opening it; KeyFormatError if malformed."""
    text = text.strip()
    if not text.startswith(ENCRYPTED_PREFIX):
        raise KeyFormatError("encrypted signer key must start with ENCRYPTED+KEY+")
    parts = text.split("+", 4)
    if len(parts) != 5:
        raise KeyFormatError("encrypted signer key must look like ENCRYPTED+KEY+<name>+<keyid>+<base64>")
    _, _, name, hex_id, material = parts
    check_key_name(name)
    if not _HEX8.fullmatch(hex_id):
        raise KeyFormatError(f"encrypted key ID {hex_id!r} is not 8 lowercase hex digits")
    blob = b64decode_strict(material, "encrypted key material")
    if not blob or blob[0] != FORMAT_VERSION:
        raise KeyFormatError(f"encrypted key {name}+{hex_id} has an unknown format version")
    if len(blob) <= _HEADER_SIZE + nacl.secret.SecretBox.MACBYTES:
        raise KeyFormatError(f"encrypted key {name}+{hex_id} is truncated")
    salt = blob[1 : 1 + SALT_SIZE]
    nonce = blob[1 + SALT_SIZE : _HEADER_SIZE]
    return EncryptedSignerKey(name, hex_id, salt, nonce, blob[_HEADER_SIZE:])
