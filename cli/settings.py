"""Where the CLI finds its ledger: DSN, data directory, server URL, token and keys (docs/cli.md).

Every option also reads its EVLEDGER_* environment variable. Without a DSN the
database commands use the embedded PostgreSQL in the data directory: they
attach to it when `evledger serve` already runs it, and start it otherwise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from cli.embedded_postgres import CLUSTER_DIR, DATABASE, PORT, SUPERUSER, EmbeddedPostgres
from ledger.core.key_files import is_encrypted_key, parse_encrypted_key
from ledger.core.keys import SignerKey, parse_signer_key
from ledger.errors import InputError

DEFAULT_DATA_DIR = Path("evledger-data")
LEDGER_KEY_FILE = "ledger.key"
ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 - a file name, not a secret

DsnOption = Annotated[
    str | None,
    typer.Option("--dsn", envvar="EVLEDGER_DSN", help="PostgreSQL DSN; none: the embedded database."),
]
DataDirOption = Annotated[
    Path,
    typer.Option(
        "--data-dir", envvar="EVLEDGER_DATA", help="Directory of the embedded database and the ledger key."
    ),
]
DEFAULT_SERVER = "http://127.0.0.1:8000"
_SERVER_HELP = "Base URL of the ledger service."
ServerOption = Annotated[str, typer.Option("--server", envvar="EVLEDGER_SERVER", help=_SERVER_HELP)]
# For commands that also work without a server (`--tiles DIR`, `--proof FILE`): no default URL.
OptionalServerOption = Annotated[
    str | None, typer.Option("--server", metavar="URL", envvar="EVLEDGER_SERVER", help=_SERVER_HELP)
]
TokenOption = Annotated[
    str | None, typer.Option("--token", envvar="EVLEDGER_TOKEN", help="API token (Bearer).")
]
SignerKeyOption = Annotated[
    Path | None,
    typer.Option("--key", envvar="EVLEDGER_KEY", help="Signer key file (.key) to sign with."),
]


ENV_KEY_PASSPHRASE = "EVLEDGER_KEY_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret


def load_signer(path: Path | None, what: str = "signer key") -> SignerKey:
    """Read a signer key file; InputError when none was given.

    An encrypted key file (docs/formats.md#keys) is opened with EVLEDGER_KEY_PASSPHRASE when
    it is set, else with a passphrase asked on the terminal; with neither, InputError (exit 2)
    says how to give one. A wrong passphrase is InputError too, naming the key, never showing it.
    """
    if path is None:
        raise InputError(f"give the {what} with --key or EVLEDGER_KEY")
    text = path.read_text(encoding="utf-8")
    if not is_encrypted_key(text):
        return parse_signer_key(text)
    encrypted = parse_encrypted_key(text)
    passphrase = os.environ.get(ENV_KEY_PASSPHRASE)
    if passphrase is None:
        if not sys.stdin.isatty():
            raise InputError(
                f"the {what} {path} ({encrypted.keyid}) is encrypted: run on a terminal to type its "
                f"passphrase, or set {ENV_KEY_PASSPHRASE}"
            )
        passphrase = str(typer.prompt(f"Passphrase for {encrypted.keyid}", hide_input=True, err=True))
    return encrypted.decrypt(passphrase)


def _running_embedded_dsn(data_dir: Path) -> str | None:
    """The DSN of an embedded server another process runs from `data_dir`, if one is up."""
    cluster = data_dir.resolve() / CLUSTER_DIR
    pid_file = cluster / "data" / "postmaster.pid"
    socket = cluster / f".s.PGSQL.{PORT}"
    if not pid_file.exists() or not socket.exists():
        return None
    try:
        os.kill(int(pid_file.read_text().split("\n", 1)[0]), 0)
    except (ValueError, ProcessLookupError):
        return None
    except PermissionError:
        pass  # it runs as the unprivileged account: alive
    return f"postgresql://{SUPERUSER}@/{DATABASE}?host={cluster}&port={PORT}"


@contextmanager
def database(dsn: str | None, data_dir: Path) -> Iterator[str]:
    """Yield a DSN: the given one, a running embedded server's, or one started for the block."""
    if dsn:
        yield dsn
        return
    running = _running_embedded_dsn(data_dir)
    if running is not None:
        yield running
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    with EmbeddedPostgres(data_dir) as pg:
        yield pg.dsn
