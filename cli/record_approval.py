"""`evledger record approval`: a signed decision by a person in a role (docs/cli.md#evledger-record).

An approval is an electronic signature (21 CFR 11.50). Before signing, the
command shows who signs (the key's registered owner, as the ledger names it),
in which role, with which meaning and decision, for which artifact and which
entries, and asks to confirm; without a terminal it signs only with `--yes`,
and never waits for an answer that cannot come. `signed_at` is the moment the
person confirmed.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from cli import record_support as r
from cli.client import LedgerClient
from cli.errors import JsonOption, command_errors
from cli.evidence_files import Attached, AttachOption
from cli.settings import DEFAULT_SERVER, ServerOption, SignerKeyOption, TokenOption, load_signer
from ledger.core.keys import SignerKey
from ledger.errors import InputError, NotFoundError
from ledger.records import predicates as p

_MAX_REGISTRATION_PAGES = 20  # key registrations searched for the signer's name, 1,000 a page


def _release_events(client: LedgerClient, product: str, version: str) -> list[dict[str, Any]]:
    """The release's timeline events; none when the ledger holds no entry of it."""
    try:
        events: list[dict[str, Any]] = r.timeline(client, product, version)["events"]
    except NotFoundError:
        return []
    return events


def _signer_view(
    client: LedgerClient, signer: SignerKey, events: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The key's registered owner and roles as the ledger names them; None when it cannot tell.

    First from the release's own events signed by the key, then from any entry it
    signed (`GET /v1/search?signer=`), then from its registration record.
    """
    for event in events:
        if event["signer"]["keyid"] == signer.keyid:
            view: dict[str, Any] = event["signer"]
            return view
    found = client.get("/v1/search", signer=signer.keyid, limit=1).json()["events"]
    if found:
        first: dict[str, Any] = found[0]["signer"]
        return first
    public, cursor, latest = signer.verifier().format(), "", None
    for _ in range(_MAX_REGISTRATION_PAGES):
        page = client.get("/v1/search", kind="key.registered", limit=1000, cursor=cursor).json()
        for event in page["events"]:
            if event["summary"].get("key") == public:
                latest = {"keyid": signer.keyid, **event["summary"]}
        cursor = page["next_cursor"]
        if not cursor:
            break
    return latest


def _interactive() -> bool:
    """Whether someone can answer a question: standard input is a terminal."""
    return sys.stdin.isatty()


def _confirm(lines: list[str], *, yes: bool) -> None:
    """Show what is about to be signed and ask; InputError unless confirmed (or `yes`)."""
    typer.echo("\n".join(lines), err=True)
    if yes:
        return
    if not _interactive():
        raise InputError(
            "an approval is an electronic signature and needs your confirmation: run it in a terminal, "
            "or add --yes to sign without asking; nothing was signed"
        )
    try:
        confirmed = typer.confirm("Sign and append this approval?", default=False, err=True)
    except typer.Abort:
        confirmed = False
    if not confirmed:
        raise InputError("not confirmed; nothing was signed or appended")


def approval(
    product: r.ProductArgument,
    version: r.VersionArgument,
    role: Annotated[
        str,
        typer.Option(
            help="The role you sign in (e.g. qa, clinical, security, release-manager); your key must be "
            "registered with it."
        ),
    ],
    meaning: Annotated[
        str,
        typer.Option(help=r.choices_help("What your signature means (21 CFR 11.50).", p.Approval, "meaning")),
    ],
    decision: Annotated[str, typer.Option(help=r.choices_help("Your decision.", p.Approval, "decision"))],
    artifact_digest: Annotated[
        str, typer.Option(help="The digest (sha256:<64 hex>) of the release candidate you decide on.")
    ],
    entry: Annotated[
        list[int] | None,
        typer.Option(
            min=0,
            help="A log entry you reviewed, by its index (repeat; default: every event of the release's "
            "timeline as it stands).",
        ),
    ] = None,
    comment: Annotated[str | None, typer.Option(help="A comment recorded with your decision.")] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Sign without asking for confirmation (for scripts; be sure).")
    ] = False,
    subject_name: r.SubjectNameOption = "artifact",
    attach: AttachOption = None,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: r.IdempotencyKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Sign a decision in a role (https://evledger.dev/approval/v1), after showing it and asking first."""
    with command_errors(json_output=json_output):
        attached = Attached.read(attach)
        digest = r.check_digest("--artifact-digest", artifact_digest)
        r.check_text(role=role)
        r.check_choice(p.Approval, "meaning", meaning)
        r.check_choice(p.Approval, "decision", decision)
        fields: dict[str, Any] = {
            "release": {"product": product, "version": version},
            "role": role, "meaning": meaning, "decision": decision, "artifact_digest": digest,
            "entries": sorted(set(entry or [])), "signed_at": r.now_text(),
            "comment": comment,
        }  # fmt: skip
        r.build_predicate(p.APPROVAL, fields, attached)  # refuse bad input before anything is read or signed
        signer = load_signer(key)
        with LedgerClient(server, r.require_token(token)) as client:
            events = _release_events(client, product, version)
            if not entry:
                if not events:
                    raise InputError(
                        f"release {product} {version} has no events yet; "
                        "name the entries you reviewed with --entry"
                    )
                fields["entries"] = [e["index"] for e in events]
            view = _signer_view(client, signer, events)
            if view is not None and role not in view["roles"]:
                raise InputError(
                    f"{view['owner']}'s key {signer.keyid} is registered with roles "
                    f"{', '.join(view['roles']) or 'none'}, not {role!r}; nothing was signed"
                )
            who = (
                f"{view['owner']} (key {signer.keyid}, registered roles {', '.join(view['roles'])})"
                if view is not None
                else f"the registered owner of key {signer.keyid} (the name comes from its registration)"
            )
            _confirm(
                [
                    f"You are about to sign, as {who}:",
                    f"  release   {product} {version}",
                    f"  role      {role}",
                    f"  meaning   {meaning}",
                    f"  decision  {decision}",
                    f"  artifact  {digest}",
                    f"  entries   {', '.join(map(str, fields['entries'])) or 'none'}",
                    *([f"  comment   {comment}"] if comment else []),
                    "Your signature records your name, the date and time of signing and its meaning.",
                ],
                yes=yes,
            )
            fields["signed_at"] = r.now_text()  # when the person confirmed
            predicate = r.build_predicate(p.APPROVAL, fields, attached)
            payload = r.statement(p.APPROVAL, [r.artifact_subject(subject_name, digest)], predicate)
            name = view["owner"] if view is not None else signer.keyid
            summary = f"{decision} by {name} as {role} ({meaning}), signed {fields['signed_at']}"
            r.append_statement(
                client, payload, signer, idempotency_key_given=idempotency_key, summary=summary,
                json_output=json_output,
                files=attached.files,
            )  # fmt: skip
