"""Release timeline latency at 1M entries (target: 200 events, p99 <= 20 ms; issue #4).

Builds a ledger of `--entries` realistic, signed entries quickly, in-process:
statements of every kind, interleaved across 64 releases in flight at a time,
each release 179 chain entries (change, builds, test runs, scans,
validations, approvals, an exception, deployments and a seal) plus 21 generic
statements about its artifacts that name no release, so each timeline has 200
events. Batches of 5,000 go through the product's own planner
(`ledger.append.batch.plan_batch`: entry encoding, prev links, release back-links,
tiles, signed checkpoints) and write path (`PostgresAppendTransaction.write`,
COPY), so every release chain is real and `complete` holds.

Then it serves the database with `evledger serve` (one worker), GETs every
timed release's timeline once (each must be complete, 200 events; a warm-up
too), and times `/v1/releases/{p}/{v}/timeline` with wrk (benchmarks/loadgen.py)
over loopback: one connection, one request in flight, a random one of 200
sealed releases per request, `--rounds` rounds of `--seconds`, each followed
by the same on a trivial authenticated GET (the checkpoint: the same run's
floor). It prints p50/p90/p99/max per round against the 20 ms target, an
in-process split (the two queries, and queries plus decoding, without HTTP),
the search and artifact routes, and with --explain the timeline queries' plans.

    .venv/bin/python benchmarks/bench_timeline.py [--entries 1000000] [--keep]
    .venv/bin/python benchmarks/bench_timeline.py --dsn DSN --key ledger.key   # reuse a kept database
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from loadgen import LoadResult, run_load
from service_harness import BenchLedger, running_server
from timeline_fill import EVENTS_PER_RELEASE, fill, scratch_database, sealed_versions

from ledger.append.bootstrap import initialise, load_registry
from ledger.core.keys import SignerKey, VerifierKey, parse_signer_key
from ledger.query.timeline import release_timeline
from ledger.rules.registry import KeyRegistry
from ledger.storage.entry_queries import RELEASE_CHAIN_SQL, UNCHAINED_ABOUT_BUILDS_SQL
from ledger.storage.migrate import create_token, migrate
from ledger.storage.postgres import PostgresStore
from ledger.storage.postgres_index import PostgresEvidenceIndex

TARGET_P99_MS = 20.0
PRODUCT = "bench-3"  # the timed releases: up to ROTATE sealed versions of it (1 in 10 releases)
ROTATE = 200  # about 36k heap pages, more than the default shared_buffers


@dataclass(frozen=True)
class Round:
    """One timed round: the timeline under wrk, then the trivial GET, and the load average after."""

    timeline: LoadResult
    floor: LoadResult
    load: float


@dataclass
class _Holder:
    """What `release_timeline` needs of the sequencer: the key registry and the key that proves it."""

    registry: KeyRegistry
    ledger_key: VerifierKey
    origin: str | None = None


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def row(name: str, samples: list[float]) -> str:
    """One latency line in ms."""
    return (
        f"{name:<42} n={len(samples):>5}  p50 {percentile(samples, 0.5):6.2f}  "
        f"p90 {percentile(samples, 0.9):6.2f}  p99 {percentile(samples, 0.99):6.2f}  max {max(samples):6.2f}"
    )


def check_timelines(url: str, token: str, product: str, versions: range) -> list[float]:
    """GET every timeline once (a warm-up too): each must be complete with EVENTS_PER_RELEASE events."""
    samples = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for n in versions:
            started = time.perf_counter()
            response = client.get(f"/v1/releases/{product}/{n}.0/timeline")
            samples.append((time.perf_counter() - started) * 1000)
            body = response.json()
            if (
                response.status_code != 200
                or not body["complete"]
                or len(body["events"]) != EVENTS_PER_RELEASE
            ):
                raise SystemExit(f"unexpected timeline of {product} {n}.0: {str(body)[:500]}")
    return samples


def time_wrk(url: str, token: str, product: str, versions: range, args: argparse.Namespace) -> list[Round]:
    """Rounds of: wrk on the timeline (a random release of `versions` per request), then on the floor.

    One connection, one request in flight (closed loop, sequential requests), in
    wrk's own process: a C client that costs the 2 cores little beside the server.
    """
    path = f"{url}/v1/releases/{product}/{{r}}.0/timeline"
    rounds = []
    for _ in range(args.rounds):
        timeline = run_load(
            path, token=token, connections=1, seconds=args.seconds, random_range=(versions[0], versions[-1])
        )
        floor = run_load(
            f"{url}/v1/checkpoint", token=token, connections=1, seconds=max(2.0, args.seconds / 3)
        )
        if timeline.errors or floor.errors:
            raise SystemExit(f"errors under load: {timeline.error_detail} {floor.error_detail}")
        rounds.append(Round(timeline, floor, os.getloadavg()[0]))
    return rounds


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


async def time_in_process(
    dsn: str, ledger_key: VerifierKey, releases: list[tuple[str, str]], rounds: int
) -> dict[str, list[float]]:
    """The route's work without HTTP: its queries alone, and `release_timeline` (queries and decoding)."""
    store = await PostgresStore.connect(dsn, min_size=1, max_size=2)
    index = PostgresEvidenceIndex(store.pool)
    try:
        holder = _Holder(await load_registry(store, ledger_key), ledger_key)
        out: dict[str, list[float]] = {"timeline queries": [], "release_timeline()": []}
        for turn in range(rounds):
            product, version = releases[turn % len(releases)]
            started = time.perf_counter()
            await index.release_timeline_entries(product, version)
            out["timeline queries"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await release_timeline(store, index, holder, product, version)
            out["release_timeline()"].append((time.perf_counter() - started) * 1000)
        return out
    finally:
        await store.close()


async def explain(dsn: str, release: tuple[str, str]) -> list[str]:
    """EXPLAIN ANALYZE of the timeline's two queries for one release."""
    conn = await asyncpg.connect(dsn)
    try:
        plans = [
            r[0] for r in await conn.fetch(f"EXPLAIN (ANALYZE, COSTS OFF) {RELEASE_CHAIN_SQL}", *release)
        ]
        builds = await conn.fetchval(
            "SELECT array_agg(idx) FROM entries WHERE product = $1 AND version = $2 AND kind = $3",
            *release,
            "https://evledger.dev/build/v1",
        )
        sql = f"EXPLAIN (ANALYZE, COSTS OFF) {UNCHAINED_ABOUT_BUILDS_SQL}"
        return [*plans, "", *[r[0] for r in await conn.fetch(sql, builds)]]
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
    first, last = asyncio.run(sealed_versions(dsn, PRODUCT, ROTATE))
    versions = range(first, last + 1)
    releases = [(PRODUCT, f"{n}.0") for n in versions]
    print(
        f"ledger  : {size:,} entries; timing {len(versions)} sealed releases of {EVENTS_PER_RELEASE} events"
    )
    token = asyncio.run(create_token(dsn, "auditor", []))
    bench = BenchLedger(dsn, ledger_key, key_path, ledger_key, token)
    with running_server(bench, workers=1) as server:
        checked = check_timelines(server.url, token, PRODUCT, versions)
        rounds = time_wrk(server.url, token, PRODUCT, versions, args)
        queries = time_queries(server.url, token, dsn, args.query_rounds)
    split = asyncio.run(time_in_process(dsn, ledger_key.verifier(), releases, 300))
    print("\nGET /v1/releases/{p}/{v}/timeline under wrk, one connection (sequential requests), loopback")
    print(f"round  {'timeline p50/p90/p99/max ms':>30}  {'req/s':>6}  {'floor p50/p99 ms':>17}  load")
    for number, r in enumerate(rounds, 1):
        t, f = r.timeline, r.floor
        figures = f"{t.p50_ms:6.2f} {t.p90_ms:6.2f} {t.p99_ms:6.2f} {t.max_ms:7.2f}"
        print(f"{number:>5}  {figures:>30}  {t.rate:6.0f}  {f.p50_ms:7.2f} {f.p99_ms:8.2f}  {r.load:4.2f}")
    print(
        "(floor: GET /v1/checkpoint, authenticated, the same server right after; load: 1-min average after)"
    )
    print("\nlatency, ms")
    print(row("check: every timeline once (httpx)", checked))
    for name, values in split.items():
        print(row(f"in process: {name}", values))
    print("\nsearch and artifact routes, ms (httpx, sequential; each page continues from the last cursor)")
    for name, values in queries.items():
        print(row(name, values))
    p99s = sorted(r.timeline.p99_ms for r in rounds)
    met = sum(p <= TARGET_P99_MS for p in p99s)
    verdict = "PASS" if p99s[len(p99s) // 2] <= TARGET_P99_MS else "FAIL"
    print(
        f"\ntarget  : p99 <= {TARGET_P99_MS:.0f} ms for a 200-event timeline; p99 by round "
        f"{', '.join(f'{p:.2f}' for p in p99s)} ms: met in {met} of {len(p99s)}; median round {verdict}"
    )
    if args.explain:
        print("\nEXPLAIN ANALYZE, the timeline's queries for", *releases[0])
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
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (timeline, then floor)")
    parser.add_argument("--query-rounds", type=int, default=50, help="requests per search/artifact figure")
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk seconds per timeline run")
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
    # The ledger key outlives the run only with the database (--keep), to reuse both with --dsn.
    key_dir = Path(tempfile.mkdtemp(prefix="evl-bench-timeline-"))
    ledger_key = SignerKey.generate("ledger.bench/timeline")
    key_path = key_dir / "ledger.key"
    key_path.write_text(ledger_key.format() + "\n")
    key_path.chmod(0o600)
    try:
        with scratch_database("timeline", keep=args.keep) as dsn:
            asyncio.run(migrate(dsn))
            asyncio.run(initialise(dsn, ledger_key))
            if args.keep:
                print(f"keeping : --dsn {dsn} --key {key_path}")
            run(dsn, ledger_key, key_path, args)
    finally:
        if not args.keep:
            shutil.rmtree(key_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
