"""RFC 3161 trusted time for checkpoints (ledger.verify.trusted_time, ledger.service.timestamping).

Every token here comes from a real authority: OpenSSL's `openssl ts -reply` behind HTTP
(tests/tsa_authority.py). Each negative test is named after the attack it stands for, and
`openssl ts -verify` (an implementation we did not write) cross-checks the verdicts.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from rfc3161_client import decode_timestamp_response
from tsa_authority import LocalTsa, local_tsa, needs_openssl, other_tsa

from ledger.core.checkpoint import Checkpoint
from ledger.core.keys import SignerKey
from ledger.core.note import parse_note, sign_note
from ledger.errors import EncodingError, InputError, SignatureError, UnavailableError, VerificationError
from ledger.service.timestamping import request_timestamp
from ledger.verify.trusted_time import (
    TrustedTime,
    check_response,
    imprint,
    load_tsa_certificates,
    timestamp_request,
    verify_timestamp,
)

__all__ = ["local_tsa", "other_tsa"]  # the fixtures, imported for pytest

pytestmark = needs_openssl

CHECKPOINT = Checkpoint("example.org/evidence-ledger", 7, bytes(range(32)), ("extension line",)).text()
ANOTHER_CHECKPOINT = Checkpoint("example.org/evidence-ledger", 8, bytes(range(1, 33))).text()


def _token(tsa: LocalTsa, text: str = CHECKPOINT) -> bytes:
    """A token from `tsa` for `text`, through the reply checks."""
    request = timestamp_request(text)
    return check_response(tsa.reply(request), request)


@pytest.fixture(scope="module")
def token(local_tsa: LocalTsa) -> bytes:
    return _token(local_tsa)


@pytest.fixture(scope="module")
def sibling_tsa(local_tsa: LocalTsa) -> Iterator[LocalTsa]:
    """Another TSA whose certificate the same CA as local_tsa's issued."""
    with LocalTsa("Sibling Test TSA", ca_from=local_tsa) as tsa:
        yield tsa


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _edit_positions(token: bytes, tsa: LocalTsa) -> dict[str, int]:
    """One byte in each part an attacker would want to change, found in the real token."""
    info = decode_timestamp_response(token).tst_info
    at_imprint = token.index(info.message_imprint.message)
    gen_time = info.gen_time.strftime("%Y%m%d%H%M%S").encode()  # GeneralizedTime, in the TSTInfo
    tsa_certificate = x509.load_pem_x509_certificate(tsa.tsa_cert_pem)
    at_certificate = token.index(tsa_certificate.public_bytes(Encoding.DER))
    point = tsa_certificate.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    positions = {
        "imprint": at_imprint + 5,
        "serial": token.index(b"\x02\x01" + bytes([info.serial_number]), at_imprint) + 2,  # after the imprint
        "gen_time": token.index(gen_time, at_imprint) + 11,  # a minute digit
        "signature": len(token) - 3,  # the SignerInfo's signature value ends the token
        "tsa_certificate_key": token.index(point, at_certificate) + 10,
    }
    assert len(set(positions.values())) == len(positions)
    return positions


def _openssl_verifies(token: bytes, text: str, ca: Path, tmp_path: Path, *extra: str) -> bool:
    """Whether `openssl ts -verify -data TEXT -in TOKEN -CAfile CA` accepts the token."""
    data = tmp_path / "checkpoint.txt"
    data.write_bytes(text.encode())
    reply = tmp_path / "token.tsr"
    reply.write_bytes(token)
    done = subprocess.run(  # noqa: S603 - fixed program and arguments
        ["openssl", "ts", "-verify", "-data", data, "-in", reply, "-CAfile", ca, *extra],  # noqa: S607
        capture_output=True,
        check=False,
    )
    return done.returncode == 0 and b"Verification: OK" in done.stdout


# --- tokens that hold -------------------------------------------------------------------------


@pytest.mark.parametrize("anchor", ["ca", "tsa_certificate"])
def test_token_for_the_checkpoint_verifies(local_tsa: LocalTsa, token: bytes, anchor: str) -> None:
    pem = local_tsa.ca_pem if anchor == "ca" else local_tsa.tsa_cert_pem
    trusted_time = verify_timestamp(token, CHECKPOINT, load_tsa_certificates(pem))
    assert isinstance(trusted_time, TrustedTime)
    assert abs(datetime.now(UTC) - trusted_time.time) < timedelta(seconds=60)
    assert trusted_time.time.tzinfo is not None
    assert trusted_time.tsa == "CN=Local Test TSA,O=evidence-ledger tests"
    assert trusted_time.serial > 0


def test_one_of_several_trusted_certificates_is_enough(
    local_tsa: LocalTsa, other_tsa: LocalTsa, token: bytes
) -> None:
    trusted = load_tsa_certificates(other_tsa.ca_pem + other_tsa.tsa_cert_pem + local_tsa.tsa_cert_pem)
    assert verify_timestamp(token, CHECKPOINT, trusted).tsa.startswith("CN=Local Test TSA")


def test_token_imprint_is_sha256_of_the_note_text(token: bytes) -> None:
    info = decode_timestamp_response(token).tst_info
    assert info.message_imprint.message == imprint(CHECKPOINT)
    assert info.message_imprint.hash_algorithm.dotted_string == "2.16.840.1.101.3.4.2.1"


def test_token_still_fits_after_cosignatures_are_added(local_tsa: LocalTsa, token: bytes) -> None:
    ledger_key = SignerKey.generate("example.org/evidence-ledger")
    witness = SignerKey.generate("witness.example")
    signed = sign_note(CHECKPOINT, [ledger_key])
    cosigned = sign_note(CHECKPOINT, [ledger_key, witness])
    for note in (signed, cosigned):
        assert verify_timestamp(token, parse_note(note).text, load_tsa_certificates(local_tsa.ca_pem))


def test_openssl_accepts_what_we_accept(local_tsa: LocalTsa, token: bytes, tmp_path: Path) -> None:
    assert _openssl_verifies(token, CHECKPOINT, local_tsa.ca_path, tmp_path)
    assert _openssl_verifies(token, CHECKPOINT, local_tsa.cert_path, tmp_path, "-partial_chain")


# --- attacks ----------------------------------------------------------------------------------


def test_token_of_another_checkpoint_replayed_is_refused(
    local_tsa: LocalTsa, token: bytes, tmp_path: Path
) -> None:
    with pytest.raises(VerificationError, match="timestamp token is for another checkpoint"):
        verify_timestamp(token, ANOTHER_CHECKPOINT, load_tsa_certificates(local_tsa.ca_pem))
    assert not _openssl_verifies(token, ANOTHER_CHECKPOINT, local_tsa.ca_path, tmp_path)


def test_token_from_an_untrusted_tsa_is_refused(
    local_tsa: LocalTsa, other_tsa: LocalTsa, tmp_path: Path
) -> None:
    forged = _token(other_tsa)
    for pem in (local_tsa.ca_pem, local_tsa.tsa_cert_pem, local_tsa.ca_pem + local_tsa.tsa_cert_pem):
        with pytest.raises(SignatureError, match="timestamp token is not signed by a trusted TSA"):
            verify_timestamp(forged, CHECKPOINT, load_tsa_certificates(pem))
    assert not _openssl_verifies(forged, CHECKPOINT, local_tsa.ca_path, tmp_path)
    assert verify_timestamp(forged, CHECKPOINT, load_tsa_certificates(other_tsa.ca_pem))  # it is a real token


def test_token_from_another_tsa_of_the_same_ca_is_refused_when_the_tsa_certificate_is_pinned(
    local_tsa: LocalTsa, sibling_tsa: LocalTsa
) -> None:
    sibling_token = _token(sibling_tsa)
    with pytest.raises(SignatureError, match="not signed by a trusted TSA"):
        verify_timestamp(sibling_token, CHECKPOINT, load_tsa_certificates(local_tsa.tsa_cert_pem))
    # Trusting the CA trusts every TSA it certifies.
    assert verify_timestamp(
        sibling_token, CHECKPOINT, load_tsa_certificates(local_tsa.ca_pem)
    ).tsa.startswith("CN=Sibling Test TSA")


def test_no_trusted_certificate_trusts_nothing(token: bytes) -> None:
    with pytest.raises(SignatureError, match="no TSA certificate is trusted"):
        verify_timestamp(token, CHECKPOINT, [])


@pytest.mark.parametrize("part", ["imprint", "gen_time", "serial", "signature", "tsa_certificate_key"])
def test_token_edited_by_one_byte_is_refused(
    local_tsa: LocalTsa, token: bytes, part: str, tmp_path: Path
) -> None:
    edited = _flip(token, _edit_positions(token, local_tsa)[part])
    trusted = load_tsa_certificates(local_tsa.ca_pem)
    with pytest.raises(VerificationError, match="timestamp token is"):
        verify_timestamp(edited, CHECKPOINT, trusted)
    assert not _openssl_verifies(edited, CHECKPOINT, local_tsa.ca_path, tmp_path)
    with pytest.raises(VerificationError, match="timestamp token is"):
        verify_timestamp(edited, CHECKPOINT, load_tsa_certificates(local_tsa.tsa_cert_pem))


def test_token_with_a_moved_gen_time_is_refused_as_unsigned(local_tsa: LocalTsa, token: bytes) -> None:
    edited = _flip(token, _edit_positions(token, local_tsa)["gen_time"])
    assert (
        decode_timestamp_response(edited).tst_info.gen_time
        != decode_timestamp_response(token).tst_info.gen_time
    )
    with pytest.raises(SignatureError, match="not signed by a trusted TSA"):
        verify_timestamp(edited, CHECKPOINT, load_tsa_certificates(local_tsa.ca_pem))


@pytest.mark.parametrize(
    "garbage",
    [b"", b"not a token", b"\x30\x03\x02\x01\x00", b"\x30\x80" + b"\x00" * 10],
    ids=["empty", "text", "status-only", "indefinite"],
)
def test_garbage_token_is_refused_clearly(local_tsa: LocalTsa, garbage: bytes) -> None:
    with pytest.raises(VerificationError, match="timestamp token is malformed"):
        verify_timestamp(garbage, CHECKPOINT, load_tsa_certificates(local_tsa.ca_pem))


def test_truncated_token_and_bare_timestamptoken_are_malformed(local_tsa: LocalTsa, token: bytes) -> None:
    bare = decode_timestamp_response(token).time_stamp_token()  # the ContentInfo alone, not a TimeStampResp
    for data in (token[:-1], token[: len(token) // 2], bare):
        with pytest.raises(VerificationError, match="timestamp token is malformed"):
            verify_timestamp(data, CHECKPOINT, load_tsa_certificates(local_tsa.ca_pem))


def test_reply_to_another_request_is_refused(local_tsa: LocalTsa) -> None:
    first, second = timestamp_request(CHECKPOINT), timestamp_request(CHECKPOINT)
    with pytest.raises(VerificationError, match="nonce differs"):
        check_response(local_tsa.reply(second), first)
    with pytest.raises(VerificationError, match="for another checkpoint"):
        check_response(local_tsa.reply(timestamp_request(ANOTHER_CHECKPOINT)), first)


def test_rejected_request_is_refused_with_the_tsa_reason(local_tsa: LocalTsa, tmp_path: Path) -> None:
    data = tmp_path / "checkpoint.txt"
    data.write_bytes(CHECKPOINT.encode())
    sha1_query = subprocess.run(  # noqa: S603 - fixed program and arguments
        ["openssl", "ts", "-query", "-data", data, "-sha1", "-cert"],  # noqa: S607
        capture_output=True,
        check=True,
    ).stdout
    rejection = local_tsa.reply(sha1_query)  # the TSA accepts only SHA-2 imprints
    with pytest.raises(VerificationError, match=r"did not grant it \(status 2: .*not supported"):
        check_response(rejection, timestamp_request(CHECKPOINT))
    with pytest.raises(VerificationError, match="timestamp token is malformed"):
        verify_timestamp(rejection, CHECKPOINT, load_tsa_certificates(local_tsa.ca_pem))


def test_reply_without_nonce_checks_imprint_only(local_tsa: LocalTsa) -> None:
    request = timestamp_request(CHECKPOINT, nonce=False)
    token = check_response(local_tsa.reply(request), request)
    assert decode_timestamp_response(token).tst_info.nonce is None
    assert verify_timestamp(token, CHECKPOINT, load_tsa_certificates(local_tsa.ca_pem))


def test_malformed_request_is_an_encoding_error(token: bytes) -> None:
    with pytest.raises(EncodingError, match="timestamp request is malformed"):
        check_response(token, b"not a request")


def test_request_asks_for_the_certificate_and_a_nonce() -> None:
    from rfc3161_client._rust import parse_timestamp_request  # noqa: PLC0415

    request = parse_timestamp_request(timestamp_request(CHECKPOINT))
    assert request.cert_req
    assert request.nonce is not None
    assert request.message_imprint.message == imprint(CHECKPOINT)
    with pytest.raises(InputError):
        timestamp_request("")


@pytest.mark.parametrize(
    "pem", [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"]
)
def test_garbage_certificate_file_is_refused(pem: bytes) -> None:
    with pytest.raises(InputError, match="TSA certificate file"):
        load_tsa_certificates(pem)


# --- over HTTP --------------------------------------------------------------------------------


def _request(url: str, trusted_pem: bytes, text: str = CHECKPOINT) -> bytes:
    async def scenario() -> bytes:
        async with httpx.AsyncClient(timeout=10) as http:
            return await request_timestamp(http, url, text, load_tsa_certificates(trusted_pem))

    return asyncio.run(scenario())


def test_request_timestamp_from_the_local_tsa(local_tsa: LocalTsa) -> None:
    token = _request(local_tsa.url, local_tsa.tsa_cert_pem)
    assert verify_timestamp(token, CHECKPOINT, load_tsa_certificates(local_tsa.ca_pem)).time <= datetime.now(
        UTC
    )


def test_tsa_that_stamps_another_imprint_is_refused(local_tsa: LocalTsa) -> None:
    with LocalTsa("Lying TSA", mode="wrong_imprint", ca_from=local_tsa) as liar:
        with pytest.raises(VerificationError, match="timestamp token is for another checkpoint"):
            _request(liar.url, local_tsa.ca_pem)
        assert liar.reply(timestamp_request(CHECKPOINT))  # its replies are well-formed tokens all the same


def test_tsa_not_trusted_is_refused_over_http(local_tsa: LocalTsa, other_tsa: LocalTsa) -> None:
    with pytest.raises(SignatureError, match="not signed by a trusted TSA"):
        _request(other_tsa.url, local_tsa.ca_pem)


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        ("http_500", UnavailableError, "answered HTTP 500"),
        ("garbage", VerificationError, "timestamp token is malformed"),
        ("wrong_type", VerificationError, "did not answer a timestamp reply"),
    ],
)
def test_tsa_that_answers_wrongly_is_refused(mode: str, error: type[Exception], message: str) -> None:
    with LocalTsa(mode=mode) as tsa, pytest.raises(error, match=message):  # type: ignore[arg-type]
        _request(tsa.url, tsa.ca_pem)


def test_unreachable_tsa_is_unavailable(local_tsa: LocalTsa) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UnavailableError, match="unreachable"):
        _request(f"http://127.0.0.1:{port}/tsa", local_tsa.ca_pem)
