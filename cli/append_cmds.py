"""Commands that sign and append: `key register`, `key revoke`, `submit`; and `key list` (docs/cli.md).

With `--token` they go to the service over HTTP (`--server`); without one they
append directly through the sequencer into the database (`--dsn`, or the
embedded one in the data directory), which needs the ledger key to sign the
checkpoint.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer

from cli.client import LedgerClient
from cli.errors import JsonOption, command_errors, emit_success
from cli.evidence_files import Attached, AttachOption, store_files, stored_lines
from cli.files import load_verifier_key, read_input
from cli.settings import (
    DEFAULT_DATA_DIR,
    DEFAULT_SERVER,
    LEDGER_KEY_FILE,
    DataDirOption,
    DsnOption,
    ServerOption,
    SignerKeyOption,
    TokenOption,
    database,
    load_signer,
)
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE, Envelope, sign_envelope
from ledger.core.encoding import format_time
from ledger.errors import InputError
from ledger.records.admin import KeyRegistered, KeyRevoked, encode_admin_record
from ledger.records.attachments import with_attachments
from ledger.records.attest import check_statement
from ledger.records.formats import parse_offset_time
from ledger.records.predicates import PREDICATE_TYPES, Attachment
from ledger.records.statement import decode_statement, release_of

key_app = typer.Typer(help="Register and revoke the keys that may sign evidence.", no_args_is_help=True)
LedgerKeyOption = Annotated[
    Path | None,
    typer.Option("--ledger-key", help="Ledger key for direct appends (default: DATA_DIR/ledger.key)."),
]

_encoder = msgspec.json.Encoder(order="sorted")


def append(
    envelopes: list[Envelope],
    *,
    token: str | None,
    server: str,
    dsn: str | None,
    data_dir: Path,
    ledger_key: Path | None,
    idempotency_key: str | None = None,
) -> list[dict[str, Any]]:
    """Append over HTTP when a token is given, else directly into the database; return receipts."""
    if token:
        with LedgerClient(server, token) as client:
            return client.append(envelopes, idempotency_key)
    from ledger.append.appender import append_direct  # noqa: PLC0415 - database code, only for direct appends

    signer = load_signer(ledger_key or data_dir / LEDGER_KEY_FILE, "ledger key")
    with database(dsn, data_dir) as url:
        receipts = asyncio.run(append_direct(url, signer, envelopes))
    return [msgspec.structs.asdict(r) for r in receipts]


def append_admin_record(
    payload: bytes,
    *,
    key: Path | None,
    token: str | None,
    server: str,
    dsn: str | None,
    data_dir: Path,
    ledger_key: Path | None,
) -> dict[str, Any]:
    """Sign an admin record with the admin key `key` and append it; return its receipt."""
    envelope = sign_envelope(ADMIN_PAYLOAD_TYPE, payload, [load_signer(key, "admin key")])
    (receipt,) = append(
        [envelope], token=token, server=server, dsn=dsn, data_dir=data_dir, ledger_key=ledger_key
    )
    return receipt


def expiry_time(text: str) -> str:
    """`--expires` as the record states it: RFC 3339 UTC; a plain date means midnight UTC.

    InputError for anything else, or a moment already past (such a key could never sign).
    """
    moment = parse_offset_time(f"{text}T00:00:00Z" if len(text) == len("2027-06-30") else text)
    if moment is None:
        raise InputError(
            f"--expires {text[:40]!r} is not an RFC 3339 date-time with a zone (2027-06-30T00:00:00Z) "
            "or a date (2027-06-30)"
        )
    if moment <= datetime.now(UTC):
        raise InputError(f"--expires {text!r} is already past: the key could never sign")
    return format_time(moment)


def receipt_lines(
    receipts: list[dict[str, Any]], what: str = "appended", *, already_recorded: bool = False
) -> list[str]:
    """One line per receipt; a retry the ledger answered with the original receipts says so."""
    if already_recorded:
        return [
            f"already recorded as entry {r['index']} (leaf {r['leaf_hash'][:16]}…, {r['time']}): "
            "the ledger returned the original receipt"
            for r in receipts
        ]
    return [f"{what}: entry {r['index']} (leaf {r['leaf_hash'][:16]}…, {r['time']})" for r in receipts]


def _report(
    receipts: list[dict[str, Any]],
    what: str,
    *,
    json_output: bool,
    already_recorded: bool = False,
    stored: list[dict[str, Any]] | None = None,
) -> None:
    lines = receipt_lines(receipts, what, already_recorded=already_recorded) + stored_lines(stored or [])
    fields: dict[str, Any] = {"receipts": receipts, "already_recorded": already_recorded}
    if stored is not None:
        fields["files"] = stored
    emit_success(json_output=json_output, fields=fields, lines=lines)


@key_app.command("register")
def key_register(
    pubfile: Annotated[Path, typer.Argument(help="The verifier key (.pub) to register.")],
    owner: Annotated[str, typer.Option(help="The person or system the key belongs to (printed name).")],
    role: Annotated[list[str], typer.Option(help="A role of the key; repeat.")],
    product: Annotated[list[str] | None, typer.Option(help="Limit the key to a product; repeat.")] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            help="When the key stops being able to sign: an RFC 3339 date-time with a zone "
            "(2027-06-30T00:00:00Z) or a date (2027-06-30, midnight UTC). Default: never.",
        ),
    ] = None,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    dsn: DsnOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    ledger_key: LedgerKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Register a key (an admin record signed with an admin key given by --key).

    With --expires the ledger refuses anything the key signs that it would record at or after
    that moment; register a new key before then (`evledger key list` shows every expiry).
    """
    with command_errors(json_output=json_output):
        verifier = load_verifier_key(pubfile)
        record = KeyRegistered(verifier.format(), owner, list(role), list(product or []))
        if expires is not None:
            record = msgspec.structs.replace(record, expires=expiry_time(expires))
        receipt = append_admin_record(
            encode_admin_record(record),
            key=key, token=token, server=server, dsn=dsn, data_dir=data_dir, ledger_key=ledger_key,
        )  # fmt: skip
        _report([receipt], f"registered {verifier.keyid}", json_output=json_output)


@key_app.command("revoke")
def key_revoke(
    keyid: Annotated[str, typer.Argument(help="The keyid string (<name>+<8 hex>) to revoke.")],
    reason: Annotated[str, typer.Option(help="Why the key may no longer sign.")],
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    dsn: DsnOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    ledger_key: LedgerKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Revoke a key from the next entry on (an admin record signed with an admin key)."""
    with command_errors(json_output=json_output):
        receipt = append_admin_record(
            encode_admin_record(KeyRevoked(keyid, reason)),
            key=key, token=token, server=server, dsn=dsn, data_dir=data_dir, ledger_key=ledger_key,
        )  # fmt: skip
        _report([receipt], f"revoked {keyid}", json_output=json_output)


def submit(
    file: Annotated[Path, typer.Argument(help="An in-toto Statement v1 (JSON); - for stdin.")],
    attach: AttachOption = None,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Makes retries safe: the same key and body return the first receipt.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Sign a statement with --key (DSSE) and append it over HTTP; print the receipt.

    With --attach, the files are stored in the ledger first and added to the statement's
    `predicate.attachments` before it is signed (one of the ledger's own predicate types only).
    """
    with command_errors(json_output=json_output):
        payload = read_input(file, "statement")
        decode_statement(payload)  # refuse locally what the server would refuse
        attached = Attached.read(attach)
        if attached.attachments:
            payload = _with_attachments(payload, attached.attachments)
        statement = decode_statement(payload)
        envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, [load_signer(key)])
        with LedgerClient(server, token) as client:
            stored = store_files(client, release_of(statement)[0] or "", attached.files)
            appended = client.append_envelopes([envelope], idempotency_key)
        _report(
            appended.receipts,
            "appended",
            json_output=json_output,
            already_recorded=appended.already_recorded,
            stored=stored,
        )


def _with_attachments(payload: bytes, attachments: list[Attachment]) -> bytes:
    """The statement with `attachments` added to its predicate (InputError for another's predicate type)."""
    statement = msgspec.json.decode(payload)
    predicate_type = statement.get("predicateType", "")
    cls = PREDICATE_TYPES.get(predicate_type)
    if cls is None or "attachments" not in cls.__struct_fields__:
        raise InputError(
            f"--attach adds files to the ledger's own predicate types (schemas/PREDICATES.md), not to "
            f"{predicate_type!r}: name the files in that predicate's own fields, and store them with "
            "`evledger blob put`"
        )
    statement["predicate"] = with_attachments(statement.get("predicate") or {}, attachments)
    return check_statement(_encoder.encode(statement))


def _key_rows(keys: list[dict[str, Any]]) -> list[str]:
    """The keys as an aligned table: keyid, owner, roles, products, expiry, registered and revoked."""
    header = ["KEYID", "OWNER", "ROLES", "PRODUCTS", "EXPIRES", "REGISTERED", "REVOKED"]
    rows = [header]
    for k in keys:
        registered = k["registered_at"]
        revoked = k.get("revoked_at")
        rows.append(
            [
                k["keyid"],
                k["owner"],
                ",".join(k["roles"]) or "-",
                ",".join(k["products"]) or "-",
                k.get("expires") or "never",
                f"#{registered['index']} {registered['time']}",
                f"#{revoked['index']} {revoked['time']} ({revoked['reason']})" if revoked else "-",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]) for row in rows]


@key_app.command("list")
def key_list(
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    json_output: JsonOption = False,
) -> None:
    """List every key ever registered (GET /v1/keys): owner, roles, products, expiry, registered, revoked."""
    with command_errors(json_output=json_output):
        with LedgerClient(server, token) as client:
            keys: list[dict[str, Any]] = client.get("/v1/keys").json()["keys"]
        lines = _key_rows(keys) if keys else ["no keys registered"]
        emit_success(json_output=json_output, fields={"keys": keys}, lines=lines)
