"""The public verification API (`ledger.verify`): its example runs as written, and catches a tampered byte.

The example in the package docstring is executed on a real dossier and a receipt
cut from it (the pre-issue-9 fixture, made by the demo): what the docstring
promises a caller is what the code does. Everything `__all__` names is importable.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pytest

import ledger.verify
from ledger.core.entry import parse_entry
from ledger.core.hashing import leaf_hash

FIXTURE = Path(__file__).resolve().parents[1] / "integration" / "fixtures" / "pre_issue9"


def example_code() -> str:
    """The indented block after the docstring's `::` line, dedented."""
    doc = ledger.verify.__doc__ or ""
    block = doc.split("::\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    return "\n".join(lines)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The files the example names: the ledger key, a dossier, a receipt and its entry's bytes."""
    shutil.copy(FIXTURE / "ledger.pub", tmp_path / "ledger.pub")
    shutil.copy(FIXTURE / "sealed-release.dossier.json", tmp_path / "app-1.4.dossier.json")
    dossier = json.loads((FIXTURE / "sealed-release.dossier.json").read_text())
    proven = dossier["entries"][-1]
    data = base64.b64decode(proven["entry"])
    receipt = {
        "index": proven["index"],
        "leaf_hash": leaf_hash(data).hex(),
        "time": parse_entry(data).time,
        "checkpoint": dossier["checkpoint"],
        "inclusion_proof": proven["inclusion_proof"],
    }
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    (tmp_path / "entry.bin").write_bytes(data)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.usefixtures("workdir")
def test_the_docstring_example_verifies_a_dossier_and_a_receipt(capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(example_code(), "ledger.verify example", "exec"), {})  # noqa: S102 - our own docstring
    printed = capsys.readouterr().out
    assert "complete" in printed
    assert re.search(r"entry \d+ is in the log of 27 entries", printed)


def test_the_example_fails_on_one_flipped_byte_of_the_entry(workdir: Path) -> None:
    data = bytearray((workdir / "entry.bin").read_bytes())
    data[len(data) // 2] ^= 1
    (workdir / "entry.bin").write_bytes(bytes(data))
    with pytest.raises(ledger.verify.VerificationError):
        exec(compile(example_code(), "ledger.verify example", "exec"), {})  # noqa: S102 - our own docstring


def test_the_example_fails_on_a_tampered_dossier(workdir: Path) -> None:
    path = workdir / "app-1.4.dossier.json"
    dossier = json.loads(path.read_text())
    dossier["evaluated_at"] = "2030-01-01T00:00:00.000Z"  # a claim the evidence no longer supports
    path.write_text(json.dumps(dossier))
    with pytest.raises(ledger.verify.VerificationError):
        exec(compile(example_code(), "ledger.verify example", "exec"), {})  # noqa: S102 - our own docstring


def test_everything_the_api_names_is_there() -> None:
    missing = [name for name in ledger.verify.__all__ if not hasattr(ledger.verify, name)]
    assert missing == []
    assert {"verify_dossier", "verify_receipt", "walk_log", "audit_store", "TileSource"} <= set(
        ledger.verify.__all__
    )
