"""C2SP tlog-tiles math: tile coordinates, paths, tile subtree hashes, entry bundles.

A hash tile at level L, index N holds up to 256 consecutive hashes of the tree
nodes at tree level 8·L (C2SP tlog-tiles, "Merkle Tree"): tile 0/N holds leaf
hashes, tile 1/N the roots of 256-leaf subtrees, and so on. A tile is *full*
at width 256 and then immutable; the right-most tile of a level is *partial*.
An entry bundle holds the entries of the leaves of the level-0 tile N.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ledger.core.hashing import HASH_SIZE, node_hash
from ledger.errors import EncodingError, InputError, TooLargeError

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_ENTRY_SIZE = 0xFFFF
_LENGTH_PREFIX = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class Tile:
    """Hash tile coordinates; `width` is 1..256 (256 = full)."""

    level: int
    index: int
    width: int

    @property
    def is_full(self) -> bool:
        """Full tiles never change again and may be cached forever."""
        return self.width == TILE_WIDTH

    def path(self) -> str:
        """`tile/<L>/<N>[.p/<W>]` as C2SP tlog-tiles spells it."""
        return f"tile/{self.level}/{encode_index(self.index)}{_partial_suffix(self.width)}"

    def entries_path(self) -> str:
        """`tile/entries/<N>[.p/<W>]` for the entry bundle of a level-0 tile."""
        return f"tile/entries/{encode_index(self.index)}{_partial_suffix(self.width)}"


def _partial_suffix(width: int) -> str:
    return "" if width == TILE_WIDTH else f".p/{width}"


def encode_index(n: int) -> str:
    """Encode a tile index in 3-digit groups, all but the last prefixed by `x` (1234067 → x001/x234/067)."""
    if n < 0:
        raise InputError(f"tile index {n} is negative")
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


MAX_TILE_INDEX = (1 << 64) - 1  # C2SP tlog-tiles: N is a uint64
# 2^64 - 1 has 20 digits: 7 groups of 3. More groups name no tile; refused before int() ever sees
# them (Python refuses to convert a string of more than 4,300 digits, which would be an internal error).
MAX_INDEX_GROUPS = len(str(MAX_TILE_INDEX)) // 3 + 1
MAX_TILE_LEVEL = 8  # tile level L holds tree level 8·L: level 8 holds the root of 2^64 leaves
_INDEX_PATH = re.compile(
    rf"((?:x[0-9]{{3}}/){{0,{MAX_INDEX_GROUPS - 1}}})([0-9]{{3}})(?:\.p/([0-9]{{1,3}}))?"
)
_LEVEL = re.compile(r"0|[1-9][0-9]{0,2}")
_SHOWN = 48  # characters of a refused path quoted in the message


def _shown(path: str) -> str:
    """A refused path as a message quotes it: whole when short, else its start and its length."""
    if len(path) <= _SHOWN:
        return repr(path)
    return f"{path[:_SHOWN]!r}… ({len(path):,} characters)"


def parse_index_path(path: str) -> tuple[int, int]:
    """Parse `<N>[.p/<W>]` back into (index, width); refuse non-canonical spellings (EncodingError).

    C2SP tlog-tiles: N in 3-digit groups, all but the last prefixed with `x`, no
    leading zero group; W from 1 to 255. N is a uint64, so at most 7 groups and
    at most 2^64 - 1: anything longer is refused unread, whatever its digits.
    """
    match = _INDEX_PATH.fullmatch(path)
    if not match:
        raise EncodingError(
            f"{_shown(path)} is not a tile index path (1 to {MAX_INDEX_GROUPS} groups of 3 digits, "
            "all but the last prefixed with x, then optionally .p/<width>)"
        )
    groups = [g[1:] for g in match.group(1).split("/") if g] + [match.group(2)]
    if len(groups) > 1 and groups[0] == "000":
        raise EncodingError(f"{_shown(path)} has a leading zero group")
    index = int("".join(groups))
    if index > MAX_TILE_INDEX:
        raise EncodingError(f"{_shown(path)} names a tile index past 2^64 - 1")
    width_text = match.group(3)
    if width_text is None:
        return index, TILE_WIDTH
    width = int(width_text)
    if width_text != str(width) or not 0 < width < TILE_WIDTH:
        raise EncodingError(f"{_shown(path)} has a partial width outside 1..255")
    return index, width


def parse_tile_path(path: str) -> tuple[int | None, int, int]:
    """Parse what follows `tile/` in a C2SP tlog-tiles URL: (level, index, width).

    `<L>/<N>[.p/<W>]` is a hash tile of level L (0 to 8, no leading zeros);
    `entries/<N>[.p/<W>]` an entry bundle, whose level is None. EncodingError
    for anything else, before any number in it is converted.
    """
    head, _, rest = path.partition("/")
    if head == "entries":
        return (None, *parse_index_path(rest))
    if not _LEVEL.fullmatch(head) or int(head) > MAX_TILE_LEVEL:
        raise EncodingError(f"tile level {_shown(head)} is not a level from 0 to {MAX_TILE_LEVEL}")
    return (int(head), *parse_index_path(rest))


def tile_width(level: int, index: int, tree_size: int) -> int:
    """Width of tile (level, index) in a tree of `tree_size`; 0 when the tile does not exist yet."""
    nodes = tree_size >> (TILE_HEIGHT * level)
    return max(0, min(TILE_WIDTH, nodes - index * TILE_WIDTH))


def tiles_for_size(tree_size: int) -> Iterator[Tile]:
    """Every hash tile of a tree, lowest level first: the full ones, then the partial one if any."""
    level = 0
    while (nodes := tree_size >> (TILE_HEIGHT * level)) > 0:
        full, rest = divmod(nodes, TILE_WIDTH)
        for index in range(full):
            yield Tile(level, index, TILE_WIDTH)
        if rest:
            yield Tile(level, full, rest)
        level += 1


def tiles_changed(old_size: int, new_size: int) -> Iterator[Tile]:
    """The tiles (at their new widths) that growing the tree from old_size to new_size writes."""
    level = 0
    while (new_nodes := new_size >> (TILE_HEIGHT * level)) > 0:
        old_nodes = old_size >> (TILE_HEIGHT * level)
        if new_nodes != old_nodes:
            for index in range(old_nodes // TILE_WIDTH, (new_nodes - 1) // TILE_WIDTH + 1):
                yield Tile(level, index, tile_width(level, index, new_size))
        level += 1


def locate_node(level: int, index: int) -> tuple[int, int, int, int]:
    """Where node (level, index) lies: (tile level, tile index, height in the tile, first slot).

    The node is the root of the 2^height consecutive hashes of that tile starting
    at slot `first`; the tile must be at least `first + 2^height` wide. Plain
    integers: the proof routes call this for every node of every proof.
    """
    tile_level, height = divmod(level, TILE_HEIGHT)
    tile_index, first = divmod(index << height, TILE_WIDTH)
    return tile_level, tile_index, height, first


def subtree_hash(hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree over 2^k consecutive node hashes (k >= 0)."""
    count = len(hashes)
    if count == 0 or count & (count - 1):
        raise InputError(f"a perfect subtree needs a power-of-two count of hashes, got {count}")
    level = list(hashes)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def node_from_tile(tile_data: bytes, height: int, first: int) -> bytes:
    """Hash of the node rooted `height` levels above slots [first, first + 2^height) of a tile."""
    end = first + (1 << height)
    if len(tile_data) % HASH_SIZE or len(tile_data) < end * HASH_SIZE:
        raise InputError(f"tile of {len(tile_data)} bytes does not hold slots up to {end}")
    return subtree_hash(split_tile(tile_data[first * HASH_SIZE : end * HASH_SIZE]))


def split_tile(tile_data: bytes) -> list[bytes]:
    """Cut a tile's bytes into its 32-byte hashes."""
    if len(tile_data) % HASH_SIZE:
        raise EncodingError(f"tile of {len(tile_data)} bytes is not a whole number of hashes")
    return [tile_data[i : i + HASH_SIZE] for i in range(0, len(tile_data), HASH_SIZE)]


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Concatenate entries, each prefixed by its big-endian uint16 length (C2SP tlog-tiles)."""
    if len(entries) > TILE_WIDTH:
        raise InputError(f"an entry bundle holds at most {TILE_WIDTH} entries, got {len(entries)}")
    parts = []
    for i, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_SIZE:
            raise TooLargeError(f"entry {i} is {len(entry)} bytes, over {MAX_ENTRY_SIZE}")
        parts.append(_LENGTH_PREFIX.pack(len(entry)))
        parts.append(entry)
    return b"".join(parts)


def decode_entry_bundle(data: bytes, expected_count: int | None = None) -> list[bytes]:
    """Split an entry bundle; refuse truncation, trailing bytes, or a count other than expected."""
    entries: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise EncodingError(f"entry bundle truncated in the length of entry {len(entries)}")
        (length,) = _LENGTH_PREFIX.unpack_from(data, pos)
        pos += 2
        if pos + length > len(data):
            raise EncodingError(f"entry bundle truncated in entry {len(entries)}")
        entries.append(data[pos : pos + length])
        pos += length
    if expected_count is not None and len(entries) != expected_count:
        raise EncodingError(f"entry bundle holds {len(entries)} entries, expected {expected_count}")
    return entries


def tile_levels(tile_data: bytes) -> list[bytes]:
    """Every complete node inside a tile's subtree: `levels[h]` holds the 32-byte hashes at height h.

    Level 0 is the tile itself; level h has ⌊width / 2^h⌋ hashes. A node at height h
    and slot k (of level h) is `levels[h][32k : 32k + 32]`. For a full tile this is 255 hashes.
    """
    if not tile_data or len(tile_data) % HASH_SIZE or len(tile_data) > TILE_WIDTH * HASH_SIZE:
        raise EncodingError(f"tile of {len(tile_data)} bytes is not 1 to 256 hashes")
    levels = [tile_data]
    current = tile_data
    while len(current) >= 2 * HASH_SIZE:
        pairs = len(current) // (2 * HASH_SIZE)
        current = b"".join(
            node_hash(current[64 * i : 64 * i + 32], current[64 * i + 32 : 64 * i + 64]) for i in range(pairs)
        )
        levels.append(current)
    return levels
