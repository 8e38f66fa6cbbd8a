"""Compact Merkle range [0, n): the roots of the perfect subtrees of a tree of size n.

A tree of size n is the concatenation of perfect subtrees whose sizes are the
set bits of n, largest first; keeping one hash per set bit lets leaves be
appended one at a time in O(log n) memory (as transparency-dev/merkle's
`compact` package does). Its root equals RFC 9162's MTH over the same leaves.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.core.hashing import EMPTY_ROOT, check_hash, node_hash
from ledger.errors import InputError


class CompactRange:
    """The compact range [0, size): `hashes[i]` roots the i-th perfect subtree, left to right."""

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: list[bytes] | None = None) -> None:
        """Start empty, or resume from a stored range; `hashes` needs one hash per set bit of size."""
        hashes = list(hashes or [])
        if size < 0 or len(hashes) != size.bit_count():
            raise InputError(
                f"a compact range of size {size} has {size.bit_count()} hashes, not {len(hashes)}"
            )
        self.size = size
        self.hashes = hashes

    def append(self, leaf: bytes) -> list[tuple[int, bytes]]:
        """Append one leaf hash (32 bytes); return the (level, hash) of every node it completes.

        The first pair is the leaf itself at level 0; a node at level l completed by
        appending leaf i has index i >> l. Tile writers use this to learn new tile hashes.
        """
        check_hash(leaf, "leaf hash")
        node = leaf
        size = self.size
        completed = [(0, leaf)]
        level = 0
        # Each trailing set bit of size is a perfect subtree as tall as the new node: merge.
        while size & 1:
            node = node_hash(self.hashes.pop(), node)
            size >>= 1
            level += 1
            completed.append((level, node))
        self.hashes.append(node)
        self.size += 1
        return completed

    def root(self) -> bytes:
        """Return the Merkle tree hash of the leaves appended so far (EMPTY_ROOT when none)."""
        if not self.hashes:
            return EMPTY_ROOT
        root = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            root = node_hash(h, root)
        return root

    def copy(self) -> CompactRange:
        """Return an independent copy (appending to it leaves this one unchanged)."""
        return CompactRange(self.size, list(self.hashes))


def root_from_leaf_hashes(leaves: Iterable[bytes]) -> bytes:
    """Return MTH(D[n]) over the given leaf hashes (RFC 9162 §2.1.1); no leaves → EMPTY_ROOT.

    O(n) time and O(log n) memory: the leaves are folded through a compact range.
    """
    compact = CompactRange()
    for leaf in leaves:
        compact.append(leaf)
    return compact.root()
