"""`evledger blob put|get`: evidence files in the ledger, named by their SHA-256 (docs/cli.md).

Thin commands over `PUT` and `GET /v1/blobs/sha256:<hex>`. `get` trusts nothing the server
says: the bytes it writes are the ones that hash to the digest asked for, or it writes nothing
and exits 1, as any failed verification does.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.client import LedgerClient
from cli.errors import JsonOption, command_errors, emit_success
from cli.files import read_input
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
        with LedgerClient(server, token, timeout=300) as client:
            data = client.get(f"/v1/blobs/{name}").content
        got = f"sha256:{hashlib.sha256(data).hexdigest()}"
        if got != name:
            raise VerificationError(
                f"the server sent {len(data):,} bytes that hash to {got}, not to {name}: nothing was written",
                expected=name,
                calculated=got,
                labels=("asked for", "the bytes hash to"),
            )
        if str(out) == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return
        out.write_bytes(data)
        emit_success(
            json_output=json_output,
            fields={"digest": name, "size": len(data), "out": str(out)},
            lines=[f"verified: {name} ({len(data):,} bytes) -> {out}"],
        )
