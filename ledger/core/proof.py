"""RFC 9162 §2.1.3 to §2.1.4 inclusion and consistency proofs.

Three separate concerns, as in transparency-dev/merkle's `proof` package:

* *which nodes*: `inclusion_nodes` / `consistency_nodes` are pure index math
  returning the node IDs a proof needs, plus the run of IDs that must be folded
  into one "ephemeral" node (the root of the incomplete right-hand subtree);
* *fetch*: the caller (storage, tiles) reads those node hashes;
* *rehash/verify*: `ProofNodes.rehash` turns fetched hashes into the audit
  path; `verify_inclusion` / `verify_consistency` check a path against roots.

Proof hashes are bottom-up, as RFC 9162 specifies. Verifiers return None and
raise a `VerificationError` (with expected and calculated values) on failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.core.hashing import HASH_SIZE, node_hash
from ledger.errors import InputError, RootMismatchError, VerificationError


@dataclass(frozen=True, slots=True, order=True)
class NodeID:
    """A perfect subtree: `level` 0 is a leaf; it covers leaves [index·2^level, (index+1)·2^level)."""

    level: int
    index: int

    def sibling(self) -> NodeID:
        """The other child of this node's parent."""
        return NodeID(self.level, self.index ^ 1)

    def parent(self) -> NodeID:
        """The node one level up that covers this one."""
        return NodeID(self.level + 1, self.index >> 1)

    def coverage(self) -> tuple[int, int]:
        """The half-open range of leaf indices under this node."""
        return self.index << self.level, (self.index + 1) << self.level


def decompose_range(begin: int, end: int) -> tuple[int, int]:
    """Split [begin, end) into left and right bit masks of perfect subtree sizes.

    The left mask's set bits are the subtrees along the left border (growing),
    the right mask's along the right border (shrinking). As in
    transparency-dev/merkle `compact.Decompose`. Needs 0 <= begin <= end.
    """
    if begin == 0:
        return 0, end
    xbegin = begin - 1
    divergence = (xbegin ^ end).bit_length() - 1
    mask = (1 << divergence) - 1
    return ~xbegin & mask, end & mask


def range_nodes(begin: int, end: int) -> list[NodeID]:
    """The perfect subtrees covering [begin, end), left to right (a compact range's nodes)."""
    left, right = decompose_range(begin, end)
    pos = begin
    ids: list[NodeID] = []
    while left:
        level = (left & -left).bit_length() - 1
        ids.append(NodeID(level, pos >> level))
        pos += 1 << level
        left &= left - 1
    while right:
        level = right.bit_length() - 1
        ids.append(NodeID(level, pos >> level))
        pos += 1 << level
        right ^= 1 << level
    return ids


@dataclass(frozen=True, slots=True)
class ProofNodes:
    """The node IDs a proof needs, in proof order.

    `ids[begin:end]` (possibly empty) are the perfect subtrees, smallest first,
    whose fold is the ephemeral node standing in the audit path at `begin`.
    """

    ids: tuple[NodeID, ...]
    begin: int
    end: int

    def rehash(self, hashes: Sequence[bytes]) -> list[bytes]:
        """Turn the fetched hashes of `ids` (same order) into the RFC 9162 audit path.

        Precondition: `hashes[i]` is the hash of `ids[i]`.
        """
        if len(hashes) != len(self.ids):
            raise InputError(f"got {len(hashes)} hashes for {len(self.ids)} proof nodes")
        path = list(hashes[: self.begin])
        if self.begin < self.end:
            ephemeral = hashes[self.begin]
            for h in hashes[self.begin + 1 : self.end]:
                ephemeral = node_hash(h, ephemeral)
            path.append(ephemeral)
        path.extend(hashes[self.end :])
        return path


def _nodes(index: int, level: int, size: int) -> tuple[list[NodeID], int, int]:
    """Nodes proving node (level, index) in a tree of `size` leaves, the seed node first.

    Transparency-dev/merkle `proof.nodes`: climb from the seed to the `fork`
    where its path leaves the right border; the fork's right neighbour range is
    the ephemeral node, then the left range completes coverage of [0, size).
    """
    inner = (index ^ (size >> level)).bit_length() - 1
    fork = NodeID(level + inner, index >> inner)
    begin, end = fork.coverage()
    # The seed, then the siblings of its ancestors up to the fork (built directly: hot path).
    ids = [NodeID(level, index)]
    ids += [NodeID(level + i, (index >> i) ^ 1) for i in range(inner)]
    first_ephemeral = len(ids)
    ids.extend(reversed(range_nodes(end, size)))
    last_ephemeral = len(ids)
    ids.extend(reversed(range_nodes(0, begin)))
    if first_ephemeral >= last_ephemeral:
        first_ephemeral = last_ephemeral = 0
    return ids, first_ephemeral, last_ephemeral


def _skip_first(ids: list[NodeID], begin: int, end: int) -> ProofNodes:
    if begin < end:
        begin, end = begin - 1, end - 1
    return ProofNodes(tuple(ids[1:]), begin, end)


def inclusion_nodes(index: int, size: int) -> ProofNodes:
    """Nodes of the inclusion proof for leaf `index` in a tree of `size` (needs index < size)."""
    if not 0 <= index < size:
        raise InputError(f"index {index} is outside a tree of size {size}")
    return _skip_first(*_nodes(index, 0, size))


def consistency_nodes(size1: int, size2: int) -> ProofNodes:
    """Nodes of the consistency proof from `size1` to `size2` (needs 0 < size1 <= size2)."""
    if not 0 < size1 <= size2:
        raise InputError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == size2:
        return ProofNodes((), 0, 0)
    level = (size1 & -size1).bit_length() - 1
    index = (size1 - 1) >> level
    ids, begin, end = _nodes(index, level, size2)
    # When size1 is a power of two its root is the seed, which the verifier already has.
    if index == 0:
        return _skip_first(ids, begin, end)
    return ProofNodes(tuple(ids), begin, end)


_HASH_SIZES = frozenset({HASH_SIZE})


def _check_hashes(hashes: Sequence[bytes], what: str) -> None:
    if _HASH_SIZES.issuperset(map(len, hashes)):
        return
    for i, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            raise VerificationError(f"{what}[{i}] is {len(h)} bytes, not {HASH_SIZE}")


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(h, seed) if (index >> i) & 1 else node_hash(seed, h)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def _decompose_inclusion(index: int, size: int) -> tuple[int, int]:
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def root_from_inclusion_proof(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """Recompute the root a leaf and its audit path imply (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        raise VerificationError(f"index {index} is outside a tree of size {size}")
    if len(leaf_hash) != HASH_SIZE:
        raise VerificationError(f"leaf hash is {len(leaf_hash)} bytes, not {HASH_SIZE}")
    _check_hashes(proof, "proof")
    inner, border = _decompose_inclusion(index, size)
    if len(proof) != inner + border:
        raise VerificationError(
            f"inclusion proof for index {index} in size {size} has wrong length",
            expected=str(inner + border),
            calculated=str(len(proof)),
            labels=("hashes needed", "hashes given"),
        )
    seed = _chain_inner(leaf_hash, proof[:inner], index)
    return _chain_border_right(seed, proof[inner:])


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that `leaf_hash` is leaf `index` of the tree of `size` whose root is `root`."""
    if len(root) != HASH_SIZE:
        raise VerificationError(f"root is {len(root)} bytes, not {HASH_SIZE}")
    calculated = root_from_inclusion_proof(index, size, leaf_hash, proof)
    if calculated != root:
        raise RootMismatchError(
            f"inclusion proof for index {index} in size {size} does not lead to the root",
            expected=root.hex(),
            calculated=calculated.hex(),
            labels=("checkpoint root", "computed root"),
        )


def _verify_equal_sizes(size: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    if proof:
        raise VerificationError(f"sizes are equal ({size}) but the proof is not empty")
    if root1 != root2:
        raise RootMismatchError(
            f"sizes are equal ({size}) but the roots differ",
            expected=root1.hex(),
            calculated=root2.hex(),
            labels=("first root", "second root"),
        )


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of `size2` with `root2` extends the tree of `size1` with `root1`.

    RFC 9162 §2.1.4.2. A proof from size 0 is refused (it proves nothing); for
    equal sizes the proof must be empty and the roots equal.
    """
    if size1 < 1:
        raise VerificationError(f"a consistency proof from size {size1} proves nothing")
    if size2 < size1:
        raise VerificationError(f"size2 ({size2}) is smaller than size1 ({size1})")
    if size1 == size2:
        _verify_equal_sizes(size1, proof, root1, root2)
        return
    if not proof:
        raise VerificationError(f"empty consistency proof from {size1} to {size2}")
    _check_hashes((root1, root2), "roots")
    _check_hashes(proof, "proof")

    inner, border = _decompose_inclusion(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    # The proof starts with the root of the subtree of size 2^shift, unless that is size1 itself.
    if size1 == 1 << shift:
        seed, rest = root1, proof
    else:
        seed, rest = proof[0], proof[1:]
    if len(rest) != inner + border:
        raise VerificationError(
            f"consistency proof from {size1} to {size2} has wrong length",
            expected=str(inner + border + len(proof) - len(rest)),
            calculated=str(len(proof)),
            labels=("hashes needed", "hashes given"),
        )
    mask = (size1 - 1) >> shift
    hash1 = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    if hash1 != root1:
        raise RootMismatchError(
            f"consistency proof does not lead to the root of size {size1}",
            expected=root1.hex(),
            calculated=hash1.hex(),
            labels=(f"root of size {size1}", "computed root"),
        )
    hash2 = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    if hash2 != root2:
        raise RootMismatchError(
            f"consistency proof does not lead to the root of size {size2}",
            expected=root2.hex(),
            calculated=hash2.hex(),
            labels=(f"root of size {size2}", "computed root"),
        )
