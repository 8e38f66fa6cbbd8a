"""The shared text encodings (`ledger.core.encoding`): what each accepts, and everything it refuses."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.compliance.evaluate import decode_result
from ledger.core.encoding import b64decode_lenient, hash_from_hex, json_holds_nul, json_nests_deeper_than
from ledger.core.entry import parse_entry
from ledger.errors import EncodingError
from ledger.records.admin import decode_admin_record
from ledger.records.sarif import decode_sarif
from ledger.records.statement import decode_statement

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


@given(st.recursive(st.text(), lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner)))
def test_json_holds_nul_exactly_when_a_decoded_string_does(value: object):
    """Against msgspec's own decoding: escaped backslashes before `u0000` are text, not NUL."""
    document = msgspec.json.encode(value)

    def strings(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [s for item in node for s in strings(item)]
        assert isinstance(node, dict)
        return [s for key, item in node.items() for s in [key, *strings(item)]]

    decoded = msgspec.json.decode(document)
    assert json_holds_nul(document) == any("\x00" in s for s in strings(decoded))


@pytest.mark.parametrize(
    ("document", "holds"),
    [
        (rb'{"a": "x\u0000"}', True),
        (rb'{"a": "x\\u0000"}', False),  # an escaped backslash, then the text u0000
        (rb'{"a": "x\\\u0000"}', True),  # an escaped backslash, then NUL
        (rb'{"a": "\\u0000 and \u0000"}', True),
        (b'{"a": "x\x00"}', True),  # raw, which JSON forbids anyway
        (rb'{"a": "u0000"}', False),
    ],
)
def test_json_holds_nul_on_hand_written_escapes(document: bytes, holds: bool):
    assert json_holds_nul(document) is holds


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    return 0


@given(
    st.recursive(
        st.text(alphabet='[]{}"\\ab'),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\ab'), inner),
        max_leaves=40,
    ),
    st.integers(min_value=0, max_value=8),
)
def test_json_nests_deeper_than_agrees_with_the_decoded_depth(value: object, limit: int):
    """Brackets inside strings (escaped quotes included) never count."""
    document = msgspec.json.encode(value)
    assert json_nests_deeper_than(document, limit) == (_depth(value) > limit)


def test_json_nests_deeper_than_at_the_limit():
    assert not json_nests_deeper_than(b"[" * 64 + b"]" * 64, 64)
    assert json_nests_deeper_than(b"[" * 65 + b"]" * 65, 64)
    assert not json_nests_deeper_than(b'["' + b"[" * 100 + b'"]', 64)  # in a string
    assert not json_nests_deeper_than(b'[{"a": "\\"[[[["}]' + b"[]" * 100, 3)  # many, but side by side


NOT_UTF8_STRINGS = {
    "invalid start byte": b"\xff",
    "truncated sequence": b"ok\xc3",
    "surrogate": b"\xed\xa0\x80",
    "overlong": b"\xc0\xaf",
}
# Each reader of untrusted JSON, with a document that is valid but for its string "MARK".
JSON_READERS = {
    "statement": (decode_statement, b'{"_type": "MARK", "subject": [], "predicateType": "t"}'),
    "admin record": (decode_admin_record, b'{"kind": "key.revoked", "keyid": "k", "reason": "MARK"}'),
    "SARIF log": (lambda data: decode_sarif(data, "report"), b'{"version": "MARK", "runs": []}'),
    "compliance result": (decode_result, b'{"status": "MARK"}'),
    "entry": (parse_entry, b'{"index": 0, "prev": "MARK"}'),
}


@pytest.mark.parametrize("string", NOT_UTF8_STRINGS.values(), ids=NOT_UTF8_STRINGS.keys())
@pytest.mark.parametrize("reader", JSON_READERS.values(), ids=JSON_READERS.keys())
def test_a_json_string_that_is_not_utf8_is_an_encoding_error(
    reader: tuple[Callable[[bytes], object], bytes], string: bytes
) -> None:
    """RFC 8259 §8.1: JSON text is UTF-8. msgspec raises UnicodeDecodeError, which must not escape."""
    read, document = reader
    with pytest.raises(UnicodeDecodeError):
        msgspec.json.decode(document.replace(b"MARK", string))
    with pytest.raises(EncodingError, match=r"(?i)utf-8"):
        read(document.replace(b"MARK", string))
