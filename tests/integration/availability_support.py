"""Shared by the availability and outage tests: a real `evledger serve`, its workers' memory, a TCP proxy.

- `serving` runs `evledger serve` in its own process group with extra environment
  variables (the EVLEDGER_* limits) and yields its URL and process id.
- `worker_pids`, `rss_mib` and `peak_rss_mib` read the granian workers' memory from /proc.
- `TcpProxy` stands between the service and PostgreSQL; a test cuts it (new connections
  refused, open ones reset, as when the database host goes away) and restores it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Self
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import msgspec
from ledger_harness import Ledger, free_port, register, token
from service_support import bearer

from ledger.core.keys import SignerKey

START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Server:
    """A running `evledger serve`: its base URL, granian's main process id, and its output so far."""

    url: str
    pid: int
    log: IO[bytes]

    def output(self) -> str:
        """What the server has printed so far."""
        return _output(self.log)


def _output(log: IO[bytes]) -> str:
    """The server's output so far (pread: the server writes at the file's shared offset)."""
    fd = log.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")


@contextlib.contextmanager
def serving(
    ledger: Ledger, env: dict[str, str] | None = None, *, workers: int = 1, dsn: str | None = None
) -> Iterator[Server]:
    """`evledger serve --dsn DSN --key KEY --workers N --skip-init` on a free port, stopped afterwards."""
    port = free_port()
    cli = Path(sys.executable).with_name("evledger")
    command = [str(cli), "serve", "--dsn", dsn or ledger.dsn, "--key", str(ledger.key_path), "--skip-init"]
    command += ["--port", str(port), "--workers", str(workers)]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(  # noqa: S603 - our own CLI with arguments we built
            command,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if process.poll() is not None:
                    msg = f"evledger serve exited with {process.returncode}:\n{_output(log)[-3000:]}"
                    raise RuntimeError(msg)
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(url + "/healthz", timeout=1).status_code in {200, 401}:
                        break
                if time.monotonic() > deadline:
                    msg = (
                        f"evledger serve did not start within {START_TIMEOUT:.0f} s:\n{_output(log)[-3000:]}"
                    )
                    raise RuntimeError(msg)
                time.sleep(0.1)
            yield Server(url, process.pid, log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the group of the server this function started
                process.wait()


def worker_pids(pid: int) -> list[int]:
    """The child processes of `pid` (granian's workers)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return children


def _status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    msg = f"no {field} for process {pid}"
    raise LookupError(msg)


def rss_mib(pid: int) -> float:
    """The resident memory of a process now, in MiB."""
    return _status_mib(pid, "VmRSS")


def peak_rss_mib(pid: int) -> float:
    """The most resident memory a process has had (its high-water mark), in MiB."""
    return _status_mib(pid, "VmHWM")


def appender(url: str, ledger: Ledger, product: str = "prod") -> tuple[str, SignerKey]:
    """A key registered through the service for `product`, and an appender token for it."""
    key = SignerKey.generate("ci.test/availability")
    admin = token(ledger.dsn, "admin")
    body = msgspec.json.encode(register(ledger.signer, key, ["appender"], [product]))
    response = httpx.post(url + "/v1/entries", content=body, headers=bearer(admin), timeout=30)
    assert response.status_code == 201, response.text
    return token(ledger.dsn, "appender", [product]), key


# --- a TCP proxy to PostgreSQL that can be cut ------------------------------------------------


def _target(dsn: str) -> tuple[str, str | int]:
    """Where the DSN's server listens: ("unix", socket path) or (host, port)."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    port = int(query.get("port", [parts.port or 5432])[0])
    socket_dir = query.get("host", [""])[0]
    if socket_dir.startswith("/"):
        return "unix", f"{socket_dir}/.s.PGSQL.{port}"
    return parts.hostname or "127.0.0.1", port


class TcpProxy:
    """Forwards 127.0.0.1:`port` to the PostgreSQL server of `dsn`, in a thread of its own.

    `cut()` stops listening (new connections are refused) and resets every open
    connection on both sides; `restore()` listens again on the same port.
    """

    def __init__(self, dsn: str) -> None:
        """Prepare a proxy for the server of `dsn` (TCP or Unix socket)."""
        self._target = _target(dsn)
        self._dsn = dsn
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.WriteTransport] = set()
        self.port = 0

    def proxied(self, dsn: str) -> str:
        """`dsn` (on the proxied server) reached through the proxy instead."""
        parts = urlsplit(dsn)
        user = parts.username or "postgres"
        return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{self.port}", query=""))

    def __enter__(self) -> Self:
        """Start the thread and listen."""
        self._thread.start()
        self.restore()
        return self

    def __exit__(self, *_: object) -> None:
        """Cut everything and stop the thread."""
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def _run(self, coroutine: object) -> None:
        future: Future[None] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]
        future.result(timeout=10)

    def cut(self) -> None:
        """Refuse new connections and reset the open ones (the database host is gone)."""
        self._run(self._cut())

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        self._run(self._listen())

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port or 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._open):
            transport.abort()
        self._open.clear()

    async def _pipe(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            if self._target[0] == "unix":
                upstream = await asyncio.open_unix_connection(str(self._target[1]))
            else:
                upstream = await asyncio.open_connection(self._target[0], int(self._target[1]))
        except OSError:
            client_writer.transport.abort()
            return
        server_reader, server_writer = upstream
        pair = {client_writer.transport, server_writer.transport}
        self._open |= pair

        async def copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            for transport in pair:
                transport.abort()

        await asyncio.gather(copy(client_reader, server_writer), copy(server_reader, client_writer))
        self._open -= pair
