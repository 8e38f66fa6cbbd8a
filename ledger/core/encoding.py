"""Small text encodings shared by the formats of docs/formats.md: base64, hex, timestamps."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime

import msgspec

from ledger.core.hashing import HASH_SIZE
from ledger.errors import EncodingError

_STD_ALPHABET = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_URL_ALPHABET = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_RFC3339_MILLIS_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


def b64encode(data: bytes) -> str:
    """Standard base64 with padding (RFC 4648 §4)."""
    return base64.b64encode(data).decode("ascii")


def b64decode_strict(text: str, what: str = "value") -> bytes:
    """Decode canonical standard base64 with padding (RFC 4648 §4); anything else is an EncodingError.

    Canonical: unused trailing bits must be zero, so each value has exactly one spelling.
    """
    try:
        raw = base64.b64decode(text, validate=True) if _STD_ALPHABET.fullmatch(text) else None
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or base64.b64encode(raw).decode("ascii") != text:
        raise EncodingError(f"{what} is not canonical standard padded base64")
    return raw


def b64decode_lenient(text: str, what: str = "value") -> bytes:
    """Decode standard or URL-safe base64 (RFC 4648 §4/§5), padding optional, as DSSE allows."""
    try:
        # The common case, standard and padded, in C: what b64decode(validate=True) runs, minus its wrapper.
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        pass
    alphabet_ok = _STD_ALPHABET.fullmatch(text) or _URL_ALPHABET.fullmatch(text)
    if not alphabet_ok or len(text.rstrip("=")) % 4 == 1:
        raise EncodingError(f"{what} is not base64")
    padded = text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4)
    try:
        if "-" in padded or "_" in padded:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EncodingError(f"{what} is not base64") from exc


_NUL_ESCAPE = b"\\u0000"
# What msgspec raises for JSON it cannot read: besides DecodeError, RecursionError for a text nested
# past the interpreter's recursion limit, and UnicodeDecodeError for a string that is not UTF-8
# (RFC 8259 §8.1). Every decoder of untrusted JSON catches all three.
JSON_ERRORS = (msgspec.DecodeError, RecursionError, UnicodeDecodeError)
MAX_JSON_DEPTH = 64  # how deep a payload may nest arrays and objects (docs/formats.md#envelopes, admission)
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(rb"[\[\]{}]")


def json_holds_nul(document: bytes) -> bool:
    r"""Whether a JSON text holds U+0000, raw or as the escape `\u0000` (RFC 8259 §7).

    A backslash escapes the character after it, so an escaped backslash followed by
    `u0000` is six characters of text, not NUL: the escape counts only after an even
    run of backslashes. PostgreSQL can store U+0000 in neither text nor jsonb.
    """
    if b"\x00" in document:
        return True
    at = document.find(_NUL_ESCAPE)
    while at != -1:
        before = at
        while before > 0 and document[before - 1] == ord("\\"):
            before -= 1
        if (at - before) % 2 == 0:
            return True
        at = document.find(_NUL_ESCAPE, at + 1)
    return False


def json_nests_deeper_than(document: bytes, limit: int) -> bool:
    """Whether a JSON text nests arrays and objects more than `limit` levels deep, strings skipped.

    Precondition: `document` is well-formed JSON (an unbalanced text gives no useful answer).
    A text with at most `limit` opening brackets cannot, which settles nearly every payload at C speed.
    """
    if document.count(b"[") + document.count(b"{") <= limit:
        return False
    depth = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub(b"", document)):
        depth += 1 if bracket in b"[{" else -1
        if depth > limit:
            return True
    return False


def hash_from_hex(text: str, what: str = "hash") -> bytes:
    """Decode a 32-byte hash written as 64 lowercase hex digits.

    `bytes.fromhex` also reads upper case and spaces between bytes; writing the
    result back out and comparing refuses both (it is cheaper than a pattern).
    """
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != HASH_SIZE or raw.hex() != text:
        raise EncodingError(f"{what} must be 64 lowercase hex digits")
    return raw


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with millisecond precision and `Z` (docs/formats.md#entries); needs an aware datetime."""
    if moment.tzinfo is None:
        raise EncodingError("timestamps must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """Parse a timestamp written by `format_time`; other spellings are refused."""
    if not _RFC3339_MILLIS_UTC.fullmatch(text):
        raise EncodingError(f"time {text!r} is not RFC 3339 UTC with milliseconds and Z")
    try:
        return datetime.fromisoformat(text)  # the pattern above admits only what fromisoformat reads as UTC
    except ValueError as exc:
        raise EncodingError(f"time {text!r} is not a valid date and time") from exc
