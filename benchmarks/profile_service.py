"""Where a service request's time goes: CPU per request (server vs PostgreSQL) and py-spy stacks.

Starts `evledger serve` on a scratch ledger (as bench_service.py does), warms
it up, then runs one bounded wrk load while it

- reads the CPU time (/proc/PID/stat) of the server's worker processes and of
  the PostgreSQL backends connected to the scratch database, before and after,
  and prints CPU microseconds per request for each side;
- records every worker with py-spy (sampling, --nonblocking: the server is not
  paused), when py-spy is available (`--py-spy PATH`, else `py-spy` on PATH;
  install it anywhere, e.g. `python3 -m venv /tmp/spy && /tmp/spy/bin/pip install py-spy`),
  and prints the functions with the most samples: own time, and inclusive
  time for the project's and its libraries' frames.

Run: `.venv/bin/python benchmarks/profile_service.py append|batch|echo [--workers 1] [--seconds 8]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import asyncpg
from bench_core import load, print_table
from bench_service import BATCH_SIZE, make_workload, need
from loadgen import LoadResult, run_load
from service_harness import prepare_ledger, running_server, scratch_database, tree_size

TOP = int(os.environ.get("PROFILE_TOP", "30"))
# Stages of a request, matched in this order against the frames of each sample (first match wins):
STAGES = (
    ("asyncpg pool: reset query on release", "Connection.reset ("),
    ("receipts: tiles read + tile_levels + proof", "build_receipts ("),
    ("sequencer: plan_batch + write + commit", "Sequencer._"),
    ("admission: payload decode + Ed25519 verify", "Appender.admit ("),
    ("token check", "Tokens.authenticate ("),
    ("append handler: body decode, shape check", "append_"),
    ("read handlers", "routes_read.py"),
    ("HTTP server + Litestar (the rest)", ""),
)
INTERESTING = ("ledger/", "cli/", "asyncpg/", "litestar/", "nacl/", "msgspec", "granian/", "asyncio/")
WORKLOADS = {  # name: (path, uses the batch body, clients)
    "echo": ("/_bench/echo", False, 64),
    "append": ("/v1/entries", False, 64),
    "batch": ("/v1/entries/batch", True, 4),
}


def child_pids(pid: int) -> list[int]:
    """The direct children of `pid` (the server's worker processes)."""
    command = ["ps", "-o", "pid=", "--ppid", str(pid)]
    out = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - procps ps
    return [int(x) for x in out.stdout.split()]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def backend_pids(dsn: str) -> list[int]:
    """PostgreSQL backends connected to this database, other than the one asking."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [r[0] for r in rows]
    finally:
        await conn.close()


def frame_name(frame: str) -> str:
    """`function (path:line)` with the path shortened to its package-relative part."""
    return re.sub(r"\((?:/\S*?/)?(site-packages/|lib/python3\.\d+/|main/)", "(", frame)


def summarise(recordings: list[str], us_per_request: float) -> None:
    """Print time per stage, then the top frames by own samples and by inclusive samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    total = 0
    for recording in recordings:
        for line in recording.splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack:
                continue
            n = int(count)
            total += n
            frames = [frame_name(f) for f in stack.split(";")]
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
            joined = ";".join(frames)
            stages[next(label for label, pattern in STAGES if pattern in joined)] += n
    if not total:
        print("py-spy recorded no samples")
        return
    print(f"py-spy: {total} samples (100 Hz per worker; idle time in the event loop is not sampled)")
    print("server CPU per request by stage (share of samples x server CPU us/request):")
    print_table(
        ["stage", "share", "us/request"],
        [
            [label, f"{100 * stages[label] / total:.1f}%", f"{us_per_request * stages[label] / total:,.0f}"]
            for label, _ in STAGES
        ],
    )
    print_table(["own time", "function"], [[f"{100 * n / total:.1f}%", f] for f, n in own.most_common(TOP)])
    rows = [
        [f"{100 * n / total:.1f}%", f]
        for f, n in inclusive.most_common()
        if any(tag in f for tag in INTERESTING)
    ][:TOP]
    print_table(["inclusive", "function"], rows)


async def checkpoint_count(dsn: str) -> int:
    """How many checkpoints the ledger has issued: one per sequencer batch."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM checkpoints"))
    finally:
        await conn.close()


def main() -> None:
    """Profile one workload against one server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=8, help="length of the profiled load run")
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="py-spy executable (optional)")
    parser.add_argument("--save", type=Path, help="write the raw py-spy stacks (collapsed) to this file")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="server environment")
    args = parser.parse_args()
    path, batch, clients = WORKLOADS[args.workload]
    env = dict(item.split("=", 1) for item in args.env)
    print(f"profile: {args.workload} ({path}), --workers {args.workers}, {clients} clients, {args.seconds} s")
    print(f"load avg: {load()} at start")
    with tempfile.TemporaryDirectory(prefix="evl-prof-") as tmp, scratch_database("prof") as dsn:
        directory = Path(tmp)
        ledger = prepare_ledger(dsn, directory)
        work = make_workload(ledger, directory)

        def bodies(seconds: float) -> Path:
            """Fresh bodies for a run of `seconds` (a repeated statement would be a replay, not an append)."""
            if batch:
                return work.batch(need(25, seconds, clients))
            return work.single(need(10_000, seconds, clients))

        with running_server(ledger, args.workers, env) as server:
            url = server.url + path
            warm = bodies(3)
            run_load(url, method="POST", body_file=warm, token=ledger.token, connections=clients, seconds=3)
            body = bodies(args.seconds)
            workers = child_pids(server.pid)
            backends = asyncio.run(backend_pids(dsn))
            spies = []
            if args.py_spy:
                for pid in workers:
                    out = directory / f"spy-{pid}.txt"
                    command = [args.py_spy, "record", "-p", str(pid), "-d", str(args.seconds), "-r", "100"]
                    command += ["--nonblocking", "-f", "raw", "-o", str(out)]
                    spy = subprocess.Popen(  # noqa: S603 - py-spy, as the user named it
                        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                    )
                    spies.append((out, spy))
            size0, batches0 = asyncio.run(tree_size(dsn)), asyncio.run(checkpoint_count(dsn))
            server0, pg0 = cpu_seconds(workers), cpu_seconds(backends)
            result = run_load(
                url,
                method="POST",
                body_file=body,
                token=ledger.token,
                connections=clients,
                seconds=args.seconds,
            )
            server1, pg1 = cpu_seconds(workers), cpu_seconds(backends)
            grown = asyncio.run(tree_size(dsn)) - size0
            batches = asyncio.run(checkpoint_count(dsn)) - batches0
            for _, spy in spies:
                spy.wait(timeout=args.seconds + 30)
        stacks = {out.name: out.read_text() for out, _ in spies if out.exists()}
    entries = result.requests * (BATCH_SIZE if batch else 1) if path != "/_bench/echo" else 0
    per = max(result.requests, 1)
    server_cpu, pg_cpu = server1 - server0, pg1 - pg0
    report(result, grown=grown, batches=batches, entries=entries, server_cpu=server_cpu, pg_cpu=pg_cpu)
    if args.save:
        args.save.write_text("".join(stacks.values()))
    if spies:
        summarise(list(stacks.values()), server_cpu / per * 1e6)


def report(  # noqa: PLR0913 - the figures of one run, each printed
    result: LoadResult, *, grown: int, batches: int, entries: int, server_cpu: float, pg_cpu: float
) -> None:
    """Print the load run's rate, the CPU per request on each side and the sequencer's batch size."""
    per = max(result.requests, 1)
    print(
        f"{result.requests:,} requests in {result.seconds:.1f} s = {result.rate:,.0f}/s; "
        f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms; errors {result.errors}; "
        f"log grew {grown:,} ({entries:,} acknowledged)"
    )
    print(
        f"CPU: server workers {server_cpu:.2f} s = {server_cpu / result.seconds:.2f} cores, "
        f"{server_cpu / per * 1e6:,.0f} us/request; PostgreSQL backends of this database "
        f"{pg_cpu:.2f} s = {pg_cpu / result.seconds:.2f} cores, {pg_cpu / per * 1e6:,.0f} us/request"
    )
    print(f"  (py-spy itself adds some server CPU while it samples); load avg {load()} at end")
    if batches:
        print(f"sequencer: {batches:,} batches (one checkpoint each), {grown / batches:,.1f} entries a batch")
    print()


if __name__ == "__main__":
    main()
