"""The monitor's state directory (docs/monitor.md#state-directory), and the durable writes it takes.

`StateDir` is one directory per followed ledger, locked (`flock` on `lock`) while a monitor
uses it: `history.jsonl` (`ledger.verify.monitor_history.MonitorHistory`'s format, created by
temp + fsync + rename, then appended with fsync), `alerts.jsonl` (appended with fsync), and
`mirror/`, the tiles of the newest accepted checkpoint in the C2SP tlog-tiles layout, fed
from `pending/`, where the tiles of a checkpoint under verification wait until it is accepted
(`fetch_missing`, `StagedTiles`, `commit_mirror`). Tiles reach the mirror before the
checkpoint reaches the history, so the history never names a checkpoint whose tiles are
missing.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from cli.tile_source import HttpTiles
from ledger.core.keys import VerifierKey
from ledger.core.tiles import tiles_for_size
from ledger.errors import InputError
from ledger.storage.durable_files import append_durably, fsync_directory, replace_durably
from ledger.verify.monitor_history import AcceptedCheckpoint, Alert, MonitorHistory
from ledger.verify.tile_source import MAX_BUNDLE_BYTES, MAX_TILE_BYTES, DirectoryTiles, read_committed

HISTORY_FILE = "history.jsonl"
ALERTS_FILE = "alerts.jsonl"
LOCK_FILE = "lock"
MIRROR_DIR = "mirror"
PENDING_DIR = "pending"


def utc_stamp() -> str:
    """The current UTC time to the second, as the monitor's log lines, alerts and webhook messages give it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StateDir:
    """The monitor's state directory (docs/monitor.md#state-directory), locked while a monitor uses it."""

    def __init__(self, root: Path) -> None:
        """Use `root` (created with mode 0700 if missing). Enter `locked()` before anything else."""
        self.root = root
        self.history_path = root / HISTORY_FILE
        self.alerts_path = root / ALERTS_FILE
        self.mirror = root / MIRROR_DIR
        self.pending = root / PENDING_DIR
        self._lock: IO[bytes] | None = None

    @contextmanager
    def locked(self) -> Iterator[StateDir]:
        """Hold the directory's lock for the block; InputError when another monitor holds it."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        with (self.root / LOCK_FILE).open("ab") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError(f"another monitor is using the state directory {self.root}") from None
            self._lock = lock
            try:
                self.mirror.mkdir(exist_ok=True)
                yield self
            finally:
                self._lock = None

    def load_history(self, verifier: VerifierKey) -> MonitorHistory:
        """The history kept here, or a new one (its header written) for a new directory.

        An unfinished last line (a crash in the middle of an append) is dropped from the file.
        """
        if not self.history_path.exists():
            history = MonitorHistory(verifier)
            replace_durably(self.history_path, history.header_line().encode())
            return history
        text = self.history_path.read_text(encoding="utf-8")
        history = MonitorHistory.loads(text, verifier, str(self.history_path))
        if not text.endswith("\n"):
            replace_durably(self.history_path, text[: text.rfind("\n") + 1].encode())
        return history

    def record(self, accepted: AcceptedCheckpoint) -> None:
        """Append an accepted checkpoint to the history file."""
        append_durably(self.history_path, accepted.to_json_line().encode())

    def record_alert(self, server: str, alert: Alert) -> None:
        """Append an alert to the alert log (one JSON object a line, with the time and the server)."""
        entry = {"time": utc_stamp(), "server": server, **alert.to_json()}
        append_durably(self.alerts_path, (json.dumps(entry, sort_keys=True) + "\n").encode())


def needed_paths(size: int) -> dict[str, int]:
    """Every tile and entry bundle path a checkpoint of `size` covers, with its read limit."""
    paths: dict[str, int] = {}
    for tile in tiles_for_size(size):
        paths[tile.path()] = MAX_TILE_BYTES
        if tile.level == 0:
            paths[tile.entries_path()] = MAX_BUNDLE_BYTES
    return paths


class StagedTiles:
    """The tiles of a checkpoint under verification: fetched ones in `pending`, the rest in the mirror."""

    def __init__(self, state: StateDir, http: HttpTiles) -> None:
        """Read `state`'s pending and mirror directories; name paths by their URL on `http`'s server."""
        self._pending = DirectoryTiles(state.pending)
        self._mirror = DirectoryTiles(state.mirror)
        self._state = state
        self._http = http

    def describe(self, path: str) -> str:
        """The URL `path` was (or would be) fetched from."""
        return self._http.describe(path)

    def read(self, path: str, limit: int) -> bytes:
        """The fetched copy of `path`, else the mirrored one; NotFoundError when neither has it."""
        if (self._state.pending / path).is_file():
            return self._pending.read(path, limit)
        return self._mirror.read(path, limit)


def fetch_missing(state: StateDir, http: HttpTiles, size: int) -> int:
    """Fetch into `pending` every path a checkpoint of `size` covers that the mirror lacks; return how many.

    A path the server does not have fails verification (the log withholds what it signed).
    """
    fetched = 0
    for path, limit in needed_paths(size).items():
        if (state.mirror / path).is_file():
            continue
        data = read_committed(http, path, limit)
        target = state.pending / path
        target.parent.mkdir(parents=True, exist_ok=True)
        replace_durably(target, data)
        fetched += 1
    return fetched


def commit_mirror(state: StateDir, accepted: AcceptedCheckpoint) -> None:
    """Move the fetched tiles into the mirror, write its checkpoint, drop partial tiles it no longer needs.

    Afterwards the mirror is a tile directory of exactly the accepted checkpoint
    (`evledger verify-log --tiles DIR` reads it), apart from full tiles, which never change.
    """
    directories: set[Path] = set()
    if state.pending.exists():
        for source in sorted(p for p in state.pending.rglob("*") if p.is_file()):
            target = state.mirror / source.relative_to(state.pending)
            target.parent.mkdir(parents=True, exist_ok=True)
            source.replace(target)
            directories.add(target.parent)
    for directory in sorted(directories):
        fsync_directory(directory)
    replace_durably(state.mirror / "checkpoint", accepted.note.encode())
    needed = needed_paths(accepted.checkpoint.size)
    for stale in [p for p in (state.mirror / "tile").rglob("*") if p.is_file() and p.parent.suffix == ".p"]:
        if stale.relative_to(state.mirror).as_posix() not in needed:
            stale.unlink()
            if not any(stale.parent.iterdir()):
                stale.parent.rmdir()
    clear_pending(state)


def clear_pending(state: StateDir) -> None:
    """Drop what was fetched for a checkpoint that was not accepted."""
    shutil.rmtree(state.pending, ignore_errors=True)
