"""A value PostgreSQL refuses fails only the request that carries it (sequencer, UnstorableError).

Admission refuses every such value it knows of (NUL, overlong names, deep nesting), so these
tests build admitted requests by hand past those limits: the real database then refuses the
batch (an index row over 2,704 bytes), and the sequencer must isolate the culprit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import secrets
from collections.abc import Iterator

import pytest
from ledger_harness import Ledger, evidence, register
from service_support import scratch_ledger

from ledger.append.batch import PendingRequest
from ledger.append.bootstrap import load_registry
from ledger.append.sequencer import Appended, Sequencer
from ledger.core.entry import verify_chain
from ledger.core.keys import SignerKey
from ledger.errors import UnstorableError
from ledger.rules.admission import AS_OF_NOW, admit
from ledger.storage.postgres import PostgresStore

KEY = SignerKey.generate("unstorable.test/ci")
_numbers = itertools.count()


@pytest.fixture(scope="module")
def ledger(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("unstorable")) as ledger:
        asyncio.run(_register_key(ledger))
        yield ledger


async def _register_key(ledger: Ledger) -> None:
    store = await PostgresStore.connect(ledger.dsn)
    try:
        sequencer = Sequencer(store, ledger.signer, await load_registry(store, ledger.signer.verifier()))
        sequencer.start()
        admitted = admit(register(ledger.signer, KEY, ["appender"]), sequencer.registry, AS_OF_NOW)
        await sequencer.append(PendingRequest([admitted], None))
        await sequencer.stop()
    finally:
        await store.close()


async def _append(ledger: Ledger, culprits: set[int], count: int) -> tuple[list[object], int, list[bytes]]:
    """Append `count` one-envelope requests at once, those in `culprits` with a product too long to index.

    Returns the outcomes, the log size before, and every entry of the log after.
    """
    store = await PostgresStore.connect(ledger.dsn)
    try:
        before = (await store.head()).tree_size  # type: ignore[union-attr]
        sequencer = Sequencer(
            store, ledger.signer, await load_registry(store, ledger.signer.verifier()), max_delay=0.05
        )
        sequencer.start()
        requests = []
        for n in range(count):
            admitted = admit(evidence(KEY, n=next(_numbers)), sequencer.registry, AS_OF_NOW)
            if n in culprits:  # past admission's limits, as if it had missed one
                admitted = dataclasses.replace(admitted, product="p" + secrets.token_hex(1600))
            requests.append(PendingRequest([admitted], None))
        outcomes = await asyncio.gather(*(sequencer.append(r) for r in requests), return_exceptions=True)
        await sequencer.stop()
        after = (await store.head()).tree_size  # type: ignore[union-attr]
        return list(outcomes), before, [row.data for row in await store.entries(0, after)]
    finally:
        await store.close()


@pytest.mark.parametrize("culprits", [{3}, {0, 11}], ids=["one", "two"])
def test_a_value_postgresql_refuses_fails_only_its_own_request(ledger: Ledger, culprits: set[int]) -> None:
    outcomes, before, entries = asyncio.run(_append(ledger, culprits, 12))
    refused = {n for n, outcome in enumerate(outcomes) if isinstance(outcome, BaseException)}
    assert refused == culprits, outcomes
    for n in culprits:
        assert isinstance(outcomes[n], UnstorableError)
        assert "ProgramLimitExceededError" in str(outcomes[n])
    appended = [outcome for outcome in outcomes if isinstance(outcome, Appended)]
    assert len(appended) == 12 - len(culprits)
    # The others went in, gapless, right after the log as it stood; the chain is whole.
    assert sorted(a.first_index for a in appended) == list(range(before, before + len(appended)))
    assert len(entries) == before + len(appended)
    verify_chain(entries)
