"""`evledger record exception|exception-review` (docs/cli.md#evledger-record).

An exception is a time-boxed, justified bypass of one policy rule; its review
is recorded later, naming the exception's entry. Options are checked locally
(cli/record_support.py) before anything is signed or sent.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli import record_support as r
from cli.client import LedgerClient
from cli.errors import JsonOption, command_errors
from cli.evidence_files import Attached, AttachOption
from cli.settings import DEFAULT_SERVER, ServerOption, SignerKeyOption, TokenOption, load_signer
from ledger.errors import InputError
from ledger.records import predicates as p


def exception(
    product: r.ProductArgument,
    version: r.VersionArgument,
    rule: Annotated[
        str,
        typer.Option(help="The policy rule bypassed, by its name in gate findings (e.g. findings.max-open)."),
    ],
    justification: Annotated[
        str, typer.Option(help="Why bypassing the rule is acceptable, in plain words (required).")
    ],
    expires: Annotated[
        str,
        typer.Option(
            help="When the exception stops counting: an RFC 3339 time or a duration from now (12h, 7d, 2w)."
        ),
    ],
    review_due: Annotated[
        str,
        typer.Option(
            help="When the exception must have been reviewed (see record exception-review): an RFC 3339 "
            "time or a duration from now."
        ),
    ],
    subject_digest: Annotated[str, typer.Option(help=r.SUBJECT_DIGEST_HELP)],
    subject_name: r.SubjectNameOption = "artifact",
    attach: AttachOption = None,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: r.IdempotencyKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Record a time-boxed, justified bypass of one policy rule (https://evledger.dev/exception/v1)."""
    with command_errors(json_output=json_output):
        attached = Attached.read(attach)
        subjects = [r.artifact_subject(subject_name, r.check_digest("--subject-digest", subject_digest))]
        r.check_text(rule=rule, justification=justification)
        moment = r.now()
        until = r.check_time_or_duration("--expires", expires, moment)
        due = r.check_time_or_duration("--review-due", review_due, moment)
        predicate = r.build_predicate(
            p.EXCEPTION,
            {
                "release": {"product": product, "version": version},
                "rule": rule,
                "justification": justification,
                "expires": until,
                "review_due": due,
            },
            attached,
        )
        payload = r.statement(p.EXCEPTION, subjects, predicate)
        summary = f"exception to {rule}: expires {until}, review due {due}"
        r.send(
            payload, key=key, token=token, server=server, idempotency_key_given=idempotency_key,
            summary=summary, json_output=json_output, files=attached.files,
        )  # fmt: skip


def exception_review(
    product: r.ProductArgument,
    version: r.VersionArgument,
    exception_entry: Annotated[
        int, typer.Option(min=0, help="The log index (entry number) of the exception reviewed.")
    ],
    outcome: Annotated[
        str,
        typer.Option(help=r.choices_help("What the review concluded.", p.ExceptionReview, "outcome")),
    ],
    comment: Annotated[str, typer.Option(help="The review's findings, in plain words.")],
    subject_digest: Annotated[
        str | None,
        typer.Option(help="The artifact the review is about (default: the exception's own subjects)."),
    ] = None,
    subject_name: r.SubjectNameOption = "artifact",
    attach: AttachOption = None,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: r.IdempotencyKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Record the retrospective review of an exception (https://evledger.dev/exception-review/v1).

    The entry must be an exception of this release; without --subject-digest the review
    is about what the exception was about.
    """
    with command_errors(json_output=json_output):
        attached = Attached.read(attach)
        digest = r.check_digest("--subject-digest", subject_digest) if subject_digest is not None else None
        r.check_text(comment=comment)
        r.check_choice(p.ExceptionReview, "outcome", outcome)
        fields = {
            "release": {"product": product, "version": version},
            "exception_entry": exception_entry,
            "outcome": outcome,
            "comment": comment,
        }
        predicate = r.build_predicate(p.EXCEPTION_REVIEW, fields, attached)
        signer = load_signer(key)
        with LedgerClient(server, r.require_token(token)) as client:
            reviewed = _exception_event(r.timeline(client, product, version), exception_entry)
            if digest is not None:
                subjects = [r.artifact_subject(subject_name, digest)]
            else:
                subjects = _subjects_of(reviewed)
            payload = r.statement(p.EXCEPTION_REVIEW, subjects, predicate)
            rule = reviewed["summary"]["rule"]
            summary = f"review of the exception at entry {exception_entry} ({rule}): {outcome}"
            r.append_statement(
                client,
                payload,
                signer,
                idempotency_key_given=idempotency_key,
                summary=summary,
                json_output=json_output,
                files=attached.files,
            )


def _exception_event(found: dict[str, Any], index: int) -> dict[str, Any]:
    """The release's exception at log index `index`; InputError when there is none."""
    events: list[dict[str, Any]] = found["events"]
    for event in events:
        if event["index"] == index:
            if event["kind"] != "exception":
                raise InputError(f"entry {index} of the release is a {event['kind']}, not an exception")
            return event
    exceptions = [str(e["index"]) for e in found["events"] if e["kind"] == "exception"]
    listed = (
        f"its exceptions are entries {', '.join(exceptions)}" if exceptions else "it records no exception"
    )
    raise InputError(
        f"entry {index} is not an event of release {found['product']} {found['version']}; {listed}"
    )


def _subjects_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Subjects for the sha256 digests an event is about (a timeline event lists them as algorithm:value)."""
    digests = [s for s in event["subjects"] if s.startswith("sha256:")]
    if not digests:
        raise InputError(f"entry {event['index']} names no sha256 subject; give --subject-digest")
    return [r.artifact_subject("artifact", d) for d in digests]
