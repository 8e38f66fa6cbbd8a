"""RFC 9162 hashing, compact ranges and proofs against the naive reference tree.

Exhaustive where it is cheap (every size up to MAX_SIZE, every index, every
pair of sizes), hypothesis where the space is large (which bit of which hash
to flip, which wrong index or size to claim). The leaf hashes and every
perfect-subtree node hash are computed once, at import.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from reference_tree import ReferenceTree, rfc_leaf_hash, rfc_node_hash, rfc_split

from ledger.core.compact_range import CompactRange, root_from_leaf_hashes
from ledger.core.hashing import (
    EMPTY_ROOT,
    HASH_SIZE,
    LEAF_PREFIX,
    NODE_PREFIX,
    check_hash,
    largest_power_of_two_below,
    leaf_hash,
    node_hash,
)
from ledger.core.proof import (
    NodeID,
    ProofNodes,
    consistency_nodes,
    inclusion_nodes,
    range_nodes,
    verify_consistency,
    verify_inclusion,
)
from ledger.errors import InputError, VerificationError

MAX_SIZE = 300
TREE = ReferenceTree([rfc_leaf_hash(b"leaf %d" % i) for i in range(MAX_SIZE)])
NODES = TREE.perfect_nodes()
ROOTS = [TREE.root(size) for size in range(MAX_SIZE + 1)]

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.integers(min_value=1, max_value=MAX_SIZE)


def _fetch(nodes: ProofNodes, size: int) -> list[bytes]:
    """The storage step: read each requested node, which must exist in the tree of `size`."""
    for node in nodes.ids:
        assert node.coverage()[1] <= size, f"{node} is not a complete subtree of a tree of size {size}"
    return [NODES[(node.level, node.index)] for node in nodes.ids]


def _flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# ---- hashing


def test_domain_separation_bytes_are_the_rfc_ones() -> None:
    assert LEAF_PREFIX == b"\x00"
    assert NODE_PREFIX == b"\x01"
    assert HASH_SIZE == 32
    assert bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == EMPTY_ROOT


def test_leaf_and_node_hash_match_the_rfc_formulas() -> None:
    for entry in (b"", b"\x00", b"\x01" + bytes(64), b"hello world" * 50):
        assert leaf_hash(entry) == hashlib.sha256(b"\x00" + entry).digest()
    left, right = TREE.leaves[0], TREE.leaves[1]
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert node_hash(left, right) != node_hash(right, left)


def test_leaf_hash_never_equals_node_hash_of_the_same_bytes() -> None:
    left, right = TREE.leaves[2], TREE.leaves[3]
    assert leaf_hash(left + right) != node_hash(left, right)
    assert leaf_hash(NODE_PREFIX + left + right) != node_hash(left, right)


def test_largest_power_of_two_below_matches_counting() -> None:
    for n in range(2, 2100):
        assert largest_power_of_two_below(n) == rfc_split(n)
    for n in (-1, 0, 1):
        with pytest.raises(InputError):
            largest_power_of_two_below(n)


def test_check_hash_refuses_other_lengths() -> None:
    assert check_hash(bytes(32), "x") == bytes(32)
    for length in (0, 31, 33, 64):
        with pytest.raises(InputError):
            check_hash(bytes(length), "x")


# ---- roots and compact ranges


def test_root_of_no_leaves_is_sha256_of_nothing() -> None:
    assert root_from_leaf_hashes([]) == EMPTY_ROOT == TREE.root(0)
    assert CompactRange().root() == EMPTY_ROOT


def test_root_from_leaf_hashes_equals_naive_mth_for_every_size() -> None:
    for size in range(MAX_SIZE + 1):
        assert root_from_leaf_hashes(TREE.leaves[:size]) == ROOTS[size], size


def test_compact_range_appends_reach_naive_mth_at_every_size() -> None:
    compact = CompactRange()
    for size in range(1, MAX_SIZE + 1):
        compact.append(TREE.leaves[size - 1])
        assert compact.size == size
        assert compact.root() == ROOTS[size], size
        # One hash per set bit: the perfect subtrees of the size, largest (leftmost) first.
        assert compact.hashes == [NODES[(n.level, n.index)] for n in range_nodes(0, size)]


def test_range_nodes_of_a_prefix_are_the_set_bits_largest_first() -> None:
    for size in range(MAX_SIZE + 1):
        expected, begin = [], 0
        for level in reversed(range(size.bit_length())):
            if size >> level & 1:
                expected.append(NodeID(level, begin >> level))
                begin += 1 << level
        assert range_nodes(0, size) == expected


def test_compact_range_append_reports_every_node_it_completes() -> None:
    compact = CompactRange()
    for index, leaf in enumerate(TREE.leaves):
        # Leaf i completes the level-l node i >> l for every l with 2^l dividing i + 1.
        levels = ((index + 1) & -(index + 1)).bit_length()
        expected = [(level, NODES[(level, index >> level)]) for level in range(levels)]
        assert compact.append(leaf) == expected, index


@FAST
@given(size=st.integers(0, MAX_SIZE), data=st.data())
def test_compact_range_resumed_from_stored_hashes_continues_correctly(size, data) -> None:
    stored = [NODES[(n.level, n.index)] for n in range_nodes(0, size)]
    resumed = CompactRange(size, stored)
    assert resumed.root() == ROOTS[size]
    more = data.draw(st.integers(0, MAX_SIZE - size))
    copy = resumed.copy()
    for leaf in TREE.leaves[size : size + more]:
        copy.append(leaf)
    assert copy.root() == ROOTS[size + more]
    assert resumed.root() == ROOTS[size], "appending to a copy changed the original"


def test_compact_range_refuses_a_hash_count_that_does_not_match_the_size() -> None:
    with pytest.raises(InputError, match=r"^a compact range of size 3 has 2 hashes, not 1$"):
        CompactRange(3, [bytes(32)])
    with pytest.raises(InputError, match=r"^a compact range of size -1 has 1 hashes, not 0$"):
        CompactRange(-1, [])


def test_compact_range_refuses_a_leaf_that_is_not_a_hash() -> None:
    compact = CompactRange()
    with pytest.raises(InputError):
        compact.append(b"entry bytes, not a hash")
    assert compact.size == 0


@FAST
@given(size=sizes, index=st.integers(0, MAX_SIZE - 1), bit=st.integers(0, 255))
def test_flipped_bit_in_a_leaf_changes_the_root(size, index, bit) -> None:
    index %= size
    leaves = list(TREE.leaves[:size])
    leaves[index] = _flip(leaves[index], bit)
    assert root_from_leaf_hashes(leaves) != ROOTS[size]


# ---- inclusion proofs


def test_inclusion_proof_equals_rfc_path_and_verifies_for_every_index_and_size() -> None:
    for size in range(1, MAX_SIZE + 1):
        root = ROOTS[size]
        for index in range(size):
            nodes = inclusion_nodes(index, size)
            proof = nodes.rehash(_fetch(nodes, size))
            assert proof == TREE.inclusion_proof(index, size), (index, size)
            verify_inclusion(index, size, TREE.leaves[index], proof, root)


def test_inclusion_nodes_refuse_an_index_outside_the_tree() -> None:
    for index, size in ((0, 0), (5, 5), (6, 5), (-1, 5)):
        with pytest.raises(InputError):
            inclusion_nodes(index, size)


def test_rehash_refuses_the_wrong_number_of_hashes() -> None:
    nodes = inclusion_nodes(5, 13)
    with pytest.raises(InputError):
        nodes.rehash(_fetch(nodes, 13)[:-1])


@FAST
@given(size=sizes, index=st.integers(0, MAX_SIZE - 1), target=st.integers(0, 63), bit=st.integers(0, 255))
@example(size=1, index=0, target=0, bit=0)
@example(size=MAX_SIZE, index=MAX_SIZE - 1, target=0, bit=255)
def test_flipped_bit_in_inclusion_proof_leaf_or_root_is_rejected(size, index, target, bit) -> None:
    index %= size
    proof = TREE.inclusion_proof(index, size)
    leaf, root = TREE.leaves[index], ROOTS[size]
    # target picks one hash of (leaf, root, *proof) to corrupt.
    slot = target % (2 + len(proof))
    if slot == 0:
        leaf = _flip(leaf, bit)
    elif slot == 1:
        root = _flip(root, bit)
    else:
        proof[slot - 2] = _flip(proof[slot - 2], bit)
    with pytest.raises(VerificationError):
        verify_inclusion(index, size, leaf, proof, root)


def test_flipped_bit_in_any_inclusion_proof_hash_is_rejected_exhaustively_for_one_tree() -> None:
    size = 277
    for index in range(size):
        proof = TREE.inclusion_proof(index, size)
        for position in range(len(proof)):
            bad = list(proof)
            bad[position] = _flip(bad[position], index + position)
            with pytest.raises(VerificationError):
                verify_inclusion(index, size, TREE.leaves[index], bad, ROOTS[size])


@FAST
@given(size=sizes, index=st.integers(0, MAX_SIZE - 1), other=st.integers(0, MAX_SIZE - 1))
def test_wrong_index_for_an_inclusion_proof_is_rejected(size, index, other) -> None:
    index %= size
    other %= size
    if other == index:
        other = (index + 1) % size
    if other == index:  # a one-leaf tree has a single index; claim one past the end instead
        other = size
    with pytest.raises(VerificationError):
        verify_inclusion(other, size, TREE.leaves[index], TREE.inclusion_proof(index, size), ROOTS[size])


@FAST
@given(size=sizes, other=sizes, index=st.integers(0, MAX_SIZE - 1))
def test_wrong_tree_size_for_an_inclusion_proof_is_rejected(size, other, index) -> None:
    # The claimed size comes with its own root (a checkpoint binds both): a proof
    # from one tree must not verify against another, whatever the sizes.
    if other == size:
        other = size % MAX_SIZE + 1
    index %= min(size, other)
    with pytest.raises(VerificationError):
        verify_inclusion(index, other, TREE.leaves[index], TREE.inclusion_proof(index, size), ROOTS[other])


@FAST
@given(size=sizes, index=st.integers(0, MAX_SIZE - 1), cut=st.integers(0, 20))
def test_truncated_or_extended_inclusion_proof_is_rejected(size, index, cut) -> None:
    index %= size
    proof = TREE.inclusion_proof(index, size)
    longer = [*proof, ROOTS[size]]
    with pytest.raises(VerificationError):
        verify_inclusion(index, size, TREE.leaves[index], longer, ROOTS[size])
    if proof:
        shorter = proof[: cut % len(proof)]
        with pytest.raises(VerificationError):
            verify_inclusion(index, size, TREE.leaves[index], shorter, ROOTS[size])


def test_inclusion_hashes_of_the_wrong_length_are_rejected() -> None:
    proof = TREE.inclusion_proof(3, 10)
    leaf, root = TREE.leaves[3], ROOTS[10]
    for bad_leaf, bad_proof, bad_root in (
        (leaf[:31], proof, root),
        (leaf + b"\x00", proof, root),
        (leaf, [*proof[:-1], proof[-1][:31]], root),
        (leaf, proof, root[:31]),
        (leaf, proof, b""),
    ):
        with pytest.raises(VerificationError):
            verify_inclusion(3, 10, bad_leaf, bad_proof, bad_root)


# ---- consistency proofs


def test_consistency_proof_equals_rfc_subproof_and_verifies_for_every_pair_of_sizes() -> None:
    for size2 in range(1, MAX_SIZE + 1):
        for size1 in range(1, size2 + 1):
            nodes = consistency_nodes(size1, size2)
            proof = nodes.rehash(_fetch(nodes, size2))
            assert proof == TREE.consistency_proof(size1, size2), (size1, size2)
            verify_consistency(size1, size2, proof, ROOTS[size1], ROOTS[size2])


def test_consistency_nodes_refuse_sizes_that_prove_nothing() -> None:
    for size1, size2 in ((0, 0), (0, 5), (6, 5), (-1, 3)):
        with pytest.raises(InputError):
            consistency_nodes(size1, size2)


def test_consistency_from_size_zero_is_an_error() -> None:
    for size2 in (0, 1, 7):
        with pytest.raises(VerificationError):
            verify_consistency(0, size2, [], EMPTY_ROOT, ROOTS[size2])


def test_consistency_between_equal_sizes_needs_empty_proof_and_equal_roots() -> None:
    verify_consistency(9, 9, [], ROOTS[9], ROOTS[9])
    with pytest.raises(VerificationError):
        verify_consistency(9, 9, [ROOTS[9]], ROOTS[9], ROOTS[9])
    with pytest.raises(VerificationError):
        verify_consistency(9, 9, [], ROOTS[9], ROOTS[8])


def test_consistency_with_an_empty_proof_between_different_sizes_is_rejected() -> None:
    for size1, size2 in ((1, 2), (4, 8), (5, 9)):
        with pytest.raises(VerificationError):
            verify_consistency(size1, size2, [], ROOTS[size1], ROOTS[size2])


def test_shrinking_tree_is_rejected() -> None:
    proof = TREE.consistency_proof(5, 9)
    with pytest.raises(VerificationError):
        verify_consistency(9, 5, proof, ROOTS[9], ROOTS[5])


@FAST
@given(size2=sizes, size1=sizes, target=st.integers(0, 63), bit=st.integers(0, 255))
@example(size2=2, size1=1, target=0, bit=0)
@example(size2=MAX_SIZE, size1=MAX_SIZE, target=0, bit=7)
def test_flipped_bit_in_consistency_proof_or_either_root_is_rejected(size2, size1, target, bit) -> None:
    size1, size2 = min(size1, size2), max(size1, size2)
    proof = TREE.consistency_proof(size1, size2)
    root1, root2 = ROOTS[size1], ROOTS[size2]
    slot = target % (2 + len(proof))
    if slot == 0:
        root1 = _flip(root1, bit)
    elif slot == 1:
        root2 = _flip(root2, bit)
    else:
        proof[slot - 2] = _flip(proof[slot - 2], bit)
    with pytest.raises(VerificationError):
        verify_consistency(size1, size2, proof, root1, root2)


def test_flipped_bit_in_any_consistency_proof_hash_is_rejected_exhaustively_for_one_tree() -> None:
    size2 = 263
    for size1 in range(1, size2):
        proof = TREE.consistency_proof(size1, size2)
        for position in range(len(proof)):
            bad = list(proof)
            bad[position] = _flip(bad[position], size1 + position)
            with pytest.raises(VerificationError):
                verify_consistency(size1, size2, bad, ROOTS[size1], ROOTS[size2])


@FAST
@given(size2=st.integers(2, MAX_SIZE), size1=st.integers(1, MAX_SIZE), other=st.integers(1, MAX_SIZE))
def test_wrong_first_size_for_a_consistency_proof_is_rejected(size2, size1, other) -> None:
    size1 = (size1 - 1) % (size2 - 1) + 1  # 1 <= size1 < size2
    other = (other - 1) % size2 + 1  # 1 <= other <= size2
    if other == size1:
        other = size1 + 1
    proof = TREE.consistency_proof(size1, size2)
    with pytest.raises(VerificationError):
        verify_consistency(other, size2, proof, ROOTS[other], ROOTS[size2])


@FAST
@given(size2=st.integers(2, MAX_SIZE), size1=st.integers(1, MAX_SIZE), other=st.integers(1, MAX_SIZE))
def test_wrong_second_size_for_a_consistency_proof_is_rejected(size2, size1, other) -> None:
    size1 = (size1 - 1) % (size2 - 1) + 1  # 1 <= size1 < size2
    other = size1 + (other - 1) % (MAX_SIZE - size1) + 1  # size1 < other <= MAX_SIZE
    assume(other != size2)  # discarded, not counted as a pass
    proof = TREE.consistency_proof(size1, size2)
    with pytest.raises(VerificationError):
        verify_consistency(size1, other, proof, ROOTS[size1], ROOTS[other])


def test_consistency_proof_against_a_forked_tree_is_rejected() -> None:
    # Same size2, but one earlier leaf differs: the log rewrote history.
    forked = list(TREE.leaves[:100])
    forked[17] = rfc_leaf_hash(b"rewritten")
    fork = ReferenceTree(forked)
    for size1 in (18, 20, 64, 99):
        proof = fork.consistency_proof(size1, 100)
        with pytest.raises(VerificationError):
            verify_consistency(size1, 100, proof, ROOTS[size1], fork.root(100))


def test_consistency_hashes_of_the_wrong_length_are_rejected() -> None:
    proof = TREE.consistency_proof(6, 13)
    for bad_proof, root1, root2 in (
        ([*proof[:-1], proof[-1] + b"\x00"], ROOTS[6], ROOTS[13]),
        (proof, ROOTS[6][:31], ROOTS[13]),
        (proof, ROOTS[6], ROOTS[13][:31]),
    ):
        with pytest.raises(VerificationError):
            verify_consistency(6, 13, bad_proof, root1, root2)


def test_reference_tree_agrees_with_itself() -> None:
    # Guard the oracle: its node hashes are RFC node hashes of their children.
    for (level, index), value in NODES.items():
        if level:
            assert value == rfc_node_hash(NODES[(level - 1, 2 * index)], NODES[(level - 1, 2 * index + 1)])
        else:
            assert value == TREE.leaves[index]
