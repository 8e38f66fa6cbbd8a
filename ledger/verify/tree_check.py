"""Rebuilding a log's hash tiles from its leaves, for the whole-log audits (`verify-log`, `audit`).

A `TileBuilder` takes leaf hashes in log order and extends a compact range
(O(log n) memory); every node it completes at a tree level that is a multiple
of 8 is the next hash of a tile (C2SP tlog-tiles), so the builder hands out
each tile as soon as it is full, and the partial right-most tiles at the end.
The caller compares them with the tiles it was served: the builder keeps at
most one open tile (256 hashes) per tile level, never the log.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from ledger.core.compact_range import CompactRange
from ledger.core.hashing import HASH_SIZE
from ledger.core.tiles import TILE_HEIGHT, TILE_WIDTH, Tile
from ledger.errors import VerificationError

PROGRESS_INTERVAL = 0.25  # seconds between progress redraws: cheap, and readable


@dataclass(frozen=True, slots=True)
class BuiltTile:
    """A hash tile rebuilt from the leaves: its coordinates and its concatenated 32-byte hashes."""

    tile: Tile
    hashes: bytes


def covered_entries(tile: Tile, slot: int) -> tuple[int, int]:
    """The first and last entry index under hash `slot` of `tile` (equal for a level-0 tile)."""
    height = TILE_HEIGHT * tile.level
    first = (tile.index * TILE_WIDTH + slot) << height
    return first, first + (1 << height) - 1


def describe_slot(tile: Tile, slot: int) -> str:
    """Plain words for one hash of a tile: `slot 44 (entry 300)` or `slot 1 (entries 256..511)`."""
    first, last = covered_entries(tile, slot)
    return f"slot {slot} (entry {first})" if first == last else f"slot {slot} (entries {first}..{last})"


class TileBuilder:
    """Rebuilds every hash tile of a tree from its leaf hashes, in log order, in O(log n) memory."""

    __slots__ = ("_open", "compact")

    def __init__(self) -> None:
        """Start with the empty tree."""
        self.compact = CompactRange()
        self._open: list[list[bytes]] = []  # per tile level: the hashes of its current, not yet full tile

    @property
    def size(self) -> int:
        """How many leaves were appended."""
        return self.compact.size

    def append(self, leaf: bytes) -> list[BuiltTile]:
        """Append the next leaf hash; return the tiles (lowest level first) that it made full.

        Precondition: `leaf` is the 32-byte leaf hash of entry `self.size`.
        """
        index = self.compact.size
        full: list[BuiltTile] = []
        for level, node in self.compact.append(leaf):
            if level % TILE_HEIGHT:
                continue
            tile_level = level // TILE_HEIGHT
            if tile_level == len(self._open):
                self._open.append([])
            hashes = self._open[tile_level]
            hashes.append(node)
            if len(hashes) == TILE_WIDTH:
                tile_index = (index >> level) // TILE_WIDTH
                full.append(BuiltTile(Tile(tile_level, tile_index, TILE_WIDTH), b"".join(hashes)))
                hashes.clear()
        return full

    def partial_tiles(self) -> list[BuiltTile]:
        """The right-most tile of every level that is not full, lowest level first (none for 0 leaves)."""
        tiles = []
        for tile_level, hashes in enumerate(self._open):
            if hashes:
                nodes = self.compact.size >> (TILE_HEIGHT * tile_level)
                tile = Tile(tile_level, nodes // TILE_WIDTH, len(hashes))
                tiles.append(BuiltTile(tile, b"".join(hashes)))
        return tiles

    def root(self) -> bytes:
        """The Merkle tree hash of the leaves appended so far."""
        return self.compact.root()


def compare_tile(built: BuiltTile, served: bytes, source: str) -> None:
    """Check that a served tile holds exactly the rebuilt hashes; VerificationError names the first slot.

    `source` says where the served bytes come from (a URL or file), for the message.
    """
    if served == built.hashes:
        return
    tile = built.tile
    width = len(built.hashes) // HASH_SIZE
    if len(served) != len(built.hashes):
        raise VerificationError(
            f"hash tile {tile.path()} from {source} is {len(served)} bytes, not {width} hashes",
            expected=str(len(built.hashes)),
            calculated=str(len(served)),
            labels=("bytes rebuilt", "bytes served"),
        )
    slot = next(
        k
        for k in range(width)
        if served[k * HASH_SIZE : (k + 1) * HASH_SIZE] != built.hashes[k * HASH_SIZE : (k + 1) * HASH_SIZE]
    )
    what = "the leaf hash of that entry" if tile.level == 0 else "the subtree root rebuilt from those entries"
    raise VerificationError(
        f"hash tile {tile.path()} from {source}, {describe_slot(tile, slot)}, is not {what}",
        expected=served[slot * HASH_SIZE : (slot + 1) * HASH_SIZE].hex(),
        calculated=built.hashes[slot * HASH_SIZE : (slot + 1) * HASH_SIZE].hex(),
        labels=("served hash", "rebuilt hash"),
    )


class Progress:
    """A one-line counter on stderr, redrawn in place at most every PROGRESS_INTERVAL seconds.

    Disabled (every call a no-op) unless `enabled`; callers pass
    `not json_output and sys.stderr.isatty()` so machine output stays clean.
    """

    __slots__ = ("_drawn", "_enabled", "_label", "_last", "_start", "_total", "done")

    def __init__(self, label: str, total: int, *, enabled: bool) -> None:
        """Count towards `total` items (entries)."""
        self._label = label
        self._total = total
        self._enabled = enabled
        self._start = self._last = time.monotonic()
        self._drawn = False
        self.done = 0

    @property
    def elapsed(self) -> float:
        """Seconds since the counter was created."""
        return time.monotonic() - self._start

    def rate(self) -> float:
        """Items per second so far (0 before any time has passed)."""
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0

    def advance(self, count: int) -> None:
        """Count `count` more items done; redraw when the interval has passed."""
        self.done += count
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            percent = 100 * self.done / self._total if self._total else 100.0
            sys.stderr.write(
                f"\r{self._label}: {self.done:,}/{self._total:,} entries "
                f"({percent:.0f}%, {self.rate():,.0f}/s)"
            )
            sys.stderr.flush()
            self._drawn = True

    def close(self) -> None:
        """Erase the counter line, if one was drawn."""
        if self._drawn:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self._drawn = False
