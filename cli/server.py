"""Database-side commands: `init` and `serve` (docs/cli.md); tokens are in `cli.token_cmd`."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated

import typer

from cli.errors import JsonOption, command_errors, emit_success
from cli.files import create_exclusive
from cli.serve_guard import data_dir_lock, refuse_busy_port
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
from ledger.append.bootstrap import check_ledger_key, initialise
from ledger.core.keys import SignerKey, parse_signer_key
from ledger.errors import ConflictError, InputError, UnavailableError
from ledger.service.limits import (
    ENV_BLOB_STORE,
    ENV_DSN,
    ENV_KEY,
    ENV_PUBLIC_LOG,
    blob_location,
    server_options,
)
from ledger.service.witnessing_config import DEFAULT_TSA_INTERVAL, load_witnessing, witnessing_env
from ledger.storage.migrate import create_token
from ledger.storage.s3_location import S3Location

DEFAULT_ORIGIN_PREFIX = "evledger.local/ledger-"  # + 8 random hex digits: one origin per installation
# prometheus_client's variable (ledger.service.metrics), named here: importing that module would
# import prometheus_client in this process before the variable is set, and the workers forked
# from it would keep their counts to themselves.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def ledger_key(
    key: Path | None, data_dir: Path, origin: str | None, *, dsn: str | None = None
) -> tuple[SignerKey, Path]:
    """The ledger key: the given file, or without a DSN `DATA_DIR/ledger.key`, made on first use.

    With a DSN the key must be given (InputError with guidance, nothing written): the
    database names its key in entry 0, and a key made up in the current directory
    would either start a ledger nobody can find the key of, or not fit the database.
    """
    if key is not None:
        return load_signer(key, "ledger key"), key
    if dsn:
        raise InputError(
            "with --dsn, give the ledger's key with --key FILE (or EVLEDGER_KEY=FILE). For a new "
            "ledger, make one with `evledger keygen NAME` (it writes NAME.key and NAME.pub); for an "
            "existing one, use the .key file it was initialised with (a ledger first served without "
            f"--dsn keeps it in its data directory, as {LEDGER_KEY_FILE})"
        )
    path = data_dir / LEDGER_KEY_FILE
    if path.exists():
        return parse_signer_key(path.read_text(encoding="utf-8")), path
    # Each installation gets its own origin, so that a witness or a monitor following two
    # ledgers never confuses their checkpoints (the origin names the log, docs/formats.md).
    signer = SignerKey.generate(origin or DEFAULT_ORIGIN_PREFIX + secrets.token_hex(4))
    data_dir.mkdir(parents=True, exist_ok=True)
    create_exclusive(path, signer.format() + "\n", private=True)
    create_exclusive(path.with_suffix(".pub"), signer.verifier().format() + "\n", private=False)
    return signer, path


def _initialise(
    url: str, signer: SignerKey, key_path: Path, origin: str | None = None, *, check_only: bool = False
) -> int:
    """Migrate and write entry 0 (or, `check_only`, only check the key); a mismatch names the key file.

    Either way the log must then verify as the service will hold it (`check_ledger_key`):
    a log changed around the ledger stops here, with exit 1, not in the server's workers.
    """
    try:
        size = 0 if check_only else asyncio.run(initialise(url, signer, origin=origin))
        asyncio.run(check_ledger_key(url, signer))
    except ConflictError as exc:
        exc.add_note(f"ledger key file {key_path.resolve()} ({signer.keyid})")
        raise
    return size


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
        signer, key_path = ledger_key(key, data_dir, origin, dsn=dsn)
        with database(dsn, data_dir) as url:
            size = _initialise(url, signer, key_path, origin)
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
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on; it must be free.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Server worker processes (default: one per core; they share the log)."),
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    skip_init: Annotated[
        bool,
        typer.Option(help="The owner already ran `evledger init`: the DSN's user need not own the schema."),
    ] = False,
    public_log: Annotated[
        bool,
        typer.Option(
            envvar=ENV_PUBLIC_LOG,
            help="Serve GET /checkpoint and /tile/* without a token (C2SP tile clients, witnesses, "
            "monitors). Everything else still needs one.",
        ),
    ] = False,
    witness_policy: Annotated[
        Path | None,
        typer.Option(
            "--witness-policy",
            metavar="FILE",
            help="Submit every new checkpoint to these witnesses (`witness <name> <key> <url>` lines, "
            "`quorum <n>`); GET /checkpoint then serves the newest checkpoint the quorum cosigned.",
        ),
    ] = None,
    tsa: Annotated[
        list[str] | None,
        typer.Option(
            "--tsa",
            metavar="URL",
            help="An RFC 3161 time-stamping authority to timestamp checkpoints (repeatable).",
        ),
    ] = None,
    tsa_cert: Annotated[
        list[Path] | None,
        typer.Option(
            "--tsa-cert",
            metavar="CERT.pem",
            help="A certificate the authorities' tokens must verify against (repeatable).",
        ),
    ] = None,
    tsa_interval: Annotated[
        float,
        typer.Option(min=0.1, metavar="S", help="Seconds between two tokens from one authority."),
    ] = DEFAULT_TSA_INTERVAL,
    blob_store: Annotated[
        str,
        typer.Option(
            envvar=ENV_BLOB_STORE,
            metavar="WHERE",
            help="Where evidence files' bytes are kept: `postgres` (the ledger's database), or "
            "`s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME` for S3-compatible storage, with the "
            "credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. The bucket must exist.",
        ),
    ] = "postgres",
) -> None:
    """Run the HTTP service; without a DSN on an embedded PostgreSQL in the data directory.

    It refuses a busy port, and a data directory another `serve` uses. /healthz and /readyz need no token.
    Each worker's limits come from environment variables (see docs/deployment.md):
    EVLEDGER_MAX_CONNECTIONS, EVLEDGER_BACKLOG, EVLEDGER_HEADER_TIMEOUT,
    EVLEDGER_BODY_TIMEOUT, EVLEDGER_BODY_BUDGET, EVLEDGER_QUEUE_BYTES, EVLEDGER_MAX_BLOB and
    EVLEDGER_MAX_UPLOADS.
    """
    from granian import Granian  # noqa: PLC0415 - only this command needs the server

    with command_errors(json_output=False), ExitStack() as owned:
        if not dsn:
            owned.enter_context(data_dir_lock(data_dir))
        refuse_busy_port(host, port)
        # The limits are checked before anything starts: a wrong EVLEDGER_* value is exit 2.
        options = server_options(host=host, port=port, workers=workers or os.cpu_count() or 1)
        anchoring = (witness_policy, tsa or [], tsa_cert or [], tsa_interval)
        witnessing = load_witnessing(
            *anchoring
        )  # a bad policy or certificate is exit 2, before anything starts
        blobs = blob_location(blob_store)  # a malformed location is exit 2, before anything starts
        if blobs is not None:
            _check_bucket(blobs)
        signer, key_path = ledger_key(key, data_dir, None, dsn=dsn)
        with database(dsn, data_dir) as url:
            _initialise(url, signer, key_path, check_only=skip_init)
            if not dsn:
                _first_admin_token(url, data_dir)
            metrics_dir = owned.enter_context(_metrics_dir())
            os.environ.update(
                {
                    METRICS_DIR_ENV: str(metrics_dir),
                    ENV_DSN: url,
                    ENV_KEY: str(key_path.resolve()),
                    ENV_PUBLIC_LOG: "1" if public_log else "0",
                    ENV_BLOB_STORE: blob_store,
                    **witnessing_env(*anchoring),
                }
            )
            refuse_busy_port(host, port)  # again: starting the database may have taken seconds
            access = "public log reads, " if public_log else ""
            typer.echo(
                f"evledger: serving {signer.name} on http://{host}:{port} ({access}ledger key {signer.keyid})"
            )
            if witnessing.policy is not None:
                typer.echo(f"evledger: checkpoints cosigned by {witnessing.policy.describe()}")
            for authority in witnessing.authorities:
                typer.echo(f"evledger: checkpoints timestamped by {authority.url}")
            if blobs is not None:
                typer.echo(f"evledger: evidence files kept in {blobs.describe()}")
            Granian(**options).serve()


def _check_bucket(location: S3Location) -> None:
    """UnavailableError (exit 3) unless the bucket of `location` answers with the credentials at hand."""
    from ledger.storage.s3_blobs import s3_client  # noqa: PLC0415 - the S3 client only when it is used

    async def reach() -> None:
        async with s3_client(location):
            pass

    try:
        asyncio.run(reach())
    except UnavailableError as exc:
        raise UnavailableError(f"cannot use the blob store {location.describe()}: {exc.__cause__}") from exc


@contextmanager
def _metrics_dir() -> Iterator[Path]:
    """A fresh directory (mode 0700) where the workers keep their metrics, removed at exit.

    Fresh per run, so a scrape never adds the counts of an earlier run (or of another server).
    A `serve` killed with SIGKILL leaves it behind in the temporary directory (a few kB).
    """
    path = Path(tempfile.mkdtemp(prefix="evledger-metrics-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _first_admin_token(url: str, data_dir: Path) -> None:
    """On an embedded ledger's first run, make an admin token and keep it in DATA_DIR/admin.token."""
    path = data_dir / ADMIN_TOKEN_FILE
    if not path.exists():
        token = asyncio.run(create_token(url, "admin", []))
        create_exclusive(path, token + "\n", private=True)
    typer.echo(f"evledger: admin token in {path}")
