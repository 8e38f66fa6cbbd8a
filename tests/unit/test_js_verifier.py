"""The browser's verifier (ledger/service/console/static/verify/*.js) passes its own tests under Node.

They run the RFC 9162 vectors the Python core passes, and check signed notes, DSSE envelopes,
entries, a real dossier and the dossiers of tests/js/fixtures/dossiers.json, each attack on them
refused (tests/js/README.md). Node's built-in test runner needs nothing installed. Without Node, a
developer's run skips this, saying so; a CI run fails. The Python verifier is held here to the same
dossiers: it passes the valid ones and refuses each attack with the reason the JS tests expect.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ci_mode import ci_requested

from ledger.core.keys import parse_verifier_key
from ledger.errors import VerificationError
from ledger.verify.dossier import decode_dossier, verify_dossier

ROOT = Path(__file__).resolve().parents[2]


def test_the_javascript_verifier_passes_its_tests_and_the_rfc9162_vectors() -> None:
    node = shutil.which("node")
    if node is None:
        reason = "Node.js is not installed: the browser verifier's tests (tests/js) did not run"
        if ci_requested():
            pytest.fail(reason)
        pytest.skip(reason)
    done = subprocess.run(  # noqa: S603 - Node's own test runner on the project's tests
        [node, "--test", "tests/js/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
    assert "# skipped 0" in done.stdout or not ci_requested(), "a CI run skipped browser verifier tests"


DOSSIERS = ROOT / "tests" / "js" / "fixtures" / "dossiers.json"


def _stored() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DOSSIERS.read_text(encoding="utf-8"))
    return data


def _verify(data: dict[str, Any], key: str) -> None:
    verify_dossier(decode_dossier(json.dumps(data), "the dossier"), parse_verifier_key(key))


@pytest.mark.parametrize("name", sorted(_stored()["valid"]))
def test_the_python_verifier_passes_the_valid_dossiers_the_javascript_one_passes(name: str) -> None:
    stored = _stored()
    _verify(stored["valid"][name], stored["ledger"])


@pytest.mark.parametrize("attack", [a["attack"] for a in _stored()["attacks"]])
def test_the_python_verifier_refuses_each_attack_the_javascript_one_refuses_for_the_same_reason(
    attack: str,
) -> None:
    """tests/js/dossier.test.mjs holds the JS verifier to the same dossiers and reasons: both stay in step."""
    stored = _stored()
    (case,) = [a for a in stored["attacks"] if a["attack"] == attack]
    with pytest.raises(VerificationError) as refused:
        _verify(case["dossier"], stored["ledger"])
    assert re.search(case["reason"], str(refused.value)), str(refused.value)


def test_the_attacks_cover_what_the_browser_verifier_is_asked_to_refuse() -> None:
    named = {a["attack"] for a in _stored()["attacks"]}
    assert named >= {
        "a tampered entry byte",
        "a signature by a revoked key",
        "a signature replayed from another entry",
        "an approval by a key lacking the role",
        "a missing release event (chain gap)",
        "a forged index proof",
        "a reordered entry",
        "a dossier with an unknown field",
    }
