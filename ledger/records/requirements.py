"""Traceability inputs of IEC 62304: a requirements baseline, and test results per requirement. Pure.

A requirements baseline (`parse_baseline`) is the controlled list of system,
software and risk-control requirements a release is verified against (IEC
62304 §5.2 software requirements analysis; §7.2 risk control measures, which
§5.2.3 puts into the software requirements). It is read from
CSV, JSON or YAML and stored as canonical JSON (`encode_baseline`), so the
bytes the ledger references by SHA-256 are the same however it was written.

`requirement_results` reads which requirements each test case of a JUnit XML,
NUnit 3 or CTRF report verifies (its properties, or a mapping file:
`parse_test_mapping`) and counts, per requirement, the test cases that passed,
failed or were skipped (§5.7.1 tests for each requirement, §5.7.5 test
records, §7.3.1 verification of risk control measures, §7.3.3 traceability).
What a failed or a skipped test case is, is decided in one place:
`ledger.records.test_reports`.

Every input is untrusted: sizes are capped before parsing; XML goes through
defusedxml (`ledger.records.test_reports.parse_xml`); YAML through `yaml.safe_load`
only, and a YAML document with an anchor or an alias is refused, since an alias
is how a small YAML text expands into a huge structure ("billion laughs"):
without them, what is built is no larger than the text, which is capped. A key
written twice in one JSON object or YAML mapping is refused rather than letting
the last one silently win. Anything malformed is an EncodingError naming the
file kind, the row or field, and what is wrong; oversized input a TooLargeError.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Literal, NoReturn, TypeVar, get_args

import msgspec
import yaml

from ledger.core.encoding import JSON_ERRORS
from ledger.errors import EncodingError, InputError, TooLargeError
from ledger.records.formats import strip_bom
from ledger.records.predicates import (
    REQUIREMENT_TYPES,
    RISK_CLASSES,
    RequirementGroup,
    RequirementResult,
    RequirementType,
    RiskClass,
)
from ledger.records.test_reports import PASSED, CtrfTest, ReportCase, report_cases

BaselineFormat = Literal["auto", "csv", "json", "yaml"]
BASELINE_FORMATS: tuple[str, ...] = get_args(BaselineFormat)
# A requirement id: 1 to 64 letters, digits, '-', '_', '.', ':', starting with a letter or digit.
REQUIREMENT_ID = "[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"
ID_RULE = "1 to 64 letters, digits, '-', '_', '.' or ':', starting with a letter or digit"
MAX_TITLE_CHARS = 512
MAX_DOCUMENT_CHARS = 256  # the baseline's document id and version
MAX_BASELINE_BYTES = 8 * 1024 * 1024
MAX_REQUIREMENTS = 20_000
# A baseline nests 4 levels (document, requirements, a requirement, its implements). PyYAML's scanner slows
# down with every level of a flow collection ([[[[...), quadratically: deeper YAML is refused while parsing.
MAX_YAML_DEPTH = 32
MAX_MAPPING_BYTES = 8 * 1024 * 1024
# Per-requirement results travel in a statement, base64 inside a signed envelope, inside a ledger entry of
# at most 65,535 bytes: 32 KiB of results is 43.7 KiB as base64, leaving room for the rest of the entry.
# A result with an 8-character id and no failing test encodes to about 80 bytes: 300 of them are 24 KB.
MAX_RESULTS_BYTES = 32 * 1024
MAX_REQUIREMENT_RESULTS = 300
MAX_FAILING_TESTS = 20  # names kept per requirement; the counts stay exact
MAX_TEST_NAME_CHARS = 200  # a longer name is cut, ending in U+2026
REQUIREMENT_PROPERTIES = frozenset({"requirements", "requirement", "verifies"})  # compared case-insensitively
CSV_COLUMNS = ("id", "title", "type", "risk_class", "implements")
BASELINE = "requirements baseline"
STORED_BASELINE = "stored requirements baseline"
MAPPING = "test mapping"
MAPPING_COLUMNS = ("test", "requirements")

_REQUIREMENT_ID = re.compile(REQUIREMENT_ID)
_ID_SEPARATORS = re.compile("[,;]")
_REQUIRED_FIELDS = ("id", "title", "type")
_TYPES: dict[str, RequirementType] = {name: name for name in REQUIREMENT_TYPES}
_RISKS: dict[str, RiskClass] = {name: name for name in RISK_CLASSES}
_ELLIPSIS = "\u2026"
# The events are read with libyaml's parser when PyYAML has it (some 14 times faster: a 3 MB baseline of
# 20,000 requirements in 0.5 s rather than 7 s); only yaml.safe_load builds values.
_YAML_EVENTS = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
_encoder = msgspec.json.Encoder(order="sorted")


class Requirement(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One requirement of a baseline: a system, software or risk-control requirement (IEC 62304 §5.2).

    `id` matches REQUIREMENT_ID; `title` is one line of 1 to 512 characters.
    `risk_class` is the ledger's low/medium/high (as change records use it),
    not the software safety class A/B/C of §4.3. `implements` lists, sorted and
    without repeats, the risk-control requirements (§7.2 risk control measures,
    in the software requirements by §5.2.3) this one implements, each defined
    in the same baseline.
    Built by `parse_baseline` and `decode_baseline`, which check all of this.
    """

    id: str
    title: str
    type: RequirementType
    risk_class: RiskClass | None = None
    implements: list[str] = msgspec.field(default_factory=list)


class Baseline(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A requirements baseline: a document (id and version) and its requirements (IEC 62304 §5.2, §7.2).

    `requirements` holds at least one requirement, sorted by id, ids unique
    (also ignoring case), and every `implements` names a risk-control
    requirement of the list. Built by `parse_baseline` and `decode_baseline`.
    """

    document_id: str
    document_version: str
    requirements: list[Requirement]


_baseline_decoder = msgspec.json.Decoder(Baseline)


# Shared text rules


def is_requirement_id(text: str) -> bool:
    """Whether `text` is a requirement id: REQUIREMENT_ID (ID_RULE), exactly, no surrounding white space."""
    return _REQUIREMENT_ID.fullmatch(text) is not None


_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean ({!r})"),  # before int: a bool is an int
    ((int, float), "a number ({!r})"),
    (dt.date, "a date ({})"),  # YAML reads 2024-03-11 as a date
    (str, "the string {!r}"),
    (list, "a list"),
    (dict, "a mapping"),
)


def _kind(value: object) -> str:
    """What a decoded JSON or YAML value is, in words, with the value when it is a scalar."""
    if value is None:
        return "null"
    for types, words in _KINDS:
        if isinstance(value, types):
            return words.format(value)
    return f"a {type(value).__name__}"


def _string(value: object, what: str) -> str:
    """`value` without surrounding white space; EncodingError naming `what` when it is not a string."""
    if not isinstance(value, str):
        hint = "; write it in quotes" if isinstance(value, int | float | dt.date) else ""
        raise EncodingError(f"{what} must be a string; got {_kind(value)}{hint}")
    return value.strip()


def _line(value: object, what: str, limit: int) -> str:
    """`value` as one non-empty line of at most `limit` characters, without surrounding white space."""
    text = _string(value, what)
    if not text:
        raise EncodingError(f"{what} must not be empty")
    if len(text) > limit:
        raise EncodingError(f"{what} is {len(text)} characters long, over the {limit}-character limit")
    if any(unicodedata.category(char) == "Cc" for char in text):
        raise EncodingError(f"{what} must be one line of text, without control characters")
    return text


def _requirement_id(value: object, what: str) -> str:
    """`value`, white space around it dropped, as a requirement id; EncodingError naming `what` if not."""
    text = _string(value, what)
    if not is_requirement_id(text):
        raise EncodingError(f"{what}: {text!r} is not a requirement id ({ID_RULE})")
    return text


def split_requirement_ids(text: str, what: str) -> list[str]:
    """The requirement ids written in `text`, in order, each once; EncodingError naming `what` if malformed.

    Ids are separated by commas, semicolons and/or white space ("REQ-1,REQ-2",
    "REQ-1; REQ-2", "REQ-1 REQ-2"). Precondition: none; an empty text, an empty
    item between separators ("REQ-1,,REQ-2", a trailing comma) or anything
    that is not a requirement id (ID_RULE) is refused.
    """
    ids: list[str] = []
    for item in _ID_SEPARATORS.split(text):
        words = item.split()
        if not words:
            raise EncodingError(f"{what} holds an empty requirement id: {text!r}")
        ids.extend(_requirement_id(word, what) for word in words)
    return list(dict.fromkeys(ids))


def _id_list(value: object, what: str, *, allow_empty: bool) -> list[str]:
    """A JSON or YAML list of requirement ids, each once, in order; EncodingError naming `what` otherwise."""
    if not isinstance(value, list):
        raise EncodingError(f"{what} must be a list of requirement ids; got {_kind(value)}")
    if not value and not allow_empty:
        raise EncodingError(f"{what} lists no requirement id")
    return list(dict.fromkeys(_requirement_id(item, f"{what}[{n}]") for n, item in enumerate(value)))


def _check_size(data: bytes, limit: int, what: str) -> None:
    if len(data) > limit:
        raise TooLargeError(f"{what} is {len(data)} bytes, over the {limit}-byte limit")


def _text_of(data: bytes, what: str) -> str:
    """`data` as UTF-8 text, a leading byte order mark dropped (spreadsheets write one)."""
    try:
        return strip_bom(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EncodingError(f"{what} is not UTF-8 text: {exc}") from None


def _refuse_repeated_keys(what: str, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise EncodingError(f"{what} repeats the key {key!r} in one object")
            seen.add(key)
    return document


def _refuse_constant(what: str, name: str) -> NoReturn:
    raise EncodingError(f"{what} holds {name}, which JSON does not allow")


def _json_document(text: str, what: str) -> object:
    """A JSON text as Python values. The standard library's reader, for its hook that sees repeated keys."""
    try:
        return json.loads(
            text,
            object_pairs_hook=partial(_refuse_repeated_keys, what),
            parse_constant=partial(_refuse_constant, what),
        )
    except RecursionError:
        raise EncodingError(f"{what} nests too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError, and an integer too long to convert
        raise EncodingError(f"{what} is not valid JSON: {exc}") from None


class _YamlMapping:
    """A mapping being read from YAML events: the keys seen, and whether the next node is a key."""

    __slots__ = ("expect_key", "keys")

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.expect_key = True


def _yaml_line(event: yaml.Event) -> str:
    return f"line {event.start_mark.line + 1}" if event.start_mark is not None else "somewhere"


def _note_node(mapping: _YamlMapping, event: yaml.Event, what: str) -> None:
    """Account for a node starting inside `mapping`: a key must be a scalar, and new to the mapping."""
    if mapping.expect_key:
        if not isinstance(event, yaml.ScalarEvent):
            raise EncodingError(f"{what} uses a list or mapping as a key ({_yaml_line(event)})")
        if event.value in mapping.keys:
            raise EncodingError(
                f"{what} repeats the key {event.value!r} in one mapping ({_yaml_line(event)})"
            )
        mapping.keys.add(event.value)
    mapping.expect_key = not mapping.expect_key


def _check_yaml_events(text: str, what: str) -> None:
    """Refuse YAML with an anchor, an alias, a non-scalar or repeated key, or nested over MAX_YAML_DEPTH.

    Reads the parser's events only, as it makes them: nothing is constructed,
    no alias expanded, and a refusal stops the parser where it is.
    """
    frames: list[_YamlMapping | None] = []  # None for a sequence
    for event in yaml.parse(text, Loader=_YAML_EVENTS):
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            sign = "alias *" if isinstance(event, yaml.AliasEvent) else "anchor &"
            raise EncodingError(
                f"{what} uses the YAML {sign}{event.anchor} ({_yaml_line(event)}); anchors and aliases are "
                "refused, since aliases can expand a small document without bound"
            )
        if isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent) and frames and frames[-1]:
            _note_node(frames[-1], event, what)
        if isinstance(event, yaml.MappingStartEvent):
            frames.append(_YamlMapping())
        elif isinstance(event, yaml.SequenceStartEvent):
            frames.append(None)
        elif isinstance(event, yaml.CollectionEndEvent):
            frames.pop()
        if len(frames) > MAX_YAML_DEPTH:
            raise EncodingError(
                f"{what} nests lists and mappings more than {MAX_YAML_DEPTH} deep ({_yaml_line(event)})"
            )


def _at(mark: yaml.Mark | None) -> str:
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What PyYAML found wrong and where, on one line (its own text quotes the lines around, over several)."""
    if isinstance(exc, yaml.MarkedYAMLError) and (exc.context or exc.problem):
        parts = [f"{exc.context}{_at(exc.context_mark)}"] if exc.context else []
        parts += [f"{exc.problem}{_at(exc.problem_mark)}"] if exc.problem else []
        return ", ".join(parts)
    return " ".join(str(exc).split())


def _yaml_document(text: str, what: str) -> object:
    """A YAML text as Python values, by `yaml.safe_load` once `_check_yaml_events` has passed it."""
    try:
        _check_yaml_events(text, what)
        document: object = yaml.safe_load(text)
    except RecursionError:
        raise EncodingError(f"{what} nests too deeply") from None
    except yaml.YAMLError as exc:
        raise EncodingError(f"{what} is not valid YAML: {_yaml_problem(exc)}") from None
    return document


def _csv_records(text: str, what: str) -> list[list[str]]:
    """The records of a CSV text (RFC 4180; a quoted cell may hold commas and line breaks)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        return list(reader)
    except csv.Error as exc:
        raise EncodingError(f"{what}, line {reader.line_num}: not valid CSV: {exc}") from None


def _csv_header(record: list[str], columns: Sequence[str], required: Sequence[str], where: str) -> list[str]:
    """The column names of a header record (lower case), each known, none twice, every required one there."""
    header = [cell.strip().lower() for cell in record]
    for name in header:
        if not name:
            raise EncodingError(f"{where}: a column has no name; the columns are {', '.join(columns)}")
        if name not in columns:
            raise EncodingError(f"{where}: unknown column {name!r}; the columns are {', '.join(columns)}")
        if header.count(name) > 1:
            raise EncodingError(f"{where}: the column {name!r} appears twice")
    for name in required:
        if name not in header:
            raise EncodingError(
                f"{where}: the header has no {name!r} column (it needs {', '.join(required)})"
            )
    return header


def _csv_rows(
    text: str, columns: Sequence[str], required: Sequence[str], what: str
) -> list[tuple[int, dict[str, str]]]:
    """(row number, cells by column, stripped) of each data row of a CSV text, rows numbered from 1.

    The header is the first row with a cell that is not empty; rows whose
    cells are all empty (blank lines, a spreadsheet's trailing rows) are skipped.
    """
    records = _csv_records(text, what)
    first = next((n for n, record in enumerate(records) if any(cell.strip() for cell in record)), None)
    if first is None:
        raise EncodingError(f"{what} is empty; it needs a header row ({', '.join(columns)})")
    header = _csv_header(records[first], columns, required, f"{what}, row {first + 1}")
    rows: list[tuple[int, dict[str, str]]] = []
    for number, record in enumerate(records[first + 1 :], start=first + 2):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            raise EncodingError(f"{what}, row {number} has {len(record)} cells; the header has {len(header)}")
        rows.append((number, {name: cell.strip() for name, cell in zip(header, record, strict=True)}))
    return rows


def _starts_json(text: str) -> bool:
    return text.lstrip().startswith("{")


# (1) Requirements baseline


_Choice = TypeVar("_Choice", bound=str)


def _choice(value: object, what: str, choices: Mapping[str, _Choice]) -> _Choice:
    text = _string(value, what) if isinstance(value, str) else value
    if not isinstance(text, str) or text not in choices:
        shown = repr(text) if isinstance(text, str) else _kind(value)
        raise EncodingError(f"{what} must be one of {', '.join(choices)}; got {shown}")
    return choices[text]


def _requirement(fields: Mapping[Any, Any], where: str) -> Requirement:
    """One requirement from its fields (CSV cells, or a JSON/YAML mapping); `where` prefixes every message."""
    unknown = [name for name in fields if name not in CSV_COLUMNS]
    if unknown:
        raise EncodingError(
            f"{where}: unknown field {unknown[0]!r}; a requirement has {', '.join(CSV_COLUMNS)}"
        )
    for name in _REQUIRED_FIELDS:
        if name not in fields:
            raise EncodingError(f"{where}: the field {name!r} is missing")
    risk_class = fields.get("risk_class")
    return Requirement(
        id=_requirement_id(fields["id"], f"{where}: id"),
        title=_line(fields["title"], f"{where}: title", MAX_TITLE_CHARS),
        type=_choice(fields["type"], f"{where}: type", _TYPES),
        risk_class=None if risk_class is None else _choice(risk_class, f"{where}: risk_class", _RISKS),
        implements=sorted(_id_list(fields.get("implements", []), f"{where}: implements", allow_empty=True)),
    )


def _assemble(
    document_id: str, document_version: str, rows: list[tuple[str, Requirement]], what: str
) -> Baseline:
    """The baseline of `rows` (where each was read; what): ids unique, references resolved, sorted."""
    if not rows:
        raise EncodingError(f"{what} lists no requirement; a baseline needs at least one")
    first: dict[str, tuple[str, str]] = {}  # the id ignoring case: (where it was read, the id as written)
    by_id: dict[str, Requirement] = {}
    for where, requirement in rows:
        earlier = first.setdefault(requirement.id.casefold(), (where, requirement.id))
        if earlier[0] != where:
            if earlier[1] == requirement.id:
                raise EncodingError(
                    f"{what}, {where}: id {requirement.id!r} is already defined ({earlier[0]})"
                )
            raise EncodingError(
                f"{what}, {where}: id {requirement.id!r} differs only in case from {earlier[1]!r} "
                f"({earlier[0]})"
            )
        by_id[requirement.id] = requirement
    for where, requirement in rows:
        for target in requirement.implements:
            implemented = by_id.get(target)
            if target == requirement.id:
                raise EncodingError(f"{what}, {where}: {target!r} implements itself")
            if implemented is None:
                raise EncodingError(
                    f"{what}, {where}: implements {target!r}, which the baseline does not define"
                )
            if implemented.type != "risk-control":
                raise EncodingError(
                    f"{what}, {where}: implements {target!r}, a {implemented.type} requirement; only "
                    "risk-control requirements (risk control measures, IEC 62304 §7.2) are implemented"
                )
    return Baseline(document_id, document_version, [by_id[key] for key in sorted(by_id)])


def _check_count(count: int, what: str) -> None:
    if count > MAX_REQUIREMENTS:
        raise TooLargeError(f"{what} lists {count} requirements, over the limit of {MAX_REQUIREMENTS}")


def _baseline_from_csv(text: str, document_id: str | None, document_version: str | None) -> Baseline:
    if document_id is None or document_version is None:
        raise InputError(
            f"a CSV {BASELINE} does not name its document: give its document id and version with it"
        )
    doc_id = _line(document_id, f"{BASELINE}: the document id", MAX_DOCUMENT_CHARS)
    doc_version = _line(document_version, f"{BASELINE}: the document version", MAX_DOCUMENT_CHARS)
    rows = _csv_rows(text, CSV_COLUMNS, _REQUIRED_FIELDS, BASELINE)
    _check_count(len(rows), BASELINE)
    requirements: list[tuple[str, Requirement]] = []
    for number, cells in rows:
        fields: dict[str, object] = dict(cells)
        fields["risk_class"] = cells.get("risk_class") or None
        fields["implements"] = (
            split_requirement_ids(cells["implements"], f"{BASELINE}, row {number}: implements")
            if cells.get("implements")
            else []
        )
        requirements.append((f"row {number}", _requirement(fields, f"{BASELINE}, row {number}")))
    return _assemble(doc_id, doc_version, requirements, BASELINE)


def _document_fields(document: object, what: str) -> tuple[object, object]:
    """The document mapping's (id, version) values, unchecked; EncodingError if it is not {id, version}."""
    if not isinstance(document, dict):
        raise EncodingError(f"{what}: document must be a mapping with id and version; got {_kind(document)}")
    for name in document:
        if name not in {"id", "version"}:
            raise EncodingError(f"{what}: unknown field document.{name}; the document has id and version")
    for name in ("id", "version"):
        if name not in document:
            raise EncodingError(f"{what}: document.{name} is missing")
    return document["id"], document["version"]


def _agree(given: str | None, found: str, name: str, what: str) -> None:
    if given is not None and given != found:
        raise InputError(
            f"{what} is document {name} {found!r}, but {given!r} was given: they contradict each other"
        )


def _baseline_from_document(
    document: object, what: str, document_id: str | None = None, document_version: str | None = None
) -> Baseline:
    """The baseline of a decoded JSON or YAML document: `{"document": {...}, "requirements": [...]}`."""
    if not isinstance(document, dict):
        raise EncodingError(
            f"{what}: the top level must be a mapping (document, requirements); got {_kind(document)}"
        )
    for name in document:
        if name not in {"document", "requirements"}:
            raise EncodingError(f"{what}: unknown field {name!r}; a baseline has document and requirements")
    for name in ("document", "requirements"):
        if name not in document:
            raise EncodingError(f"{what}: the field {name!r} is missing")
    raw_id, raw_version = _document_fields(document["document"], what)
    doc_id = _line(raw_id, f"{what}: document.id", MAX_DOCUMENT_CHARS)
    doc_version = _line(raw_version, f"{what}: document.version", MAX_DOCUMENT_CHARS)
    _agree(document_id, doc_id, "id", what)
    _agree(document_version, doc_version, "version", what)
    listed = document["requirements"]
    if not isinstance(listed, list):
        raise EncodingError(f"{what}: requirements must be a list; got {_kind(listed)}")
    _check_count(len(listed), what)
    rows: list[tuple[str, Requirement]] = []
    for number, fields in enumerate(listed, start=1):
        where = f"requirement {number}"
        if not isinstance(fields, dict):
            raise EncodingError(
                f"{what}, {where}: must be a mapping (id, title, type, ...); got {_kind(fields)}"
            )
        rows.append((where, _requirement(fields, f"{what}, {where}")))
    return _assemble(doc_id, doc_version, rows, what)


def _detect_baseline(text: str) -> str:
    """`auto`: JSON for an object, CSV when the first line names id and title between commas, else YAML."""
    if _starts_json(text):
        return "json"
    first = text.lstrip().partition("\n")[0]
    cells = {cell.strip().strip('"').strip().lower() for cell in first.split(",")}
    return "csv" if {"id", "title"} <= cells else "yaml"


def parse_baseline(
    data: bytes,
    *,
    document_id: str | None = None,
    document_version: str | None = None,
    file_format: BaselineFormat = "auto",
) -> Baseline:
    """A requirements baseline read from CSV, JSON or YAML (IEC 62304 §5.2; §7.2 risk control).

    JSON and YAML: `{"document": {"id", "version"}, "requirements": [{"id",
    "title", "type", "risk_class"?, "implements"?}, ...]}`; `implements` is a
    list. CSV: a header row naming the columns id, title, type and optionally
    risk_class and implements, in any order (other columns are refused), then
    a row per requirement; empty risk_class and implements cells mean none;
    implements separates ids with `;` (or commas, or white space). Rows whose
    cells are all empty are skipped; rows are numbered as a spreadsheet shows
    them (the header is row 1). White space around every value is dropped.

    Preconditions: `data` is UTF-8 (a byte order mark is allowed), at most
    MAX_BASELINE_BYTES, with 1 to MAX_REQUIREMENTS requirements. A CSV baseline
    needs `document_id` and `document_version` (InputError without them); for
    JSON and YAML they may be given, and must then equal the file's (InputError
    on a contradiction). `file_format` `auto` reads JSON when the text starts
    with `{`, CSV when its first line holds `id` and `title` between commas,
    YAML otherwise. Each id is REQUIREMENT_ID, unique ignoring case; `type` is
    system, software or risk-control; `risk_class` low, medium or high; each of
    `implements` is a risk-control requirement of the same baseline. YAML is
    read with `yaml.safe_load`; anchors, aliases and repeated keys are refused.
    """
    if file_format not in BASELINE_FORMATS:
        raise InputError(
            f"the baseline format must be one of {', '.join(BASELINE_FORMATS)}; got {file_format!r}"
        )
    _check_size(data, MAX_BASELINE_BYTES, BASELINE)
    text = _text_of(data, BASELINE)
    chosen = _detect_baseline(text) if file_format == "auto" else file_format
    if chosen == "csv":
        return _baseline_from_csv(text, document_id, document_version)
    document = _json_document(text, BASELINE) if chosen == "json" else _yaml_document(text, BASELINE)
    return _baseline_from_document(document, BASELINE, document_id, document_version)


def encode_baseline(baseline: Baseline) -> bytes:
    """The canonical JSON bytes of a baseline: sorted keys, no white space; the bytes stored and hashed.

    Precondition: `baseline` comes from `parse_baseline` or `decode_baseline`
    (sorted and checked); then equal baselines always give the same bytes.
    """
    return _encoder.encode(baseline)


def decode_baseline(data: bytes) -> Baseline:
    """The baseline `encode_baseline` wrote as `data`: its strict inverse.

    Precondition: none. Refused (EncodingError): anything that is not exactly
    the canonical bytes of a valid baseline (other key order, white space,
    unsorted requirements or implements, unknown fields), or that breaks a rule
    of `parse_baseline`; over MAX_BASELINE_BYTES is a TooLargeError.
    """
    _check_size(data, MAX_BASELINE_BYTES, STORED_BASELINE)
    try:
        stored = _baseline_decoder.decode(data)
    except JSON_ERRORS as exc:
        raise EncodingError(f"{STORED_BASELINE} is not a baseline: {exc}") from None
    document = {
        "document": {"id": stored.document_id, "version": stored.document_version},
        "requirements": msgspec.to_builtins(stored.requirements),
    }
    baseline = _baseline_from_document(document, STORED_BASELINE)
    if encode_baseline(baseline) != data:
        raise EncodingError(
            f"{STORED_BASELINE} is not in canonical form (sorted keys and requirements, no white space)"
        )
    return baseline


def baseline_counts(baseline: Baseline) -> dict[str, int]:
    """How many requirements of each type (system, software, risk-control; zero included) a baseline has."""
    counts: dict[str, int] = dict.fromkeys(REQUIREMENT_TYPES, 0)
    for requirement in baseline.requirements:
        counts[requirement.type] += 1
    return counts


def baseline_groups(baseline: Baseline) -> list[RequirementGroup]:
    """A baseline's requirement ids by type and risk class: the `groups` of its `requirements` predicate.

    What the policy's rules read (requirements.coverage selects by type and risk class), so that
    compliance follows from the entry alone. Deterministic: groups by type in REQUIREMENT_TYPES
    order, then by risk class (None first, then RISK_CLASSES, lowest first), only the groups that
    hold a requirement; each group's ids sorted. Precondition: `baseline` comes from
    `parse_baseline` or `decode_baseline` (ids unique).
    """
    ids: dict[tuple[RequirementType, RiskClass | None], list[str]] = {}
    for requirement in baseline.requirements:
        ids.setdefault((requirement.type, requirement.risk_class), []).append(requirement.id)
    return [
        RequirementGroup(kind, risk, sorted(ids[kind, risk]))
        for kind in REQUIREMENT_TYPES
        for risk in (None, *RISK_CLASSES)
        if (kind, risk) in ids
    ]


# (2) Per-requirement test results


def parse_test_mapping(data: bytes) -> dict[str, list[str]]:
    """Which requirements each test verifies, from a mapping file: test name -> requirement ids.

    JSON: `{"tests": {"<test name>": ["REQ-1", ...], ...}}`. CSV (anything
    not starting with `{`): a header `test,requirements` (either order), then a
    row per test, its ids separated by commas (quote the cell), semicolons or
    white space. A test name is `classname::name` for a JUnit test case, NUnit's
    full name, CTRF's name (`ledger.records.test_reports.ReportCase`); in CSV white
    space around it is dropped. Preconditions: UTF-8, at most MAX_MAPPING_BYTES,
    at least one test, no test twice, each with at least one requirement id.
    The result is sorted by test name, each test's ids as written, each once.
    """
    _check_size(data, MAX_MAPPING_BYTES, MAPPING)
    text = _text_of(data, MAPPING)
    mapping = _json_mapping(text) if _starts_json(text) else _csv_mapping(text)
    if not mapping:
        raise EncodingError(f"{MAPPING} maps no test")
    return {name: mapping[name] for name in sorted(mapping)}


def _json_mapping(text: str) -> dict[str, list[str]]:
    document = _json_document(text, MAPPING)
    if not isinstance(document, dict) or set(document) != {"tests"}:
        raise EncodingError(
            f'{MAPPING} must be an object {{"tests": {{"<test name>": ["<requirement id>", ...]}}}}'
        )
    tests = document["tests"]
    if not isinstance(tests, dict):
        raise EncodingError(f"{MAPPING}: tests must be an object of test names; got {_kind(tests)}")
    mapping: dict[str, list[str]] = {}
    for name, ids in tests.items():
        if not name.strip():
            raise EncodingError(f"{MAPPING}: a test name is empty")
        mapping[name] = _id_list(ids, f"{MAPPING}: tests[{name!r}]", allow_empty=False)
    return mapping


def _csv_mapping(text: str) -> dict[str, list[str]]:
    mapping: dict[str, list[str]] = {}
    first_row: dict[str, int] = {}
    for number, cells in _csv_rows(text, MAPPING_COLUMNS, MAPPING_COLUMNS, MAPPING):
        name = cells["test"]
        if not name:
            raise EncodingError(f"{MAPPING}, row {number}: the test name is empty")
        if name in first_row:
            raise EncodingError(
                f"{MAPPING}, row {number}: the test {name!r} is mapped already (row {first_row[name]})"
            )
        first_row[name] = number
        mapping[name] = split_requirement_ids(cells["requirements"], f"{MAPPING}, row {number}: requirements")
    return mapping


def _checked_mapping(mapping: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
    """A caller's mapping with every id checked; a bare string instead of a list of ids is refused."""
    checked: dict[str, list[str]] = {}
    for name, ids in (mapping or {}).items():
        if isinstance(ids, str):
            raise InputError(f"the {MAPPING} maps the test {name!r} to the string {ids!r}, not a list of ids")
        checked[name] = _id_list(list(ids), f"{MAPPING}: tests[{name!r}]", allow_empty=False)
    return checked


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _property_requirements(case: ET.Element, what: str) -> list[str]:
    """The ids of a <testcase> (or NUnit <test-case>) property named requirements, requirement or verifies.

    The properties read are the case's own `<properties><property name=...
    value=.../></properties>` (pytest's record_property, jest-junit's
    testCasePropertiesFile, NUnit's [Property]); a property without a `value`
    attribute has its value as text. A suite's properties name no test case.
    """
    ids: list[str] = []
    for properties in case:
        if _local(properties.tag) != "properties":
            continue
        for prop in properties:
            name = prop.get("name", "")
            if _local(prop.tag) != "property" or name.strip().lower() not in REQUIREMENT_PROPERTIES:
                continue
            value = prop.get("value")
            ids.extend(
                split_requirement_ids(
                    (prop.text or "") if value is None else value, f"{what}: property {name!r}"
                )
            )
    return ids


def _ctrf_requirements(test: CtrfTest, what: str) -> list[str]:
    """The ids of a CTRF test's `extra.requirements` (or `requirement`, `verifies`): a list or a string.

    Tags are not read: they carry free labels (`@smoke`), not only requirement ids.
    """
    if test.extra is None:
        return []
    if not isinstance(test.extra, dict):
        raise EncodingError(f"{what}: extra must be an object; got {_kind(test.extra)}")
    ids: list[str] = []
    for key, value in test.extra.items():
        if key.strip().lower() not in REQUIREMENT_PROPERTIES:
            continue
        field = f"{what}: extra.{key}"
        if isinstance(value, str):
            ids.extend(split_requirement_ids(value, field))
        elif isinstance(value, list):
            ids.extend(_id_list(value, field, allow_empty=False))
        else:
            raise EncodingError(
                f"{field} must be a list of requirement ids or a string of them; got {_kind(value)}"
            )
    return ids


def _case_requirements(case: ReportCase, kind: str) -> list[str]:
    what = f"{kind}, test case {case.name!r}"
    if isinstance(case.source, CtrfTest):
        return _ctrf_requirements(case.source, what)
    return _property_requirements(case.source, what)


def _shown(name: str) -> str:
    """A test name as `failing_tests` keeps it: control characters as U+FFFD, cut to MAX_TEST_NAME_CHARS."""
    clean = "".join("\ufffd" if unicodedata.category(char) == "Cc" else char for char in name)
    return clean if len(clean) <= MAX_TEST_NAME_CHARS else clean[: MAX_TEST_NAME_CHARS - 1] + _ELLIPSIS


def requirement_results(
    report: bytes, report_format: str = "auto", mapping: Mapping[str, Sequence[str]] | None = None
) -> list[RequirementResult]:
    """Per requirement, how many test cases verifying it passed, failed, were skipped (§5.7, §7.3.1).

    The report is a JUnit XML, NUnit 3 XML or CTRF JSON report, read and
    checked exactly as `ledger.records.test_reports.report_counts` reads it
    (`report_format` one of auto, junit, nunit, ctrf). A test case verifies the
    requirements its properties name (`requirements`, `requirement` or
    `verifies`, any case: a JUnit or NUnit case's <property> elements, a CTRF
    test's `extra`) together with those `mapping` gives for its name
    (`parse_test_mapping`); a test case that names none counts toward nothing,
    and a test name of `mapping` that the report does not hold is ignored (one
    mapping may serve several reports). Each test case counts once per
    requirement, with its outcome from `ledger.records.test_reports.report_cases`,
    the one rule of what passed, failed or was skipped. The report totals'
    adjustments that name no test case are not applied: a JUnit suite's
    `disabled="N"` (the disabled tests are not listed, so they cannot be given
    to a requirement) and an NUnit run that failed outside its test cases.

    Sorted by requirement id; requirements are not checked against a baseline
    here. Preconditions: the report is at most
    `ledger.records.test_reports.MAX_REPORT_BYTES` and has a test case; every id is a
    requirement id (ID_RULE), or EncodingError naming the test case and
    property; `mapping` maps names to lists of ids (a bare string is an
    InputError). More than MAX_REQUIREMENT_RESULTS requirements, or results
    over MAX_RESULTS_BYTES as JSON, are a TooLargeError: they would not fit one
    ledger entry (split the report).
    """
    kind, cases = report_cases(report, report_format)
    mapped = _checked_mapping(mapping)
    tallies: dict[str, list[int]] = {}
    failing: dict[str, set[str]] = {}
    for case in cases:
        for requirement in dict.fromkeys([*_case_requirements(case, kind), *mapped.get(case.name, ())]):
            tallies.setdefault(requirement, [0, 0, 0])[case.outcome] += 1
            if case.outcome != PASSED:
                failing.setdefault(requirement, set()).add(_shown(case.name))
    if len(tallies) > MAX_REQUIREMENT_RESULTS:
        raise TooLargeError(
            f"the {kind} verifies {len(tallies)} requirements; at most {MAX_REQUIREMENT_RESULTS} fit one "
            "ledger entry: split the report"
        )
    results = [
        RequirementResult(
            requirement=requirement,
            passed=passed,
            failed=failed,
            skipped=skipped,
            failing_tests=sorted(failing.get(requirement, ()))[:MAX_FAILING_TESTS],
        )
        for requirement, (passed, failed, skipped) in sorted(tallies.items())
    ]
    size = len(_encoder.encode(results))
    if size > MAX_RESULTS_BYTES:
        raise TooLargeError(
            f"the {kind}'s results for {len(results)} requirements are {size} bytes as JSON, over the "
            f"{MAX_RESULTS_BYTES}-byte limit of one ledger entry: split the report"
        )
    return results
