"""Completeness index benchmark (issue #13): proof sizes, verification, rebuild and batch updates.

Every figure is printed next to a baseline measured in the same run, on the
same machine: the raw `hashlib.sha256` a proof's hashes need, RFC 9162 leaf
hashing of entry-sized byte strings (what a rebuild from the log hashes
anyway), and the 1 KB proof-size target.

Method: rates are timed with `time.perf_counter` over whole batches for a fixed
duration after a warm-up, best of 3 repetitions interleaved with the baseline's
(as benchmarks/bench_core.py). The rebuild and the batch updates are timed whole,
best of their repetitions, each beside its baseline timed the same way.

Run: `.venv/bin/python benchmarks/bench_index.py [--keys N] [--samples S] [--seconds T]`.
The default, 10**6 keys, takes about 2 to 3 minutes; `--keys` scales the map down.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import shlex
import ssl
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from operator import itemgetter

from bench_core import REPETITIONS, best_rates, cpu_model, load, print_table, timed_rate

from ledger.core import sparse_merkle
from ledger.core.hashing import leaf_hash as entry_leaf_hash
from ledger.core.sparse_merkle import (
    Head,
    IndexTree,
    artifact_key,
    decode_proof,
    encode_proof,
    index_root,
    release_key,
    verify_index_proof,
)

SEED = 13  # issue number: the workload is the same from run to run
PROOF_TARGET = 1024  # bytes
VERIFY_TARGET = 5_000  # proofs verified per second
REBUILD_TARGET = 0.50  # rebuild rate >= 50 % of the rate of leaf-hashing as many ~600-byte entries
ENTRY_SIZE = 600
BATCH = 1_000
HOT_KEYS = 20
AUDIT_CHAINS = 10_000  # releases, and artifacts, of the audit workload (issue #13's "done when")
BATCH_ROUNDS = 5

Pairs = list[tuple[bytes, Head]]
_sha256 = hashlib.sha256


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


# --- workload ----------------------------------------------------------------------------------


def random_head(rng: random.Random) -> Head:
    """A head with a plausible count, a log index and a random leaf hash."""
    return Head(rng.randrange(1, 50), rng.randrange(1 << 40), rng.randbytes(32))


def build_map(rng: random.Random, keys: int) -> dict[bytes, Head]:
    """`keys` random index keys (SHA-256 outputs are uniform: random bytes stand in) and their heads."""
    return {rng.randbytes(32): random_head(rng) for _ in range(keys)}


def bucket_contents(tree: IndexTree, m: dict[bytes, Head]) -> dict[int, Pairs]:
    """The map's pairs grouped by the tree's buckets (what the store's bucket reads return)."""
    out: dict[int, Pairs] = {}
    for key, head in m.items():
        out.setdefault(tree.bucket_of(key), []).append((key, head))
    return out


# --- sections ----------------------------------------------------------------------------------


def bench_build(m: dict[bytes, Head]) -> tuple[IndexTree, dict[int, Pairs], float]:
    """Start-up: one plan of every bucket and its apply. Returns the tree, its buckets and the seconds."""
    tree = IndexTree()
    contents = bucket_contents(tree, m)
    start = time.perf_counter()
    tree.apply(tree.plan(contents))
    return tree, contents, time.perf_counter() - start


def bench_proofs(
    rng: random.Random, tree: IndexTree, contents: dict[int, Pairs], m: dict[bytes, Head], samples: int
) -> list[tuple[bytes, bytes]]:
    """Proof sizes for `samples` present and `samples` absent keys; returns the present (key, proof) pairs."""
    keys = list(m)
    present = [keys[rng.randrange(len(keys))] for _ in range(samples)]
    absent = [rng.randbytes(32) for _ in range(samples)]
    rows, proofs = [], []
    for name, chosen in (("present", present), ("absent", absent)):
        sizes, depths, endings = [], [], set()
        for key in chosen:
            proof = tree.prove(key, contents.get(tree.bucket_of(key), []))
            encoded = encode_proof(proof)
            sizes.append(len(encoded))
            depths.append(proof.depth)
            endings.add(proof.ending.name)
            if name == "present":
                proofs.append((key, encoded))
        rows.append(
            [
                f"{name} ({', '.join(sorted(endings))})",
                str(len(chosen)),
                f"{statistics.median(depths):.0f}",
                f"{statistics.median(sizes):.0f}",
                str(max(sizes)),
                f"<= {PROOF_TARGET}",
                verdict(max(sizes) <= PROOF_TARGET),
            ]
        )
    print(f"proof sizes: encoded bytes of IndexTree.prove at {len(m):,} keys (2**16 buckets)")
    print_table(["keys", "n", "median depth", "median B", "max B", "target", "verdict"], rows)
    return proofs


def bench_verify(rng: random.Random, root: bytes, proofs: list[tuple[bytes, bytes]], seconds: float) -> None:
    """verify_index_proof (decode included) vs raw SHA-256 of as many 64-byte blocks as the proofs hash."""
    for key, encoded in proofs:
        if verify_index_proof(root, key, encoded) is None:
            raise SystemExit("a present key's proof did not verify to its head")
    hashes = statistics.fmean(decode_proof(p).depth + 1 for _, p in proofs)  # the leaf, then one per level
    block = rng.randbytes(64)
    sample = proofs[:256]

    def verify_batch() -> int:
        verify = verify_index_proof
        for key, encoded in sample:
            verify(root, key, encoded)
        return len(sample)

    def raw_batch() -> int:
        sha256 = _sha256
        for _ in range(2_000):
            sha256(block).digest()
        return 2_000

    rates = best_rates({"raw": raw_batch, "verify": verify_batch}, seconds)
    implied = rates["raw"] / hashes
    print("verify_index_proof(root, key, encoded bytes): decode + leaf + one node hash per level")
    print_table(
        ["figure", "per s", "baseline (same run)", "baseline per s", "ratio", "target", "verdict"],
        [
            [
                "verify_index_proof",
                f"{rates['verify']:,.0f}",
                f"raw sha256(64 B) / {hashes:.1f} hashes",
                f"{implied:,.0f}",
                f"{rates['verify'] / implied:.2f}",
                f">= {VERIFY_TARGET:,}/s",
                verdict(rates["verify"] >= VERIFY_TARGET),
            ]
        ],
    )


def beside_entry_hashing(
    rng: random.Random, entries: int, rounds: int, figure: Callable[[], bytes]
) -> tuple[float, float, bytes]:
    """Best seconds of RFC 9162 leaf hashing of `entries` ~600-byte entries and of `figure`, interleaved.

    Returns both bests and the figure's last result.
    """
    stem = rng.randbytes(ENTRY_SIZE - 8)
    data = [stem + i.to_bytes(8) for i in range(entries)]
    best_entries = best_figure = float("inf")
    result = b""
    for _ in range(rounds):
        start = time.perf_counter()
        hashed = [entry_leaf_hash(e) for e in data]
        best_entries = min(best_entries, time.perf_counter() - start)
        del hashed
        start = time.perf_counter()
        result = figure()
        best_figure = min(best_figure, time.perf_counter() - start)
    return best_entries, best_figure, result


def bench_rebuild(rng: random.Random, m: dict[bytes, Head], rounds: int) -> None:
    """index_root over every (key, head) pair vs RFC 9162 leaf hashes of as many ~600-byte entries.

    The worst case of a rebuild: every entry starts a chain of its own, so there are as many
    keys as entries.
    """
    pairs = list(m.items())
    rng.shuffle(pairs)
    best_entries, best_rebuild, root = beside_entry_hashing(
        rng, len(pairs), rounds, lambda: index_root(pairs)
    )
    n = len(pairs)
    hashes = count_hashes(lambda: index_root(pairs))
    floor = raw_floor(rng, pairs, hashes)
    ratio = best_entries / best_rebuild
    print(f"rebuild: index_root of {n:,} (key, head) pairs in random order (sort included),")
    print(
        f"  best of {rounds}; root {root.hex()[:16]}...; it hashes {hashes / n:.2f} times per key (the leaf,"
    )
    print("  and the nodes: a random trie has about n / ln 2, those with an EMPTY child included). Floor:")
    print("  the same sort and the same number of SHA-256 calls on same-sized inputs, raw, in a bare loop.")
    header = ["figure", "seconds", "per s", "baseline (same run)", "baseline s", "ratio", "target", "verdict"]
    baseline = f"leaf_hash({ENTRY_SIZE} B) x {n:,}"
    ratio_floor = best_entries / floor
    rows = [
        ["index_root", f"{best_rebuild:.2f}", f"{n / best_rebuild:,.0f}", baseline, f"{best_entries:.2f}"],
        ["floor: sort + raw hashes", f"{floor:.2f}", f"{n / floor:,.0f}", baseline, f"{best_entries:.2f}"],
    ]
    rows[0] += [f"{ratio:.2f}", f">= {REBUILD_TARGET:.2f}", verdict(ratio >= REBUILD_TARGET)]
    rows[1] += [f"{ratio_floor:.2f}", "", ""]
    print_table(header, rows)


def bench_rebuild_workload(rng: random.Random, entries: int, chains: int, rounds: int) -> None:
    """The rebuild of the issue's audit workload, against RFC 9162 leaf hashes of as many ~600-byte entries.

    `entries` entries, each in one of `chains` releases and naming one of `chains` artifacts.
    Timed: following every entry's two chains (count, newest index and leaf hash per chain, as
    the replay's `Chains` do), then each chain's index key and `index_root` of the heads.
    """
    members = [(rng.randrange(chains), rng.randrange(chains)) for _ in range(entries)]
    leaves = [rng.randbytes(32) for _ in range(entries)]

    def rebuild() -> bytes:
        releases: dict[int, tuple[int, int, bytes]] = {}
        artifacts: dict[int, tuple[int, int, bytes]] = {}
        for index, ((release, artifact), leaf) in enumerate(zip(members, leaves, strict=True)):
            for heads, chain in ((releases, release), (artifacts, artifact)):
                head = heads.get(chain)
                heads[chain] = (1 if head is None else head[0] + 1, index, leaf)
        pairs = [(release_key("product", f"{n}.0"), Head(*head)) for n, head in releases.items()]
        pairs += [(artifact_key(f"sha256:{n:064x}"), Head(*head)) for n, head in artifacts.items()]
        return index_root(pairs)

    best_entries, best_rebuild, _ = beside_entry_hashing(rng, entries, rounds, rebuild)
    ratio = best_entries / best_rebuild
    print(f"rebuild of the audit workload: {entries:,} entries across {chains:,} releases and {chains:,}")
    print("  artifacts (two chains an entry): every entry's chains followed, then index_root of the heads,")
    print(f"  best of {rounds}; baseline: RFC 9162 leaf hashes of the same number of {ENTRY_SIZE} B entries")
    rows = [
        [
            "follow chains + index_root",
            f"{best_rebuild:.2f}",
            f"{entries / best_rebuild:,.0f}",
            f"leaf_hash({ENTRY_SIZE} B) x {entries:,}",
            f"{best_entries:.2f}",
            f"{ratio:.2f}",
            f">= {REBUILD_TARGET:.2f}",
            verdict(ratio >= REBUILD_TARGET),
        ]
    ]
    header = [
        "figure",
        "seconds",
        "entries/s",
        "baseline (same run)",
        "baseline s",
        "ratio",
        "target",
        "verdict",
    ]
    print_table(header, rows)


def count_hashes(call: Callable[[], object]) -> int:
    """How many SHA-256 calls ledger.core.sparse_merkle makes in `call` (its `_sha256` wrapped)."""
    namespace = vars(sparse_merkle)
    original = namespace["_sha256"]
    counter = [0]

    def counting(data: bytes) -> object:
        counter[0] += 1
        return original(data)

    namespace["_sha256"] = counting
    try:
        call()
    finally:
        namespace["_sha256"] = original
    return counter[0]


def raw_floor(rng: random.Random, pairs: Pairs, hashes: int) -> float:
    """Seconds to sort the pairs by key and make `hashes` raw SHA-256 calls (one leaf-sized per key)."""
    leaf_input, node_input = rng.randbytes(81), rng.randbytes(65)
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        sorted(pairs, key=itemgetter(0))
        sha256 = _sha256
        for _ in range(len(pairs)):
            sha256(leaf_input).digest()
        for _ in range(hashes - len(pairs)):
            sha256(node_input).digest()
        best = min(best, time.perf_counter() - start)
    return best


def new_key_batch(rng: random.Random, tree: IndexTree, contents: dict[int, Pairs]) -> dict[int, Pairs]:
    """The whole new content of every bucket BATCH new keys land in (worst case: every key new)."""
    changed: dict[int, Pairs] = {}
    for _ in range(BATCH):
        key = rng.randbytes(32)
        bucket = tree.bucket_of(key)
        if bucket not in changed:
            changed[bucket] = list(contents.get(bucket, []))
        changed[bucket].append((key, random_head(rng)))
    return changed


def update_batch(
    rng: random.Random, tree: IndexTree, contents: dict[int, Pairs], hot: list[bytes]
) -> dict[int, Pairs]:
    """The whole new content of the buckets of BATCH head updates spread over the `hot` keys."""
    final: dict[bytes, Head] = {}
    for _ in range(BATCH):  # the sequencer folds a batch's writes into each chain's newest head
        final[hot[rng.randrange(len(hot))]] = random_head(rng)
    changed: dict[int, Pairs] = {}
    for key, head in final.items():
        bucket = tree.bucket_of(key)
        changed[bucket] = [(k, head if k == key else h) for k, h in changed.get(bucket, contents[bucket])]
    return changed


def entry_rate(entry: bytes) -> float:
    """Leaf hashes per second of one entry, the baseline of the batch figures."""

    def batch() -> int:
        for _ in range(BATCH):
            entry_leaf_hash(entry)
        return BATCH

    return max(timed_rate(batch, 0.3) for _ in range(REPETITIONS))


def bench_batches(rng: random.Random, tree: IndexTree, contents: dict[int, Pairs], entry: bytes) -> None:
    """Plan + apply per key: 1,000 new keys (every key new), and 1,000 updates to 20 existing keys.

    Beside each, what another service process spends taking the same batch on from its stored
    delta (`IndexTree.apply_delta` on a twin tree: the nodes above the changed buckets, rehashed).
    """
    rows = []
    rate = entry_rate(entry)
    hot = [contents[bucket][0][0] for bucket in rng.sample(sorted(contents), HOT_KEYS)]
    twin = tree.copy()
    makers: list[tuple[str, Callable[[], dict[int, Pairs]]]] = [
        ("1,000 new keys", lambda: new_key_batch(rng, tree, contents)),
        ("1,000 updates of 20 keys", lambda: update_batch(rng, tree, contents, hot)),
    ]
    for name, make in makers:
        best = best_taken = float("inf")
        size = 0
        for _ in range(BATCH_ROUNDS):
            start = time.perf_counter()
            changed = make()
            plan = tree.plan(changed)
            tree.apply(plan)
            best = min(best, time.perf_counter() - start)
            delta = tree.delta(plan)
            start = time.perf_counter()
            twin.apply_delta(delta)
            best_taken = min(best_taken, time.perf_counter() - start)
            size = len(delta)
            if twin.root() != tree.root():
                raise SystemExit("a tree taking the batch's delta on did not reach the planning tree's root")
            contents.update(changed)
        per_key = best / BATCH * 1e6
        rows.append(
            [
                name,
                f"{best * 1e3:.1f}",
                f"{per_key:.1f}",
                f"{1e6 / rate:.2f}",
                f"{per_key * rate / 1e6:.1f}",
                f"{size / 1024:.0f}",
                f"{best_taken * 1e3:.1f}",
            ]
        )
    print(f"IndexTree.plan + apply of one batch in a {sum(map(len, contents.values())):,}-key tree, best of")
    print(f"  {BATCH_ROUNDS} (building the changed buckets' contents included); baseline: leaf_hash of one")
    print(f"  {ENTRY_SIZE} B entry (what the sequencer spends per entry anyway). Another process takes")
    print("  the batch on from its delta (apply_delta: the nodes above the changed buckets, rehashed)")
    print_table(["batch", "ms", "us per key", "leaf_hash us", "ratio", "delta KiB", "apply_delta ms"], rows)


def main() -> None:
    """Measure everything in one run and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys in the map (default 10**6)")
    parser.add_argument("--samples", type=int, default=2_000, help="keys proven per kind (default 2,000)")
    parser.add_argument("--seconds", type=float, default=1.5, help="seconds per rate figure (default 1.5)")
    parser.add_argument("--rounds", type=int, default=2, help="rebuild repetitions (default 2)")
    args = parser.parse_args()
    rng = random.Random(SEED)
    started = time.perf_counter()
    print("evidence-ledger completeness index benchmark (issue #13)")
    print(f"command : {shlex.join(sys.orig_argv)}")
    print(f"date    : {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}")
    print(
        f"machine : os.cpu_count()={os.cpu_count()}, {cpu_model()}, {platform.platform()}, "
        f"{platform.python_implementation()} {platform.python_version()}, {ssl.OPENSSL_VERSION}"
    )
    print(f"load avg: {load()} (1/5/15 min) at start")
    print()

    m = build_map(rng, args.keys)
    tree, contents, build_seconds = bench_build(m)
    print(f"start-up: IndexTree(16).plan(every bucket) + apply of {len(m):,} keys: {build_seconds:.2f} s")
    print()
    proofs = bench_proofs(rng, tree, contents, m, args.samples)
    bench_verify(rng, tree.root(), proofs, args.seconds)
    bench_rebuild(rng, m, args.rounds)
    print()
    bench_rebuild_workload(rng, args.keys, AUDIT_CHAINS, args.rounds)
    if tree.root() != index_root(m.items()):
        raise SystemExit("the IndexTree's root is not the rebuilt root")
    bench_batches(rng, tree, contents, rng.randbytes(ENTRY_SIZE))
    print(f"load avg: {load()} (1/5/15 min) at end; wall time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
