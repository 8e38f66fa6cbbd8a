"""DSSE v1 envelopes signed with Ed25519 (docs/formats.md#envelopes, secure-systems-lab/dsse protocol.md).

The signature covers PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body,
lengths in ASCII decimal of the UTF-8 / raw byte lengths. Input base64 may be
standard or URL-safe, as the DSSE spec allows; we always emit standard.

Decoding follows the DSSE envelope spec (envelope.md): unknown fields of the envelope and
of a signature (a Sigstore `cert`, say) are ignored and dropped, since no signature covers
them; `keyid` is OPTIONAL, an unauthenticated hint, and "" when absent. Admission names
the key of a signature without one (ledger.rules.admission), so a stored entry always does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from ledger.core.encoding import b64decode_lenient, b64encode
from ledger.core.keys import SignerKey, VerifierKey
from ledger.errors import SignatureError, UntrustedSignerError

PAE_PREFIX = b"DSSEv1"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
ADMIN_PAYLOAD_TYPE = "application/vnd.evledger.admin+json"
MAX_SIGNATURES = 16
# Signatures without a keyid an envelope may hold: admission tries each against the registered
# keys that may sign it, so this bounds the verifications one envelope can cost.
MAX_KEYLESS_SIGNATURES = 4

SignatureCheck = Callable[[VerifierKey, bytes, bytes], None]
"""Checks one Ed25519 signature (key, message, raw signature); raises SignatureError if it fails."""


def check_now(key: VerifierKey, message: bytes, signature: bytes) -> None:
    """The default `SignatureCheck`: verify right away."""
    key.verify(message, signature)


class Signature(msgspec.Struct, frozen=True):
    """One DSSE signature: base64 `sig` and the signing key's `keyid` ("" if none); other fields dropped."""

    sig: str
    keyid: str = ""


class Envelope(msgspec.Struct, frozen=True, rename="camel"):
    """A DSSE envelope: `payload` is base64, `payloadType` a media type; other fields are dropped."""

    payload: str
    payload_type: str
    signatures: list[Signature]


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding of a payload type and body."""
    type_bytes = payload_type.encode()
    return b"%s %d %s %d %s" % (PAE_PREFIX, len(type_bytes), type_bytes, len(payload), payload)


def sign_envelope(payload_type: str, payload: bytes, signers: Sequence[SignerKey]) -> Envelope:
    """Sign `payload` with every signer; needs at least one signer."""
    if not signers:
        raise SignatureError("an envelope needs at least one signer")
    message = pae(payload_type, payload)
    return Envelope(
        payload=b64encode(payload),
        payload_type=payload_type,
        signatures=[Signature(keyid=s.keyid, sig=b64encode(s.sign(message))) for s in signers],
    )


def envelope_payload(envelope: Envelope) -> bytes:
    """The decoded payload bytes (standard or URL-safe base64)."""
    return b64decode_lenient(envelope.payload, "envelope payload")


def verify_envelope(
    envelope: Envelope,
    lookup: Callable[[str], VerifierKey | None],
    payload: bytes | None = None,
    check: SignatureCheck = check_now,
) -> list[VerifierKey]:
    """Verify an envelope's signatures; return the keys whose signatures verified.

    `lookup` maps a keyid string to the key that may sign now, or None when
    the key is unknown or revoked (such signatures are ignored). A signature
    by a key `lookup` returns must verify; at least one must. `payload`, when
    given, must be the envelope's decoded payload (it saves decoding it again).
    `check` verifies each signature; one that defers the work (a whole-log audit
    verifying on other cores) must fail the audit at this entry if any check fails.
    """
    if not envelope.signatures:
        raise SignatureError("envelope has no signatures")
    if len(envelope.signatures) > MAX_SIGNATURES:
        raise SignatureError(f"envelope has over {MAX_SIGNATURES} signatures")
    message = pae(envelope.payload_type, envelope_payload(envelope) if payload is None else payload)
    verified: list[VerifierKey] = []
    for signature in envelope.signatures:
        key = lookup(signature.keyid)
        if key is None:
            continue
        raw = b64decode_lenient(signature.sig, f"signature by {signature.keyid}")
        check(key, message, raw)
        if key not in verified:
            verified.append(key)
    if not verified:
        keyids = ", ".join(s.keyid for s in envelope.signatures)
        raise UntrustedSignerError(f"no signature by a registered, unrevoked key (keyids: {keyids})")
    return verified
