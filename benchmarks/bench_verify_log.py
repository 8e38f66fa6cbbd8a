"""Offline `verify-log` over a log served by the ledger, beside raw Ed25519 verify.

Run: .venv/bin/python benchmarks/bench_verify_log.py [--entries 50000]

It fills a scratch ledger in-process, serves it, and runs `evledger verify-log`
as a separate process against the server, twice: on a quarter of the entries
and on all of them, so the peak memory of the two runs shows whether it is
flat in the log size (the peak of the whole process tree: verify-log and its
signature-checking helpers). Then it copies the full log's tiles into a
directory and verifies that copy with the server stopped (`--tiles DIR`): the
offline case, where no server shares the machine's cores. Raw PyNaCl verify is measured in the same run,
before and after (the better figure is the baseline): on one core, the
baseline docs/architecture.md#performance-targets names, and on every core at once, for comparison.
Targets: >= 10,000 entries/s, >= 60 % of the raw verify rate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import nacl.signing
import psutil
from bench_proofs import fill
from service_harness import prepare_ledger, running_server, scratch_database

from ledger.core.tiles import tiles_for_size

RAW_SECONDS = 1.5


def raw_verify_rate() -> float:
    """Ed25519 verifications per second of a 200-byte message, PyNaCl, this process (best of 3)."""
    key = nacl.signing.SigningKey.generate()
    signed, verifier = key.sign(b"x" * 200), key.verify_key
    best = 0.0
    for _ in range(3):
        count, began = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - began) < RAW_SECONDS / 3:
            for _ in range(500):
                verifier.verify(signed)
            count += 500
        best = max(best, count / elapsed)
    return best


def raw_verify_rate_all_cores() -> float:
    """The same, in one process per core at once: the sum of their rates."""
    cores = os.cpu_count() or 1
    with ProcessPoolExecutor(cores) as pool:
        return sum(pool.map(_raw_verify_rate_in_helper, range(cores)))


def _raw_verify_rate_in_helper(_: int) -> float:
    return raw_verify_rate()


def tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total = 0
    for each in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += each.memory_info().rss
    return total


def download_tiles(url: str, token: str, destination: Path) -> None:
    """Copy the checkpoint, every tile and every entry bundle the server's checkpoint covers."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        note = client.get("/checkpoint").raise_for_status().content
        size = int(note.split(b"\n")[1])
        files = {"checkpoint": note}
        for tile in tiles_for_size(size):
            paths = [tile.path(), tile.entries_path()] if tile.level == 0 else [tile.path()]
            for path in paths:
                files[path] = client.get(f"/{path}").raise_for_status().content
    for path, data in files.items():
        (destination / path).parent.mkdir(parents=True, exist_ok=True)
        (destination / path).write_bytes(data)


def verify_log(*source: str, pub: Path) -> tuple[dict[str, object], float, int]:
    """Run `evledger verify-log --json`; return its report, wall seconds, peak RSS of its tree (sampled)."""
    cli = Path(sys.executable).with_name("evledger")
    began = time.perf_counter()
    child = subprocess.Popen(  # noqa: S603 - our own CLI with arguments we built
        [str(cli), "verify-log", *source, "--key", str(pub), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    watched, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        peak = max(peak, tree_rss(watched))
        time.sleep(0.02)
    out, err = child.communicate()
    wall = time.perf_counter() - began
    if child.returncode != 0:
        raise SystemExit(f"verify-log failed ({child.returncode}): {out!r} {err!r}")
    return json.loads(out), wall, peak


def main() -> None:
    """Fill, serve, verify twice, print the figures beside the raw verify rate."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=50_000)
    args = parser.parse_args()
    print("evidence-ledger benchmark: offline verify-log (issue #3)")
    print(f"command : .venv/bin/python benchmarks/bench_verify_log.py --entries {args.entries}")
    print(f"date    : {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine : os.cpu_count()={os.cpu_count()}, {platform.platform()}")
    print(f"python  : CPython {platform.python_version()}")
    print(f"load avg: {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start\n")
    raw_before = raw_verify_rate()
    rows = []
    with scratch_database("verifylog") as dsn, tempfile.TemporaryDirectory() as scratch:
        ledger = prepare_ledger(dsn, Path(scratch))
        pub = Path(scratch) / "ledger.pub"
        pub.write_text(ledger.ledger_key.verifier().format() + "\n")
        tiles = Path(scratch) / "tiles"
        for size in (args.entries // 4, args.entries):
            fill(ledger, size)
            with running_server(ledger, 1) as server:
                report, wall, peak = verify_log("--server", server.url, "--token", ledger.token, pub=pub)
                if size == args.entries:
                    download_tiles(server.url, ledger.token, tiles)
            rows.append(("server", size, float(str(report["entries_per_second"])), wall, peak))
        report, wall, peak = verify_log("--tiles", str(tiles), pub=pub)
        rows.append(("tiles dir", args.entries, float(str(report["entries_per_second"])), wall, peak))
    raw = max(raw_before, raw_verify_rate())
    raw_all = raw_verify_rate_all_cores()
    print(
        f"raw verify, one core: {raw:,.0f}/s (best of before and after); all {os.cpu_count()} cores: "
        f"{raw_all:,.0f}/s\n"
    )
    print(
        f"{'source':>9}  {'entries':>9}  {'verify-log/s':>12}  {'wall s':>7}  {'peak RSS':>10}  "
        f"{'raw verify/s':>12}  ratio"
    )
    for source, size, rate, wall, peak in rows:
        mib = peak / 2**20
        print(
            f"{source:>9}  {size:>9,}  {rate:>12,.0f}  {wall:>7.1f}  {mib:>6.1f} MiB  {raw:>12,.0f}  "
            f"{rate / raw:.2f}"
        )
    print()
    for source, size, rate, _, _ in rows[1:]:
        print(f"{source}, {size:,} entries:")
        print(f"  target >= 10,000 entries/s: {rate:,.0f} -> {'PASS' if rate >= 10_000 else 'FAIL'}")
        verdict = "PASS" if rate / raw >= 0.6 else "FAIL"
        print(f"  target >= 0.60 of raw verify on one core: {rate / raw:.2f} -> {verdict}")
        print(f"  (against raw verify on all cores: {rate / raw_all:.2f})")
    _, size, _, _, peak = rows[1]
    small_peak = rows[0][4]
    growth = peak / small_peak
    verdict = "PASS" if growth < 1.25 else "FAIL"
    small = f"{small_peak / 2**20:.1f} MiB at {rows[0][1]:,} entries"
    print(f"memory flat in log size (server runs): peak {small},")
    print(f"  {peak / 2**20:.1f} MiB at {size:,} -> {verdict} (x{growth:.2f})")
    print(f"load avg: {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end")


if __name__ == "__main__":
    main()
