"""schemas/ is generated from the code and must not drift; every schema rule is one the code enforces.

The mutation tests read the generated schemas themselves: each field a schema
lists as required, each enumeration it states, and `additionalProperties:
false` must be refused by `decode_predicate`, so the schemas never promise
more than the ledger checks. The rules added on top of msgspec's shapes
(schema_export._RULES) each get a case showing the code refuses a violation.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ledger.core.dsse import Envelope, Signature, verify_envelope
from ledger.errors import EncodingError, SignatureError
from ledger.records import schema_export
from ledger.records.admin import decode_admin_record
from ledger.records.attest import check_statement
from ledger.records.predicates import (
    GATE_DECISION,
    GATE_EXTENSION,
    PREDICATE_TYPES,
    decode_predicate,
    kind_name,
)
from ledger.records.statement import STATEMENT_TYPE_V1, decode_statement, release_of

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
EXAMPLES: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "predicate-examples.json").read_text(encoding="utf-8")
)["examples"]
GENERATED = schema_export.generate()
# PREDICATES.md says unknown fields are refused; GateDecision (and its VSA parts) does not forbid them.


def predicate_schema(predicate_type: str) -> dict[str, Any]:
    return json.loads(GENERATED[f"{kind_name(predicate_type)}.schema.json"])


def test_schema_files_match_the_code():
    on_disk = {path.name: path.read_bytes() for path in SCHEMAS.glob("*.schema.json")}
    assert sorted(on_disk) == sorted(GENERATED), "run: python -m ledger.records.schema_export"
    stale = [name for name, data in GENERATED.items() if on_disk[name] != data]
    assert not stale, f"schemas differ from the code: {stale}; run python -m ledger.records.schema_export"
    assert schema_export.drift(SCHEMAS) == []


def test_every_format_has_a_schema_with_id_title_and_description():
    expected = {f"{kind_name(t)}.schema.json" for t in PREDICATE_TYPES}
    expected |= {"statement.schema.json", "admin-record.schema.json", "dsse-envelope.schema.json"}
    assert set(GENERATED) == expected
    for name, data in GENERATED.items():
        assert data.endswith(b"}\n")
        schema = json.loads(data)
        assert data == (json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
        assert schema["$id"] == f"https://evledger.dev/schemas/{name}"
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["title"]
        assert schema["description"]
    for predicate_type in PREDICATE_TYPES:
        schema = predicate_schema(predicate_type)
        assert predicate_type in schema["title"]
        assert predicate_type in schema["description"]


def test_check_mode_lists_drift_and_write_mode_repairs_it(tmp_path, capsys):
    assert schema_export.main(["--check", "--dir", str(tmp_path)]) == 1
    assert "scan.schema.json: differs" in capsys.readouterr().out
    assert schema_export.main(["--dir", str(tmp_path)]) == 0
    assert schema_export.main(["--check", "--dir", str(tmp_path)]) == 0
    (tmp_path / "scan.schema.json").write_bytes(b"{}\n")
    (tmp_path / "retired.schema.json").write_bytes(b"{}\n")
    (tmp_path / "NOTES.md").write_text("not a schema")
    capsys.readouterr()
    assert schema_export.main(["--check", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "scan.schema.json" in out
    assert "retired.schema.json" in out
    assert "NOTES.md" not in out
    assert schema_export.main(["--dir", str(tmp_path)]) == 0
    assert not (tmp_path / "retired.schema.json").exists()
    assert (tmp_path / "NOTES.md").exists()
    assert schema_export.drift(tmp_path) == []


def test_statement_schema_ties_each_predicate_type_to_its_schema():
    schema = json.loads(GENERATED["statement.schema.json"])
    tied = {
        rule["if"]["properties"]["predicateType"]["const"]: rule["then"]["properties"]["predicate"]["$ref"]
        for rule in schema["allOf"]
    }
    assert tied == {t: f"https://evledger.dev/schemas/{kind_name(t)}.schema.json" for t in PREDICATE_TYPES}


@pytest.mark.parametrize("predicate_type", sorted(PREDICATE_TYPES))
def test_example_decodes_and_round_trips(predicate_type):
    example = EXAMPLES[predicate_type]
    value = decode_predicate(predicate_type, example)
    assert isinstance(value, PREDICATE_TYPES[predicate_type])
    again = decode_predicate(predicate_type, msgspec.to_builtins(value))
    assert again == value
    assert set(example) <= set(predicate_schema(predicate_type)["properties"])


def _mutations() -> list[Any]:
    cases = []
    for predicate_type in sorted(PREDICATE_TYPES):
        schema, kind = predicate_schema(predicate_type), kind_name(predicate_type)
        cases.append(pytest.param(predicate_type, "unknown", "reviewer_notes", id=f"{kind}-unknown-field"))
        cases += [
            pytest.param(predicate_type, "missing", field, id=f"{kind}-missing-{field}")
            for field in schema["required"]
        ]
        cases += [
            pytest.param(predicate_type, "enum", field, id=f"{kind}-bad-enum-{field}")
            for field, spec in schema["properties"].items()
            if "enum" in spec
        ]
        cases += [
            pytest.param(predicate_type, "type", field, id=f"{kind}-wrong-type-{field}")
            for field, spec in schema["properties"].items()
            if spec.get("type") == "string"
        ][:1]
    return cases


@pytest.mark.parametrize(("predicate_type", "how", "field"), _mutations())
def test_mutated_example_is_refused(predicate_type, how, field):
    predicate = copy.deepcopy(EXAMPLES[predicate_type])
    if how == "unknown":
        predicate[field] = "looks harmless"
    elif how == "missing":
        del predicate[field]
    elif how == "enum":
        predicate[field] = "definitely-not-" + str(predicate[field])
    else:
        predicate[field] = 42
    if predicate_type == GATE_DECISION and field == GATE_EXTENSION and how == "missing":
        # A VSA without our extension is someone else's: generic evidence, not refused (issue #12).
        assert decode_predicate(predicate_type, predicate) is None
        return
    with pytest.raises(EncodingError, match="predicate is invalid"):
        decode_predicate(predicate_type, predicate)


def _with(predicate_type: str, **changes: object) -> tuple[str, dict[str, Any]]:
    return predicate_type, {**copy.deepcopy(EXAMPLES[predicate_type]), **changes}


RELEASE = {"product": "ivd-analyzer", "version": "2.4.0"}


@pytest.mark.parametrize(
    ("predicate_type", "predicate"),
    [
        _with("https://evledger.dev/test-run/v1", skipped=-1),
        _with("https://evledger.dev/scan/v1", findings={"high": -2}),
        _with("https://evledger.dev/exception/v1", justification="   "),
        _with("https://evledger.dev/approval/v1", role=" "),
        _with("https://evledger.dev/validation/v1", manual=True, manual_steps=[]),
        _with("https://evledger.dev/release-seal/v1", count=-1),
        _with("https://evledger.dev/release-seal/v1", head="6B86B273"),
        _with("https://evledger.dev/deployment/v1", release={**RELEASE, "product": ""}),
        _with("https://evledger.dev/deployment/v1", release={**RELEASE, "version": ""}),
        _with("https://evledger.dev/deployment/v1", release={**RELEASE, "product": "p" * 257}),
        _with("https://evledger.dev/deployment/v1", release={**RELEASE, "version": "1" * 257}),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_every_added_schema_rule_is_enforced_by_the_code(predicate_type, predicate):
    """The rules schema_export adds on top of msgspec's shapes (minimum, pattern, if/then) hold in code."""
    statement = msgspec.json.encode(
        {
            "_type": STATEMENT_TYPE_V1,
            "subject": [{"name": "analyzer.tar", "digest": {"sha256": "ab" * 32}}],
            "predicateType": predicate_type,
            "predicate": predicate,
        }
    )
    with pytest.raises(EncodingError):
        check_statement(statement)  # the admission decode path: statement, release, predicate, seal


@pytest.mark.parametrize(
    "changes",
    [
        {"_type": "https://in-toto.io/Statement/v0.2"},
        {"predicateType": ""},
        {"subject": []},
        {"subject": [{"name": "no digest"}]},
        {"subject": [{"name": "empty digest", "digest": {}}]},
        {"predicate": {"release": {"product": ""}}},
        {"predicate": {"release": {"product": "p", "version": ""}}},
        {"predicate": {"release": "ivd-analyzer 2.4.0"}},
        {"predicate": {"release": {"product": "p" * 257}}},
        {"predicate": {"release": {"product": "p", "version": "1" * 257}}},
        {"predicateType": "https://example.org/" + "x" * 493},  # 513 characters
        {"subject": [{"name": "a", "digest": {"a" * 65: "ab"}}]},
        {"subject": [{"name": "a", "digest": {"sha256": "a" * 513}}]},
    ],
)
def test_statement_schema_rules_are_enforced_by_the_code(changes):
    statement = {
        "_type": STATEMENT_TYPE_V1,
        "subject": [{"name": "analyzer.tar", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://example.org/generic/v1",
        "predicate": {},
        **changes,
    }
    with pytest.raises(EncodingError):
        release_of(decode_statement(msgspec.json.encode(statement)))


def test_statement_nested_past_the_recursion_limit_is_refused_not_raised():
    deep = b"[" * 5000 + b"]" * 5000  # in the predicate, which is typed Any: msgspec recurses
    with pytest.raises(EncodingError, match="not an in-toto Statement"):
        decode_statement(
            b'{"_type": "' + STATEMENT_TYPE_V1.encode() + b'", "predicate": {"x": ' + deep + b"}}"
        )


@pytest.mark.parametrize(
    "record",
    [
        {"kind": "key.registered", "key": "k", "owner": " ", "roles": ["tester"]},
        {"kind": "key.registered", "key": "k", "owner": "CI", "roles": []},
        {"kind": "key.registered", "key": "k", "owner": "CI", "roles": ["Release Manager"]},
        {"kind": "key.revoked", "keyid": "k", "reason": "r", "by": "someone"},
    ],
)
def test_admin_record_schema_rules_are_enforced_by_the_code(record):
    with pytest.raises(EncodingError):
        decode_admin_record(msgspec.json.encode(record))


@pytest.mark.parametrize("count", [0, 17])
def test_envelope_signature_count_rule_is_enforced_by_the_code(count):
    signatures = [Signature(keyid="k+00000000", sig="AA==")] * count
    envelope = Envelope("aGk=", "application/vnd.in-toto+json", signatures)
    with pytest.raises(SignatureError):
        verify_envelope(envelope, lambda _keyid: None)
