"""The shared text encodings (`ledger.core.encoding`): what each accepts, and everything it refuses."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core.encoding import b64decode_lenient, hash_from_hex
from ledger.errors import EncodingError

DIGEST = hashlib.sha256(b"x").digest()


def test_hash_from_hex_reads_64_lowercase_hex_digits():
    assert hash_from_hex(DIGEST.hex()) == DIGEST


@pytest.mark.parametrize(
    "text",
    [
        DIGEST.hex().upper(),  # upper case
        DIGEST.hex()[:-2],  # 31 bytes
        DIGEST.hex() + "00",  # 33 bytes
        DIGEST.hex()[:-1] + "g",  # not hex
        DIGEST.hex()[:2] + " " + DIGEST.hex()[2:-1],  # whitespace, still 64 characters
        " " + DIGEST.hex(),
        DIGEST.hex() + "\n",
        "",
        "é" * 64,
    ],
)
def test_hash_from_hex_refuses_every_other_spelling(text: str):
    with pytest.raises(EncodingError, match="must be 64 lowercase hex digits"):
        hash_from_hex(text, "prev")


@given(st.binary(max_size=80))
def test_b64decode_lenient_reads_all_four_spellings(data: bytes):
    standard = base64.b64encode(data).decode()
    url = base64.urlsafe_b64encode(data).decode()
    for text in (standard, standard.rstrip("="), url, url.rstrip("=")):
        assert b64decode_lenient(text) == data


@pytest.mark.parametrize(
    "text",
    ["A", "AAAAA", "AB$D", "AB D", "AB\nCD", "ABC=D", "+/-_", "é" * 4, "AA==="],
)
def test_b64decode_lenient_refuses_what_is_not_base64(text: str):
    with pytest.raises(EncodingError, match="payload is not base64"):
        b64decode_lenient(text, "payload")
