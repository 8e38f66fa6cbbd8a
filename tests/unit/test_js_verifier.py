"""The browser's verifier (ledger/service/console/static/verify/*.js) passes its own tests under Node.

They run the RFC 9162 vectors the Python core passes, and check signed notes, DSSE envelopes and
a real dossier, tampered bytes included (tests/js/README.md). Node's built-in test runner needs
nothing installed. Without Node, a developer's run skips this, saying so; a CI run fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from ci_mode import ci_requested

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
