"""`evledger attest junit|sarif|statement`: a CI report as signed evidence, appended (docs/cli.md).

`junit` reads JUnit XML, NUnit 3 XML or CTRF JSON (`--format`, detected by
default); `sarif` reads SARIF 2.1.0, with `--severity-map` for a tool whose
levels mean less than they say (Ruff marks every finding `error`).

Each command converts its input with the pure converters of
`ledger.records.attest` (refusing locally what the ledger would refuse), signs
the statement as a DSSE envelope with `--key`, and appends it over HTTP with
an idempotency key. `junit` and `sarif` first store the report itself in the
ledger (`PUT /v1/blobs/…`) unless `--no-store`. The default key is derived from what the evidence is about
(predicate type, release, subject digest and the report's SHA-256), so a
retried CI job gets its first receipt back instead of recording the evidence twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.append_cmds import receipt_lines
from cli.client import LedgerClient
from cli.errors import JsonOption, command_errors, emit_success
from cli.files import read_input
from cli.settings import DEFAULT_SERVER, ServerOption, SignerKeyOption, TokenOption, load_signer
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.errors import InputError, failure_context
from ledger.records import attest
from ledger.records.predicates import kind_name
from ledger.records.sarif import SEVERITY_MAP_SYNTAX, parse_severity_map
from ledger.records.statement import decode_statement
from ledger.records.test_reports import MAX_REPORT_BYTES

attest_app = typer.Typer(
    help="Sign a test report, a SARIF log or an in-toto statement as evidence and append it over HTTP.",
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
    key: Path | None,
    token: str | None,
    server: str,
    idempotency_key: str | None,
    summary: str,
    json_output: bool,
    store_for: str | None = None,
) -> None:
    """Sign `payload` (a checked statement about `report`) and append it; print key, summary and receipt.

    With `store_for` (a product), the report itself is first stored in the ledger as an evidence
    file (`PUT /v1/blobs/…`), so that the statement never names a file the ledger lacks.
    """
    if not token:
        raise InputError("give the API token with --token or EVLEDGER_TOKEN")
    signer = load_signer(key)
    chosen = idempotency_key or attest.idempotency_key(payload, report)
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, [signer])
    with LedgerClient(server, token) as client:
        stored = client.put_blob(report, store_for) if store_for is not None else None
        appended = client.append_envelopes([envelope], chosen)
    receipts = appended.receipts
    lines = [f"idempotency key: {chosen}", summary]
    lines += receipt_lines(receipts, already_recorded=appended.already_recorded)
    if stored is not None:
        again = "already stored" if not stored["created"] else "stored"
        lines.append(f"report {again} in the ledger: {stored['digest']} ({stored['size']:,} bytes)")
    statement = decode_statement(payload)
    fields: dict[str, Any] = {
        "idempotency_key": chosen,
        "predicate_type": statement.predicate_type,
        "predicate": statement.predicate,
        "report": stored,
        "receipts": receipts,
        "already_recorded": appended.already_recorded,
    }
    emit_success(json_output=json_output, fields=fields, lines=lines)


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
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: IdempotencyKeyOption = None,
    no_store: NoStoreOption = False,
    json_output: JsonOption = False,
) -> None:
    """Append a test run (https://evledger.dev/test-run/v1) counted from a JUnit, NUnit 3 or CTRF report."""
    with command_errors(json_output=json_output):
        data = read_input(report, "JUnit report", MAX_REPORT_BYTES)
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
            )
        run = decode_statement(payload).predicate
        summary = (
            f"test run {suite}: {run['passed']} passed, {run['failed']} failed, "
            f"{run['skipped']} skipped: {run['result']}"
        )
        _append(
            payload,
            data,
            key=key,
            token=token,
            server=server,
            idempotency_key=idempotency_key,
            summary=summary,
            json_output=json_output,
            store_for=None if no_store else product,
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
        with failure_context(_source(report)):
            payload = attest.statement_from_sarif(
                data,
                product=product,
                version=version,
                subject_name=subject_name,
                subject_digest=subject_digest,
                severity_map=mappings,
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
            key=key,
            token=token,
            server=server,
            idempotency_key=idempotency_key,
            summary=summary,
            json_output=json_output,
            store_for=None if no_store else product,
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
            key=key,
            token=token,
            server=server,
            idempotency_key=idempotency_key,
            summary=summary,
            json_output=json_output,
        )
