"""Two service processes on one database never fork the log, leave a gap, or lose an acknowledged append.

Two `evledger serve` processes share one ledger database (docs/architecture.md#storage: one
sequencer per process, serialised by the row lock on the log head). Sixteen
concurrent clients, eight per server, append single envelopes and batches,
some with idempotency keys. Afterwards the whole log is read back and checked
with the pure core alone.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from ledger_harness import Ledger, evidence, init_ledger, live_server, register, token
from service_support import bearer, opened, verify_receipt

from ledger.core.compact_range import CompactRange, root_from_leaf_hashes
from ledger.core.dsse import Envelope
from ledger.core.entry import parse_entry, verify_chain
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey

CLIENTS_PER_SERVER = 8
SINGLES_PER_CLIENT = 27  # 16 x 27 = 432 single appends
BATCHES_PER_SERVER = 2
BATCH_SIZE = 25
IDEMPOTENT_EVERY = 9  # every 9th single append carries an Idempotency-Key

# ledger_harness.live_server never closes the server's stdout pipe, which the garbage collector then
# reports as an unclosed file; that is the harness's leak, not the service's, so it is not an error here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <_io.FileIO:pytest.PytestUnraisableExceptionWarning"
)


@pytest.fixture
def two_servers(fresh_dsn: str, tmp_path: Path) -> Iterator[tuple[Ledger, list[str]]]:
    ledger = init_ledger(fresh_dsn, tmp_path)
    servers = [live_server(ledger) for _ in range(2)]
    with ExitStack() as stack:
        # Start both at once (each waits for its own readiness); stop whichever started.
        with ThreadPoolExecutor(max_workers=2) as pool:
            starting = [pool.submit(server.__enter__) for server in servers]
        for server, future in zip(servers, starting, strict=True):
            if future.exception() is None:
                stack.push(server)
        yield ledger, [future.result() for future in starting]


class Load:
    """The concurrent clients and what each append was acknowledged with."""

    def __init__(self, ledger: Ledger, urls: list[str], keys: list[SignerKey], appender: str) -> None:
        self.ledger, self.urls, self.keys, self.appender = ledger, urls, keys, appender
        self.numbers = itertools.count()
        self.receipts: list[dict[str, Any]] = []
        self.sent_bodies: dict[int, bytes] = {}
        self.idempotent: list[tuple[str, bytes, dict[str, Any]]] = []

    def envelope(self) -> bytes:
        n = next(self.numbers)
        return msgspec.json.encode(evidence(self.keys[n % len(self.keys)], n=n))

    async def single(self, client: httpx.AsyncClient, client_number: int, i: int) -> None:
        body = self.envelope()
        headers = bearer(self.appender)
        key = None
        if i % IDEMPOTENT_EVERY == 0:
            key = f"client-{client_number}-append-{i}"
            headers["Idempotency-Key"] = key
        response = await client.post("/v1/entries", content=body, headers=headers)
        assert response.status_code == 201, response.text
        receipt = response.json()
        self.receipts.append(receipt)
        self.sent_bodies[receipt["index"]] = body
        if key is not None:
            self.idempotent.append((key, body, receipt))

    async def batch(self, client: httpx.AsyncClient) -> None:
        bodies = [self.envelope() for _ in range(BATCH_SIZE)]
        content = b'{"envelopes":[' + b",".join(bodies) + b"]}"
        response = await client.post("/v1/entries/batch", content=content, headers=bearer(self.appender))
        assert response.status_code == 201, response.text
        receipts = response.json()["receipts"]
        first = receipts[0]["index"]
        assert [r["index"] for r in receipts] == list(range(first, first + BATCH_SIZE))
        self.receipts.extend(receipts)
        for receipt, body in zip(receipts, bodies, strict=True):
            self.sent_bodies[receipt["index"]] = body

    async def worker(self, url: str, client_number: int, batches: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            for i in range(SINGLES_PER_CLIENT):
                await self.single(client, client_number, i)
                if i == SINGLES_PER_CLIENT // 2 and batches:
                    await self.batch(client)
                    batches -= 1

    async def run(self) -> None:
        workers = []
        for server, url in enumerate(self.urls):
            for c in range(CLIENTS_PER_SERVER):
                number = server * CLIENTS_PER_SERVER + c
                workers.append(self.worker(url, number, 1 if c < BATCHES_PER_SERVER else 0))
        await asyncio.gather(*workers)

    async def replay_on_the_other_server(self) -> None:
        """A retried request that lands on the other process gets the original receipt."""
        async with (
            httpx.AsyncClient(base_url=self.urls[0], timeout=60) as first,
            httpx.AsyncClient(base_url=self.urls[1], timeout=60) as second,
        ):
            for n, (key, body, receipt) in enumerate(self.idempotent):
                client = (first, second)[n % 2]
                headers = {**bearer(self.appender), "Idempotency-Key": key}
                response = await client.post("/v1/entries", content=body, headers=headers)
                assert response.status_code == 200, response.text
                assert response.json() == receipt


def read_log(url: str, auditor: str) -> list[dict[str, Any]]:
    views: list[dict[str, Any]] = []
    start: int | None = 0
    with httpx.Client(base_url=url, timeout=60, headers=bearer(auditor)) as client:
        while start is not None:
            page = client.get("/v1/entries", params={"start": start, "limit": 1000})
            assert page.status_code == 200, page.text
            views.extend(page.json()["entries"])
            start = page.json()["next"]
    return views


def test_two_processes_appending_concurrently_keep_one_gapless_verifiable_log(
    two_servers: tuple[Ledger, list[str]],
) -> None:
    ledger, urls = two_servers
    admin, appender, auditor = (token(ledger.dsn, role) for role in ("admin", "appender", "auditor"))

    # A key registered through one process signs through the other right away.
    keys = [SignerKey.generate(f"ci-{n}.test/pipeline") for n in range(2)]
    for url, key in zip(urls, keys, strict=True):
        response = httpx.post(
            url + "/v1/entries", content=msgspec.json.encode(register(ledger.signer, key, ["appender"])),
            headers=bearer(admin), timeout=30,
        )  # fmt: skip
        assert response.status_code == 201, response.text
    before = opened(
        httpx.get(urls[0] + "/v1/checkpoint", headers=bearer(auditor), timeout=30).text, ledger
    ).size

    load = Load(ledger, urls, keys, appender)
    asyncio.run(load.run())
    acknowledged = len(load.receipts)
    assert acknowledged == 2 * CLIENTS_PER_SERVER * SINGLES_PER_CLIENT + 2 * BATCHES_PER_SERVER * BATCH_SIZE
    asyncio.run(load.replay_on_the_other_server())
    assert len(load.idempotent) >= 2 * CLIENTS_PER_SERVER

    # Both processes did their share of the appending.
    for url in urls:
        metrics = httpx.get(url + "/metrics", headers=bearer(auditor), timeout=30).text
        appended = next(
            line for line in metrics.splitlines() if line.startswith("evledger_entries_appended_total ")
        )
        assert float(appended.split()[1]) >= CLIENTS_PER_SERVER * SINGLES_PER_CLIENT

    # The whole log, as the second process serves it.
    views = read_log(urls[1], auditor)
    size = len(views)
    assert [v["index"] for v in views] == list(range(size))
    data = [base64.b64decode(v["entry"]) for v in views]
    leaves = [leaf_hash(d) for d in data]
    assert [v["leaf_hash"] for v in views] == [h.hex() for h in leaves]
    verify_chain(data)  # every prev links to its predecessor's leaf hash
    times = [parse_entry(d).time for d in data]
    assert times == sorted(times)  # entry times never go back, whichever process wrote them

    # Nothing lost, nothing extra: acknowledged appends are exactly the entries after the setup.
    assert size - before == acknowledged
    indices = [r["index"] for r in load.receipts]
    assert sorted(indices) == list(range(before, size))
    for receipt in load.receipts:
        index = receipt["index"]
        assert receipt["leaf_hash"] == leaves[index].hex()
        assert parse_entry(data[index]).envelope == msgspec.json.decode(
            load.sent_bodies[index], type=Envelope
        )

    # The latest checkpoint, from either process, commits to exactly these leaves.
    for url in urls:
        latest = opened(httpx.get(url + "/checkpoint", headers=bearer(auditor), timeout=30).text, ledger)
        assert latest.size == size
        assert latest.root_hash == root_from_leaf_hashes(leaves)

    # Every receipt proves itself against its own checkpoint, and every checkpoint either
    # process signed is a prefix of this one log (no fork).
    checkpoints = {}
    for receipt in load.receipts:
        checkpoint = verify_receipt(receipt, ledger)
        checkpoints[checkpoint.size] = checkpoint.root_hash
    compact = CompactRange()
    for checkpoint_size in sorted(checkpoints):
        while compact.size < checkpoint_size:
            compact.append(leaves[compact.size])
        assert compact.root() == checkpoints[checkpoint_size], checkpoint_size
    assert len(checkpoints) > 2
