"""A naive Merkle tree written straight from RFC 9162's recursive definitions.

It exists only to cross-check `ledger.core`, so it shares no code with it: the
hash functions are re-derived from hashlib and every function follows one
equation of the RFC (§2.1.1 MTH, §2.1.3.1 PATH, §2.1.4.1 PROOF/SUBPROOF),
over half-open leaf ranges [begin, end) instead of list slices. MTH results
are memoised per range, which changes the cost but not the definition.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def rfc_leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0))."""
    return hashlib.sha256(b"\x00" + entry).digest()


def rfc_node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x01 || MTH(left) || MTH(right))."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def rfc_split(n: int) -> int:
    """The RFC's k: the largest power of two smaller than n (n > 1), found by counting up."""
    k = 1
    while 2 * k < n:
        k *= 2
    return k


class ReferenceTree:
    """MTH, PATH and PROOF over a fixed list of leaf hashes, by plain recursion."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self.leaves = tuple(leaf_hashes)
        self._mth: dict[tuple[int, int], bytes] = {}

    def mth(self, begin: int, end: int) -> bytes:
        """MTH(D[begin:end])."""
        n = end - begin
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return self.leaves[begin]
        cached = self._mth.get((begin, end))
        if cached is None:
            k = rfc_split(n)
            cached = rfc_node_hash(self.mth(begin, begin + k), self.mth(begin + k, end))
            self._mth[(begin, end)] = cached
        return cached

    def root(self, size: int) -> bytes:
        """MTH(D[size]), the root of the tree of the first `size` leaves."""
        return self.mth(0, size)

    def path(self, m: int, begin: int, end: int) -> list[bytes]:
        """PATH(m, D[begin:end]); m is relative to begin."""
        n = end - begin
        if n == 1:
            return []
        k = rfc_split(n)
        if m < k:
            return [*self.path(m, begin, begin + k), self.mth(begin + k, end)]
        return [*self.path(m - k, begin + k, end), self.mth(begin, begin + k)]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The audit path of leaf `index` in the tree of `size` leaves."""
        return self.path(index, 0, size)

    def subproof(self, m: int, begin: int, end: int, *, complete: bool) -> list[bytes]:
        """SUBPROOF(m, D[begin:end], b); `complete` is the RFC's boolean b."""
        n = end - begin
        if m == n:
            return [] if complete else [self.mth(begin, end)]
        k = rfc_split(n)
        if m <= k:
            return [*self.subproof(m, begin, begin + k, complete=complete), self.mth(begin + k, end)]
        return [*self.subproof(m - k, begin + k, end, complete=False), self.mth(begin, begin + k)]

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
        return self.subproof(size1, 0, size2, complete=True)

    def perfect_nodes(self) -> dict[tuple[int, int], bytes]:
        """Every perfect subtree of the whole tree: (level, index) -> MTH of its 2^level leaves."""
        nodes: dict[tuple[int, int], bytes] = {}
        level = 0
        while (1 << level) <= len(self.leaves):
            for index in range(len(self.leaves) >> level):
                nodes[(level, index)] = self.mth(index << level, (index + 1) << level)
            level += 1
        return nodes
