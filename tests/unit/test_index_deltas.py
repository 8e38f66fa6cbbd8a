"""Index deltas: one process's batch taken on by another's tree without re-planning it (012_index_deltas.sql).

A delta is derived data, so every test here asks the same two things: does a tree that takes one
on end exactly where the planning tree did, and is a wrong or out-of-order one refused or caught
before any checkpoint commits to it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import struct
from collections import defaultdict

import pytest
from index_follow_support import count_takes
from sequencer_support import ALICE, BOB, LEDGER_KEY, FakeStore, _typed_store, evidence, request, started

from ledger.append.sequencer import Sequencer
from ledger.core.sparse_merkle import (
    DELTA_VERSION,
    Head,
    IndexTree,
    index_root,
    verify_index_proof,
)
from ledger.errors import EncodingError, LogIntegrityError
from ledger.query.index_follow import IndexFollower, committed_index
from ledger.rules.registry import KeyRegistry
from ledger.storage.protocol import IndexDelta

BUCKET_BITS = 8  # small trees: many keys share a bucket, and lone leaves sit above the buckets too


def _key(rng: random.Random) -> bytes:
    return rng.randbytes(32)


def _head(rng: random.Random) -> Head:
    return Head(rng.randint(1, 9), rng.randint(0, 10**6), rng.randbytes(32))


def _planned(tree: IndexTree, pairs: dict[bytes, Head], changed: set[bytes]):
    """The plan putting `pairs` (the whole map) into `tree`, given which keys changed."""
    buckets: dict[int, list[tuple[bytes, Head]]] = defaultdict(list)
    touched = {tree.bucket_of(k) for k in changed}
    for key, head in pairs.items():
        if tree.bucket_of(key) in touched:
            buckets[tree.bucket_of(key)].append((key, head))
    return tree.plan(buckets)


def _twins(rng: random.Random, n: int) -> tuple[IndexTree, IndexTree, dict[bytes, Head]]:
    pairs = {_key(rng): _head(rng) for _ in range(n)}
    trees = IndexTree(BUCKET_BITS), IndexTree(BUCKET_BITS)
    for tree in trees:
        tree.apply(_planned(tree, pairs, set(pairs)))
    return trees[0], trees[1], pairs


def _bucket(tree: IndexTree, pairs: dict[bytes, Head], key: bytes) -> list[tuple[bytes, Head]]:
    return [(k, h) for k, h in pairs.items() if tree.bucket_of(k) == tree.bucket_of(key)]


@pytest.mark.parametrize("seed", range(6))
def test_a_tree_taking_a_delta_ends_where_the_planning_tree_did(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - repeatable keys, not a secret
    planner, follower, pairs = _twins(rng, rng.choice([0, 1, 3, 40, 700]))
    for _ in range(4):  # several batches: new keys, moved heads, buckets emptied of their lone key
        changed = {_key(rng) for _ in range(rng.randint(1, 60))}
        changed |= set(rng.sample(sorted(pairs), min(len(pairs), rng.randint(0, 20))))
        for key in changed:
            pairs[key] = _head(rng)
        plan = _planned(planner, pairs, changed)
        delta = planner.delta(plan)
        planner.apply(plan)
        follower.apply_delta(delta)
        assert follower.root() == planner.root() == index_root(pairs.items())
    # Proofs from the follower, including those ending at a lone leaf it learned from a delta.
    for key in [*rng.sample(sorted(pairs), min(30, len(pairs))), *(_key(rng) for _ in range(30))]:
        proof = follower.prove(key, _bucket(follower, pairs, key))
        assert verify_index_proof(follower.root(), key, proof) == pairs.get(key)


def _one_delta() -> tuple[IndexTree, bytes]:
    rng = random.Random(7)  # noqa: S311 - as above
    planner, follower, pairs = _twins(rng, 50)
    changed = {_key(rng) for _ in range(5)}
    pairs.update((k, _head(rng)) for k in changed)
    return follower, planner.delta(_planned(planner, pairs, changed))


def _patched(delta: bytes, offset: int, fmt: str, value: int) -> bytes:
    patched = bytearray(delta)
    struct.pack_into(fmt, patched, offset, value)
    return bytes(patched)


HEADER = 10  # version, bucket bits, bucket records, lone-key records
ROOT = 37  # bucket, count, Subtree hash
LONE = 84  # bucket, key, head


def _last_lone_bucket(delta: bytes) -> int:
    return int(struct.unpack_from(">I", delta, len(delta) - LONE)[0])


MALFORMED = {
    "empty": lambda d: d[:0],
    "truncated": lambda d: d[:-1],
    "one byte more": lambda d: d + b"\x00",
    "another version": lambda d: _patched(d, 0, ">B", DELTA_VERSION + 1),
    "another tree's bucket count": lambda d: _patched(d, 1, ">B", BUCKET_BITS + 1),
    "a bucket count the bytes do not hold": lambda d: _patched(d, 2, ">I", 10**6),
    "a bucket past the tree": lambda d: _patched(d, HEADER, ">I", 1 << BUCKET_BITS),
    "a bucket twice": lambda d: _patched(d, HEADER + ROOT, ">I", struct.unpack_from(">I", d, HEADER)[0]),
    "a count of 3": lambda d: _patched(d, HEADER + 4, ">B", 3),
    "a lone key another bucket's": lambda d: _patched(d, len(d) - LONE, ">I", _last_lone_bucket(d) ^ 1),
    "a lone key's head moved": lambda d: _patched(d, len(d) - 48, ">Q", 99),
    "a lone key dropped": lambda d: _patched(d[:-LONE], 6, ">I", struct.unpack_from(">I", d, 6)[0] - 1),
}


@pytest.mark.parametrize("damage", sorted(MALFORMED))
def test_a_malformed_delta_is_refused_and_changes_nothing(damage: str) -> None:
    follower, delta = _one_delta()
    before = follower.copy()
    with pytest.raises(EncodingError):
        follower.apply_delta(MALFORMED[damage](delta))
    assert follower.root() == before.root()
    assert all(follower.bucket_root(b) == before.bucket_root(b) for b in range(1 << BUCKET_BITS))


def _follower_deltas() -> tuple[IndexFollower, list[IndexDelta], list[bytes]]:
    """A follower at size 10 and three deltas taking a twin tree to sizes 20, 30 and 40, with its roots."""
    rng = random.Random(11)  # noqa: S311 - as above
    planner, tree, pairs = _twins(rng, 30)
    follower = IndexFollower(BUCKET_BITS)
    follower.tree, follower.size = tree, 10
    deltas, roots = [], []
    for size in (20, 30, 40):
        changed = {_key(rng) for _ in range(4)}
        pairs.update((k, _head(rng)) for k in changed)
        plan = _planned(planner, pairs, changed)
        deltas.append(IndexDelta(size - 10, size, planner.delta(plan)))
        planner.apply(plan)
        roots.append(planner.root())
    return follower, deltas, roots


def test_a_follower_takes_deltas_that_run_unbroken_from_its_size() -> None:
    follower, deltas, roots = _follower_deltas()
    older = IndexDelta(0, 10, b"not read: it ends at the follower's size")
    assert follower.take_deltas([older, *deltas], 40)
    assert (follower.size, follower.tree.root()) == (40, roots[-1])


@pytest.mark.parametrize(
    ("case", "pick", "size"),
    [
        ("none stored", [], 40),
        ("the first fell out of the window", [1, 2], 40),
        ("a gap between two", [0, 2], 40),
        ("they stop short of the head", [0, 1], 40),
    ],
)
def test_a_follower_refuses_deltas_that_do_not_run_unbroken(case: str, pick: list[int], size: int) -> None:
    follower, deltas, _ = _follower_deltas()
    root = follower.tree.root()
    assert not follower.take_deltas([deltas[i] for i in pick], size), case
    assert (follower.size, follower.tree.root()) == (10, root)


def test_a_bad_delta_leaves_the_follower_consistent_where_the_good_ones_took_it() -> None:
    follower, deltas, roots = _follower_deltas()
    deltas[1] = IndexDelta(20, 30, deltas[1].data[:-1])
    assert not follower.take_deltas(deltas, 40)
    assert (follower.size, follower.tree.root()) == (20, roots[0])


# --- two processes on one store --------------------------------------------------------------------


async def _second(store: FakeStore) -> Sequencer:
    """Another process's sequencer on the same store, its index built as the service builds it.

    Its registry starts empty and catches up in its first batch; requests for it are admitted
    against the first sequencer's registry.
    """
    sequencer = Sequencer(_typed_store(store), LEDGER_KEY, KeyRegistry())  # type: ignore[arg-type]
    await sequencer.completeness.start(_typed_store(store))  # type: ignore[arg-type]
    sequencer.start()
    return sequencer


def _committed_root(store: FakeStore) -> bytes:
    line = committed_index(store.data.checkpoints[store.size])
    assert line is not None
    return line[0]


def _stored_root(store: FakeStore) -> bytes:
    return index_root((key, row.head) for key, row in store.data.index_heads.items())


async def _turn_each() -> tuple[FakeStore, Sequencer, Sequencer]:
    """A store and two processes' sequencers on it; each has appended once, the first last."""
    store = FakeStore()
    first = await started(store)
    second = await _second(store)
    await second.append(request(first, evidence(ALICE, 1)))
    await first.append(request(first, evidence(ALICE, 2)))
    return store, first, second


def test_processes_taking_turns_copy_each_others_batches_from_their_deltas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = count_takes(monkeypatch)

    async def scenario() -> None:
        store = FakeStore()
        first = await started(store)
        second = await _second(store)
        for n in range(8):
            sequencer = (first, second)[n % 2]
            await sequencer.append(request(first, evidence(ALICE if n % 3 else BOB, n)))
            assert _committed_root(store) == _stored_root(store)
        await first.stop()
        await second.stop()

    asyncio.run(scenario())
    assert taken.count(True) >= 7, taken  # every turn but the second process's first


def test_a_tampered_delta_is_caught_before_a_checkpoint_commits_to_it(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = count_takes(monkeypatch)

    async def scenario() -> None:
        store, first, second = await _turn_each()
        taken.clear()
        newest = store.data.index_deltas[store.size]
        data = bytearray(newest.data)
        data[HEADER + 5] ^= 1  # a bit of the first changed bucket's Subtree hash
        store.data.index_deltas[store.size] = IndexDelta(newest.from_size, newest.to_size, bytes(data))
        with caplog.at_level(logging.WARNING, logger="ledger.append.sequencer"):
            await second.append(request(first, evidence(BOB, 3)))
        # Refused as malformed (a one-key bucket's leaf) or caught by the root: never committed to.
        assert _committed_root(store) == _stored_root(store)
        assert taken == [False] or "rebuilding it from every stored head" in caplog.text
        await first.stop()
        await second.stop()

    asyncio.run(scenario())


def test_no_batch_commits_when_the_stored_heads_do_not_make_the_committed_root() -> None:
    async def scenario() -> None:
        store, first, second = await _turn_each()
        store.data.index_deltas.clear()  # out of the window: the second re-plans from the heads
        key, row = next(iter(store.data.index_heads.items()))
        moved = Head(row.head.count + 1, row.head.last_index, row.head.last_leaf)
        store.data.index_heads[key] = dataclasses.replace(row, head=moved)
        store.data.index_updated[key] = store.size
        size = store.size
        with pytest.raises(LogIntegrityError, match="appends stop until an operator runs"):
            await second.append(request(first, evidence(BOB, 3)))
        assert store.size == size
        await first.stop()
        await second.stop()

    asyncio.run(scenario())
