"""`evledger demo`: the whole story on an embedded PostgreSQL, start to finish (DESIGN.md §5).

It starts the database and the service, registers a pipeline key, appends
signed evidence over HTTP with receipts, checks a receipt offline with only
the ledger's public key, shows an idempotent retry, audits the whole log
through its tiles, and stops everything again (or keeps serving).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import msgspec
import typer

from cli.client import LedgerClient
from cli.errors import command_errors
from cli.server import ledger_key
from cli.settings import database
from ledger.admin import KeyRegistered, encode_admin_record
from ledger.bootstrap import initialise
from ledger.core.checkpoint import open_checkpoint
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE, Envelope, sign_envelope
from ledger.core.encoding import hash_from_hex
from ledger.core.keys import SignerKey
from ledger.core.proof import verify_inclusion
from ledger.errors import UnavailableError
from ledger.storage.migrate import create_token

PRODUCT, VERSION = "ivd-analyzer", "2.4.0"
DEMO_ORIGIN = "evledger.demo/ledger"


def _say(step: str) -> None:
    typer.secho(f"\n== {step}", bold=True)


@contextmanager
def _service(url: str, key_path: Path, port: int) -> Iterator[str]:
    """Run `evledger serve` on the database at `url` in a child process until the block ends."""
    command = [sys.executable, "-m", "cli.main", "serve", "--dsn", url, "--key", str(key_path)]
    child = subprocess.Popen(  # noqa: S603 - our own CLI, arguments we built
        [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if child.poll() is not None:
                output = child.stderr.read().decode() if child.stderr else ""
                raise UnavailableError(f"the service did not start:\n{output[-2000:]}")
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise UnavailableError(f"the service did not answer on {base} within 30 s") from None
                time.sleep(0.2)
        yield base
    finally:
        child.terminate()
        child.wait(timeout=20)


def _statement(predicate_type: str, subject: str, digest: str, **fields: object) -> bytes:
    predicate = {"release": {"product": PRODUCT, "version": VERSION}, **fields}
    return msgspec.json.encode(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": subject, "digest": {"sha256": digest}}],
            "predicateType": predicate_type,
            "predicate": predicate,
        }
    )


def _evidence(pipeline: SignerKey) -> list[tuple[str, Envelope]]:
    artifact = "4f2a" * 16
    statements = [
        ("change", _statement("https://evledger.dev/change/v1", "git", "c0ffee" * 10 + "0000",
                              summary="Correct rounding of borderline potassium results")),
        ("build", _statement("https://evledger.dev/build/v1", "analyzer.tar", artifact,
                             builder="ci-runner-7")),
        ("tests", _statement("https://evledger.dev/test-run/v1", "analyzer.tar", artifact,
                             suite="regression", passed=412, failed=0)),
        ("scan", _statement("https://evledger.dev/scan/v1", "analyzer.tar", artifact, tool="grype",
                            findings={"critical": 0, "high": 0})),
    ]  # fmt: skip
    return [(name, sign_envelope(INTOTO_PAYLOAD_TYPE, body, [pipeline])) for name, body in statements]


def _tokens(url: str) -> tuple[str, str]:
    async def make() -> tuple[str, str]:
        return await create_token(url, "admin", []), await create_token(url, "appender", [PRODUCT])

    return asyncio.run(make())


def demo(
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its database and keys.")] = Path(
        "evledger-demo"
    ),
    port: Annotated[int, typer.Option(help="Port for the demo's service.")] = 8000,
    keep_serving: Annotated[bool, typer.Option(help="Leave the service running at the end.")] = False,
) -> None:
    """Run the whole story on an embedded PostgreSQL in DATA_DIR."""
    with command_errors(json_output=False):
        _say("1. Embedded PostgreSQL, ledger key, entry 0")
        signer, key_path = ledger_key(None, data_dir, DEMO_ORIGIN)
        with database(os.environ.get("EVLEDGER_DSN"), data_dir) as url:
            size = asyncio.run(initialise(url, signer))
            typer.echo(f"ledger {signer.name}: {size} entries; public key {key_path.with_suffix('.pub')}")
            admin_token, appender_token = _tokens(url)
            with _service(url, key_path, port) as base:
                typer.echo(f"service on {base}")
                _run_story(base, signer, admin_token, appender_token, data_dir)
                if keep_serving:
                    typer.echo(f"\nserving on {base}; admin token {admin_token}\nCtrl-C to stop.")
                    while True:
                        time.sleep(3600)


def _run_story(base: str, ledger: SignerKey, admin_token: str, appender_token: str, data_dir: Path) -> None:
    _say("2. Register the pipeline's signing key (an admin record signed by the ledger key)")
    pipeline = SignerKey.generate(f"ci.demo/pipeline-{datetime.now(UTC):%Y%m%d%H%M%S}")
    record = KeyRegistered(pipeline.verifier().format(), "CI pipeline (demo)", ["appender"], [PRODUCT])
    with LedgerClient(base, admin_token) as admin:
        (receipt,) = admin.append([sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(record), [ledger])])
    typer.echo(f"registered {pipeline.keyid} at entry {receipt['index']}")

    _say(f"3. The pipeline appends signed evidence for {PRODUCT} {VERSION}")
    receipts = []
    with LedgerClient(base, appender_token) as client:
        for name, envelope in _evidence(pipeline):
            (receipt,) = client.append([envelope], idempotency_key=f"{pipeline.name}/{name}")
            receipts.append(receipt)
            size = receipt["checkpoint"].split("\n")[1]
            typer.echo(f"{name:<7} entry {receipt['index']:>4}  leaf {receipt['leaf_hash'][:16]}…  "
                       f"checkpoint size {size}  proof {len(receipt['inclusion_proof'])} hashes")  # fmt: skip

        _say("4. A retried CI job: same Idempotency-Key, same body → the original receipt, nothing new")
        (again,) = client.append([_evidence(pipeline)[0][1]], idempotency_key=f"{pipeline.name}/change")
        typer.echo(f"retry answered with entry {again['index']} (first time: {receipts[0]['index']})")

    _say("5. An inspector checks a receipt offline, trusting only the ledger's public key")
    last = receipts[-1]
    checkpoint = open_checkpoint(last["checkpoint"], ledger.verifier())
    proof = [hash_from_hex(h) for h in last["inclusion_proof"]]
    verify_inclusion(
        last["index"], checkpoint.size, hash_from_hex(last["leaf_hash"]), proof, checkpoint.root_hash
    )
    typer.echo(f"entry {last['index']} is in the tree of size {checkpoint.size} signed by {ledger.keyid}: OK")
    receipt_file = data_dir / "receipt.json"
    receipt_file.write_bytes(msgspec.json.encode(last))
    typer.echo(
        f"the same with the CLI: evledger verify-proof inclusion --receipt {receipt_file} "
        f"--key {data_dir / 'ledger.pub'}"
    )
