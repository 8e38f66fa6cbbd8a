"""Two requests racing with one Idempotency-Key and different bodies (issue #9): one 201, one 409.

A retry with a key already on record is answered before admission (the pre-check
in `Appender._replay`). Two requests that both pass that pre-check before
either commits take the other path: the sequencer puts the second in a later
batch (`_take_batch` defers a duplicate key), finds the first one's idempotency
row there and reports a replay, and the appender must still compare the bodies
(`Appender.append`) and answer 409, never 200 with the other body's receipt.

To make the race certain rather than likely, the test holds the row lock on the
log head from its own connection: the live server's sequencer then waits on it
before it takes any batch, so nothing commits. Both requests are sent, and the
lock is released only once `/metrics` shows both of them queued in the sequencer
(so both passed the pre-check and admission).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import httpx
import msgspec
import pytest
from ledger_harness import Ledger, evidence, live_server, token
from service_support import bearer, check_error, scratch_ledger, written

from ledger.core.dsse import Envelope
from ledger.core.entry import parse_entry

LOCK_HEAD = "SELECT tree_size FROM log_head WHERE id = 1 FOR UPDATE"
QUEUED_WITHIN = 20.0  # seconds for both requests to reach the sequencer's queue


@dataclass(frozen=True)
class Live:
    ledger: Ledger
    url: str
    token: str


@pytest.fixture(scope="module")
def live(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("idempotency-race")) as ledger:
        admin = token(ledger.dsn, "admin")
        with live_server(ledger) as url:
            yield Live(ledger, url, admin)


def _body(route: str, envelopes: list[Envelope]) -> bytes:
    return msgspec.json.encode(envelopes[0] if route == "/v1/entries" else {"envelopes": envelopes})


async def _pending(client: httpx.AsyncClient) -> int:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    for line in response.text.splitlines():
        if line.startswith("evledger_sequencer_pending "):
            return int(float(line.split()[1]))
    raise AssertionError(f"no evledger_sequencer_pending in:\n{response.text}")


async def _race(
    live: Live, route: str, key: str, bodies: tuple[bytes, bytes], queued: int
) -> list[httpx.Response]:
    """Send both bodies with `key` while the head is locked; release it once `queued` envelopes wait."""
    headers = {**bearer(live.token), "Idempotency-Key": key}
    lock = await asyncpg.connect(live.ledger.dsn)
    try:
        async with httpx.AsyncClient(base_url=live.url, headers=bearer(live.token), timeout=60) as client:
            async with lock.transaction():
                await lock.fetchval(LOCK_HEAD)
                sent = [asyncio.create_task(client.post(route, content=b, headers=headers)) for b in bodies]
                deadline = time.monotonic() + QUEUED_WITHIN
                while (waiting := await _pending(client)) < queued:
                    assert not any(t.done() for t in sent), [t.result().text for t in sent if t.done()]
                    assert time.monotonic() < deadline, f"only {waiting} of {queued} envelopes queued"
                    await asyncio.sleep(0.01)
                assert waiting == queued
                assert not any(t.done() for t in sent)  # nothing can commit while the head is locked
            return list(await asyncio.gather(*sent))  # the lock is released: the batches commit now
    finally:
        await lock.close()


def _stored_envelope(live: Live, index: int) -> Envelope:
    response = httpx.get(f"{live.url}/v1/entries/{index}", headers=bearer(live.token))
    assert response.status_code == 200, response.text
    return parse_entry(base64.b64decode(response.json()["entry"])).envelope


@pytest.mark.parametrize(
    ("route", "size"), [("/v1/entries", 1), ("/v1/entries/batch", 3)], ids=["single", "batch"]
)
def test_concurrent_requests_with_one_key_and_different_bodies_give_one_201_and_one_409(
    live: Live, route: str, size: int
) -> None:
    key = f"race-{route.rsplit('/', 1)[-1]}"
    first = [evidence(live.ledger.signer, n=n) for n in range(100 * size, 100 * size + size)]
    second = [evidence(live.ledger.signer, n=n) for n in range(200 * size, 200 * size + size)]
    bodies = (_body(route, first), _body(route, second))
    before = written(live.ledger.dsn)

    responses = asyncio.run(_race(live, route, key, bodies, queued=2 * size))

    assert sorted(r.status_code for r in responses) == [201, 409], [
        (r.status_code, r.text) for r in responses
    ]
    won = 0 if responses[0].status_code == 201 else 1
    winner, loser = responses[won], responses[1 - won]
    body = check_error(loser, 409)
    assert key in str(body["detail"])
    assert "another body" in str(body["detail"])
    # Only the winner's envelopes were written, under one idempotency record.
    receipts = [winner.json()] if route == "/v1/entries" else winner.json()["receipts"]
    envelopes = (first, second)[won]
    assert [_stored_envelope(live, r["index"]) for r in receipts] == envelopes
    size_before, entries_before, _, _, keys_before, _ = before
    size_after, entries_after, _, _, keys_after, _ = written(live.ledger.dsn)
    assert (size_after, entries_after, keys_after) == (
        size_before + size,
        entries_before + size,
        keys_before + 1,
    )
    # Afterwards the key stays bound to the winner's body, through the pre-check.
    headers = {**bearer(live.token), "Idempotency-Key": key}
    again = httpx.post(f"{live.url}{route}", content=bodies[won], headers=headers)
    assert (again.status_code, again.json()) == (200, winner.json())
    check_error(httpx.post(f"{live.url}{route}", content=bodies[1 - won], headers=headers), 409)
