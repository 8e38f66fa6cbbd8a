"""`evledger blob put|get` against a live server: files stored, and fetched back only when they hash right.

Between the command and the server, a real HTTP proxy (tests/integration/proxy_support.py) can
change the bytes served: `get` must then write nothing and exit 1.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ledger_harness import Ledger, live_server, token
from proxy_support import Proxy
from service_support import scratch_ledger
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


@dataclass(frozen=True)
class Server:
    ledger: Ledger
    url: str
    appender: str  # scoped to "analyzer"
    auditor: str
    proxy: Proxy


@pytest.fixture(scope="module")
def server(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with (
        scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("blob_cli")) as ledger,
        live_server(ledger) as url,
        Proxy(url) as proxy,
    ):
        appender, auditor = token(ledger.dsn, "appender", ["analyzer"]), token(ledger.dsn, "auditor")
        yield Server(ledger, url, appender, auditor, proxy)


def blob(*args: str, server: str, credential: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, ["blob", *args, "--server", server, "--token", credential, "--json"])
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def test_a_file_put_is_got_back_byte_for_byte(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "validation-report.pdf"
    source.write_bytes(os.urandom(70_000))
    digest = f"sha256:{hashlib.sha256(source.read_bytes()).hexdigest()}"
    code, stored = blob(
        "put", str(source), "--product", "analyzer", server=server.url, credential=server.appender
    )
    assert code == 0, stored
    assert (stored["digest"], stored["size"], stored["created"]) == (digest, 70_000, True)
    code, again = blob(
        "put", str(source), "--product", "analyzer", server=server.url, credential=server.appender
    )
    assert (code, again["created"]) == (0, False)
    out = tmp_path / "fetched.pdf"
    code, fetched = blob("get", digest, "-o", str(out), server=server.url, credential=server.auditor)
    assert code == 0, fetched
    assert out.read_bytes() == source.read_bytes()


def test_bytes_changed_on_the_way_are_refused_and_nothing_written(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "log.txt"
    source.write_bytes(b"build log\n" * 500)
    digest = f"sha256:{hashlib.sha256(source.read_bytes()).hexdigest()}"
    assert (
        blob("put", str(source), "--product", "analyzer", server=server.url, credential=server.appender)[0]
        == 0
    )
    server.proxy.alter = lambda path, status, body: (
        (status, body[:-1] + b"!") if "/v1/blobs/" in path else (status, body)
    )
    try:
        out = tmp_path / "fetched.txt"
        code, refused = blob(
            "get", digest, "-o", str(out), server=server.proxy.url, credential=server.auditor
        )
    finally:
        server.proxy.alter = None
    assert code == 1, refused
    assert refused["error"] == "verification"
    assert "nothing was written" in str(refused["detail"])
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "credential", "expected"),
    [
        (["get", "sha256:" + "0" * 64, "-o", "x"], "auditor", (2, "not_found")),
        (["get", "md5:abc", "-o", "x"], "auditor", (2, "input")),
        (["get", "sha256:" + "0" * 64, "-o", "x"], "not-a-token", (2, "unauthenticated")),
        (["put", "<file>", "--product", "analyzer"], "auditor", (2, "permission_denied")),
        (["put", "<file>", "--product", "other"], "appender", (2, "permission_denied")),
        (["put", "<missing>", "--product", "analyzer"], "appender", (2, "input")),
    ],
)
def test_refusals_exit_with_the_contract_code(
    server: Server, tmp_path: Path, args: list[str], credential: str, expected: tuple[int, str]
) -> None:
    present = tmp_path / "present.bin"
    present.write_bytes(b"evidence")
    files = {"<file>": str(present), "<missing>": str(tmp_path / "missing.bin"), "x": str(tmp_path / "x")}
    secret = {"auditor": server.auditor, "appender": server.appender}.get(credential, credential)
    got, output = blob(*[files.get(a, a) for a in args], server=server.url, credential=secret)
    assert (got, output["error"]) == expected, output
