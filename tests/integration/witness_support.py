"""Real witnesses for integration tests: `evledger witness serve` processes and their policy file."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ledger_harness import free_port, running_evledger

from ledger.core.keys import ALG_COSIGNATURE_V1, SignerKey

T = TypeVar("T")


@dataclass(frozen=True)
class WitnessSpec:
    """A witness's key (written to `key_path`), its port and its data directory."""

    key: SignerKey
    key_path: Path
    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        """Its submission prefix."""
        return f"http://127.0.0.1:{self.port}"


def make_witness(directory: Path, name: str) -> WitnessSpec:
    """A new witness identity under `directory`/`name` (not running)."""
    key = SignerKey.generate(f"witness.test/{name}", ALG_COSIGNATURE_V1)
    home = directory / name
    home.mkdir(parents=True)
    key_path = home / "witness.key"
    key_path.write_text(key.format() + "\n")
    key_path.chmod(0o600)
    return WitnessSpec(key, key_path, free_port(), home / "state")


def write_policy(path: Path, witnesses: Sequence[WitnessSpec], quorum: int) -> Path:
    """A witness policy file naming `witnesses`, requiring `quorum` of them."""
    lines = [f"witness {w.key.name} {w.key.verifier().format()} {w.url}" for w in witnesses]
    path.write_text("\n".join([*lines, f"quorum {quorum}"]) + "\n")
    return path


@contextmanager
def running_witness(spec: WitnessSpec, log_pub: Path) -> Iterator[WitnessSpec]:
    """Run `evledger witness serve` for `spec`, witnessing the log of `log_pub`, for the block."""
    command = ["witness", "serve", "--key", str(spec.key_path), "--log", str(log_pub)]
    command += ["--data-dir", str(spec.data_dir), "--port", str(spec.port)]
    with running_evledger(command, spec.url):
        yield spec


def wait_for(probe: Callable[[], T | None], seconds: float, what: str) -> T:
    """Poll `probe` until it returns something truthy; AssertionError naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.05)
