"""Bringing a ledger database to life: migrations, entry 0, and the registry at start-up.

`initialise` is idempotent: on a database that already holds entry 0 it only
checks that entry 0 registers the same ledger key.
"""

from __future__ import annotations

from ledger.append.batch import IndexInput, PendingRequest, plan_batch
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, sign_envelope
from ledger.core.entry import parse_entry
from ledger.core.keys import SignerKey, VerifierKey
from ledger.core.sparse_merkle import IndexTree
from ledger.errors import ConflictError, LogIntegrityError
from ledger.query.registry_follow import catch_up
from ledger.records.admin import KeyRegistered, encode_admin_record
from ledger.rules.admission import admit_genesis
from ledger.rules.registry import KeyRegistry
from ledger.storage.migrate import create_head, migrate
from ledger.storage.postgres import PostgresStore
from ledger.storage.protocol import LogStore


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
                    await txn.now(),  # the database's clock, as for every entry
                    genesis=True,
                    index=IndexInput(IndexTree(), {}, await txn.chained_from()),
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
    """Without migrating or writing anything: the ledger at `dsn` is `signer`'s, and its log verifies.

    ConflictError unless entry 0 registers `signer` (a service that signed checkpoints with
    another key would leave unverifiable checkpoints in the log for good); LogIntegrityError
    when the newest checkpoint or the admin records do not verify (`load_registry`), so that
    `serve` refuses to start on a log changed around the ledger instead of failing in its workers.
    """
    store = await PostgresStore.connect(dsn, min_size=1, max_size=1)
    try:
        await _check_entry_zero(store, signer)
        await load_registry(store, signer.verifier())
    finally:
        await store.close()


async def load_registry(store: LogStore, ledger_key: VerifierKey) -> KeyRegistry:
    """The key registry the log proves, as of its newest checkpoint (see `ledger.rules.log_state`).

    Every admin entry is replayed with the verifiers' rules and the result held to the newest
    checkpoint, which must verify with `ledger_key`. LogIntegrityError when the stored log
    disagrees (appends must not start on it); an empty registry before entry 0.
    """
    head = await store.head()
    if head is None:
        raise LogIntegrityError("the ledger is not initialised (run `evledger init`)")
    return await catch_up(store, KeyRegistry(), ledger_key, head.origin)
