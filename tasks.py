#!/usr/bin/env python3
"""Task runner: needs nothing but Python 3.11+ (no make, no pre-installed tools).

python3 tasks.py dev     create .venv and install the locked dependencies and the project
python3 tasks.py lint    ruff + mypy --strict
python3 tasks.py test    dev, lint, then the whole test suite (fails if no test ran)
python3 tasks.py bench   run every benchmark in benchmarks/ and print the figures
python3 tasks.py demo    dev, then `evledger demo` on an embedded PostgreSQL
python3 tasks.py serve   dev, then `evledger serve` (extra arguments are passed on)
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
LOCK = ROOT / "requirements" / "dev.lock"
STAMP = VENV / ".lock-sha256"
PYTEST_NO_TESTS_COLLECTED = 5


def run(*cmd: str | Path) -> None:
    """Run a command from the project root; exit with its status when it fails."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    status = subprocess.call([str(c) for c in cmd], cwd=ROOT)
    if status != 0:
        sys.exit(status)


def dev() -> None:
    """Create .venv and install exactly the hashed lock (skipped when the lock is unchanged)."""
    digest = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    if not BIN.joinpath("python").exists():
        venv.create(VENV, with_pip=True)
    pip = (BIN / "python", "-m", "pip", "--disable-pip-version-check", "-q")
    # --no-deps: the lock is the complete, resolved set; pip must not resolve anything itself.
    run(*pip, "install", "--require-hashes", "--no-deps", "-r", LOCK)
    run(*pip, "install", "--no-deps", "--no-build-isolation", "-e", ROOT)
    STAMP.write_text(digest)


def lint() -> None:
    """Static checks that are part of the test command."""
    dev()
    run(BIN / "ruff", "check", "ledger", "cli", "tests", "benchmarks", "tasks.py")
    run(BIN / "ruff", "format", "--check", "ledger", "cli", "tests", "benchmarks", "tasks.py")
    run(BIN / "mypy")


def test(args: list[str]) -> None:
    """Lint, then pytest; pytest's 'no tests collected' counts as a failure."""
    lint()
    print("+ pytest", *args, flush=True)
    status = subprocess.call([str(BIN / "python"), "-m", "pytest", *args], cwd=ROOT)
    if status == PYTEST_NO_TESTS_COLLECTED:
        print("error: pytest collected no tests", file=sys.stderr)
        sys.exit(1)
    sys.exit(status)


def bench(args: list[str]) -> None:
    """Run the benchmark scripts in order; each prints its figures and same-run baselines."""
    dev()
    scripts = sorted(ROOT.glob("benchmarks/bench_*.py"))
    for script in scripts:
        if not args or script.stem in args:
            run(BIN / "python", script)


def evledger(args: list[str]) -> None:
    """Run the project's CLI inside the venv."""
    dev()
    os.execv(BIN / "evledger", [str(BIN / "evledger"), *args])  # noqa: S606 - our own entry point


TASKS = {
    "dev": lambda _args: dev(),
    "lint": lambda _args: lint(),
    "test": test,
    "bench": bench,
    "demo": lambda args: evledger(["demo", *args]),
    "serve": lambda args: evledger(["serve", *args]),
    "evledger": evledger,
}


def main() -> None:
    """Dispatch `tasks.py TASK [ARGS...]`."""
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        print(__doc__)
        sys.exit(2)
    TASKS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
