"""`evledger audit`: recompute the whole log from the database and compare it with everything stored.

The audit itself is `ledger.verify.audit.audit_store`, which reads through the
storage Protocol: every entry, hash tile and checkpoint ever issued, the log
head, and that nothing lies beyond the head. This command opens the database
(`--dsn`, or the embedded one in the data directory), runs it with the next
page read ahead, maps the database's own failures to input or availability
errors, and prints the result. Exit 1 names the first index that disagrees
and the checkpoint it contradicts.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Annotated

import asyncpg
import typer

from cli.errors import JsonOption, command_errors, emit_success
from cli.files import load_verifier_key
from cli.settings import DEFAULT_DATA_DIR, DataDirOption, DsnOption, database
from ledger.core.keys import VerifierKey
from ledger.errors import InputError, UnavailableError
from ledger.storage.postgres import PostgresStore
from ledger.verify.audit import AuditReport, audit_store


async def _audit_database(dsn: str, trusted: VerifierKey | None, *, progress: bool) -> AuditReport:
    try:
        store = await PostgresStore.connect(dsn, min_size=1, max_size=2)
    except (OSError, asyncpg.PostgresError) as exc:
        raise UnavailableError(f"cannot open the ledger database: {exc}") from exc
    try:
        return await audit_store(store, trusted, progress=progress, read_ahead=asyncio.ensure_future)
    except asyncpg.UndefinedTableError as exc:
        raise InputError(f"the database holds no ledger (run `evledger init` first): {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise UnavailableError(f"the ledger database refused a read: {exc}") from exc
    finally:
        await store.close()


def audit(
    dsn: DsnOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    key: Annotated[
        Path | None,
        typer.Option("--key", metavar="PUBFILE", help="Also require entry 0 to register this ledger key."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Recompute the whole log from the database and compare it with every stored checkpoint.

    Checks every entry (leaf hash, chain, encoding, signature, query columns, times
    never going back or into the future), every hash tile, every checkpoint (signature,
    row, root, completeness index root), the log head, and that nothing lies beyond the head. Exit 1 names the
    first index that disagrees and the checkpoint it contradicts.
    """
    with command_errors(json_output=json_output):
        trusted = load_verifier_key(key) if key is not None else None
        progress = not json_output and sys.stderr.isatty()
        with database(dsn, data_dir) as url:
            started = time.monotonic()
            report = asyncio.run(_audit_database(url, trusted, progress=progress))
            seconds = time.monotonic() - started
        rate = report.tree_size / seconds if seconds > 0 else 0.0
        emit_success(
            json_output=json_output,
            fields={
                "origin": report.origin,
                "tree_size": report.tree_size,
                "root_hash": report.root_hash.hex(),
                "checkpoints": report.checkpoints,
                "tiles": report.tiles,
                "key_events": report.key_events,
                "signatures": report.signatures,
                "index_roots": report.index_roots,
                "seconds": round(seconds, 3),
            },
            lines=[
                (
                    f"audit passed: log {report.origin}: {report.tree_size:,} entries, "
                    f"{report.signatures:,} signatures, {report.checkpoints:,} checkpoints, "
                    f"{report.tiles:,} hash tiles, {report.key_events:,} key records and the head "
                    f"agree; root {report.root_hash.hex()} ({seconds:.1f} s, {rate:,.0f} entries/s)"
                ),
                f"  completeness index recomputed: matches {report.index_roots:,} checkpoints",
            ],
        )
