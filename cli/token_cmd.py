"""`evledger token create | list | revoke`: API tokens and their life cycle (docs/cli.md).

Tokens are kept in the ledger's database as SHA-256 hashes; these commands run as
the database's owner (`--dsn`, or the embedded database of the data directory).
A token is shown once, when it is created. Revoking marks it, for good: every
service process refuses it within a second (`ledger.service.state.TOKEN_CACHE_SECONDS`).
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from cli.errors import JsonOption, command_errors, emit_success
from cli.settings import DEFAULT_DATA_DIR, DataDirOption, DsnOption, database
from ledger.core.encoding import format_time
from ledger.errors import InputError
from ledger.query.timeline import parse_moment
from ledger.storage.migrate import (
    TOKEN_ROLES,
    TokenInfo,
    check_new_token,
    check_revoke_reason,
    issue_token,
    list_tokens,
    revoke_token,
)

token_app = typer.Typer(
    help="API tokens: create them (shown once), list them, revoke them.", no_args_is_help=True
)
_DURATION = re.compile(r"([1-9][0-9]{0,5})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_EXPIRES_HELP = "a duration from now (45s, 30m, 12h, 90d, 2w) or an RFC 3339 time with a zone"


def parse_expiry(text: str, now: datetime) -> datetime:
    """`--expires`: a duration from `now` (`90d`) or an RFC 3339 time with a zone; InputError otherwise.

    Precondition: `now` is timezone-aware. Whether the time is in the future is checked where
    the token is stored (`issue_token`), against the clock at that moment.
    """
    duration = _DURATION.fullmatch(text.strip())
    if duration is not None:
        return now + timedelta(**{_UNITS[duration[2]]: int(duration[1])})
    try:
        moment = parse_moment(text, "--expires")
    except InputError:
        moment = None
    if moment is None:
        raise InputError(f"--expires must be {_EXPIRES_HELP} (e.g. 2027-01-31T00:00:00Z), not {text!r}")
    return moment


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def _fields(info: TokenInfo, now: datetime) -> dict[str, object]:
    grants = info.grants
    return {
        "id": grants.token_id,
        "name": info.name,
        "role": grants.role,
        "products": list(grants.products),
        "created": format_time(info.created_at),
        "expires": _time(grants.expires_at),
        "revoked": _time(grants.revoked_at),
        "revoked_reason": info.revoked_reason,
        "status": _status(info, now),
    }


def _status(info: TokenInfo, now: datetime) -> str:
    """`active`, or why the service refuses the token (the rule is `TokenRow.refusal`)."""
    if info.grants.refusal(now) is None:
        return "active"
    return "revoked" if info.grants.revoked_at is not None else "expired"


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help=f"One of {', '.join(TOKEN_ROLES)}.")],
    product: Annotated[list[str] | None, typer.Option(help="Limit to a product; repeat. None: all.")] = None,
    name: Annotated[
        str | None, typer.Option(help="A label for people, e.g. the pipeline or person it is for.")
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help=f"When it stops working: {_EXPIRES_HELP}. Default: never.")
    ] = None,
    dsn: DsnOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    json_output: JsonOption = False,
) -> None:
    """Create an API token; it is printed once, as the last word of the last line, with its id."""
    with command_errors(json_output=json_output):
        expires_at = None if expires is None else parse_expiry(expires, datetime.now(UTC))
        products = list(product or [])
        check_new_token(role, products, name, expires_at)  # before a database is started
        with database(dsn, data_dir) as url:
            token_id, token = asyncio.run(issue_token(url, role, products, name=name, expires_at=expires_at))
        scope = ", ".join(products) or "all products"
        label = f" {name!r}" if name else ""
        until = f", expires {format_time(expires_at)}" if expires_at else ""
        emit_success(
            json_output=json_output,
            fields={
                "id": token_id,
                "name": name,
                "role": role,
                "products": products,
                "expires": _time(expires_at),
                "token": token,
            },
            lines=[f"token {token_id}{label} for role {role} ({scope}){until}: {token}"],
        )


@token_app.command("list")
def token_list(
    dsn: DsnOption = None, data_dir: DataDirOption = DEFAULT_DATA_DIR, json_output: JsonOption = False
) -> None:
    """List every token ever issued: id, name, role, products, created, expires, status. Never the tokens."""
    with command_errors(json_output=json_output):
        with database(dsn, data_dir) as url:
            tokens = asyncio.run(list_tokens(url))
        now = datetime.now(UTC)
        rows = [["ID", "NAME", "ROLE", "PRODUCTS", "CREATED", "EXPIRES", "STATUS"]]
        for info in tokens:
            status = _status(info, now)
            if info.grants.revoked_at is not None:
                status += f" {format_time(info.grants.revoked_at)}: {info.revoked_reason}"
            grants = info.grants
            rows.append([
                str(grants.token_id), info.name or "-", grants.role, ",".join(grants.products) or "all",
                format_time(info.created_at), _time(grants.expires_at) or "never", status,
            ])  # fmt: skip
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
        lines = [
            "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
            for row in rows
        ]
        emit_success(
            json_output=json_output,
            fields={"tokens": [_fields(info, now) for info in tokens]},
            lines=lines if tokens else ["no tokens yet: evledger token create --role ROLE"],
        )


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[
        int, typer.Argument(metavar="ID", help="The token's id (see `evledger token list`).")
    ],
    reason: Annotated[str, typer.Option(help="Why, for the record (shown by `token list`).")],
    dsn: DsnOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    json_output: JsonOption = False,
) -> None:
    """Revoke a token for good; every service process refuses it within a second. Nothing is deleted."""
    with command_errors(json_output=json_output):
        check_revoke_reason(reason)  # before a database is started
        with database(dsn, data_dir) as url:
            info = asyncio.run(revoke_token(url, token_id, reason))
        revoked = _time(info.grants.revoked_at)
        label = f" {info.name!r}" if info.name else ""
        emit_success(
            json_output=json_output,
            fields=_fields(info, datetime.now(UTC)),
            lines=[
                f"revoked token {token_id}{label} (role {info.grants.role}) at {revoked}: {reason}",
                "every service process refuses it within a second",
            ],
        )
