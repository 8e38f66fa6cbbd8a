"""`evledger record change|build|validation` (docs/cli.md#evledger-record).

Each command's options are the fields of its predicate (schemas/PREDICATES.md),
checked locally (cli/record_support.py) before anything is signed or sent.
Subjects follow cli/story.py: a change is about its source commit (or an
artifact), a build about the artifacts it produced, a validation about the
candidate artifact.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli import record_support as r
from cli.errors import JsonOption, command_errors
from cli.evidence_files import Attached, AttachOption
from cli.settings import DEFAULT_SERVER, ServerOption, SignerKeyOption, TokenOption
from ledger.errors import InputError
from ledger.records import predicates as p


def change(
    product: r.ProductArgument,
    version: r.VersionArgument,
    change_id: Annotated[
        str, typer.Option(help="The change's identifier in your change-control system (e.g. CHG-2041).")
    ],
    summary_what: Annotated[str, typer.Option(help="What changes, in plain words a reviewer can read.")],
    summary_why: Annotated[str, typer.Option(help="Why it changes: the problem or request behind it.")],
    summary_risk: Annotated[str, typer.Option(help="What could go wrong for patients or users.")],
    summary_mitigation: Annotated[
        str, typer.Option(help="How that risk is controlled (tests, datasets, reviews).")
    ],
    risk_class: Annotated[
        str,
        typer.Option(
            help=r.choices_help(
                "The change's risk class. The policy's tier for it decides which test suites, approvals "
                "and validation the release needs; with several changes, the highest class applies.",
                p.Change,
                "risk_class",
            )
        ),
    ],
    affects_intended_use: Annotated[
        bool,
        typer.Option(
            "--affects-intended-use/--no-affects-intended-use",
            help="Whether the change affects the device's intended use (say it either way).",
        ),
    ],
    patient_facing_output: Annotated[
        bool,
        typer.Option(
            "--patient-facing-output/--no-patient-facing-output",
            help="Whether the change alters a result or output that reaches a patient or clinician "
            "(say it either way).",
        ),
    ],
    component: Annotated[
        list[str], typer.Option(help="A software component the change touches (repeat for each).")
    ],
    author: Annotated[
        str,
        typer.Option(
            help="Who made the change, written as their registered owner name: the policy compares it "
            "with the approvers' names (nobody approves their own change)."
        ),
    ],
    commit: Annotated[
        str | None,
        typer.Option(help="The source commit holding the change: the statement's subject (a git commit id)."),
    ] = None,
    subject_digest: Annotated[
        str | None,
        typer.Option(help="An artifact the change is about, as a subject beside or instead of --commit."),
    ] = None,
    subject_name: r.SubjectNameOption = "artifact",
    attach: AttachOption = None,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: r.IdempotencyKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Record a controlled change and its risk (https://evledger.dev/change/v1)."""
    with command_errors(json_output=json_output):
        attached = Attached.read(attach)
        subjects = _subjects(commit, subject_digest, subject_name)
        r.check_text(change_id=change_id, author=author)
        r.check_choice(p.Change, "risk_class", risk_class)
        predicate = r.build_predicate(
            p.CHANGE,
            {
                "release": {"product": product, "version": version},
                "change_id": change_id,
                "summary": {
                    "what": summary_what,
                    "why": summary_why,
                    "risk": summary_risk,
                    "mitigation": summary_mitigation,
                },
                "risk_class": risk_class,
                "affects_intended_use": affects_intended_use,
                "patient_facing_output": patient_facing_output,
                "components": component,
                "author": author,
            },
            attached,
        )
        payload = r.statement(p.CHANGE, subjects, predicate)
        summary = f"change {change_id}: risk {risk_class}, author {author}"
        r.send(
            payload, key=key, token=token, server=server, idempotency_key_given=idempotency_key,
            summary=summary, json_output=json_output, files=attached.files,
        )  # fmt: skip


def _subjects(commit: str | None, digest: str | None, name: str) -> list[dict[str, Any]]:
    subjects = [r.commit_subject(commit)] if commit is not None else []
    if digest is not None:
        subjects.append(r.artifact_subject(name, r.check_digest("--subject-digest", digest)))
    if not subjects:
        raise InputError("name what the change is about: --commit (the source commit) or --subject-digest")
    return subjects


def _artifact(text: str) -> dict[str, str]:
    name, equals, digest = text.rpartition("=")
    if not equals or not name.strip():
        raise InputError(f"--artifact must be written NAME=sha256:<64 hex digits>; got {text!r}")
    return {"name": name.strip(), "digest": r.check_digest(f"--artifact {name.strip()}", digest)}


def build(
    product: r.ProductArgument,
    version: r.VersionArgument,
    repository: Annotated[
        str, typer.Option(help="The source repository built (e.g. git.example/ivd/analyzer).")
    ],
    commit: Annotated[str, typer.Option(help="The source commit built.")],
    build_id: Annotated[str, typer.Option(help="The build's identifier in your CI (run or job number).")],
    builder: Annotated[str, typer.Option(help="What ran the build (CI runner or build service).")],
    artifact: Annotated[
        list[str],
        typer.Option(
            help="An artifact the build produced, NAME=sha256:<64 hex> (repeat for each). "
            "The artifacts are the statement's subjects: later tests, approvals and deployments name them."
        ),
    ],
    dependency_lock_digest: Annotated[
        str | None, typer.Option(help="The digest (sha256:<64 hex>) of the dependency lock file used.")
    ] = None,
    infrastructure_revision: Annotated[
        str | None, typer.Option(help="The revision of the build infrastructure's configuration.")
    ] = None,
    attach: AttachOption = None,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: r.IdempotencyKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Record a build: source, builder and the artifacts it produced (https://evledger.dev/build/v1)."""
    with command_errors(json_output=json_output):
        attached = Attached.read(attach)
        artifacts = [_artifact(a) for a in artifact]
        r.check_text(repository=repository, commit=commit, build_id=build_id, builder=builder)
        lock = (
            r.check_digest("--dependency-lock-digest", dependency_lock_digest)
            if dependency_lock_digest
            else None
        )
        predicate = r.build_predicate(
            p.BUILD,
            {
                "release": {"product": product, "version": version},
                "repository": repository,
                "commit": commit,
                "build_id": build_id,
                "builder": builder,
                "artifacts": artifacts,
                "dependency_lock_digest": lock,
                "infrastructure_revision": infrastructure_revision,
            },
            attached,
        )
        subjects = [r.artifact_subject(a["name"], a["digest"]) for a in artifacts]
        payload = r.statement(p.BUILD, subjects, predicate)
        names = ", ".join(f"{a['name']} {a['digest'][:19]}…" for a in artifacts)
        r.send(
            payload,
            key=key,
            token=token,
            server=server,
            idempotency_key_given=idempotency_key,
            summary=f"build {build_id}: {names}",
            json_output=json_output,
            files=attached.files,
        )


def validation(
    product: r.ProductArgument,
    version: r.VersionArgument,
    objective: Annotated[
        str, typer.Option(help="What the validation shows, e.g. results match the reference method.")
    ],
    dataset_name: Annotated[str, typer.Option(help="The (golden) dataset validated against.")],
    dataset_version: Annotated[str, typer.Option(help="The dataset's version.")],
    dataset_digest: Annotated[
        str, typer.Option(help="The dataset's digest (sha256:<64 hex>), proving which data was used.")
    ],
    result: Annotated[
        str, typer.Option(help=r.choices_help("The validation's outcome.", p.Validation, "result"))
    ],
    subject_digest: Annotated[str, typer.Option(help=r.SUBJECT_DIGEST_HELP)],
    subject_name: r.SubjectNameOption = "artifact",
    defect: Annotated[
        list[str] | None, typer.Option(help="A defect found, by its reference in your tracker (repeat).")
    ] = None,
    manual: Annotated[
        bool, typer.Option("--manual/--no-manual", help="Whether people performed the validation by hand.")
    ] = False,
    manual_step: Annotated[
        list[str] | None, typer.Option(help="A step performed by hand (repeat; required with --manual).")
    ] = None,
    attach: AttachOption = None,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: r.IdempotencyKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Record a validation run against a dataset (https://evledger.dev/validation/v1)."""
    with command_errors(json_output=json_output):
        attached = Attached.read(attach)
        subjects = [r.artifact_subject(subject_name, r.check_digest("--subject-digest", subject_digest))]
        r.check_text(objective=objective, dataset_name=dataset_name, dataset_version=dataset_version)
        r.check_choice(p.Validation, "result", result)
        predicate = r.build_predicate(
            p.VALIDATION,
            {
                "release": {"product": product, "version": version},
                "objective": objective,
                "dataset": {
                    "name": dataset_name,
                    "version": dataset_version,
                    "digest": r.check_digest("--dataset-digest", dataset_digest),
                },
                "result": result,
                "defects": defect or [],
                "manual": manual,
                "manual_steps": manual_step or [],
            },
            attached,
        )
        payload = r.statement(p.VALIDATION, subjects, predicate)
        summary = f"validation {result} on {dataset_name} {dataset_version}" + (" (manual)" if manual else "")
        r.send(
            payload, key=key, token=token, server=server, idempotency_key_given=idempotency_key,
            summary=summary, json_output=json_output, files=attached.files,
        )  # fmt: skip
