"""The service keeps answering under slow clients and big bodies (issue #9, items 8 and 9).

Each test runs a real `evledger serve` (one worker, so a per-worker limit is the whole
server's) and real TCP clients: half-open connections sending headers a byte at a time,
connections that never send a byte, a body trickled with a valid appender token, and
concurrent batches of big envelopes. Figures under load are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from availability_support import Server, appender, peak_rss_mib, serving, worker_pids
from ledger_harness import Ledger, free_port, init_ledger, statement, token
from service_support import bearer, check_error, service, written

from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.keys import SignerKey

MIB = 1 << 20
HALF_OPEN = 1100  # the slowloris: past the 1,024 connections granian took by default


@pytest.fixture
def ledger(fresh_dsn: str, tmp_path: Path) -> Ledger:
    return init_ledger(fresh_dsn, tmp_path)


@contextlib.contextmanager
def limited(ledger: Ledger, **limits: str) -> Iterator[Server]:
    with serving(ledger, {f"EVLEDGER_{name.upper()}": value for name, value in limits.items()}) as server:
        yield server


def padded(key: SignerKey, n: int, size: int) -> bytes:
    """An envelope (JSON) whose payload carries `size` bytes of padding."""
    body = msgspec.json.decode(statement(n=n))
    body["predicate"]["pad"] = "p" * size
    return msgspec.json.encode(sign_envelope(INTOTO_PAYLOAD_TYPE, msgspec.json.encode(body), [key]))


async def _probe(url: str, reader: str, count: int) -> list[float]:
    """`count` authenticated reads, one after the other; their latencies (an error fails the test)."""
    latencies = []
    async with httpx.AsyncClient(base_url=url, timeout=3.0, headers=bearer(reader)) as client:
        for _ in range(count):
            started = time.monotonic()
            response = await client.get("/v1/checkpoint")
            assert response.status_code == 200, response.text
            latencies.append(time.monotonic() - started)
    return latencies


async def _half_open(port: int, count: int) -> list[asyncio.StreamWriter]:
    """`count` connections, each having sent the start of a request head and nothing more."""
    writers = []
    for n in range(count):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow-{n}: ".encode())
        writers.append(writer)
    for writer in writers:
        await writer.drain()
    return writers


def test_1100_half_open_connections_do_not_stop_other_clients(ledger: Ledger) -> None:
    reader = token(ledger.dsn, "auditor")
    with limited(ledger) as server:

        async def attack() -> list[float]:
            writers = await _half_open(int(server.url.rsplit(":", 1)[1]), HALF_OPEN)
            try:
                await asyncio.sleep(0.5)  # the server has accepted what it will accept
                return await _probe(server.url, reader, 10)
            finally:
                for writer in writers:
                    writer.transport.abort()

        latencies = asyncio.run(attack())
    assert max(latencies) < 2.0, latencies


def test_a_connection_that_never_sends_a_byte_is_closed_after_the_header_timeout(ledger: Ledger) -> None:
    with limited(ledger, header_timeout="1") as server:

        async def idle() -> float:
            reader, writer = await asyncio.open_connection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
            started = time.monotonic()
            try:
                assert await asyncio.wait_for(reader.read(100), timeout=5) == b""  # closed by the server
            finally:
                writer.close()
            return time.monotonic() - started

        assert 0.8 < asyncio.run(idle()) < 3.0


def test_a_body_trickled_with_a_valid_token_gets_408_and_frees_its_budget(ledger: Ledger) -> None:
    # Bodies of up to 100,000 bytes at once: the trickled 60,000 leave no room for another until freed.
    with limited(ledger, body_timeout="2", body_budget="100000") as server:
        appender_token, key = appender(server.url, ledger)

        async def trickle() -> tuple[bytes, float]:
            reader, writer = await asyncio.open_connection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
            head = (
                f"POST /v1/entries HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {appender_token}\r\n"
                "Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n"
            )
            writer.write(head.encode())
            started = time.monotonic()

            async def drip() -> None:
                with contextlib.suppress(OSError):
                    while True:
                        writer.write(b" ")
                        await writer.drain()
                        await asyncio.sleep(0.1)

            dripping = asyncio.create_task(drip())
            try:
                answer = await asyncio.wait_for(reader.read(), timeout=10)  # to the end: the server closes
            finally:
                dripping.cancel()
                writer.close()
            return answer, time.monotonic() - started

        answer, elapsed = asyncio.run(trickle())
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"connection: close" in head.lower()
        error = msgspec.json.decode(body)
        assert error["status"] == 408
        assert "too slowly" in error["detail"]
        assert 1.5 < elapsed < 5.0

        # The budget is free again: a body of the same size is taken at once.
        big = padded(key, 1, 40_000)
        assert 40_000 < len(big) <= 60_000
        response = httpx.post(server.url + "/v1/entries", content=big, headers=bearer(appender_token))
        assert response.status_code == 201, response.text


def _batch(key: SignerKey, first: int, count: int, pad: int) -> bytes:
    envelopes = [padded(key, first + n, pad) for n in range(count)]
    return b'{"envelopes":[' + b",".join(envelopes) + b"]}"


def test_concurrent_big_batches_stay_within_the_body_budget_and_the_rest_get_503_with_retry_after(
    ledger: Ledger,
) -> None:
    budget = 24 * MIB
    with limited(ledger, body_budget=str(budget)) as server:
        appender_token, key = appender(server.url, ledger)
        bodies = [_batch(key, 1000 * b, 1000, 7_500) for b in range(8)]  # 8 concurrent bodies of ~10.5 MB
        assert all(10 * MIB < len(b) < 12 * MIB for b in bodies)
        (worker,) = worker_pids(server.pid)
        idle = peak_rss_mib(worker)
        entries_before = written(ledger.dsn)[1]

        async def send_all() -> list[httpx.Response]:
            async with httpx.AsyncClient(
                base_url=server.url, timeout=120, headers=bearer(appender_token)
            ) as c:
                return await asyncio.gather(*(c.post("/v1/entries/batch", content=b) for b in bodies))

        responses = asyncio.run(send_all())
        peak = peak_rss_mib(worker)

    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {201, 503}, statuses
    for response in responses:
        if response.status_code == 503:
            check_error(response, 503)
            assert int(response.headers["Retry-After"]) >= 1
    # Nothing of a refused batch was written; every accepted one was, whole.
    accepted = statuses.count(201)
    assert written(ledger.dsn)[1] - entries_before == 1000 * accepted
    for response in responses:
        if response.status_code == 201:
            assert len(response.json()["receipts"]) == 1000
    # The worker's memory stayed within its bound (docs/deployment.md): its idle size plus 3.5 times
    # the body budget (a body, the envelopes decoded from it and the entries built from them are alive
    # at once; 2.8 times measured here). Without the budget all eight are taken: about 10 times.
    assert peak - idle <= 3.5 * budget / MIB, (idle, peak)


@pytest.mark.parametrize(("who", "status"), [("nobody", 401), ("auditor", 403)])
def test_a_slow_body_without_an_appenders_token_is_refused_at_once_and_reserves_nothing(
    ledger: Ledger, who: str, status: int
) -> None:
    with limited(ledger, body_timeout="2", body_budget="100000") as server:
        headers = {} if who == "nobody" else bearer(token(ledger.dsn, who))

        async def slow_body() -> tuple[int, float]:
            started = time.monotonic()
            length = 60_000

            async def trickle() -> AsyncIterator[bytes]:
                for _ in range(length // 1000):
                    yield b" " * 1000
                    await asyncio.sleep(0.1)

            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                request = client.build_request(
                    "POST",
                    "/v1/entries",
                    content=trickle(),
                    headers={**headers, "Content-Length": str(length)},
                )
                with contextlib.suppress(httpx.TransportError):  # the server closes before the body ends
                    response = await client.send(request)
                    return response.status_code, time.monotonic() - started
            return 0, time.monotonic() - started

        answered, elapsed = asyncio.run(slow_body())
        assert answered in {status, 0}
        assert elapsed < 1.5  # refused before the body: not after the 2 s deadline, not after 6 s of it
        appender_token, key = appender(server.url, ledger)
        big = padded(key, 2, 40_000)
        response = httpx.post(server.url + "/v1/entries", content=big, headers=bearer(appender_token))
        assert response.status_code == 201, response.text  # nothing of the budget was kept


def test_openapi_lists_the_outage_503_with_retry_after_and_the_408_of_late_bodies(ledger: Ledger) -> None:
    with service(ledger) as api:
        document = api.get("/schema/openapi.json").json()
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if path not in {"/healthz", "/readyz"}
    ]
    assert len(operations) >= 15
    for path, method, operation in operations:
        unavailable = operation["responses"]["503"]
        assert unavailable["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }
        assert unavailable["headers"]["Retry-After"]["schema"] == {"type": "integer"}, (method, path)
        assert ("408" in operation["responses"]) == (method in {"post", "put"}), (method, path)


@pytest.mark.parametrize(
    ("name", "value"),
    [("EVLEDGER_BODY_BUDGET", "lots"), ("EVLEDGER_HEADER_TIMEOUT", "0"), ("EVLEDGER_MAX_CONNECTIONS", "-5")],
)
def test_serve_refuses_a_wrong_limit_with_exit_2_naming_it(ledger: Ledger, name: str, value: str) -> None:
    cli = Path(sys.executable).with_name("evledger")
    command = [str(cli), "serve", "--dsn", ledger.dsn, "--key", str(ledger.key_path), "--skip-init"]
    command += ["--port", str(free_port())]
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        command,
        env={**os.environ, name: value},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the server this test started, and its workers
        process.communicate()
        pytest.fail(f"serve started with {name}={value}")
    assert process.returncode == 2, output
    assert name in output
    assert "Traceback" not in output


def test_a_worker_that_dies_is_replaced_and_the_others_keep_serving(ledger: Ledger) -> None:
    reader = token(ledger.dsn, "auditor")
    with serving(ledger, workers=2) as server:
        before = worker_pids(server.pid)
        assert len(before) == 2
        os.kill(before[0], signal.SIGKILL)  # as the kernel's OOM killer would
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = worker_pids(server.pid)
            if len(now) == 2 and before[0] not in now:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"workers {worker_pids(server.pid)} after killing {before[0]} of {before}")
        assert before[1] in worker_pids(server.pid)  # the other worker was not restarted
        # Until the new worker has started, granian 2.8.9 would not stop on SIGTERM: wait for it.
        while server.output().count("Started worker") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        latencies = asyncio.run(_probe(server.url, reader, 20))
        assert len(latencies) == 20
