"""The requirements baseline (IEC 62304 §5.2, §7.2): reading CSV, JSON and YAML, and the canonical bytes.

The three fixtures under fixtures/requirements hold one baseline written three
ways (see the README there); they must read to the same value and bytes. The
negative cases each name the defect, and the message is checked in full: it is
what a quality engineer reads to fix the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import msgspec
import pytest

from ledger.errors import EncodingError, InputError, TooLargeError
from ledger.records import requirements
from ledger.records.requirements import (
    MAX_BASELINE_BYTES,
    MAX_REQUIREMENTS,
    Baseline,
    Requirement,
    baseline_counts,
    decode_baseline,
    encode_baseline,
    is_requirement_id,
    parse_baseline,
)

FIXTURES = Path(__file__).parent / "fixtures" / "requirements"
DOC = {"document_id": "SRS-ANALYZER", "document_version": "3.2"}
EXPECTED = Baseline(
    document_id="SRS-ANALYZER",
    document_version="3.2",
    requirements=[
        Requirement(
            "RC-1", "Never report a result above the reference range as normal", "risk-control", "high"
        ),
        Requirement("RC-2", "Reject a haemolysed sample before it is measured", "risk-control", "high"),
        Requirement("REQ-1", "Compute the concentration from the measured absorbance", "software", "high"),
        Requirement(
            "REQ-2",
            "Flag a result outside the reference range, high or low",
            "software",
            "high",
            ["RC-1", "RC-2"],
        ),
        Requirement("REQ-3", "Convert results between mmol/L and mg/dL", "software", "medium", ["RC-2"]),
        Requirement("REQ-4", "Render the patient report as PDF", "software", "low"),
        Requirement("SYS-1", "The analyzer reports the analyte concentration of each sample", "system"),
    ],
)
EXPECTED_BYTES = (
    b'{"document_id":"SRS-ANALYZER","document_version":"3.2","requirements":['
    b'{"id":"RC-1","implements":[],"risk_class":"high",'
    b'"title":"Never report a result above the reference range as normal","type":"risk-control"},'
    b'{"id":"RC-2","implements":[],"risk_class":"high",'
    b'"title":"Reject a haemolysed sample before it is measured","type":"risk-control"},'
    b'{"id":"REQ-1","implements":[],"risk_class":"high",'
    b'"title":"Compute the concentration from the measured absorbance","type":"software"},'
    b'{"id":"REQ-2","implements":["RC-1","RC-2"],"risk_class":"high",'
    b'"title":"Flag a result outside the reference range, high or low","type":"software"},'
    b'{"id":"REQ-3","implements":["RC-2"],"risk_class":"medium",'
    b'"title":"Convert results between mmol/L and mg/dL","type":"software"},'
    b'{"id":"REQ-4","implements":[],"risk_class":"low",'
    b'"title":"Render the patient report as PDF","type":"software"},'
    b'{"id":"SYS-1","implements":[],"risk_class":null,'
    b'"title":"The analyzer reports the analyte concentration of each sample","type":"system"}]}'
)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def csv_baseline(*rows: str, header: str = "id,title,type,risk_class,implements") -> Baseline:
    return parse_baseline("\n".join([header, *rows]).encode(), **DOC)


def json_baseline(requirements_list: object, **document: object) -> Baseline:
    body = {"document": document or {"id": "SRS-1", "version": "1"}, "requirements": requirements_list}
    return parse_baseline(json.dumps(body).encode())


SOFTWARE = {"id": "REQ-1", "title": "Compute", "type": "software"}


# The fixtures, in each format


@pytest.mark.parametrize(
    ("name", "file_format", "arguments"),
    [
        ("baseline.csv", "auto", DOC),
        ("baseline.csv", "csv", DOC),
        ("baseline.json", "auto", {}),
        ("baseline.json", "json", DOC),
        ("baseline.yaml", "auto", {}),
        ("baseline.yaml", "yaml", DOC),
    ],
)
def test_the_three_fixtures_read_to_the_same_baseline(name, file_format, arguments):
    baseline = parse_baseline(fixture(name), file_format=file_format, **arguments)
    assert baseline == EXPECTED
    assert encode_baseline(baseline) == EXPECTED_BYTES


def test_encoding_is_canonical_and_decoding_its_strict_inverse():
    encoded = encode_baseline(EXPECTED)
    assert encoded == EXPECTED_BYTES
    # The ledger refers to a baseline by the SHA-256 of these bytes: they must never drift.
    assert (
        hashlib.sha256(encoded).hexdigest()
        == "a0296af02b6435e028cdd80154632cfba47e8e15c45b4d1b5c48627cbbf68b6b"
    )
    assert decode_baseline(encoded) == EXPECTED
    assert encode_baseline(decode_baseline(encoded)) == encoded


def test_baseline_counts_every_type_zero_included():
    assert baseline_counts(EXPECTED) == {"system": 1, "software": 4, "risk-control": 2}
    only_software = csv_baseline("REQ-1,Compute,software,,")
    assert baseline_counts(only_software) == {"system": 0, "software": 1, "risk-control": 0}


def test_csv_with_a_byte_order_mark_crlf_and_only_the_required_columns():
    data = b"\xef\xbb\xbfID,Title,Type\r\nREQ-2,  Second  ,software\r\nREQ-1,First,system\r\n"
    baseline = parse_baseline(data, **DOC)
    assert baseline.requirements == [
        Requirement("REQ-1", "First", "system"),
        Requirement("REQ-2", "Second", "software"),
    ]


@pytest.mark.parametrize("cell", ["RC-1 RC-2", "RC-2;RC-1", '"RC-2, RC-1"', " RC-1 ;RC-2 ", "RC-2;RC-1;RC-2"])
def test_csv_implements_separators_give_sorted_unique_ids(cell):
    baseline = csv_baseline(
        "RC-1,Measure one,risk-control,,", "RC-2,Measure two,risk-control,,", f"REQ-1,R,software,,{cell}"
    )
    assert baseline.requirements[2] == Requirement("REQ-1", "R", "software", None, ["RC-1", "RC-2"])


def test_requirement_id_rule():
    longest = "R" + "x" * 63
    assert all(map(is_requirement_id, ["REQ-1", "a", "7", "SRS:5.2.1", "rc_1.a-b", longest]))
    assert not any(
        map(is_requirement_id, ["", "-REQ", "_x", ".x", "REQ 1", "RÉQ-1", "REQ/1", longest + "x", "REQ-1\n"])
    )
    assert csv_baseline(f"{longest},T,software,,").requirements[0].id == longest


def test_title_of_512_characters_is_kept():
    assert csv_baseline(f"REQ-1,{'t' * 512},software,,").requirements[0].title == "t" * 512


def test_json_and_yaml_arguments_that_agree_with_the_file_are_accepted():
    assert parse_baseline(fixture("baseline.yaml"), document_id="SRS-ANALYZER") == EXPECTED
    assert parse_baseline(fixture("baseline.json"), document_version="3.2") == EXPECTED


# Refused: what the requirements say

B = "requirements baseline"
NOT_AN_ID = (
    "is not a requirement id (1 to 64 letters, digits, '-', '_', '.' or ':', starting with a letter or digit)"
)
TYPES = "type must be one of system, software, risk-control"
NO_REQUIREMENT = f"{B} lists no requirement; a baseline needs at least one"
COLUMNS = "the columns are id, title, type, risk_class, implements"


def message(text: str) -> str:
    return "^" + re.escape(text) + "$"


SIX_ROWS = [f"REQ-{n},{title},software,," for n, title in enumerate("ABCDE", start=1)]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            ["REQ-1,A,software,,", "REQ-2,B,software,,", "REQ-1,C,software,,"],
            "row 4: id 'REQ-1' is already defined (row 2)",
        ),
        (
            ["REQ-1,A,software,,", "req-1,B,software,,"],
            "row 3: id 'req-1' differs only in case from 'REQ-1' (row 2)",
        ),
        ([*SIX_ROWS, "REQ-6,F,hw,,"], f"row 7: {TYPES}; got 'hw'"),
        (["REQ-1,A,Software,,"], f"row 2: {TYPES}; got 'Software'"),
        (
            ["REQ-1,A,software,critical,"],
            "row 2: risk_class must be one of low, medium, high; got 'critical'",
        ),
        (["REQ-1,A,software,,RC-9"], "row 2: implements 'RC-9', which the baseline does not define"),
        (
            ["REQ-1,A,software,,REQ-2", "REQ-2,B,software,,"],
            (
                "row 2: implements 'REQ-2', a software requirement; only risk-control requirements "
                "(risk control measures, IEC 62304 §7.2) are implemented"
            ),
        ),
        (["RC-1,A,risk-control,,RC-1"], "row 2: 'RC-1' implements itself"),
        (["REQ-1,A,software,,RC-1;;RC-2"], "row 2: implements holds an empty requirement id: 'RC-1;;RC-2'"),
        (["REQ-1,A,software,,RC-1/2"], f"row 2: implements: 'RC-1/2' {NOT_AN_ID}"),
        (["REQ 1,A,software,,"], f"row 2: id: 'REQ 1' {NOT_AN_ID}"),
        ([",A,software,,"], f"row 2: id: '' {NOT_AN_ID}"),
        (["REQ-1,,software,,"], "row 2: title must not be empty"),
        (
            [f"REQ-1,{'t' * 513},software,,"],
            "row 2: title is 513 characters long, over the 512-character limit",
        ),
        (
            ['REQ-1,"two\nlines",software,,'],
            "row 2: title must be one line of text, without control characters",
        ),
        (["REQ-1,A,software,,", "REQ-2,B,software"], "row 3 has 3 cells; the header has 5"),
        (["REQ-1,A,software,,,extra"], "row 2 has 6 cells; the header has 5"),
    ],
)
def test_csv_baseline_defects_are_refused_naming_the_row(rows, expected):
    with pytest.raises(EncodingError, match=message(f"{B}, {expected}")):
        csv_baseline(*rows)


@pytest.mark.parametrize("rows", [[], [",,,,", ""]])
def test_empty_csv_baseline_is_refused(rows):
    with pytest.raises(EncodingError, match=message(NO_REQUIREMENT)):
        csv_baseline(*rows)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("id,title,type,owner", f"unknown column 'owner'; {COLUMNS}"),
        ("id,title,type,risk class", f"unknown column 'risk class'; {COLUMNS}"),
        ("id,title,risk_class", "the header has no 'type' column (it needs id, title, type)"),
        ("id,title,type,Title", "the column 'title' appears twice"),
        ("id,title,type,", f"a column has no name; {COLUMNS}"),
    ],
)
def test_bad_csv_header_is_refused(header, expected):
    with pytest.raises(EncodingError, match=message(f"{B}, row 1: {expected}")):
        csv_baseline("REQ-1,A,software,x", header=header)


def test_csv_needs_the_document_id_and_version_from_the_caller():
    data = b"id,title,type\nREQ-1,A,software\n"
    for arguments in ({}, {"document_id": "SRS-1"}, {"document_version": "1"}):
        with pytest.raises(InputError, match=f"^a CSV {B} does not name its document") as caught:
            parse_baseline(data, **arguments)
        assert type(caught.value) is InputError
    with pytest.raises(EncodingError, match=message(f"{B}: the document id must not be empty")):
        parse_baseline(data, document_id=" ", document_version="1")


def test_csv_rows_are_numbered_as_a_spreadsheet_shows_them_blank_lines_included():
    with pytest.raises(EncodingError, match=message(f"{B}, row 3: unknown column 'owner'; {COLUMNS}")):
        parse_baseline(b"\n,,\nid,title,owner\n", file_format="csv", **DOC)
    with pytest.raises(EncodingError, match=message(f"{B}, row 6: {TYPES}; got 'hw'")):
        parse_baseline(b"\n\nid,title,type\nREQ-1,A,software\n\nREQ-2,B,hw\n", **DOC)


def test_malformed_csv_is_refused():
    with pytest.raises(EncodingError, match=message(f"{B}, line 2: not valid CSV: unexpected end of data")):
        parse_baseline(b'id,title,type\nREQ-1,"unterminated,software\n', **DOC)


# Refused: JSON and YAML structure and types

QUOTE = "; write it in quotes"
TOP = f"{B}: the top level must be a mapping (document, requirements); got"


@pytest.mark.parametrize(
    ("requirements_list", "expected"),
    [
        ([{**SOFTWARE, "id": 12}], f"requirement 1: id must be a string; got a number (12){QUOTE}"),
        ([{**SOFTWARE, "title": ["A"]}], "requirement 1: title must be a string; got a list"),
        ([{**SOFTWARE, "type": None}], f"requirement 1: {TYPES}; got null"),
        (
            [{**SOFTWARE, "risk_class": ""}],
            "requirement 1: risk_class must be one of low, medium, high; got ''",
        ),
        (
            [{**SOFTWARE, "implements": "RC-1"}],
            "requirement 1: implements must be a list of requirement ids; got the string 'RC-1'",
        ),
        (
            [{**SOFTWARE, "implements": [1]}],
            f"requirement 1: implements[0] must be a string; got a number (1){QUOTE}",
        ),
        (
            [{**SOFTWARE, "owner": "qa"}],
            "requirement 1: unknown field 'owner'; a requirement has id, title, type, risk_class, implements",
        ),
        ([{"id": "REQ-1", "title": "A"}], "requirement 1: the field 'type' is missing"),
        (
            [SOFTWARE, "REQ-2"],
            "requirement 2: must be a mapping (id, title, type, ...); got the string 'REQ-2'",
        ),
    ],
)
def test_json_baseline_with_wrong_types_is_refused(requirements_list, expected):
    with pytest.raises(EncodingError, match=message(f"{B}, {expected}")):
        json_baseline(requirements_list)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'["REQ-1"]', f"{TOP} a list"),
        (b'{"document": {"id": "S", "version": "1"}, "requirements": []}', NO_REQUIREMENT),
        (
            b'{"document": {"id": "S", "version": "1"}, "requirements": {}}',
            f"{B}: requirements must be a list; got a mapping",
        ),
        (b'{"requirements": []}', f"{B}: the field 'document' is missing"),
        (b'{"document": {"id": "S"}, "requirements": []}', f"{B}: document.version is missing"),
        (
            b'{"document": {"id": "S", "version": "1", "date": "x"}, "requirements": []}',
            f"{B}: unknown field document.date; the document has id and version",
        ),
        (
            b'{"document": "SRS-1", "requirements": []}',
            f"{B}: document must be a mapping with id and version; got the string 'SRS-1'",
        ),
        (
            b'{"document": {"id": "S", "version": 2}, "requirements": []}',
            f"{B}: document.version must be a string; got a number (2){QUOTE}",
        ),
        (
            b'{"document": {"id": "S", "version": "1"}, "requirements": [], "approved": true}',
            f"{B}: unknown field 'approved'; a baseline has document and requirements",
        ),
        (
            b'{"document": {"id": "S", "version": "1"}, "requirements": [{"id": "A", "id": "B"}]}',
            f"{B} repeats the key 'id' in one object",
        ),
        (
            b'{"document": {"id": "S", "version": "1"}, "requirements": [{"id": "A", "title": NaN}]}',
            f"{B} holds NaN, which JSON does not allow",
        ),
        (
            b'{"document": {"id": "S", "version": "1"}, "requirements": []} x',
            f"{B} is not valid JSON: Extra data: line 1 column 63 (char 62)",
        ),
        (b'{"document": ' + b"[" * 100_000, f"{B} nests too deeply"),
    ],
)
def test_json_baseline_structure_defects_are_refused(data, expected):
    with pytest.raises(EncodingError, match=message(expected)):
        parse_baseline(data)


HEAD = "document: {id: SRS-1, version: '1'}\nrequirements:\n"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("- id: REQ-1\n  title: A\n  type: software\n", f"{TOP} a list"),
        ("just words\n", f"{TOP} the string 'just words'"),
        ("", f"{TOP} null"),
        ("# only a comment\n", f"{TOP} null"),
        (
            "document: {id: SRS-1, version: 1.10}\nrequirements: []\n",
            f"{B}: document.version must be a string; got a number (1.1){QUOTE}",
        ),
        (
            "document: {id: SRS-1, version: 2024-03-11}\nrequirements: []\n",
            f"{B}: document.version must be a string; got a date (2024-03-11){QUOTE}",
        ),
        (
            HEAD + "  - {id: 7, title: A, type: software}\n",
            f"{B}, requirement 1: id must be a string; got a number (7){QUOTE}",
        ),
        (
            HEAD + "  - {id: REQ-1, title: yes, type: software}\n",
            f"{B}, requirement 1: title must be a string; got a boolean (True){QUOTE}",
        ),
        (
            HEAD + "  - {id: REQ-1, title: A, type: software}\ndocument: {id: SRS-2, version: '2'}\n",
            f"{B} repeats the key 'document' in one mapping (line 4)",
        ),
        (
            HEAD + "  - id: REQ-1\n    title: A\n    id: REQ-2\n",
            f"{B} repeats the key 'id' in one mapping (line 5)",
        ),
        (HEAD + "  - {? [a, b] : c}\n", f"{B} uses a list or mapping as a key (line 3)"),
        (HEAD + "  - {id: REQ-1, title: A, type: [software]}\n", f"{B}, requirement 1: {TYPES}; got a list"),
        (
            HEAD + "  - id: REQ-1\n    title: |\n      two\n      lines\n    type: software\n",
            f"{B}, requirement 1: title must be one line of text, without control characters",
        ),
        (
            "document: {id: SRS-1, version: '1'}\nrequirements: []\n---\ndocument: {}\n",
            (
                f"{B} is not valid YAML: expected a single document in the stream (line 1, column 1), "
                "but found another document (line 3, column 1)"
            ),
        ),
        (
            "document: !!python/object/apply:os.system ['true']\nrequirements: []\n",
            (
                f"{B} is not valid YAML: could not determine a constructor for the tag "
                "'tag:yaml.org,2002:python/object/apply:os.system' (line 1, column 11)"
            ),
        ),
    ],
)
def test_yaml_baseline_with_wrong_shape_or_types_is_refused(data, expected):
    with pytest.raises(EncodingError, match=message(expected)):
        parse_baseline(data.encode(), file_format="yaml")


BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
"""
UNBOUNDED = "anchors and aliases are refused, since aliases can expand a small document without bound"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (BILLION_LAUGHS, f"{B} uses the YAML anchor &a (line 1); {UNBOUNDED}"),
        (HEAD + "  - *undefined\n", f"{B} uses the YAML alias *undefined (line 3); {UNBOUNDED}"),
        (
            "base: &base {type: software}\n" + HEAD + "  - {<<: *base, id: REQ-1, title: A}\n",
            f"{B} uses the YAML anchor &base (line 1); {UNBOUNDED}",
        ),
    ],
)
def test_yaml_anchors_and_aliases_are_refused_before_anything_is_built(monkeypatch, data, expected):
    def must_not_load(_text: str) -> object:
        raise AssertionError("safe_load ran on a document with an alias")

    monkeypatch.setattr(requirements.yaml, "safe_load", must_not_load)
    with pytest.raises(EncodingError, match=message(expected)):
        parse_baseline(data.encode())


def test_malformed_or_deeply_nested_yaml_is_refused_quickly():
    # libyaml, when PyYAML has it, words the parse error ("did not find expected ','"); PyYAML otherwise.
    flow_mapping = re.escape(f"{B} is not valid YAML: while parsing a flow mapping (line 1, column 11), ")
    with pytest.raises(EncodingError, match=flow_mapping):
        parse_baseline(b"document: {id: SRS-1, version: '1'\n", file_format="yaml")
    too_deep = f"{B} nests lists and mappings more than 32 deep"
    with pytest.raises(EncodingError, match=message(f"{too_deep} (line 1)")):
        parse_baseline(("[" * 33 + "]" * 33).encode(), file_format="yaml")
    block = "".join(f"{' ' * n}k:\n" for n in range(33)) + " " * 33 + "k: v\n"
    with pytest.raises(EncodingError, match=message(f"{too_deep} (line 33)")):
        parse_baseline(block.encode(), file_format="yaml")
    with pytest.raises(EncodingError, match=message(f"{TOP} a list")):  # 32 levels pass the check
        parse_baseline(("[" * 32 + "]" * 32).encode(), file_format="yaml")
    # PyYAML's scanner slows quadratically with flow depth; this took minutes before the depth limit.
    with pytest.raises(EncodingError, match=f"^{B} (is not valid YAML|nests lists and mappings)"):
        parse_baseline(b"[" * 100_000, file_format="yaml")


def test_yaml_is_only_ever_safe_loaded():
    source = Path(requirements.__file__).read_text()
    assert re.findall(r"yaml\.\w*load\w*\(", source) == ["yaml.safe_load("]


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("baseline.json", {"document_id": "SRS-OTHER"}, "id 'SRS-ANALYZER', but 'SRS-OTHER' was given"),
        (
            "baseline.yaml",
            {"document_id": "SRS-ANALYZER", "document_version": "3.3"},
            "version '3.2', but '3.3' was given",
        ),
    ],
)
def test_arguments_contradicting_the_file_are_refused(name, arguments, expected):
    with pytest.raises(InputError, match=message(f"{B} is document {expected}: they contradict each other")):
        parse_baseline(fixture(name), **arguments)


def test_format_detection_and_a_named_format_that_does_not_fit():
    with pytest.raises(EncodingError, match=f"^{B} is not valid JSON: Expecting value"):
        parse_baseline(fixture("baseline.yaml"), file_format="json")
    with pytest.raises(EncodingError, match=message(f"{B}, row 1: unknown column '{{'; {COLUMNS}")):
        parse_baseline(fixture("baseline.json"), file_format="csv", **DOC)
    with pytest.raises(
        InputError, match=message("the baseline format must be one of auto, csv, json, yaml; got 'xlsx'")
    ):
        parse_baseline(fixture("baseline.csv"), file_format="xlsx", **DOC)  # type: ignore[arg-type]


# Refused: the size and the encoding


def test_oversized_baseline_is_refused_before_parsing(monkeypatch):
    def must_not_decode(*_args: object) -> object:
        raise AssertionError("an oversized baseline was read")

    monkeypatch.setattr(requirements, "_text_of", must_not_decode)
    limit = MAX_BASELINE_BYTES
    with pytest.raises(
        TooLargeError, match=message(f"{B} is {limit + 1} bytes, over the {limit}-byte limit")
    ):
        parse_baseline(b" " * (limit + 1), **DOC)


@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_more_requirements_than_the_limit_are_refused(file_format):
    rows = [{"id": f"REQ-{n}", "title": "T", "type": "software"} for n in range(MAX_REQUIREMENTS + 1)]
    document = {"id": "SRS-ANALYZER", "version": "3.2"}
    if file_format == "csv":
        data = ("id,title,type\n" + "".join(f"{row['id']},T,software\n" for row in rows)).encode()
    else:
        data = json.dumps({"document": document, "requirements": rows}).encode()
    with pytest.raises(
        TooLargeError, match=message(f"{B} lists 20001 requirements, over the limit of 20000")
    ):
        parse_baseline(data, file_format=file_format, **DOC)
    allowed = parse_baseline(json.dumps({"document": document, "requirements": rows[:-1]}).encode())
    assert len(allowed.requirements) == MAX_REQUIREMENTS


def test_baseline_that_is_not_utf8_is_refused():
    with pytest.raises(EncodingError, match=f"^{B} is not UTF-8 text: 'utf-8' codec can't decode byte 0xf6"):
        parse_baseline("id,title,type\nREQ-1,Größe,software\n".encode("latin-1"), **DOC)


# decode_baseline: only what encode_baseline writes

STORED = "stored requirements baseline"
NOT_CANONICAL = f"{STORED} is not in canonical form (sorted keys and requirements, no white space)"


def reversed_requirements() -> bytes:
    document = msgspec.json.decode(EXPECTED_BYTES)
    document["requirements"].reverse()
    return msgspec.json.encode(document, order="sorted")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (json.dumps(json.loads(EXPECTED_BYTES), indent=2).encode(), NOT_CANONICAL),
        (json.dumps(json.loads(EXPECTED_BYTES)).encode(), NOT_CANONICAL),  # ", " and ": " between items
        (reversed_requirements(), NOT_CANONICAL),
        (EXPECTED_BYTES.replace(b'["RC-1","RC-2"]', b'["RC-2","RC-1"]'), NOT_CANONICAL),
        (EXPECTED_BYTES.replace(b'"title":"Render', b'"title":" Render'), NOT_CANONICAL),
        (
            EXPECTED_BYTES.replace(b'["RC-1","RC-2"]', b'["RC-1","RC-9"]'),
            f"{STORED}, requirement 4: implements 'RC-9', which the baseline does not define",
        ),
        (
            EXPECTED_BYTES.replace(b'"document_version":"3.2"', b'"document_version":""'),
            f"{STORED}: document.version must not be empty",
        ),
        (
            EXPECTED_BYTES.replace(b'"type":"system"', b'"type":"hw"'),
            f"{STORED} is not a baseline: Invalid enum value 'hw' - at `$.requirements[6].type`",
        ),
        (
            EXPECTED_BYTES.replace(b'"document_id"', b'"approved":true,"document_id"'),
            f"{STORED} is not a baseline: Object contains unknown field `approved`",
        ),
        (EXPECTED_BYTES[:-1], f"{STORED} is not a baseline: Input data was truncated"),
        (
            b'{"document_id":"S","document_version":"1","requirements":[]}',
            f"{STORED} lists no requirement; a baseline needs at least one",
        ),
    ],
)
def test_decode_refuses_anything_but_canonical_valid_bytes(data, expected):
    with pytest.raises(EncodingError, match=message(expected)):
        decode_baseline(data)


def test_decode_refuses_oversized_input():
    limit = MAX_BASELINE_BYTES
    with pytest.raises(
        TooLargeError, match=message(f"{STORED} is {limit + 1} bytes, over the {limit}-byte limit")
    ):
        decode_baseline(b" " * (limit + 1))
