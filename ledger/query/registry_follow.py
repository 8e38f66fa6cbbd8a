"""Keeping a key registry current with the stored log: the one way the service learns of admin records.

Reads the newest checkpoint and verifies it with the ledger key, then replays
the admin entries below it that the registry has not applied yet (the rules
are in `ledger.rules.log_state`). Used at start-up (from an empty registry) and
whenever a request names a key the registry does not know yet, which another
service process may have registered.
"""

from __future__ import annotations

from ledger.core.keys import VerifierKey
from ledger.errors import LogIntegrityError
from ledger.records.admin import ADMIN_KINDS
from ledger.rules.chains import key_chain_head_of
from ledger.rules.log_state import check_key_chain, replay_admin_entries, verified_checkpoint
from ledger.rules.registry import KeyRegistry
from ledger.storage.protocol import LogStore


async def catch_up(
    store: LogStore, registry: KeyRegistry, ledger_key: VerifierKey, origin: str | None
) -> KeyRegistry:
    """`registry` brought up to the newest checkpoint (a copy), or `registry` itself when nothing is new.

    Precondition: `registry` was replayed and verified up to `registry.applied_through`;
    `origin`, when known, is the log's (a checkpoint of another log is refused).
    Raises LogIntegrityError when the checkpoint does not verify or the entries do not
    replay to it. Admin entries past the checkpoint (appended meanwhile) wait for the next one.
    """
    row = await store.latest_checkpoint()
    if row is None:
        if await store.entries(0, 1):
            raise LogIntegrityError("the log holds entries but no checkpoint")
        return registry
    signed = verified_checkpoint(row, ledger_key, origin)
    since = await store.entries_of_kinds(ADMIN_KINDS, registry.applied_through + 1)
    rows = [r for r in since if r.index < signed.size]
    fresh = replay_admin_entries(registry, rows, below=signed.size) if rows else registry
    check_key_chain(fresh, key_chain_head_of(signed.extensions), f"the checkpoint at size {signed.size}")
    return fresh
