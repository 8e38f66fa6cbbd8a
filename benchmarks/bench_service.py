"""Service benchmark (issue #3): appends over HTTP, each beside a baseline measured in the same run.

Figures (docs/architecture.md#performance-targets), for `evledger serve --workers N` with N = 1 and 2:

- single-envelope appends, `POST /v1/entries`, 64 keep-alive clients, each
  answered with a durable receipt (inclusion proof + signed checkpoint),
  beside the same server's trivial POST (`POST /_bench/echo`, the same body,
  decoded into the same typed Envelope, no database) and beside a naive
  append: one transaction per envelope, no group commit;
- batch appends, `POST /v1/entries/batch` with 1,000 envelopes a request,
  beside the raw PyNaCl `VerifyKey.verify` rate on one core (every envelope's
  signature must be verified, so this is the limit one process can reach).

The naive baseline runs in this process, without HTTP: 64 concurrent callers,
each with its own `ledger.append.sequencer.Sequencer` (`max_batch=1`, `max_delay=0`)
on one pool of 10 connections (the service's default), so every append is the
product's own transaction (SELECT head FOR UPDATE, plan_batch: encode, hash,
extend the tree, sign the checkpoint; write entry, tiles, checkpoint, head;
commit) for one envelope, after the same signature check. It builds no receipt
and pays no HTTP: the baseline is favoured, so the 10x ratio is conservative.

Method: the load generator is wrk (benchmarks/loadgen.py, a separate C process,
closed loop, HTTP/1.1 keep-alive); every run is bounded in time. After a
warm-up, each figure is measured in REPETITIONS rounds, interleaved with its
baselines (round 1 of every figure, then round 2, ...), and the round with the
best rate is kept, with its latencies; every round's rate is printed too.
Appends are checked against the database: the log must have grown by at least
the number of successful responses. After each append run the benchmark waits
until the log stops growing (requests still in flight when wrk stops are
finished by the server), so that work does not leak into the next figure. Scratch databases `evl_bench_*` are
created on EVLEDGER_BENCH_DSN (default postgresql://postgres@127.0.0.1:5432/test)
and dropped at the end.

Run: `.venv/bin/python benchmarks/bench_service.py [--workers 1 2] [--seconds 4]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import nacl
import nacl.signing
import uvloop
from bench_core import cpu_model, fmt, load, print_table, repeat_batch, timed_rate
from loadgen import LoadResult, run_load, wrk_binary
from service_harness import (
    BenchLedger,
    UniqueEvidence,
    admit_now,
    local_sequencers,
    prepare_ledger,
    running_server,
    scratch_database,
    server_dsn,
    settled_size,
    tree_size,
)

from ledger.append.batch import PendingRequest
from ledger.append.sequencer import Sequencer
from ledger.core.dsse import Envelope, pae
from ledger.service.app import Settings

REPETITIONS = 3
BATCH_SIZE = 1000
VERIFY_BATCH = 200
TARGET_APPENDS = 4000.0  # appends/s
TARGET_APPEND_P99_MS = 50.0
TARGET_VS_TRIVIAL = 0.50
TARGET_VS_NAIVE = 10.0
TARGET_BATCH = 15_000.0  # entries/s
TARGET_BATCH_VS_VERIFY = 0.60


@dataclass(slots=True)
class Figure:
    """The rounds of one figure; `best` is the round with the highest rate."""

    rounds: list[LoadResult] = field(default_factory=list)
    appended: list[int] = field(default_factory=list)  # log growth per round, for appends

    @property
    def best(self) -> LoadResult:
        """The round with the highest rate."""
        return max(self.rounds, key=lambda r: r.rate)

    def rates(self, scale: float = 1.0) -> str:
        """Every round's rate, in order."""
        return " ".join(fmt(r.rate * scale) for r in self.rounds)


@dataclass(slots=True)
class Workload:
    """Fresh request bodies for every round, and the raw verify baseline.

    The ledger records a signed statement once and answers a repeat with its original
    entry, so no body is ever sent twice: each round gets bodies numbered afresh, as
    many as its rate could use (`need`). Envelope n is evidence about artifact n of
    release 1.<n % RELEASES>, so every release's chain grows evenly.
    """

    directory: Path
    evidence: UniqueEvidence
    single_bytes: int
    batch_bytes: int
    verify: Callable[[], int]
    files: int = 0

    def _file(self, lines: list[bytes]) -> Path:
        self.files += 1
        path = self.directory / f"bodies-{self.files}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        return path

    def single(self, count: int) -> Path:
        """A body file of `count` single-envelope bodies never sent before (one per line)."""
        return self._file(self.evidence.bodies(count))

    def batch(self, requests: int) -> Path:
        """A body file of `requests` batches of BATCH_SIZE envelopes never sent before (one per line)."""
        bodies = self.evidence.bodies(requests * BATCH_SIZE)
        return self._file(
            [
                b'{"envelopes":[' + b",".join(bodies[n : n + BATCH_SIZE]) + b"]}"
                for n in range(0, len(bodies), BATCH_SIZE)
            ]
        )

    def envelopes(self, count: int) -> list[Envelope]:
        """`count` envelopes never sent before, for the in-process naive baseline."""
        return self.evidence.envelopes(count)


def need(rate: float, seconds: float, clients: int) -> int:
    """Bodies a round of `seconds` may send: twice the best rate seen, plus one in flight per client."""
    return math.ceil(2 * rate * seconds) + 2 * clients


def make_workload(ledger: BenchLedger, directory: Path, per_artifact: int = 1) -> Workload:
    """The body source of the run, and the raw verify rate of one of its envelopes."""
    evidence = UniqueEvidence(ledger.appender, per_artifact=per_artifact)
    sample = evidence.envelopes(1)[0]
    message = pae(sample.payload_type, base64.b64decode(sample.payload))
    signature = base64.b64decode(sample.signatures[0].sig)
    key = nacl.signing.VerifyKey(ledger.appender.verifier().public_key)
    key.verify(message, signature)
    single = len(msgspec.json.encode(sample))
    return Workload(
        directory,
        evidence,
        single,
        len(b'{"envelopes":[]}') + BATCH_SIZE * (single + 1),
        repeat_batch(lambda: key.verify(message, signature), VERIFY_BATCH),
    )


# --- the naive baseline ------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of already sorted values, nearest rank."""
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def _naive(
    ledger: BenchLedger, envelopes: Sequence[Envelope], seconds: float, callers: int, pool: int
) -> LoadResult:
    async with local_sequencers(
        ledger.dsn, ledger.ledger_key, count=callers, max_batch=1, pool_size=pool
    ) as sequencers:
        latencies: list[float] = []
        start = time.perf_counter()
        deadline = start + seconds

        async def caller(sequencer: Sequencer, turn: int) -> None:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                envelope = envelopes[turn % len(envelopes)]  # `envelopes` outnumber the appends
                await sequencer.append(PendingRequest([admit_now(sequencer, envelope)]))
                latencies.append(time.perf_counter() - began)
                turn += 1

        await asyncio.gather(*(caller(s, i) for i, s in enumerate(sequencers)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return LoadResult(
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=percentile(latencies, 0.50) * 1e3,
        p90_ms=percentile(latencies, 0.90) * 1e3,
        p99_ms=percentile(latencies, 0.99) * 1e3,
        max_ms=latencies[-1] * 1e3,
        mean_ms=sum(latencies) / len(latencies) * 1e3,
        errors=0,
        error_detail="",
    )


def naive_round(
    ledger: BenchLedger, envelopes: Sequence[Envelope], seconds: float, callers: int, pool: int
) -> LoadResult:
    """One bounded round of naive appends (uvloop, like the server)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_naive(ledger, envelopes, seconds, callers, pool))


# --- one server --------------------------------------------------------------------------------


@dataclass(slots=True)
class ServerRun:
    """Every figure measured against one server (one --workers setting)."""

    workers: int
    command: str
    echo: Figure = field(default_factory=Figure)
    append: Figure = field(default_factory=Figure)
    naive: Figure = field(default_factory=Figure)
    batch: Figure = field(default_factory=Figure)
    verify: list[float] = field(default_factory=list)


def measure_server(  # noqa: PLR0913 - the run's inputs, each distinct
    ledger: BenchLedger,
    naive_ledger: BenchLedger,
    work: Workload,
    *,
    workers: int,
    args: argparse.Namespace,
    env: dict[str, str],
) -> ServerRun:
    """Start a server, warm it up, then measure every figure in interleaved rounds; stop the server."""
    seconds: float = args.seconds
    with running_server(ledger, workers, env) as server:
        run = ServerRun(workers, server.command)

        def http(path: str, body: Path, clients: int, secs: float) -> LoadResult:
            return run_load(
                server.url + path,
                method="POST",
                body_file=body,
                token=ledger.token,
                connections=clients,
                seconds=secs,
            )

        def appended(path: str, body: Path, clients: int, secs: float, figure: Figure) -> None:
            before = asyncio.run(settled_size(ledger.dsn))
            figure.rounds.append(http(path, body, clients, secs))
            figure.appended.append(asyncio.run(settled_size(ledger.dsn)) - before)

        # Warm-up, with bodies for generous rates; each round then gets twice its best rate's worth.
        http("/_bench/echo", work.single(100), args.clients, 1)
        single_rate = http("/v1/entries", work.single(need(10_000, 2, args.clients)), args.clients, 2).rate
        batch_rate = http(
            "/v1/entries/batch", work.batch(need(25, 3, args.batch_clients)), args.batch_clients, 3
        ).rate
        asyncio.run(settled_size(ledger.dsn))
        naive_rate = naive_round(
            naive_ledger, work.envelopes(need(2_000, 1, args.clients)), 1, args.clients, args.naive_pool
        ).rate
        for _ in range(REPETITIONS):
            run.echo.rounds.append(http("/_bench/echo", work.single(100), args.clients, seconds))
            single_rate = max([single_rate, *(r.rate for r in run.append.rounds)])
            body = work.single(need(single_rate, seconds, args.clients))
            appended("/v1/entries", body, args.clients, seconds, run.append)
            naive_rate = max([naive_rate, *(r.rate for r in run.naive.rounds)])
            envelopes = work.envelopes(need(naive_rate, seconds, args.clients))
            run.naive.rounds.append(
                naive_round(naive_ledger, envelopes, seconds, args.clients, args.naive_pool)
            )
            run.verify.append(timed_rate(work.verify, 1.0))
            batch_rate = max([batch_rate, *(r.rate for r in run.batch.rounds)])
            body = work.batch(need(batch_rate, seconds * 1.5, args.batch_clients))
            appended("/v1/entries/batch", body, args.batch_clients, seconds * 1.5, run.batch)
    return run


# --- report ------------------------------------------------------------------------------------


def ms(value: float) -> str:
    """Milliseconds, two decimals."""
    return f"{value:.2f}"


def check_appends(figure: Figure, per_request: int) -> str:
    """Whether the log grew by at least the successful responses' entries, per round."""
    notes = []
    for result, grown in zip(figure.rounds, figure.appended, strict=True):
        ok = (result.requests - result.errors) * per_request
        notes.append(f"{grown}>={ok}" if grown >= ok else f"{grown}<{ok}!")
    errors = sum(r.errors for r in figure.rounds)
    return f"log grew {' '.join(notes)}; {errors} errors"


def print_server(run: ServerRun, work: Workload, args: argparse.Namespace) -> None:
    """The measured figures of one server, best round with its latencies, every round's rate."""
    print(
        f"--workers {run.workers}: {run.command}\n"
        f"  {args.clients} clients for single appends and echo, {args.batch_clients} for batches; "
        f"best of {REPETITIONS} rounds of {args.seconds:g} s ({args.seconds * 1.5:g} s for batches)"
    )
    rows = []
    for label, figure, scale, check in (
        (f"POST /_bench/echo (trivial, {work.single_bytes} B)", run.echo, 1, "no database"),
        ("POST /v1/entries (1 envelope, receipt)", run.append, 1, check_appends(run.append, 1)),
        ("naive: 1 transaction per append", run.naive, 1, "in-process, no HTTP, no receipt"),
        (
            f"POST /v1/entries/batch ({BATCH_SIZE:,} envelopes)",
            run.batch,
            1,
            check_appends(run.batch, BATCH_SIZE),
        ),
        ("  the same, in entries", run.batch, BATCH_SIZE, f"{work.batch_bytes:,} B request body"),
    ):
        best = figure.best
        rows.append(
            [
                label,
                fmt(best.rate * scale),
                ms(best.p50_ms),
                ms(best.p99_ms),
                ms(best.max_ms),
                figure.rates(scale),
                check,
            ]
        )
    verify_rounds = " ".join(fmt(v) for v in run.verify)
    rows.append(
        ["nacl VerifyKey.verify, 1 core", fmt(max(run.verify)), "", "", "", verify_rounds, "this process"]
    )
    print_table(["figure", "rate/s", "p50 ms", "p99 ms", "max ms", "every round /s", "checked"], rows)


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


def per_round(figure: Figure, baseline: Figure, scale: float = 1.0) -> str:
    """The figure's rate over its baseline's, round by round (each pair measured within a minute)."""
    return " ".join(
        f"{r.rate * scale / b.rate:.2f}" for r, b in zip(figure.rounds, baseline.rounds, strict=True)
    )


def verify_figure(run: ServerRun) -> Figure:
    """The raw verify rates as a Figure of one-second rounds (for per-round ratios)."""
    return Figure([LoadResult(round(v), 1.0, 0, 0, 0, 0, 0, 0, "") for v in run.verify])


def target_rows(run: ServerRun) -> list[list[str]]:
    """One row per docs/architecture.md#performance-targets target, measured beside its same-run baseline."""
    append, echo, naive, batch = run.append.best, run.echo.best, run.naive.best, run.batch.best
    batch_rate = batch.rate * BATCH_SIZE
    verify = max(run.verify)
    w = str(run.workers)
    return [
        [w, "appends/s, 64 clients", fmt(append.rate), "", "", "", "", f">= {fmt(TARGET_APPENDS)}"],
        [
            w,
            "append p99 latency, ms",
            ms(append.p99_ms),
            "trivial POST p99",
            ms(echo.p99_ms),
            f"{append.p99_ms / echo.p99_ms:.2f}",
            "",
            f"<= {TARGET_APPEND_P99_MS:g}",
        ],
        [
            w,
            "appends / trivial POST",
            fmt(append.rate),
            "POST /_bench/echo",
            fmt(echo.rate),
            f"{append.rate / echo.rate:.2f}",
            per_round(run.append, run.echo),
            f">= {TARGET_VS_TRIVIAL:.2f}",
        ],
        [
            w,
            "appends / naive",
            fmt(append.rate),
            "1 txn per append",
            fmt(naive.rate),
            f"{append.rate / naive.rate:.2f}",
            per_round(run.append, run.naive),
            f">= {TARGET_VS_NAIVE:g}",
        ],
        [w, "batch entries/s", fmt(batch_rate), "", "", "", "", f">= {fmt(TARGET_BATCH)}"],
        [
            w,
            "batch entries / raw verify",
            fmt(batch_rate),
            "nacl verify, 1 core",
            fmt(verify),
            f"{batch_rate / verify:.2f}",
            per_round(run.batch, verify_figure(run), BATCH_SIZE),
            f">= {TARGET_BATCH_VS_VERIFY:.2f}",
        ],
    ]


def target_verdicts(run: ServerRun) -> list[bool]:
    """Whether each target row of `target_rows` is met, in the same order."""
    append, echo, naive = run.append.best, run.echo.best, run.naive.best
    batch_rate = run.batch.best.rate * BATCH_SIZE
    return [
        append.rate >= TARGET_APPENDS,
        append.p99_ms <= TARGET_APPEND_P99_MS,
        append.rate / echo.rate >= TARGET_VS_TRIVIAL,
        append.rate / naive.rate >= TARGET_VS_NAIVE,
        batch_rate >= TARGET_BATCH,
        batch_rate / max(run.verify) >= TARGET_BATCH_VS_VERIFY,
    ]


def print_header(env: dict[str, str]) -> None:
    """What was run, where, when, how, and the load at the start."""
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    knobs = {
        f"EVLEDGER_{name.upper()}": env.get(f"EVLEDGER_{name.upper()}", str(defaults[name]))
        for name in ("pool_size", "max_batch", "max_delay")
    }
    wrk = subprocess.run([wrk_binary(), "--version"], capture_output=True, text=True, check=False)  # noqa: S603 - wrk
    wrk_version = (wrk.stdout or wrk.stderr).split("[")[0].strip()
    print("evidence-ledger service benchmark: appends (issue #3)")
    print(f"command : {shlex.join(sys.orig_argv)}")
    print(f"date    : {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}")
    print(
        f"machine : os.cpu_count()={os.cpu_count()}, {cpu_model()}, {platform.platform()}, "
        f"{platform.python_implementation()} {platform.python_version()}, PyNaCl {nacl.__version__}"
    )
    print(f"load gen: {wrk_version}, 1 thread, closed loop, keep-alive (benchmarks/loadgen.py)")
    print(f"server  : {' '.join(f'{k}={v}' for k, v in knobs.items())}; PostgreSQL at {server_dsn()}")
    print(f"load avg: {load()} (1/5/15 min) at start")
    print()


def main() -> None:
    """Measure every figure for each --workers setting and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="server workers (default 1 2)")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per round (batches 1.5x)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients for single appends")
    parser.add_argument("--batch-clients", type=int, default=4, help="concurrent clients for batches")
    parser.add_argument("--naive-pool", type=int, default=10, help="connections of the naive baseline")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="server environment (tuning)"
    )
    parser.add_argument(
        "--entries-per-artifact",
        type=int,
        default=1,
        help="consecutive envelopes naming one artifact (default 1: each a new artifact chain)",
    )
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    started = time.perf_counter()
    print_header(env)
    runs: list[ServerRun] = []
    with (
        tempfile.TemporaryDirectory(prefix="evl-bench-") as tmp,
        scratch_database("svc") as dsn,
        scratch_database("naive") as naive_dsn,
    ):
        directory = Path(tmp)
        ledger = prepare_ledger(dsn, directory)
        naive_ledger = prepare_ledger(naive_dsn, directory, ledger.appender)
        work = make_workload(ledger, directory, args.entries_per_artifact)
        for workers in args.workers:
            run = measure_server(ledger, naive_ledger, work, workers=workers, args=args, env=env)
            print_server(run, work, args)
            runs.append(run)
        final_size = asyncio.run(tree_size(dsn))
    print("targets (docs/architecture.md#performance-targets), each beside its same-run baseline:")
    rows = []
    for run in runs:
        rows += [[*row, verdict(ok)] for row, ok in zip(target_rows(run), target_verdicts(run), strict=True)]
    header = ["workers", "target", "measured", "baseline (same run)", "baseline", "ratio", "per round"]
    print_table([*header, "target", "verdict"], rows)
    print(f"log size at the end: {final_size:,} entries (scratch databases dropped)")
    print(f"load avg: {load()} (1/5/15 min) at end; wall time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
