"""Witnessing benchmark (issue #11): appends with two local witnesses beside the same run without them.

Target (docs/architecture.md#performance-targets): with two witnesses (quorum 2), the cosigned
checkpoint stays at most 1 s behind the latest, p99, and single-envelope appends keep at
least 95 % of the rate of the same server without witnesses, measured in the same run.

Method: one scratch ledger, two `evledger witness serve` processes (one worker each, real HTTP,
their state fsynced before each answer), and `evledger serve --workers N` started afresh for
every round, alternately without and with `--witness-policy` (rounds interleaved, the best
round of each kept, as in bench_service.py). Each round is wrk (64 keep-alive clients,
closed loop) posting envelopes never sent before to `POST /v1/entries`. During a witnessed
round a sampler reads the lag every 250 ms, with the queries behind `evledger_witness_lag_seconds`
(in the rounds without witnesses too, so that both pay for it): the age of
the oldest checkpoint newer than the newest one both witnesses cosigned (0 when there is
none), computed by the database, so any worker reports the same; it starts once the
checkpoints of the round before (made without witnesses) are cosigned. The lag figure is the p99
and the maximum of those samples over all witnessed rounds; the catch-up figure is how long
after wrk stopped the cosigned checkpoint reached the final tree size.

The witnesses, the ledger, PostgreSQL and wrk share the machine's cores: the witnessed
rounds pay for the witnesses' CPU too, which is what a small deployment would see.

Run: `.venv/bin/python benchmarks/bench_witnessing.py [--workers 2] [--seconds 5] [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import asyncpg
import httpx
from bench_core import cpu_model, fmt, load, print_table
from bench_service import need, percentile
from loadgen import LoadResult, run_load
from service_harness import (
    BenchLedger,
    UniqueEvidence,
    free_port,
    prepare_ledger,
    running_server,
    scratch_database,
    server_dsn,
    settled_size,
)

from ledger.core.keys import ALG_COSIGNATURE_V1, SignerKey
from ledger.storage.postgres_anchors import PostgresAnchorStore

TARGET_LAG_P99_S = 1.0
TARGET_RATE_RATIO = 0.95
CLIENTS = 64
SAMPLE_SECONDS = 0.25


@contextmanager
def witness(directory: Path, name: str, ledger_pub: Path, state: Path) -> Iterator[tuple[SignerKey, str]]:
    """A running `evledger witness serve` of a new key, its state under `state`; yields its key and URL."""
    key = SignerKey.generate(f"witness.bench/{name}", ALG_COSIGNATURE_V1)
    key_path = directory / f"{name}.key"
    key_path.write_text(key.format() + "\n")
    key_path.chmod(0o600)
    port = free_port()
    cli = Path(sys.executable).with_name("evledger")
    command = [str(cli), "witness", "serve", "--key", str(key_path), "--log", str(ledger_pub)]
    command += ["--data-dir", str(state / f"{name}-state"), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"witness {name} did not start")
            time.sleep(0.1)
        yield key, url
    finally:
        process.terminate()
        process.wait(timeout=15)


def gauge(client: httpx.Client, name: str) -> float | None:
    """One gauge of /metrics, or None when it is absent or the server does not answer."""
    try:
        text = client.get("/metrics").text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class LagSampler:
    """Samples the witnessing lag every SAMPLE_SECONDS on a thread of its own while the block runs.

    It asks the database directly, with the queries behind `/metrics`
    (`PostgresAnchorStore.latest_cosigned` and `.witnessing_lag`), and does so in every round,
    with or without witnesses, so that both kinds of round pay the same for being watched.
    """

    def __init__(self, dsn: str, witnesses: list[str]) -> None:
        """Sample the ledger database `dsn` for the lag behind a quorum of all `witnesses` (keyid strings)."""
        self.dsn = dsn
        self.witnesses = witnesses
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=1)
        try:
            anchors = PostgresAnchorStore(pool)
            while not self._stop.wait(SAMPLE_SECONDS):
                cosigned = await anchors.latest_cosigned(self.witnesses, len(self.witnesses))
                self.samples.append(await anchors.witnessing_lag(cosigned))
        finally:
            await pool.close()

    def __enter__(self) -> Self:
        """Start sampling."""
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()


def catch_up(url: str, token: str, size: int, limit: float = 30.0) -> float:
    """Seconds until the cosigned tree size reaches `size` (the log's size once wrk stopped)."""
    start = time.monotonic()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=5) as client:
        while time.monotonic() - start < limit:
            if (gauge(client, "evledger_cosigned_tree_size") or 0) >= size:
                return time.monotonic() - start
            time.sleep(0.01)
    return float("inf")


@dataclass(slots=True)
class Run:
    """The run's ledger, its body source, its witness policy and every round's result."""

    ledger: BenchLedger
    evidence: UniqueEvidence
    directory: Path
    policy: Path
    witnesses: list[str]  # their keyid strings
    seconds: float
    workers: int
    plain: list[LoadResult] = field(default_factory=list)
    witnessed: list[LoadResult] = field(default_factory=list)
    catch_ups: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)

    @property
    def best_rate(self) -> float:
        """The best rate of any round so far (bodies are made for twice it)."""
        return max([6000.0, *(r.rate for r in self.plain + self.witnessed)])

    def round(self, *, witnesses: bool, seconds: float | None = None) -> LoadResult:
        """One wrk round against a fresh server, with or without the witness policy."""
        seconds = seconds or self.seconds
        body = self.directory / f"bodies-{time.monotonic_ns()}.jsonl"
        body.write_bytes(b"\n".join(self.evidence.bodies(need(self.best_rate, seconds, CLIENTS))) + b"\n")
        serve_args = ["--witness-policy", str(self.policy)] if witnesses else []
        token = self.ledger.token
        with running_server(self.ledger, self.workers, args=serve_args) as server:
            if witnesses:  # what the round before appended without witnesses is cosigned first
                catch_up(server.url, token, asyncio.run(settled_size(self.ledger.dsn)))
            # Sampled in both kinds of round, so both pay for the sampling alike.
            with LagSampler(self.ledger.dsn, self.witnesses) as sampler:
                result = run_load(
                    server.url + "/v1/entries", method="POST", body_file=body, token=token,
                    connections=CLIENTS, seconds=seconds,
                )  # fmt: skip
            if witnesses:
                self.lags.extend(sampler.samples)
                size = asyncio.run(settled_size(self.ledger.dsn))
                self.catch_ups.append(catch_up(server.url, token, size))
        body.unlink()
        return result


def report(run: Run) -> bool:
    """Print the table; whether both targets are met."""
    plain = max(run.plain, key=lambda r: r.rate)
    witnessed = max(run.witnessed, key=lambda r: r.rate)
    ratio = witnessed.rate / plain.rate
    lags = sorted(run.lags)
    lag_p99 = percentile(lags, 0.99) if lags else float("inf")
    lag_max = lags[-1] if lags else float("inf")
    rate_ok, lag_ok = ratio >= TARGET_RATE_RATIO, lag_p99 <= TARGET_LAG_P99_S
    paired = sorted(w.rate / p.rate for p, w in zip(run.plain, run.witnessed, strict=True))
    rows = [
        ["appends/s, 2 witnesses", fmt(witnessed.rate), f"{fmt(plain.rate)} without", f"{ratio:.2f}",
         f">= {TARGET_RATE_RATIO:.2f}", "yes" if rate_ok else "NO"],
        ["  each round's ratio", "", "", " ".join(f"{r:.2f}" for r in paired),
         f"median {paired[len(paired) // 2]:.2f}", ""],
        ["append p99 ms", f"{witnessed.p99_ms:.1f}", f"{plain.p99_ms:.1f} without", "", "", ""],
        ["cosigned lag p99 s", f"{lag_p99:.3f}", f"max {lag_max:.3f} of {len(lags)} samples", "",
         f"<= {TARGET_LAG_P99_S:g}", "yes" if lag_ok else "NO"],
        ["catch-up after load s", f"{max(run.catch_ups):.2f}", "worst round", "", "", ""],
    ]  # fmt: skip
    print()
    print_table(["figure", "value", "baseline (same run)", "ratio", "target", "met"], rows)
    return rate_ok and lag_ok


def main() -> None:
    """Measure, print the table, exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="server workers (default 2)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of load a round (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each kind (default 3)")
    parser.add_argument(
        "--witness-state",
        type=Path,
        default=None,
        help="where the witnesses keep their state (default: a temporary directory on the ledger's disk)",
    )
    args = parser.parse_args()
    print("evidence-ledger witnessing benchmark (issue #11)")
    print(f"command : {shlex.join(sys.orig_argv)}")
    print(f"date    : {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}")
    print(f"machine : os.cpu_count()={os.cpu_count()}, {cpu_model()}, {platform.platform()}")
    print(f"server  : evledger serve --workers {args.workers}; PostgreSQL at {server_dsn()}; load {load()}")
    print()
    with tempfile.TemporaryDirectory() as tmp, scratch_database("witnessing") as dsn, ExitStack() as stack:
        directory = Path(tmp)
        ledger = prepare_ledger(dsn, directory)
        ledger_pub = directory / "ledger.pub"
        ledger_pub.write_text(ledger.ledger_key.verifier().format() + "\n")
        lines, keyids = [], []
        for name in ("w1", "w2"):
            state = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=args.witness_state)))
            key, url = stack.enter_context(witness(directory, name, ledger_pub, state))
            lines.append(f"witness {name} {key.verifier().format()} {url}")
            keyids.append(key.verifier().keyid)
        policy = directory / "witnesses.policy"
        policy.write_text("\n".join([*lines, "quorum 2"]) + "\n")
        run = Run(
            ledger, UniqueEvidence(ledger.appender), directory, policy, keyids, args.seconds, args.workers
        )
        run.round(witnesses=False, seconds=2)  # warm-up
        for number in range(args.rounds):
            run.plain.append(run.round(witnesses=False))
            run.witnessed.append(run.round(witnesses=True))
            plain, witnessed = run.plain[-1], run.witnessed[-1]
            print(
                f"round {number + 1}: without {fmt(plain.rate)}/s, with witnesses {fmt(witnessed.rate)}/s "
                f"(errors {plain.errors}/{witnessed.errors}), catch-up {run.catch_ups[-1]:.2f} s"
            )
        met = report(run)
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
