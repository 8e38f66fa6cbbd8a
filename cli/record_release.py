"""`evledger record deployment|rollback|seal` (docs/cli.md#evledger-record).

A deployment is about the artifact deployed, a rollback about both artifacts.
`seal` reads the release's timeline and seals exactly the chain it shows (its
count and head), so nobody computes them by hand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from cli import record_support as r
from cli.client import LedgerClient
from cli.errors import JsonOption, command_errors, emit_success
from cli.evidence_files import Attached, AttachOption
from cli.settings import DEFAULT_SERVER, ServerOption, SignerKeyOption, TokenOption, load_signer
from ledger.errors import InputError, NotFoundError
from ledger.records import predicates as p

_ENVIRONMENT_HELP = "The environment, as the policy names it (e.g. production)."
_STARTED_HELP = "When it started: an RFC 3339 time with a zone (default: --finished)."
_FINISHED_HELP = "When it finished: an RFC 3339 time with a zone (default: now)."


def _times(started: str | None, finished: str | None) -> tuple[str, str]:
    """(started, finished), checked, in UTC; finished defaults to now and started to finished."""
    end = r.check_time("--finished", finished) if finished is not None else r.now_text()
    begin = r.check_time("--started", started) if started is not None else end
    if datetime.fromisoformat(begin) > datetime.fromisoformat(end):
        raise InputError(f"--started ({begin}) is after --finished ({end})")
    return begin, end


def deployment(
    product: r.ProductArgument,
    version: r.VersionArgument,
    environment: Annotated[str, typer.Option(help=_ENVIRONMENT_HELP)],
    artifact_digest: Annotated[
        str,
        typer.Option(help="The digest (sha256:<64 hex>) of the artifact deployed: the statement's subject."),
    ],
    result: Annotated[
        str, typer.Option(help=r.choices_help("How the deployment ended.", p.Deployment, "result"))
    ],
    started: Annotated[str | None, typer.Option(help=_STARTED_HELP)] = None,
    finished: Annotated[str | None, typer.Option(help=_FINISHED_HELP)] = None,
    infrastructure_revision: Annotated[
        str | None, typer.Option(help="The revision of the environment's infrastructure configuration.")
    ] = None,
    subject_name: r.SubjectNameOption = "artifact",
    attach: AttachOption = None,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: r.IdempotencyKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Record an artifact deployed to an environment (https://evledger.dev/deployment/v1)."""
    with command_errors(json_output=json_output):
        attached = Attached.read(attach)
        digest = r.check_digest("--artifact-digest", artifact_digest)
        r.check_text(environment=environment)
        r.check_choice(p.Deployment, "result", result)
        begin, end = _times(started, finished)
        predicate = r.build_predicate(
            p.DEPLOYMENT,
            {
                "release": {"product": product, "version": version},
                "environment": environment,
                "artifact_digest": digest,
                "started": begin,
                "finished": end,
                "result": result,
                "infrastructure_revision": infrastructure_revision,
            },
            attached,
        )
        payload = r.statement(p.DEPLOYMENT, [r.artifact_subject(subject_name, digest)], predicate)
        summary = f"deployment to {environment}: {result} ({digest[:19]}…, {begin} to {end})"
        r.send(
            payload, key=key, token=token, server=server, idempotency_key_given=idempotency_key,
            summary=summary, json_output=json_output, files=attached.files,
        )  # fmt: skip


def rollback(
    product: r.ProductArgument,
    version: r.VersionArgument,
    environment: Annotated[str, typer.Option(help=_ENVIRONMENT_HELP)],
    from_digest: Annotated[
        str, typer.Option(help="The digest (sha256:<64 hex>) of the artifact rolled back.")
    ],
    to_digest: Annotated[
        str, typer.Option(help="The digest (sha256:<64 hex>) of the earlier artifact now running again.")
    ],
    reason: Annotated[str, typer.Option(help="Why the rollback was made, in plain words.")],
    result: Annotated[
        str, typer.Option(help=r.choices_help("How the rollback ended.", p.Rollback, "result"))
    ],
    started: Annotated[str | None, typer.Option(help=_STARTED_HELP)] = None,
    finished: Annotated[str | None, typer.Option(help=_FINISHED_HELP)] = None,
    subject_name: r.SubjectNameOption = "artifact",
    attach: AttachOption = None,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: r.IdempotencyKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Record a return to an earlier artifact (https://evledger.dev/rollback/v1); both are its subjects."""
    with command_errors(json_output=json_output):
        attached = Attached.read(attach)
        old, new = r.check_digest("--from-digest", from_digest), r.check_digest("--to-digest", to_digest)
        r.check_text(environment=environment, reason=reason)
        r.check_choice(p.Rollback, "result", result)
        begin, end = _times(started, finished)
        predicate = r.build_predicate(
            p.ROLLBACK,
            {
                "release": {"product": product, "version": version},
                "environment": environment,
                "from_digest": old,
                "to_digest": new,
                "reason": reason,
                "started": begin,
                "finished": end,
                "result": result,
            },
            attached,
        )
        subjects = [r.artifact_subject(subject_name, d) for d in dict.fromkeys((new, old))]
        payload = r.statement(p.ROLLBACK, subjects, predicate)
        summary = f"rollback in {environment}: {result} ({old[:19]}… → {new[:19]}…)"
        r.send(
            payload, key=key, token=token, server=server, idempotency_key_given=idempotency_key,
            summary=summary, json_output=json_output, files=attached.files,
        )  # fmt: skip


def seal(
    product: r.ProductArgument,
    version: r.VersionArgument,
    subject_digest: Annotated[
        list[str] | None,
        typer.Option(
            help="An artifact the seal is about, sha256:<64 hex> (repeat; default: the artifacts the "
            "release's builds produced)."
        ),
    ] = None,
    subject_name: r.SubjectNameOption = "artifact",
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: r.IdempotencyKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Close the release's record (https://evledger.dev/release-seal/v1) at the chain its timeline shows.

    The count and head are read from the ledger: the seal commits to exactly what
    `evledger timeline` prints. Nothing can join the release after it.
    """
    with command_errors(json_output=json_output):
        digests = [r.check_digest("--subject-digest", d) for d in subject_digest or []]
        signer = load_signer(key)
        with LedgerClient(server, r.require_token(token)) as client:
            try:
                found = r.timeline(client, product, version)
            except NotFoundError:
                raise InputError(
                    f"release {product} {version} has no events: there is nothing to seal"
                ) from None
            head = found["head"]
            if found["sealed"]:
                _already_sealed(found, json_output=json_output)
                return
            if not digests:
                digests = _built_artifacts(found)
            predicate = r.build_predicate(
                p.RELEASE_SEAL,
                {
                    "release": {"product": product, "version": version},
                    "count": found["count"],
                    "head": head["leaf_hash"],
                },
            )
            subjects = [r.artifact_subject(subject_name, d) for d in dict.fromkeys(digests)]
            payload = r.statement(p.RELEASE_SEAL, subjects, predicate)
            summary = (
                f"seal of {product} {version}: {found['count']} entries, head entry {head['index']} "
                f"(leaf {head['leaf_hash'][:16]}…)"
            )
            r.append_statement(
                client, payload, signer, idempotency_key_given=idempotency_key, summary=summary,
                json_output=json_output,
            )  # fmt: skip


def _built_artifacts(found: dict[str, Any]) -> list[str]:
    """The artifact digests the release's builds produced; InputError when it has none."""
    digests = [
        a["digest"]
        for e in found["events"]
        if e["kind"] == "build"
        for a in e["summary"].get("artifacts", [])
    ]
    if not digests:
        raise InputError(
            f"release {found['product']} {found['version']} records no build artifact; "
            "name what the seal is about with --subject-digest"
        )
    return digests


def _already_sealed(found: dict[str, Any], *, json_output: bool) -> None:
    """Report the seal that already closes the release (a retried job's second run)."""
    head = found["head"]
    event = next((e for e in found["events"] if e["index"] == head["index"]), None)
    time = event["time"] if event is not None else "?"
    line = (
        f"already recorded as entry {head['index']} (leaf {head['leaf_hash'][:16]}…, {time}): "
        f"release {found['product']} {found['version']} is sealed"
    )
    fields = {"already_recorded": True, "receipts": [], "sealed_entry": head}
    emit_success(json_output=json_output, fields=fields, lines=[line])
