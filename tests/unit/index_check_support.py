"""A ledger in memory after random appends, for the completeness index checks (issue #13).

`random_ledger` runs the real sequencer over `sequencer_support.FakeStore`: releases,
statements about one to several sha256 artifacts (a `gitCommit` subject now and then, which
forms no chain), statements in no release, and key registrations and revocations, in
batches of random sizes. `AuditableStore` adds what `evledger audit` also reads.
`re_signed` forges a stored checkpoint the way only the ledger key's holder can.
"""

from __future__ import annotations

import asyncio
import random

import msgspec
from sequencer_support import ALICE, BOB, LEDGER_KEY, FakeStore, registration, request, revocation, started

from ledger.core.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, Envelope, sign_envelope
from ledger.core.keys import SignerKey
from ledger.storage.protocol import Beyond, CheckpointRow


class AuditableStore(FakeStore):
    """The fake store, with the one read of `LogStore` the audit needs beyond the sequencer's."""

    async def rows_beyond(self, tree_size: int) -> Beyond:
        entries = [i for i in self.data.entries if i >= tree_size]
        checkpoints = [s for s in self.data.checkpoints if s > tree_size]
        return Beyond(min(entries, default=None), min(checkpoints, default=None), None)


def statement(rng: random.Random, n: int) -> bytes:
    """A statement about 1 to 5 artifacts of a pool of 150, in one of 6 releases or in none."""
    digests = [{"sha256": f"{d:064x}"} for d in rng.sample(range(150), rng.choice([1, 1, 1, 2, 3, 5]))]
    if rng.random() < 0.1:
        digests.append({"gitCommit": f"{n:040x}"})
    predicate: dict[str, object] = {"n": n}
    if rng.random() < 0.8:
        predicate["release"] = {"product": rng.choice(["app", "lib"]), "version": str(rng.randrange(3))}
    body = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"s{i}", "digest": d} for i, d in enumerate(digests)],
        "predicateType": "https://evledger.test/generic/v1",
        "predicate": predicate,
    }
    return msgspec.json.encode(body)


async def _fill(store: FakeStore, entries: int, seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - a repeatable workload, not a secret
    sequencer = await started(store, max_delay=0.002)
    signers = [ALICE, BOB]
    n = 0
    while store.size < entries:
        if rng.random() < 0.06:  # a key event: a new appender, or the revocation of one not used since
            if len(signers) > 2 and rng.random() < 0.4:
                key = signers.pop()
                await sequencer.append(request(sequencer, revocation(key)))
            else:
                key = SignerKey.from_seed(f"k{n}.test/ci", rng.randbytes(32))
                await sequencer.append(request(sequencer, registration(key, ["appender"])))
                signers.append(key)
            continue
        batch: list[Envelope] = []
        for _ in range(rng.choice([1, 2, 5, 12, 30])):
            batch.append(sign_envelope(INTOTO_PAYLOAD_TYPE, statement(rng, n), [rng.choice(signers)]))
            n += 1
        if rng.random() < 0.3:  # several statements in one request: one entry each, one batch
            await sequencer.append(request(sequencer, *batch))
        else:
            await asyncio.gather(*(sequencer.append(request(sequencer, e)) for e in batch))
    await sequencer.stop()


def random_ledger(entries: int, seed: int = 13) -> AuditableStore:
    """A store holding at least `entries` entries appended at random, every checkpoint as signed."""
    store = AuditableStore()
    asyncio.run(_fill(store, entries, seed))
    return store


def re_signed(store: FakeStore, size: int, extensions: tuple[str, ...]) -> None:
    """Replace the stored checkpoint at `size` by one with other extension lines, signed by the ledger key."""
    row = store.data.checkpoints[size]
    genuine = open_checkpoint(row.note, LEDGER_KEY.verifier())
    forged = Checkpoint(genuine.origin, genuine.size, genuine.root_hash, extensions)
    store.data.checkpoints[size] = CheckpointRow(size, row.root_hash, sign_checkpoint(forged, LEDGER_KEY))


def extensions_at(store: FakeStore, size: int) -> tuple[str, ...]:
    """The extension lines of the stored checkpoint at `size`."""
    return open_checkpoint(store.data.checkpoints[size].note, LEDGER_KEY.verifier()).extensions
