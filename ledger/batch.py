"""Batch planning: turn admitted requests into the rows one transaction writes. Pure.

Given the locked head, the planner assigns indices, chains `prev` links,
encodes the entries, extends the compact range, collects the tile hashes the
batch completes, applies admin records to a copy of the key registry, and
signs the new checkpoint. A request whose envelope is no longer acceptable at
its exact index (its key was revoked meanwhile, say) is left out whole before
any index is assigned to it, so a batch never leaves a gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ledger.admin import KeyRegistered, KeyRevoked
from ledger.admission import Admitted
from ledger.core.checkpoint import Checkpoint, sign_checkpoint
from ledger.core.compact_range import CompactRange
from ledger.core.encoding import format_time, parse_time
from ledger.core.entry import encode_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.core.tiles import TILE_HEIGHT, TILE_WIDTH
from ledger.errors import LedgerError, SignatureError
from ledger.registry import KeyRegistry
from ledger.storage.protocol import (
    BatchWrite,
    CheckpointRow,
    EntryRow,
    Head,
    IdempotencyRow,
    KeyEventRow,
    TileAppend,
)


@dataclass(frozen=True, slots=True)
class Idempotency:
    """An idempotency key as a request presents it: the token's id, the key and its body's hash."""

    token_id: int
    key: str
    body_hash: bytes


@dataclass(slots=True)
class PendingRequest:
    """One HTTP request's envelopes: appended all together or not at all."""

    submissions: Sequence[Admitted]
    idempotency: Idempotency | None = None


@dataclass(slots=True)
class BatchPlan:
    """The outcome of planning: what to write, and each request's fate."""

    write: BatchWrite | None
    registry: KeyRegistry
    placed: dict[int, tuple[int, int]] = field(default_factory=dict)  # request → (first index, count)
    rejected: dict[int, LedgerError] = field(default_factory=dict)  # request → why


@dataclass(slots=True)
class _State:
    compact: CompactRange
    prev: bytes
    registry: KeyRegistry
    entries: list[EntryRow] = field(default_factory=list)
    key_events: list[KeyEventRow] = field(default_factory=list)
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)  # (tree level, node index, hash)


def _check_signers(item: Admitted, registry: KeyRegistry, index: int) -> None:
    if not any(registry.signing_key(s.keyid, index) == s for s in item.signers):
        raise SignatureError(
            f"entry {index}: " + registry.explain_refusal([s.keyid for s in item.signers], index)
        )


def _apply_admin(item: Admitted, state: _State, index: int) -> None:
    record = item.admin
    if isinstance(record, KeyRegistered):
        key = state.registry.register(index, record)
        state.key_events.append(
            KeyEventRow(
                index, "key.registered", key.keyid, record.key, record.owner,
                tuple(record.roles), tuple(record.products),
            )
        )  # fmt: skip
    elif isinstance(record, KeyRevoked):
        state.registry.revoke(index, record)
        state.key_events.append(KeyEventRow(index, "key.revoked", record.keyid, reason=record.reason))


def _place(request: PendingRequest, state: _State, stamp: str, *, genesis: bool) -> _State:
    """Place one request on a copy of the state; raise LedgerError to leave it out whole."""
    has_admin = any(item.admin is not None for item in request.submissions)
    trial = _State(
        state.compact.copy(),
        state.prev,
        state.registry.copy() if has_admin else state.registry,
    )
    integrated_at = parse_time(stamp)
    for item in request.submissions:
        index = trial.compact.size
        if not genesis:
            _check_signers(item, trial.registry, index)
            if item.admin is not None:
                trial.registry.require_admin(list(item.signers))
        data = encode_entry(index, trial.prev, stamp, item.envelope)
        digest = leaf_hash(data)
        _apply_admin(item, trial, index)
        for level, node in trial.compact.append(digest):
            if level % TILE_HEIGHT == 0:
                trial.nodes.append((level, index >> level, node))
        trial.entries.append(
            EntryRow(
                index, digest, data, integrated_at, item.signer_keyid, item.envelope.payload_type,
                item.kind, item.product, item.version, item.subjects,
            )
        )  # fmt: skip
        trial.prev = digest
    return trial


def _merge(state: _State, trial: _State) -> None:
    state.compact, state.prev, state.registry = trial.compact, trial.prev, trial.registry
    state.entries.extend(trial.entries)
    state.key_events.extend(trial.key_events)
    state.nodes.extend(trial.nodes)


def _tile_appends(nodes: list[tuple[int, int, bytes]]) -> list[TileAppend]:
    grouped: dict[tuple[int, int], list[bytes]] = {}
    for level, index, node in nodes:
        grouped.setdefault((level // TILE_HEIGHT, index // TILE_WIDTH), []).append(node)
    return [TileAppend(level, index, b"".join(hashes)) for (level, index), hashes in grouped.items()]


def plan_batch(  # noqa: PLR0913 - each input is distinct state; a holder object would only hide them
    head: Head,
    requests: Sequence[PendingRequest],
    registry: KeyRegistry,
    signer: SignerKey,
    now: datetime,
    *,
    genesis: bool = False,
) -> BatchPlan:
    """Plan one batch on top of the locked `head`; `registry` is not modified.

    Preconditions: `registry` reflects every key event up to `head.tree_size - 1`;
    `signer` is the ledger key; `genesis` only for entry 0 (registry empty).
    """
    # Entry times never go backwards, even if this process's clock is behind another's.
    stamp = max(format_time(now), head.last_time)
    state = _State(CompactRange(head.tree_size, list(head.compact_range)), head.last_leaf_hash, registry)
    plan = BatchPlan(write=None, registry=registry)
    for position, request in enumerate(requests):
        try:
            trial = _place(request, state, stamp, genesis=genesis)
        except LedgerError as exc:
            plan.rejected[position] = exc
            continue
        plan.placed[position] = (state.compact.size, len(trial.entries))
        _merge(state, trial)
    if not state.entries:
        return plan
    size = state.compact.size
    root = state.compact.root()
    note = sign_checkpoint(Checkpoint(head.origin, size, root), signer)
    last_key_event = state.key_events[-1].index if state.key_events else head.last_key_event
    plan.registry = state.registry
    plan.write = BatchWrite(
        entries=state.entries,
        tiles=_tile_appends(state.nodes),
        checkpoint=CheckpointRow(size, root, note),
        head=Head(head.origin, size, tuple(state.compact.hashes), state.prev, stamp, last_key_event),
        key_events=state.key_events,
        idempotency=[
            IdempotencyRow(
                r.idempotency.token_id, r.idempotency.key, r.idempotency.body_hash, first, count, size
            )
            for position, (first, count) in plan.placed.items()
            if (r := requests[position]).idempotency is not None
        ],
    )
    return plan
