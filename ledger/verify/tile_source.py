"""Where a whole-log walk reads a log's tiles from: the `TileSource` interface, and a directory copy.

Sources speak the C2SP tlog-tiles paths (`checkpoint`, `tile/<L>/<N>[.p/<W>]`,
`tile/entries/<N>[.p/<W>]`, docs/formats.md). Nothing read here is trusted:
the verifier checks every byte against the signed checkpoint. A path the
checkpoint commits to but the source does not have is a failed verification
(the log withholds data it signed for), not an input error. `DirectoryTiles`
reads a copy on disk; a source over HTTP (the CLI's `HttpTiles`) is the
caller's, as any other `TileSource` may be. `Prefetcher` reads ahead of the walk.
"""

from __future__ import annotations

import os
import stat
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Protocol, Self

from ledger.core.hashing import HASH_SIZE
from ledger.core.tiles import MAX_ENTRY_SIZE, TILE_WIDTH
from ledger.errors import InputError, NotFoundError, TooLargeError, VerificationError

MAX_CHECKPOINT_BYTES = 1 << 16
MAX_TILE_BYTES = TILE_WIDTH * HASH_SIZE
MAX_BUNDLE_BYTES = TILE_WIDTH * (2 + MAX_ENTRY_SIZE)


class TileSource(Protocol):
    """Reads tlog-tiles paths; raises NotFoundError for a path it does not have.

    Implementations need not be thread-safe: `Prefetcher` uses one at a time.
    """

    def describe(self, path: str) -> str:
        """Where `path` is read from, for messages (a URL or a file name)."""
        ...

    def read(self, path: str, limit: int) -> bytes:
        """The bytes at `path`; TooLargeError when over `limit` bytes."""
        ...


class DirectoryTiles:
    """Tiles from a directory holding the same layout as the HTTP paths.

    Only regular files are read, and never more than the limit plus one byte: a
    FIFO, a device or a socket planted in the copy (or a symlink to one, such as
    `/dev/zero`) is an input error naming the file, never a hang or an endless read.
    """

    def __init__(self, root: Path) -> None:
        """Read below `root`."""
        self._root = root

    def describe(self, path: str) -> str:
        """The file name of `path`."""
        return str(self._root / path)

    def read(self, path: str, limit: int) -> bytes:
        """The bytes of `root/path`, each refusal naming the file.

        NotFoundError when there is no such file, InputError when it is not a regular
        file (after following symlinks), TooLargeError when it is over `limit` bytes.
        """
        file = self._root / path
        try:
            # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
            descriptor = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFoundError(f"{file} does not exist") from exc
        except OSError as exc:
            raise InputError(f"cannot read {file}: {exc.strerror or exc}") from exc
        # Checked after opening, so that what is checked is what is read (no swap in between).
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            os.close(descriptor)
            raise InputError(
                f"{file} is {_file_kind(status.st_mode)}, not a regular file: "
                "a tile directory holds only regular files"
            )
        with os.fdopen(descriptor, "rb", buffering=0) as stream:
            data = _read_at_most(stream, limit, status.st_size)
        if len(data) > limit:
            raise TooLargeError(f"{file} is over {limit} bytes")
        return data


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
    )  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "a special file")


_CHUNK = 1 << 20


def _read_at_most(stream: BinaryIO, limit: int, size: int) -> bytes:
    """Read to the end, but never more than `limit + 1` bytes (a file may grow after fstat).

    The first read asks for the size fstat gave, plus one: a whole tile in one call,
    without allocating the whole limit (16 MiB for a bundle) for an 8 KiB tile.
    """
    parts: list[bytes] = []
    total = 0
    want = min(size, limit) + 1
    while total <= limit:
        chunk = stream.read(want)
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
        want = min(_CHUNK, limit + 1 - total)
    return b"".join(parts)


def read_committed(source: TileSource, path: str, limit: int) -> bytes:
    """Read a path the checkpoint commits to: its absence or an oversized body fails verification."""
    try:
        return source.read(path, limit)
    except (NotFoundError, TooLargeError) as exc:
        raise VerificationError(f"the log's checkpoint covers {path}, but {exc}") from exc


class Prefetcher:
    """Runs every read on one background thread, in submission order.

    Submitting the next tile before hashing the current one overlaps network
    (or disk) time with hashing and signature checks. One thread means the
    source is never used concurrently, so it need not be thread-safe.
    """

    def __init__(self, source: TileSource) -> None:
        """Read from `source`."""
        self._source = source
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evledger-fetch")

    def __enter__(self) -> Self:
        """The prefetcher itself."""
        return self

    def __exit__(self, *_: object) -> None:
        """Drop queued reads and stop the thread."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, path: str, limit: int) -> Future[bytes]:
        """Queue a read of a committed path (see `read_committed`); its errors surface on `.result()`."""
        return self._pool.submit(read_committed, self._source, path, limit)
