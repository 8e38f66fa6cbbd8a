"""`evledger attest junit|sarif|sbom|vex|statement`: a CI report as signed evidence, appended (docs/cli.md).

`junit` reads JUnit XML, NUnit 3 XML or CTRF JSON (`--format`, detected by
default), with each requirement's results when test cases name them; `sarif` reads
SARIF 2.1.0, with `--severity-map` for a tool whose levels mean less than they say
(Ruff marks every finding `error`); `sbom` reads CycloneDX or SPDX JSON and stores the
SOUP list read from it; `vex` reads OpenVEX or CycloneDX VEX.

Each command converts its input with the pure converters of
`ledger.records.attest` (refusing locally what the ledger would refuse), signs
the statement as a DSSE envelope with `--key`, and appends it over HTTP with
an idempotency key. Each first stores the report itself in the ledger
(`PUT /v1/blobs/…`) unless `--no-store`, and any `--attach` files. The default
key is derived from what the evidence is about (predicate type, release, subject
digest, the report's SHA-256 and the files attached), so a retried CI job gets its
first receipt back instead of recording the evidence twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.append_cmds import receipt_lines
from cli.client import LedgerClient
from cli.errors import JsonOption, command_errors, emit_success
from cli.evidence_files import Attached, AttachOption, EvidenceFile, store_files, stored_lines
from cli.files import read_input
from cli.settings import DEFAULT_SERVER, ServerOption, SignerKeyOption, TokenOption, load_signer
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.errors import InputError, failure_context
from ledger.records import attest
from ledger.records.predicates import kind_name
from ledger.records.requirements import parse_test_mapping
from ledger.records.sarif import SEVERITY_MAP_SYNTAX, parse_severity_map
from ledger.records.sbom import MAX_SBOM_BYTES
from ledger.records.statement import decode_statement, release_of
from ledger.records.test_reports import MAX_REPORT_BYTES

attest_app = typer.Typer(
    help="Sign a test report, a SARIF log, an SBOM, a VEX document or an in-toto statement as evidence "
    "and append it over HTTP.",
    no_args_is_help=True,
)

ProductOption = Annotated[
    str, typer.Option("--product", help="The product of the release (predicate.release).")
]
VersionOption = Annotated[str, typer.Option("--version", help="The release version (predicate.release).")]
SubjectNameOption = Annotated[
    str, typer.Option("--subject-name", help="The artifact the evidence is about, e.g. analyzer.tar.")
]
SubjectDigestOption = Annotated[
    str, typer.Option("--subject-digest", help="The artifact's digest, sha256:<64 hex digits>.")
]
NoStoreOption = Annotated[
    bool,
    typer.Option(
        "--no-store",
        help="Record only the report's digest; do not store the report itself in the ledger "
        "(PUT /v1/blobs/…, the default).",
    ),
]
IdempotencyKeyOption = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        help="Makes retries safe (default: derived from predicate type, release, subject and report digest).",
    ),
]


def _source(path: Path) -> str:
    """How an error names the input (the converters' messages say what kind of input it is)."""
    return "standard input" if str(path) == "-" else str(path)


def _append(
    payload: bytes,
    report: bytes,
    *,
    files: Sequence[EvidenceFile],
    key: Path | None,
    token: str | None,
    server: str,
    idempotency_key: str | None,
    summary: str,
    json_output: bool,
) -> None:
    """Store `files`, then sign `payload` (a checked statement about `report`) and append it; print it all.

    The files are those the statement names (the report unless `--no-store`, a derived SOUP list,
    `--attach` files): stored first, for the statement's product, so that a statement never
    names a file the ledger lacks.
    """
    if not token:
        raise InputError("give the API token with --token or EVLEDGER_TOKEN")
    signer = load_signer(key)
    chosen = idempotency_key or attest.idempotency_key(payload, report)
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, [signer])
    statement = decode_statement(payload)
    product = release_of(statement)[0] or ""
    with LedgerClient(server, token) as client:
        stored = store_files(client, product, files)
        appended = client.append_envelopes([envelope], chosen)
    receipts = appended.receipts
    lines = [f"idempotency key: {chosen}", summary]
    lines += receipt_lines(receipts, already_recorded=appended.already_recorded)
    lines += stored_lines(stored)
    fields: dict[str, Any] = {
        "idempotency_key": chosen,
        "predicate_type": statement.predicate_type,
        "predicate": statement.predicate,
        "report": next((answer for answer in stored if answer["what"] == "report"), None),
        "files": stored,
        "receipts": receipts,
        "already_recorded": appended.already_recorded,
    }
    emit_success(json_output=json_output, fields=fields, lines=lines)


def _report_file(report: bytes, no_store: bool) -> list[EvidenceFile]:
    return [] if no_store else [EvidenceFile("report", report)]


@attest_app.command("junit")
def junit(
    report: Annotated[
        Path,
        typer.Argument(
            help="A JUnit XML (pytest --junitxml, Surefire, …), NUnit 3 XML or CTRF JSON report; - for stdin."
        ),
    ],
    product: ProductOption,
    version: VersionOption,
    subject_name: SubjectNameOption,
    subject_digest: SubjectDigestOption,
    suite: Annotated[
        str,
        typer.Option(
            help="unit, integration, regression, system, security, performance, validation or other."
        ),
    ],
    command: Annotated[str, typer.Option(help="The command that ran the tests.")],
    commit: Annotated[str, typer.Option(help="The source commit tested.")],
    environment: Annotated[str, typer.Option(help="Where the tests ran, e.g. ci-linux-x86_64.")],
    report_location: Annotated[
        str | None, typer.Option(help="Where the report is archived (URL or path), recorded as is.")
    ] = None,
    report_format: Annotated[
        str,
        typer.Option("--format", help="junit, nunit (NUnit 3), ctrf, or auto: detected from the report."),
    ] = "auto",
    requirement_map: Annotated[
        Path | None,
        typer.Option(
            "--requirement-map",
            metavar="FILE",
            help="Which requirements each test verifies, beside the report's own requirement properties: "
            'JSON {"tests": {"classname::name": ["SRS-12"]}} or CSV with columns test,requirements.',
        ),
    ] = None,
    attach: AttachOption = None,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: IdempotencyKeyOption = None,
    no_store: NoStoreOption = False,
    json_output: JsonOption = False,
) -> None:
    """Append a test run (https://evledger.dev/test-run/v1) counted from a JUnit, NUnit 3 or CTRF report.

    Test cases that name the requirements they verify (a `requirements` property, or
    --requirement-map) give the test run each requirement's results, for traceability.
    """
    with command_errors(json_output=json_output):
        data = read_input(report, "JUnit report", MAX_REPORT_BYTES)
        mapping = None
        if requirement_map is not None:
            with failure_context(_source(requirement_map)):
                mapping = parse_test_mapping(read_input(requirement_map, "requirement map"))
        attached = Attached.read(attach)
        with failure_context(_source(report)):
            payload = attest.statement_from_junit(
                data,
                product=product,
                version=version,
                subject_name=subject_name,
                subject_digest=subject_digest,
                suite=suite,
                command=command,
                commit=commit,
                environment=environment,
                report_location=report_location,
                report_format=report_format,
                requirement_map=mapping,
                attachments=attached.attachments,
            )
        run = decode_statement(payload).predicate
        summary = (
            f"test run {suite}: {run['passed']} passed, {run['failed']} failed, "
            f"{run['skipped']} skipped: {run['result']}"
        )
        if run.get("requirements"):
            summary += f"; verifies {len(run['requirements'])} requirements"
        _append(
            payload,
            data,
            files=[*_report_file(data, no_store), *attached.files],
            key=key,
            token=token,
            server=server,
            idempotency_key=idempotency_key,
            summary=summary,
            json_output=json_output,
        )


@attest_app.command("sarif")
def sarif(
    report: Annotated[
        Path, typer.Argument(help="A SARIF 2.1.0 log (CodeQL, Semgrep, Trivy, …); - for stdin.")
    ],
    product: ProductOption,
    version: VersionOption,
    subject_name: SubjectNameOption,
    subject_digest: SubjectDigestOption,
    severity_map: Annotated[
        list[str] | None,
        typer.Option(
            "--severity-map",
            help=f"The severity a tool's SARIF level counts as: {SEVERITY_MAP_SYNTAX}; "
            "comma-separate or repeat. Recorded in the predicate.",
        ),
    ] = None,
    attach: AttachOption = None,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: IdempotencyKeyOption = None,
    no_store: NoStoreOption = False,
    json_output: JsonOption = False,
) -> None:
    """Append a scan (https://evledger.dev/scan/v1): the open findings of a SARIF log by severity."""
    with command_errors(json_output=json_output):
        mappings = parse_severity_map(severity_map or [])
        data = read_input(report, "SARIF report", MAX_REPORT_BYTES)
        attached = Attached.read(attach)
        with failure_context(_source(report)):
            payload = attest.statement_from_sarif(
                data,
                product=product,
                version=version,
                subject_name=subject_name,
                subject_digest=subject_digest,
                severity_map=mappings,
                attachments=attached.attachments,
            )
        scan = decode_statement(payload).predicate
        counts = ", ".join(f"{count} {severity}" for severity, count in scan["findings"].items())
        summary = f"scan by {scan['tool']} {scan['tool_version']}: open findings {counts}"
        if scan.get("severity_map"):
            chosen = ", ".join(f"{m['tool']}:{m['level']}={m['severity']}" for m in scan["severity_map"])
            summary += f" (severity map {chosen})"
        _append(
            payload,
            data,
            files=[*_report_file(data, no_store), *attached.files],
            key=key,
            token=token,
            server=server,
            idempotency_key=idempotency_key,
            summary=summary,
            json_output=json_output,
        )


@attest_app.command("sbom")
def sbom(
    report: Annotated[
        Path,
        typer.Argument(
            help="A CycloneDX (1.4-1.6) or SPDX (2.3) JSON SBOM, as syft, cyclonedx-py, cdxgen or "
            "trivy write it; - for stdin."
        ),
    ],
    product: ProductOption,
    version: VersionOption,
    subject_name: SubjectNameOption,
    subject_digest: SubjectDigestOption,
    attach: AttachOption = None,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: IdempotencyKeyOption = None,
    no_store: NoStoreOption = False,
    json_output: JsonOption = False,
) -> None:
    """Append an SBOM (https://evledger.dev/sbom/v1) of the subject, with its SOUP list (IEC 62304 §8.1.2).

    The SOUP list (each component's name, version, supplier, licence and purl) is read from
    the SBOM and stored in the ledger beside it; the statement names both by digest.
    """
    with command_errors(json_output=json_output):
        data = read_input(report, "SBOM", MAX_SBOM_BYTES)
        attached = Attached.read(attach)
        with failure_context(_source(report)):
            payload, soup_list = attest.statement_from_sbom(
                data,
                product=product,
                version=version,
                subject_name=subject_name,
                subject_digest=subject_digest,
                attachments=attached.attachments,
            )
        bom = decode_statement(payload).predicate
        gaps = ", ".join(f"{count} without {field}" for field, count in bom["gaps"].items() if count)
        summary = f"SBOM ({bom['format']} {bom['spec_version']}): {bom['components']} SOUP components" + (
            f" ({gaps})" if gaps else ""
        )
        _append(
            payload,
            data,
            files=[*_report_file(data, no_store), EvidenceFile("SOUP list", soup_list), *attached.files],
            key=key,
            token=token,
            server=server,
            idempotency_key=idempotency_key,
            summary=summary,
            json_output=json_output,
        )


@attest_app.command("vex")
def vex(
    report: Annotated[
        Path, typer.Argument(help="An OpenVEX (0.2.0) or CycloneDX VEX (1.4-1.6) JSON document; - for stdin.")
    ],
    product: ProductOption,
    version: VersionOption,
    subject_name: SubjectNameOption,
    subject_digest: SubjectDigestOption,
    attach: AttachOption = None,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: IdempotencyKeyOption = None,
    no_store: NoStoreOption = False,
    json_output: JsonOption = False,
) -> None:
    """Append vulnerability dispositions (https://evledger.dev/vex/v1) for the release's components."""
    with command_errors(json_output=json_output):
        data = read_input(report, "VEX document", MAX_SBOM_BYTES)
        attached = Attached.read(attach)
        with failure_context(_source(report)):
            payload = attest.statement_from_vex(
                data,
                product=product,
                version=version,
                subject_name=subject_name,
                subject_digest=subject_digest,
                attachments=attached.attachments,
            )
        statements = decode_statement(payload).predicate["statements"]
        by_status = Counter(s["status"] for s in statements)
        summary = (
            f"VEX: {len(statements)} statements ("
            + ", ".join(f"{count} {status}" for status, count in sorted(by_status.items()))
            + ")"
        )
        _append(
            payload,
            data,
            files=[*_report_file(data, no_store), *attached.files],
            key=key,
            token=token,
            server=server,
            idempotency_key=idempotency_key,
            summary=summary,
            json_output=json_output,
        )


@attest_app.command("statement")
def statement(
    file: Annotated[Path, typer.Argument(help="An in-toto Statement v1 (JSON); - for stdin.")],
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: IdempotencyKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Append an in-toto statement as it is, after checking it (our predicate types against their schema)."""
    with command_errors(json_output=json_output):
        data = read_input(file, "statement")
        with failure_context(_source(file)):
            payload = attest.check_statement(data)
        predicate_type = decode_statement(payload).predicate_type
        summary = f"statement {kind_name(predicate_type)} ({predicate_type})"
        _append(
            payload,
            data,
            files=[],
            key=key,
            token=token,
            server=server,
            idempotency_key=idempotency_key,
            summary=summary,
            json_output=json_output,
        )
