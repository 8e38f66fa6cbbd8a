"""Core benchmark (issue #2): hashing, proof verification and note verification, each beside its limit.

Every figure is printed next to a baseline measured in the same run, on the
same machine, the same way: the raw `hashlib.sha256` call a leaf or node hash
needs, and the raw PyNaCl `VerifyKey.verify` a signed note needs. Absolute
rates drift with load; the ratios are the result.

Method: each figure is timed with `time.perf_counter` over whole batches of
work for a fixed duration, after a warm-up, and the best of 3 repetitions is
kept. The repetitions of a figure and of its baseline are interleaved (round
1 of both, then round 2, ...) so load changes hit both sides alike.

Run: `.venv/bin/python benchmarks/bench_core.py [--seconds S] [--profile]`.
`--seconds` is the time spent on one figure (split over its 3 repetitions).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import os
import platform
import pstats
import random
import shlex
import ssl
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nacl
import nacl.signing

from ledger.core import proof
from ledger.core.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.core.note import open_note
from ledger.core.proof import (
    consistency_nodes,
    inclusion_nodes,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

REPETITIONS = 3
TARGET_PROOF_RATIO = 0.50  # issue #2: proofs at >= 50% of the rate the raw hash calls imply
SIZE_EXPONENTS = (10, 20, 30)
PROOF_SAMPLES = 256  # distinct (index, proof, root) samples per tree size
HASH_BATCH = 2_000
NOTE_BATCH = 50
SEED = 2  # issue number: the workload is the same from run to run

# A batch performs a fixed amount of work and returns how many operations it did.
Batch = Callable[[], int]
_sha256 = hashlib.sha256


def timed_rate(batch: Batch, seconds: float) -> float:
    """Operations per second: run whole batches until `seconds` have passed."""
    ops = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        ops += batch()
        now = time.perf_counter()
        if now >= deadline:
            return ops / (now - start)


def best_rates(batches: dict[str, Batch], seconds: float) -> dict[str, float]:
    """Best of REPETITIONS rates for each batch, after a warm-up, rounds interleaved across batches."""
    for batch in batches.values():
        timed_rate(batch, seconds / 10)
    best = dict.fromkeys(batches, 0.0)
    for _ in range(REPETITIONS):
        for name, batch in batches.items():
            best[name] = max(best[name], timed_rate(batch, seconds / REPETITIONS))
    return best


@contextmanager
def counting_node_hashes() -> Iterator[list[int]]:
    """Count the node hashes ledger.core.proof performs inside the block (one-element list)."""
    namespace = vars(proof)  # the globals the chain functions look node_hash up in
    original: Callable[[bytes, bytes], bytes] = namespace["node_hash"]
    counter = [0]

    def counting(left: bytes, right: bytes) -> bytes:
        counter[0] += 1
        return original(left, right)

    namespace["node_hash"] = counting
    try:
        yield counter
    finally:
        namespace["node_hash"] = original


def node(left: bytes, right: bytes) -> bytes:
    """RFC 9162 node hash, written out here so proof generation does not rely on the code under test."""
    return _sha256(b"\x01" + left + right).digest()


# --- workloads ---------------------------------------------------------------------------------


def make_entry(rng: random.Random) -> bytes:
    """A 200-byte entry shaped like a log entry (docs/formats.md#entries), with a random envelope body."""
    head = b'{"envelope":{"payload":"'
    tail = b'"},"index":1234567,"prev":"' + rng.randbytes(32).hex().encode() + b'","v":1}'
    body = rng.randbytes(200).hex().encode()[: 200 - len(head) - len(tail)]
    return head + body + tail


@dataclass(frozen=True, slots=True)
class InclusionSample:
    """A valid inclusion proof: random leaf and path hashes, and the root they imply."""

    index: int
    size: int
    leaf: bytes
    path: list[bytes]
    root: bytes


@dataclass(frozen=True, slots=True)
class ConsistencySample:
    """A valid consistency proof: random path hashes and the two roots they imply."""

    size1: int
    size2: int
    path: list[bytes]
    root1: bytes
    root2: bytes
    hashes: int  # node hashes RFC 9162's verification algorithm performs for this proof


def inclusion_samples(rng: random.Random, size: int) -> list[InclusionSample]:
    """PROOF_SAMPLES valid inclusion proofs at random indices of a tree of `size` leaves."""
    samples = []
    for _ in range(PROOF_SAMPLES):
        index = rng.randrange(size)
        ids = inclusion_nodes(index, size)
        length = len(ids.rehash([b""] * len(ids.ids)))
        leaf = rng.randbytes(32)
        path = [rng.randbytes(32) for _ in range(length)]
        root = root_from_inclusion_proof(index, size, leaf, path)  # once per sample, not timed
        samples.append(InclusionSample(index, size, leaf, path, root))
    return samples


def consistency_roots(size1: int, size2: int, path: Sequence[bytes]) -> tuple[bytes, bytes, int]:
    """The roots (size1, size2) a consistency path implies, and the node hashes that took.

    RFC 9162 §2.1.4.2, steps 3 to 7, run forwards: `path` already has the first
    root prepended when size1 is a power of two (step 2).
    """
    hashes = 0
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ValueError("consistency path too long")
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            hashes += 2
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
            hashes += 1
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("consistency path too short")
    return fr, sr, hashes


def consistency_samples(rng: random.Random, size2: int) -> list[ConsistencySample]:
    """PROOF_SAMPLES valid consistency proofs from a random size1 in [1, size2) to size2."""
    samples = []
    for _ in range(PROOF_SAMPLES):
        size1 = rng.randrange(1, size2)
        ids = consistency_nodes(size1, size2)
        path = [rng.randbytes(32) for _ in ids.rehash([b""] * len(ids.ids))]
        if size1 & (size1 - 1) == 0:
            root1 = rng.randbytes(32)
            _, root2, hashes = consistency_roots(size1, size2, [root1, *path])
        else:
            root1, root2, hashes = consistency_roots(size1, size2, path)
        samples.append(ConsistencySample(size1, size2, path, root1, root2, hashes))
    return samples


# --- batches -----------------------------------------------------------------------------------


def raw_sha256_batch(data: bytes) -> Batch:
    """HASH_BATCH raw `hashlib.sha256(data).digest()` calls."""

    def batch() -> int:
        sha256 = _sha256
        for _ in range(HASH_BATCH):
            sha256(data).digest()
        return HASH_BATCH

    return batch


def leaf_hash_batch(entry: bytes) -> Batch:
    """HASH_BATCH `ledger.core.hashing.leaf_hash(entry)` calls."""

    def batch() -> int:
        leaf = leaf_hash
        for _ in range(HASH_BATCH):
            leaf(entry)
        return HASH_BATCH

    return batch


def raw_node_batch(left: bytes, right: bytes) -> Batch:
    r"""HASH_BATCH raw node hashes, `hashlib.sha256(b"\x01" + left + right).digest()`."""

    def batch() -> int:
        sha256 = _sha256
        for _ in range(HASH_BATCH):
            sha256(b"\x01" + left + right).digest()
        return HASH_BATCH

    return batch


def verify_inclusion_batch(samples: list[InclusionSample]) -> Batch:
    """One `verify_inclusion` per sample."""
    args = [(s.index, s.size, s.leaf, s.path, s.root) for s in samples]

    def batch() -> int:
        verify = verify_inclusion
        for index, size, leaf, path, root in args:
            verify(index, size, leaf, path, root)
        return len(args)

    return batch


def inclusion_nodes_batch(samples: list[InclusionSample]) -> Batch:
    """One `inclusion_nodes` (index math only, no hashing) per sample."""
    args = [(s.index, s.size) for s in samples]

    def batch() -> int:
        nodes = inclusion_nodes
        for index, size in args:
            nodes(index, size)
        return len(args)

    return batch


def verify_consistency_batch(samples: list[ConsistencySample]) -> Batch:
    """One `verify_consistency` per sample."""
    args = [(s.size1, s.size2, s.path, s.root1, s.root2) for s in samples]

    def batch() -> int:
        verify = verify_consistency
        for size1, size2, path, root1, root2 in args:
            verify(size1, size2, path, root1, root2)
        return len(args)

    return batch


def consistency_nodes_batch(samples: list[ConsistencySample]) -> Batch:
    """One `consistency_nodes` (index math only, no hashing) per sample."""
    args = [(s.size1, s.size2) for s in samples]

    def batch() -> int:
        nodes = consistency_nodes
        for size1, size2 in args:
            nodes(size1, size2)
        return len(args)

    return batch


def repeat_batch(call: Callable[[], object], count: int) -> Batch:
    """`count` calls of `call`."""

    def batch() -> int:
        for _ in range(count):
            call()
        return count

    return batch


# --- report ------------------------------------------------------------------------------------


def fmt(rate: float) -> str:
    """A rate with thousands separators."""
    return f"{rate:,.0f}"


def verdict(ratio: float) -> str:
    """PASS or FAIL against the proof target."""
    return "PASS" if ratio >= TARGET_PROOF_RATIO else "FAIL"


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, when there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain fixed-width table: first column left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    print()


def profile(name: str, batch: Batch, rounds: int) -> None:
    """Print where `batch` spends its time under cProfile (tottime, top functions)."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(rounds):
        batch()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(12)
    print(f"cProfile: {name} ({rounds} batches), sorted by own time")
    body = out.getvalue()
    print(body[body.find("   ncalls") :].rstrip())
    print()


# --- sections ----------------------------------------------------------------------------------


def print_header(seconds: float) -> None:
    """What was run, where, when, how, and the load at the start."""
    print("evidence-ledger core benchmark (issue #2)")
    print(f"command : {shlex.join(sys.orig_argv)}")
    print(f"date    : {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}")
    print(
        f"machine : os.cpu_count()={os.cpu_count()}, {cpu_model()}, {platform.platform()}, "
        f"{platform.python_implementation()} {platform.python_version()}, {ssl.OPENSSL_VERSION}, "
        f"PyNaCl {nacl.__version__}"
    )
    print(
        f"method  : best of {REPETITIONS} x {seconds / REPETITIONS:.2f} s per figure after a "
        f"{seconds / 10:.2f} s warm-up; repetitions interleaved with the same-run baseline"
    )
    print(f"load avg: {load()} (1/5/15 min) at start")
    print()


def bench_hashing(rng: random.Random, seconds: float) -> None:
    """Leaf hash vs raw SHA-256 of the same entry, and the raw node-hash rate."""
    entry = make_entry(rng)
    left, right = rng.randbytes(32), rng.randbytes(32)
    rates = best_rates(
        {
            "raw_leaf": raw_sha256_batch(entry),
            "leaf": leaf_hash_batch(entry),
            "raw_node": raw_node_batch(left, right),
        },
        seconds,
    )
    raw_node = rates["raw_node"]
    print_table(
        ["hashing", "ops/s", "baseline (same run)", "baseline/s", "ratio"],
        [
            [
                f"leaf_hash({len(entry)} B entry)",
                fmt(rates["leaf"]),
                f"hashlib.sha256({len(entry)} B).digest()",
                fmt(rates["raw_leaf"]),
                f"{rates['leaf'] / rates['raw_leaf']:.2f}",
            ],
            ["raw node hash", fmt(raw_node), 'hashlib.sha256(b"\\x01"+a+b).digest()', fmt(raw_node), "1.00"],
        ],
    )


@dataclass(frozen=True, slots=True)
class ProofCase:
    """One tree size: the verifier batch, the index-math batch, mean proof length and hashes needed."""

    size_label: str
    verify: Batch
    nodes: Batch
    mean_length: float
    mean_hashes: float  # node hashes the RFC 9162 algorithm needs per verification


PROOF_HEADER = [
    "size",
    "k",
    "hashes",
    "counted",
    "raw node/s",
    "implied/s",
    "verify/s",
    "ratio",
    "target",
    "verdict",
]


def bench_proofs(cases: Sequence[ProofCase], raw_node: Batch, seconds: float) -> list[list[str]]:
    """One row per case; the raw node-hash baseline is re-measured, interleaved, for every row.

    `hashes` is what the proof needs (RFC 9162's algorithm, run by this script);
    `counted` is what ledger.core.proof actually did, counted by running one
    batch with its `node_hash` wrapped (a check that it does no extra hashing).
    """
    rows = []
    for case in cases:
        with counting_node_hashes() as counter:
            done = case.verify()
        rates = best_rates({"raw_node": raw_node, "verify": case.verify, "nodes": case.nodes}, seconds)
        implied = rates["raw_node"] / case.mean_hashes
        ratio = rates["verify"] / implied
        rows.append(
            [
                case.size_label,
                f"{case.mean_length:.1f}",
                f"{case.mean_hashes:.1f}",
                f"{counter[0] / done:.1f}",
                fmt(rates["raw_node"]),
                fmt(implied),
                fmt(rates["verify"]),
                f"{ratio:.2f}",
                f">= {TARGET_PROOF_RATIO:.2f}",
                verdict(ratio),
                fmt(rates["nodes"]),
            ]
        )
    return rows


def inclusion_cases(rng: random.Random) -> list[ProofCase]:
    """One inclusion case per tree size."""
    cases = []
    for exp in SIZE_EXPONENTS:
        samples = inclusion_samples(rng, 1 << exp)
        mean = sum(len(s.path) for s in samples) / len(samples)  # one node hash per path element
        verify, nodes = verify_inclusion_batch(samples), inclusion_nodes_batch(samples)
        cases.append(ProofCase(f"2^{exp}", verify, nodes, mean, mean))
    return cases


def consistency_cases(rng: random.Random) -> list[ProofCase]:
    """One consistency case per second tree size."""
    cases = []
    for exp in SIZE_EXPONENTS:
        samples = consistency_samples(rng, 1 << exp)
        mean = sum(len(s.path) for s in samples) / len(samples)
        hashes = sum(s.hashes for s in samples) / len(samples)
        verify, nodes = verify_consistency_batch(samples), consistency_nodes_batch(samples)
        cases.append(ProofCase(f"2^{exp}", verify, nodes, mean, hashes))
    return cases


def bench_notes(rng: random.Random, seconds: float) -> None:
    """open_note / open_checkpoint on a signed checkpoint vs raw PyNaCl verify of the same message."""
    signer = SignerKey.from_seed("ledger.example/bench", rng.randbytes(32))
    verifier = signer.verifier()
    checkpoint = Checkpoint(signer.name, 1 << 20, rng.randbytes(32))
    note = sign_checkpoint(checkpoint, signer).encode()  # bytes, as a client receives GET /checkpoint
    message = checkpoint.text().encode()
    signature = signer.sign(message)  # Ed25519 is deterministic: this is the signature in the note
    raw_key = nacl.signing.VerifyKey(verifier.public_key)
    if open_checkpoint(note, verifier, signer.name) != checkpoint:
        raise SystemExit("checkpoint did not round-trip")
    rates = best_rates(
        {
            "raw": repeat_batch(lambda: raw_key.verify(message, signature), NOTE_BATCH),
            "note": repeat_batch(lambda: open_note(note, [verifier]), NOTE_BATCH),
            "checkpoint": repeat_batch(lambda: open_checkpoint(note, verifier, signer.name), NOTE_BATCH),
        },
        seconds,
    )
    raw_label = f"nacl VerifyKey.verify({len(message)} B msg, sig)"
    print_table(
        ["Ed25519 notes", "ops/s", "baseline (same run)", "baseline/s", "ratio"],
        [
            [name, fmt(rates[key]), raw_label, fmt(rates["raw"]), f"{rates[key] / rates['raw']:.2f}"]
            for name, key in (("open_note", "note"), ("open_checkpoint", "checkpoint"))
        ],
    )


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    """Measure everything in one run and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="seconds per figure (default 1.5)")
    parser.add_argument(
        "--profile", action="store_true", help="profile the proof verifiers even if they pass"
    )
    args = parser.parse_args()
    seconds: float = args.seconds
    rng = random.Random(SEED)
    started = time.perf_counter()
    print_header(seconds)

    bench_hashing(rng, seconds)
    raw_node = raw_node_batch(rng.randbytes(32), rng.randbytes(32))

    inclusion = inclusion_cases(rng)
    print("inclusion proofs: verify_inclusion at a random index, valid proof. k = proof length;")
    print("  hashes = node hashes needed (= k), counted = node hashes ledger.core.proof did;")
    print("  raw node/s re-measured beside each row; implied = raw node/s / hashes; ratio = verify/implied")
    inclusion_rows = bench_proofs(inclusion, raw_node, seconds)
    print_table([*PROOF_HEADER, "inclusion_nodes/s"], inclusion_rows)

    consistency = consistency_cases(rng)
    print("consistency proofs: verify_consistency from a random size1 in [1, size) to size, valid proof.")
    print("  k = mean proof length; hashes = mean node hashes RFC 9162 §2.1.4.2 needs (counted in this")
    print("  script's own run of that algorithm, not the 2k upper bound); counted = ledger.core.proof's")
    consistency_rows = bench_proofs(consistency, raw_node, seconds)
    print_table([*PROOF_HEADER, "consistency_nodes/s"], consistency_rows)

    bench_notes(rng, seconds)

    for kind, cases, rows in (
        ("verify_inclusion", inclusion, inclusion_rows),
        ("verify_consistency", consistency, consistency_rows),
    ):
        for case, row in zip(cases, rows, strict=True):
            if args.profile or row[PROOF_HEADER.index("verdict")] == "FAIL":
                profile(f"{kind} at {case.size_label}", case.verify, rounds=20)

    print(f"load avg: {load()} (1/5/15 min) at end; wall time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
