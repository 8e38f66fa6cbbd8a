"""Availability benchmark (issue #9, items 8-10): each figure beside its same-run baseline.

One `evledger serve --workers 2` with its default limits (docs/deployment.md), on a
scratch ledger:

1. Slow clients. A probe client alternates a read (GET /v1/checkpoint) and a
   single-envelope append, one after the other, and reports its success rate and
   latencies: without attack (the baseline), during a slowloris of 1,100 half-open
   connections, and during 1,100 slow bodies sent with a valid appender token
   (benchmarks/slow_clients.py, in a process of its own).
2. Memory. 16 concurrent batches of 1,000 envelopes of 54 KB (54 MB a body): each
   worker's resident memory at its peak (VmHWM) and 3 s after, beside its idle size
   and its bound (idle + 3.5 x the body budget), and the answers (201, or 503 with
   Retry-After).
3. Outage. With the probe running, the ledger's database refuses connections
   (ALLOW_CONNECTIONS false) and its sessions are terminated (pg_terminate_backend),
   as in a restart, for OUTAGE_SECONDS; then it takes connections again. Status
   counts before, during and after (no 500), and the time from the database's return
   to the first ready /readyz and the first successful append.

Run: `.venv/bin/python benchmarks/bench_availability.py [--seconds 15]` (about 2.5 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import asyncpg
import httpx
import msgspec
from bench_core import cpu_model, load, print_table
from service_harness import (
    PRODUCT,
    BenchLedger,
    Server,
    evidence,
    prepare_ledger,
    running_server,
    scratch_database,
)

from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.service.limits import MIB, Limits

ATTACK_CONNECTIONS = 1100
BATCHES, BATCH_SIZE, PAD = 16, 1000, 40_000  # 1,000 envelopes of 54 KB a batch
OUTAGE_SECONDS = 10.0
MEMORY_FACTOR = 3.5  # documented bound: idle + 3.5 x body budget per worker
HERE = Path(__file__).resolve().parent
TERMINATE_SQL = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1"


# --- the probe ---------------------------------------------------------------------------------


# Evidence numbers of every probe of the run: the ledger records a signed statement once, so a
# probe that sent an earlier probe's statement again would get its original receipt (200), not an append.
_PROBE_NUMBERS = itertools.count(10_000_000)


class Probe:
    """One client: a read, then an append, then a read, ...; every answer and latency kept."""

    def __init__(self, url: str, ledger: BenchLedger) -> None:
        """Probe `url` with the ledger's appender token."""
        self.url, self.ledger = url, ledger
        self.numbers = _PROBE_NUMBERS
        self.answers: list[tuple[float, str, float]] = []  # (when, status or error, seconds)
        self.stop = threading.Event()

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.ledger.token}"}
        async with httpx.AsyncClient(base_url=self.url, timeout=5.0, headers=headers) as client:
            append = False
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    if append:
                        body = msgspec.json.encode(evidence(self.ledger.appender, next(self.numbers)))
                        response = await client.post("/v1/entries", content=body)
                    else:
                        response = await client.get("/v1/checkpoint")
                    status = str(response.status_code)
                    if response.status_code == 503 and "retry-after" not in response.headers:
                        status = "503 without Retry-After"
                    if append and response.status_code == 200:
                        status = "200 replay, not an append"  # never a success of the probe
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                self.answers.append((started, status, time.monotonic() - started))
                append = not append
                await asyncio.sleep(0.02)

    def __enter__(self) -> Self:
        """Start probing in a thread of its own."""
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        """Stop probing."""
        self.stop.set()
        self._thread.join(timeout=10)

    def between(self, start: float, end: float) -> list[tuple[float, str, float]]:
        """The answers to requests sent in [start, end)."""
        return [a for a in self.answers if start <= a[0] < end]


def summary(answers: list[tuple[float, str, float]]) -> list[str]:
    """Requests, success rate, p50, p99 and max latency (ms) of probe answers."""
    ok = [a for a in answers if a[1] in {"200", "201"}]
    latencies = sorted(a[2] for a in answers)
    if not latencies:
        return ["0", "-", "-", "-", "-"]

    def pct(p: float) -> str:
        return f"{latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000:.1f}"

    return [str(len(answers)), f"{100 * len(ok) / len(answers):.1f} %", pct(0.5), pct(0.99), pct(1.0)]


# --- 1. slow clients ---------------------------------------------------------------------------


def slow_clients(server: Server, ledger: BenchLedger, seconds: float) -> None:
    """The probe without attack, during a slowloris, during slow bodies with a token."""
    port = server.url.rsplit(":", 1)[1]
    rows, attacks = [], []
    with Probe(server.url, ledger) as probe:
        for mode in ("none", "headers", "bodies"):
            attacker = None
            if mode != "none":
                command = [sys.executable, str(HERE / "slow_clients.py"), mode, port, str(seconds + 2)]
                command += ["--connections", str(ATTACK_CONNECTIONS), "--token", ledger.token]
                attacker = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603 - our script
                time.sleep(2.0)  # the attack is in place
            start = time.monotonic()
            time.sleep(seconds)
            rows.append(
                [
                    {"none": "no attack (baseline)", "headers": "slowloris", "bodies": "slow bodies"}[mode],
                    *summary(probe.between(start, time.monotonic())),
                ]
            )
            if attacker is not None:
                out, _ = attacker.communicate(timeout=60)
                attacks.append(json.loads(out))
    print(f"1. slow clients: {ATTACK_CONNECTIONS:,} connections, {seconds:.0f} s each; probe = read + append")
    print_table(["probe during", "requests", "success", "p50 ms", "p99 ms", "max ms"], rows)
    attack_rows = [
        [
            a["mode"],
            f"{a['opened']:,}",
            f"{a['closed_by_server']:,}",
            str(a["refused"]),
            json.dumps(a["answers"]),
        ]
        for a in attacks
    ]
    print_table(["attack", "opened", "closed by server", "refused", "answers"], attack_rows)


# --- 2. memory ---------------------------------------------------------------------------------


def _status(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def workers_of(server: Server) -> list[int]:
    """Granian's worker processes (children of the server's main process)."""
    pids: list[int] = []
    for task in Path(f"/proc/{server.pid}/task").iterdir():
        pids += [int(c) for c in (task / "children").read_text().split()]
    return sorted(pids)


def big_batches(ledger: BenchLedger) -> list[bytes]:
    """BATCHES bodies of BATCH_SIZE envelopes, each with a PAD-byte padded statement (54 KB signed)."""
    bodies = []
    for b in range(BATCHES):
        envelopes = []
        for n in range(b * BATCH_SIZE, (b + 1) * BATCH_SIZE):
            statement = {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": f"dist/big-{n}.bin", "digest": {"sha256": f"{n:064x}"}}],
                "predicateType": "https://evledger.example/blob/v1",
                "predicate": {"release": {"product": PRODUCT, "version": "9.0"}, "pad": "x" * PAD},
            }
            signed = sign_envelope(INTOTO_PAYLOAD_TYPE, msgspec.json.encode(statement), [ledger.appender])
            envelopes.append(msgspec.json.encode(signed))
        bodies.append(b'{"envelopes":[' + b",".join(envelopes) + b"]}")
    return bodies


def memory(server: Server, ledger: BenchLedger, bodies: list[bytes]) -> None:
    """Worker memory during BATCHES concurrent big batches, beside idle and the configured bound."""
    limits = Limits.from_env(os.environ)
    workers = workers_of(server)
    idle = {w: _status(w, "VmRSS") for w in workers}
    headers = {"Authorization": f"Bearer {ledger.token}"}

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=300, headers=headers) as client:
            return await asyncio.gather(*(client.post("/v1/entries/batch", content=b) for b in bodies))

    started = time.monotonic()
    responses = asyncio.run(send())
    elapsed = time.monotonic() - started
    peak = {w: _status(w, "VmHWM") for w in workers}
    time.sleep(3.0)
    after = {w: _status(w, "VmRSS") for w in workers}
    answers = Counter(
        f"{r.status_code}" + (" + Retry-After" if "retry-after" in r.headers else "") for r in responses
    )
    size = len(bodies[0]) / 1e6
    print(f"2. memory: {BATCHES} concurrent batches of {BATCH_SIZE:,} x 54 KB ({size:.1f} MB each)")
    print(f"   answered in {elapsed:.1f} s: {dict(answers)}")
    budget, queue = limits.body_budget / MIB, limits.queue_bytes / MIB
    print(f"   limits per worker: body budget {budget:.0f} MiB, queue {queue:.0f} MiB")
    rows = []
    for w in workers:
        bound = idle[w] + MEMORY_FACTOR * limits.body_budget / MIB
        rows.append(
            [
                f"worker {w}",
                f"{idle[w]:.0f}",
                f"{peak[w]:.0f}",
                f"{bound:.0f}",
                f"{(peak[w] - idle[w]) / (limits.body_budget / MIB):.2f}",
                f"{after[w]:.0f}",
                "within" if peak[w] <= bound else "OVER",
            ]
        )
    header = [
        "",
        "idle MiB",
        "peak MiB",
        f"bound (idle + {MEMORY_FACTOR} x budget)",
        "(peak - idle) / budget",
    ]
    print_table([*header, "3 s after MiB", "verdict"], rows)


# --- 3. outage ---------------------------------------------------------------------------------


async def _on_maintenance(dsn: str, sql: str, *args: object) -> None:
    """One statement on the server's maintenance database (the ledger's may refuse connections)."""
    maintenance = dsn.rsplit("/", 1)[0] + "/postgres"
    conn = await asyncpg.connect(maintenance)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


def outage(server: Server, ledger: BenchLedger) -> None:
    """Status counts before, during and after the database refuses connections; time to recover."""
    name = ledger.dsn.rsplit("/", 1)[1]
    # /readyz with a token: harmless once the probes need none.
    auth = {"Authorization": f"Bearer {ledger.token}"}
    with (
        Probe(server.url, ledger) as probe,
        httpx.Client(base_url=server.url, timeout=5, headers=auth) as client,
    ):
        time.sleep(3.0)
        down = time.monotonic()
        asyncio.run(_on_maintenance(ledger.dsn, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        asyncio.run(_on_maintenance(ledger.dsn, TERMINATE_SQL, name))
        readyz: Counter[int] = Counter()
        while time.monotonic() < down + OUTAGE_SECONDS:
            readyz[client.get("/readyz").status_code] += 1
            time.sleep(0.2)
        up = time.monotonic()
        asyncio.run(_on_maintenance(ledger.dsn, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        ready_after = None
        while ready_after is None and time.monotonic() < up + 30:
            if client.get("/readyz").status_code == 200:
                ready_after = time.monotonic() - up
            time.sleep(0.05)
        time.sleep(3.0)
    appended = [a for a in probe.between(up, time.monotonic()) if a[1] == "201"]
    append_after = appended[0][0] + appended[0][2] - up if appended else None
    rows = []
    for label, (start, end) in {
        "before": (0.0, down),
        "during": (down, up),
        "after": (up, time.monotonic()),
    }.items():
        counts = Counter(a[1] for a in probe.between(start, end))
        rows.append([label, *summary(probe.between(start, end)), json.dumps(dict(sorted(counts.items())))])
    print(f"3. outage: the database refuses connections, its sessions terminated, for {OUTAGE_SECONDS:.0f} s")
    print_table(["probe", "requests", "success", "p50 ms", "p99 ms", "max ms", "statuses"], rows)
    print(f"   /readyz during: {dict(readyz)}")
    ready = f"{ready_after:.2f} s" if ready_after is not None else "not within 30 s"
    first = f"{append_after:.2f} s" if append_after is not None else "none"
    print(f"   once the database is back: /readyz 200 after {ready}, first acknowledged append after {first}")
    print()


def main() -> None:
    """Run the three parts and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds of probing per attack phase")
    args = parser.parse_args()
    began = time.perf_counter()
    print("evidence-ledger availability benchmark (issue #9)")
    print(f"command : {shlex.join(sys.orig_argv)}")
    print(f"date    : {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}")
    print(
        f"machine : os.cpu_count()={os.cpu_count()}, {cpu_model()}, {platform.platform()}, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    print("server  : evledger serve --workers 2, default limits (docs/deployment.md)")
    print(f"load avg: {load()} (1/5/15 min) at start")
    print()
    with tempfile.TemporaryDirectory(prefix="evl-bench-") as tmp, scratch_database("avail") as dsn:
        ledger = prepare_ledger(dsn, Path(tmp))
        bodies = big_batches(ledger)
        with running_server(ledger, 2) as server:
            slow_clients(server, ledger, args.seconds)
            memory(server, ledger, bodies)
            del bodies
            outage(server, ledger)
    print(f"load avg: {load()} (1/5/15 min) at end; wall time {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
