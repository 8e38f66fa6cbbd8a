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
from dataclasses import dataclass, field, replace
from datetime import datetime

from ledger.admin import KeyRegistered, KeyRevoked
from ledger.admission import Admitted
from ledger.chains import Chains, key_chain_extension
from ledger.core.checkpoint import Checkpoint, sign_checkpoint
from ledger.core.compact_range import CompactRange
from ledger.core.encoding import format_time, parse_time
from ledger.core.entry import encode_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey, VerifierKey
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
    chains: Chains
    entries: list[EntryRow] = field(default_factory=list)
    key_events: list[KeyEventRow] = field(default_factory=list)
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)  # (tree level, node index, hash)


def _valid_signers(item: Admitted, registry: KeyRegistry, index: int) -> list[VerifierKey]:
    """The item's verified signers that may still sign at `index`; SignatureError if none may."""
    valid = [s for s in item.signers if registry.signing_key(s.keyid, index) == s]
    if not valid:
        raise SignatureError(
            f"entry {index}: " + registry.explain_refusal([s.keyid for s in item.signers], index)
        )
    return valid


def _key_event(item: Admitted, state: _State, index: int) -> KeyEventRow | None:
    record = item.admin
    if isinstance(record, KeyRegistered):
        key = state.registry.register(index, record)
        return KeyEventRow(
            index, "key.registered", key.keyid, record.key, record.owner,
            tuple(record.roles), tuple(record.products),
        )  # fmt: skip
    if isinstance(record, KeyRevoked):
        state.registry.revoke(index, record)
        return KeyEventRow(index, "key.revoked", record.keyid, reason=record.reason)
    return None


def _place(
    request: PendingRequest, state: _State, stamp: str, integrated_at: datetime, *, genesis: bool
) -> _State:
    """Place one request; raise LedgerError to leave it out whole, with `state` unchanged.

    A one-envelope request (the common case) is placed on `state` itself: every step
    that can fail runs before the first change. A longer one is placed on a copy.
    """
    single = len(request.submissions) == 1
    has_admin = any(item.admin is not None for item in request.submissions)
    registry = state.registry.copy() if has_admin else state.registry
    trial = state if single and not has_admin else _State(
        state.compact.copy(), state.prev, registry, state.chains.copy()
    )  # fmt: skip
    for item in request.submissions:
        index = trial.compact.size
        if not genesis:
            valid = _valid_signers(item, trial.registry, index)
            if item.admin is not None:
                trial.registry.require_admin(valid)  # a revoked co-signer's admin role does not count
        release = trial.chains.release_link(item)
        keys = trial.chains.key_link(item)
        data = encode_entry(index, trial.prev, stamp, item.envelope, release=release, keys=keys)
        event = _key_event(item, trial, index)  # the last step that may fail; it changes only `registry`
        if event is not None and keys is not None:
            trial.key_events.append(replace(event, seq=keys.seq))
        digest = leaf_hash(data)
        trial.chains.advance(index, digest, release, keys, item.kind)
        for level, node in trial.compact.append(digest):
            if level % TILE_HEIGHT == 0:
                trial.nodes.append((level, index >> level, node))
        trial.entries.append(
            EntryRow(
                index, digest, data, integrated_at, item.signer_keyid, item.envelope.payload_type,
                item.kind, item.product, item.version, item.subjects, release.seq if release else None,
            )
        )  # fmt: skip
        trial.prev = digest
    return trial


def _merge(state: _State, trial: _State) -> None:
    state.compact, state.prev, state.registry = trial.compact, trial.prev, trial.registry
    state.chains = trial.chains
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
    chains: Chains | None = None,
    genesis: bool = False,
) -> BatchPlan:
    """Plan one batch on top of the locked `head`; `registry` and `chains` are not modified.

    Preconditions: `registry` reflects every key event up to `head.tree_size - 1`;
    `chains` holds the head of every release the requests name and of the key
    events (when a request holds a key event); `signer` is the ledger key;
    `genesis` only for entry 0 (registry empty).
    """
    # Entry times never go backwards, even if this process's clock is behind another's.
    stamp = max(format_time(now), head.last_time)
    state = _State(
        CompactRange(head.tree_size, list(head.compact_range)),
        head.last_leaf_hash,
        registry,
        chains or Chains(),
    )
    plan = BatchPlan(write=None, registry=registry)
    integrated_at = parse_time(stamp)
    for position, request in enumerate(requests):
        first, placed_before = state.compact.size, len(state.entries)
        try:
            trial = _place(request, state, stamp, integrated_at, genesis=genesis)
        except LedgerError as exc:
            plan.rejected[position] = exc
            continue
        if trial is not state:
            _merge(state, trial)
        plan.placed[position] = (first, len(state.entries) - placed_before)
    if not state.entries:
        return plan
    size = state.compact.size
    root = state.compact.root()
    last_key_event = state.key_events[-1].index if state.key_events else head.last_key_event
    note = sign_checkpoint(Checkpoint(head.origin, size, root, key_chain_extension(last_key_event)), signer)
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
