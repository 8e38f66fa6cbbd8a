"""Helpers for integration tests: an initialised ledger, tokens, signed evidence and a live server.

Plain functions and context managers; the fixtures in conftest.py wrap them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import msgspec

from ledger.append.bootstrap import initialise
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE, Envelope, sign_envelope
from ledger.core.keys import SignerKey
from ledger.records.admin import KeyRegistered, KeyRevoked, encode_admin_record
from ledger.storage.migrate import create_token

ORIGIN = "ledger.test/it"


@dataclass(frozen=True)
class Ledger:
    """An initialised ledger database and its key (written to `key_path`)."""

    dsn: str
    signer: SignerKey
    key_path: Path
    pub_path: Path


def init_ledger(dsn: str, directory: Path) -> Ledger:
    """Migrate `dsn`, write entry 0 with a fresh ledger key saved under `directory`."""
    signer = SignerKey.generate(ORIGIN)
    key_path, pub_path = directory / "ledger.key", directory / "ledger.pub"
    key_path.write_text(signer.format() + "\n")
    key_path.chmod(0o600)
    pub_path.write_text(signer.verifier().format() + "\n")
    asyncio.run(initialise(dsn, signer))
    return Ledger(dsn, signer, key_path, pub_path)


def token(dsn: str, role: str, products: list[str] | None = None) -> str:
    """A new API token."""
    return asyncio.run(create_token(dsn, role, products or []))


def statement(product: str | None = "prod", version: str = "1.0", n: int = 0, **predicate: object) -> bytes:
    """An in-toto Statement v1 about artifact number `n`, naming the release when `product` is set."""
    body: dict[str, object] = dict(predicate)
    if product is not None:
        body["release"] = {"product": product, "version": version}
    return msgspec.json.encode(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": f"artifact-{n}", "digest": {"sha256": f"{n:064x}"}}],
            "predicateType": "https://evledger.test/generic/v1",
            "predicate": body,
        }
    )


def evidence(signer: SignerKey, **kwargs: object) -> Envelope:
    """A signed evidence envelope (see `statement`)."""
    return sign_envelope(INTOTO_PAYLOAD_TYPE, statement(**kwargs), [signer])  # type: ignore[arg-type]


def register(
    admin: SignerKey, key: SignerKey, roles: list[str], products: list[str] | None = None
) -> Envelope:
    """An admin record registering `key`, signed by `admin`."""
    record = KeyRegistered(key.verifier().format(), f"owner of {key.name}", roles, products or [])
    return sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(record), [admin])


def revoke(admin: SignerKey, keyid: str, reason: str = "test") -> Envelope:
    """An admin record revoking `keyid`, signed by `admin`."""
    return sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(KeyRevoked(keyid, reason)), [admin])


def to_json(envelope: Envelope) -> bytes:
    """The envelope as a request body."""
    return msgspec.json.encode(envelope)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(
    ledger: Ledger, *, workers: int = 1, env: dict[str, str] | None = None, args: Sequence[str] = ()
) -> Iterator[str]:
    """Run `evledger serve [args]` on the ledger in a subprocess; yield its base URL; stop it afterwards."""
    port = free_port()
    command = ["serve", "--dsn", ledger.dsn, "--key", str(ledger.key_path), "--port", str(port)]
    with running_evledger(
        [*command, "--workers", str(workers), *args], f"http://127.0.0.1:{port}", env
    ) as url:
        yield url


@contextmanager
def running_evledger(args: Sequence[str], url: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `evledger ARGS` in a subprocess until `url`/healthz answers; yield `url`; stop it afterwards."""
    cli = Path(sys.executable).with_name("evledger")
    process = subprocess.Popen(  # noqa: S603 - our own CLI with arguments we built
        [str(cli), *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"evledger {args[0]} exited with {process.returncode}:\n{output}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code in {200, 401}:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"evledger {args[0]} did not start within 30 s")
            time.sleep(0.1)
        yield url
    finally:
        stop(process)
        if process.stdout is not None:
            process.stdout.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ask a server process to stop, and kill it if it has not within 15 s."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def static_files(directory: Path) -> Iterator[str]:
    """Serve a tile directory over HTTP, as a CDN in front of a log would."""

    class Quiet(SimpleHTTPRequestHandler):
        extensions_map: ClassVar[dict[str, str]] = {"": "application/octet-stream"}

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
