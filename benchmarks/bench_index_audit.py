"""The completeness index after a million random appends (issue #13): audit checks every checkpoint's root.

1. Fill: a scratch ledger gets `--entries` (default 1,000,000) statements through the product's
   own sequencer (FILL_BATCH a transaction, no HTTP), each naming one of `--releases`
   (default 10,000) releases and one of `--artifacts` (default 10,000) artifacts, both drawn
   at random, so every chain grows unevenly and the index changes in every batch, as
   it would in a ledger serving many pipelines. Signed a transaction's worth at a time
   and admitted without verifying the signatures this process just made.
2. Audit: `ledger.verify.audit.audit_store`, the code behind `evledger audit`, replays the
   whole log (signatures verified on every core), rebuilds every tile and checkpoint root,
   and recomputes the completeness index at every stored checkpoint, comparing its root
   with the checkpoint's `evledger-index` line. It passes only if every one matches.
3. Beside it, the same run: RFC 9162 leaf hashing of the same entries alone (what "hashing
   the entries" costs), and the index's own part of the audit, measured by replaying the
   entries with and without the index comparison (`ledger.verify.index_check`).

Target (docs/architecture.md#performance-targets): the index recomputed by audit matches every
checkpoint; rebuilding the index runs at >= 50 % of the rate of hashing the entries alone.

Run: `.venv/bin/python benchmarks/bench_index_audit.py [--entries 1000000] [--releases 10000]
[--artifacts 10000]` (about 6 minutes at a million on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shlex
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgspec
from bench_core import cpu_model, fmt, load, print_table
from service_harness import PRODUCT, admit_own, local_sequencers, prepare_ledger, scratch_database, server_dsn

from ledger.append.batch import PendingRequest
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, Envelope, sign_envelope
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.rules.replay import LogReplayer
from ledger.storage.postgres import PostgresStore
from ledger.verify.audit import audit_store
from ledger.verify.index_check import IndexCheck

FILL_BATCH = 1000
SEED = 13
TARGET_REBUILD_RATIO = 0.50


def _statement(n: int, release: int, artifact: int) -> bytes:
    return msgspec.json.encode(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": f"dist/a-{artifact}.tar.gz", "digest": {"sha256": f"{artifact:064x}"}}],
            "predicateType": "https://evledger.example/test-run/v1",
            "predicate": {"release": {"product": PRODUCT, "version": f"r.{release}"}, "n": n},
        }
    )


def _sign(job: tuple[str, bytes, list[tuple[int, int, int]]]) -> list[bytes]:
    name, seed, items = job
    signer = SignerKey.from_seed(name, seed)
    return [
        msgspec.json.encode(sign_envelope(INTOTO_PAYLOAD_TYPE, _statement(*item), [signer])) for item in items
    ]


def envelopes(signer: SignerKey, items: list[tuple[int, int, int]]) -> list[Envelope]:
    """Sign (n, release, artifact) statements on every core."""
    chunk = max(1, len(items) // (os.cpu_count() or 1))
    jobs = [(signer.name, signer.seed, items[i : i + chunk]) for i in range(0, len(items), chunk)]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        bodies = [body for part in pool.map(_sign, jobs) for body in part]
    decoder = msgspec.json.Decoder(Envelope)
    return [decoder.decode(body) for body in bodies]


async def fill(dsn: str, ledger_key: SignerKey, appender: SignerKey, args: argparse.Namespace) -> float:
    """Append `args.entries` random statements; return the seconds it took."""
    rng = random.Random(SEED)  # a reproducible workload, not a secret
    began = time.perf_counter()
    async with local_sequencers(dsn, ledger_key, max_batch=FILL_BATCH) as (sequencer,):
        done = 0
        while done < args.entries:
            count = min(FILL_BATCH * 20, args.entries - done)
            items = [
                (done + i, rng.randrange(args.releases), rng.randrange(args.artifacts)) for i in range(count)
            ]
            signed = envelopes(appender, items)
            for start in range(0, count, FILL_BATCH):
                batch = [admit_own(sequencer, e) for e in signed[start : start + FILL_BATCH]]
                await sequencer.append(PendingRequest(batch))
            done += count
            elapsed = time.perf_counter() - began
            print(f"  fill: {done:>10,} entries, {elapsed:6.1f} s, {done / elapsed:,.0f}/s", flush=True)
    return time.perf_counter() - began


async def entries_and_checkpoints(dsn: str) -> tuple[list[bytes], dict[int, str]]:
    """Every entry's bytes in order, and every checkpoint note by size."""
    conn = await asyncpg.connect(dsn)
    try:
        entries = [r[0] for r in await conn.fetch("SELECT data FROM entries ORDER BY idx")]
        notes = {r[0]: r[1] for r in await conn.fetch("SELECT tree_size, note FROM checkpoints")}
    finally:
        await conn.close()
    return entries, notes


def replay_seconds(
    entries: list[bytes], notes: dict[int, str], ledger_key: SignerKey, *, index: bool
) -> float:
    """Seconds to replay every entry (signatures trusted), comparing the index at each checkpoint if asked."""
    from ledger.core.checkpoint import open_checkpoint  # noqa: PLC0415

    opened = {size: open_checkpoint(note, ledger_key.verifier()).extensions for size, note in notes.items()}
    replayer = LogReplayer(lambda *_: None, chained_from=0)
    check = IndexCheck(replayer.chains) if index else None
    began = time.perf_counter()
    for size, data in enumerate(entries, start=1):
        replayed = replayer.check(data)
        if check is not None:
            check.note(replayed.entry)
            if size in opened:
                check.compare(size, opened[size])
    return time.perf_counter() - began


def main() -> None:
    """Fill, audit, measure the index's share, print the table; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--releases", type=int, default=10_000)
    parser.add_argument("--artifacts", type=int, default=10_000)
    args = parser.parse_args()
    print("evidence-ledger completeness index audit benchmark (issue #13)")
    print(f"command : {shlex.join(sys.orig_argv)}")
    print(f"date    : {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}")
    print(f"machine : os.cpu_count()={os.cpu_count()}, {cpu_model()}, {platform.platform()}")
    print(f"database: PostgreSQL at {server_dsn()}; load {load()}")
    with tempfile.TemporaryDirectory() as tmp, scratch_database("index-audit") as dsn:
        ledger = prepare_ledger(dsn, Path(tmp))
        fill_s = asyncio.run(fill(dsn, ledger.ledger_key, ledger.appender, args))

        async def audit() -> tuple[object, float]:
            store = await PostgresStore.connect(dsn, min_size=1, max_size=4)
            try:
                began = time.perf_counter()
                report = await audit_store(store, ledger.ledger_key.verifier(), progress=False)
                return report, time.perf_counter() - began
            finally:
                await store.close()

        report, audit_s = asyncio.run(audit())
        entries, notes = asyncio.run(entries_and_checkpoints(dsn))
    began = time.perf_counter()
    for data in entries:
        leaf_hash(data)
    hash_s = time.perf_counter() - began
    plain_s = replay_seconds(entries, notes, ledger.ledger_key, index=False)
    indexed_s = replay_seconds(entries, notes, ledger.ledger_key, index=True)
    index_s = max(indexed_s - plain_s, 1e-9)
    n = len(entries)
    ratio = (n / index_s) / (n / hash_s)
    compared = getattr(report, "index_roots", 0)
    with_line = sum(1 for size in notes if size > 1)
    rows = [
        ["entries appended", fmt(n), f"fill {fill_s:.0f} s ({n / fill_s:,.0f}/s)", "", "", ""],
        ["audit: checkpoints whose index root matched", fmt(compared), f"of {fmt(len(notes))} stored",
         "", "every one with the line", "PASS" if compared >= with_line else "FAIL"],
        ["audit, whole (signatures, tiles, roots, index)", f"{n / audit_s:,.0f} entries/s",
         f"{audit_s:.1f} s", "", "", ""],
        ["index recomputation alone", f"{n / index_s:,.0f} entries/s",
         f"hashing the entries {n / hash_s:,.0f}/s", f"{ratio:.2f}", f">= {TARGET_REBUILD_RATIO:.2f}",
         "PASS" if ratio >= TARGET_REBUILD_RATIO else "FAIL"],
        ["  replay without / with the index", f"{plain_s:.1f} s / {indexed_s:.1f} s", "", "", "", ""],
    ]  # fmt: skip
    print()
    print_table(["figure", "value", "baseline (same run)", "ratio", "target", "met"], rows)
    if compared < with_line or ratio < TARGET_REBUILD_RATIO:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
