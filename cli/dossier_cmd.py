"""Release records: `dossier`, `verify`, `report`, `gate` (docs/cli.md, issue #4).

`verify` and the checks behind `report` run offline: they trust nothing but
the ledger's public key given with `--key`.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer

from cli.client import LedgerClient
from cli.errors import JsonOption, command_errors, emit_success
from cli.files import load_verifier_key, read_input, replaced_on_success
from cli.settings import DEFAULT_SERVER, ServerOption, TokenOption
from cli.trust_options import TsaCertOption, WitnessPolicyOption, anchoring_fields, load_trust
from ledger.core.encoding import JSON_ERRORS, b64decode_strict, hash_from_hex
from ledger.core.tlog_proof import format_tlog_proof, tlog_proofs
from ledger.errors import NotFoundError, VerificationError
from ledger.query.report import Paper, document_id, manifestation, render_report
from ledger.records.predicates import Approval
from ledger.rules.events import Event
from ledger.verify.anchoring import LEDGER_KEY_ONLY, Trust, decode_timestamps
from ledger.verify.audit_package import (
    DOSSIER_MEMBER,
    ZIP_MAGIC,
    NamedFile,
    PackageReport,
    check_package,
    files_of_dossier,
    files_of_events,
    package_files,
    read_dossier_member,
    require_intact,
)
from ledger.verify.dossier import Dossier, DossierReport, decode_dossier, verify_dossier

MAX_DOSSIER_BYTES = 256 * 1024 * 1024
PACKAGE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a ZIP member may carry
KeyOption = Annotated[
    Path, typer.Option("--key", metavar="PUBFILE", help="The ledger's verifier key (.pub).")
]
OutOption = Annotated[Path, typer.Option("-o", "--out", help="Where to write it.")]
EnvironmentOption = Annotated[
    str | None, typer.Option(help="Evaluate compliance for this deployment environment.")
]
_decoder = msgspec.json.Decoder(Dossier)


def load_and_verify(path: Path, key: Path, trust: Trust = LEDGER_KEY_ONLY) -> tuple[Dossier, DossierReport]:
    """Read a dossier file, or an audit package, and verify it offline (see `load_and_check`)."""
    dossier, report, _ = load_and_check(path, key, trust)
    return dossier, report


def load_and_check(
    path: Path, key: Path, trust: Trust = LEDGER_KEY_ONLY
) -> tuple[Dossier, DossierReport, PackageReport | None]:
    """Read a dossier file, or an audit package, and verify it offline; any damage fails verification.

    With `trust` (`--witness-policy`, `--tsa-cert`), its checkpoint must carry the witness
    quorum and trusted time they require. An audit package (a ZIP file: `dossier --with-blobs`)
    must also hold every evidence file its verified entries name, intact, and nothing else.
    """
    verifier = load_verifier_key(key)
    if str(path) != "-" and _is_zip(path):
        with _opened_package(path) as archive:
            member = read_dossier_member(archive, MAX_DOSSIER_BYTES)
            dossier = decode_dossier(member, f"{path}:{DOSSIER_MEMBER}")
            report = verify_dossier(dossier, verifier, trust=trust)
            package = check_package(archive, files_of_events(report.events))
        require_intact(package)
        return dossier, report, package
    dossier = decode_dossier(read_input(path, "dossier", MAX_DOSSIER_BYTES), str(path))
    return dossier, verify_dossier(dossier, verifier, trust=trust), None


def _is_zip(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(ZIP_MAGIC)) == ZIP_MAGIC
    except OSError:
        return False  # read_input names the problem


@contextmanager
def _opened_package(path: Path) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise VerificationError(f"{path} is not an intact audit package: {exc}") from exc
    with archive:
        yield archive


def _fetch(server: str, token: str | None, product: str, version: str, environment: str | None) -> bytes:
    params: dict[str, str | int] = {"environment": environment} if environment else {}
    with LedgerClient(server, token) as client:
        return client.get(f"/v1/releases/{product}/{version}/dossier", **params).content


def dossier(
    product: Annotated[str, typer.Argument()],
    version: Annotated[str, typer.Argument()],
    out: OutOption,
    tlog_proofs_dir: Annotated[
        Path | None,
        typer.Option("--tlog-proofs", help="Also write one C2SP .tlog-proof file per entry here."),
    ] = None,
    with_blobs: Annotated[
        bool,
        typer.Option(
            "--with-blobs",
            help="Write an audit package instead (a ZIP file): the dossier and every evidence file its "
            "entries name, each checked against its digest as it is fetched.",
        ),
    ] = False,
    environment: EnvironmentOption = None,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """Export a release's dossier: checkpoint, every entry with its proof, keys, policy, compliance.

    The checkpoint is the one the ledger serves: under a witness policy, cosigned by the
    quorum, with its RFC 3161 tokens (with --tlog-proofs also written as checkpoint-N.tsr).
    With --with-blobs, OUT is an audit package: `evledger verify OUT` then checks every file too.
    """
    with command_errors(json_output=json_output):
        data = _fetch(server, token, product, version, environment)
        try:
            parsed = _decoder.decode(data)
        except JSON_ERRORS as exc:
            raise VerificationError(f"the server's dossier is malformed: {exc}") from exc
        files = files_of_dossier(parsed) if with_blobs else []
        if with_blobs:
            _write_package(out, data, files, server, token)
        else:
            out.write_bytes(data)
        written = [str(out)]
        if tlog_proofs_dir is not None:
            tlog_proofs_dir.mkdir(parents=True, exist_ok=True)
            items = [*parsed.keys, *([parsed.policy] if parsed.policy else []), *parsed.entries]
            proofs = tlog_proofs(
                [
                    (i.index, b64decode_strict(i.entry), [hash_from_hex(h) for h in i.inclusion_proof])
                    for i in items
                ],
                parsed.checkpoint,
            )
            for proof in proofs:
                target = tlog_proofs_dir / f"entry-{proof.index}.tlog-proof"
                target.write_text(format_tlog_proof(proof), encoding="utf-8")
                written.append(str(target))
            # The checkpoint's RFC 3161 tokens, for `verify-proof inclusion --timestamp FILE`.
            for number, tsr in enumerate(decode_timestamps(parsed.timestamps, "dossier"), 1):
                target = tlog_proofs_dir / f"checkpoint-{number}.tsr"
                target.write_bytes(tsr)
                written.append(str(target))
        emit_success(
            json_output=json_output,
            fields={
                "files": written,
                "entries": len(parsed.entries),
                "status": parsed.compliance.get("status"),
            },
            lines=[
                (
                    f"dossier of {product} {version}: {len(parsed.entries)} entries, "
                    f"{len(parsed.keys)} key events, compliance {parsed.compliance.get('status')} -> {out}"
                ),
                *(
                    [f"{len(written) - 1} tlog-proof and token files in {tlog_proofs_dir}"]
                    if tlog_proofs_dir
                    else []
                ),
                *([f"audit package: the dossier and {len(files)} evidence files"] if with_blobs else []),
            ],
        )


def _write_package(out: Path, dossier: bytes, files: list[NamedFile], server: str, token: str | None) -> None:
    """Write the audit package: the dossier, then each file fetched and checked; nothing unless all are there.

    A file the ledger does not hold (or this token may not read) fails the export (exit 1, as a
    failed check), naming every such file and the entries that name it: an audit package is
    complete or it is not written.
    """
    missing: list[NamedFile] = []
    with LedgerClient(server, token, timeout=300) as client, replaced_on_success(out) as sink:
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(_member(DOSSIER_MEMBER), dossier)
            for number, named in enumerate(files, 1):
                try:
                    with archive.open(_member(named.member()), "w", force_zip64=True) as member:
                        size = client.download_blob(named.digest, member)
                except NotFoundError:
                    missing.append(named)
                    continue
                typer.echo(f"[{number}/{len(files)}] {named.digest} ({size:,} bytes)", err=True)
        if missing:
            raise VerificationError(
                "the ledger does not hold every file the release's entries name, so no audit package "
                "was written: " + "; ".join(f.describe() for f in missing)
            )


def _member(name: str) -> zipfile.ZipInfo:
    """A member with a fixed time: the files' times mean nothing, the dossier's checkpoint says when."""
    info = zipfile.ZipInfo(name, date_time=PACKAGE_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _signature_view(event: Event) -> dict[str, Any] | None:
    text = manifestation(event)
    if text is None:
        return None
    pred = event.predicate
    approval = pred if isinstance(pred, Approval) else None
    return {
        "index": event.index,
        "kind": event.kind,
        "signer": event.signer.owner,
        "keyid": event.signer.keyid,
        "time": event.time,
        "decision": approval.decision if approval else None,
        "role": approval.role if approval else None,
        "meaning": approval.meaning if approval else None,
        "signed_at": approval.signed_at if approval else None,
        "text": text,
    }


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


RequireSealedOption = Annotated[
    bool,
    typer.Option(
        "--require-sealed",
        help="Fail (exit 1) unless the dossier proves a seal that closes the release: complete for "
        "good, not only at the dossier's checkpoint (which the completeness index proves).",
    ),
]


def verify(
    path: Annotated[Path, typer.Argument(metavar="DOSSIER")],
    key: KeyOption,
    require_sealed: RequireSealedOption = False,
    witness_policy: WitnessPolicyOption = None,
    tsa_cert: TsaCertOption = None,
    json_output: JsonOption = False,
) -> None:
    """Verify a dossier or audit package offline: checkpoint, proofs, signatures, chains, compliance, files.

    It then says how complete the release is proven: "sealed at entry N: complete"
    when the dossier ends in a seal that holds; for an open release, only up to
    the last event it shows (later events may exist and are not proven absent).
    With --witness-policy and --tsa-cert, the checkpoint must carry the witnesses' quorum
    and a trusted authority's timestamp, which then bounds every entry's time. An audit package
    (dossier --with-blobs) must hold every evidence file its entries name, each hashing to its
    digest, and nothing else; a missing, changed or unexpected file fails it (exit 1).
    """
    with command_errors(json_output=json_output):
        parsed, report, package = load_and_check(path, key, load_trust(witness_policy, tsa_cert))
        completeness = report.completeness
        if require_sealed and completeness.sealed_at is None:
            refusal = "--require-sealed: the dossier proves no seal that closes the release."
            raise VerificationError(f"{refusal} {completeness.statement()}")
        status = report.compliance.get("status")
        signatures = [view for event in report.events if (view := _signature_view(event)) is not None]
        emit_success(
            json_output=json_output,
            fields={
                "product": parsed.product,
                "version": parsed.version,
                "tree_size": report.checkpoint.size,
                "entries": len(parsed.entries),
                "sealed": report.sealed,
                "completeness": completeness.as_json(),
                "compliance": status,
                "signatures": signatures,
                "checks": report.checks,
                "anchoring": anchoring_fields(report.anchoring),
                "files": _files_fields(report, package),
            },
            lines=[
                f"dossier of {parsed.product} {parsed.version}: VERIFIED, {completeness.headline()}",
                *[f"  ok  {check}" for check in report.checks],
                "signed decisions (printed name, meaning, date and time; 21 CFR 11.50):",
                *([f"  entry {s['index']}: {s['text']}" for s in signatures] or ["  none"]),
                f"compliance: {status} ({_count(len(report.compliance.get('findings', [])), 'finding')})",
                *_files_lines(report, package),
                completeness.statement(),
            ],
        )


def _files_fields(report: DossierReport, package: PackageReport | None) -> dict[str, Any]:
    named = package.files if package is not None else files_of_events(report.events)
    return {
        "named": [{"digest": f.digest, "named_by": [list(place) for place in f.named_by]} for f in named],
        "checked": package is not None,
        "bytes": package.size if package is not None else None,
    }


def _files_lines(report: DossierReport, package: PackageReport | None) -> list[str]:
    if package is not None:
        return [f"evidence files: {package.statement()} ({package.size:,} bytes)"]
    named = len(files_of_events(report.events))
    if not named:
        return []
    return [
        (
            f"evidence files: {_count(named, 'file')} named, not in a dossier; "
            "export an audit package (dossier --with-blobs) to check them"
        )
    ]


class ReportFormat(StrEnum):
    """The release record's file format."""

    HTML = "html"
    PDF = "pdf"


class PaperSize(StrEnum):
    """The printed page size of the release record."""

    A4 = "a4"
    LETTER = "letter"


FormatOption = Annotated[
    ReportFormat | None,
    typer.Option("--format", help="html or pdf; by default from the suffix of --out (.pdf is a PDF)."),
]
PaperOption = Annotated[PaperSize, typer.Option("--paper", help="Page size of the printed record.")]


def report_format(out: Path, chosen: ReportFormat | None) -> ReportFormat:
    """The record's format: the one chosen with --format, else PDF for an --out ending in .pdf, else HTML."""
    if chosen is not None:
        return chosen
    return ReportFormat.PDF if out.suffix.lower() == ".pdf" else ReportFormat.HTML


def report(
    product: Annotated[str, typer.Argument()],
    version: Annotated[str, typer.Argument()],
    out: OutOption,
    key: KeyOption,
    dossier_file: Annotated[
        Path | None,
        typer.Option(
            "--dossier",
            help="Render from this dossier file, or audit package (with its SOUP list and requirement "
            "titles), instead of fetching one.",
        ),
    ] = None,
    output_format: FormatOption = None,
    paper: PaperOption = PaperSize.A4,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
    witness_policy: WitnessPolicyOption = None,
    tsa_cert: TsaCertOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write a printable release record (HTML or PDF), from a dossier verified offline first.

    The record names the policy, its version and the tier applied with every rule's
    result, the signatures, deployments, reports and digests, and carries a document id
    on every page (docs/cli.md#report). --witness-policy and --tsa-cert apply as for
    `evledger verify`.
    """
    with command_errors(json_output=json_output):
        kind = report_format(out, output_format)
        source = dossier_file
        if source is None:
            source = out.with_suffix(".dossier.json")
            source.write_bytes(_fetch(server, token, product, version, None))
        parsed, verified, package = load_and_check(source, key, load_trust(witness_policy, tsa_cert))
        if (parsed.product, parsed.version) != (product, version):
            raise VerificationError(f"the dossier is about {parsed.product} {parsed.version}")
        page_size: Paper = "Letter" if paper is PaperSize.LETTER else "A4"
        ledger_key = load_verifier_key(key).format()
        if package is None:
            html = render_report(parsed, verified, ledger_key=ledger_key, paper=page_size)
        else:  # an audit package: its files give the matrix its titles and the SOUP list its rows
            with _opened_package(source) as archive:
                files = package_files(archive)
                html = render_report(parsed, verified, ledger_key=ledger_key, paper=page_size, files=files)
        if kind is ReportFormat.PDF:
            from ledger.query.report_pdf import html_to_pdf  # noqa: PLC0415 - WeasyPrint loads only for a PDF

            out.write_bytes(html_to_pdf(html))
        else:
            out.write_text(html, encoding="utf-8")
        ident = document_id(parsed, verified)
        emit_success(
            json_output=json_output,
            fields={"file": str(out), "dossier": str(source), "format": kind.value, "document_id": ident},
            lines=[f"release record {ident} of {product} {version} ({kind.value}) -> {out} (from {source})"],
        )


def gate(
    product: Annotated[str, typer.Argument()],
    version: Annotated[str, typer.Argument()],
    environment: Annotated[str, typer.Option(help="The environment the release is to enter.")],
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """Ask the ledger's gate whether the release may enter ENVIRONMENT; exit 1 when it is denied."""
    with command_errors(json_output=json_output):
        with LedgerClient(server, token) as client:
            answer = client.post_json(
                "/v1/gates/evaluate", {"product": product, "version": version, "environment": environment}
            )
        findings = answer["compliance"]["findings"]
        lines = [
            (
                f"gate for {product} {version} into {environment}: {answer['decision'].upper()} "
                f"(compliance {answer['compliance']['status']}; "
                f"decision recorded as entry {answer['receipt']['index']})"
            ),
            *[f"  {f['status']:<8} {f['rule']}: {f['message']} (entries {f['entries']})" for f in findings],
        ]
        emit_success(json_output=json_output, fields=answer, lines=lines)
        if answer["decision"] != "allow":
            raise typer.Exit(1)
