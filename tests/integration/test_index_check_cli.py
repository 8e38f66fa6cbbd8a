"""`verify-log` and `monitor` recompute the completeness index and compare the checkpoint's root (issue #13).

One ledger per module (entry 0, a key registration, then 20 and 30 evidence entries in two
batches), its tiles copied to disk. Each attack re-signs the copy's checkpoint with the ledger
key itself: a wrong index root, the previous checkpoint's (stale) root, a wrong first chained
index, or no index line at all (a checkpoint signed before the ledger's upgrade). The monitor
reads the copy from a plain HTTP file server, as from a CDN in front of the log.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from audit_support import (
    ServedLedger,
    download_tiles,
    fill_ledger,
    new_ledger,
    run_cli,
    scratch_database,
    serving,
)
from ledger_harness import static_files
from typer.testing import CliRunner

from cli import monitor_cmd
from ledger.core.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.rules.chains import INDEX_EXTENSION, index_extension, index_line_of

SIZE = 52
MONITOR = typer.Typer()
MONITOR.command("monitor")(monitor_cmd.monitor)
MONITOR.command("other")(lambda: None)  # two commands: `monitor` stays a subcommand, as in cli/main.py


@pytest.fixture(scope="module")
def served(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedLedger]:
    directory = tmp_path_factory.mktemp("index-check")
    with scratch_database(pg_server_dsn) as dsn:
        ledger = new_ledger(dsn, directory / "keys")
        with serving(ledger) as url:
            yield fill_ledger(ledger, url, [20, 30], directory)


@pytest.fixture(scope="module")
def pristine(served: ServedLedger) -> Path:
    destination = served.directory / "pristine"
    assert download_tiles(served, destination) == SIZE
    return destination


@pytest.fixture
def copy(pristine: Path, tmp_path: Path) -> Path:
    destination = tmp_path / "tiles"
    shutil.copytree(pristine, destination)
    return destination


def genuine(served: ServedLedger, size: int) -> Checkpoint:
    return open_checkpoint(served.checkpoints[size], served.ledger.signer.verifier())


def forge(served: ServedLedger, copy: Path, index_line: str | None) -> None:
    """Re-sign the copy's checkpoint (size 52) with the ledger key, its index line replaced (or dropped)."""
    real = genuine(served, SIZE)
    extensions = tuple(e for e in real.extensions if not e.startswith(INDEX_EXTENSION + " "))
    if index_line is not None:
        extensions += (index_line,)
    forged = Checkpoint(real.origin, real.size, real.root_hash, extensions)
    (copy / "checkpoint").write_text(sign_checkpoint(forged, served.ledger.signer))


def verify_tiles(served: ServedLedger, directory: Path) -> tuple[int, str]:
    return run_cli("verify-log", "--tiles", directory, "--key", served.ledger.pub_path, "--jobs", "0")


def monitor_once(served: ServedLedger, directory: Path, state: Path) -> tuple[int, str]:
    with static_files(directory) as url:
        args = ["monitor", "--server", url, "--key", str(served.ledger.pub_path), "--state", str(state)]
        result = CliRunner().invoke(
            MONITOR, [*args, "--once", "--json", "--jobs", "0"], env={"EVLEDGER_TOKEN": ""}
        )
    return result.exit_code, result.output


def report_of(output: str) -> dict[str, object]:
    return json.loads(next(line for line in output.splitlines() if line.startswith("{")))


def stale_line(served: ServedLedger) -> str:
    """The index line of the checkpoint before the last batch: a stale root for size 52."""
    earlier = next(e for e in genuine(served, 22).extensions if e.startswith(INDEX_EXTENSION + " "))
    assert index_line_of((earlier,)) != index_line_of(genuine(served, SIZE).extensions)
    return earlier


# --- verify-log ---


def test_verify_log_recomputes_the_index_and_says_it_matched(served: ServedLedger, pristine: Path):
    code, output = verify_tiles(served, pristine)
    assert code == 0, output
    assert "completeness index recomputed: matches the checkpoint" in output


def test_verify_log_catches_a_wrong_index_root(served: ServedLedger, copy: Path):
    line = index_line_of(genuine(served, SIZE).extensions)
    assert line is not None
    forge(served, copy, index_extension(bytes([line[0][0] ^ 0x80]) + line[0][1:], line[1]))
    code, output = verify_tiles(served, copy)
    assert code == 1, output
    assert f"the index root of the checkpoint at size {SIZE} is not the one its entries give" in output
    assert "since the first entry" in output


def test_verify_log_catches_a_stale_index_root(served: ServedLedger, copy: Path):
    forge(served, copy, stale_line(served))
    code, output = verify_tiles(served, copy)
    assert code == 1, output
    assert f"the index root of the checkpoint at size {SIZE} is not the one its entries give" in output
    # verify-log compares one checkpoint: every chain is a suspect (the key events, a release, 50 artifacts).
    assert "52 chains changed since the first entry" in output


def test_verify_log_catches_a_wrong_first_chained_index(served: ServedLedger, copy: Path):
    line = index_line_of(genuine(served, SIZE).extensions)
    assert line is not None
    forge(served, copy, index_extension(line[0], 10))  # entries 2 to 9 carry artifact links
    code, output = verify_tiles(served, copy)
    assert code == 1, output
    assert "entry 2: list of artifact back-links is wrong" in output
    assert f"first chained index 10 on, as the checkpoint at size {SIZE} states" in output


def test_verify_log_accepts_a_checkpoint_without_the_index_line(served: ServedLedger, copy: Path):
    forge(served, copy, None)
    code, output = verify_tiles(served, copy)
    assert code == 0, output
    assert "completeness index: the checkpoint carries none" in output


# --- monitor ---


def test_monitor_recomputes_the_index_of_the_checkpoint_it_accepts(
    served: ServedLedger, pristine: Path, tmp_path: Path
):
    code, output = monitor_once(served, pristine, tmp_path / "state")
    assert code == 0, output
    report = report_of(output)
    assert report["accepted"] is True
    assert report["index_matched"] is True


def test_monitor_raises_a_bad_index_alert_for_a_stale_index_root(
    served: ServedLedger, copy: Path, tmp_path: Path
):
    forge(served, copy, stale_line(served))
    state = tmp_path / "state"
    code, output = monitor_once(served, copy, state)
    assert code == 1, output
    report = report_of(output)
    assert report["accepted"] is False
    [alert] = report["alerts"]
    assert alert["kind"] == "bad-index"
    assert alert["tree_size"] == SIZE
    assert (
        f"the index root of the checkpoint at size {SIZE} is not the one its entries give" in alert["message"]
    )
    assert stale_line(served) in alert["evidence"]["note"]  # the signed note proves it to anyone
    # Asked to prove the first changed chain against that root, this server (tiles only) cannot.
    assert "; the server could not prove the head of " in alert["message"], alert["message"]
    logged = [json.loads(line)["kind"] for line in (state / "alerts.jsonl").read_text().splitlines()]
    assert logged == ["bad-index"]
    assert (state / "history.jsonl").read_text().count("\n") == 1  # the header only: nothing accepted


def test_monitor_raises_a_bad_index_alert_for_a_malformed_index_line(
    served: ServedLedger, copy: Path, tmp_path: Path
):
    forge(served, copy, f"{INDEX_EXTENSION} not-base64 0")
    code, output = monitor_once(served, copy, tmp_path / "state")
    assert code == 1, output
    [alert] = report_of(output)["alerts"]
    assert alert["kind"] == "bad-index"
