"""Evidence from the reports pipelines already write: JUnit XML and SARIF into in-toto Statements. Pure.

`statement_from_junit` makes a test-run statement and `statement_from_sarif` a
scan statement (schemas/PREDICATES.md); `check_statement` refuses locally what
admission would refuse. Each returns Statement v1 JSON bytes (sorted keys), the
payload `evledger attest` signs. Converters are deterministic: the same report
and arguments give the same bytes, so a retried CI job signs the same envelope
and its idempotency key (`idempotency_key`) replays the first receipt.

Reports are untrusted input: at most `MAX_REPORT_BYTES`; XML with a DOCTYPE is
refused as soon as the parser meets it, before any DTD or entity is read (no
external entities, no entity expansion); anything malformed is an EncodingError
that says which report and what is wrong.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from typing import get_args

import msgspec

from ledger.errors import EncodingError, InputError, TooLargeError
from ledger.records.formats import normal_sha256_digest
from ledger.records.predicates import (
    SCAN,
    TEST_RUN,
    Release,
    Scan,
    TestRun,
    TestSuite,
    decode_predicate,
    kind_name,
)
from ledger.records.sarif import count_open_findings, decode_sarif
from ledger.records.statement import (
    STATEMENT_TYPE_V1,
    decode_statement,
    release_of,
    seal_of,
    subject_digests,
)

MAX_REPORT_BYTES = 20 * 1024 * 1024
JUNIT = "JUnit XML report"
SARIF = "SARIF report"
IDEMPOTENCY_PREFIX = "evledger-attest"
_FAILED, _SKIPPED = frozenset({"failure", "error"}), "skipped"
_encoder = msgspec.json.Encoder(order="sorted")


def check_report_size(report: bytes, what: str) -> None:
    """Refuse (TooLargeError) a report over MAX_REPORT_BYTES."""
    if len(report) > MAX_REPORT_BYTES:
        raise TooLargeError(f"{what} is {len(report)} bytes, over the {MAX_REPORT_BYTES}-byte limit")


def report_digest(report: bytes) -> str:
    """`sha256:<hex>` of a report's exact bytes."""
    return f"sha256:{hashlib.sha256(report).hexdigest()}"


def subject_digest_of(digest: str) -> dict[str, str]:
    """An in-toto digest set from `sha256:<64 hex>` (hex lowered); InputError for anything else."""
    normal = normal_sha256_digest(digest)
    if normal is None:
        raise InputError(f"the subject digest must be written sha256:<64 hex digits>, got {digest!r}")
    return {"sha256": normal.removeprefix("sha256:")}


def _require_text(**values: str) -> None:
    for name, value in values.items():
        if not value.strip():
            raise InputError(f"{name.replace('_', ' ')} must not be empty")


def _statement(
    predicate_type: str, subject_name: str, subject_digest: str, predicate: msgspec.Struct
) -> bytes:
    """Statement v1 bytes about one subject; optional predicate fields left unset are omitted."""
    _require_text(subject_name=subject_name)
    body = {k: v for k, v in msgspec.to_builtins(predicate).items() if v is not None}
    statement = {
        "_type": STATEMENT_TYPE_V1,
        "subject": [{"name": subject_name, "digest": subject_digest_of(subject_digest)}],
        "predicateType": predicate_type,
        "predicate": body,
    }
    return check_statement(_encoder.encode(statement))


class _NoDoctype(ET.TreeBuilder):
    """A tree builder that stops the parser at `<!DOCTYPE`, before the DTD's entities are declared."""

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        """Refuse the document (expat calls this at the start of the declaration)."""
        external = system or pubid
        source = f" (external DTD {external!r})" if external else ""
        raise EncodingError(
            f"declares a DOCTYPE <!DOCTYPE {name}>{source}; DTDs and entity declarations are refused "
            "(external entities, entity expansion)"
        )


def parse_xml(data: bytes, what: str) -> ET.Element:
    """The root element of an XML document; refuses over-large input, any DOCTYPE, and malformed XML.

    Precondition: none; every refusal is an InputError naming `what`.
    """
    check_report_size(data, what)
    # S314: defusedxml is not needed: _NoDoctype stops expat at the DOCTYPE, and without one
    # XML can declare no entity, internal or external.
    parser = ET.XMLParser(target=_NoDoctype())  # noqa: S314
    try:
        parser.feed(data)
        return parser.close()
    except EncodingError as exc:
        raise EncodingError(f"{what} {exc}") from None
    except ET.ParseError as exc:
        raise EncodingError(f"{what} is not well-formed XML: {exc}") from None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]  # Surefire and friends write no namespace, but some tools do


def junit_counts(xml: bytes) -> tuple[int, int, int]:
    """(passed, failed, skipped) over every <testcase> of a JUnit XML report.

    The root is <testsuites> or <testsuite>; suites may nest. A test case with a
    <failure> or <error> child failed (an error is a failure to pass), else one
    with <skipped> was skipped, else it passed. Precondition: none; a report
    with no test case is refused, since a run that ran nothing proves nothing.
    """
    root = parse_xml(xml, JUNIT)
    if _local(root.tag) not in {"testsuites", "testsuite"}:
        raise EncodingError(f"{JUNIT}: the root element is <{root.tag}>, not <testsuites> or <testsuite>")
    passed = failed = skipped = 0
    for case in root.iter():
        if _local(case.tag) != "testcase":
            continue
        outcomes = {_local(child.tag) for child in case}
        if outcomes & _FAILED:
            failed += 1
        elif _SKIPPED in outcomes:
            skipped += 1
        else:
            passed += 1
    if passed + failed + skipped == 0:
        raise EncodingError(f"{JUNIT} holds no <testcase> element; refusing to record a run of no tests")
    return passed, failed, skipped


def statement_from_junit(  # noqa: PLR0913 - keyword-only: the test-run predicate's own fields
    xml: bytes,
    *,
    product: str,
    version: str,
    subject_name: str,
    subject_digest: str,
    suite: str,
    command: str,
    commit: str,
    environment: str,
    report_location: str | None = None,
) -> bytes:
    """A test-run statement (https://evledger.dev/test-run/v1) for a JUnit XML report.

    Preconditions: `subject_digest` is `sha256:<64 hex>` (the artifact tested);
    `suite` is one of the predicate's suites; the text arguments are non-empty.
    The result is `failed` when any test case failed or erred; `report_digest`
    is the SHA-256 of `xml` exactly as given.
    """
    _require_text(product=product, version=version, command=command, commit=commit, environment=environment)
    suites = get_args(TestSuite)
    if suite not in suites:
        raise InputError(f"suite must be one of {', '.join(suites)}; got {suite!r}")
    passed, failed, skipped = junit_counts(xml)
    predicate = TestRun(
        release=Release(product, version),
        suite=suite,  # type: ignore[arg-type]  # checked against TestSuite above
        command=command,
        commit=commit,
        environment=environment,
        passed=passed,
        failed=failed,
        skipped=skipped,
        result="failed" if failed else "passed",
        report_digest=report_digest(xml),
        report_location=report_location or None,
    )
    return _statement(TEST_RUN, subject_name, subject_digest, predicate)


def statement_from_sarif(
    sarif: bytes, *, product: str, version: str, subject_name: str, subject_digest: str
) -> bytes:
    """A scan statement (https://evledger.dev/scan/v1) for a SARIF 2.1.0 log.

    Preconditions: `subject_digest` is `sha256:<64 hex>` (the artifact or source
    scanned); the text arguments are non-empty. The tool is the first run's
    driver; open findings of every run are counted by severity (see
    `ledger.records.sarif.count_open_findings`); `report_digest` is the
    SHA-256 of `sarif` exactly as given.
    """
    _require_text(product=product, version=version)
    check_report_size(sarif, SARIF)
    log = decode_sarif(sarif, SARIF)
    driver = log.runs[0].tool.driver
    predicate = Scan(
        release=Release(product, version),
        tool=driver.name,
        tool_version=driver.version or driver.semantic_version or "unknown",
        findings=count_open_findings(log, SARIF),
        report_digest=report_digest(sarif),
    )
    return _statement(SCAN, subject_name, subject_digest, predicate)


def check_statement(payload: bytes) -> bytes:
    """Return `payload` unchanged when admission would take it as a statement; EncodingError if not.

    It is decoded as an in-toto Statement v1 (a subject with a digest and a
    predicate type), `predicate.release` is checked, a predicate of one of our
    types is validated against that type, and a release seal must name its
    release. Signatures and key permissions are checked by the ledger.
    """
    statement = decode_statement(payload)
    _, version = release_of(statement)
    decode_predicate(statement.predicate_type, statement.predicate)
    if seal_of(statement) is not None and version is None:
        raise EncodingError("a release seal must name its release (predicate.release product and version)")
    return payload


def idempotency_key(payload: bytes, report: bytes) -> str:
    """A deterministic Idempotency-Key for appending `payload`, evidence about `report`.

    Precondition: `payload` passes `check_statement`. The key hashes the
    predicate type, release (product and version), subject digests and the
    report's SHA-256, so a retried CI job sends the same key for the same
    evidence, and other evidence never shares it.
    """
    statement = decode_statement(payload)
    product, version = release_of(statement)
    material = [statement.predicate_type, product, version, subject_digests(statement), report_digest(report)]
    digest = hashlib.sha256(_encoder.encode(material)).hexdigest()
    return f"{IDEMPOTENCY_PREFIX}:{kind_name(statement.predicate_type)}:{digest}"
