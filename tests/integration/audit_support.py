"""Shared set-up of the whole-log audit tests: a ledger with over 256 entries, served and copied to disk.

`build_served_ledger` registers a pipeline key (admin record signed by the
ledger key, over HTTP with an admin token), appends evidence in batches over
HTTP, and keeps the checkpoints it saw on the way. `download_tiles` mirrors
the tiles a checkpoint covers into a directory with the HTTP paths' layout.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import typer
from ledger_harness import Ledger, evidence, init_ledger, live_server, register, token
from typer.testing import CliRunner

from cli import audit, verify_log
from cli.client import LedgerClient
from ledger.core.checkpoint import open_checkpoint
from ledger.core.keys import SignerKey
from ledger.core.tiles import tiles_for_size

PIPELINE_PRODUCT = "prod"


def audit_app() -> typer.Typer:
    """The three commands as `cli/main.py` registers them."""
    app = typer.Typer()
    app.command("verify-log")(verify_log.verify_log)
    app.command("verify-consistency")(verify_log.verify_consistency_command)
    app.command("audit")(audit.audit)
    return app


APP = audit_app()
runner = CliRunner()


def run_cli(*args: str | Path) -> tuple[int, str]:
    """Run one command in-process; its exit code and its stdout and stderr together."""
    result = runner.invoke(APP, [str(a) for a in args])
    return result.exit_code, result.output


@dataclass(frozen=True)
class ServedLedger:
    """A ledger with entries, its server, an auditor token, and checkpoints taken along the way."""

    ledger: Ledger
    url: str
    auditor: str
    checkpoints: dict[int, str]  # tree size -> signed note
    directory: Path


def execute(dsn: str, *statements: str) -> None:
    """Run statements in order on one connection, as the DSN's user (the database owner in tests)."""

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def with_database(dsn: str, name: str) -> str:
    """`dsn` naming another database on the same server."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


@contextmanager
def scratch_database(pg_server_dsn: str, template: str | None = None) -> Iterator[str]:
    """A new database (a copy of `template` if given), dropped afterwards whatever happens."""
    name = f"evl_audit_{secrets.token_hex(6)}"
    copy = f' TEMPLATE "{template}"' if template else ""
    execute(pg_server_dsn, f'CREATE DATABASE "{name}"{copy}')
    try:
        yield with_database(pg_server_dsn, name)
    finally:
        execute(pg_server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def restored_copy(pg_server_dsn: str, source_dsn: str) -> Iterator[str]:
    """A copy of the database of `source_dsn`, as a backup restored, dropped afterwards.

    Precondition: the server that used it was stopped; its sessions may take a moment to
    end, so the copy is retried for up to 20 s ("source database is being accessed").
    """
    name = urlsplit(source_dsn).path.lstrip("/")
    deadline = time.monotonic() + 20
    while True:
        copy = scratch_database(pg_server_dsn, template=name)
        try:
            dsn = copy.__enter__()
        except asyncpg.PostgresError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            continue
        break
    try:
        yield dsn
    finally:
        copy.__exit__(None, None, None)


@contextmanager
def serving(ledger: Ledger) -> Iterator[str]:
    """`ledger_harness.live_server`, minus its ResourceWarning at shutdown.

    live_server never closes the server's stdout pipe, so the pipe's file is
    finalised with a ResourceWarning that pytest (filterwarnings = error)
    turns into an error of whichever test runs next. The warning is silenced
    only while the server's context is torn down.
    """
    server = live_server(ledger)
    url = server.__enter__()
    try:
        yield url
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            server.__exit__(None, None, None)
            del server
            gc.collect()


def latest_checkpoint(client: LedgerClient) -> str:
    """The server's newest signed checkpoint."""
    return client.get("/checkpoint").text


def fill_ledger(ledger: Ledger, url: str, batches: list[int], directory: Path) -> ServedLedger:
    """Register a pipeline key, then append `batches[i]` evidence envelopes per batch over HTTP."""
    admin, appender = token(ledger.dsn, "admin"), token(ledger.dsn, "appender", [PIPELINE_PRODUCT])
    pipeline = SignerKey.generate("pipeline.test/ci")
    checkpoints: dict[int, str] = {}
    with LedgerClient(url, admin) as client:
        client.append([register(ledger.signer, pipeline, ["builder"], [PIPELINE_PRODUCT])])
        checkpoints[2] = latest_checkpoint(client)
    number = 0
    with LedgerClient(url, appender) as client:
        for count in batches:
            envelopes = [evidence(pipeline, product=PIPELINE_PRODUCT, n=number + i) for i in range(count)]
            number += count
            receipts = client.append(envelopes)
            checkpoints[receipts[-1]["index"] + 1] = receipts[-1]["checkpoint"]
    return ServedLedger(ledger, url, token(ledger.dsn, "auditor"), checkpoints, directory)


def new_ledger(dsn: str, directory: Path) -> Ledger:
    """An initialised ledger whose key files live in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    return init_ledger(dsn, directory)


def download_tiles(served: ServedLedger, destination: Path) -> int:
    """Copy the checkpoint and every tile and entry bundle it covers; return its tree size."""
    with LedgerClient(served.url, served.auditor) as client:
        note = client.get("/checkpoint").content
        size = open_checkpoint(note, served.ledger.signer.verifier()).size
        files = {"checkpoint": note}
        for tile in tiles_for_size(size):
            files[tile.path()] = client.get(f"/{tile.path()}").content
            if tile.level == 0:
                files[tile.entries_path()] = client.get(f"/{tile.entries_path()}").content
    for path, data in files.items():
        target = destination / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return size
