"""JSON Schemas (draft 2020-12) of our wire formats, generated from the msgspec types into `schemas/`.

One file per format: the in-toto Statement, each of our predicate types
(`<kind>.schema.json`, see schemas/PREDICATES.md), the admin records and the
DSSE envelope. The shapes come from `msgspec.json.schema_components`; on top of
them `_RULES` states the few checks the decoders make in code (non-negative
counts, non-empty names, the seal's hex head…), so that a document valid under
a schema is one the ledger admits. A unit test keeps `schemas/` equal to
`generate()`; run `python -m ledger.records.schema_export` after changing a type.

`generate` is pure; only `main` (the command line) reads and writes files.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE, MAX_SIGNATURES, Envelope
from ledger.records.admin import AdminRecord
from ledger.records.formats import HEX64, anchored
from ledger.records.predicates import PREDICATE_TYPES, kind_name
from ledger.records.statement import (
    MAX_DIGEST_ALGORITHM,
    MAX_DIGEST_VALUE,
    MAX_NAME,
    MAX_PREDICATE_TYPE,
    STATEMENT_TYPE_V1,
    STATEMENT_TYPES,
    Statement,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://evledger.dev/schemas"
SUFFIX = ".schema.json"
STATEMENT_FILE = f"statement{SUFFIX}"
ADMIN_FILE = f"admin-record{SUFFIX}"
ENVELOPE_FILE = f"dsse-envelope{SUFFIX}"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

_NON_BLANK = {"pattern": r"\S"}  # at least one character that is not white space (`str.strip()` non-empty)
_NAME = {"type": "string", "minLength": 1, "maxLength": MAX_NAME}
_RELEASE_RULES = {
    "/$defs/Release/properties/product": _NAME,  # statement.release_of
    "/$defs/Release/properties/version": _NAME,
}
_COUNT = {"minimum": 0}
# Checks made in code (predicates._check_values, statement.decode_statement and
# release_of/seal_of, admin.decode_admin_record, dsse.verify_envelope, admission),
# keyed by file, each a JSON pointer into the generated schema and the keywords to add there.
_RULES: dict[str, dict[str, dict[str, Any]]] = {
    "test-run": {f"/properties/{name}": _COUNT for name in ("passed", "failed", "skipped")},
    "scan": {
        f"/$defs/Findings/properties/{name}": _COUNT for name in ("critical", "high", "medium", "low", "info")
    },
    "exception": {"/properties/justification": _NON_BLANK},
    "approval": {"/properties/role": _NON_BLANK},
    "validation": {
        "": {
            "if": {"properties": {"manual": {"const": True}}, "required": ["manual"]},
            "then": {"properties": {"manual_steps": {"minItems": 1}}, "required": ["manual_steps"]},
        }
    },
    "release-seal": {"/properties/count": _COUNT, "/properties/head": {"pattern": anchored(HEX64)}},
    "statement": {
        "/properties/_type": {"enum": list(STATEMENT_TYPES)},
        "/properties/predicateType": {"minLength": 1, "maxLength": MAX_PREDICATE_TYPE},
        "/properties/subject": {"minItems": 1},
        "/$defs/ResourceDescriptor": {"required": ["digest"]},
        "/$defs/ResourceDescriptor/properties/digest": {
            "minProperties": 1,
            "propertyNames": {"maxLength": MAX_DIGEST_ALGORITHM},
            "additionalProperties": {"type": "string", "maxLength": MAX_DIGEST_VALUE},
        },
        "/properties/predicate": {
            "properties": {
                "release": {  # release_of reads null as absent
                    "anyOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "properties": {
                                "product": _NAME,
                                "version": {"anyOf": [_NAME, {"type": "null"}]},
                            },
                            "required": ["product"],
                        },
                    ]
                }
            }
        },
    },
    "admin-record": {
        "/$defs/KeyRegistered/properties/owner": _NON_BLANK,
        "/$defs/KeyRegistered/properties/expires": {"format": "date-time"},  # KeyRegistered.expiry
        "/$defs/KeyRegistered/properties/roles": {"minItems": 1},
        "/$defs/KeyRegistered/properties/roles/items": {"pattern": "^[a-z][a-z0-9-]{0,63}$"},
    },
    "dsse-envelope": {
        "/properties/payloadType": {"enum": [ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE]},
        "/properties/signatures": {"minItems": 1, "maxItems": MAX_SIGNATURES},
    },
}


def schema_id(file_name: str) -> str:
    """The `$id` of a schema file, e.g. https://evledger.dev/schemas/scan.schema.json."""
    return f"{ID_BASE}/{file_name}"


def _at(schema: dict[str, Any], pointer: str) -> dict[str, Any]:
    """The sub-schema at a JSON pointer (RFC 6901, no escapes needed here); KeyError if the type changed."""
    node = schema
    for part in filter(None, pointer.split("/")):
        node = node[part]
    return node


def _build(cls: object, *, name: str, title: str, description: str) -> dict[str, Any]:
    """The schema of `cls` with its root type inlined, our header, and the rules of `name` applied."""
    (root,), defs = msgspec.json.schema_components([cls])
    ref = root.get("$ref", "")
    target = ref.removeprefix("#/$defs/")
    if set(root) == {"$ref"} and json.dumps(ref) not in json.dumps(
        defs
    ):  # inline unless the type is recursive
        root = dict(defs.pop(target))
    schema = {**root, "$schema": DIALECT, "$id": schema_id(name + SUFFIX), "title": title}
    schema["description"] = description
    if defs:
        schema["$defs"] = defs
    rules = {**(_RELEASE_RULES if "Release" in defs else {}), **_RULES.get(name, {})}
    for pointer, keywords in rules.items():
        _at(schema, pointer).update(keywords)
    return schema


def _doc(cls: object) -> str:
    return inspect.cleandoc(cls.__doc__ or "").replace("\n", " ")


def _predicate_schema(predicate_type: str, cls: object) -> dict[str, Any]:
    name = kind_name(predicate_type)
    return _build(
        cls,
        name=name,
        title=f"{name} predicate ({predicate_type})",
        description=(
            f"{_doc(cls)} The `predicate` of an in-toto Statement v1 whose predicateType is "
            f"{predicate_type} (schemas/PREDICATES.md)."
        ),
    )


def _statement_schema() -> dict[str, Any]:
    schema = _build(
        Statement,
        name="statement",
        title=f"in-toto Statement v1 ({STATEMENT_TYPE_V1})",
        description=(
            f"{_doc(Statement)} The payload of an evidence envelope (payloadType {INTOTO_PAYLOAD_TYPE}). "
            "A predicate of one of our types must match that type's schema; any other predicate "
            "type is generic evidence."
        ),
    )
    schema["allOf"] = [
        {
            "if": {"properties": {"predicateType": {"const": predicate_type}}, "required": ["predicateType"]},
            "then": {
                "properties": {"predicate": {"$ref": schema_id(kind_name(predicate_type) + SUFFIX)}},
                "required": ["predicate"],
            },
        }
        for predicate_type in sorted(PREDICATE_TYPES)
    ]
    return schema


def generate() -> dict[str, bytes]:
    """Every schema file: name → canonical JSON (2-space indent, sorted keys, UTF-8, final newline)."""
    schemas = {kind_name(t) + SUFFIX: _predicate_schema(t, cls) for t, cls in PREDICATE_TYPES.items()}
    schemas[STATEMENT_FILE] = _statement_schema()
    schemas[ADMIN_FILE] = _build(
        AdminRecord,
        name="admin-record",
        title=f"evledger admin record ({ADMIN_PAYLOAD_TYPE})",
        description=(
            f"The payload of an administration envelope (payloadType {ADMIN_PAYLOAD_TYPE}), "
            "selected by `kind`: key.registered, key.revoked or policy.published. "
            "It must be signed by a key registered with role admin."
        ),
    )
    schemas[ENVELOPE_FILE] = _build(
        Envelope,
        name="dsse-envelope",
        title="DSSE envelope v1",
        description=(
            f"{_doc(Envelope)} The body of POST /v1/entries. Each signature is Ed25519 over "
            'PAE(payloadType, payload) = "DSSEv1" SP len(type) SP type SP len(body) SP body '
            "by a key registered, and not revoked, before the entry's index (docs/formats.md#envelopes)."
        ),
    )
    return {
        name: (json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
        for name, schema in sorted(schemas.items())
    }


def drift(directory: Path) -> list[str]:
    """Names of schema files in `directory` that differ from `generate()`: changed, missing or stale.

    Precondition: `directory` is readable (it may be empty or missing files).
    """
    expected = generate()
    present = {path.name for path in directory.glob(f"*{SUFFIX}")}
    changed = [
        name
        for name, data in expected.items()
        if name not in present or (directory / name).read_bytes() != data
    ]
    return sorted(changed + sorted(present - expected.keys()))


def main(argv: Sequence[str] | None = None) -> int:
    """Write the schemas into the schema directory (removing stale ones), or with --check list drift.

    Returns the exit status: 0, or 1 when --check finds files that differ from the code.
    """
    parser = argparse.ArgumentParser(prog="python -m ledger.records.schema_export", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 listing files that differ")
    parser.add_argument(
        "--dir", type=Path, default=SCHEMA_DIR, help=f"schema directory (default {SCHEMA_DIR})"
    )
    args = parser.parse_args(argv)
    directory: Path = args.dir
    differing = drift(directory)
    if args.check:
        for name in differing:
            sys.stdout.write(f"{directory / name}: differs from the code\n")
        return 1 if differing else 0
    expected = generate()
    directory.mkdir(parents=True, exist_ok=True)
    for name in differing:
        if name in expected:
            (directory / name).write_bytes(expected[name])
            sys.stdout.write(f"wrote {directory / name}\n")
        else:
            (directory / name).unlink()
            sys.stdout.write(f"removed stale {directory / name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
