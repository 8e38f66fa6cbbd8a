"""Database-side commands: `init`, `serve`, `token create` (DESIGN.md §5)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from cli.errors import JsonOption, command_errors, emit_success
from cli.files import create_exclusive
from cli.settings import (
    ADMIN_TOKEN_FILE,
    DEFAULT_DATA_DIR,
    LEDGER_KEY_FILE,
    DataDirOption,
    DsnOption,
    SignerKeyOption,
    database,
    load_signer,
)
from ledger.bootstrap import initialise
from ledger.core.keys import SignerKey, parse_signer_key
from ledger.errors import InputError
from ledger.service.limits import server_options
from ledger.storage.migrate import create_token

token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
ROLES = ("appender", "auditor", "admin")
DEFAULT_ORIGIN = "evledger.local/ledger"


def ledger_key(key: Path | None, data_dir: Path, origin: str | None) -> tuple[SignerKey, Path]:
    """The ledger key: the given file, else `DATA_DIR/ledger.key`, created on first use."""
    if key is not None:
        return load_signer(key, "ledger key"), key
    path = data_dir / LEDGER_KEY_FILE
    if path.exists():
        return parse_signer_key(path.read_text(encoding="utf-8")), path
    signer = SignerKey.generate(origin or DEFAULT_ORIGIN)
    data_dir.mkdir(parents=True, exist_ok=True)
    create_exclusive(path, signer.format() + "\n", private=True)
    create_exclusive(path.with_suffix(".pub"), signer.verifier().format() + "\n", private=False)
    return signer, path


def init(
    dsn: DsnOption = None,
    key: SignerKeyOption = None,
    origin: Annotated[
        str | None, typer.Option("--origin", help="Log origin (default: the key's name).")
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    json_output: JsonOption = False,
) -> None:
    """Migrate the database and write entry 0 (the ledger key's registration). Idempotent."""
    with command_errors(json_output=json_output):
        signer, key_path = ledger_key(key, data_dir, origin)
        with database(dsn, data_dir) as url:
            size = asyncio.run(initialise(url, signer, origin=origin))
        emit_success(
            json_output=json_output,
            fields={"tree_size": size, "ledger_key": signer.verifier().format(), "key_file": str(key_path)},
            lines=[
                f"ledger initialised: {size} entries",
                f"ledger key: {signer.verifier().format()}",
                f"key file:   {key_path}",
            ],
        )


def serve(
    dsn: DsnOption = None,
    key: SignerKeyOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Server worker processes (default: one per core; they share the log)."),
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    skip_init: Annotated[
        bool,
        typer.Option(help="The owner already ran `evledger init`: the DSN's user need not own the schema."),
    ] = False,
) -> None:
    """Run the HTTP service; without a DSN on an embedded PostgreSQL in the data directory.

    Each worker's limits come from environment variables (see docs/deployment.md):
    EVLEDGER_MAX_CONNECTIONS, EVLEDGER_BACKLOG, EVLEDGER_HEADER_TIMEOUT,
    EVLEDGER_BODY_TIMEOUT, EVLEDGER_BODY_BUDGET and EVLEDGER_QUEUE_BYTES.
    """
    from granian import Granian  # noqa: PLC0415 - only this command needs the server

    with command_errors(json_output=False):
        signer, key_path = ledger_key(key, data_dir, None)
        with database(dsn, data_dir) as url:
            if not skip_init:
                asyncio.run(initialise(url, signer))
            if not dsn:
                _first_admin_token(url, data_dir)
            os.environ.update({"EVLEDGER_DSN": url, "EVLEDGER_KEY": str(key_path.resolve())})
            typer.echo(f"evledger: serving {signer.name} on http://{host}:{port} (ledger key {signer.keyid})")
            Granian(**server_options(host=host, port=port, workers=workers or os.cpu_count() or 1)).serve()


def _first_admin_token(url: str, data_dir: Path) -> None:
    """On an embedded ledger's first run, make an admin token and keep it in DATA_DIR/admin.token."""
    path = data_dir / ADMIN_TOKEN_FILE
    if not path.exists():
        token = asyncio.run(create_token(url, "admin", []))
        create_exclusive(path, token + "\n", private=True)
    typer.echo(f"evledger: admin token in {path}")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")],
    product: Annotated[list[str] | None, typer.Option(help="Limit to a product; repeat. None: all.")] = None,
    dsn: DsnOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    json_output: JsonOption = False,
) -> None:
    """Create an API token; it is printed once, as the last word of the last line."""
    with command_errors(json_output=json_output):
        if role not in ROLES:
            raise InputError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        with database(dsn, data_dir) as url:
            token = asyncio.run(create_token(url, role, list(product or [])))
        scope = ", ".join(product or []) or "all products"
        emit_success(
            json_output=json_output,
            fields={"role": role, "products": list(product or []), "token": token},
            lines=[f"token for role {role} ({scope}): {token}"],
        )
