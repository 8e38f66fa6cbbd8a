"""Receipts' inclusion paths computed from memory equal the RFC 9162 audit paths of a reference tree."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_tree import ReferenceTree

from ledger.core.append_proofs import appended_inclusion_paths
from ledger.core.compact_range import CompactRange
from ledger.core.proof import verify_inclusion
from ledger.errors import RootMismatchError

LEAVES = [hashlib.sha256(b"leaf %d" % i).digest() for i in range(700)]
TREE = ReferenceTree(LEAVES)


def _range(size: int) -> CompactRange:
    compact = CompactRange()
    for leaf in LEAVES[:size]:
        compact.append(leaf)
    return compact


@settings(max_examples=150, deadline=None)
@given(old=st.integers(0, 400), added=st.integers(1, 299))
def test_paths_equal_the_reference_audit_paths(old: int, added: int) -> None:
    paths = appended_inclusion_paths(_range(old), LEAVES[old : old + added])
    size = old + added
    assert paths == [TREE.inclusion_proof(i, size) for i in range(old, size)]


@pytest.mark.parametrize(("old", "added"), [(0, 1), (1, 1), (1, 3), (255, 2), (256, 256), (257, 300)])
def test_paths_verify_against_the_new_root(old: int, added: int) -> None:
    size = old + added
    for offset, path in enumerate(appended_inclusion_paths(_range(old), LEAVES[old:size])):
        verify_inclusion(old + offset, size, LEAVES[old + offset], path, TREE.root(size))


def test_a_wrong_old_range_gives_paths_that_do_not_verify() -> None:
    wrong = _range(10)
    wrong.hashes[0] = hashlib.sha256(b"forged").digest()
    (path,) = appended_inclusion_paths(wrong, LEAVES[10:11])
    with pytest.raises(RootMismatchError):
        verify_inclusion(10, 11, LEAVES[10], path, TREE.root(11))


def test_no_leaves_no_paths() -> None:
    assert appended_inclusion_paths(_range(5), []) == []
