"""`evledger monitor` against a real ledger: a healthy log, a fork served from a restored database, a
forged log with an entry by a revoked key, `--watch`, and alerts delivered to a webhook.

The fork is made the way an operator could make one: the database is copied (`CREATE DATABASE
... TEMPLATE`) while the service is stopped, the original grows and the monitor sees it, then the
old copy is served with the same ledger key and grows differently. The monitor must call the
smaller view a rollback and the different trees a split view.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import pytest
import typer
from audit_support import PIPELINE_PRODUCT, restored_copy, scratch_database, serving
from forged_log import ForgedLog
from ledger_harness import (
    Ledger,
    evidence,
    free_port,
    init_ledger,
    live_server,
    register,
    revoke,
    static_files,
    token,
)
from tsa_authority import LocalTsa, local_tsa, other_tsa
from typer.testing import CliRunner

from cli import monitor_cmd
from cli.client import LedgerClient
from ledger.core.checkpoint import Checkpoint, sign_checkpoint
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.core.tiles import TILE_WIDTH, encode_entry_bundle
from ledger.errors import UnavailableError
from ledger.rules.chains import key_chain_extension
from ledger.verify.tree_check import TileBuilder

APP = typer.Typer()
APP.command("monitor")(monitor_cmd.monitor)
APP.command("other")(lambda: None)  # two commands: `monitor` stays a subcommand, as in cli/main.py
runner = CliRunner()
AUDITOR: dict[str, str] = {}  # server URL -> an auditor token of the ledger it serves


@contextlib.contextmanager
def served(ledger: Ledger) -> Iterator[str]:
    """`serving`, and an auditor token for the monitor's reads."""
    with serving(ledger) as url:
        AUDITOR[url] = token(ledger.dsn, "auditor")
        try:
            yield url
        finally:
            del AUDITOR[url]


def run_monitor(ledger_pub: Path, url: str, state: Path, *extra: str) -> tuple[int, str]:
    """`monitor --once` in-process; the reads need a token unless the ledger's log is public."""
    args = ["monitor", "--server", url, "--key", str(ledger_pub), "--state", str(state), "--once", *extra]
    result = runner.invoke(APP, args, env={"EVLEDGER_TOKEN": AUDITOR.get(url, "")})
    return result.exit_code, result.output


def json_report(output: str) -> dict[str, object]:
    line = next(line for line in output.splitlines() if line.startswith("{"))
    return json.loads(line)


class Webhook:
    """A tiny HTTP server that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, object]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of_type(self, kind: str) -> list[dict[str, object]]:
        return [message for message in self.received if message["type"] == kind]


def append_evidence(ledger: Ledger, url: str, signer: SignerKey, count: int, first: int) -> None:
    """Append `count` evidence entries signed by `signer` (already registered), numbered from `first`."""
    with LedgerClient(url, token(ledger.dsn, "appender", [PIPELINE_PRODUCT])) as client:
        client.append([evidence(signer, product=PIPELINE_PRODUCT, n=first + i) for i in range(count)])


def register_pipeline(ledger: Ledger, url: str) -> SignerKey:
    pipeline = SignerKey.generate("pipeline.test/ci")
    with LedgerClient(url, token(ledger.dsn, "admin")) as client:
        client.append([register(ledger.signer, pipeline, ["builder"], [PIPELINE_PRODUCT])])
    return pipeline


def history_sizes(state: Path) -> list[int]:
    lines = (state / "history.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["format"] == "evledger-monitor-history/v1"
    return [json.loads(line)["size"] for line in lines[1:]]


@pytest.fixture
def ledger(pg_server_dsn: str, tmp_path: Path) -> Iterator[Ledger]:
    with scratch_database(pg_server_dsn) as dsn:
        keys = tmp_path / "keys"
        keys.mkdir()
        yield init_ledger(dsn, keys)


def test_healthy_log_passes_records_its_checkpoints_and_watches_a_key_registration(ledger, tmp_path):
    state = tmp_path / "state"
    with served(ledger) as url, Webhook() as hook:
        pipeline = register_pipeline(ledger, url)
        append_evidence(ledger, url, pipeline, 5, 0)
        code, output = run_monitor(
            ledger.pub_path, url, state, "--json", "--watch", "key.registered", "--webhook", hook.url
        )
        assert code == 0, output
        report = json_report(output)
        assert report["ok"] is True
        assert report["accepted"] is True
        assert report["tree_size"] == 7
        assert report["new_entries"] == 7
        # entry 0 (the ledger key) and entry 1 (the pipeline key) are both registrations
        assert [w["index"] for w in report["watched"]] == [0, 1]
        assert "pipeline.test/ci" in report["watched"][1]["description"]
        assert "watch key.registered: entry 1: key pipeline.test/ci" in output
        assert [m["entry"]["index"] for m in hook.of_type("watch")] == [0, 1]
        assert history_sizes(state) == [7]
        assert (state / "mirror" / "checkpoint").read_bytes().startswith(b"ledger.test/it\n7\n")

        append_evidence(ledger, url, pipeline, 300, 5)
        code, output = run_monitor(ledger.pub_path, url, state, "--watch", "key.registered")
        assert code == 0, output
        assert "ok: log ledger.test/it at size 307" in output
        assert "watch" not in output  # no registration among the new entries
        assert history_sizes(state) == [7, 307]
        # the mirror holds exactly the tiles of size 307: the partial tile of size 7 was dropped
        partials = sorted(p.relative_to(state / "mirror").as_posix() for p in state.rglob("*.p/*"))
        assert partials == ["tile/0/001.p/51", "tile/1/000.p/1", "tile/entries/001.p/51"]

        code, output = run_monitor(ledger.pub_path, url, state, "--json")
        assert code == 0, output
        assert json_report(output)["unchanged"] is True
        assert history_sizes(state) == [7, 307]
        assert hook.of_type("alert") == []


def test_a_second_monitor_on_the_same_state_is_refused(ledger, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    with served(ledger) as url, (state / "lock").open("ab") as held:
        import fcntl  # noqa: PLC0415

        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, output = run_monitor(ledger.pub_path, url, state)
    assert code == 2, output
    assert "another monitor is using the state directory" in output


def test_unreachable_server_exits_3(ledger, tmp_path):
    code, output = run_monitor(ledger.pub_path, f"http://127.0.0.1:{free_port()}", tmp_path / "state")
    assert code == 3, output
    assert "cannot reach the ledger" in output


def test_fork_from_a_restored_database_is_a_rollback_then_a_split_view(ledger, pg_server_dsn, tmp_path):
    state = tmp_path / "state"
    with served(ledger) as url:
        pipeline = register_pipeline(ledger, url)
        append_evidence(ledger, url, pipeline, 3, 0)
        code, output = run_monitor(ledger.pub_path, url, state)
        assert code == 0, output
    assert history_sizes(state) == [5]
    with restored_copy(pg_server_dsn, ledger.dsn) as backup_dsn:
        with served(ledger) as url:
            append_evidence(ledger, url, pipeline, 3, 100)
            code, output = run_monitor(ledger.pub_path, url, state)
            assert code == 0, output
        assert history_sizes(state) == [5, 8]

        # The operator restores the backup and serves it with the same ledger key.
        restored = dataclasses.replace(ledger, dsn=backup_dsn)
        with served(restored) as url, Webhook() as hook:
            code, output = run_monitor(ledger.pub_path, url, state, "--webhook", hook.url)
            assert code == 1, output
            assert "rollback: the ledger serves a checkpoint of size 5, smaller than size 8" in output
            [alert] = hook.of_type("alert")
            assert alert["alert"]["kind"] == "rollback"
            assert alert["origin"] == "ledger.test/it"
            assert alert["alert"]["evidence"]["earlier_note"].startswith("ledger.test/it\n8\n")

            # Different entries bring the restored log back to size 8: two trees of one size.
            append_evidence(restored, url, pipeline, 3, 200)
            code, output = run_monitor(ledger.pub_path, url, state, "--webhook", hook.url, "--json")
            assert code == 1, output
            report = json_report(output)
            assert report["ok"] is False
            assert [a["kind"] for a in report["alerts"]] == ["split-view"]
            assert "two different trees of size 8" in report["alerts"][0]["message"]
            assert hook.of_type("alert")[-1]["alert"]["kind"] == "split-view"

            # Larger than anything seen: the consistency proof from size 8 cannot hold.
            append_evidence(restored, url, pipeline, 2, 300)
            code, output = run_monitor(ledger.pub_path, url, state)
            assert code == 1, output
            assert "split-view: the tree of size 10 does not extend the tree of size 8" in output
    # Nothing of the forked view was accepted; every alert is in the alert log.
    assert history_sizes(state) == [5, 8]
    logged = [json.loads(line)["kind"] for line in (state / "alerts.jsonl").read_text().splitlines()]
    assert logged == ["rollback", "split-view", "split-view"]


def write_tiles(directory: Path, entries: list[bytes]) -> None:
    """The C2SP tiles of a log with exactly `entries` (as `verify-log --tiles` reads them)."""
    builder = TileBuilder()
    built = [tile for entry in entries for tile in builder.append(leaf_hash(entry))]
    for item in built + builder.partial_tiles():
        path = directory / item.tile.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.hashes)
    for number in range(-(-len(entries) // TILE_WIDTH)):
        chunk = entries[number * TILE_WIDTH : (number + 1) * TILE_WIDTH]
        name = f"{number:03d}" + ("" if len(chunk) == TILE_WIDTH else f".p/{len(chunk)}")
        path = directory / "tile" / "entries" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_entry_bundle(chunk))


def test_entry_signed_by_a_revoked_key_is_a_bad_entry(tmp_path):
    ledger_key = SignerKey.generate("ledger.test/forged")
    pipeline = SignerKey.generate("pipeline.test/ci")
    log = ForgedLog(ledger_key)
    log.admin(register(ledger_key, pipeline, ["builder"], [PIPELINE_PRODUCT]))
    log.append(evidence(pipeline, product=PIPELINE_PRODUCT, n=1), pipeline.verifier())
    log.admin(revoke(ledger_key, pipeline.keyid, "laptop stolen"))
    log.append(evidence(pipeline, product=PIPELINE_PRODUCT, n=2), pipeline.verifier())  # entry 4
    tiles = tmp_path / "tiles"
    write_tiles(tiles, log.entries)
    builder = TileBuilder()
    for entry in log.entries:
        builder.append(leaf_hash(entry))
    checkpoint = Checkpoint(ledger_key.name, len(log.entries), builder.root(), key_chain_extension(3))
    (tiles / "checkpoint").write_text(sign_checkpoint(checkpoint, ledger_key))
    pub = tmp_path / "ledger.pub"
    pub.write_text(ledger_key.verifier().format() + "\n")
    state = tmp_path / "state"
    with static_files(tiles) as url, Webhook() as hook:
        dead_hook = f"http://127.0.0.1:{free_port()}/hook"
        code, output = run_monitor(pub, url, state, "--webhook", dead_hook, "--json")
        assert code == 1, output
        [alert] = json_report(output)["alerts"]
        assert alert["kind"] == "bad-entry"
        assert "entry 4" in alert["message"]
        assert "was revoked at entry 3 (laptop stolen)" in alert["message"]
        assert "webhook: could not deliver the alert message" in output  # logged, not fatal
        code, output = run_monitor(pub, url, state, "--webhook", hook.url)
        assert code == 1, output
        assert hook.of_type("alert")[0]["alert"]["kind"] == "bad-entry"
    assert history_sizes(state) == []
    assert not (state / "pending").exists()


def test_following_without_once_logs_each_new_checkpoint(ledger, tmp_path):
    state = tmp_path / "state"
    evledger = Path(sys.executable).with_name("evledger")
    with served(ledger) as url:
        pipeline = register_pipeline(ledger, url)
        command = [str(evledger), "monitor", "--server", url, "--key", str(ledger.pub_path)]
        command += ["--state", str(state), "--interval", "0.3", "--watch", "key.registered"]
        environment = {**os.environ, "EVLEDGER_TOKEN": AUDITOR[url]}
        process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environment)  # noqa: S603
        try:
            _wait_for(lambda: history_sizes(state) == [2] if (state / "history.jsonl").exists() else False)
            append_evidence(ledger, url, pipeline, 4, 0)
            _wait_for(lambda: history_sizes(state) == [2, 6])
        finally:
            process.send_signal(signal.SIGINT)
            _, errors = process.communicate(timeout=20)
    assert "checkpoint ledger.test/it size 2 root" in errors
    assert "checkpoint ledger.test/it size 6 root" in errors
    assert "watch key.registered: entry 1: key pipeline.test/ci" in errors
    assert process.returncode == 130


def _wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the monitor did not get there in time"
        time.sleep(0.1)


def test_a_ledger_without_trusted_time_serves_no_timestamps_and_that_is_no_alert(ledger, tmp_path):
    cert = tmp_path / "tsa.pem"
    _write_self_signed(cert)
    with served(ledger) as url:
        code, output = run_monitor(
            ledger.pub_path, url, tmp_path / "state", "--tsa-cert", str(cert), "--json"
        )
    assert code == 0, output
    assert json_report(output)["timestamps"] == []


@contextlib.contextmanager
def served_with_tsa(ledger: Ledger, tsa: LocalTsa) -> Iterator[str]:
    """`evledger serve` timestamping every checkpoint with `tsa`; an auditor token for the monitor."""
    args = ["--tsa", tsa.url, "--tsa-cert", str(tsa.ca_path), "--tsa-interval", "0.1"]
    with live_server(ledger, args=args) as url:
        AUDITOR[url] = token(ledger.dsn, "auditor")
        try:
            yield url
        finally:
            AUDITOR.pop(url, None)


def _stamped(url: str) -> bool:
    with LedgerClient(url, AUDITOR[url]) as client:
        try:  # 503 until an authority has stamped a first checkpoint
            size = int(client.get("/checkpoint").text.split("\n")[1])
        except UnavailableError:
            return False
        return bool(client.get("/v1/anchors", tree_size=size).json()["timestamps"])


def test_timestamps_by_the_trusted_tsa_pass_and_by_another_are_a_bad_timestamp(
    ledger, tmp_path, local_tsa, other_tsa
):
    with served_with_tsa(ledger, local_tsa) as url:
        pipeline = register_pipeline(ledger, url)
        append_evidence(ledger, url, pipeline, 2, 0)
        _wait_for(lambda: _stamped(url))
        code, output = run_monitor(
            ledger.pub_path, url, tmp_path / "trusting", "--tsa-cert", str(local_tsa.ca_path), "--json"
        )
        assert code == 0, output
        [stamp] = json_report(output)["timestamps"]
        assert local_tsa.name in stamp["tsa"]

        code, output = run_monitor(
            ledger.pub_path, url, tmp_path / "distrusting", "--tsa-cert", str(other_tsa.ca_path), "--json"
        )
        assert code == 1, output
        [alert] = json_report(output)["alerts"]
        assert alert["kind"] == "bad-timestamp"
        assert "timestamp token is not signed by a trusted TSA" in alert["message"]


def _write_self_signed(path: Path) -> None:
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test tsa")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


_ = (local_tsa, other_tsa)  # fixtures, used by name
