"""The pure parts of the whole-log audits: rebuilding tiles from leaves, naming the slot that differs.

The tiles a `TileBuilder` hands out are cross-checked against tiles computed
straight from the naive reference tree (tests/unit/reference_tree.py): each
hash of tile (L, N) is the MTH of the 256^L leaves under it.
"""

from __future__ import annotations

import hashlib
import io
import sys

import pytest
from reference_tree import ReferenceTree

from ledger.core.compact_range import root_from_leaf_hashes
from ledger.core.tiles import TILE_WIDTH, Tile, tiles_for_size
from ledger.errors import NotFoundError, TooLargeError, VerificationError
from ledger.verify import log_walk
from ledger.verify.tile_source import DirectoryTiles, read_committed
from ledger.verify.tree_check import (
    BuiltTile,
    Progress,
    TileBuilder,
    compare_tile,
    covered_entries,
    describe_slot,
)


def leaves(count: int) -> list[bytes]:
    return [hashlib.sha256(b"\x00leaf %d" % i).digest() for i in range(count)]


def build(count: int) -> tuple[list[BuiltTile], TileBuilder]:
    builder = TileBuilder()
    tiles: list[BuiltTile] = []
    for leaf in leaves(count):
        tiles.extend(builder.append(leaf))
    return tiles + builder.partial_tiles(), builder


def reference_tile(tree: ReferenceTree, tile: Tile) -> bytes:
    span = TILE_WIDTH**tile.level
    first = tile.index * TILE_WIDTH * span
    return b"".join(tree.mth(first + k * span, first + (k + 1) * span) for k in range(tile.width))


@pytest.mark.parametrize("count", [0, 1, 2, 255, 256, 257, 511, 512, 513, 300, 256 * 256 + 3])
def test_builder_yields_exactly_the_tiles_of_the_tree(count):
    built, builder = build(count)
    assert sorted((b.tile for b in built), key=lambda t: (t.level, t.index)) == list(tiles_for_size(count))
    tree = ReferenceTree(leaves(count))
    for item in built:
        assert item.hashes == reference_tile(tree, item.tile), item.tile
    assert builder.root() == root_from_leaf_hashes(leaves(count))
    assert builder.size == count


def test_builder_hands_out_full_tiles_as_soon_as_they_are_full():
    builder = TileBuilder()
    full_at = {}
    for index, leaf in enumerate(leaves(256 * 256)):
        for item in builder.append(leaf):
            full_at[(item.tile.level, item.tile.index)] = index
    assert full_at[(0, 0)] == 255
    assert full_at[(0, 1)] == 511
    assert full_at[(1, 0)] == 256 * 256 - 1
    # 65,536 leaves: every level-0 and level-1 tile is full; level 2 holds the root alone.
    assert [b.tile for b in builder.partial_tiles()] == [Tile(2, 0, 1)]


def test_covered_entries_and_slot_names():
    assert covered_entries(Tile(0, 1, 46), 44) == (300, 300)
    assert covered_entries(Tile(1, 0, 2), 1) == (256, 511)
    assert covered_entries(Tile(2, 1, 1), 0) == (256**3, 256**3 + 256**2 - 1)
    assert describe_slot(Tile(0, 1, 46), 44) == "slot 44 (entry 300)"
    assert describe_slot(Tile(1, 0, 2), 1) == "slot 1 (entries 256..511)"


def test_compare_tile_accepts_the_same_bytes():
    built, _ = build(300)
    for item in built:
        compare_tile(item, item.hashes, "here")


def test_forged_level0_hash_is_named_with_its_entry():
    built, _ = build(300)
    item = next(b for b in built if b.tile == Tile(0, 1, 44))
    forged = bytearray(item.hashes)
    forged[32 * 10 + 5] ^= 1
    with pytest.raises(VerificationError) as caught:
        compare_tile(item, bytes(forged), "copy/tile/0/001.p/44")
    assert "hash tile tile/0/001.p/44" in str(caught.value)
    assert "slot 10 (entry 266)" in str(caught.value)
    assert caught.value.expected == bytes(forged[320:352]).hex()
    assert caught.value.calculated == item.hashes[320:352].hex()


def test_forged_upper_hash_is_named_with_its_entry_range():
    built, _ = build(600)
    item = next(b for b in built if b.tile.level == 1)
    forged = bytes(32) + item.hashes[32:]
    with pytest.raises(VerificationError, match=r"tile/1/000\.p/2.*slot 0 \(entries 0\.\.255\)"):
        compare_tile(item, forged, "server")


def test_tile_of_the_wrong_width_is_refused():
    built, _ = build(300)
    item = built[-1]
    with pytest.raises(VerificationError, match="bytes, not"):
        compare_tile(item, item.hashes + bytes(32), "server")
    with pytest.raises(VerificationError, match="bytes, not"):
        compare_tile(item, item.hashes[:-1], "server")


def test_directory_source_reads_and_refuses(tmp_path):
    (tmp_path / "tile" / "0").mkdir(parents=True)
    (tmp_path / "tile" / "0" / "000").write_bytes(b"x" * 64)
    source = DirectoryTiles(tmp_path)
    assert source.read("tile/0/000", 64) == b"x" * 64
    assert source.describe("tile/0/000") == str(tmp_path / "tile/0/000")
    with pytest.raises(TooLargeError):
        source.read("tile/0/000", 63)
    with pytest.raises(NotFoundError):
        source.read("tile/0/001", 64)
    with pytest.raises(NotFoundError):
        source.read("tile/0/000/x", 64)
    # What the checkpoint commits to but the copy lacks is a failed verification, not bad input.
    with pytest.raises(VerificationError, match="covers tile/entries/000"):
        read_committed(source, "tile/entries/000", 10)


def test_progress_draws_only_when_enabled(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    silent = Progress("audit", 10, enabled=False)
    silent.advance(5)
    silent.close()
    assert stream.getvalue() == ""
    shown = Progress("audit", 10, enabled=True)
    shown._last -= 10
    shown.advance(5)
    shown.close()
    assert "audit: 5/10 entries (50%" in stream.getvalue()
    assert stream.getvalue().endswith("\r\033[K")


def test_helpers_start_only_for_a_log_worth_them(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(log_walk.os, "cpu_count", lambda: 4)
    assert log_walk.default_jobs(log_walk.HELPERS_FROM_ENTRIES - 1) == 0
    assert log_walk.default_jobs(log_walk.HELPERS_FROM_ENTRIES) == 4
    monkeypatch.setattr(log_walk.os, "cpu_count", lambda: 1)
    assert log_walk.default_jobs(10**6) == 0
