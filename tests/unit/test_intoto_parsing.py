"""in-toto and DSSE parsing rules (issue #12): unknown fields, optional keyid, Statement v0.1, SLSA v0.2.

The fixture is real builder output (tests/unit/fixtures/intoto/README.md): a Statement v0.1
carrying SLSA Provenance v0.2 in a DSSE envelope whose signature has an empty keyid and a
Sigstore `cert`. Its exact payload bytes are re-signed here with keys a registry holds.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ledger.core.dsse import (
    ADMIN_PAYLOAD_TYPE,
    INTOTO_PAYLOAD_TYPE,
    MAX_KEYLESS_SIGNATURES,
    Envelope,
    Signature,
    sign_envelope,
)
from ledger.core.encoding import b64encode
from ledger.core.entry import encode_entry, parse_entry
from ledger.core.keys import SignerKey
from ledger.errors import EncodingError, MalformedRequestError, SignatureError, UntrustedSignerError
from ledger.records import predicates as p
from ledger.records.admin import KeyRegistered, KeyRevoked, encode_admin_record
from ledger.records.statement import STATEMENT_TYPE_V01, decode_statement, release_of, subject_digests
from ledger.rules.admission import AS_OF_NOW, admit
from ledger.rules.events import event_from_entry
from ledger.rules.registry import KeyRegistry

FIXTURE = Path(__file__).parent / "fixtures" / "intoto" / "slsa-generic-v1.2.1-provenance-v0.2.intoto.jsonl"
ORIGINAL: dict[str, Any] = msgspec.json.decode(FIXTURE.read_bytes())
PAYLOAD = base64.b64decode(ORIGINAL["payload"])  # the builder's exact bytes
SUBJECT = "sha256:ec8ff1bb40da2a36e3e9113dd7a5dd452c5125f7013e849519c0754b3c9fda89"


def _key(name: str) -> SignerKey:
    return SignerKey.from_seed(f"{name}.test/ci", hashlib.sha256(name.encode()).digest())


ADMIN, BUILDER, OTHER, PROD_ONLY, ELSEWHERE, STRANGER = map(
    _key, ["admin", "builder", "other", "prod-only", "elsewhere", "stranger"]
)


def _registry() -> KeyRegistry:
    """ADMIN (admin), OTHER and BUILDER (any product), PROD_ONLY (`prod`), ELSEWHERE (`elsewhere`)."""
    registry = KeyRegistry()
    for index, (key, roles, products) in enumerate(
        [
            (ADMIN, ["admin"], []),
            (OTHER, ["builder"], []),
            (BUILDER, ["builder"], []),
            (PROD_ONLY, ["builder"], ["prod"]),
            (ELSEWHERE, ["builder"], ["elsewhere"]),
        ]
    ):
        registry.apply(index, KeyRegistered(key.verifier().format(), key.name, roles, products))
    return registry


def _as_sent(envelope: Envelope, **extra: Any) -> dict[str, Any]:
    """The envelope as a builder sends it: keyid "" and a `cert` on every signature, plus `extra`."""
    sent: dict[str, Any] = msgspec.to_builtins(envelope)
    cert = ORIGINAL["signatures"][0]["cert"]
    sent["signatures"] = [{"keyid": "", "sig": s["sig"], "cert": cert} for s in sent["signatures"]]
    return {**sent, **extra}


def _decoded(body: dict[str, Any]) -> Envelope:
    return msgspec.json.decode(msgspec.json.encode(body), type=Envelope)


def _keyless(payload: bytes, *signers: SignerKey, payload_type: str = INTOTO_PAYLOAD_TYPE) -> Envelope:
    signed = sign_envelope(payload_type, payload, list(signers))
    return Envelope(signed.payload, signed.payload_type, [Signature(sig=s.sig) for s in signed.signatures])


def _with_release(product: str, version: str = "1.0") -> bytes:
    """The real payload with `predicate.release` added, as a provenance names its release (PREDICATES.md)."""
    body = msgspec.json.decode(PAYLOAD)
    body["predicate"]["release"] = {"product": product, "version": version}
    return msgspec.json.encode(body)


# --- Statement: v0.1, SLSA v0.2, unknown fields -------------------------------------------------


def test_the_real_v0_1_statement_with_slsa_v0_2_provenance_decodes() -> None:
    statement = decode_statement(PAYLOAD)
    assert statement.type == STATEMENT_TYPE_V01
    assert statement.predicate_type == p.SLSA_PROVENANCE_V02
    assert subject_digests(statement) == (SUBJECT,)
    assert release_of(statement) == (None, None)  # a real provenance names no release


def test_slsa_provenance_v0_2_is_build_evidence_like_v1() -> None:
    assert p.kind_name(p.SLSA_PROVENANCE_V02) == p.kind_name(p.SLSA_PROVENANCE) == "build"
    assert p.decode_predicate(p.SLSA_PROVENANCE_V02, msgspec.json.decode(PAYLOAD)["predicate"]) is None


def test_unknown_statement_fields_are_ignored() -> None:
    # in-toto spec/v1 parsing rules: consumers MUST ignore unknown fields. The rest keeps its bytes.
    extended = PAYLOAD[:-1] + b',"https://example.org/ext/v1":{"note":"x"},"_comment":[1,2]}'
    statement = decode_statement(extended)
    assert statement == decode_statement(PAYLOAD)


@pytest.mark.parametrize(
    "statement_type",
    ["https://in-toto.io/Statement/v0.2", "https://in-toto.io/Statement/v1.0", "https://x/Statement/v0", ""],
)
def test_an_unknown_statement_type_is_still_refused(statement_type: str) -> None:
    body = msgspec.json.decode(PAYLOAD)
    with pytest.raises(EncodingError, match="_type must be"):
        decode_statement(msgspec.json.encode({**body, "_type": statement_type}))


# --- Admission: the stored envelope ------------------------------------------------------------


def test_real_envelope_shape_is_admitted_and_stored_without_unsigned_fields() -> None:
    signed = sign_envelope(INTOTO_PAYLOAD_TYPE, PAYLOAD, [BUILDER])
    sent = _decoded(_as_sent(signed, smuggled={"unsigned": True}))
    admitted = admit(sent, _registry(), AS_OF_NOW)
    assert admitted.envelope == signed  # keyid named, `cert` and the extra field gone
    assert admitted.kind == p.SLSA_PROVENANCE_V02
    assert admitted.signer_keyid == BUILDER.keyid
    assert base64.b64decode(admitted.envelope.payload) == PAYLOAD  # the exact bytes
    data = encode_entry(7, bytes(32), "2026-01-01T00:00:00.000Z", admitted.envelope)
    stored = parse_entry(data).envelope
    assert stored.signatures == [Signature(sig=signed.signatures[0].sig, keyid=BUILDER.keyid)]
    assert b"cert" not in data
    assert b"smuggled" not in data


def test_keyless_signature_is_named_by_the_second_candidate_when_only_it_verifies() -> None:
    registry = _registry()
    assert list(registry.keys).index(OTHER.keyid) < list(registry.keys).index(BUILDER.keyid)
    admitted = admit(_keyless(PAYLOAD, BUILDER), registry, AS_OF_NOW)
    assert [s.keyid for s in admitted.envelope.signatures] == [BUILDER.keyid]
    assert admitted.signers == (BUILDER.verifier(),)


def test_keyless_and_named_signatures_together_are_each_named() -> None:
    payload = _with_release("prod")
    named = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, [OTHER])
    keyless = _keyless(payload, BUILDER, PROD_ONLY)
    first, last = keyless.signatures
    envelope = Envelope(named.payload, named.payload_type, [first, *named.signatures, last])
    admitted = admit(envelope, _registry(), AS_OF_NOW)
    assert [s.keyid for s in admitted.envelope.signatures] == [BUILDER.keyid, OTHER.keyid, PROD_ONLY.keyid]


def test_keyless_admin_record_is_named_by_an_admin_key() -> None:
    record = encode_admin_record(KeyRevoked(OTHER.keyid, "rotated"))
    admitted = admit(_keyless(record, ADMIN, payload_type=ADMIN_PAYLOAD_TYPE), _registry(), AS_OF_NOW)
    assert [s.keyid for s in admitted.envelope.signatures] == [ADMIN.keyid]


def test_keyless_admin_record_by_a_non_admin_key_is_refused() -> None:
    record = encode_admin_record(KeyRevoked(OTHER.keyid, "rotated"))
    with pytest.raises(UntrustedSignerError, match="admin keys"):
        admit(_keyless(record, BUILDER, payload_type=ADMIN_PAYLOAD_TYPE), _registry(), AS_OF_NOW)


def test_keyless_signature_no_registered_key_verifies_is_refused() -> None:
    with pytest.raises(UntrustedSignerError, match=r"no registered key verified signatures\[0\]"):
        admit(_keyless(PAYLOAD, STRANGER), _registry(), AS_OF_NOW)


def test_keyless_signature_by_a_key_registered_for_another_product_is_refused() -> None:
    payload = _with_release("prod")
    assert admit(_keyless(payload, PROD_ONLY), _registry(), AS_OF_NOW).signer_keyid == PROD_ONLY.keyid
    with pytest.raises(UntrustedSignerError, match="for product 'prod'"):
        admit(_keyless(payload, ELSEWHERE), _registry(), AS_OF_NOW)
    # A statement naming no product: only keys for any product may sign it.
    with pytest.raises(UntrustedSignerError, match="any product"):
        admit(_keyless(PAYLOAD, PROD_ONLY), _registry(), AS_OF_NOW)


def test_keyless_signature_by_a_revoked_key_is_refused() -> None:
    registry = _registry()
    registry.apply(10, KeyRevoked(BUILDER.keyid, "lost"))
    with pytest.raises(UntrustedSignerError):
        admit(_keyless(PAYLOAD, BUILDER), registry, AS_OF_NOW)


def test_tampered_payload_under_a_keyless_signature_is_refused() -> None:
    envelope = _keyless(PAYLOAD, BUILDER)
    tampered = PAYLOAD.replace(b"ec8ff1bb", b"ec8ff1bc")
    assert tampered != PAYLOAD
    with pytest.raises(UntrustedSignerError):
        admit(
            Envelope(b64encode(tampered), envelope.payload_type, envelope.signatures), _registry(), AS_OF_NOW
        )


def test_keyless_signature_that_is_not_base64_is_malformed() -> None:
    envelope = Envelope(b64encode(PAYLOAD), INTOTO_PAYLOAD_TYPE, [Signature(sig="!!!")])
    with pytest.raises(MalformedRequestError):
        admit(envelope, _registry(), AS_OF_NOW)


def test_more_keyless_signatures_than_the_cap_are_refused() -> None:
    signers = [BUILDER, OTHER, ADMIN, PROD_ONLY, ELSEWHERE][: MAX_KEYLESS_SIGNATURES + 1]
    payload = _with_release("prod")
    at_cap = _keyless(payload, *signers[:MAX_KEYLESS_SIGNATURES])
    assert len(admit(at_cap, _registry(), AS_OF_NOW).envelope.signatures) == MAX_KEYLESS_SIGNATURES
    with pytest.raises(SignatureError, match=f"at most {MAX_KEYLESS_SIGNATURES} signatures without a keyid"):
        admit(_keyless(payload, *signers), _registry(), AS_OF_NOW)


def test_a_logged_signature_without_keyid_counts_as_by_no_registered_key() -> None:
    # Only a new append names keys: the log's entries always do, so a verifier replaying one at its
    # index treats a signature without keyid as by no registered key.
    envelope = _keyless(PAYLOAD, BUILDER)
    with pytest.raises(UntrustedSignerError, match="no keyid"):
        admit(envelope, _registry(), 10)
    named = admit(envelope, _registry(), AS_OF_NOW).envelope
    assert admit(named, _registry(), 10).signer_keyid == BUILDER.keyid


class _Counting:
    """A verifier key that records every verification asked of it."""

    def __init__(self, inner: Any, calls: list[str]) -> None:
        self.inner, self.calls, self.keyid = inner, calls, inner.keyid

    def verify(self, message: bytes, signature: bytes) -> None:
        self.calls.append(self.keyid)
        self.inner.verify(message, signature)


def test_keyless_signature_is_tried_only_against_the_keys_that_may_sign_it() -> None:
    calls: list[str] = []
    registry = _registry()
    for key in registry.keys.values():
        key.verifier = _Counting(key.verifier, calls)  # type: ignore[assignment]
    with pytest.raises(UntrustedSignerError, match="tried the 3 keys"):
        admit(_keyless(PAYLOAD, STRANGER), registry, AS_OF_NOW)
    # A statement naming no product: each key for any product once (not PROD_ONLY, ELSEWHERE).
    assert sorted(calls) == sorted([ADMIN.keyid, OTHER.keyid, BUILDER.keyid])


# --- Stored entries -----------------------------------------------------------------------------


def _entry_with(envelope_changes: dict[str, Any], signature_changes: dict[str, Any]) -> bytes:
    signed = sign_envelope(INTOTO_PAYLOAD_TYPE, PAYLOAD, [BUILDER])
    entry = msgspec.json.decode(encode_entry(3, bytes(32), "2026-01-01T00:00:00.000Z", signed))
    entry["envelope"].update(envelope_changes)
    entry["envelope"]["signatures"][0].update(signature_changes)
    for name in [n for n, v in signature_changes.items() if v is None]:
        del entry["envelope"]["signatures"][0][name]
    return msgspec.json.Encoder(order="sorted").encode(entry)


def test_stored_entry_round_trips() -> None:
    data = _entry_with({}, {})
    assert parse_entry(data).envelope.signatures[0].keyid == BUILDER.keyid


@pytest.mark.parametrize(
    ("envelope_changes", "signature_changes"),
    [
        ({"extra": "smuggled"}, {}),  # unsigned data in the log forever: refused
        ({}, {"cert": "x"}),
        ({}, {"keyid": None}),  # a stored signature always names its keyid field
    ],
    ids=["extra_envelope_field", "extra_signature_field", "signature_without_keyid_field"],
)
def test_stored_entry_with_a_field_the_ledger_never_writes_is_not_canonical(
    envelope_changes: dict[str, Any], signature_changes: dict[str, Any]
) -> None:
    with pytest.raises(EncodingError, match="not canonical"):
        parse_entry(_entry_with(envelope_changes, signature_changes))


def test_event_of_a_stored_keyless_append_names_its_signer() -> None:
    registry = _registry()
    admitted = admit(_keyless(_with_release("prod"), BUILDER), registry, AS_OF_NOW)
    data = encode_entry(6, bytes(32), "2026-01-01T00:00:00.000Z", admitted.envelope)
    event = event_from_entry(data, registry)  # the signer read from the stored signature's keyid
    assert event is not None
    assert event.kind == "build"
    assert event.signer.owner == BUILDER.name
    assert event.raw_predicate["release"] == {"product": "prod", "version": "1.0"}
