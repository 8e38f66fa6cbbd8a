"""Inclusion proofs for freshly appended leaves, from memory: no stored hash is read.

When leaves [m, n) are appended to a tree whose compact range [0, m) is known,
every node of an inclusion proof of leaf i >= m in the tree of size n is a node
of that compact range (a left sibling lying wholly before m is the left child
of an ancestor that straddles m: exactly the range's node at that level), a
perfect subtree inside [m, n) hashed from the new leaves, or a subtree that
straddles m, hashed from those two kinds. So the
sequencer can hand out receipts for a whole batch in O(batch + log n) hashes
(RFC 9162 §2.1.3 paths, built with `proof.inclusion_nodes`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.core.compact_range import CompactRange
from ledger.core.hashing import node_hash
from ledger.core.proof import NodeID, inclusion_nodes
from ledger.errors import InputError


class _AppendedNodes:
    """Hashes of any perfect subtree that lies in the old compact range or inside the new leaves."""

    def __init__(self, old: CompactRange, leaves: Sequence[bytes]) -> None:
        self._start = old.size
        self._leaves = leaves
        bits = [level for level in range(old.size.bit_length()) if old.size >> level & 1]
        # The range lists its nodes left to right: highest set bit first.
        self._old = {
            (level, (old.size >> level) - 1): h for level, h in zip(reversed(bits), old.hashes, strict=True)
        }
        self._memo: dict[tuple[int, int], bytes] = {}

    def hash(self, node: NodeID) -> bytes:
        key = (node.level, node.index)
        found = self._old.get(key) or self._memo.get(key)
        if found is not None:
            return found
        begin, end = node.coverage()
        if end <= self._start:
            raise InputError(f"node {node.level}/{node.index} is neither new nor in the old compact range")
        if node.level == 0:
            value = self._leaves[begin - self._start]
        else:
            value = node_hash(
                self.hash(NodeID(node.level - 1, node.index * 2)),
                self.hash(NodeID(node.level - 1, node.index * 2 + 1)),
            )
        self._memo[key] = value
        return value


def appended_inclusion_paths(old: CompactRange, leaves: Sequence[bytes]) -> list[list[bytes]]:
    """The audit path of each new leaf in the tree of size `old.size + len(leaves)`.

    Precondition: `old` is the compact range the leaves were appended to.
    """
    size = old.size + len(leaves)
    nodes = _AppendedNodes(old, leaves)
    paths = []
    for index in range(old.size, size):
        plan = inclusion_nodes(index, size)
        paths.append(plan.rehash([nodes.hash(node) for node in plan.ids]))
    return paths
