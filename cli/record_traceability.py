"""`evledger record requirements|anomaly`: the inputs of IEC 62304 traceability (docs/cli.md).

`requirements` records a requirements baseline from a CSV, JSON or YAML file: the file and its
canonical form are stored in the ledger, and the statement lists every requirement id by type
and risk class (schemas/PREDICATES.md). `anomaly` records a known residual anomaly: the failed
or skipped verification of requirements, evaluated and justified by the person who signs it
(IEC 62304 §5.8.2, §5.8.3). Test results per requirement come from the test reports
(`evledger attest junit`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli import record_support as r
from cli.errors import JsonOption, command_errors
from cli.evidence_files import Attached, AttachOption, EvidenceFile
from cli.files import read_input
from cli.settings import DEFAULT_SERVER, ServerOption, SignerKeyOption, TokenOption
from ledger.errors import InputError, failure_context
from ledger.records import predicates as p
from ledger.records.attest import statement_from_requirements
from ledger.records.requirements import BASELINE_FORMATS, MAX_BASELINE_BYTES, BaselineFormat
from ledger.records.statement import decode_statement


def requirements(
    product: r.ProductArgument,
    version: r.VersionArgument,
    file: Annotated[
        Path,
        typer.Argument(
            help="The requirements baseline: CSV (columns id,title,type,risk_class,implements), JSON or "
            "YAML (docs/traceability.md); - for stdin."
        ),
    ],
    document_id: Annotated[
        str | None,
        typer.Option(help="The requirements document's id (required for CSV; JSON and YAML name it)."),
    ] = None,
    document_version: Annotated[
        str | None, typer.Option(help="The document's version (required for CSV; JSON and YAML name it).")
    ] = None,
    file_format: Annotated[
        str, typer.Option("--format", help=f"One of {', '.join(BASELINE_FORMATS)} (auto: from the content).")
    ] = "auto",
    subject_name: Annotated[
        str | None,
        typer.Option(
            "--subject-name", help="The name the statement gives the file (default: its file name)."
        ),
    ] = None,
    attach: AttachOption = None,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: r.IdempotencyKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Record the release's requirements baseline (https://evledger.dev/requirements/v1).

    The file and its canonical form (every requirement with its title, type, risk class and the
    risk controls it implements) are stored in the ledger; the statement names both and lists
    every requirement id by type and risk class. A newer baseline replaces an older one.
    """
    with command_errors(json_output=json_output):
        attached = Attached.read(attach)
        if file_format not in BASELINE_FORMATS:
            raise InputError(f"--format must be one of {', '.join(BASELINE_FORMATS)}; got {file_format!r}")
        chosen_format: BaselineFormat = file_format  # type: ignore[assignment]  # checked just above
        data = read_input(file, "requirements baseline", MAX_BASELINE_BYTES)
        name = subject_name or ("requirements" if str(file) == "-" else file.name)
        with failure_context("standard input" if str(file) == "-" else str(file)):
            payload, canonical = statement_from_requirements(
                data,
                product=product,
                version=version,
                subject_name=name,
                document_id=document_id,
                document_version=document_version,
                file_format=chosen_format,
                attachments=attached.attachments,
            )
        baseline = decode_statement(payload).predicate
        counts = dict.fromkeys(p.REQUIREMENT_TYPES, 0)
        for group in baseline["groups"]:
            counts[group["type"]] += len(group["ids"])
        summary = (
            f"requirements {baseline['document_id']} version {baseline['document_version']}: "
            + ", ".join(f"{count} {kind}" for kind, count in counts.items())
        )
        files = [EvidenceFile("requirements file", data), EvidenceFile("requirements baseline", canonical)]
        r.send(
            payload, key=key, token=token, server=server, idempotency_key_given=idempotency_key,
            summary=summary, json_output=json_output, files=[*files, *attached.files],
        )  # fmt: skip


def anomaly(
    product: r.ProductArgument,
    version: r.VersionArgument,
    anomaly_id: Annotated[str, typer.Option(help="The anomaly's id in your problem tracker, e.g. ANOM-77.")],
    description: Annotated[str, typer.Option(help="What is wrong, in plain words.")],
    requirement: Annotated[
        list[str],
        typer.Option(help="A requirement whose failed or skipped verification this dispositions (repeat)."),
    ],
    evaluation: Annotated[
        str,
        typer.Option(
            help="How the anomaly was evaluated: why it does not contribute to an unacceptable risk."
        ),
    ],
    justification: Annotated[str, typer.Option(help="Why the release may go with it.")],
    subject_digest: Annotated[str, typer.Option(help=r.SUBJECT_DIGEST_HELP)],
    test: Annotated[
        list[str] | None, typer.Option(help="A test case concerned, as classname::name (repeat).")
    ] = None,
    subject_name: r.SubjectNameOption = "artifact",
    attach: AttachOption = None,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: r.IdempotencyKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Record a known residual anomaly, evaluated and justified (https://evledger.dev/anomaly/v1).

    It dispositions the failed or skipped verification of the requirements it names on the
    release candidate (IEC 62304 §5.8.2, §5.8.3); the policy may require one for each.
    """
    with command_errors(json_output=json_output):
        attached = Attached.read(attach)
        subjects = [r.artifact_subject(subject_name, r.check_digest("--subject-digest", subject_digest))]
        r.check_text(
            anomaly_id=anomaly_id, description=description, evaluation=evaluation, justification=justification
        )
        predicate = r.build_predicate(
            p.ANOMALY,
            {
                "release": {"product": product, "version": version},
                "anomaly_id": anomaly_id,
                "description": description,
                "requirements": sorted(set(requirement)),
                "tests": sorted(set(test or [])),
                "evaluation": evaluation,
                "justification": justification,
            },
            attached,
        )
        payload = r.statement(p.ANOMALY, subjects, predicate)
        summary = f"residual anomaly {anomaly_id}: dispositions {', '.join(predicate['requirements'])}"
        r.send(
            payload, key=key, token=token, server=server, idempotency_key_given=idempotency_key,
            summary=summary, json_output=json_output, files=attached.files,
        )  # fmt: skip
