"""Test results per requirement (IEC 62304 §5.7, §7.3.1): requirement ids read from test reports and mappings.

The reports under fixtures/requirements were written by pytest and jest-junit
themselves (see the README there). The outcome of a test case is the one rule
of ledger.records.attest: the tests check that every report the attest tests
count gives the same totals here, case by case.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ledger.errors import EncodingError, InputError, TooLargeError
from ledger.records.requirements import (
    MAX_FAILING_TESTS,
    MAX_MAPPING_BYTES,
    MAX_REQUIREMENT_RESULTS,
    MAX_RESULTS_BYTES,
    MAX_TEST_NAME_CHARS,
    RequirementResult,
    parse_test_mapping,
    requirement_results,
    split_requirement_ids,
)
from ledger.records.test_reports import MAX_REPORT_BYTES, PASSED, report_cases, report_counts

FIXTURES = Path(__file__).parent / "fixtures"
REQUIREMENTS = FIXTURES / "requirements"
NOT_AN_ID = (
    "is not a requirement id (1 to 64 letters, digits, '-', '_', '.' or ':', starting with a letter or digit)"
)
PYTEST_FAILED = "test_analyzer::test_flags_result_above_reference_range"
PYTEST_SKIPPED = "test_analyzer::test_converts_units"
JEST_FAILED = "ResultCalculator flags a result above the reference range [REQ-2 RC-1]"
JEST_SKIPPED = "ResultCalculator converts units [REQ-3]"
MAPPING = {
    "ReportView renders the patient report::ReportView renders the patient report": ["REQ-4"],
    "streams results to the LIS": ["REQ-1"],
    "test_analyzer::test_concentration_from_absorbance": ["REQ-1", "SYS-1"],
    "test_analyzer::test_report_layout": ["REQ-4"],
}


def fixture(name: str) -> bytes:
    return (REQUIREMENTS / name).read_bytes()


def rows(results: list[RequirementResult]) -> list[tuple[str, int, int, int, list[str]]]:
    return [(r.requirement, r.passed, r.failed, r.skipped, r.failing_tests) for r in results]


def case(name: str, requirements: str | None = None, outcome: str = "", prop: str = "requirements") -> str:
    properties = (
        f'<properties><property name="{prop}" value="{requirements}"/></properties>'
        if requirements is not None
        else ""
    )
    return f'<testcase classname="t" name="{name}">{properties}{outcome}</testcase>'


def junit(*cases: str, suite: str = "") -> bytes:
    return f'<testsuites><testsuite name="s"{suite}>{"".join(cases)}</testsuite></testsuites>'.encode()


def ctrf(*tests: dict[str, object]) -> bytes:
    return json.dumps({"results": {"tool": {"name": "jest"}, "summary": {}, "tests": list(tests)}}).encode()


def message(text: str) -> str:
    return "^" + re.escape(text) + "$"


# Reports from real tools


def test_pytest_record_property_report():
    assert rows(requirement_results(fixture("junit-pytest-requirements.xml"))) == [
        ("RC-1", 2, 1, 0, [PYTEST_FAILED]),
        ("REQ-1", 1, 0, 0, []),
        ("REQ-2", 1, 1, 0, [PYTEST_FAILED]),
        ("REQ-3", 2, 0, 1, [PYTEST_SKIPPED]),
    ]


def test_jest_junit_testcase_properties_report():
    # jest-junit writes <properties> after <failure>/<skipped>, an empty <properties/> for a test without
    # ids, and the same text as classname and name.
    assert rows(requirement_results(fixture("jest-junit-requirements.xml"))) == [
        ("RC-1", 0, 1, 0, [f"{JEST_FAILED}::{JEST_FAILED}"]),
        ("REQ-1", 1, 0, 0, []),
        ("REQ-2", 1, 1, 0, [f"{JEST_FAILED}::{JEST_FAILED}"]),
        ("REQ-3", 0, 0, 1, [f"{JEST_SKIPPED}::{JEST_SKIPPED}"]),
    ]


def test_ctrf_extra_requirements_as_list_string_or_verifies_and_tags_ignored():
    assert rows(requirement_results(fixture("ctrf-requirements.json"))) == [
        ("RC-1", 0, 1, 0, ["flags a result above the reference range"]),
        ("RC-2", 1, 0, 0, []),
        ("REQ-1", 1, 0, 0, []),
        ("REQ-2", 0, 1, 0, ["flags a result above the reference range"]),
        ("REQ-3", 0, 0, 1, ["converts units"]),
        ("SYS-1", 1, 0, 0, []),
    ]


@pytest.mark.parametrize(
    ("name", "report_format"),
    [
        ("junit-pytest-requirements.xml", "junit"),
        ("jest-junit-requirements.xml", "junit"),
        ("ctrf-requirements.json", "ctrf"),
    ],
)
def test_a_named_format_reads_the_same_as_auto(name, report_format):
    assert requirement_results(fixture(name), report_format) == requirement_results(fixture(name))


# The mapping file


@pytest.mark.parametrize("name", ["test-mapping.json", "test-mapping.csv"])
def test_mapping_file_in_json_and_csv(name):
    assert parse_test_mapping(fixture(name)) == MAPPING


def test_mapping_merges_with_properties_and_counts_a_case_once_per_requirement():
    results = requirement_results(fixture("junit-pytest-requirements.xml"), mapping=MAPPING)
    assert rows(results) == [
        ("RC-1", 2, 1, 0, [PYTEST_FAILED]),
        ("REQ-1", 1, 0, 0, []),  # named by the property and the mapping: still one test case
        ("REQ-2", 1, 1, 0, [PYTEST_FAILED]),
        ("REQ-3", 2, 0, 1, [PYTEST_SKIPPED]),
        ("REQ-4", 1, 0, 0, []),  # test_report_layout has no property: only the mapping names it
        ("SYS-1", 1, 0, 0, []),
    ]
    jest = requirement_results(fixture("jest-junit-requirements.xml"), mapping=MAPPING)
    assert [r.requirement for r in jest] == ["RC-1", "REQ-1", "REQ-2", "REQ-3", "REQ-4"]
    ctrf_results = requirement_results(fixture("ctrf-requirements.json"), mapping=MAPPING)
    assert rows(ctrf_results)[2] == ("REQ-1", 1, 0, 1, ["streams results to the LIS"])  # status "other"


def test_mapping_given_by_the_caller_is_checked():
    report = junit(case("a"))
    assert rows(requirement_results(report, mapping={"t::a": ("REQ-1", "REQ-1")})) == [("REQ-1", 1, 0, 0, [])]
    as_string = "the test mapping maps the test 't::a' to the string 'REQ-1', not a list of ids"
    with pytest.raises(InputError, match=message(as_string)):
        requirement_results(report, mapping={"t::a": "REQ-1"})
    with pytest.raises(EncodingError, match=message(f"test mapping: tests['t::a'][1]: 'REQ 2' {NOT_AN_ID}")):
        requirement_results(report, mapping={"t::a": ["REQ-1", "REQ 2"]})
    with pytest.raises(EncodingError, match=message("test mapping: tests['t::a'] lists no requirement id")):
        requirement_results(report, mapping={"t::a": []})


# One rule of what passed, failed or was skipped


@pytest.mark.parametrize(
    "name",
    [
        "junit-pytest.xml",
        "junit-surefire.xml",
        "attest/gotestsum.xml",
        "attest/jest-junit.xml",
        "attest/googletest.xml",
        "attest/nunit3-console.xml",
        "attest/ctrf-playwright.json",
        "requirements/junit-pytest-requirements.xml",
        "requirements/ctrf-requirements.json",
    ],
)
def test_every_case_mapped_to_one_requirement_gives_the_report_totals(name):
    report = (FIXTURES / name).read_bytes()
    _, cases = report_cases(report)
    every_case = {test.name: ["ALL"] for test in cases}
    results = {r.requirement: r for r in requirement_results(report, mapping=every_case)}
    everything = results["ALL"]
    assert (everything.passed, everything.failed, everything.skipped) == report_counts(report)
    not_passed = sorted({c.name for c in cases if c.outcome != PASSED})
    assert everything.failing_tests == not_passed[:MAX_FAILING_TESTS]


@pytest.mark.parametrize(
    ("outcome", "counts"),
    [
        ("", (1, 0, 0)),
        ("<system-out>ok</system-out>", (1, 0, 0)),
        ("<failure/>", (0, 1, 0)),
        ("<error/>", (0, 1, 0)),
        ("<skipped/><failure/>", (0, 1, 0)),  # a failure outranks a skip
        ("<skipped/>", (0, 0, 1)),
        ("<disabled/>", (0, 0, 1)),
        ("<flakyFailure/>", (1, 0, 0)),  # Surefire: failed, then passed on a rerun
    ],
)
def test_case_outcomes_are_attests(outcome, counts):
    results = requirement_results(junit(case("a", "REQ-1", outcome), case("b")))
    assert rows(results) == [("REQ-1", *counts, ["t::a"] if counts[0] == 0 else [])]


@pytest.mark.parametrize("attributes", ['status="notrun"', 'status="disabled"', 'result="suppressed"'])
def test_not_run_status_attributes_are_skipped(attributes):
    report = f'<testsuite><testcase classname="t" name="a" {attributes}>'
    report += '<properties><property name="requirements" value="REQ-1"/></properties></testcase></testsuite>'
    assert rows(requirement_results(report.encode())) == [("REQ-1", 0, 0, 1, ["t::a"])]


def test_suite_disabled_count_is_not_given_to_any_requirement():
    # The suite says 2 of its tests were disabled without listing them: the report's totals move two passes
    # to skipped, but no test case is named, so each listed case keeps its own outcome here.
    report = junit(case("a", "REQ-1"), case("b", "REQ-1"), case("c", "REQ-2"), suite=' disabled="2"')
    assert report_counts(report) == (1, 0, 2)
    assert rows(requirement_results(report)) == [("REQ-1", 2, 0, 0, []), ("REQ-2", 1, 0, 0, [])]


def nunit_report(run_result: str, *cases: tuple[str, str, str]) -> bytes:
    body = "".join(
        f'<test-case id="0-{n}" name="{name}" fullname="Analyzer.Tests.{name}" result="{result}">'
        f'<properties><property name="Requirement" value="{ids}" /></properties></test-case>'
        for n, (name, result, ids) in enumerate(cases)
    )
    suite = f'<test-suite type="Assembly">{body}</test-suite>'
    return f'<test-run id="0" result="{run_result}">{suite}</test-run>'.encode()


def test_nunit_property_attribute_and_a_run_failed_outside_its_cases():
    report = nunit_report("Failed", ("A", "Passed", "REQ-1"), ("B", "Inconclusive", "REQ-1 RC-1"))
    assert report_counts(report) == (1, 1, 1)  # the run's own failure (a OneTimeTearDown) counts once
    assert rows(requirement_results(report)) == [
        ("RC-1", 0, 0, 1, ["Analyzer.Tests.B"]),
        ("REQ-1", 1, 0, 1, ["Analyzer.Tests.B"]),
    ]


# Reading requirement ids from properties


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        ("requirements", "REQ-1,REQ-2"),
        ("requirement", "REQ-1 REQ-2"),
        ("Verifies", "REQ-2;\n REQ-1"),
        ("REQUIREMENTS", " REQ-2 , REQ-1 , REQ-2 "),
    ],
)
def test_property_names_and_separators(prop, value):
    results = requirement_results(junit(case("a", value, prop=prop)))
    assert rows(results) == [("REQ-1", 1, 0, 0, []), ("REQ-2", 1, 0, 0, [])]


def test_property_value_may_be_the_element_text_and_several_properties_add_up():
    report = junit(
        '<testcase classname="t" name="a"><properties><property name="requirements">REQ-1, REQ-2</property>'
        '<property name="verifies" value="REQ-2 REQ-3"/><property name="owner" value="REQ-9"/>'
        "</properties><failure/></testcase>"
    )
    assert rows(requirement_results(report)) == [
        ("REQ-1", 0, 1, 0, ["t::a"]),
        ("REQ-2", 0, 1, 0, ["t::a"]),
        ("REQ-3", 0, 1, 0, ["t::a"]),
    ]


def test_cases_without_requirements_count_toward_nothing():
    report = junit(
        case("a"),
        case("b", "REQ-1", prop="test_id"),
        '<properties><property name="requirements" value="REQ-1"/></properties>',  # the suite's: no case
        case("c", "REQ-2", "<failure/>"),
    )
    assert rows(requirement_results(report)) == [("REQ-2", 0, 1, 0, ["t::c"])]
    assert requirement_results(junit(case("a"), case("b", "", prop="owner"))) == []


def test_junit_case_without_classname_is_named_by_its_name():
    report = b'<testsuite><testcase name="alone"><properties><property name="requirements" value="REQ-1"/>'
    report += b"</properties><skipped/></testcase></testsuite>"
    assert rows(requirement_results(report)) == [("REQ-1", 0, 0, 1, ["alone"])]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "holds an empty requirement id: ''"),
        (" ", "holds an empty requirement id: ' '"),
        ("REQ-1,,REQ-2", "holds an empty requirement id: 'REQ-1,,REQ-2'"),
        ("REQ-1,", "holds an empty requirement id: 'REQ-1,'"),
        ("REQ-1;", "holds an empty requirement id: 'REQ-1;'"),
        ("REQ-1/2", f": 'REQ-1/2' {NOT_AN_ID}"),
        ("['REQ-1']", f": \"['REQ-1']\" {NOT_AN_ID}"),  # record_property("requirements", ["REQ-1"])
        ("-REQ-1", f": '-REQ-1' {NOT_AN_ID}"),
        ("R" * 65, f": '{'R' * 65}' {NOT_AN_ID}"),
        ("REQ-1 #2", f": '#2' {NOT_AN_ID}"),
    ],
)
def test_junit_property_with_an_empty_or_malformed_id_is_refused(value, expected):
    prefix = "JUnit XML report, test case 't::a': property 'requirements'"
    with pytest.raises(
        EncodingError, match=message(f"{prefix}{'' if expected[0] == ':' else ' '}{expected}")
    ):
        requirement_results(junit(case("ok", "REQ-1"), case("a", value)))


def test_nunit_property_with_a_malformed_id_is_refused():
    expected = f"NUnit XML report, test case 'Analyzer.Tests.A': property 'Requirement': 'REQ-2?' {NOT_AN_ID}"
    with pytest.raises(EncodingError, match=message(expected)):
        requirement_results(nunit_report("Passed", ("A", "Passed", "REQ-1 REQ-2?")))


NOT_A_LIST = "must be a list of requirement ids or a string of them; got"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("REQ-1", "extra must be an object; got the string 'REQ-1'"),
        (["REQ-1"], "extra must be an object; got a list"),
        ({"requirements": 5}, f"extra.requirements {NOT_A_LIST} a number (5)"),
        ({"requirements": None}, f"extra.requirements {NOT_A_LIST} null"),
        (
            {"requirements": ["REQ-1", 2]},
            "extra.requirements[1] must be a string; got a number (2); write it in quotes",
        ),
        ({"requirements": ["REQ-1,REQ-2"]}, f"extra.requirements[0]: 'REQ-1,REQ-2' {NOT_AN_ID}"),
        ({"requirements": []}, "extra.requirements lists no requirement id"),
        ({"requirements": ""}, "extra.requirements holds an empty requirement id: ''"),
        ({"Verifies": "REQ-1 REQ-1/2"}, f"extra.Verifies: 'REQ-1/2' {NOT_AN_ID}"),
    ],
)
def test_ctrf_extra_with_wrong_types_or_malformed_ids_is_refused(extra, expected):
    report = ctrf({"name": "ok", "status": "passed"}, {"name": "a", "status": "failed", "extra": extra})
    with pytest.raises(EncodingError, match=message(f"CTRF report, test case 'a': {expected}")):
        requirement_results(report)


def test_split_requirement_ids_keeps_order_and_drops_repeats():
    assert split_requirement_ids("REQ-2, REQ-1;REQ-2\tSYS:1.2", "x") == ["REQ-2", "REQ-1", "SYS:1.2"]
    with pytest.raises(EncodingError, match=message("where: holds an empty requirement id: ','")):
        split_requirement_ids(",", "where:")


# What a failing test looks like in the results


def test_failing_tests_are_capped_sorted_and_unique_while_the_counts_stay_exact():
    failing = [case(f"f{n:02}", "REQ-1", "<failure/>") for n in range(25)]
    again = case("f00", "REQ-1", "<error/>")  # the same name twice (a rerun): one name, two failures
    skipped = case("s", "REQ-1", "<skipped/>")
    results = requirement_results(junit(*failing, again, skipped, case("p", "REQ-1")))
    assert rows(results) == [("REQ-1", 1, 26, 1, [f"t::f{n:02}" for n in range(20)])]
    assert MAX_FAILING_TESTS == 20


def test_failing_test_names_are_cut_and_control_characters_shown():
    long_name = "x" * 300
    report = ctrf(
        {"name": long_name, "status": "failed", "extra": {"requirements": ["REQ-1"]}},
        {"name": "bell\u0007name", "status": "pending", "extra": {"requirements": ["REQ-1"]}},
        {"name": "y" * MAX_TEST_NAME_CHARS, "status": "failed", "extra": {"requirements": ["REQ-1"]}},
    )
    (result,) = requirement_results(report)
    assert (result.failed, result.skipped) == (2, 1)
    assert result.failing_tests == ["bell\ufffdname", "x" * 199 + "\u2026", "y" * 200]
    assert all(len(name) <= MAX_TEST_NAME_CHARS for name in result.failing_tests)


# Limits: the results must fit one ledger entry


def test_more_requirements_than_fit_one_entry_are_refused():
    at_limit = junit(*(case(f"c{n}", f"REQ-{n}") for n in range(MAX_REQUIREMENT_RESULTS)))
    assert len(requirement_results(at_limit)) == MAX_REQUIREMENT_RESULTS == 300
    over = junit(*(case(f"c{n}", f"REQ-{n}") for n in range(MAX_REQUIREMENT_RESULTS + 1)))
    too_many = (
        "the JUnit XML report verifies 301 requirements; at most 300 fit one ledger entry: split the report"
    )
    with pytest.raises(TooLargeError, match=message(too_many)):
        requirement_results(over)


def test_results_too_large_for_one_entry_are_refused():
    # 300 requirements (the count allowed) with 64-character ids and a failing test each: some 67 KB.
    ids = [f"{n:03}".ljust(64, "x") for n in range(MAX_REQUIREMENT_RESULTS)]
    report = junit(*(case(f"{'n' * 80}{n}", ids[n], "<failure/>") for n in range(MAX_REQUIREMENT_RESULTS)))
    with pytest.raises(TooLargeError) as caught:
        requirement_results(report)
    found = re.fullmatch(
        r"the JUnit XML report's results for 300 requirements are (\d+) bytes as JSON, over the 32768-byte "
        r"limit of one ledger entry: split the report",
        str(caught.value),
    )
    assert found is not None
    size = int(found[1])
    assert size > MAX_RESULTS_BYTES


# Refused reports


DOCTYPE_REFUSED = (
    "JUnit XML report declares a DOCTYPE <!DOCTYPE x>; DTDs and entity declarations are refused "
    "(external entities, entity expansion)"
)


@pytest.mark.parametrize(
    ("report", "report_format", "error", "expected"),
    [
        (
            b"<testsuites/>",
            "auto",
            EncodingError,
            "JUnit XML report holds no <testcase> element; refusing to record a run of no tests",
        ),
        (ctrf(), "auto", EncodingError, "CTRF report lists no test; refusing to record a run of no tests"),
        (
            b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><testsuite/>',
            "auto",
            EncodingError,
            DOCTYPE_REFUSED,
        ),
        (
            junit(case("a", "REQ-1")),
            "xunit",
            InputError,
            "the report format must be one of auto, junit, nunit, ctrf; got 'xunit'",
        ),
        (
            junit(case("a", "REQ-1")),
            "ctrf",
            EncodingError,
            "CTRF report is not a CTRF report: JSON is malformed: invalid character (byte 0)",
        ),
        (
            b'<testsuite disabled="two"><testcase name="a"/></testsuite>',
            "junit",
            EncodingError,
            "JUnit XML report: <testsuite disabled='two'> is not a count",
        ),
    ],
)
def test_reports_attest_refuses_are_refused(report, report_format, error, expected):
    with pytest.raises(error, match=message(expected)):
        requirement_results(report, report_format)


def test_oversized_report_is_refused():
    huge = junit(case("a", "REQ-1")).replace(b"<testsuites>", b"<testsuites>" + b" " * MAX_REPORT_BYTES)
    with pytest.raises(
        TooLargeError, match=f"^JUnit XML report is {len(huge)} bytes, over the 20971520-byte limit$"
    ):
        requirement_results(huge)


# Refused mapping files


SHAPE = 'test mapping must be an object {"tests": {"<test name>": ["<requirement id>", ...]}}'
HEADER = b"test,requirements\n"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"test": {}}', SHAPE),
        (b'{"tests": {}, "version": 1}', SHAPE),
        (b'{"tests": []}', "test mapping: tests must be an object of test names; got a list"),
        (
            b'{"tests": {"a": "REQ-1"}}',
            "test mapping: tests['a'] must be a list of requirement ids; got the string 'REQ-1'",
        ),
        (b'{"tests": {"a": []}}', "test mapping: tests['a'] lists no requirement id"),
        (b'{"tests": {"a": ["REQ 1"]}}', f"test mapping: tests['a'][0]: 'REQ 1' {NOT_AN_ID}"),
        (b'{"tests": {"": ["REQ-1"]}}', "test mapping: a test name is empty"),
        (b'{"tests": {}}', "test mapping maps no test"),
        (b'{"tests": {"a": ["REQ-1"], "a": ["REQ-2"]}}', "test mapping repeats the key 'a' in one object"),
        (
            b'{"tests": {"a": ["REQ-1"]}',
            "test mapping is not valid JSON: Expecting ',' delimiter: line 1 column 27 (char 26)",
        ),
        (
            b"test,requirement\na,REQ-1\n",
            "test mapping, row 1: unknown column 'requirement'; the columns are test, requirements",
        ),
        (
            b"test\na\n",
            "test mapping, row 1: the header has no 'requirements' column (it needs test, requirements)",
        ),
        (
            HEADER + b"a,REQ-1\nb,REQ-2\na,REQ-3\n",
            "test mapping, row 4: the test 'a' is mapped already (row 2)",
        ),
        (HEADER + b"a,\n", "test mapping, row 2: requirements holds an empty requirement id: ''"),
        (HEADER + b",REQ-1\n", "test mapping, row 2: the test name is empty"),
        (HEADER + b'a,"REQ-1,bad/id"\n', f"test mapping, row 2: requirements: 'bad/id' {NOT_AN_ID}"),
        (HEADER + b"a,REQ-1,REQ-2\n", "test mapping, row 2 has 3 cells; the header has 2"),
        (HEADER, "test mapping maps no test"),
        (b"", "test mapping is empty; it needs a header row (test, requirements)"),
    ],
)
def test_malformed_mapping_files_are_refused(data, expected):
    with pytest.raises(EncodingError, match=message(expected)):
        parse_test_mapping(data)


def test_mapping_file_size_and_encoding():
    limit = MAX_MAPPING_BYTES
    with pytest.raises(
        TooLargeError, match=message(f"test mapping is {limit + 1} bytes, over the {limit}-byte limit")
    ):
        parse_test_mapping(b" " * (limit + 1))
    with pytest.raises(
        EncodingError, match=r"^test mapping is not UTF-8 text: 'utf-8' codec can't decode byte 0xfc"
    ):
        parse_test_mapping("test,requirements\nprüft,REQ-1\n".encode("latin-1"))
    assert parse_test_mapping(b"\xef\xbb\xbf" + fixture("test-mapping.csv")) == MAPPING
