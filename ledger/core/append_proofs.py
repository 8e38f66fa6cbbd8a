"""Inclusion proofs for freshly appended leaves, from memory: no stored hash is read.

When leaves [m, n) are appended to a tree whose compact range [0, m) is known,
the audit paths of all of them in the tree of size n follow from RFC 9162
§2.1.3.1's recursive definition, run once for the whole batch:

    PATH(i, D[b:e]) = PATH(i, D[b:b+k]) : MTH(D[b+k:e])   if i < b+k
                      PATH(i, D[b+k:e]) : MTH(D[b:b+k])   otherwise

(k the largest power of two below e - b; `:` appends). The recursion only
enters ranges holding new leaves. A left half lying wholly before m is a node
of the old compact range: its range [b, b+k) is aligned on k, and the aligned
block of 2k around it reaches past e > m, so it is a maximal perfect subtree
inside [0, m). Every other hash needed is the MTH of a range the recursion
visits, computed once on the way back up. So a batch of B leaves costs
O(B) hashes and O(B log n) list appends, and the sequencer hands out every
receipt of a batch without reading a tile.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.core.compact_range import CompactRange
from ledger.core.hashing import node_hash


def appended_inclusion_paths(old: CompactRange, leaves: Sequence[bytes]) -> list[list[bytes]]:
    """The audit path of each new leaf in the tree of size `old.size + len(leaves)`, in leaf order.

    Precondition: `old` is the compact range the leaves were appended to.
    """
    start = old.size
    bits = [level for level in range(start.bit_length()) if start >> level & 1]
    # The range lists its nodes left to right: highest set bit first. Keyed by (first leaf, width).
    old_nodes = {
        ((start >> level) - 1 << level, 1 << level): node
        for level, node in zip(reversed(bits), old.hashes, strict=True)
    }
    paths: list[list[bytes]] = [[] for _ in leaves]

    def subtree(begin: int, end: int) -> bytes:
        """MTH(D[begin:end]) for a range holding new leaves; appends to the paths of those leaves."""
        if end - begin == 1:
            return leaves[begin - start]
        k = 1 << ((end - begin - 1).bit_length() - 1)
        middle = begin + k
        if middle <= start:  # the left half is old: a node of the compact range (see above)
            left = old_nodes[begin, k]
            right = subtree(middle, end)
            for path in paths[max(middle - start, 0) : end - start]:
                path.append(left)
            return node_hash(left, right)
        left = subtree(begin, middle)
        right = subtree(middle, end)
        for path in paths[max(begin - start, 0) : middle - start]:
            path.append(right)
        for path in paths[middle - start : end - start]:
            path.append(left)
        return node_hash(left, right)

    if leaves:
        subtree(0, start + len(leaves))
    return paths
