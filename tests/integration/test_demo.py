"""`evledger demo` end to end, on a scratch database (EVLEDGER_DSN), as the README runs it.

The demo starts two witnesses beside the ledger (issue #11) and shows the quorum in the
verification output; this runs the real command and reads what a newcomer would read.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from ledger_harness import free_port


def three_free_ports() -> int:
    """A port that, with the next two, was free a moment ago: the service's and its two witnesses'."""
    for _ in range(100):
        port = free_port()
        if port + 2 > 65535:
            continue
        try:
            for offset in (1, 2):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return port
    raise AssertionError("no three consecutive free ports")


def test_the_demo_runs_with_two_witnesses_and_shows_the_quorum(fresh_dsn: str, tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("evledger")
    result = subprocess.run(  # noqa: S603 - our own CLI with arguments we built
        [str(cli), "demo", "--data-dir", str(tmp_path / "demo"), "--port", str(three_free_ports())],
        env={**os.environ, "EVLEDGER_DSN": fresh_dsn},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "witness policy" in out
    assert "cosigned 2 times" in out
    assert out.count("cosigned by 2 of 2 required witnesses: qa, notified-body") == 2  # verify, verify-log
    assert "no misbehaviour" in out
    assert "web console: http://127.0.0.1:" in out
    assert "awaits approval" in out  # an open release for a person to approve in the browser
    for name in ("admin.token", "appender.token"):
        assert (tmp_path / "demo" / name).stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "demo" / name).read_text().startswith("evl_")
    assert (tmp_path / "demo" / "witnesses.policy").read_text().endswith("quorum 2\n")
