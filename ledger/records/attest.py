"""Evidence from the reports pipelines already write: test reports and SARIF into in-toto Statements. Pure.

`statement_from_junit` makes a test-run statement from a JUnit XML, NUnit 3 XML
or CTRF JSON test report (read by ledger.records.test_reports), `statement_from_sarif`
a scan statement, `statement_from_sbom` an SBOM statement and its SOUP list, and
`statement_from_vex` a VEX statement, `statement_from_requirements` a requirements
baseline's statement and its canonical form (schemas/PREDICATES.md); `check_statement` refuses locally what
admission would refuse. Each returns Statement v1 JSON bytes (sorted keys), the
payload `evledger attest` signs. Converters are deterministic: the same report
and arguments give the same bytes, so a retried CI job signs the same envelope
and its idempotency key (`idempotency_key`) replays the first receipt.

Reports are untrusted input, read with the limits of their readers (test_reports, sarif,
sbom, vex); anything malformed is an EncodingError that says which report and what is wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, get_args

import msgspec

from ledger.errors import EncodingError, InputError
from ledger.records.formats import normal_sha256_digest
from ledger.records.predicates import (
    REQUIREMENTS,
    SBOM,
    SCAN,
    TEST_RUN,
    VEX,
    Attachment,
    Release,
    Requirements,
    Sbom,
    Scan,
    SeverityMapping,
    SoupGaps,
    TestRun,
    TestSuite,
    Vex,
    decode_predicate,
    kind_name,
)
from ledger.records.requirements import (
    BaselineFormat,
    baseline_groups,
    encode_baseline,
    parse_baseline,
    requirement_results,
)
from ledger.records.sarif import count_open_findings, decode_sarif, resolve_severity_map
from ledger.records.sbom import encode_soup_list, parse_sbom, soup_gaps
from ledger.records.statement import (
    STATEMENT_TYPE_V1,
    decode_statement,
    release_of,
    seal_of,
    subject_digests,
)
from ledger.records.test_reports import check_report_size, report_counts, report_digest
from ledger.records.vex import parse_vex

SARIF = "SARIF report"
IDEMPOTENCY_PREFIX = "evledger-attest"
_KEYED_EXTRAS = ("severity_map", "requirements", "attachments")
_encoder = msgspec.json.Encoder(order="sorted")


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
    report_format: str = "auto",
    requirement_map: Mapping[str, Sequence[str]] | None = None,
    attachments: Sequence[Attachment] = (),
) -> bytes:
    """A test-run statement (https://evledger.dev/test-run/v1) for a JUnit XML, NUnit 3 or CTRF report.

    Preconditions: `subject_digest` is `sha256:<64 hex>` (the artifact tested);
    `suite` is one of the predicate's suites; the text arguments are non-empty;
    `report_format` is one of TEST_FORMATS (`report_counts`). The result is
    `failed` when any test case failed or erred; `report_digest` is the SHA-256
    of `xml` exactly as given. When test cases name the requirements they verify (their
    properties, or `requirement_map` from test name to requirement ids), the predicate
    keeps each requirement's results (ledger.records.requirements.requirement_results).
    """
    _require_text(product=product, version=version, command=command, commit=commit, environment=environment)
    suites = get_args(TestSuite)
    if suite not in suites:
        raise InputError(f"suite must be one of {', '.join(suites)}; got {suite!r}")
    passed, failed, skipped = report_counts(xml, report_format)
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
        requirements=requirement_results(xml, report_format, requirement_map) or None,
        attachments=list(attachments) or None,
    )
    return _statement(TEST_RUN, subject_name, subject_digest, predicate)


def statement_from_sarif(  # noqa: PLR0913 - keyword-only: the scan predicate's own fields
    sarif: bytes,
    *,
    product: str,
    version: str,
    subject_name: str,
    subject_digest: str,
    severity_map: Sequence[SeverityMapping] = (),
    attachments: Sequence[Attachment] = (),
) -> bytes:
    """A scan statement (https://evledger.dev/scan/v1) for a SARIF 2.1.0 log.

    Preconditions: `subject_digest` is `sha256:<64 hex>` (the artifact or source
    scanned); the text arguments are non-empty; each of `severity_map` names a
    tool of the log (`ledger.records.sarif.parse_severity_map`). The tool is the
    first run's driver; open findings of every run are counted by severity (see
    `ledger.records.sarif.count_open_findings`, SARIF §3.27.10); the mappings
    used are recorded as `severity_map`; `report_digest` is the SHA-256 of
    `sarif` exactly as given.
    """
    _require_text(product=product, version=version)
    check_report_size(sarif, SARIF)
    log = decode_sarif(sarif, SARIF)
    mappings = resolve_severity_map(log, severity_map, SARIF)
    driver = log.runs[0].tool.driver
    predicate = Scan(
        release=Release(product, version),
        tool=driver.name,
        tool_version=driver.version or driver.semantic_version or "unknown",
        findings=count_open_findings(log, SARIF, mappings),
        report_digest=report_digest(sarif),
        severity_map=mappings or None,
        attachments=list(attachments) or None,
    )
    return _statement(SCAN, subject_name, subject_digest, predicate)


def statement_from_sbom(  # noqa: PLR0913 - keyword-only: the SBOM predicate's own fields
    sbom: bytes,
    *,
    product: str,
    version: str,
    subject_name: str,
    subject_digest: str,
    attachments: Sequence[Attachment] = (),
) -> tuple[bytes, bytes]:
    """An SBOM statement (https://evledger.dev/sbom/v1) for a CycloneDX or SPDX SBOM, and its SOUP list.

    Preconditions: `subject_digest` is `sha256:<64 hex>` (the artifact the SBOM describes,
    normally the release candidate); the text arguments are non-empty. The SOUP list is
    read with `ledger.records.sbom.parse_sbom` and encoded canonically (`encode_soup_list`):
    both it and `sbom`, exactly as given, must be stored as evidence files before the
    statement is appended.
    """
    _require_text(product=product, version=version)
    parsed = parse_sbom(sbom)
    soup_list = encode_soup_list(parsed.components)
    gaps = soup_gaps(parsed.components)
    predicate = Sbom(
        release=Release(product, version),
        format=parsed.format,
        spec_version=parsed.spec_version,
        tools=list(parsed.tools),
        components=len(parsed.components),
        gaps=SoupGaps(gaps["version"], gaps["supplier"], gaps["licence"]),
        sbom_digest=report_digest(sbom),
        soup_list_digest=report_digest(soup_list),
        attachments=list(attachments) or None,
    )
    return _statement(SBOM, subject_name, subject_digest, predicate), soup_list


def statement_from_vex(  # noqa: PLR0913 - keyword-only: the VEX predicate's own fields
    vex: bytes,
    *,
    product: str,
    version: str,
    subject_name: str,
    subject_digest: str,
    attachments: Sequence[Attachment] = (),
) -> bytes:
    """A VEX statement (https://evledger.dev/vex/v1) for an OpenVEX or CycloneDX VEX document.

    Preconditions: as `statement_from_sbom`'s. The dispositions are read with
    `ledger.records.vex.parse_vex`; `vex_digest` is the SHA-256 of `vex` exactly as given.
    A document with more statements than an entry holds is refused (TooLargeError): split it.
    """
    _require_text(product=product, version=version)
    parsed = parse_vex(vex)
    predicate = Vex(
        release=Release(product, version),
        format=parsed.format,
        spec_version=parsed.spec_version,
        statements=list(parsed.statements),
        vex_digest=report_digest(vex),
        author=parsed.author,
        attachments=list(attachments) or None,
    )
    return _statement(VEX, subject_name, subject_digest, predicate)


def statement_from_requirements(  # noqa: PLR0913 - keyword-only: the requirements predicate's own fields
    source: bytes,
    *,
    product: str,
    version: str,
    subject_name: str,
    document_id: str | None = None,
    document_version: str | None = None,
    file_format: BaselineFormat = "auto",
    attachments: Sequence[Attachment] = (),
) -> tuple[bytes, bytes]:
    """A requirements statement (https://evledger.dev/requirements/v1), and the canonical baseline.

    Preconditions: the text arguments are non-empty; `document_id` and `document_version`
    are required for a CSV baseline (ledger.records.requirements.parse_baseline). The
    statement's subject is the file itself (`subject_name`, its SHA-256). Both the file and
    the canonical baseline (`encode_baseline`) must be stored as evidence files before the
    statement is appended.
    """
    _require_text(product=product, version=version)
    baseline = parse_baseline(
        source, document_id=document_id, document_version=document_version, file_format=file_format
    )
    canonical = encode_baseline(baseline)
    predicate = Requirements(
        release=Release(product, version),
        document_id=baseline.document_id,
        document_version=baseline.document_version,
        groups=baseline_groups(baseline),
        baseline_digest=report_digest(canonical),
        source_digest=report_digest(source),
        attachments=list(attachments) or None,
    )
    return _statement(REQUIREMENTS, subject_name, report_digest(source), predicate), canonical


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
    report's SHA-256 (and a scan's `severity_map`, when it has one), so a
    retried CI job sends the same key for the same evidence, and other evidence
    never shares it.
    """
    statement = decode_statement(payload)
    product, version = release_of(statement)
    material: list[Any] = [
        statement.predicate_type,
        product,
        version,
        subject_digests(statement),
        report_digest(report),
    ]
    # The same report read another way, or with more files: other evidence.
    material += [statement.predicate[extra] for extra in _KEYED_EXTRAS if statement.predicate.get(extra)]
    digest = hashlib.sha256(_encoder.encode(material)).hexdigest()
    return f"{IDEMPOTENCY_PREFIX}:{kind_name(statement.predicate_type)}:{digest}"
