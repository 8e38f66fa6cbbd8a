"""Bringing a ledger database to life: migrations, entry 0, and the registry at start-up.

`initialise` is idempotent: on a database that already holds entry 0 it only
checks that entry 0 registers the same ledger key.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ledger.admin import KeyRegistered, encode_admin_record
from ledger.admission import admit_genesis
from ledger.batch import PendingRequest, plan_batch
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, sign_envelope
from ledger.core.entry import parse_entry
from ledger.core.keys import SignerKey
from ledger.errors import ConflictError
from ledger.registry import KeyRegistry
from ledger.sequencer import apply_key_events
from ledger.storage.migrate import create_head, migrate
from ledger.storage.postgres import PostgresStore


def genesis_request(signer: SignerKey, owner: str) -> PendingRequest:
    """Entry 0: the ledger key's own registration with role admin, signed by itself."""
    record = KeyRegistered(key=signer.verifier().format(), owner=owner, roles=["admin"], products=[])
    envelope = sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(record), [signer])
    return PendingRequest([admit_genesis(envelope)])


async def initialise(dsn: str, signer: SignerKey, *, origin: str | None = None, owner: str = "ledger") -> int:
    """Migrate the database (as its owner) and write entry 0 if the log is empty; return the tree size.

    Raises ConflictError when the database already belongs to another ledger key or origin.
    """
    await migrate(dsn)
    await create_head(dsn, origin or signer.name)
    store = await PostgresStore.connect(dsn, min_size=1, max_size=2)
    try:
        async with store.append_transaction() as txn:
            head = await txn.head()
            if head.origin != (origin or head.origin):
                raise ConflictError(f"this database holds the log {head.origin!r}, not {origin!r}")
            if head.tree_size == 0:
                plan = plan_batch(
                    head,
                    [genesis_request(signer, owner)],
                    KeyRegistry(),
                    signer,
                    datetime.now(UTC),
                    genesis=True,
                )
                if plan.write is None:
                    raise plan.rejected[0]
                await txn.write(plan.write)
                return plan.write.head.tree_size
        await _check_entry_zero(store, signer)
        return head.tree_size
    finally:
        await store.close()


async def _check_entry_zero(store: PostgresStore, signer: SignerKey) -> None:
    """ConflictError unless entry 0 registers `signer`: a ledger signs with the key it began with."""
    first = await store.entries(0, 1)
    if not first:
        raise ConflictError("this database holds no ledger yet: run `evledger init` first")
    registered = parse_entry(first[0].data).envelope.signatures[0].keyid
    if registered != signer.keyid:
        raise ConflictError(
            f"this database's entry 0 registers the ledger key {registered}, not {signer.keyid}: "
            "use the key file this ledger was initialised with"
        )


async def check_ledger_key(dsn: str, signer: SignerKey) -> None:
    """Without migrating or writing anything, ConflictError unless the ledger at `dsn` is `signer`'s.

    For `serve --skip-init`, whose role may only read and append: a service that signed
    checkpoints with another key would leave unverifiable checkpoints in the log for good.
    """
    store = await PostgresStore.connect(dsn, min_size=1, max_size=1)
    try:
        await _check_entry_zero(store, signer)
    finally:
        await store.close()


async def load_registry(store: PostgresStore) -> KeyRegistry:
    """Replay every key event in the store into a fresh registry."""
    registry = KeyRegistry()
    apply_key_events(registry, await store.key_events_since(0))
    return registry
