"""README "Why not merkletools", demonstrated with the real merkletools 1.0.3.

merkletools hashes leaves and interior nodes the same way (SHA-256 of the bare
bytes, of the concatenated children), so an interior node is indistinguishable
from a leaf: a 64-byte "document" equal to two sibling leaf hashes is proven
included in a tree it was never appended to (the second-preimage forgery). It
also has no notion of tree size and no consistency proofs, so it cannot show
that a log only grew.

RFC 9162, as ledger.core implements it, prefixes leaves with 0x00 and nodes
with 0x01 and binds every proof to a tree size, so the same forgery fails.
"""

from __future__ import annotations

import hashlib

import merkletools
import pytest

from ledger.core.compact_range import root_from_leaf_hashes
from ledger.core.hashing import NODE_PREFIX, leaf_hash, node_hash
from ledger.core.proof import verify_inclusion
from ledger.errors import VerificationError

DATA = [b"build 1.4.2 passed", b"scan: 0 critical", b"approved by QA", b"deployed to prod"]


def _merkletools_tree() -> merkletools.MerkleTools:
    tree = merkletools.MerkleTools(hash_type="sha256")
    tree.add_leaf([hashlib.sha256(d).hexdigest() for d in DATA])
    tree.make_tree()
    return tree


def test_merkletools_accepts_an_interior_node_as_a_leaf() -> None:
    tree = _merkletools_tree()
    root = tree.get_merkle_root()
    leaf0, leaf1, leaf2, leaf3 = (bytes.fromhex(tree.get_leaf(i)) for i in range(4))
    interior = hashlib.sha256(leaf0 + leaf1).digest()  # H = hash(leaf0 || leaf1), never a leaf

    honest = tree.get_proof(0)
    assert tree.validate_proof(honest, leaf0.hex(), root)
    assert honest[-1] == {"right": hashlib.sha256(leaf2 + leaf3).hexdigest()}

    # The forgery: H with the proof of its remaining sibling verifies against the same root.
    shortened = honest[1:]
    assert tree.validate_proof(shortened, interior.hex(), root)
    # H is the hash of a 64-byte document nobody appended: a second preimage of the tree.
    forged_document = leaf0 + leaf1
    assert hashlib.sha256(forged_document).digest() == interior
    assert forged_document not in DATA

    # Equally: a two-leaf tree of interior nodes has the four-leaf tree's root.
    other = merkletools.MerkleTools(hash_type="sha256")
    other.add_leaf([interior.hex(), hashlib.sha256(leaf2 + leaf3).hexdigest()])
    other.make_tree()
    assert other.get_merkle_root() == root


def test_merkletools_has_no_consistency_proofs() -> None:
    tree = _merkletools_tree()
    for holder in (merkletools, merkletools.MerkleTools, tree):
        assert not [name for name in dir(holder) if "consisten" in name.lower()], holder


def test_ledger_core_rejects_the_interior_node_forgery() -> None:
    leaves = [leaf_hash(d) for d in DATA]
    root = root_from_leaf_hashes(leaves)
    size = len(leaves)
    left, right = node_hash(leaves[0], leaves[1]), node_hash(leaves[2], leaves[3])
    assert node_hash(left, right) == root

    # Every interior node, presented as a leaf hash with the proof of its remaining
    # sibling (and with no proof at all), at every index of the real tree size.
    for interior, sibling in ((left, right), (right, left)):
        for index in range(size):
            for proof in ([sibling], []):
                with pytest.raises(VerificationError):
                    verify_inclusion(index, size, interior, proof, root)

    # The honest proof still verifies, so the rejection is not a broken verifier.
    verify_inclusion(0, size, leaves[0], [leaves[1], right], root)


def test_ledger_core_has_no_entry_bytes_whose_leaf_hash_is_an_interior_node() -> None:
    # The document forgery: entry bytes that would stand in for an interior node. Verifiers
    # hash the entry bytes they are given (docs/formats.md#entries), and 0x00 vs 0x01 keeps them apart,
    # so this fails whatever index and tree size the forger claims.
    leaves = [leaf_hash(d) for d in DATA]
    root = root_from_leaf_hashes(leaves)
    left, right = node_hash(leaves[0], leaves[1]), node_hash(leaves[2], leaves[3])
    for interior, sibling, children in ((left, right, leaves[:2]), (right, left, leaves[2:])):
        for document in (children[0] + children[1], NODE_PREFIX + children[0] + children[1]):
            assert leaf_hash(document) != interior
            for size in range(1, 5):
                for index in range(size):
                    with pytest.raises(VerificationError):
                        verify_inclusion(index, size, leaf_hash(document), [sibling], root)


def test_ledger_core_needs_the_true_tree_size_from_the_checkpoint() -> None:
    # The limit of the guarantee, pinned so nobody overstates it: at the leaf-hash level
    # an RFC 9162 proof binds the size only through the root. An interior node offered as a
    # *hash* in a lying two-leaf tree of the same root verifies; what stops it is taking the
    # size from the signed checkpoint (above: every placement at size 4 fails) and hashing
    # entry bytes rather than accepting a leaf hash (above: no entry hashes to a node).
    leaves = [leaf_hash(d) for d in DATA]
    root = root_from_leaf_hashes(leaves)
    left, right = node_hash(leaves[0], leaves[1]), node_hash(leaves[2], leaves[3])
    verify_inclusion(0, 2, left, [right], root)
    with pytest.raises(VerificationError):
        verify_inclusion(0, 4, left, [right], root)
