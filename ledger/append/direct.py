"""Appending without the HTTP service: for `evledger key register --dsn` and friends (DESIGN.md §5).

The envelopes go through the same admission and the same sequencer as the
service's, inside this process, so the log cannot tell the difference.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.append.batch import PendingRequest
from ledger.append.bootstrap import load_registry
from ledger.append.receipts import Receipt, build_receipts
from ledger.append.sequencer import Sequencer
from ledger.core.dsse import Envelope
from ledger.core.keys import SignerKey
from ledger.query.proofs import ProofReader
from ledger.rules.admission import AS_OF_NOW, admit
from ledger.storage.postgres import PostgresStore


async def append_direct(dsn: str, ledger_key: SignerKey, envelopes: Sequence[Envelope]) -> list[Receipt]:
    """Append envelopes all or nothing to the initialised ledger at `dsn`; return their receipts."""
    store = await PostgresStore.connect(dsn, min_size=1, max_size=2)
    try:
        registry = await load_registry(store, ledger_key.verifier())
        sequencer = Sequencer(store, ledger_key, registry, max_delay=0)
        sequencer.start()
        try:
            admitted = [admit(envelope, sequencer.registry, AS_OF_NOW) for envelope in envelopes]
            appended = await sequencer.append(PendingRequest(admitted))
        finally:
            await sequencer.stop()
        return await build_receipts(store, ProofReader(store), appended)
    finally:
        await store.close()
