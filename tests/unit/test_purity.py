"""ledger/core and ledger/evidence stay pure: importing all of them pulls in no I/O framework."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("asyncio", "asyncpg", "litestar", "typer", "granian", "httpx")
PROBE = """
import importlib, pkgutil, sys
import ledger.core, ledger.evidence
for package in (ledger.core, ledger.evidence):
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
print(",".join(sorted(name for name in %r if name in sys.modules)))
"""


def test_the_pure_packages_import_no_io_framework() -> None:
    # A fresh interpreter: pytest itself has imported asyncio and friends in this one.
    done = subprocess.run(  # noqa: S603 - our own interpreter and probe
        [sys.executable, "-c", PROBE % (FORBIDDEN,)], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""
