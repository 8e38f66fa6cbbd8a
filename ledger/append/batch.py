"""Batch planning: turn admitted requests into the rows one transaction writes. Pure.

Given the locked head, the planner assigns indices, chains `prev` links and
the release, key-event and artifact back-links, encodes the entries, collects
the new head of every chain the batch extended (the completeness index's
rows), extends the compact range, collects the tile hashes the batch
completes, applies admin records to a copy of the key registry, and
signs the new checkpoint. A request whose envelope is no longer acceptable at
its exact index (its key was revoked meanwhile, say) is left out whole before
any index is assigned to it, so a batch never leaves a gap.

A signed statement is recorded once: a request whose statements are all
recorded already (in the log, or earlier in the batch) is answered with the
entries that record them; one that repeats a statement is refused as invalid
content (EncodingError), and one that mixes recorded and new statements is
refused whole (ConflictError).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ledger.core.checkpoint import Checkpoint, sign_checkpoint
from ledger.core.compact_range import CompactRange
from ledger.core.encoding import format_time, parse_time
from ledger.core.entry import encode_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey, VerifierKey
from ledger.core.sparse_merkle import Head as IndexHead
from ledger.core.sparse_merkle import IndexPlan, IndexTree
from ledger.core.tiles import TILE_HEIGHT, TILE_WIDTH
from ledger.errors import ConflictError, EncodingError, LedgerError, SignatureError
from ledger.rules.admission import Admitted
from ledger.rules.chains import Chains, index_extension, key_chain_extension
from ledger.rules.registry import KeyRegistry
from ledger.storage.protocol import (
    BatchWrite,
    CheckpointRow,
    EntryRow,
    Head,
    IdempotencyRow,
    IndexHeadRow,
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
    replayed: dict[int, tuple[int, ...]] = field(default_factory=dict)  # request → indices recording it
    index: IndexPlan | None = None  # the completeness index's change, to apply once the batch committed


@dataclass(frozen=True, slots=True)
class IndexInput:
    """The completeness index as a batch starts: the tree, and the buckets the batch may change.

    Preconditions: `tree` reflects the log at the locked head; `buckets` holds the whole
    stored content of every bucket holding a key of a chain the requests may extend
    (a bucket missing from it is taken as empty); `chained_from` is the ledger's first
    chained index (docs/completeness-index.md#checkpoints).
    """

    tree: IndexTree
    buckets: Mapping[int, Sequence[tuple[bytes, IndexHead]]]
    chained_from: int


def index_change(index: IndexInput, rows: Sequence[IndexHeadRow]) -> IndexPlan:
    """The index's change for a batch whose moved chain heads are `rows`: their buckets, re-planned."""
    buckets: dict[int, dict[bytes, IndexHead]] = {}
    for row in rows:
        bucket = buckets.get(row.bucket)
        if bucket is None:
            bucket = buckets[row.bucket] = dict(index.buckets.get(row.bucket, ()))
        bucket[row.key_hash] = row.head
    return index.tree.plan({b: list(content.items()) for b, content in buckets.items()})


@dataclass(slots=True)
class _State:
    compact: CompactRange
    prev: bytes
    registry: KeyRegistry
    chains: Chains
    entries: list[EntryRow] = field(default_factory=list)
    last_admin_entry: int = -1
    last_key_event: int = -1
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)  # (tree level, node index, hash)


def _valid_signers(item: Admitted, registry: KeyRegistry, index: int, at: datetime) -> list[VerifierKey]:
    """The item's verified signers that may still sign entry `index` stamped `at`; else SignatureError."""
    valid = [s for s in item.signers if registry.signing_key(s.keyid, index, at) == s]
    if not valid:
        raise SignatureError(
            f"entry {index}: " + registry.explain_refusal([s.keyid for s in item.signers], index, at)
        )
    return valid


MENTIONED = 5  # recorded statements a refusal names (a batch may hold a thousand)


def _refuse_repeated_statements(submissions: Sequence[Admitted]) -> None:
    """EncodingError (invalid content) when one signed statement appears twice among `submissions`."""
    seen: dict[bytes, int] = {}
    for position, item in enumerate(submissions):
        if item.statement_hash in seen:
            raise EncodingError(
                f"the request holds the same signed statement twice (envelopes {seen[item.statement_hash]} "
                f"and {position}); each is recorded once"
            )
        seen[item.statement_hash] = position


def _recorded_indices(
    request: PendingRequest, recorded: Mapping[bytes, int], batch: Mapping[bytes, int]
) -> tuple[int, ...] | None:
    """The entries recording the request's statements when all are recorded; None when none is.

    EncodingError when the request repeats a statement (`_refuse_repeated_statements`);
    ConflictError when it mixes recorded ones with new ones (a request is appended all or
    nothing, so it cannot be half a replay).
    """
    if len(request.submissions) == 1:  # the common case, without the lists below
        digest = request.submissions[0].statement_hash
        one = recorded.get(digest, batch.get(digest))
        return None if one is None else (one,)
    _refuse_repeated_statements(request.submissions)
    hashes = [item.statement_hash for item in request.submissions]
    found = [recorded.get(h, batch.get(h)) for h in hashes]
    if all(i is None for i in found):
        return None
    if any(i is None for i in found):
        old = [f"envelopes[{n}] as entry {i}" for n, i in enumerate(found) if i is not None]
        shown = ", ".join(old[:MENTIONED]) + (
            f" and {len(old) - MENTIONED:,} more" if len(old) > MENTIONED else ""
        )
        raise ConflictError(
            f"{len(old):,} of the {len(found):,} statements of this request are already recorded ({shown}); "
            "a request is appended all or nothing: send the others without them"
        )
    return tuple(i for i in found if i is not None)


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
        state.compact.copy(), state.prev, registry, state.chains.copy(),
        last_admin_entry=state.last_admin_entry, last_key_event=state.last_key_event,
    )  # fmt: skip
    for item in request.submissions:
        index = trial.compact.size
        if not genesis:
            valid = _valid_signers(item, trial.registry, index, integrated_at)
            if item.admin is not None:
                trial.registry.require_admin(valid)  # a revoked co-signer's admin role does not count
            if item.seal is not None:
                trial.registry.sealers(valid)  # under the policy in force at this very index
        release = trial.chains.release_link(item)
        keys = trial.chains.key_link(item)
        artifacts = trial.chains.artifact_links(item)
        data = encode_entry(
            index, trial.prev, stamp, item.envelope, release=release, keys=keys, artifacts=artifacts
        )
        if item.admin is not None:
            trial.registry.apply(index, item.admin)  # the last step that may fail; it changes only `registry`
            trial.last_admin_entry = index
            trial.last_key_event = index if keys is not None else trial.last_key_event
        digest = leaf_hash(data)
        trial.chains.advance(index, digest, release, keys, item.kind, artifacts)
        for level, node in trial.compact.append(digest):
            if level % TILE_HEIGHT == 0:
                trial.nodes.append((level, index >> level, node))
        trial.entries.append(
            EntryRow(
                index, digest, data, integrated_at, item.signer_keyid, item.envelope.payload_type,
                item.kind, item.product, item.version, item.subjects, release.seq if release else None,
                item.statement_hash,
            )
        )  # fmt: skip
        trial.prev = digest
    return trial


def _merge(state: _State, trial: _State) -> None:
    state.compact, state.prev, state.registry = trial.compact, trial.prev, trial.registry
    state.chains, state.last_admin_entry = trial.chains, trial.last_admin_entry
    state.last_key_event = trial.last_key_event
    state.entries.extend(trial.entries)
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
    recorded: Mapping[bytes, int] | None = None,
    genesis: bool = False,
    index: IndexInput | None = None,
) -> BatchPlan:
    """Plan one batch on top of the locked `head`; `registry` and `chains` are not modified.

    Preconditions: `registry` reflects every admin record up to `head.tree_size - 1`
    (and its `key_head` the newest key event); `chains` holds the head of every release
    the requests name; `recorded` maps the statement hash of every request's statements
    that the log already records to its index (the sequencer looks them up after a write
    collided; without it the store's unique index refuses the batch); `now` is the time
    to stamp (the database's clock, checked by the caller); `signer` is the ledger key;
    `genesis` only for entry 0 (registry empty). With `index`, the checkpoint commits to the
    completeness index as the batch leaves it (its `evledger-index` line), and the plan carries
    the index's change (`BatchPlan.index`).
    """
    # Entry times never go backwards: a clock a little behind the newest entry stamps its time.
    stamp = max(format_time(now), head.last_time)
    base = chains or Chains()
    base = Chains(
        dict(base.releases), base.keys or registry.key_head, dict(base.artifacts), base.chained_from
    )
    state = _State(
        CompactRange(head.tree_size, list(head.compact_range)),
        head.last_leaf_hash,
        registry,
        base.copy(),
        last_admin_entry=head.last_admin_entry,
        last_key_event=head.last_key_event,
    )
    plan = BatchPlan(write=None, registry=registry)
    integrated_at = parse_time(stamp)
    in_batch: dict[bytes, int] = {}
    for position, request in enumerate(requests):
        first, placed_before = state.compact.size, len(state.entries)
        try:
            replay = _recorded_indices(request, recorded or {}, in_batch)
            if replay is not None:
                plan.replayed[position] = replay
                continue
            trial = _place(request, state, stamp, integrated_at, genesis=genesis)
        except LedgerError as exc:
            plan.rejected[position] = exc
            continue
        if trial is not state:
            _merge(state, trial)
        plan.placed[position] = (first, len(state.entries) - placed_before)
        in_batch.update((e.statement_hash, e.index) for e in state.entries[placed_before:])
    if not state.entries:
        return plan
    size = state.compact.size
    root = state.compact.root()
    moved = state.chains.index_rows(base)
    extensions = key_chain_extension(state.last_key_event)
    if index is not None:
        plan.index = index_change(index, moved)
        extensions += (index_extension(plan.index.root, index.chained_from),)
    note = sign_checkpoint(Checkpoint(head.origin, size, root, extensions), signer)
    if state.last_key_event != head.last_key_event:
        state.registry.key_head = state.chains.keys  # a copy: the batch placed an admin record
    plan.registry = state.registry
    plan.write = BatchWrite(
        entries=state.entries,
        tiles=_tile_appends(state.nodes),
        checkpoint=CheckpointRow(size, root, note),
        head=Head(
            head.origin,
            size,
            tuple(state.compact.hashes),
            state.prev,
            stamp,
            state.last_key_event,
            state.last_admin_entry,
        ),
        idempotency=[
            IdempotencyRow(
                r.idempotency.token_id, r.idempotency.key, r.idempotency.body_hash, first, count, size
            )
            for position, (first, count) in plan.placed.items()
            if (r := requests[position]).idempotency is not None
        ],
        index_heads=moved,
        index_delta=None if index is None or plan.index is None else index.tree.delta(plan.index),
    )
    return plan
