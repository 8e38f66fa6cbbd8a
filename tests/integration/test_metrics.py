"""`GET /metrics` on prometheus_client (issue #12, docs/http-api.md#get-metrics).

The exposition is parsed, never matched line by line: totals are counters summed over
every worker of `evledger serve`, gauges read from the database are the same from any
worker, and values are printed in full (a tree size above a million parses back exactly).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from ledger_harness import Ledger, evidence, live_server, register, to_json, token
from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from service_support import bearer, scratch_ledger, service

from ledger.core.keys import SignerKey
from ledger.service.metrics import FACTS, GAUGE_ALIASES, TOTALS, Metrics, Tallies

# The live server's stdout pipe is closed by the harness after the process ends; see test_two_processes.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <_io.FileIO:pytest.PytestUnraisableExceptionWarning"
)

PIPELINE = SignerKey.generate("people.test/metrics-pipeline")
CONNECTIONS = 8  # concurrent clients, each on its own connection, so that both workers take some
PER_CONNECTION = 5
SETTLE_SECONDS = 5.0  # > PUBLISH_SECONDS: how long another worker's counts may take to show
RESPAWN_SECONDS = 60.0  # how long granian may take to replace a killed worker


def families(text: str) -> dict[tuple[str, str], Metric]:
    """The parsed exposition by (name, type); the parser names a counter without `_total`."""
    parsed = list(text_string_to_metric_families(text))
    found = {(family.name, family.type): family for family in parsed}
    assert len(found) == len(parsed), "a metric family appears twice"
    return found


def value(found: dict[tuple[str, str], Metric], name: str, kind: str) -> float:
    samples = found[(name, kind)].samples
    assert len(samples) == 1, samples
    return samples[0].value


# --- the exposition, without a server ------------------------------------------------------------


def test_totals_are_counters_and_big_gauges_print_exactly() -> None:
    metrics = Metrics(environ={})  # a plain registry: no PROMETHEUS_MULTIPROC_DIR
    metrics.appended(3)
    metrics.appended(4)
    metrics.publish(Tallies(batches=2, entries=7, refusals=1, failures=5), pending=9)
    metrics.appended(1)
    metrics.publish(Tallies(batches=3, entries=8, refusals=1, failures=6), pending=0)
    facts = {
        "evledger_tree_size": 123_456_789_012,
        "evledger_cosigned_tree_size": 1_234_567,
        "evledger_witness_lag_seconds": 0.123456789,
    }
    text = metrics.render(facts, witnessing=True)

    assert "# TYPE evledger_entries_appended_total counter" in text.splitlines()
    found = families(text)
    assert value(found, "evledger_tree_size", "gauge") == 123_456_789_012
    assert value(found, "evledger_cosigned_tree_size", "gauge") == 1_234_567
    assert value(found, "evledger_witness_lag_seconds", "gauge") == 0.123456789
    expected = {
        "evledger_entries_appended": 8,
        "evledger_sequencer_batches": 3,
        "evledger_sequencer_entries": 8,
        "evledger_witness_refusals": 1,
        "evledger_witness_failures": 6,
    }
    for name, total in expected.items():
        assert value(found, name, "counter") == total, name
        assert found[(name, "counter")].samples[0].name == name + "_total"
    for name in GAUGE_ALIASES:  # the names dashboards used before the counters: same values
        assert value(found, name, "gauge") == expected[name], name
    assert value(found, "evledger_sequencer_pending", "gauge") == 0
    assert set(found) == {(name, "counter") for name in TOTALS} | {
        (name, "gauge") for name in [*FACTS, *GAUGE_ALIASES, "evledger_sequencer_pending"]
    }
    assert "_created" not in text
    # `{value:g}` printed 1.23457e+06; now every digit is there.
    assert "evledger_cosigned_tree_size 1.234567e+06" in text.splitlines()


def test_without_a_witness_policy_there_are_no_witness_metrics() -> None:
    text = Metrics(environ={}).render({"evledger_tree_size": 1}, witnessing=False)
    assert "witness" not in text
    found = families(text)
    assert value(found, "evledger_entries_appended", "counter") == 0
    assert value(found, "evledger_tree_size", "gauge") == 1
    with pytest.raises(ValueError, match="not a database gauge"):
        Metrics(environ={}).render({"evledger_tree_sizes": 1}, witnessing=False)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Prometheus) is not installed")
def test_promtool_finds_nothing_to_say() -> None:
    metrics = Metrics(environ={})
    metrics.appended(2)
    metrics.publish(Tallies(batches=1, entries=2, refusals=1, failures=1), pending=1)
    facts = {"evledger_tree_size": 3, "evledger_cosigned_tree_size": 2, "evledger_witness_lag_seconds": 1.5}
    text = metrics.render(facts, witnessing=True)
    done = subprocess.run(  # noqa: S603 - promtool, found on PATH
        [shutil.which("promtool") or "promtool", "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout + done.stderr == ""  # no lint finding either (e.g. a counter without _total)


def _in_process(directory: Path, script: str) -> str:
    """Run `script` in a new Python with PROMETHEUS_MULTIPROC_DIR=`directory`; its stdout."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_processes_sum_their_counters_and_a_dead_one_leaves_the_pending_sum(tmp_path: Path) -> None:
    # A worker that died without retiring (killed): its counts stay in the totals, its queue does not.
    dead = _in_process(
        tmp_path,
        """
        import os
        from ledger.service.metrics import Metrics, Tallies
        metrics = Metrics()
        metrics.appended(5)
        metrics.publish(Tallies(batches=1, entries=5), pending=3)
        print(os.getpid())
        """,
    )
    assert (tmp_path / f"gauge_livesum_{int(dead)}.db").exists()
    text = _in_process(
        tmp_path,
        """
        from ledger.service.metrics import Metrics, Tallies
        metrics = Metrics()
        metrics.appended(2)
        metrics.publish(Tallies(batches=1, entries=2), pending=4)
        print(metrics.render({"evledger_tree_size": 8}, witnessing=False), end="")
        """,
    )
    found = families(text)
    assert value(found, "evledger_entries_appended", "counter") == 7
    assert value(found, "evledger_sequencer_batches", "counter") == 2
    assert value(found, "evledger_sequencer_batches", "gauge") == 2
    assert value(found, "evledger_sequencer_pending", "gauge") == 4
    assert not (tmp_path / f"gauge_livesum_{int(dead)}.db").exists()
    assert len(list(tmp_path.glob("counter_*.db"))) == 2


def test_prometheus_client_imported_before_the_directory_is_refused(tmp_path: Path) -> None:
    env = {key: v for key, v in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    script = f"""
        import os, prometheus_client
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = {str(tmp_path)!r}
        from ledger.service.metrics import Metrics
        Metrics()
    """
    done = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "imported before PROMETHEUS_MULTIPROC_DIR was set" in done.stderr


def test_the_command_line_does_not_import_prometheus_client() -> None:
    # `serve` sets PROMETHEUS_MULTIPROC_DIR before granian forks the workers; prometheus_client
    # reads it once, when imported, so the parent process must not have imported it yet.
    script = "import sys, cli.main; print('prometheus_client' in sys.modules)"
    done = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


# --- a real server ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ledger(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("metrics")) as made:
        yield made


def _append(url: str, appender: str, numbers: range) -> None:
    with httpx.Client(base_url=url, headers=bearer(appender), timeout=30) as client:  # one connection
        for n in numbers:
            response = client.post("/v1/entries", content=to_json(evidence(PIPELINE, n=n)))
            assert response.status_code == 201, response.text


def _scrape(url: str, reader: str) -> dict[tuple[str, str], Metric]:
    response = httpx.get(url + "/metrics", headers=bearer(reader), timeout=10)  # a new connection
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return families(response.text)


def _eventually(check: Callable[[], bool], what: str, seconds: float = SETTLE_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _appended_by_worker(directory: Path) -> dict[int, float]:
    """Each worker's own count of appended entries, from its file in the metrics directory."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        for key, count, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            if '"evledger_entries_appended_total"' in key:
                counts[int(path.stem.removeprefix("counter_"))] = count
    return counts


def test_every_worker_reports_the_totals_of_all(ledger: Ledger, tmp_path: Path) -> None:
    admin, appender, reader = (token(ledger.dsn, role) for role in ("admin", "appender", "auditor"))
    with live_server(ledger, workers=2, env={"TMPDIR": str(tmp_path)}) as url:
        (directory,) = tmp_path.glob("evledger-metrics-*")
        assert directory.stat().st_mode & 0o777 == 0o700
        response = httpx.post(
            url + "/v1/entries", content=to_json(register(ledger.signer, PIPELINE, ["appender"])),
            headers=bearer(admin), timeout=30,
        )  # fmt: skip
        assert response.status_code == 201, response.text
        size = 1 + 1  # entry 0 and the registration

        # Concurrent connections, round after round, until both workers have appended some.
        for round_number in range(10):
            start = round_number * CONNECTIONS * PER_CONNECTION
            numbers = [
                range(n, n + PER_CONNECTION)
                for n in range(start, start + CONNECTIONS * PER_CONNECTION, PER_CONNECTION)
            ]
            with ThreadPoolExecutor(CONNECTIONS) as pool:
                list(pool.map(lambda each: _append(url, appender, each), numbers))
            size += CONNECTIONS * PER_CONNECTION
            time.sleep(0.5)  # two publishing periods
            busy = [count for count in _appended_by_worker(directory).values() if count > 0]
            if len(busy) == 2:
                break
        else:
            pytest.fail(f"one worker took every connection: {_appended_by_worker(directory)}")
        appended = size - 1

        def settled() -> bool:
            found = _scrape(url, reader)
            total = value(found, "evledger_entries_appended", "counter")
            assert total <= appended
            return total == appended and value(found, "evledger_sequencer_entries", "counter") == appended

        _eventually(settled, "the totals of both workers")
        for _ in range(6):  # whichever worker answers
            found = _scrape(url, reader)
            assert value(found, "evledger_entries_appended", "counter") == appended
            assert value(found, "evledger_sequencer_entries", "counter") == appended
            assert value(found, "evledger_sequencer_entries", "gauge") == appended
            assert value(found, "evledger_tree_size", "gauge") == size
            assert value(found, "evledger_sequencer_pending", "gauge") == 0
            batches = value(found, "evledger_sequencer_batches", "counter")
            assert 2 <= batches <= appended
            assert not any("witness" in name for name, _ in found)

        # A worker killed: granian starts another; the dead one's counts stay in the totals.
        counts = _appended_by_worker(directory)
        victim = next(pid for pid, count in counts.items() if count > 0)
        os.kill(victim, signal.SIGKILL)
        # A new worker imports the app and connects to the database: slow on a busy machine.
        _eventually(lambda: len(_appended_by_worker(directory)) == 3, "a new worker", RESPAWN_SECONDS)
        for _ in range(4):
            found = _scrape(url, reader)
            assert value(found, "evledger_entries_appended", "counter") == appended
        assert not (directory / f"gauge_livesum_{victim}.db").exists()
    assert not directory.exists()  # removed when the server stopped


def test_an_app_made_in_process_counts_in_a_plain_registry(ledger: Ledger) -> None:
    admin, reader = token(ledger.dsn, "admin"), token(ledger.dsn, "auditor")
    key = SignerKey.generate("people.test/metrics-in-process")
    with service(ledger) as client:
        before = families(client.get("/metrics", headers=bearer(reader)).text)
        response = client.post(
            "/v1/entries", content=to_json(register(ledger.signer, key, ["appender"])), headers=bearer(admin)
        )
        assert response.status_code == 201, response.text
        for n in range(3):
            response = client.post(
                "/v1/entries", content=to_json(evidence(key, n=1000 + n)), headers=bearer(admin)
            )
            assert response.status_code == 201, response.text
        after = families(client.get("/metrics", headers=bearer(reader)).text)
    assert value(before, "evledger_entries_appended", "counter") == 0
    assert value(after, "evledger_entries_appended", "counter") == 4
    assert value(after, "evledger_tree_size", "gauge") == value(before, "evledger_tree_size", "gauge") + 4
