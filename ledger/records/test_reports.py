"""Test reports as CI tools write them: JUnit XML, NUnit 3 XML and CTRF JSON, read into test cases. Pure.

`report_cases` reads a report into its test cases, each with its name and outcome (PASSED,
FAILED or SKIPPED), and `report_counts` counts them: the one place that says what a passed,
failed or skipped test case is, for a test run's counts (ledger.records.attest) and for each
requirement's results (ledger.records.requirements).

Reports are untrusted input: at most `MAX_REPORT_BYTES`; XML is parsed with defusedxml, which
refuses a DOCTYPE as soon as the parser meets it, before any DTD or entity is read (no external
entities, no entity expansion); anything malformed is an EncodingError that says which report
and what is wrong.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any, Literal, NamedTuple, get_args

import msgspec
from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import fromstring as defused_fromstring

from ledger.core.encoding import JSON_ERRORS
from ledger.errors import EncodingError, InputError, TooLargeError
from ledger.records.formats import strip_bom

MAX_REPORT_BYTES = 20 * 1024 * 1024
JUNIT = "JUnit XML report"
NUNIT = "NUnit XML report"
CTRF = "CTRF report"
TestFormat = Literal["auto", "junit", "nunit", "ctrf"]
TEST_FORMATS: tuple[str, ...] = get_args(TestFormat)
Counts = tuple[int, int, int]  # passed, failed, skipped
PASSED, FAILED, SKIPPED = 0, 1, 2  # a test case's outcome: its place in Counts
_FAILED = frozenset({"failure", "error"})
_SKIPPED = frozenset({"skipped", "disabled"})  # <skipped/>; <disabled/> as some JUnit writers put it
# A <testcase> that did not run: status="notrun" (GoogleTest, CTest), "disabled" (CTest), "skipped";
# result="suppressed" (a GoogleTest DISABLED_ test) or "skipped" (GTEST_SKIP).
_NOT_RUN_STATUS = frozenset({"notrun", "disabled", "skipped"})
_NOT_RUN_RESULT = frozenset({"suppressed", "skipped"})
# NUnit 3 test-case results (docs.nunit.org, "Test Result XML Format"); Inconclusive and Warning
# are neither a pass nor a failure, so they count as skipped.
_NUNIT_RESULTS = {"Passed": 0, "Failed": 1, "Skipped": 2, "Inconclusive": 2, "Warning": 2}
# CTRF test statuses (ctrf.io specification): pending and other are not passes.
_CTRF_STATUSES = {"passed": 0, "failed": 1, "skipped": 2, "pending": 2, "other": 2}


def check_report_size(report: bytes, what: str) -> None:
    """Refuse (TooLargeError) a report over MAX_REPORT_BYTES."""
    if len(report) > MAX_REPORT_BYTES:
        raise TooLargeError(f"{what} is {len(report)} bytes, over the {MAX_REPORT_BYTES}-byte limit")


def report_digest(report: bytes) -> str:
    """`sha256:<hex>` of a report's exact bytes."""
    return f"sha256:{hashlib.sha256(report).hexdigest()}"


def _refusal(exc: DefusedXmlException) -> str:
    """What defusedxml refused, in words."""
    if isinstance(exc, DTDForbidden):
        external = exc.sysid or exc.pubid
        source = f" (external DTD {external!r})" if external else ""
        return (
            f"declares a DOCTYPE <!DOCTYPE {exc.name}>{source}; DTDs and entity declarations are refused "
            "(external entities, entity expansion)"
        )
    if isinstance(exc, EntitiesForbidden):
        return f"declares the entity {exc.name!r}; entity declarations are refused"
    if isinstance(exc, ExternalReferenceForbidden):
        return f"refers to the external resource {exc.sysid!r}; external references are refused"
    return f"is refused by the XML parser: {exc}"  # pragma: no cover - defusedxml has no other refusal


def parse_xml(data: bytes, what: str) -> ET.Element:
    """The root element of an XML document; refuses over-large input, any DOCTYPE, and malformed XML.

    Parsed with defusedxml with `forbid_dtd`: a DOCTYPE stops the parser where it
    starts, so no DTD is read, no entity is declared or expanded and nothing
    external is fetched (OWASP XXE prevention; "billion laughs").
    Precondition: none; every refusal is an InputError naming `what`.
    """
    check_report_size(data, what)
    try:
        root: ET.Element = defused_fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise EncodingError(f"{what} {_refusal(exc)}") from None
    except ET.ParseError as exc:
        raise EncodingError(f"{what} is not well-formed XML: {exc}") from None
    return root


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]  # Surefire and friends write no namespace, but some tools do


def _count_attribute(element: ET.Element, name: str, what: str) -> int:
    """A non-negative integer attribute (0 when absent); EncodingError for anything else."""
    text = element.get(name, "0").strip()
    if not text.isascii() or not text.isdigit():
        raise EncodingError(f"{what}: <{_local(element.tag)} {name}={text!r}> is not a count")
    return int(text)


class ReportCase(NamedTuple):
    """One test case of a test report and its outcome: PASSED, FAILED or SKIPPED.

    `name` is `classname::name` for a JUnit <testcase> (its `name` alone when it
    has no classname), the `fullname` of an NUnit <test-case> (else its
    `name`), the `name` of a CTRF test. `source` is the element or CTRF test
    the case was read from, for readers that need more of it (its properties).
    The outcome is the one `junit_counts`, `nunit_counts` and `ctrf_counts`
    count: this is where the rule of what passed, failed or was skipped lives.
    """

    name: str
    outcome: int
    source: ET.Element | CtrfTest


def junit_case_outcome(case: ET.Element) -> int:
    """PASSED, FAILED or SKIPPED: one <testcase> (a failure or error outranks a skip); see `junit_counts`."""
    outcomes = {_local(child.tag) for child in case}
    if outcomes & _FAILED:
        return FAILED
    not_run = case.get("status") in _NOT_RUN_STATUS or case.get("result") in _NOT_RUN_RESULT
    return SKIPPED if not_run or outcomes & _SKIPPED else PASSED


def junit_case_name(case: ET.Element) -> str:
    """`classname::name` of a <testcase>; its `name` alone when it has no (or an empty) classname."""
    classname, name = case.get("classname", ""), case.get("name", "")
    return f"{classname}::{name}" if classname else name


def junit_suite_cases(parent: ET.Element) -> list[ReportCase]:
    """The <testcase> children of one element (a suite) of a JUnit XML report, with their outcomes.

    Precondition: none. Only direct children: a nested suite's cases are its own.
    """
    return [
        ReportCase(junit_case_name(child), junit_case_outcome(child), child)
        for child in parent
        if _local(child.tag) == "testcase"
    ]


def _check_junit_root(root: ET.Element) -> None:
    if _local(root.tag) not in {"testsuites", "testsuite"}:
        raise EncodingError(f"{JUNIT}: the root element is <{root.tag}>, not <testsuites> or <testsuite>")


def junit_cases(root: ET.Element) -> Iterator[ReportCase]:
    """Every <testcase> of a JUnit XML report's root element with its outcome, in document order.

    Per test case only: a suite's `disabled="N"` count, which `junit_counts`
    moves from passed to skipped, names no test case and is not applied here.
    Precondition: none; a root other than <testsuites> or <testsuite> is refused.
    """
    _check_junit_root(root)
    for parent in root.iter():
        yield from junit_suite_cases(parent)


def junit_counts(root: ET.Element) -> Counts:
    """(passed, failed, skipped) over every <testcase> of a JUnit XML report's root element.

    The root is <testsuites> or <testsuite>; suites may nest. There is no single
    JUnit specification; this follows what the writers do (Ant's and Surefire's
    XSD, Jenkins' junit-10.xsd, GoogleTest, CTest, pytest, jest-junit, gotestsum).
    A test case with a <failure> or <error> child failed (an error is a failure
    to pass). One that did not run was skipped: a <skipped> or <disabled> child,
    `status="notrun|disabled|skipped"` or `result="suppressed|skipped"` (a
    disabled GoogleTest test). Any other passed. A suite that declares more
    disabled tests (`disabled="N"`) than it lists as skipped has that many of
    its passes counted as skipped instead: a disabled test never ran.
    Precondition: none; a report with no test case is refused, since a run that
    ran nothing proves nothing.
    """
    _check_junit_root(root)
    totals = [0, 0, 0]
    for parent in root.iter():
        children = list(parent)
        counts = [0, 0, 0]
        for case in junit_suite_cases(parent):
            counts[case.outcome] += 1
        leaf_suite = _local(parent.tag) == "testsuite" and not any(
            _local(child.tag) == "testsuite" for child in children
        )
        if leaf_suite:
            unlisted = _count_attribute(parent, "disabled", JUNIT) - counts[2]
            moved = max(0, min(unlisted, counts[0]))
            counts[0] -= moved
            counts[2] += moved
        totals = [total + count for total, count in zip(totals, counts, strict=True)]
    if sum(totals) == 0:
        raise EncodingError(f"{JUNIT} holds no <testcase> element; refusing to record a run of no tests")
    return totals[0], totals[1], totals[2]


def nunit_cases(root: ET.Element) -> Iterator[ReportCase]:
    """Every <test-case> of an NUnit 3 result file's root (<test-run>) with its outcome, in document order.

    Per test case only: a run that failed outside its test cases, which
    `nunit_counts` counts as one failure, names no test case and is not
    reported here. Precondition: none; another root or an unknown result is refused.
    """
    if _local(root.tag) != "test-run":
        raise EncodingError(f"{NUNIT}: the root element is <{root.tag}>, not <test-run> (NUnit 3)")
    for case in root.iter():
        if _local(case.tag) != "test-case":
            continue
        result = case.get("result", "")
        if result not in _NUNIT_RESULTS:
            raise EncodingError(
                f"{NUNIT}: <test-case name={case.get('name', '')!r}> has result {result!r}, "
                f"not one of {', '.join(_NUNIT_RESULTS)}"
            )
        yield ReportCase(case.get("fullname") or case.get("name") or "", _NUNIT_RESULTS[result], case)


def nunit_counts(root: ET.Element) -> Counts:
    """(passed, failed, skipped) over every <test-case> of an NUnit 3 result file's root (<test-run>).

    NUnit 3's "Test Result XML Format": a test case's `result` is Passed, Failed
    (whatever its label: Error, Cancelled, Invalid), Skipped (Ignored, Explicit),
    Inconclusive or Warning; the last two count as skipped, being no pass. A
    run whose own `result` is Failed (or `Failed(Child)`) with no failed test
    case, as when a one-time teardown fails, counts one failure: NUnit failed
    it. Precondition: none; an unknown result or no test case is refused.
    """
    counts = [0, 0, 0]
    for case in nunit_cases(root):
        counts[case.outcome] += 1
    if sum(counts) == 0:
        raise EncodingError(f"{NUNIT} holds no <test-case> element; refusing to record a run of no tests")
    if root.get("result", "").startswith("Failed") and counts[1] == 0:
        counts[1] = 1
    return counts[0], counts[1], counts[2]


class CtrfTest(msgspec.Struct, frozen=True):
    """A test of a CTRF report: what is read of it. Other fields of the report are ignored.

    `extra` and `tags` are kept as the report wrote them, unchecked (any JSON
    value), for readers that need them (`ledger.records.requirements`); the
    counts never read them, so no report is refused for them.
    """

    name: str
    status: Literal["passed", "failed", "skipped", "pending", "other"]
    extra: Any = None
    tags: Any = None


class _CtrfTool(msgspec.Struct, frozen=True):
    name: str


class _CtrfResults(msgspec.Struct, frozen=True):
    tool: _CtrfTool
    summary: dict[str, Any]
    tests: list[CtrfTest]


class _CtrfReport(msgspec.Struct, frozen=True):
    results: _CtrfResults


_ctrf_decoder = msgspec.json.Decoder(_CtrfReport)


def ctrf_cases(data: bytes) -> list[ReportCase]:
    """Every test of a CTRF JSON report (https://ctrf.io) with its outcome, in report order.

    The report is `{"results": {"tool": {"name"}, "summary": {...}, "tests":
    [{"name", "status"}, ...]}}`; a status is passed, failed, skipped, pending
    or other, and pending and other are skipped, being no pass. A UTF-8 byte
    order mark is ignored. Precondition: none; anything else, or no test, is
    refused.
    """
    check_report_size(data, CTRF)
    try:
        report = _ctrf_decoder.decode(strip_bom(data))
    except JSON_ERRORS as exc:
        raise EncodingError(f"{CTRF} is not a CTRF report: {exc}") from None
    if not report.results.tests:
        raise EncodingError(f"{CTRF} lists no test; refusing to record a run of no tests")
    return [ReportCase(test.name, _CTRF_STATUSES[test.status], test) for test in report.results.tests]


def ctrf_counts(data: bytes) -> Counts:
    """(passed, failed, skipped) over the tests of a CTRF JSON report; see `ctrf_cases` for the rules."""
    counts = [0, 0, 0]
    for case in ctrf_cases(data):
        counts[case.outcome] += 1
    return counts[0], counts[1], counts[2]


def _read_report(report: bytes, report_format: str) -> tuple[str, ET.Element | None]:
    """(JUNIT, NUNIT or CTRF; the XML root, None for CTRF): the detection `report_counts` documents."""
    if report_format not in TEST_FORMATS:
        raise InputError(f"the report format must be one of {', '.join(TEST_FORMATS)}; got {report_format!r}")
    if report_format == "ctrf" or (report_format == "auto" and strip_bom(report).lstrip().startswith(b"{")):
        return CTRF, None
    root = parse_xml(report, NUNIT if report_format == "nunit" else JUNIT)
    if report_format == "nunit" or (report_format == "auto" and _local(root.tag) == "test-run"):
        return NUNIT, root
    if report_format == "auto" and _local(root.tag) not in {"testsuites", "testsuite"}:
        raise EncodingError(
            f"{JUNIT}: the root element is <{root.tag}>, not <testsuites> or <testsuite> (JUnit) "
            "or <test-run> (NUnit 3)"
        )
    return JUNIT, root


def report_counts(report: bytes, report_format: str = "auto") -> Counts:
    """(passed, failed, skipped) of a test report: JUnit XML, NUnit 3 XML or CTRF JSON.

    `report_format` is one of TEST_FORMATS; `auto` reads a JSON object (after an
    optional byte order mark and white space) as CTRF, and XML by its root
    element: <testsuites> or <testsuite> as JUnit, <test-run> as NUnit 3. See
    `junit_counts`, `nunit_counts` and `ctrf_counts` for the counting rules.
    Precondition: none; an unknown format is an InputError.
    """
    kind, root = _read_report(report, report_format)
    if root is None:
        return ctrf_counts(report)
    return nunit_counts(root) if kind == NUNIT else junit_counts(root)


def report_cases(report: bytes, report_format: str = "auto") -> tuple[str, list[ReportCase]]:
    """(JUNIT, NUNIT or CTRF; every test case of the report with its outcome, in report order).

    The report is read and checked exactly as `report_counts` reads it: a report
    it refuses is refused here. The outcomes are those it counts, case by case;
    the two adjustments it makes to its totals name no test case and are not
    applied (a JUnit suite's `disabled="N"`, an NUnit run failed outside its
    test cases). Precondition: none; an unknown format is an InputError.
    """
    kind, root = _read_report(report, report_format)
    if root is None:
        return kind, ctrf_cases(report)
    if kind == NUNIT:
        nunit_counts(root)
        return kind, list(nunit_cases(root))
    junit_counts(root)
    return kind, list(junit_cases(root))
