"""Release timeline latency at 1M entries (DESIGN.md §8: 200 events, p99 <= 20 ms; issue #4).

Builds a ledger of `--entries` realistic, signed entries quickly, in-process:
statements of every kind, interleaved across 64 releases in flight at a time,
each release 179 chain entries (change, builds, test runs, scans,
validations, approvals, an exception, deployments and a seal) plus 21 generic
statements about its artifacts that name no release, so each timeline has 200
events. Batches of 5,000 go through the product's own planner
(`ledger.batch.plan_batch`: entry encoding, prev links, release back-links,
tiles, signed checkpoints) and write path (`PostgresAppendTransaction.write`,
COPY), so every release chain is real and `complete` holds.

Then it serves the database with `evledger serve` (one worker) and times
sequential GETs of `/v1/releases/{p}/{v}/timeline` over loopback with httpx,
rotating over 200 releases, after a warm-up, each followed by a trivial GET
(the checkpoint: the same run's floor); it prints p50/p90/p99/max against the
20 ms target, an in-process split (the one query, and query plus decoding,
without HTTP), and with --explain the query's plan.

    .venv/bin/python benchmarks/bench_timeline.py [--entries 1000000] [--keep]
    .venv/bin/python benchmarks/bench_timeline.py --dsn DSN --key ledger.key   # reuse a kept database
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from service_harness import BenchLedger, running_server
from timeline_fill import EVENTS_PER_RELEASE, fill, scratch_database, sealed_releases

from ledger.bootstrap import initialise, load_registry
from ledger.core.keys import SignerKey, parse_signer_key
from ledger.registry import KeyRegistry
from ledger.storage.entry_queries import RELEASE_TIMELINE_SQL
from ledger.storage.migrate import create_token, migrate
from ledger.storage.postgres import PostgresStore
from ledger.timeline import release_timeline

TARGET_P99_MS = 20.0
ROTATE = 200  # releases the timed requests rotate over (about 36k heap pages, > shared_buffers)


@dataclass
class _Holder:
    """What `release_timeline` needs of the sequencer: the key registry."""

    registry: KeyRegistry


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def row(name: str, samples: list[float]) -> str:
    """One latency line in ms."""
    return (
        f"{name:<34} n={len(samples):>5}  p50 {percentile(samples, 0.5):6.2f}  "
        f"p90 {percentile(samples, 0.9):6.2f}  p99 {percentile(samples, 0.99):6.2f}  max {max(samples):6.2f}"
    )


def time_http(
    url: str, token: str, releases: list[tuple[str, str]], args: argparse.Namespace
) -> dict[str, list[float]]:
    """Sequential GETs over one keep-alive connection, milliseconds per request.

    Timeline requests rotate over `releases`; each is followed by a trivial
    authenticated GET (the checkpoint), the same-run floor of this server and machine.
    """
    samples: dict[str, list[float]] = {"GET .../timeline": [], "GET /v1/checkpoint (floor)": []}
    deadline = time.monotonic() + args.seconds
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        first = client.get(f"/v1/releases/{releases[0][0]}/{releases[0][1]}/timeline").json()
        if not first.get("complete") or len(first["events"]) != EVENTS_PER_RELEASE:
            raise SystemExit(f"unexpected timeline: {str(first)[:500]}")
        for turn in range(args.warmup + args.requests):
            product, version = releases[turn % len(releases)]
            paths = (f"/v1/releases/{product}/{version}/timeline", "/v1/checkpoint")
            for name, path in zip(samples, paths, strict=True):
                started = time.perf_counter()
                response = client.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"{path} failed: {response.status_code} {response.text[:300]}")
                if turn >= args.warmup:
                    samples[name].append(elapsed)
            if time.monotonic() > deadline:
                break
    return samples


def time_queries(url: str, token: str, dsn: str, rounds: int) -> dict[str, list[float]]:
    """Sequential GETs of the search and artifact routes (first pages and cursor walks), ms each."""
    probe = asyncio.run(_probe(dsn))
    search = "/v1/search"
    requests: dict[str, tuple[str, dict[str, str]]] = {
        "search kind=approval (page of 100)": (search, {"kind": "approval"}),
        "search signer=<tester> (page of 100)": (search, {"signer": str(probe["tester"])}),
        "search product=<1 of 10> (page of 100)": (search, {"product": "bench-3"}),
        "search kind=test-run&signer=<qa> (none)": (search, {"kind": "test-run", "signer": str(probe["qa"])}),
        "artifacts/<digest> (about 50 entries)": (f"/v1/artifacts/{probe['digest']}", {}),
    }
    out: dict[str, list[float]] = {name: [] for name in requests}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for name, (path, params) in requests.items():
            cursor = str(probe["middle"])
            for _ in range(rounds):
                started = time.perf_counter()
                response = client.get(path, params={**params, "limit": "100", "cursor": cursor})
                out[name].append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"{path} failed: {response.status_code} {response.text[:300]}")
                cursor = response.json()["next_cursor"] or str(probe["middle"])
    return out


async def _probe(dsn: str) -> dict[str, str | int]:
    """A tester and a qa keyid, an artifact digest and the middle index of the filled log."""
    conn = await asyncpg.connect(dsn)
    try:
        middle = int(await conn.fetchval("SELECT tree_size FROM log_head")) // 2
        keyid = "SELECT signer_keyid FROM entries WHERE kind = $1 AND idx >= $2 ORDER BY kind, idx LIMIT 1"
        return {
            "middle": middle,
            "tester": await conn.fetchval(keyid, "https://evledger.dev/test-run/v1", middle),
            "qa": await conn.fetchval(keyid, "https://evledger.dev/approval/v1", middle),
            "digest": await conn.fetchval("SELECT subjects[1] FROM entries WHERE idx = $1", middle),
        }
    finally:
        await conn.close()


async def time_in_process(dsn: str, releases: list[tuple[str, str]], rounds: int) -> dict[str, list[float]]:
    """The route's work without HTTP: its query alone, and `release_timeline` (query and decoding)."""
    store = await PostgresStore.connect(dsn, min_size=1, max_size=2)
    try:
        holder = _Holder(await load_registry(store))
        out: dict[str, list[float]] = {"timeline query": [], "release_timeline()": []}
        for turn in range(rounds):
            product, version = releases[turn % len(releases)]
            started = time.perf_counter()
            await store.release_timeline_entries(product, version)
            out["timeline query"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await release_timeline(store, holder, product, version)
            out["release_timeline()"].append((time.perf_counter() - started) * 1000)
        return out
    finally:
        await store.close()


async def explain(dsn: str, release: tuple[str, str]) -> list[str]:
    """EXPLAIN ANALYZE of the timeline's one statement for one release."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {RELEASE_TIMELINE_SQL}", *release)
        return [r[0] for r in rows]
    finally:
        await conn.close()


def run(dsn: str, ledger_key: SignerKey, key_path: Path, args: argparse.Namespace) -> None:
    """Fill if needed, then measure and print."""
    size = asyncio.run(_tree_size(dsn))
    if size < args.entries:
        started = time.monotonic()
        size = asyncio.run(fill(dsn, ledger_key, args.entries))
        print(f"fill    : {size:,} entries in {time.monotonic() - started:.0f} s")
    if args.analyze:
        asyncio.run(_analyze(dsn))
    releases = asyncio.run(sealed_releases(dsn, ROTATE))
    print(
        f"ledger  : {size:,} entries; timing {len(releases)} sealed releases of {EVENTS_PER_RELEASE} events"
    )
    token = asyncio.run(create_token(dsn, "auditor", []))
    bench = BenchLedger(dsn, ledger_key, key_path, ledger_key, token)
    with running_server(bench, workers=1) as server:
        http = time_http(server.url, token, releases, args)
        queries = time_queries(server.url, token, dsn, args.query_rounds)
    split = asyncio.run(time_in_process(dsn, releases, min(args.requests, 300)))
    p99 = percentile(http["GET .../timeline"], 0.99)
    print(f"load avg: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min) after the HTTP run")
    print("\nlatency, ms (sequential requests, one keep-alive connection, loopback)")
    for name, values in http.items():
        print(row(name, values))
    for name, values in split.items():
        print(row(f"in process: {name}", values))
    print("\nsearch and artifact routes, ms (sequential; each page continues from the previous cursor)")
    for name, values in queries.items():
        print(row(name, values))
    verdict = "PASS" if p99 <= TARGET_P99_MS else "FAIL"
    print(
        f"\ntarget  : p99 <= {TARGET_P99_MS:.0f} ms for a 200-event timeline -> p99 {p99:.2f} ms: {verdict}"
    )
    if args.explain:
        print("\nEXPLAIN ANALYZE, timeline queries of", *releases[0])
        print("\n".join(asyncio.run(explain(dsn, releases[0]))))


async def _analyze(dsn: str) -> None:
    """ANALYZE entries, as autovacuum would soon after a fill (this test server runs without it)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE entries")
    finally:
        await conn.close()


async def _tree_size(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT coalesce(max(tree_size), 0) FROM log_head"))
    finally:
        await conn.close()


def main() -> None:
    """Parse arguments, print the header, run in a scratch database or the one given."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="log size to fill up to")
    parser.add_argument("--dsn", help="reuse this database (filled by an earlier run with --keep)")
    parser.add_argument("--key", type=Path, help="its ledger key file (with --dsn)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database and print its DSN")
    parser.add_argument("--requests", type=int, default=1000, help="timed requests")
    parser.add_argument("--warmup", type=int, default=100, help="untimed requests first")
    parser.add_argument("--query-rounds", type=int, default=50, help="requests per search/artifact figure")
    parser.add_argument("--seconds", type=float, default=120.0, help="stop timing after this long")
    parser.add_argument("--no-analyze", dest="analyze", action="store_false", help="skip ANALYZE entries")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the queries")
    args = parser.parse_args()
    print("evidence-ledger timeline benchmark (issue #4)")
    print(f"date    : {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
    python = f"CPython {platform.python_version()}"
    print(f"machine : os.cpu_count()={os.cpu_count()}, {platform.platform()}, {python}")
    print(f"load avg: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min) at start")
    if args.dsn:
        if args.key is None:
            parser.error("--dsn needs --key (the ledger key the database was filled with)")
        run(args.dsn, parse_signer_key(args.key.read_text()), args.key, args)
        return
    key_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"evl-bench-timeline-{os.getpid()}"  # noqa: S108
    key_dir.mkdir(parents=True, exist_ok=True)
    ledger_key = SignerKey.generate("ledger.bench/timeline")
    key_path = key_dir / "ledger.key"
    key_path.write_text(ledger_key.format() + "\n")
    key_path.chmod(0o600)
    with scratch_database("timeline", keep=args.keep) as dsn:
        asyncio.run(migrate(dsn))
        asyncio.run(initialise(dsn, ledger_key))
        if args.keep:
            print(f"keeping : --dsn {dsn} --key {key_path}")
        run(dsn, ledger_key, key_path, args)


if __name__ == "__main__":
    main()
