"""RFC 3161 trusted time for checkpoints: build a request, check a reply, verify a token offline. Pure.

A time-stamping authority (TSA) signs, at a time it states (`genTime`, RFC 3161 section 2.4.2),
the hash of a message (the `messageImprint`). Here the message is a checkpoint's note text (the
signed body: origin, size, root hash, extension lines and the final newline, without signature
lines; docs/formats.md), hashed with SHA-256. A token that verifies is an independent upper
bound on when that checkpoint, and so every entry under it, existed; since cosignatures are
signature lines, one token fits the checkpoint whatever cosignatures are added later.

The token stored and verified is the TSA's whole DER `TimeStampResp` (RFC 3161 section 2.4.2:
the PKIStatusInfo, then the `TimeStampToken`, a CMS SignedData over a TSTInfo). It is what
`openssl ts -verify -in FILE` reads, and what rfc3161-client parses.

All the ASN.1 and CMS work is rfc3161-client's (Trail of Bits; its signature and chain check is
OpenSSL's PKCS7_verify at the token's genTime with purpose timestamp-sign); certificates are
pyca/cryptography's. No event loop, no HTTP: `ledger.service.timestamping` does the network part.
See docs/trusted-time.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import rfc3161_client
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerifierBuilder,
    decode_timestamp_response,
)

# The package exports a parser for replies only; the one for requests is its own Rust binding.
from rfc3161_client._rust import parse_timestamp_request

from ledger.errors import EncodingError, InputError, SignatureError, VerificationError

TsaCertificate = x509.Certificate
"""A certificate the user trusts for time-stamping: a TSA's own certificate or a CA's (X.509)."""

SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")  # id-sha256, RFC 5754 section 2.2

MALFORMED = "timestamp token is malformed"
ANOTHER_CHECKPOINT = "timestamp token is for another checkpoint"
UNTRUSTED = "timestamp token is not signed by a trusted TSA"


@dataclass(frozen=True, slots=True)
class TrustedTime:
    """What a verified token says (RFC 3161 section 2.4.2, TSTInfo).

    `tsa` is the subject of the certificate that signed the token (RFC 4514 string), `time` its
    genTime (timezone-aware, UTC), `serial` the TSA's serialNumber for the token.
    """

    tsa: str
    time: datetime
    serial: int


def imprint(note_text: str) -> bytes:
    """The message imprint of a checkpoint: SHA-256 of its note text's UTF-8 bytes (RFC 3161 section 2.4.1).

    Precondition: `note_text` is the checkpoint's note text (signature lines excluded).
    """
    return hashlib.sha256(note_text.encode("utf-8")).digest()


def timestamp_request(note_text: str, *, nonce: bool = True) -> bytes:
    """A DER TimeStampReq for a checkpoint (RFC 3161 section 2.4.1).

    The messageImprint is SHA-256 of the UTF-8 bytes of `note_text`, certReq is true (so the
    token carries the TSA's certificate, which offline verification needs) and, with `nonce`, a
    random nonce that `check_response` matches. Precondition: `note_text` is not empty.
    """
    data = note_text.encode("utf-8")
    if not data:
        raise InputError("a timestamp request needs a non-empty checkpoint text")
    builder = TimestampRequestBuilder(
        data=data, hash_algorithm=HashAlgorithm.SHA256, nonce=nonce, cert_req=True
    )
    return builder.build().as_bytes()


def load_tsa_certificates(pem: bytes) -> list[TsaCertificate]:
    """The certificates of a PEM bundle (RFC 7468 section 5), in order, to trust for time-stamping.

    Give the TSA's own certificate, or the root CA certificate that issued it (see
    `verify_timestamp`). Precondition: none; InputError when `pem` holds no PEM certificate
    or a certificate that does not parse.
    """
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise InputError(f"TSA certificate file holds no valid PEM certificate: {exc}") from exc
    if not certificates:  # pragma: no cover - cryptography raises on an empty bundle
        raise InputError("TSA certificate file holds no PEM certificate")
    return certificates


def decode_token(token: bytes) -> TimeStampResponse:
    """Parse a DER TimeStampResp (RFC 3161 section 2.4.2) holding a granted token.

    Precondition: none; VerificationError "timestamp token is malformed" when `token` does not
    parse, carries no token, or its status is not granted (PKIStatus 0).
    """
    try:
        response = decode_timestamp_response(bytes(token))
        status = response.status
        if status != PKIStatus.GRANTED:
            said = "; ".join(response.status_string) or "no reason given"
            raise VerificationError(f"{MALFORMED}: the TSA did not grant it (status {status}: {said})")
        info = response.tst_info
        _ = (info.gen_time, info.serial_number, info.message_imprint.message, response.signed_data)
    except ValueError as exc:
        raise VerificationError(f"{MALFORMED}: {exc}") from exc
    return response


def check_response(response: bytes, request: bytes) -> bytes:
    """Check a TSA's reply to `request` (RFC 3161 section 2.4.2) and return the token bytes to store.

    The reply must parse, have status granted, and echo the request's messageImprint and nonce
    (section 2.4.2: "the nonce MUST be the same"). This does not check the signature:
    `verify_timestamp` does. Precondition: `request` is a DER TimeStampReq this side made
    (`timestamp_request`). The token stored is the whole DER TimeStampResp, unchanged.
    """
    try:
        asked = parse_timestamp_request(bytes(request))
    except ValueError as exc:
        raise EncodingError(f"timestamp request is malformed: {exc}") from exc
    answer = decode_token(response)
    if answer.tst_info.message_imprint.message != asked.message_imprint.message:
        raise VerificationError(
            f"{ANOTHER_CHECKPOINT}: the TSA answered for another message imprint",
            expected=asked.message_imprint.message.hex(),
            calculated=answer.tst_info.message_imprint.message.hex(),
            labels=("requested", "token"),
        )
    if asked.nonce is not None and answer.tst_info.nonce != asked.nonce:
        raise VerificationError(
            "timestamp reply does not answer this request: its nonce differs",
            expected=str(asked.nonce),
            calculated=str(answer.tst_info.nonce),
            labels=("requested", "reply"),
        )
    return bytes(response)


def verify_timestamp(token: bytes, note_text: str, trusted: Sequence[TsaCertificate]) -> TrustedTime:
    """Verify a stored token for a checkpoint offline; what it says when it holds (RFC 3161 section 2.4.2).

    `token` is a DER TimeStampResp (as `check_response` returns it), `note_text` the checkpoint's
    note text, `trusted` the certificates the user trusts. The token must be signed (CMS
    SignedData, RFC 5652 section 5.6) by a certificate with the critical id-kp-timeStamping
    extended key usage (RFC 3161 section 2.3), valid at the token's genTime, that is one of
    `trusted` or chains to one of them; then its imprint must be SHA-256 of `note_text`.

    Each trusted certificate is either a trust anchor (a self-signed root CA, or a self-signed
    TSA certificate) or, when it is not self-signed, the TSA's own certificate pinned: the token
    must be signed by exactly that certificate, and must carry the certificate that issued it
    (OpenSSL, which checks the chain, takes only self-signed anchors).

    Preconditions: none on the bytes. Raises VerificationError "timestamp token is malformed",
    SignatureError "timestamp token is not signed by a trusted TSA", or VerificationError
    "timestamp token is for another checkpoint".
    """
    response = decode_token(token)
    if not trusted:
        raise SignatureError(f"{UNTRUSTED}: no TSA certificate is trusted")
    signer = _verified_signer(response, trusted)
    info = response.tst_info
    if info.message_imprint.hash_algorithm != SHA256_OID:
        raise VerificationError(
            f"{ANOTHER_CHECKPOINT}: its imprint is not SHA-256",
            expected=SHA256_OID.dotted_string,
            calculated=info.message_imprint.hash_algorithm.dotted_string,
            labels=("checkpoint imprint", "token imprint"),
        )
    expected = imprint(note_text)
    if info.message_imprint.message != expected:
        raise VerificationError(
            ANOTHER_CHECKPOINT,
            expected=expected.hex(),
            calculated=info.message_imprint.message.hex(),
            labels=("checkpoint imprint", "token imprint"),
        )
    return TrustedTime(
        tsa=signer.subject.rfc4514_string(),
        time=info.gen_time.astimezone(UTC),
        serial=info.serial_number,
    )


def _verified_signer(response: TimeStampResponse, trusted: Sequence[TsaCertificate]) -> TsaCertificate:
    """The certificate that signed the token, once rfc3161-client accepts it under one of `trusted`."""
    carried = _carried_certificates(response)
    reasons: list[str] = []
    for anchor in trusted:
        builder = VerifierBuilder()
        if _self_signed(anchor):
            builder = builder.add_root_certificate(anchor)
        else:
            issuer = next((cert for cert in carried if _issued_by(anchor, cert)), None)
            if issuer is None:
                reasons.append(f"{_name(anchor)}: the token does not carry the certificate that issued it")
                continue
            builder = builder.tsa_certificate(anchor).add_root_certificate(issuer)
        try:
            # The imprint is compared by the caller, with its own message; here the signature,
            # the chain, the signer's extended key usage and the status are checked.
            builder.build().verify(response, response.tst_info.message_imprint.message)
        except (rfc3161_client.VerificationError, ValueError) as exc:
            reasons.append(f"{_name(anchor)}: {exc}")
            continue
        return _signer_certificate(response, carried, anchor)
    raise SignatureError(
        f"{UNTRUSTED} ({'; '.join(reasons)})",
        expected=", ".join(_name(anchor) for anchor in trusted),
        calculated=", ".join(_name(cert) for cert in carried) or "no certificate",
        labels=("trusted", "token carries"),
    )


def _carried_certificates(response: TimeStampResponse) -> list[TsaCertificate]:
    """The certificates inside the token's SignedData (RFC 5652 section 5.1), in a stable order."""
    try:
        return sorted(
            (x509.load_der_x509_certificate(der) for der in response.signed_data.certificates),
            key=lambda cert: cert.fingerprint(hashes.SHA256()),
        )
    except ValueError as exc:
        raise VerificationError(f"{MALFORMED}: a certificate it carries does not parse: {exc}") from exc


def _signer_certificate(
    response: TimeStampResponse, carried: list[TsaCertificate], anchor: TsaCertificate
) -> TsaCertificate:
    """The carried certificate the SignerInfo names (issuer, serial: RFC 5652 section 5.3), else `anchor`."""
    infos = list(response.signed_data.signer_infos)
    for cert in carried:
        if any(cert.issuer == info.issuer and cert.serial_number == info.serial_number for info in infos):
            return cert
    return anchor  # pragma: no cover - rfc3161-client refuses a token whose signer it cannot find


def _self_signed(cert: TsaCertificate) -> bool:
    """Whether `cert` is issued by itself: its issuer is its subject and its own key verifies it."""
    return _issued_by(cert, cert)


def _issued_by(cert: TsaCertificate, issuer: TsaCertificate) -> bool:
    """Whether `issuer`'s key signed `cert` and names match (RFC 5280 section 6.1.3)."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _name(cert: TsaCertificate) -> str:
    """A certificate's subject, for messages."""
    return cert.subject.rfc4514_string() or f"certificate {cert.serial_number:x}"


__all__ = [
    "TrustedTime",
    "TsaCertificate",
    "check_response",
    "decode_token",
    "imprint",
    "load_tsa_certificates",
    "timestamp_request",
    "verify_timestamp",
]
