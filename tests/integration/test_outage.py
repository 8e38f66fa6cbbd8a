"""A database outage gives 503 with Retry-After, never 500, and the service recovers by itself.

A real `evledger serve` reaches PostgreSQL through a TCP proxy the test owns. The test
cuts the proxy (new connections refused, open ones reset: the database host is gone),
restores it, then terminates the service's sessions with `pg_terminate_backend` (what a
PostgreSQL restart or failover does to them), then has the database refuse connections
for a while (ALLOW_CONNECTIONS false). Appenders keep appending throughout.
Every route must answer 503 with Retry-After while the database is unreachable (or
serve what it holds in memory), /readyz must say "not ready", everything must work again
on its own once the database is back, and every acknowledged append must be in the log.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import msgspec
import pytest
from availability_support import TcpProxy, appender, serving
from ledger_harness import Ledger, evidence, init_ledger, token
from service_support import bearer, check_error

from cli.demo import POLICY_FILE
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, Envelope, sign_envelope
from ledger.core.entry import parse_entry, verify_chain
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.records.admin import encode_policy_record
from ledger.records.policy import load_policy_toml

DIGEST = "sha256:" + "0" * 64
READS = [
    "/v1/checkpoint",
    "/checkpoint",
    "/v1/entries/0",
    "/v1/entries?start=0&limit=5",
    "/v1/proofs/inclusion?index=0&tree_size=2",
    "/v1/proofs/consistency?first=1&second=2",
    "/tile/0/000.p/2",
    "/tile/entries/000.p/2",
    "/v1/releases/prod/1.0/timeline",
    "/v1/releases/prod/1.0/compliance",
    "/v1/releases/prod/1.0/dossier",
    f"/v1/artifacts/{DIGEST}",
    "/v1/search?product=prod",
    "/metrics",
]
RECOVERY_TIMEOUT = 20.0


class Appenders:
    """Clients appending one envelope after another, recording every answer, until stopped."""

    def __init__(self, url: str, appender_token: str, key: SignerKey) -> None:
        self.url, self.token, self.key = url, appender_token, key
        self.statuses: list[int] = []
        self.acknowledged: list[tuple[dict[str, Any], bytes]] = []
        self.numbers = iter(range(10_000, 1_000_000))
        self.stopping = asyncio.Event()

    async def run(self, clients: int) -> None:
        async def client() -> None:
            async with httpx.AsyncClient(base_url=self.url, timeout=30, headers=bearer(self.token)) as http:
                while not self.stopping.is_set():
                    body = msgspec.json.encode(evidence(self.key, n=next(self.numbers)))
                    response = await http.post("/v1/entries", content=body)
                    self.statuses.append(response.status_code)
                    if response.status_code == 201:
                        self.acknowledged.append((response.json(), body))
                    elif response.status_code == 503:
                        assert int(response.headers["Retry-After"]) >= 1
                        await asyncio.sleep(0.05)
                    else:
                        pytest.fail(f"append answered {response.status_code}: {response.text}")

        await asyncio.gather(*(client() for _ in range(clients)))


def _check_outage_answer(response: httpx.Response, what: str) -> None:
    """A route during the outage: 503 with Retry-After in the error shape, or 200 from memory."""
    assert response.status_code in {200, 503}, (what, response.status_code, response.text)
    if response.status_code == 503:
        check_error(response, 503)
        assert int(response.headers["Retry-After"]) >= 1, what


async def _wait_until_ready(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_TIMEOUT:
        response = await client.get("/readyz")
        assert response.status_code in {200, 503}, response.text
        if response.status_code == 200:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"not ready {RECOVERY_TIMEOUT:.0f} s after the database came back")


def _maintenance(dsn: str) -> tuple[str, str]:
    """The server's maintenance database (to act on the ledger's from outside it), and the ledger's name."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/postgres")), parts.path.lstrip("/")


async def _terminate_sessions(dsn: str) -> int:
    """pg_terminate_backend on every session of the ledger's database."""
    maintenance, name = _maintenance(dsn)
    conn = await asyncpg.connect(maintenance)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1", name
            )
        )
    finally:
        await conn.close()


async def _alter_connections(dsn: str, *, allow: bool) -> None:
    """ALTER DATABASE ... ALLOW_CONNECTIONS for the ledger's database."""
    maintenance, name = _maintenance(dsn)
    conn = await asyncpg.connect(maintenance)
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
    finally:
        await conn.close()


class Outage:
    """The phases of the test, against one service, its proxy and its appenders."""

    def __init__(self, ledger: Ledger, proxy: TcpProxy, client: httpx.AsyncClient, load: Appenders) -> None:
        self.ledger, self.proxy, self.client, self.load = ledger, proxy, client, load

    async def all_well(self) -> None:
        for path in READS:  # every route works, and every token is now in the service's cache
            response = await self.client.get(path)
            assert response.status_code == 200, (path, response.text)
        assert (await self.client.get("/readyz")).status_code == 200

    async def cut(self) -> None:
        self.proxy.cut()
        cut_at = len(self.load.statuses)
        await asyncio.sleep(0.5)
        for path in READS:
            _check_outage_answer(await self.client.get(path), path)
        not_ready = await self.client.get("/readyz")
        assert not_ready.status_code == 503, not_ready.text
        assert not_ready.json()["status"] == "not ready"
        assert int(not_ready.headers["Retry-After"]) >= 1
        gate = {"product": "prod", "version": "1.0", "environment": "production"}
        check_error(
            await self.client.post("/v1/gates/evaluate", json=gate, headers=bearer(self.load.token)), 503
        )
        assert (await self.client.get("/healthz")).status_code == 200  # the process itself is alive
        await asyncio.sleep(1.0)
        during = self.load.statuses[cut_at:]
        assert during, "no append was attempted during the outage"
        assert set(during[-20:]) == {503}, during  # nothing gets through

    async def restore(self) -> None:
        self.proxy.restore()
        await _wait_until_ready(self.client)
        restored_at = len(self.load.statuses)
        await asyncio.sleep(1.0)
        assert 201 in self.load.statuses[restored_at:], self.load.statuses[restored_at:]

    async def terminate_sessions(self) -> None:
        assert await _terminate_sessions(self.ledger.dsn) >= 1
        terminated_at = len(self.load.statuses)
        for path in READS:  # each answers, possibly 503 from a session that just died, never 500
            _check_outage_answer(await self.client.get(path), path)
        await _wait_until_ready(self.client)
        await asyncio.sleep(1.0)
        for path in READS:
            response = await self.client.get(path)
            assert response.status_code == 200, (path, response.status_code, response.text)
        assert 201 in self.load.statuses[terminated_at:], self.load.statuses[terminated_at:]

    async def refuse_connections(self) -> None:
        """The database takes no connections for a while (as while it restarts), then takes them again."""
        await _alter_connections(self.ledger.dsn, allow=False)
        try:
            assert await _terminate_sessions(self.ledger.dsn) >= 1
            refused_at = len(self.load.statuses)
            await asyncio.sleep(0.5)
            for path in READS:
                _check_outage_answer(await self.client.get(path), path)
            assert (await self.client.get("/readyz")).status_code == 503
            assert set(self.load.statuses[refused_at:][-10:]) == {503}
        finally:
            await _alter_connections(self.ledger.dsn, allow=True)
        await _wait_until_ready(self.client)
        taken_at = len(self.load.statuses)
        await asyncio.sleep(1.0)
        assert 201 in self.load.statuses[taken_at:], self.load.statuses[taken_at:]


@pytest.fixture
def proxied(fresh_dsn: str, tmp_path: Path) -> Iterator[tuple[Ledger, TcpProxy, str]]:
    ledger = init_ledger(fresh_dsn, tmp_path)
    with TcpProxy(fresh_dsn) as proxy, serving(ledger, dsn=proxy.proxied(fresh_dsn)) as server:
        yield ledger, proxy, server.url


def _publish_policy(url: str, ledger: Ledger) -> None:
    policy = encode_policy_record(load_policy_toml(POLICY_FILE.read_text(encoding="utf-8")))
    published = httpx.post(
        url + "/v1/entries",
        content=msgspec.json.encode(sign_envelope(ADMIN_PAYLOAD_TYPE, policy, [ledger.signer])),
        headers=bearer(token(ledger.dsn, "admin")),
    )
    assert published.status_code == 201, published.text


def _log(url: str, reader: str) -> list[bytes]:
    views: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=30, headers=bearer(reader)) as client:
        start: int | None = 0
        while start is not None:
            page = client.get("/v1/entries", params={"start": start, "limit": 1000}).json()
            views += page["entries"]
            start = page["next"]
    return [base64.b64decode(view["entry"]) for view in views]


def test_database_outage_gives_503_with_retry_after_never_500_and_the_service_recovers_by_itself(
    proxied: tuple[Ledger, TcpProxy, str],
) -> None:
    ledger, proxy, url = proxied
    reader = token(ledger.dsn, "auditor")
    appender_token, key = appender(url, ledger)
    _publish_policy(url, ledger)  # so that compliance and dossier answer 200 when all is well
    load = Appenders(url, appender_token, key)

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=bearer(reader)) as client:
            appending = asyncio.create_task(load.run(clients=4))
            outage = Outage(ledger, proxy, client, load)
            await asyncio.sleep(0.5)
            await outage.all_well()
            await outage.cut()
            await outage.restore()
            await outage.terminate_sessions()
            await outage.refuse_connections()
            load.stopping.set()
            await appending

    asyncio.run(scenario())
    assert 500 not in load.statuses
    assert set(load.statuses) == {201, 503}

    # Every acknowledged append is in the log, with the entry its receipt names.
    data = _log(url, reader)
    verify_chain(data)
    assert len(load.acknowledged) >= 10
    for receipt, body in load.acknowledged:
        entry = data[receipt["index"]]
        assert leaf_hash(entry).hex() == receipt["leaf_hash"]
        assert parse_entry(entry).envelope == msgspec.json.decode(body, type=Envelope)
