"""Proofs served from stored tiles: which nodes (core), fetch (storage), rehash (core).

Every node a proof needs lies in one hash tile (C2SP tlog-tiles), so a proof
costs at most two tile reads per tile level: O(log n) primary-key lookups at
any log size, batched into one query. Tiles are immutable once written at a
given width (a partial tile only grows by appending), so any cached tile is
valid for every node it covers; the cache keeps each tile's internal levels.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from ledger.core.hashing import HASH_SIZE
from ledger.core.proof import NodeID, consistency_nodes, inclusion_nodes
from ledger.core.tiles import locate_node, tile_levels
from ledger.errors import NotFoundError
from ledger.storage.protocol import LogStore

DEFAULT_CACHED_TILES = 4096  # ≈ 16 KiB each with internal levels: ≈ 64 MiB, every level-0 tile of 1M entries


class _CachedTile:
    __slots__ = ("levels", "width")

    def __init__(self, hashes: bytes) -> None:
        self.width = len(hashes) // HASH_SIZE
        self.levels = tile_levels(hashes)

    def node(self, height: int, first: int) -> bytes:
        slot = first >> height
        return self.levels[height][slot * HASH_SIZE : (slot + 1) * HASH_SIZE]


class ProofReader:
    """Builds inclusion and consistency proofs from a store's tiles, with an LRU tile cache."""

    def __init__(self, store: LogStore, cached_tiles: int = DEFAULT_CACHED_TILES) -> None:
        """Read tiles from `store`; keep at most `cached_tiles` tiles in memory."""
        self._store = store
        self._cache: OrderedDict[tuple[int, int], _CachedTile] = OrderedDict()
        self._capacity = cached_tiles

    def _cached(self, coord: tuple[int, int], width: int) -> _CachedTile | None:
        tile = self._cache.get(coord)
        if tile is None or tile.width < width:
            return None
        self._cache.move_to_end(coord)
        return tile

    async def node_hashes(self, ids: Sequence[NodeID]) -> list[bytes]:
        """The hashes of these perfect-subtree nodes; NotFoundError if the tree does not hold one yet.

        The hot path of the proof routes: with every tile cached it makes no query.
        """
        located: list[tuple[tuple[int, int], int, int, int]] = []  # (tile, height, first slot, width)
        needed: dict[tuple[int, int], int] = {}  # tile -> the width the nodes in it need
        for node in ids:
            tile_level, tile_index, height, first = locate_node(node.level, node.index)
            coord, width = (tile_level, tile_index), first + (1 << height)
            if needed.get(coord, 0) < width:
                needed[coord] = width
            located.append((coord, height, first, width))
        missing = [coord for coord, width in needed.items() if self._cached(coord, width) is None]
        if missing:
            for row in await self._store.tiles(missing):
                self._cache[(row.level, row.index)] = _CachedTile(row.hashes)
                self._cache.move_to_end((row.level, row.index))
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
        hashes = []
        cache = self._cache
        for node, (coord, height, first, width) in zip(ids, located, strict=True):
            cached = cache.get(coord)
            if cached is None or cached.width < width:
                raise NotFoundError(f"node {node.level}/{node.index} is not in the stored tree yet")
            hashes.append(cached.node(height, first))
        return hashes

    async def inclusion(self, index: int, tree_size: int) -> list[bytes]:
        """The RFC 9162 audit path for leaf `index` in the tree of `tree_size` (needs index < size)."""
        return (await self.inclusion_many([index], tree_size))[0]

    async def inclusion_many(self, indices: Sequence[int], tree_size: int) -> list[list[bytes]]:
        """Audit paths for several leaves of one tree, fetching all their tiles in one read."""
        plans = [inclusion_nodes(index, tree_size) for index in indices]
        all_ids = [node for plan in plans for node in plan.ids]
        hashes = await self.node_hashes(all_ids)
        paths, offset = [], 0
        for plan in plans:
            paths.append(plan.rehash(hashes[offset : offset + len(plan.ids)]))
            offset += len(plan.ids)
        return paths

    async def consistency(self, first: int, second: int) -> list[bytes]:
        """The RFC 9162 consistency proof from size `first` to `second` (needs 0 < first <= second)."""
        plan = consistency_nodes(first, second)
        return plan.rehash(await self.node_hashes(plan.ids))
