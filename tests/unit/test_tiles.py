"""C2SP tlog-tiles: index paths, which tiles exist and change, node lookup in tiles, entry bundles."""

from __future__ import annotations

import struct

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reference_tree import ReferenceTree, rfc_leaf_hash

from ledger.core.proof import NodeID
from ledger.core.tiles import (
    MAX_ENTRY_SIZE,
    MAX_INDEX_GROUPS,
    MAX_TILE_INDEX,
    TILE_HEIGHT,
    TILE_WIDTH,
    Tile,
    decode_entry_bundle,
    encode_entry_bundle,
    encode_index,
    locate_node,
    node_from_tile,
    parse_index_path,
    parse_tile_path,
    split_tile,
    subtree_hash,
    tile_levels,
    tile_width,
    tiles_changed,
    tiles_for_size,
)
from ledger.errors import EncodingError, InputError, TooLargeError

# 1100 leaves: four full level-0 tiles, a partial one, and a level-1 tile of width 4.
TREE_SIZE = 1100
TREE = ReferenceTree([rfc_leaf_hash(b"tile leaf %d" % i) for i in range(TREE_SIZE)])
NODES = TREE.perfect_nodes()

SETTINGS = settings(max_examples=100, deadline=None)


def _tile_bytes(tile: Tile) -> bytes:
    """The bytes of a hash tile: the hashes of tree level 8·L, slots 0..width-1 of tile N."""
    level = tile.level * TILE_HEIGHT
    first = tile.index * TILE_WIDTH
    return b"".join(NODES[(level, first + slot)] for slot in range(tile.width))


def _model_tiles(tree_size: int) -> list[Tile]:
    """Brute force: walk every existing node of every tile level and record the widest slot used."""
    widths: dict[tuple[int, int], int] = {}
    level = 0
    while True:
        node = 0
        while (node + 1) << (TILE_HEIGHT * level) <= tree_size:  # node is a complete subtree
            widths[(level, node // TILE_WIDTH)] = node % TILE_WIDTH + 1
            node += 1
        if node == 0:
            break
        level += 1
    return [Tile(lvl, index, width) for (lvl, index), width in sorted(widths.items())]


# ---- index paths


@pytest.mark.parametrize(
    ("index", "path"),
    [
        (0, "000"),
        (7, "007"),
        (999, "999"),
        (1000, "x001/000"),
        (1234067, "x001/x234/067"),
        (1_000_000, "x001/x000/000"),
        (10**12 + 5, "x001/x000/x000/x000/005"),
    ],
)
def test_encode_index_uses_three_digit_groups(index, path) -> None:
    assert encode_index(index) == path
    assert parse_index_path(path) == (index, TILE_WIDTH)


def test_encode_index_refuses_negative() -> None:
    with pytest.raises(InputError):
        encode_index(-1)


@pytest.mark.parametrize("width", [1, 7, 10, 99, 100, 255])
def test_partial_width_paths_parse(width) -> None:
    assert parse_index_path(f"x001/x234/067.p/{width}") == (1234067, width)


def test_every_partial_width_round_trips() -> None:
    for width in range(1, TILE_WIDTH):
        assert parse_index_path(f"000.p/{width}") == (0, width)


@SETTINGS
@given(index=st.integers(0, 10**18), width=st.integers(1, TILE_WIDTH), level=st.integers(0, 7))
def test_tile_paths_round_trip(index, width, level) -> None:
    tile = Tile(level, index, width)
    prefix = f"tile/{level}/"
    assert tile.path().startswith(prefix)
    assert parse_index_path(tile.path().removeprefix(prefix)) == (index, width)
    assert tile.entries_path() == "tile/entries/" + tile.path().removeprefix(prefix)
    assert tile.is_full == (width == TILE_WIDTH)


def test_tile_path_spelling() -> None:
    assert Tile(0, 1234067, 256).path() == "tile/0/x001/x234/067"
    assert Tile(2, 5, 7).path() == "tile/2/005.p/7"
    assert Tile(0, 5, 7).entries_path() == "tile/entries/005.p/7"
    assert Tile(0, 5, 256).entries_path() == "tile/entries/005"


@pytest.mark.parametrize(
    "path",
    [
        "",
        "0",
        "00",
        "0000",
        "1",
        "x000/001",  # leading zero group
        "x000/x001/000",
        "x1/234",
        "x001/x234/67",
        "X001/234",
        "x001",
        "001/",
        "/001",
        "x001234",
        "001.p/0",
        "001.p/256",
        "001.p/999",
        "001.p/007",  # leading zeros in the width
        "001.p/07",
        "001.p/",
        "001.p/-1",
        "001.p/+1",
        "001.p/1x",
        "001.P/1",
        "001.p/1/",
        "-01",
        " 001",
        "001 ",
        "001\n",
    ],
)
def test_non_canonical_index_path_is_refused(path) -> None:
    with pytest.raises(EncodingError):
        parse_index_path(path)


@pytest.mark.parametrize(
    "path",
    ["\u0661\u0662\u0663", "x\u0660\u0660\u0661/234", "\uff10\uff10\uff11", "001.p/\u0667"],
)
def test_non_ascii_digits_in_index_path_are_refused(path) -> None:
    # Python's \d and int() accept any Unicode digit: "\u0661\u0662\u0663" must not alias tile 123.
    with pytest.raises(EncodingError):
        parse_index_path(path)


def test_the_largest_64_bit_index_is_the_longest_path() -> None:
    largest = "x018/x446/x744/x073/x709/x551/615"
    assert encode_index(MAX_TILE_INDEX) == largest
    assert parse_index_path(largest) == (MAX_TILE_INDEX, TILE_WIDTH)
    assert parse_index_path(largest + ".p/255") == (MAX_TILE_INDEX, 255)
    assert MAX_INDEX_GROUPS == largest.count("/") + 1 == 7
    assert parse_index_path("x999/x999/x999/x999/x999/999") == (10**18 - 1, TILE_WIDTH)  # 6 groups


@pytest.mark.parametrize(
    "path",
    [
        "x018/x446/x744/x073/x709/x551/616",  # 2^64: one past a uint64
        "x999/x999/x999/x999/x999/x999/999",  # 7 groups, past a uint64
        "x001/x000/x000/x000/x000/x000/x000/000",  # 8 groups: no uint64 needs them
        "x001/" * 2000 + "000",  # 6,003 digits: past the 4,300 Python converts
        "x001/" * 2000 + "000.p/1",
        "x" + "1" * 6000 + "/000",
    ],
    ids=["2^64", "7 groups past 2^64", "8 groups", "6003 digits", "6003 digits partial", "one long group"],
)
def test_an_index_path_no_uint64_needs_is_refused_without_converting_it(path: str) -> None:
    with pytest.raises(EncodingError) as caught:
        parse_index_path(path)
    assert len(str(caught.value)) < 300  # the message quotes the start of a long path, not all of it


@pytest.mark.parametrize(
    ("path", "parsed"),
    [
        ("0/000", (0, 0, TILE_WIDTH)),
        ("8/x001/234.p/5", (8, 1234, 5)),
        ("entries/x018/x446/x744/x073/x709/x551/615", (None, MAX_TILE_INDEX, TILE_WIDTH)),
        ("entries/000.p/1", (None, 0, 1)),
    ],
)
def test_tile_paths_parse_into_level_index_and_width(path: str, parsed: tuple[int | None, int, int]) -> None:
    assert parse_tile_path(path) == parsed


@pytest.mark.parametrize(
    "path",
    ["9/000", "00/000", "01/000", "-1/000", "+1/000", "\u0661/000", "1" * 6000 + "/000", "/000", "entries",
     "entries/", "Entries/000", "0", "0/", "0/x001/" + "x001/" * 7 + "000"],
)  # fmt: skip
def test_a_tile_path_with_a_bad_level_or_index_is_refused(path: str) -> None:
    with pytest.raises(EncodingError) as caught:
        parse_tile_path(path)
    assert len(str(caught.value)) < 300


# ---- which tiles exist, which change


@settings(max_examples=40, deadline=None)
@given(tree_size=st.integers(0, 70_000))
@example(tree_size=0)
@example(tree_size=1)
@example(tree_size=255)
@example(tree_size=256)
@example(tree_size=257)
@example(tree_size=65_535)
@example(tree_size=65_536)
@example(tree_size=65_537)
def test_tiles_for_size_matches_brute_force(tree_size) -> None:
    tiles = list(tiles_for_size(tree_size))
    assert tiles == _model_tiles(tree_size)
    for tile in tiles:
        assert tile_width(tile.level, tile.index, tree_size) == tile.width


def test_tiles_for_size_at_known_sizes() -> None:
    assert list(tiles_for_size(0)) == []
    assert list(tiles_for_size(1)) == [Tile(0, 0, 1)]
    assert list(tiles_for_size(256)) == [Tile(0, 0, 256), Tile(1, 0, 1)]
    assert list(tiles_for_size(513)) == [Tile(0, 0, 256), Tile(0, 1, 256), Tile(0, 2, 1), Tile(1, 0, 2)]
    big = list(tiles_for_size(1 << 24))
    assert big[-1] == Tile(3, 0, 1)
    assert sum(1 for t in big if t.level == 0) == 1 << 16


def test_tile_width_is_zero_for_a_tile_that_does_not_exist_yet() -> None:
    assert tile_width(0, 1, 256) == 0
    assert tile_width(1, 0, 255) == 0
    assert tile_width(0, 0, 0) == 0


@settings(max_examples=60, deadline=None)
@given(old=st.integers(0, 70_000), grow=st.integers(0, 3_000))
@example(old=0, grow=0)
@example(old=0, grow=1)
@example(old=255, grow=1)
@example(old=256, grow=1)
@example(old=300, grow=0)
@example(old=65_535, grow=1)
@example(old=65_280, grow=300)
def test_tiles_changed_matches_brute_force(old, grow) -> None:
    new = old + grow
    before = set(_model_tiles(old))
    expected = [tile for tile in _model_tiles(new) if tile not in before]
    assert list(tiles_changed(old, new)) == expected


# ---- nodes inside tiles


def tile_for_node(node: NodeID) -> tuple[Tile, int, int]:
    """`locate_node` as a Tile of the width the node needs, its height in the tile and first slot."""
    tile_level, tile_index, height, first = locate_node(node.level, node.index)
    return Tile(tile_level, tile_index, first + (1 << height)), height, first


def test_every_node_is_reproduced_from_its_tile() -> None:
    for (level, index), expected in NODES.items():
        tile, height, first = tile_for_node(NodeID(level, index))
        assert tile.level == level // TILE_HEIGHT
        assert height == level % TILE_HEIGHT
        assert tile.width == first + (1 << height) <= TILE_WIDTH
        # At exactly the width it asks for, and at the width the tile really has in this tree.
        assert node_from_tile(_tile_bytes(tile), height, first) == expected
        actual = Tile(tile.level, tile.index, tile_width(tile.level, tile.index, TREE_SIZE))
        assert actual.width >= tile.width
        assert node_from_tile(_tile_bytes(actual), height, first) == expected


@SETTINGS
@given(level=st.integers(0, 63), index=st.integers(0, 2**40))
def test_tile_for_node_covers_exactly_the_nodes_leaves(level, index) -> None:
    node = NodeID(level, index)
    tile, height, first = tile_for_node(node)
    base = TILE_HEIGHT * tile.level
    first_slot_node = tile.index * TILE_WIDTH + first
    assert 0 <= first < TILE_WIDTH
    assert tile.width == first + (1 << height) <= TILE_WIDTH
    assert (first_slot_node << base, (first_slot_node + (1 << height)) << base) == node.coverage()


def test_node_from_a_too_short_tile_is_refused() -> None:
    tile, height, first = tile_for_node(NodeID(2, 5))
    data = _tile_bytes(tile)
    with pytest.raises(InputError):
        node_from_tile(data[:-32], height, first)
    with pytest.raises(InputError):
        node_from_tile(data[:-1], height, first)


def test_flipped_bit_in_a_tile_changes_the_node() -> None:
    tile, height, first = tile_for_node(NodeID(3, 7))
    data = bytearray(_tile_bytes(tile))
    for position in range(first * 32, len(data), 37):
        data[position] ^= 0x80
        assert node_from_tile(bytes(data), height, first) != NODES[(3, 7)]
        data[position] ^= 0x80


def test_tile_levels_hold_every_node_inside_each_tile() -> None:
    for tile in tiles_for_size(TREE_SIZE):
        levels = tile_levels(_tile_bytes(tile))
        assert len(levels) == tile.width.bit_length()
        for height, level in enumerate(levels):
            first = (tile.index * TILE_WIDTH) >> height
            expected = [
                NODES[(tile.level * TILE_HEIGHT + height, first + k)] for k in range(tile.width >> height)
            ]
            assert split_tile(level) == expected, (tile, height)


@pytest.mark.parametrize("size", [0, 31, 33, 32 * 257])
def test_tile_levels_refuse_a_tile_that_is_not_1_to_256_hashes(size) -> None:
    with pytest.raises(EncodingError):
        tile_levels(bytes(size))


def test_split_tile_and_subtree_hash() -> None:
    data = _tile_bytes(Tile(0, 0, 8))
    assert split_tile(data) == list(TREE.leaves[:8])
    assert subtree_hash(split_tile(data)) == NODES[(3, 0)]
    with pytest.raises(EncodingError):
        split_tile(data[:-1])
    for count in (0, 3, 6):
        with pytest.raises(InputError):
            subtree_hash(list(TREE.leaves[:count]))


# ---- entry bundles

bundles = st.lists(st.binary(max_size=300), max_size=40)


@SETTINGS
@given(entries=bundles)
def test_entry_bundle_round_trips(entries) -> None:
    data = encode_entry_bundle(entries)
    assert len(data) == sum(2 + len(e) for e in entries)
    assert decode_entry_bundle(data) == entries
    assert decode_entry_bundle(data, expected_count=len(entries)) == entries


def test_entry_bundle_layout_is_big_endian_uint16_length_then_bytes() -> None:
    assert encode_entry_bundle([b"a", b"", b"xyz"]) == b"\x00\x01a\x00\x00\x00\x03xyz"
    assert encode_entry_bundle([]) == b""
    assert encode_entry_bundle([b"q" * 0x1234])[:3] == b"\x12\x34q"


def test_entry_of_65535_bytes_fits_and_one_more_is_refused() -> None:
    biggest = b"\xab" * MAX_ENTRY_SIZE
    assert MAX_ENTRY_SIZE == 65_535
    assert decode_entry_bundle(encode_entry_bundle([biggest])) == [biggest]
    with pytest.raises(TooLargeError):
        encode_entry_bundle([b"ok", b"\xab" * (MAX_ENTRY_SIZE + 1)])


def test_bundle_of_more_than_a_tile_of_entries_is_refused() -> None:
    assert len(decode_entry_bundle(encode_entry_bundle([b"e"] * TILE_WIDTH))) == TILE_WIDTH
    with pytest.raises(InputError):
        encode_entry_bundle([b"e"] * (TILE_WIDTH + 1))


@SETTINGS
@given(entries=bundles.filter(bool), cut=st.integers(1, 10_000))
def test_truncated_entry_bundle_is_refused(entries, cut) -> None:
    data = encode_entry_bundle(entries)
    cut = cut % len(data) or 1
    with pytest.raises(EncodingError):
        decode_entry_bundle(data[:-cut], expected_count=len(entries))


def test_bundle_truncated_by_one_byte_is_refused_even_without_a_count() -> None:
    for entries in ([b""], [b"a"], [b"abc", b""], [b"", b"abc"]):
        data = encode_entry_bundle(entries)
        with pytest.raises(EncodingError):
            decode_entry_bundle(data[:-1])


@pytest.mark.parametrize("trailer", [b"\x00", b"\x00\x05ab", b"\x00\x00", b"\x00\x01z"])
def test_entry_bundle_with_trailing_bytes_is_refused(trailer) -> None:
    data = encode_entry_bundle([b"one", b"two"])
    with pytest.raises(EncodingError):
        decode_entry_bundle(data + trailer, expected_count=2)


@pytest.mark.parametrize("wrong", [0, 1, 3, 256])
def test_entry_bundle_with_the_wrong_count_is_refused(wrong) -> None:
    data = encode_entry_bundle([b"one", b"two"])
    with pytest.raises(EncodingError):
        decode_entry_bundle(data, expected_count=wrong)


def test_bundle_length_prefix_pointing_past_the_end_is_refused() -> None:
    with pytest.raises(EncodingError, match=r"^entry bundle truncated in entry 0$"):
        decode_entry_bundle(struct.pack(">H", 10) + b"short")
