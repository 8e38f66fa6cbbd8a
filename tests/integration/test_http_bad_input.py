"""Every bad request gets its documented status, the `{"status","error","detail"}` body, and writes nothing.

One ledger serves the module, with tokens for each role and five signing keys:
`appender` and `second` (registered, any product, in that order), `product_b`
(registered for product B only), `revoked` (registered, then revoked) and
`stranger` (never registered). Every response of the module is recorded; the
last test checks that none of them was a 500 or leaked a traceback.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import pytest
from ledger_harness import Ledger, evidence, register, revoke, statement, to_json, token
from litestar.testing import TestClient
from service_support import bearer, check_error, nothing_written, scratch_ledger, service, written

from ledger.core.dsse import (
    ADMIN_PAYLOAD_TYPE,
    INTOTO_PAYLOAD_TYPE,
    MAX_KEYLESS_SIGNATURES,
    Envelope,
    Signature,
    sign_envelope,
)
from ledger.core.entry import parse_entry
from ledger.core.keys import SignerKey
from ledger.records.admin import KeyRegistered, KeyRevoked, encode_admin_record

MAX_ENTRY = 65_535
_numbers = itertools.count(1_000)


@dataclass
class Api:
    """The module's service, ledger, tokens, keys, and every response seen."""

    client: TestClient  # type: ignore[type-arg]
    ledger: Ledger
    tokens: dict[str, str]
    keys: dict[str, SignerKey]
    responses: list[tuple[str, str, int, str]] = field(default_factory=list)

    def request(self, method: str, path: str, *, as_: str | None = "admin", **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if as_ is not None:
            headers.update(bearer(self.tokens[as_]))
        response = self.client.request(method, path, headers=headers, **kwargs)
        self.responses.append((method, path, response.status_code, response.text))
        return response

    def post(self, path: str, body: bytes | object, **kwargs: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else msgspec.json.encode(body)
        return self.request("POST", path, content=content, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def refused(self, method: str, path: str, status: int, **kwargs: Any) -> dict[str, object]:
        """The request is refused with `status` in the error shape, and nothing is written."""
        with nothing_written(self.ledger.dsn):
            response = self.request(method, path, **kwargs)
        return check_error(response, status)

    def refused_post(self, path: str, body: bytes | object, status: int, **kwargs: Any) -> dict[str, object]:
        content = body if isinstance(body, bytes) else msgspec.json.encode(body)
        return self.refused("POST", path, status, content=content, **kwargs)

    @property
    def size(self) -> int:
        return written(self.ledger.dsn)[0]


@pytest.fixture(scope="module")
def api(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("bad-input")) as ledger:
        tokens = {
            "admin": token(ledger.dsn, "admin"),
            "appender": token(ledger.dsn, "appender"),
            "appender_a": token(ledger.dsn, "appender", ["A"]),
            "auditor": token(ledger.dsn, "auditor"),
        }
        keys = {
            "appender": SignerKey.generate("appender.test/ci"),
            "revoked": SignerKey.generate("revoked.test/ci"),
            "stranger": SignerKey.generate("stranger.test/ci"),
            "second": SignerKey.generate("second.test/ci"),
            "product_b": SignerKey.generate("product-b.test/ci"),
        }
        with service(ledger) as client:
            api = Api(client, ledger, tokens, keys)
            setup = [
                register(ledger.signer, keys["appender"], ["appender"]),
                register(ledger.signer, keys["revoked"], ["appender"]),
                register(ledger.signer, keys["second"], ["appender"]),
                register(ledger.signer, keys["product_b"], ["appender"], ["B"]),
            ]
            assert api.post("/v1/entries/batch", {"envelopes": setup}).status_code == 201
            assert api.post("/v1/entries", revoke(ledger.signer, keys["revoked"].keyid)).status_code == 201
            assert api.post("/v1/entries", good(api)).status_code == 201
            yield api


def good(api: Api, product: str | None = "prod", signer: str = "appender") -> Envelope:
    """A valid evidence envelope no other test uses."""
    return evidence(api.keys[signer], product=product, n=next(_numbers))


def as_dict(envelope: Envelope) -> dict[str, Any]:
    return msgspec.to_builtins(envelope)  # type: ignore[no-any-return]


def signed(api: Api, payload_type: str, payload: bytes, signer: str = "appender") -> Envelope:
    return sign_envelope(payload_type, payload, [api.keys[signer]])


def statement_dict(n: int) -> dict[str, Any]:
    return msgspec.json.decode(statement(n=n))  # type: ignore[no-any-return]


# --- 400: malformed JSON, wrong shapes ---------------------------------------------------------

MALFORMED_JSON = {
    "truncated": b'{"payload": "aGk=", "payloadType"',
    "not_json": b"this is not json",
    "empty_body": b"",
    "invalid_utf8_in_envelope": b'{"payload": "\xff\xfe"}',
    "invalid_utf8_in_batch": b'{"envelopes": [{"payload": "\xff\xfe"}]}',
    "trailing_garbage": b'{"payload":"aGk=","payloadType":"t","signatures":[]} trailing',
    "trailing_comma": b'{"payload":"aGk=",}',
}


@pytest.mark.parametrize("body", MALFORMED_JSON.values(), ids=MALFORMED_JSON.keys())
@pytest.mark.parametrize("path", ["/v1/entries", "/v1/entries/batch"])
def test_attack_malformed_json_is_400(api: Api, path: str, body: bytes) -> None:
    api.refused_post(path, body, 400)


def _without_payload_type(envelope: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in envelope.items() if k != "payloadType"}


def _first_sig(envelope: dict[str, Any]) -> dict[str, Any]:
    return envelope["signatures"][0]  # type: ignore[no-any-return]


# Each turns a valid envelope (as a dict) into a body of the wrong shape.
WRONG_SHAPE_BUILDERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "array": lambda e: [e],
    "string": lambda _: "envelope",
    "null": lambda _: None,
    "payload_int": lambda e: {**e, "payload": 42},
    "payload_type_missing": _without_payload_type,
    "payload_type_snake_case": lambda e: {**_without_payload_type(e), "payload_type": INTOTO_PAYLOAD_TYPE},
    "signatures_object": lambda e: {**e, "signatures": {"keyid": "x", "sig": "aGk="}},
    "keyid_int": lambda e: {**e, "signatures": [{"keyid": 7, "sig": _first_sig(e)["sig"]}]},
    "keyid_null": lambda e: {**e, "signatures": [{"keyid": None, "sig": _first_sig(e)["sig"]}]},
    "sig_missing": lambda e: {**e, "signatures": [{"keyid": _first_sig(e)["keyid"]}]},
}
WRONG_SHAPES = list(WRONG_SHAPE_BUILDERS)


def _mutated(api: Api, change: str) -> object:
    return WRONG_SHAPE_BUILDERS[change](as_dict(good(api)))


@pytest.mark.parametrize("change", WRONG_SHAPES)
def test_attack_envelope_of_wrong_types_is_400(api: Api, change: str) -> None:
    api.refused_post("/v1/entries", _mutated(api, change), 400)


@pytest.mark.parametrize("change", WRONG_SHAPES)
def test_attack_batch_holding_a_wrongly_shaped_envelope_is_400(api: Api, change: str) -> None:
    envelopes = [as_dict(good(api)), _mutated(api, change), as_dict(good(api))]
    api.refused_post("/v1/entries/batch", {"envelopes": envelopes}, 400)


# --- 201: what the DSSE and in-toto specs say a consumer must accept (issue #12) -----------------


def stored_envelope(api: Api, receipt: dict[str, Any]) -> tuple[Envelope, bytes]:
    """The envelope of the entry a receipt names, as stored, and the entry's exact bytes."""
    view = api.get(f"/v1/entries/{receipt['index']}").json()
    data = base64.b64decode(view["entry"])
    return parse_entry(data).envelope, data


def _keyless(envelope: Envelope) -> Envelope:
    return Envelope(
        envelope.payload, envelope.payload_type, [Signature(sig=s.sig) for s in envelope.signatures]
    )


def test_unknown_envelope_and_signature_fields_are_accepted_and_not_stored(api: Api) -> None:
    # DSSE: unknown fields are ignored. No signature covers them, so the entry does not keep them.
    envelope = good(api)
    body = {**as_dict(envelope), "extra": "smuggled"}
    body["signatures"] = [{**_first_sig(body), "cert": "-----BEGIN CERTIFICATE-----"}]
    response = api.post("/v1/entries", body)
    assert response.status_code == 201, response.text
    stored, data = stored_envelope(api, response.json())
    assert stored == envelope
    assert b"smuggled" not in data
    assert b"CERTIFICATE" not in data


def test_batch_of_envelopes_with_unknown_fields_is_accepted(api: Api) -> None:
    envelopes = [as_dict(good(api)), {**as_dict(good(api)), "x-relay": {"hop": 1}}]
    response = api.post("/v1/entries/batch", {"envelopes": envelopes})
    assert response.status_code == 201, response.text
    assert b"x-relay" not in stored_envelope(api, response.json()["receipts"][1])[1]


def test_statement_with_unknown_fields_is_accepted_and_kept_byte_for_byte(api: Api) -> None:
    # in-toto: consumers MUST ignore unknown fields. The payload is stored exactly as signed.
    payload = _statement_with(**{"https://example.org/ext/v1": {"note": "x"}, "_comment": [1, 2]})
    envelope = signed(api, INTOTO_PAYLOAD_TYPE, payload)
    response = api.post("/v1/entries", envelope)
    assert response.status_code == 201, response.text
    stored, _ = stored_envelope(api, response.json())
    assert base64.b64decode(stored.payload) == payload


@pytest.mark.parametrize("keyid", [None, ""], ids=["keyid_absent", "keyid_empty"])
def test_signature_without_keyid_is_accepted_and_stored_naming_its_key(api: Api, keyid: str | None) -> None:
    envelope = good(api)
    body = as_dict(envelope)
    body["signatures"] = [{"sig": _first_sig(body)["sig"]} | ({} if keyid is None else {"keyid": keyid})]
    response = api.post("/v1/entries", body)
    assert response.status_code == 201, response.text
    stored, _ = stored_envelope(api, response.json())
    assert stored == envelope  # the appender key, named
    assert stored.signatures[0].keyid == api.keys["appender"].keyid


def test_keyless_signature_is_named_by_the_registered_key_that_verifies_it(api: Api) -> None:
    # `appender` is registered before `second` and is tried first: it does not verify, `second` does.
    envelope = good(api, signer="second")
    response = api.post("/v1/entries", _keyless(envelope))
    assert response.status_code == 201, response.text
    stored, _ = stored_envelope(api, response.json())
    assert [s.keyid for s in stored.signatures] == [api.keys["second"].keyid]
    assert stored == envelope


def test_keyless_signature_by_a_key_for_its_product_is_accepted(api: Api) -> None:
    response = api.post("/v1/entries", _keyless(good(api, product="B", signer="product_b")))
    assert response.status_code == 201, response.text
    stored, _ = stored_envelope(api, response.json())
    assert [s.keyid for s in stored.signatures] == [api.keys["product_b"].keyid]


def _over_the_keyless_cap(api: Api) -> Envelope:
    envelope = good(api)
    return _keyless(
        Envelope(envelope.payload, envelope.payload_type, envelope.signatures * (MAX_KEYLESS_SIGNATURES + 1))
    )


def test_keyless_signatures_up_to_the_cap_are_accepted_and_past_it_refused(api: Api) -> None:
    envelope = good(api)
    at_cap = Envelope(envelope.payload, envelope.payload_type, envelope.signatures * MAX_KEYLESS_SIGNATURES)
    assert api.post("/v1/entries", _keyless(at_cap)).status_code == 201
    body = api.refused_post("/v1/entries", _over_the_keyless_cap(api), 422)
    assert f"at most {MAX_KEYLESS_SIGNATURES} signatures without a keyid" in str(body["detail"])


BATCH_SHAPES = {
    "envelopes_object": {"envelopes": {}},
    "envelopes_missing": {},
    "bare_array": [],
    "empty_batch": {"envelopes": []},
}


@pytest.mark.parametrize("body", BATCH_SHAPES.values(), ids=BATCH_SHAPES.keys())
def test_attack_batch_of_wrong_shape_is_400(api: Api, body: object) -> None:
    api.refused_post("/v1/entries/batch", body, 400)


def test_attack_batch_with_unknown_top_level_field_is_400(api: Api) -> None:
    api.refused_post("/v1/entries/batch", {"envelopes": [good(api)], "priority": "high"}, 400)


NOT_BASE64 = {
    "payload_punctuation": ("payload", "!!!not base64!!!"),
    "payload_impossible_length": ("payload", "abcde"),
    "payload_inner_space": ("payload", "aGVs bG8="),
    "sig_punctuation": ("sig", "***"),
    "sig_mixed_alphabets": ("sig", "ab+-cd/_"),
}


@pytest.mark.parametrize(("field_name", "value"), NOT_BASE64.values(), ids=NOT_BASE64.keys())
def test_attack_payload_or_sig_not_base64_is_400(api: Api, field_name: str, value: str) -> None:
    envelope = as_dict(good(api))
    if field_name == "payload":
        envelope["payload"] = value
    else:
        envelope["signatures"][0]["sig"] = value
    api.refused_post("/v1/entries", envelope, 400)
    api.refused_post("/v1/entries/batch", {"envelopes": [as_dict(good(api)), envelope]}, 400)


def test_attack_envelope_without_signatures_is_400(api: Api) -> None:
    envelope = {**as_dict(good(api)), "signatures": []}
    api.refused_post("/v1/entries", envelope, 400)
    api.refused_post("/v1/entries/batch", {"envelopes": [as_dict(good(api)), envelope]}, 400)


def test_attack_idempotency_key_too_long_is_400(api: Api) -> None:
    api.refused_post("/v1/entries", good(api), 400, headers={"Idempotency-Key": "k" * 201})


# --- 413: size limits ---------------------------------------------------------------------------


def test_attack_body_over_the_entry_limit_is_413(api: Api) -> None:
    envelope = {**as_dict(good(api)), "payload": "A" * 70_000}
    api.refused_post("/v1/entries", envelope, 413)


def test_attack_multi_megabyte_body_is_413(api: Api) -> None:
    api.refused_post("/v1/entries", b'{"payload":"' + b"A" * 6_000_000 + b'"}', 413)


@pytest.mark.parametrize("path", ["/v1/entries", "/v1/gates/evaluate"])
def test_a_413_closes_the_connection_and_says_so(api: Api, path: str) -> None:
    # The body was not read to its end: a client must not send its next request on this connection.
    response = api.post(path, b"x" * 6_000_000)
    assert response.status_code == 413
    assert response.headers["connection"] == "close"


class RawPost:
    """POST `total` bytes in chunks straight into an ASGI app, counting how many bytes it pulls."""

    def __init__(self, headers: list[tuple[bytes, bytes]], total: int, chunk: int) -> None:
        self.headers, self.total, self.chunk = headers, total, chunk
        self.pulled = 0
        self.messages: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if self.pulled >= self.total:
            await asyncio.sleep(3600)  # nothing more will come; an app that waits here times out below
        self.pulled += self.chunk
        return {"type": "http.request", "body": b"A" * self.chunk, "more_body": self.pulled < self.total}

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    async def run(self, app: Any, path: str) -> tuple[int, str]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": self.headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": {},
        }
        await asyncio.wait_for(app(scope, self.receive, self.send), timeout=30)
        start = next(m for m in self.messages if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in self.messages if m["type"] == "http.response.body")
        return start["status"], body.decode()


def test_attack_multi_megabyte_body_is_refused_before_it_is_read(api: Api) -> None:
    total, chunk = 8 * 1024 * 1024, 16 * 1024
    auth = [
        (b"authorization", f"Bearer {api.tokens['admin']}".encode()),
        (b"content-type", b"application/json"),
    ]

    outcomes = {}
    for how in ("declared", "chunked"):
        headers = [*auth, (b"content-length", str(total).encode())] if how == "declared" else auth
        post = RawPost(headers, total, chunk)
        # Straight into the running app, on the event loop its lifespan (pool, sequencer) lives on.
        with nothing_written(api.ledger.dsn):
            status, text = api.client.blocking_portal.call(post.run, api.client.app, "/v1/entries")
        api.responses.append(("POST", f"/v1/entries (raw ASGI, {how})", status, text))
        outcomes[how] = (status, post.pulled)
    for how, (status, pulled) in outcomes.items():
        assert status == 413, how
        # Refused once the limit is passed: at most one chunk beyond 65,535 bytes, never the 8 MiB.
        assert pulled <= MAX_ENTRY + chunk, (how, pulled)
    assert outcomes["declared"][1] == 0  # a declared Content-Length over the limit: refused unread


def test_attack_batch_of_1001_envelopes_is_413(api: Api) -> None:
    envelope = good(api)
    api.refused_post("/v1/entries/batch", {"envelopes": [envelope] * 1001}, 413)


def test_attack_envelope_within_body_limit_whose_entry_exceeds_65535_bytes_is_413(api: Api) -> None:
    # The entry wraps the envelope with index, prev, time and links: a body just under the limit overflows.
    blob = 47_000
    while True:
        envelope = evidence(api.keys["appender"], n=next(_numbers), blob="x" * blob)
        size = len(to_json(envelope))
        if size > MAX_ENTRY - 40:
            break
        blob += (MAX_ENTRY - 20 - size) * 3 // 4 or 1
    assert MAX_ENTRY - 40 < size <= MAX_ENTRY
    api.refused_post("/v1/entries", envelope, 413)


# --- 422: content and signatures ----------------------------------------------------------------


def _statement_with(**changes: object) -> bytes:
    return msgspec.json.encode({**statement_dict(next(_numbers)), **changes})


def _release_not_an_object() -> bytes:
    body = statement_dict(next(_numbers))
    return msgspec.json.encode({**body, "predicate": {**body["predicate"], "release": "prod-1.0"}})


# (payloadType, payload) pairs that are well-formed envelopes around content the ledger must refuse.
CONTENT_BUILDERS: dict[str, Callable[[], tuple[str, bytes]]] = {
    "not_a_statement": lambda: (INTOTO_PAYLOAD_TYPE, b'{"hello": "world"}'),
    "payload_not_json": lambda: (INTOTO_PAYLOAD_TYPE, b"hello world"),
    "empty_payload": lambda: (INTOTO_PAYLOAD_TYPE, b""),
    "wrong_payload_type": lambda: ("text/plain", statement(n=next(_numbers))),
    "statement_without_subjects": lambda: (INTOTO_PAYLOAD_TYPE, _statement_with(subject=[])),
    "subject_without_digest": lambda: (INTOTO_PAYLOAD_TYPE, _statement_with(subject=[{"name": "a"}])),
    "wrong_statement_type": lambda: (INTOTO_PAYLOAD_TYPE, _statement_with(_type="https://x/Statement/v0")),
    "release_not_an_object": lambda: (INTOTO_PAYLOAD_TYPE, _release_not_an_object()),
    "unknown_admin_kind": lambda: (ADMIN_PAYLOAD_TYPE, b'{"kind": "key.exploded"}'),
    # A typo under our own namespace would be generic evidence forever (issue #12).
    "typo_in_our_predicate_type": lambda: (
        INTOTO_PAYLOAD_TYPE,
        _statement_with(predicateType="https://evledger.dev/aproval/v1"),
    ),
    # U+0000 cannot be stored in a PostgreSQL text column: refused at admission, not by a failed batch.
    "nul_in_product": lambda: (INTOTO_PAYLOAD_TYPE, statement(product="pro\x00d", n=next(_numbers))),
    "nul_in_version": lambda: (INTOTO_PAYLOAD_TYPE, statement(version="1.0\x00", n=next(_numbers))),
    "nul_in_predicate_type": lambda: (INTOTO_PAYLOAD_TYPE, _statement_with(predicateType="https://x/\x00")),
    "nul_in_subject_digest": lambda: (
        INTOTO_PAYLOAD_TYPE,
        _statement_with(subject=[{"name": "a", "digest": {"sha256": "ab\x00"}}]),
    ),
    # Past the limits that keep index rows under PostgreSQL's 2,704 bytes (statement.MAX_*).
    "product_too_long": lambda: (INTOTO_PAYLOAD_TYPE, statement(product="p" * 257, n=next(_numbers))),
    "version_too_long": lambda: (INTOTO_PAYLOAD_TYPE, statement(version="1" * 257, n=next(_numbers))),
    "predicate_type_too_long": lambda: (
        INTOTO_PAYLOAD_TYPE,
        _statement_with(predicateType="https://x/" + "a" * 503),
    ),
    "digest_value_too_long": lambda: (
        INTOTO_PAYLOAD_TYPE,
        _statement_with(subject=[{"name": "a", "digest": {"sha256": secrets.token_hex(257)}}]),
    ),
}
CONTENT_CASES = list(CONTENT_BUILDERS)


def _content_case(api: Api, case: str) -> Envelope:
    payload_type, payload = CONTENT_BUILDERS[case]()
    return signed(api, payload_type, payload)


@pytest.mark.parametrize("case", CONTENT_CASES)
def test_attack_payload_that_is_not_a_statement_or_admin_record_is_422(api: Api, case: str) -> None:
    body = api.refused_post("/v1/entries", _content_case(api, case), 422)
    assert "database cannot store" not in str(body["detail"])  # admission refused it, not PostgreSQL


def test_attack_admin_record_with_unknown_field_is_422(api: Api) -> None:
    record = msgspec.json.decode(encode_admin_record(KeyRevoked(api.keys["appender"].keyid, "r")))
    payload = msgspec.json.encode({**record, "force": True})
    api.refused_post("/v1/entries", sign_envelope(ADMIN_PAYLOAD_TYPE, payload, [api.ledger.signer]), 422)


def test_attack_admin_record_with_nul_in_a_registered_field_is_422(api: Api) -> None:
    key = SignerKey.generate("nul.test/ci")
    record = KeyRegistered(key.verifier().format(), "mallory\x00", ["appender"], ["prod\x00"])
    envelope = sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(record), [api.ledger.signer])
    body = api.refused_post("/v1/entries", envelope, 422)
    assert "U+0000" in str(body["detail"])  # admission refused it, not PostgreSQL


def test_envelope_refused_for_nul_does_not_fail_the_others_of_its_batch(api: Api) -> None:
    """All or nothing per request: the refusal is the bad request's own, at admission."""
    bad = signed(api, INTOTO_PAYLOAD_TYPE, statement(product="\x00", n=next(_numbers)))
    api.refused_post("/v1/entries/batch", {"envelopes": [good(api), bad]}, 422)
    assert api.post("/v1/entries/batch", {"envelopes": [good(api), good(api)]}).status_code == 201


def _nested(levels: int) -> bytes:
    """A statement whose predicate nests arrays so that the whole payload is `levels` deep."""
    body = statement_dict(next(_numbers))
    deep: object = []
    for _ in range(levels - 3):  # the statement and its predicate are two levels, the innermost list one
        deep = [deep]
    return msgspec.json.encode({**body, "predicate": {**body["predicate"], "notes": deep}})


def test_payload_nested_64_deep_is_admitted_and_65_deep_is_422(api: Api) -> None:
    assert api.post("/v1/entries", signed(api, INTOTO_PAYLOAD_TYPE, _nested(64))).status_code == 201
    body = api.refused_post("/v1/entries", signed(api, INTOTO_PAYLOAD_TYPE, _nested(65)), 422)
    assert "64 levels" in str(body["detail"])


def _not_utf8(document: bytes, byte_string: bytes = b"\xff") -> bytes:
    """`document` with its string "MARK" spelled in bytes that are not UTF-8: valid JSON syntax otherwise."""
    assert document.count(b"MARK") == 1
    return document.replace(b"MARK", byte_string)


# Well-formed JSON around a string that is not UTF-8 (RFC 8259 §8.1): msgspec raises UnicodeDecodeError.
# The signed ones would be admitted but for that string; the unsigned ones fail before any signature check.
NOT_UTF8_PAYLOADS: dict[str, Callable[[Api], Envelope]] = {
    "in_toto_signed": lambda api: signed(
        api, INTOTO_PAYLOAD_TYPE, _not_utf8(statement(n=next(_numbers), note="MARK"))
    ),
    "in_toto_truncated_sequence": lambda api: signed(
        api, INTOTO_PAYLOAD_TYPE, _not_utf8(statement(n=next(_numbers), note="MARK"), b"ok\xc3")
    ),
    "in_toto_unsigned": lambda api: signed(
        api, INTOTO_PAYLOAD_TYPE, _not_utf8(statement(n=next(_numbers), note="MARK")), signer="stranger"
    ),
    "admin_signed": lambda api: sign_envelope(
        ADMIN_PAYLOAD_TYPE,
        _not_utf8(encode_admin_record(KeyRevoked(api.keys["revoked"].keyid, "MARK")), b"\xed\xa0\x80"),
        [api.ledger.signer],
    ),
    "admin_unsigned": lambda api: signed(
        api, ADMIN_PAYLOAD_TYPE, _not_utf8(b'{"kind": "MARK"}'), signer="stranger"
    ),
}


@pytest.mark.parametrize("case", NOT_UTF8_PAYLOADS)
def test_attack_payload_with_a_string_that_is_not_utf8_is_422_not_500(api: Api, case: str) -> None:
    envelope = NOT_UTF8_PAYLOADS[case](api)
    body = api.refused_post("/v1/entries", envelope, 422)
    assert "utf-8" in str(body["detail"]).lower()
    body = api.refused_post("/v1/entries/batch", {"envelopes": [good(api), envelope, good(api)]}, 422)
    assert "utf-8" in str(body["detail"]).lower()


def test_attack_payload_nested_past_the_recursion_limit_is_422_not_500(api: Api) -> None:
    payload = b'{"_type": "https://in-toto.io/Statement/v1", "predicate": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    api.refused_post("/v1/entries", signed(api, INTOTO_PAYLOAD_TYPE, payload), 422)
    admin = b'{"kind": "key.revoked", "keyid": "k", "reason": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    api.refused_post("/v1/entries", sign_envelope(ADMIN_PAYLOAD_TYPE, admin, [api.ledger.signer]), 422)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/entries", b'{"payload": "e30=", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        ("/v1/entries/batch", b'{"envelopes": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        ("/v1/gates/evaluate", b'{"product": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    ],
    ids=["entry", "batch", "gate"],
)
def test_attack_body_nested_past_the_recursion_limit_is_400_not_500(api: Api, path: str, body: bytes) -> None:
    api.refused_post(path, body, 400)


def test_longest_names_the_ledger_admits_are_stored_and_indexed(api: Api) -> None:
    """At the limits, in 4-byte characters, every index row still fits (btree: 2,704 bytes)."""
    wide = "𝄞"
    payload = msgspec.json.encode(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "a", "digest": {wide * 64: wide * 512}}],
            "predicateType": "https://x/" + wide * 502,
            "predicate": {"release": {"product": wide * 256, "version": wide * 256}},
        }
    )
    before = api.size
    response = api.post("/v1/entries", signed(api, INTOTO_PAYLOAD_TYPE, payload))
    assert response.status_code == 201, response.text
    assert api.size == before + 1
    key = SignerKey.generate("k" * 256)
    registered = api.post("/v1/entries", register(api.ledger.signer, key, ["appender"], ["prod"]))
    assert registered.status_code == 201, registered.text
    assert api.post("/v1/entries", evidence(key, product="prod", n=next(_numbers))).status_code == 201


def test_attack_admin_record_registering_a_malformed_key_is_422(api: Api) -> None:
    # A well-formed envelope whose payload is schema-invalid: §4 says 422, not 400.
    record = KeyRegistered("not-a-verifier-key", "mallory", ["appender"], [])
    envelope = sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(record), [api.ledger.signer])
    api.refused_post("/v1/entries", envelope, 422)


def _with_signatures(envelope: Envelope, *signatures: Signature) -> Envelope:
    return Envelope(envelope.payload, envelope.payload_type, list(signatures))


def _truncated(envelope: Envelope) -> Envelope:
    sig = envelope.signatures[0]
    short = base64.b64encode(base64.b64decode(sig.sig)[:10]).decode()
    return _with_signatures(envelope, Signature(keyid=sig.keyid, sig=short))


def _under_keyid(envelope: Envelope, keyid: str) -> Envelope:
    return _with_signatures(envelope, Signature(keyid=keyid, sig=envelope.signatures[0].sig))


# Each forges, from a fresh valid envelope, one whose signatures must not be accepted.
FORGERIES: dict[str, Callable[[Api, Envelope], Envelope]] = {
    "signature_over_other_bytes": lambda api, e: _with_signatures(
        e, Signature(keyid=e.signatures[0].keyid, sig=good(api).signatures[0].sig)
    ),
    "truncated_signature": lambda _, e: _truncated(e),
    "payload_swapped_after_signing": lambda api, e: Envelope(good(api).payload, e.payload_type, e.signatures),
    "unknown_key": lambda api, _: good(api, signer="stranger"),
    "revoked_key": lambda api, _: good(api, signer="revoked"),
    "stranger_signs_under_registered_keyid": lambda api, _: _under_keyid(
        good(api, signer="stranger"), api.keys["appender"].keyid
    ),
    "valid_signature_plus_bad_one_by_known_key": lambda api, e: _with_signatures(
        e, e.signatures[0], Signature(keyid=api.ledger.signer.keyid, sig=good(api).signatures[0].sig)
    ),
    # Signatures without a keyid (issue #12): no key that may sign verifies them.
    "keyless_by_unregistered_key": lambda api, _: _keyless(good(api, signer="stranger")),
    "keyless_by_revoked_key": lambda api, _: _keyless(good(api, signer="revoked")),
    "keyless_by_key_of_another_product": lambda api, _: _keyless(good(api, product="A", signer="product_b")),
    "keyless_payload_swapped_after_signing": lambda api, e: _keyless(
        Envelope(good(api).payload, e.payload_type, e.signatures)
    ),
    "keyless_valid_plus_keyless_by_stranger": lambda api, e: _with_signatures(
        e, e.signatures[0], Signature(sig=good(api, signer="stranger").signatures[0].sig)
    ),
    "keyless_over_the_cap": lambda api, _: _over_the_keyless_cap(api),
}
SIGNATURE_CASES = list(FORGERIES)


def _forged(api: Api, case: str) -> Envelope:
    return FORGERIES[case](api, good(api))


@pytest.mark.parametrize("case", SIGNATURE_CASES)
def test_attack_bad_unknown_or_revoked_signature_is_422(api: Api, case: str) -> None:
    api.refused_post("/v1/entries", _forged(api, case), 422)


@pytest.mark.parametrize("case", ["signature_over_other_bytes", "unknown_key", "revoked_key"])
def test_attack_one_bad_envelope_among_valid_ones_refuses_the_whole_batch(api: Api, case: str) -> None:
    envelopes = [good(api), good(api), _forged(api, case), good(api)]
    api.refused_post("/v1/entries/batch", {"envelopes": envelopes}, 422)


def test_attack_batch_registering_the_same_key_twice_is_422_and_writes_nothing(api: Api) -> None:
    # A second registration of one key is invalid content (docs/http-api.md: 422), not an idempotency
    # conflict (409 is only for a key reused with another body), even inside one batch.
    # Two registrations of it that differ (roles here), so they are two statements.
    newcomer = SignerKey.generate("twice.test/ci")
    first = register(api.ledger.signer, newcomer, ["appender"])
    second = register(api.ledger.signer, newcomer, ["appender", "qa"])
    envelopes = [good(api, signer="appender"), first, second]
    body = api.refused_post("/v1/entries/batch", {"envelopes": envelopes}, 422)
    assert f"key {newcomer.keyid} is already registered" in str(body["detail"])


def test_attack_batch_holding_one_signed_statement_twice_is_422_and_writes_nothing(api: Api) -> None:
    # A signed statement is recorded once (issue #9): a request that repeats one is invalid content.
    envelope = good(api, signer="appender")
    body = api.refused_post("/v1/entries/batch", {"envelopes": [envelope, envelope]}, 422)
    assert "the same signed statement twice" in str(body["detail"])


# --- 401 and 403: who may do what ---------------------------------------------------------------

UNAUTHENTICATED = {
    "no_header": {},
    "basic_scheme": {"Authorization": "Basic YWRtaW46YWRtaW4="},
    "empty_bearer": {"Authorization": "Bearer "},
    "unknown_token": {"Authorization": "Bearer evl_this-token-was-never-issued"},
}


@pytest.mark.parametrize("headers", UNAUTHENTICATED.values(), ids=UNAUTHENTICATED.keys())
def test_attack_missing_or_unknown_token_is_401(api: Api, headers: dict[str, str]) -> None:
    api.refused_post("/v1/entries", good(api), 401, as_=None, headers=headers)
    api.refused_post("/v1/entries/batch", {"envelopes": [good(api)]}, 401, as_=None, headers=headers)
    for path in ["/v1/checkpoint", "/v1/entries/0", "/tile/0/000.p/1", "/v1/proofs/inclusion?index=0"]:
        api.refused("GET", path, 401, as_=None, headers=headers)


BAD_PARAMETERS = [
    "/v1/entries?limit=0",
    "/v1/entries?start=-1",
    "/v1/proofs/consistency?first=x&second=2",
    "/v1/anchors?tree_size=x",
]


@pytest.mark.parametrize("path", BAD_PARAMETERS)
def test_attack_probing_parameters_without_a_token_is_401_not_400(api: Api, path: str) -> None:
    # The token is checked first: a caller without one learns nothing of what a route accepts.
    for headers in UNAUTHENTICATED.values():
        api.refused("GET", path, 401, as_=None, headers=headers)
    api.refused("GET", path, 400, as_="auditor")


def test_attack_auditor_token_appending_is_403(api: Api) -> None:
    api.refused_post("/v1/entries", good(api), 403, as_="auditor")
    api.refused_post("/v1/entries/batch", {"envelopes": [good(api)]}, 403, as_="auditor")


def test_attack_token_scoped_to_product_a_appending_for_product_b_is_403(api: Api) -> None:
    api.refused_post("/v1/entries", good(api, product="B"), 403, as_="appender_a")
    batch = {"envelopes": [good(api, product="A"), good(api, product="B")]}
    api.refused_post("/v1/entries/batch", batch, 403, as_="appender_a")


def test_attack_token_scoped_to_a_product_appending_a_statement_naming_none_is_403(api: Api) -> None:
    api.refused_post("/v1/entries", good(api, product=None), 403, as_="appender_a")


def test_scoped_token_may_append_for_its_own_product(api: Api) -> None:
    response = api.post("/v1/entries", good(api, product="A"), as_="appender_a")
    assert response.status_code == 201, response.text


def test_attack_admin_record_signed_by_a_non_admin_key_is_403(api: Api) -> None:
    newcomer = SignerKey.generate("sneaky.test/ci")
    envelope = register(api.keys["appender"], newcomer, ["admin"])
    api.refused_post("/v1/entries", envelope, 403, as_="admin")


def test_attack_admin_record_sent_with_an_appender_token_is_403(api: Api) -> None:
    newcomer = SignerKey.generate("backdoor.test/ci")
    envelope = register(api.ledger.signer, newcomer, ["admin"])
    api.refused_post("/v1/entries", envelope, 403, as_="appender")
    api.refused_post("/v1/entries/batch", {"envelopes": [good(api), envelope]}, 403, as_="appender")


# --- idempotency --------------------------------------------------------------------------------


def test_idempotent_retry_replays_the_receipt_and_other_body_is_409(api: Api) -> None:
    envelope = good(api)
    headers = {"Idempotency-Key": "retry-single-1"}
    first = api.post("/v1/entries", envelope, headers=headers)
    assert first.status_code == 201, first.text
    with nothing_written(api.ledger.dsn):
        again = api.post("/v1/entries", envelope, headers=headers)
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        api.refused_post("/v1/entries", good(api), 409, headers=headers)
        # The key stays bound to its first body: a later retry still replays it.
        assert api.post("/v1/entries", envelope, headers=headers).json()["index"] == first.json()["index"]


def test_idempotent_batch_retry_replays_the_receipts_and_other_body_is_409(api: Api) -> None:
    envelopes = [good(api) for _ in range(3)]
    headers = {"Idempotency-Key": "retry-batch-1"}
    first = api.post("/v1/entries/batch", {"envelopes": envelopes}, headers=headers)
    assert first.status_code == 201, first.text
    with nothing_written(api.ledger.dsn):
        again = api.post("/v1/entries/batch", {"envelopes": envelopes}, headers=headers)
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        api.refused_post("/v1/entries/batch", {"envelopes": envelopes[:2]}, 409, headers=headers)


def test_idempotency_key_of_a_refused_request_is_not_spent(api: Api) -> None:
    headers = {"Idempotency-Key": "first-try-was-unsigned"}
    api.refused_post("/v1/entries", _forged(api, "unknown_key"), 422, headers=headers)
    response = api.post("/v1/entries", good(api), headers=headers)
    assert response.status_code == 201, response.text


def test_idempotency_key_is_per_token(api: Api) -> None:
    headers = {"Idempotency-Key": "shared-name"}
    first = api.post("/v1/entries", good(api), headers=headers, as_="admin")
    other = api.post("/v1/entries", good(api), headers=headers, as_="appender")
    assert (first.status_code, other.status_code) == (201, 201)
    assert first.json()["index"] != other.json()["index"]


# --- 503: back-pressure -------------------------------------------------------------------------


def test_full_queue_is_503_with_retry_after(api: Api) -> None:
    with service(api.ledger, max_pending=1) as small:
        with nothing_written(api.ledger.dsn):
            response = small.post(
                "/v1/entries/batch",
                content=msgspec.json.encode({"envelopes": [good(api), good(api)]}),
                headers=bearer(api.tokens["admin"]),
            )
        api.responses.append(
            ("POST", "/v1/entries/batch (max_pending=1)", response.status_code, response.text)
        )
        check_error(response, 503)
        assert int(response.headers["Retry-After"]) >= 1


# --- reads: proofs, entries, tiles --------------------------------------------------------------


def _proof_paths(size: int) -> dict[str, str]:
    leaf = "ab" * 32
    return {
        "index_equal_to_tree_size": f"/v1/proofs/inclusion?index={size}",
        "index_past_tree_size": "/v1/proofs/inclusion?index=1&tree_size=1",
        "negative_index": "/v1/proofs/inclusion?index=-1",
        "tree_size_zero": "/v1/proofs/inclusion?index=0&tree_size=0",
        "tree_size_past_latest": f"/v1/proofs/inclusion?index=0&tree_size={size + 1}",
        "neither_index_nor_leaf_hash": "/v1/proofs/inclusion",
        "both_index_and_leaf_hash": f"/v1/proofs/inclusion?index=0&leaf_hash={leaf}",
        "leaf_hash_not_hex": "/v1/proofs/inclusion?leaf_hash=" + "zz" * 32,
        "leaf_hash_short": "/v1/proofs/inclusion?leaf_hash=abcd",
        "index_not_a_number": "/v1/proofs/inclusion?index=one",
        "consistency_first_zero": "/v1/proofs/consistency?first=0",
        "consistency_first_negative": "/v1/proofs/consistency?first=-3",
        "consistency_first_after_second": "/v1/proofs/consistency?first=3&second=2",
        "consistency_second_past_latest": f"/v1/proofs/consistency?first=1&second={size + 1}",
        "consistency_first_past_latest": f"/v1/proofs/consistency?first={size + 1}",
        "consistency_without_first": "/v1/proofs/consistency",
        "page_limit_zero": "/v1/entries?limit=0",
        "page_limit_too_big": "/v1/entries?limit=1001",
        "page_start_negative": "/v1/entries?start=-1",
        "negative_entry_index": "/v1/entries/-1",
        "anchors_tree_size_negative": "/v1/anchors?tree_size=-1",
        "anchors_tree_size_not_a_number": "/v1/anchors?tree_size=one",
        "anchors_tree_size_past_int64": "/v1/anchors?tree_size=99999999999999999999",
        "inclusion_tree_size_past_int64": "/v1/proofs/inclusion?index=0&tree_size=99999999999999999999",
        "consistency_first_past_int64": "/v1/proofs/consistency?first=99999999999999999999",
    }


PROOF_CASES = list(_proof_paths(0))


@pytest.mark.parametrize("case", PROOF_CASES)
def test_attack_out_of_range_read_parameters_are_400(api: Api, case: str) -> None:
    api.refused("GET", _proof_paths(api.size)[case], 400, as_="auditor")


def test_anchors_of_a_checkpoint_never_issued_are_404(api: Api) -> None:
    api.refused("GET", f"/v1/anchors?tree_size={api.size + 1}", 404, as_="auditor")


NUL_QUERIES = {
    "search_product": "/v1/search?product=pro%00d",
    "search_version": "/v1/search?product=prod&version=1%00",
    "search_kind": "/v1/search?kind=https://x/%00",
    "search_signer": "/v1/search?signer=a%00",
    "timeline_product": "/v1/releases/pro%00d/1.0/timeline",
    "compliance_version": "/v1/releases/prod/1.0%00/compliance",
    "dossier_version": "/v1/releases/prod/1.0%00/dossier",
    "compliance_environment": "/v1/releases/prod/1.0/compliance?environment=prod%00",
}


@pytest.mark.parametrize("path", NUL_QUERIES.values(), ids=NUL_QUERIES.keys())
def test_attack_nul_character_in_a_path_or_query_is_400(api: Api, path: str) -> None:
    body = api.refused("GET", path, 400, as_="auditor")
    assert "U+0000" in str(body["detail"])


@pytest.mark.parametrize("field_name", ["product", "version", "environment"])
def test_attack_nul_character_in_a_gate_request_is_400(api: Api, field_name: str) -> None:
    request = {"product": "prod", "version": "1.0", "environment": "production", field_name: "x\x00"}
    api.refused_post("/v1/gates/evaluate", request, 400)


def test_unknown_leaf_hash_is_404(api: Api) -> None:
    api.refused("GET", "/v1/proofs/inclusion?leaf_hash=" + "ab" * 32, 404, as_="auditor")


def test_unknown_entry_index_is_404(api: Api) -> None:
    api.refused("GET", f"/v1/entries/{api.size}", 404, as_="auditor")
    api.refused("GET", f"/v1/entries/{api.size + 1000}", 404, as_="auditor")


@pytest.mark.parametrize("index", [2**63 - 1, 2**63, 10**20], ids=["int64_max", "int64_max_plus_1", "1e20"])
def test_attack_entry_index_beyond_int64_is_404_not_500(api: Api, index: int) -> None:
    body = api.refused("GET", f"/v1/entries/{index}", 404, as_="auditor")
    assert body["detail"] == f"no entry {index}"


@pytest.mark.parametrize(
    "query",
    [f"start={10**20}", f"start={2**63 - 1}&limit=1000", f"start={2**63 - 500}&limit=1000"],
    ids=["start_1e20", "start_int64_max", "start_plus_limit_overflows"],
)
def test_attack_entry_page_beyond_int64_is_an_empty_page_not_500(api: Api, query: str) -> None:
    # A page past the end of the log is empty, however far past: no entry is there.
    response = api.get(f"/v1/entries?{query}", as_="auditor")
    assert (response.status_code, response.json()) == (200, {"entries": [], "next": None}), response.text


BAD_TILES = {
    "leading_zero_group": ("/tile/0/x000/001", 400),
    "level_too_high": ("/tile/9/000", 400),
    "level_not_canonical": ("/tile/00/000", 400),
    "level_negative": ("/tile/-1/000", 400),
    "level_not_a_number": ("/tile/abc/000", 400),
    "partial_width_zero": ("/tile/0/000.p/0", 400),
    "partial_width_256": ("/tile/0/000.p/256", 400),
    "partial_width_leading_zero": ("/tile/0/000.p/01", 400),
    "index_two_digits": ("/tile/0/01", 400),
    "missing_index": ("/tile/0", 400),
    "entries_missing_index": ("/tile/entries", 400),
    "entries_leading_zero_group": ("/tile/entries/x000/001", 400),
    # N is a uint64 (C2SP tlog-tiles): 7 groups at most; 6,000 digits are past what Python converts.
    "index_6000_digits": ("/tile/0/" + "x001/" * 2000 + "000", 400),
    "index_6000_digits_partial": ("/tile/0/" + "x001/" * 2000 + "000.p/5", 400),
    "entries_index_6000_digits": ("/tile/entries/" + "x001/" * 2000 + "000", 400),
    "entries_index_6000_digits_partial": ("/tile/entries/" + "x001/" * 2000 + "000.p/5", 400),
    "index_8_groups": ("/tile/0/x001/x000/x000/x000/x000/x000/x000/000", 400),
    "index_2_to_the_64": ("/tile/0/x018/x446/x744/x073/x709/x551/616", 400),
    "entries_index_2_to_the_64": ("/tile/entries/x018/x446/x744/x073/x709/x551/616.p/1", 400),
    "level_6000_digits": ("/tile/" + "1" * 6000 + "/000", 400),
    "largest_uint64_index": ("/tile/0/x018/x446/x744/x073/x709/x551/615", 404),
    "entries_largest_uint64_index": ("/tile/entries/x018/x446/x744/x073/x709/x551/615.p/1", 404),
    "nonexistent_full_tile": ("/tile/0/000", 404),
    "nonexistent_tile_index": ("/tile/0/005", 404),
    "nonexistent_level": ("/tile/1/000.p/1", 404),
    "partial_wider_than_stored": ("/tile/0/000.p/255", 404),
    "nonexistent_entry_bundle": ("/tile/entries/005", 404),
    "entry_bundle_wider_than_stored": ("/tile/entries/000.p/255", 404),
}


@pytest.mark.parametrize(("path", "status"), BAD_TILES.values(), ids=BAD_TILES.keys())
def test_attack_bad_tile_path(api: Api, path: str, status: int) -> None:
    assert api.size < 255
    api.refused("GET", path, status, as_="auditor")


@pytest.mark.parametrize(
    "path",
    [
        "/tile/0/x018/x446/x744/x073/x709/x551/615",  # 2^64 - 1, the largest tile index there is
        "/tile/entries/x018/x446/x744/x073/x709/x551/615",
        "/tile/entries/x036/x028/x797/x018/x963/968",  # 2^55: its first leaf, 2^63, is past int64
    ],
    ids=["hash_tile", "entry_bundle", "entry_bundle_first_leaf_past_int64"],
)
def test_attack_tile_index_beyond_int64_is_404_not_500(api: Api, path: str) -> None:
    # A tile index up to 2^64 - 1 names a tile no log reaches (404); past it, no tile at all (400,
    # test_attack_bad_tile_path).
    api.refused("GET", path, 404, as_="auditor")


def test_unknown_route_and_method_are_4xx_in_the_error_shape(api: Api) -> None:
    api.refused("GET", "/v1/nothing-here", 404)
    api.refused("DELETE", "/v1/entries/0", 405)
    api.refused("PUT", "/v1/entries", 405, content=b"{}")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("DELETE", "/v1/entries/0", {"GET"}), ("PUT", "/v1/entries", {"GET", "POST"})],
)
def test_method_not_allowed_names_the_allowed_methods(
    api: Api, method: str, path: str, allowed: set[str]
) -> None:
    response = api.request(method, path, content=b"{}")
    check_error(response, 405)
    assert allowed <= {m.strip() for m in response.headers["allow"].split(",")}  # RFC 9110 §15.5.6


# --- last: the module as a whole ----------------------------------------------------------------


def _route_pattern(template: str) -> re.Pattern[str]:
    """The concrete paths of an OpenAPI path template (`{path}`, the tile path, spans slashes)."""
    parts = re.split(r"(\{\w+\})", template)
    pattern = "".join(
        (".+" if part == "{path}" else "[^/]+") if part.startswith("{") else re.escape(part) for part in parts
    )
    return re.compile(f"^{pattern}$")


def test_every_status_this_module_saw_is_documented_for_its_route(api: Api) -> None:
    """The OpenAPI document at /schema lists every status the requests above were given."""
    document = api.get("/schema/openapi.json").json()
    # A literal route wins over a templated one (/v1/entries/batch, not /v1/entries/{index}).
    routes = sorted(document["paths"], key=lambda template: template.count("{"))
    patterns = [(_route_pattern(template), template) for template in routes]
    undocumented, checked = set(), 0
    for method, url, status, _ in api.responses:
        path = url.split("?", 1)[0]
        template = next((t for regex, t in patterns if regex.match(path)), None)
        operation = document["paths"][template].get(method.lower()) if template else None
        if operation is None:  # no such route or method: the 404 and 405 tested above
            continue
        checked += 1
        if str(status) not in operation["responses"]:
            undocumented.add((method, template, status))
    assert checked > 100
    assert undocumented == set()


def test_no_response_in_this_module_was_a_500_or_leaked_a_traceback(api: Api) -> None:
    assert len(api.responses) > 100
    server_errors = [(m, p, s) for m, p, s, _ in api.responses if s >= 500 and s != 503]
    assert server_errors == []
    leaks = [(m, p) for m, p, _, text in api.responses if "Traceback" in text or 'File "' in text]
    assert leaks == []
