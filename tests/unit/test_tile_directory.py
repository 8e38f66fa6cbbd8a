"""Reading a tile directory (`verify-log --tiles DIR`): only regular files, never more than the limit.

A copy of a log is untrusted input. A FIFO planted in it must not make the
verifier wait for a writer; a symlink to `/dev/zero` must not make it read
without end. Each read runs in a child process with a time limit and an address
space limit, so that a reader that hangs or grows fails its test instead of
stalling or exhausting the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.errors import InputError, NotFoundError, TooLargeError, VerificationError
from ledger.verify.tile_source import DirectoryTiles, read_committed

LIMIT = 8192  # a full hash tile
CHILD_SECONDS = 20
CHILD_MEMORY = 1 << 30  # far above what the child needs to import and read; far below what /dev/zero gives

_CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))
from ledger.verify.tile_source import DirectoryTiles
try:
    data = DirectoryTiles(__import__("pathlib").Path(sys.argv[1])).read(sys.argv[2], int(sys.argv[3]))
    print(json.dumps({{"read": len(data)}}))
except Exception as exc:
    print(json.dumps({{"error": type(exc).__name__, "message": str(exc)}}))
"""


def read_in_child(root: Path, path: str, limit: int = LIMIT) -> dict[str, object]:
    """What `DirectoryTiles(root).read(path, limit)` gives, read in a bounded child process."""
    code = _CHILD.format(memory=CHILD_MEMORY)
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter running our own code
            [sys.executable, "-c", code, str(root), path, str(limit)],
            capture_output=True,
            text=True,
            timeout=CHILD_SECONDS,
            check=False,
            cwd=Path(__file__).parents[2],
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {path} did not finish within {CHILD_SECONDS} s")
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "tile" / "0").mkdir(parents=True)
    (tmp_path / "tile" / "entries").mkdir(parents=True)
    return tmp_path


def test_a_symlink_to_dev_zero_is_refused_by_name_without_reading(root: Path) -> None:
    (root / "tile/0/000").symlink_to("/dev/zero")
    outcome = read_in_child(root, "tile/0/000")
    assert outcome == {
        "error": "InputError",
        "message": f"{root / 'tile/0/000'} is a character device, not a regular file: "
        "a tile directory holds only regular files",
    }


def test_a_fifo_is_refused_at_once_instead_of_waiting_for_a_writer(root: Path) -> None:
    os.mkfifo(root / "tile/entries/000")
    outcome = read_in_child(root, "tile/entries/000")
    assert outcome["error"] == "InputError"
    assert f"{root / 'tile/entries/000'} is a FIFO, not a regular file" in str(outcome["message"])


def test_a_directory_where_a_tile_should_be_is_refused_by_name(root: Path) -> None:
    (root / "tile/0/000").mkdir()
    with pytest.raises(InputError, match="tile/0/000 is a directory, not a regular file"):
        DirectoryTiles(root).read("tile/0/000", LIMIT)


def test_an_oversized_file_is_refused_by_name_after_reading_at_most_the_limit(root: Path) -> None:
    (root / "tile/0/000").write_bytes(b"h" * (LIMIT + 1))
    with pytest.raises(TooLargeError, match=f"{root / 'tile/0/000'} is over {LIMIT} bytes"):
        DirectoryTiles(root).read("tile/0/000", LIMIT)
    # What the checkpoint commits to is then a failed verification, as from a server.
    with pytest.raises(VerificationError, match=f"covers tile/0/000, but {root / 'tile/0/000'} is over"):
        read_committed(DirectoryTiles(root), "tile/0/000", LIMIT)


def test_a_symlink_to_a_regular_file_is_read(root: Path) -> None:
    (root / "elsewhere").write_bytes(b"h" * 64)
    (root / "tile/0/000").symlink_to(root / "elsewhere")
    assert DirectoryTiles(root).read("tile/0/000", 64) == b"h" * 64


@pytest.mark.parametrize("size", [0, 1, LIMIT - 1, LIMIT])
def test_regular_files_up_to_the_limit_are_read_whole(root: Path, size: int) -> None:
    (root / "tile/0/000").write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    assert DirectoryTiles(root).read("tile/0/000", LIMIT) == (root / "tile/0/000").read_bytes()


def test_a_missing_file_is_not_found(root: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        DirectoryTiles(root).read("tile/0/001", LIMIT)
    (root / "tile/0/000").write_bytes(b"x")
    with pytest.raises(NotFoundError, match="does not exist"):
        DirectoryTiles(root).read("tile/0/000/x", LIMIT)
