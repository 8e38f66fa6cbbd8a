"""`evledger blob put|get`: evidence files in the ledger, named by their SHA-256 (docs/cli.md).

Thin commands over `PUT` and `GET /v1/blobs/sha256:<hex>`. `get` trusts nothing the server
says: the bytes it writes are the ones that hash to the digest asked for, or it writes nothing
and exits 1, as any failed verification does. A file streams to disk and replaces `--out`
only once all of it hashed to its name.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from cli.client import LedgerClient
from cli.errors import JsonOption, command_errors, emit_success
from cli.files import read_input, replaced_on_success
from cli.settings import DEFAULT_SERVER, ServerOption, TokenOption
from ledger.errors import InputError, VerificationError
from ledger.query.timeline import parse_digest

MAX_PUT_BYTES = 1 << 30  # the service's default EVLEDGER_MAX_BLOB; a larger file is refused before it is sent

blob_app = typer.Typer(
    help="Store evidence files in the ledger and fetch them back, checked against their SHA-256.",
    no_args_is_help=True,
)


@blob_app.command("put")
def put(
    file: Annotated[Path, typer.Argument(help="The file to store; - for stdin.")],
    product: Annotated[str, typer.Option("--product", help="The product the file is evidence for.")],
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    json_output: JsonOption = False,
) -> None:
    """Store a file (PUT /v1/blobs/sha256:<hex>?product=); print its digest, to name it in evidence.

    Storing a file again stores nothing new. An appender's token must hold the product.
    """
    with command_errors(json_output=json_output):
        if not token:
            raise InputError("give the API token with --token or EVLEDGER_TOKEN")
        data = read_input(file, "file", MAX_PUT_BYTES)
        with LedgerClient(server, token, timeout=300) as client:
            answer = client.put_blob(data, product)
        state = "stored" if answer["created"] else "already stored"
        emit_success(
            json_output=json_output,
            fields=answer,
            lines=[f"{state}: {answer['digest']} ({answer['size']:,} bytes, product {product})"],
        )


@contextmanager
def _nothing_written() -> Iterator[None]:
    """Say so when a download fails its check: the file was not written."""
    try:
        yield
    except VerificationError as exc:
        raise exc.restated(f"{exc}: nothing was written") from exc


@blob_app.command("get")
def get(
    digest: Annotated[str, typer.Argument(help="The file's digest, sha256:<64 hex digits>.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write the file; - for stdout.")],
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    json_output: JsonOption = False,
) -> None:
    """Fetch a stored file and write it only if its bytes hash to DIGEST (exit 1 if they do not)."""
    with command_errors(json_output=json_output):
        name = parse_digest(digest)
        with LedgerClient(server, token, timeout=300) as client, _nothing_written():
            if str(out) == "-":  # stdout cannot take back what it was given: check it all first
                held = io.BytesIO()
                client.download_blob(name, held)
                sys.stdout.buffer.write(held.getvalue())
                sys.stdout.buffer.flush()
                return
            with replaced_on_success(out) as sink:
                size = client.download_blob(name, sink)
        emit_success(
            json_output=json_output,
            fields={"digest": name, "size": size, "out": str(out)},
            lines=[f"verified: {name} ({size:,} bytes) -> {out}"],
        )
