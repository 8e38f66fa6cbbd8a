"""Small files that must survive a crash: replaced atomically, or appended to, and fsynced.

What the witness (`ledger/witness/state.py`) and the monitor (`cli/monitor_state.py`) keep
on disk: a write is on the disk, and its directory entry too, before the call returns, so a
witness never answers with a cosignature it could forget, and a monitor never forgets a
checkpoint it accepted. The PostgreSQL ledger keeps its own records in the database.
"""

from __future__ import annotations

import os
from pathlib import Path


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


def fsync_directory(path: Path) -> None:
    """Fsync a directory, so that entries created, renamed or removed in it are durable."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def replace_durably(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` by `data`: a temporary file beside it, fsync, rename over `path`, fsync the directory.

    A crash leaves either the old file or the new one, never a mix. Precondition: no other
    writer replaces `path` at the same time (the callers lock their directory). OSError as
    raised; the temporary file is then removed and the old file stays.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            _write_all(descriptor, data)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        temporary.replace(path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def append_durably(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Append `data` to `path` (created if missing) and fsync it; a crash leaves at most an unfinished tail.

    Precondition: one writer at a time (the callers lock). OSError as raised.
    """
    created = not path.exists()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, mode)
    try:
        _write_all(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    if created:
        fsync_directory(path.parent)
