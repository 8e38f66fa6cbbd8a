"""Offline `evledger verify` of a 200-event dossier (target: < 1 s with start-up; issue #4).

Builds one realistic sealed release of exactly 200 chain events through the
real service: a scratch database, `evledger serve`, the demo's people and
policy (cli/story.py), then the pipeline's evidence in two batch appends
(change, build, 190 test runs, scan, validation; then four approvals by four
people and the deployment) and the seal. The dossier is downloaded as
`evledger dossier` does and written with the ledger's public key.

Then it times, as separate processes, `python -m cli.main verify DOSSIER --key
PUB` beside two baselines measured in the same run, interleaved round by round
so load changes hit all three alike: `python -c pass` (the interpreter's own
start-up) and `python -m cli.main --help` (the CLI's imports). It prints the
best and the median of `--runs` rounds, the in-process verification time
without start-up (load_and_verify, best of the same number of rounds), and the
verdict against the 1 s target (on the median).

    .venv/bin/python benchmarks/bench_verify.py [--runs 5] [--keep-dossier DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from service_harness import BenchLedger, prepare_ledger, running_server, scratch_database

from cli import story as s
from cli.client import LedgerClient
from cli.demo import POLICY_FILE
from cli.dossier_cmd import load_and_verify
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, Envelope, sign_envelope
from ledger.core.encoding import format_time
from ledger.records import predicates as p
from ledger.storage.migrate import create_token

EVENTS = 200
TEST_RUNS = EVENTS - 10  # + change, build, scan, validation, 4 approvals, deployment, seal
TARGET_SECONDS = 1.0
REPO = Path(__file__).resolve().parents[1]


def _envelope(story: s.Story, who: str, predicate: object, *, source: bool = False) -> Envelope:
    predicate_type = next(t for t, cls in p.PREDICATE_TYPES.items() if isinstance(predicate, cls))
    subject = (
        {"name": "git", "digest": {"gitCommit": story.commit}}
        if source
        else {"name": "analyzer.tar", "digest": {"sha256": story.artifact.removeprefix("sha256:")}}
    )
    body = msgspec.json.encode(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [subject],
            "predicateType": predicate_type,
            "predicate": msgspec.to_builtins(predicate),
        }
    )
    return sign_envelope(INTOTO_PAYLOAD_TYPE, body, [story.people[who].key])


def _evidence(story: s.Story) -> list[Envelope]:
    """Change, build, the test runs, scan and validation: what the pipeline appends before approval."""
    r = story.release
    summary = p.ChangeSummary(
        "Rounding of borderline results", "Flags hidden", "Patient-facing", "Golden set"
    )
    change = p.Change(
        r, "CHG-BENCH", summary, "high", affects_intended_use=False, patient_facing_output=True,
        components=["result-engine"], author="Dana Developer",
    )  # fmt: skip
    build = p.Build(
        r, "git.example/ivd/analyzer", story.commit, "build-1", "ci-runner-1",
        [p.Artifact("analyzer.tar", story.artifact)],
    )  # fmt: skip
    out = [_envelope(story, "developer", change, source=True), _envelope(story, "pipeline", build)]
    for n in range(TEST_RUNS):
        suite = s.SUITES[n % len(s.SUITES)]
        run = p.TestRun(r, suite, f"make test-{suite} SHARD={n}", story.commit, "ci", 50, 0, 1, "passed")
        out.append(_envelope(story, "pipeline", run))
    out.append(_envelope(story, "pipeline", p.Scan(r, "grype", "0.80.1", p.Findings(low=2))))
    dataset = p.Dataset("potassium-borderline", "2026.03", "sha256:" + "9b1d" * 16)
    out.append(_envelope(story, "pipeline", p.Validation(r, "Matches the reference", dataset, "passed")))
    return out


def _approvals_and_deployment(story: s.Story, reviewed: list[int]) -> list[Envelope]:
    out = []
    for who, role in (("qa", "qa"), ("clinical", "clinical"), ("security", "security"),
                      ("release_manager", "release-manager")):  # fmt: skip
        approval = p.Approval(
            story.release,
            role,
            "approval",
            "approved",
            story.artifact,
            reviewed,
            format_time(datetime.now(UTC)),
        )
        out.append(_envelope(story, who, approval))
    now = datetime.now(UTC)
    deployment = p.Deployment(
        story.release, "production", story.artifact, format_time(now - timedelta(minutes=2)),
        format_time(now), "succeeded",
    )  # fmt: skip
    out.append(_envelope(story, "pipeline", deployment))
    return out


def build_dossier(ledger: BenchLedger, url: str, directory: Path) -> tuple[Path, Path]:
    """A sealed 200-event release through the live service; return (dossier file, ledger .pub file)."""
    admin_token = asyncio.run(create_token(ledger.dsn, "admin", []))
    story = s.cast(ledger.ledger_key, "9.9.200")
    with LedgerClient(url, admin_token) as client:
        s.register_people(client, story)
        s.publish_policy(client, story, POLICY_FILE.read_text(encoding="utf-8"))
        first = client.append(_evidence(story))
        client.append(_approvals_and_deployment(story, [int(r["index"]) for r in first[1:]]))
        release = f"/v1/releases/{s.PRODUCT}/{story.version}"
        head = client.get(f"{release}/timeline").json()
        seal = p.Seal(story.release, head["count"], head["head"]["leaf_hash"])
        client.append([_envelope(story, "release_manager", seal)])
        dossier = directory / "release-200.dossier.json"
        dossier.write_bytes(client.get(f"{release}/dossier").content)
    pub = directory / "ledger.pub"
    pub.write_text(ledger.ledger_key.verifier().format() + "\n", encoding="utf-8")
    return dossier, pub


def _time(command: Sequence[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)  # noqa: S603 - our own CLI
    return time.perf_counter() - started


def measure(dossier: Path, pub: Path, runs: int) -> dict[str, list[float]]:
    """Interleaved rounds of the three commands, and in-process verification; seconds per run."""
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -m cli.main --help": [sys.executable, "-m", "cli.main", "--help"],
        "python -m cli.main verify DOSSIER --key PUB": [
            sys.executable, "-m", "cli.main", "verify", str(dossier), "--key", str(pub),
        ],
    }  # fmt: skip
    for command in commands.values():  # warm the page cache and the .pyc files, untimed
        _time(command)
    times: dict[str, list[float]] = {name: [] for name in commands}
    times["in-process load_and_verify"] = []
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(_time(command))
        started = time.perf_counter()
        load_and_verify(dossier, pub)
        times["in-process load_and_verify"].append(time.perf_counter() - started)
    return times


def report(times: dict[str, list[float]], dossier: Path, events: int) -> None:
    """Print the table and the verdict."""
    print(f"dossier: {events} release events, {dossier.stat().st_size:,} bytes")
    print(f"{'command':<46} {'best s':>7} {'median s':>9}")
    print(f"{'-' * 46} {'-' * 7} {'-' * 9}")
    for name, values in times.items():
        print(f"{name:<46} {min(values):>7.3f} {statistics.median(values):>9.3f}")
    verify = times["python -m cli.main verify DOSSIER --key PUB"]
    median = statistics.median(verify)
    verdict = "PASS" if median < TARGET_SECONDS else "FAIL"
    help_median = statistics.median(times["python -m cli.main --help"])
    print(
        f"target: offline verify of a {EVENTS}-event dossier < {TARGET_SECONDS:.0f} s including start-up: "
        f"median {median:.3f} s, best {min(verify):.3f} s -> {verdict} "
        f"(verify minus --help, median: {median - help_median:.3f} s)"
    )


def main() -> None:
    """Build the dossier through the service, then time offline verification beside its baselines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--keep-dossier", type=Path, metavar="DIR", help="copy the dossier and key here")
    args = parser.parse_args()
    started = time.perf_counter()
    load = os.getloadavg()
    print(
        f"bench_verify: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load avg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start"
    )
    with (
        tempfile.TemporaryDirectory(prefix="evledger-bench-verify-") as tmp,
        scratch_database("verify") as dsn,
    ):
        directory = Path(tmp)
        ledger = prepare_ledger(dsn, directory)
        with running_server(ledger, workers=1) as server:
            dossier, pub = build_dossier(ledger, server.url, directory)
        parsed, verified = load_and_verify(dossier, pub)
        events = verified.completeness.chain_length
        if events != EVENTS or not verified.sealed:
            raise SystemExit(
                f"expected a sealed {EVENTS}-event release, got {events} (sealed {verified.sealed})"
            )
        status = verified.compliance["status"]
        print(f"built through the service: {parsed.product} {parsed.version}, compliance {status}")
        times = measure(dossier, pub, args.runs)
        report(times, dossier, events)
        if args.keep_dossier:
            args.keep_dossier.mkdir(parents=True, exist_ok=True)
            shutil.copy(dossier, args.keep_dossier)
            shutil.copy(pub, args.keep_dossier)
    end, wall = os.getloadavg(), time.perf_counter() - started
    print(f"load avg: {end[0]:.2f} {end[1]:.2f} {end[2]:.2f} at end; wall time {wall:.1f} s")


if __name__ == "__main__":
    main()
