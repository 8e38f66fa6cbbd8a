"""The completeness index (docs/completeness-index.md) against a naive reference written from the spec.

The reference below recurses over every leaf at every depth, straight from the
definition in "The map" and the walk in "Proofs"; the code under test folds
sorted keys in one pass and keeps a dense tree of buckets. Keys are drawn at
random and as near neighbours (one bit flipped anywhere in 256) so that long
shared prefixes, nodes with an EMPTY child and leaves at depth 256 all occur.
"""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.core.sparse_merkle import (
    EMPTY,
    KEY_EVENTS_KEY,
    Ending,
    Head,
    IndexProof,
    IndexTree,
    Subtree,
    artifact_key,
    combine,
    decode_proof,
    encode_proof,
    index_root,
    leaf_hash,
    node_hash,
    prove,
    release_key,
    subtree,
    verify_index_proof,
)
from ledger.errors import (
    ConflictError,
    EncodingError,
    InputError,
    RootMismatchError,
    VerificationError,
)

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Pairs = list[tuple[bytes, Head]]


# ---- the reference, from the spec text


def bit(key: bytes, depth: int) -> int:
    """Bit `depth` of a key, most significant bit of the first byte first."""
    return (key[depth // 8] >> (7 - depth % 8)) & 1


def ref_leaf(key: bytes, head: Head) -> bytes:
    """SHA-256(0x02 || key || count || last_index || last_leaf), written out."""
    return hashlib.sha256(
        b"\x02" + key + struct.pack(">QQ", head.count, head.last_index) + head.last_leaf
    ).digest()


def ref_node(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x03 || left || right), written out."""
    return hashlib.sha256(b"\x03" + left + right).digest()


def ref_hash(pairs: Pairs, depth: int = 0) -> bytes:
    """The hash of the subtree at `depth` holding `pairs`: EMPTY, a lone leaf, or a node of both halves."""
    if not pairs:
        return bytes(32)
    if len(pairs) == 1:
        return ref_leaf(*pairs[0])
    left = [p for p in pairs if bit(p[0], depth) == 0]
    right = [p for p in pairs if bit(p[0], depth) == 1]
    return ref_node(ref_hash(left, depth + 1), ref_hash(right, depth + 1))


def ref_proof(pairs: Pairs, key: bytes) -> IndexProof:
    """Walk down the key's path: the siblings met, and what the walk ended at."""
    here, siblings, depth = list(pairs), [], 0
    while len(here) >= 2:
        side = [p for p in here if bit(p[0], depth) == bit(key, depth)]
        other = [p for p in here if bit(p[0], depth) != bit(key, depth)]
        siblings.append(ref_hash(other, depth + 1))
        here, depth = side, depth + 1
    if not here:
        return IndexProof(Ending.ABSENT_EMPTY, tuple(siblings))
    if here[0][0] == key:
        return IndexProof(Ending.PRESENT, tuple(siblings), head=here[0][1])
    return IndexProof(Ending.ABSENT_OTHER, tuple(siblings), other_key=here[0][0], other_head=here[0][1])


# ---- strategies

heads = st.builds(
    Head,
    count=st.integers(1, 2**64 - 1),
    last_index=st.integers(0, 2**64 - 1),
    last_leaf=st.binary(min_size=32, max_size=32),
)
raw_keys = st.binary(min_size=32, max_size=32)


def flip(key: bytes, depth: int) -> bytes:
    """The key with bit `depth` flipped: it shares exactly the first `depth` bits."""
    return (int.from_bytes(key) ^ (1 << (255 - depth))).to_bytes(32)


@st.composite
def key_sets(draw: st.DrawFn, max_base: int = 24) -> list[bytes]:
    """Random keys, plus near neighbours of some of them (one bit flipped, anywhere in 256)."""
    keys = draw(st.lists(raw_keys, max_size=max_base, unique=True))
    if keys:
        for _ in range(draw(st.integers(0, 8))):
            base = draw(st.sampled_from(keys))
            keys.append(flip(base, draw(st.integers(0, 255))))
    return list(dict.fromkeys(keys))


@st.composite
def maps(draw: st.DrawFn) -> dict[bytes, Head]:
    """A map from keys to heads."""
    return {k: draw(heads) for k in draw(key_sets())}


def by_bucket(tree: IndexTree, pairs: Pairs) -> dict[int, Pairs]:
    """The pairs grouped by the tree's buckets."""
    out: dict[int, Pairs] = {}
    for key, head in pairs:
        out.setdefault(tree.bucket_of(key), []).append((key, head))
    return out


def head(n: int) -> Head:
    """A fixed head for the n-th test key."""
    return Head(n + 1, 1000 + n, hashlib.sha256(b"entry %d" % n).digest())


# ---- the hashes and combine


def test_hashes_are_the_spec_formulas() -> None:
    key, h = release_key("p", "1"), head(0)
    assert leaf_hash(key, h) == ref_leaf(key, h)
    assert node_hash(key, EMPTY) == ref_node(key, EMPTY)
    assert bytes(32) == EMPTY
    assert leaf_hash(key, h) != node_hash(key[:16] + key[16:], h.encode()[:32])


def test_combine_follows_the_shortcut_rule() -> None:
    leaf = Subtree(leaf_hash(KEY_EVENTS_KEY, head(1)), 1)
    empty = Subtree(EMPTY, 0)
    many = Subtree(hashlib.sha256(b"x").digest(), 2)
    assert combine(empty, empty) == (EMPTY, 0)
    assert combine(leaf, empty) == leaf
    assert combine(empty, leaf) == leaf
    assert combine(leaf, leaf) == (node_hash(leaf.hash, leaf.hash), 2)
    assert combine(many, empty) == (node_hash(many.hash, EMPTY), 2)
    assert combine(empty, many) == (node_hash(EMPTY, many.hash), 2)


# ---- roots


@FAST
@given(maps())
def test_index_root_equals_the_reference(m: dict[bytes, Head]) -> None:
    pairs = list(m.items())
    assert index_root(pairs) == ref_hash(pairs)
    assert index_root(reversed(pairs)) == ref_hash(pairs)


@FAST
@given(maps(), st.integers(0, 255))
def test_subtree_at_a_depth_equals_the_reference(m: dict[bytes, Head], depth: int) -> None:
    if not m:
        assert subtree([], depth) == (EMPTY, 0)
        return
    first = min(m)
    shared = sorted(
        (k, h) for k, h in m.items() if (int.from_bytes(k) ^ int.from_bytes(first)) >> (256 - depth) == 0
    )
    got = subtree(shared, depth)
    assert got.hash == ref_hash(shared, depth)
    assert got.count == min(len(shared), 2)


def test_empty_single_and_depth_256_roots() -> None:
    assert index_root([]) == EMPTY
    key = artifact_key("sha256:" + "ab" * 32)
    assert index_root([(key, head(0))]) == leaf_hash(key, head(0))
    twin = flip(key, 255)
    pairs = [(key, head(0)), (twin, head(1))]
    assert index_root(pairs) == ref_hash(pairs)
    assert len(prove(pairs, key).siblings) == 256


def test_duplicate_unsorted_or_unshared_keys_are_refused() -> None:
    key = release_key("p", "1")
    with pytest.raises(ValueError, match="sorted and unique"):
        index_root([(key, head(0)), (key, head(1))])
    a, b = sorted([release_key("p", "2"), release_key("p", "3")])
    with pytest.raises(ValueError, match="sorted and unique"):
        subtree([(b, head(0)), (a, head(1))], 0)
    with pytest.raises(InputError, match="32 bytes"):
        index_root([(key[:31], head(0))])
    with pytest.raises(InputError, match="32 bytes"):
        subtree([(key + b"\x00", head(0))], 0)
    with pytest.raises(ValueError, match="share the first"):
        subtree(sorted([(key, head(0)), (flip(key, 3), head(1))], key=lambda p: p[0]), 4)
    assert subtree(sorted([(key, head(0)), (flip(key, 4), head(1))], key=lambda p: p[0]), 4).count == 2


# ---- the incremental tree


def batches_of(m_keys: list[bytes]) -> st.SearchStrategy[list[list[tuple[bytes, Head]]]]:
    """Batches of (key, head) writes over the given keys: inserts and updates of keys written before."""
    return st.lists(st.lists(st.tuples(st.sampled_from(m_keys), heads), min_size=1, max_size=12), max_size=5)


@FAST
@given(st.sampled_from([0, 2, 3, 4, 16]), key_sets(), st.data())
def test_index_tree_batches_keep_the_root_of_the_map(
    bits: int, keys: list[bytes], data: st.DataObject
) -> None:
    tree = IndexTree(bits)
    current: dict[bytes, Head] = {}
    batches = data.draw(batches_of(keys)) if keys else []
    for batch in batches:
        after = dict(current)
        after.update(batch)
        changed = {tree.bucket_of(k) for k, _ in batch}
        contents = by_bucket(tree, list(after.items()))
        before = tree.root()
        plan = tree.plan({b: contents.get(b, []) for b in changed})
        assert tree.root() == before  # planning changes nothing
        assert plan.root == index_root(after.items())
        tree.apply(plan)
        current = after
        assert tree.root() == index_root(current.items()) == ref_hash(list(current.items()))
        assert set(plan.bucket_roots) == changed
    # Start-up from the stored bucket roots reproduces the root.
    loaded = IndexTree(bits)
    loaded.load({b: tree.bucket_root(b) for b in by_bucket(tree, list(current.items()))})
    assert loaded.root() == tree.root()
    # Every key proves its head; neighbours and random keys prove absence; all as the reference walks.
    contents = by_bucket(tree, list(current.items()))
    absent = [flip(k, data.draw(st.integers(0, 255))) for k in keys] + [hashlib.sha256(b"absent").digest()]
    for key in [*current, *absent]:
        proof = tree.prove(key, contents.get(tree.bucket_of(key), []))
        assert encode_proof(proof) == encode_proof(ref_proof(list(current.items()), key))
        assert verify_index_proof(tree.root(), key, encode_proof(proof)) == current.get(key)
        assert decode_proof(encode_proof(proof)) == proof


@FAST
@given(maps(), raw_keys)
def test_whole_map_proofs_verify_and_round_trip(m: dict[bytes, Head], extra: bytes) -> None:
    pairs = list(m.items())
    root = index_root(pairs)
    for key in [*m, extra, *(flip(k, 200) for k in m)]:
        proof = prove(pairs, key)
        assert proof == ref_proof(pairs, key)
        assert decode_proof(encode_proof(proof)) == proof
        assert verify_index_proof(root, key, proof) == m.get(key)


def test_every_ending_occurs_at_the_top_and_inside_buckets() -> None:
    base = release_key("p", "1")
    # The key and a neighbour sharing 20 bits: one bucket at 16 bits, split below it.
    pairs = [(base, head(0)), (flip(base, 20), head(1)), (flip(base, 0), head(2))]
    for bits in (0, 3, 16):
        tree = IndexTree(bits)
        contents = by_bucket(tree, pairs)
        tree.apply(tree.plan(contents))
        endings = {}
        for key in (base, flip(base, 21), flip(base, 30), flip(flip(base, 0), 5), flip(base, 1)):
            proof = tree.prove(key, contents.get(tree.bucket_of(key), []))
            endings[proof.ending] = proof
            assert verify_index_proof(tree.root(), key, proof) == dict(pairs).get(key)
        assert set(endings) == set(Ending), bits
    # At 16 bits, flip(base, 0)'s lone leaf sits at depth 1, far above its bucket: the tree remembers it.
    tree = IndexTree(16)
    contents = by_bucket(tree, pairs)
    tree.apply(tree.plan(contents))
    stranger = flip(flip(base, 0), 5)
    proof = tree.prove(stranger, contents.get(tree.bucket_of(stranger), []))
    assert proof.ending == Ending.ABSENT_OTHER
    assert proof.other_key == flip(base, 0)
    assert proof.depth == 1
    # A tree loaded from bucket roots alone does not know that leaf, and says so.
    loaded = IndexTree(16)
    loaded.load({b: tree.bucket_root(b) for b in contents})
    with pytest.raises(InputError, match="lone leaf"):
        loaded.prove(stranger, [])


def test_empty_map_proves_absence_at_depth_zero() -> None:
    tree = IndexTree()
    proof = tree.prove(KEY_EVENTS_KEY, [])
    assert proof == IndexProof(Ending.ABSENT_EMPTY, ())
    assert encode_proof(proof) == b"\x01\x01\x00\x00"
    assert verify_index_proof(EMPTY, KEY_EVENTS_KEY, encode_proof(proof)) is None


def test_a_stale_plan_is_applied_as_bucket_contents_and_undoes_nothing() -> None:
    tree = IndexTree(4)
    keys = [hashlib.sha256(b"k%d" % i).digest() for i in range(40)]
    state = {k: head(i) for i, k in enumerate(keys[:30])}
    tree.apply(tree.plan(by_bucket(tree, list(state.items()))))
    first, second = keys[30], next(k for k in keys[31:] if tree.bucket_of(k) != tree.bucket_of(keys[30]))
    after_first = dict(state) | {first: head(30)}
    plan_a = tree.plan(
        {tree.bucket_of(first): by_bucket(tree, list(after_first.items()))[tree.bucket_of(first)]}
    )
    after_both = after_first | {second: head(31)}
    # Another process's commit lands first (its bucket contents include only its own change).
    tree.apply(
        tree.plan({tree.bucket_of(second): by_bucket(tree, list(after_both.items()))[tree.bucket_of(second)]})
    )
    tree.apply(plan_a)
    assert tree.root() == index_root(after_both.items())


def test_plan_refuses_keys_of_another_bucket_and_duplicates() -> None:
    tree = IndexTree(4)
    key = release_key("p", "1")
    other = (tree.bucket_of(key) + 1) % 16
    with pytest.raises(InputError, match="another bucket"):
        tree.plan({other: [(key, head(0))]})
    with pytest.raises(ValueError, match="sorted and unique"):
        tree.plan({tree.bucket_of(key): [(key, head(0)), (key, head(1))]})
    with pytest.raises(InputError, match="outside"):
        tree.plan({16: []})
    with pytest.raises(InputError):
        IndexTree(25)


def test_prove_refuses_leaves_the_tree_does_not_hold() -> None:
    tree = IndexTree(2)
    keys = [hashlib.sha256(b"k%d" % i).digest() for i in range(12)]
    state = {k: head(i) for i, k in enumerate(keys)}
    contents = by_bucket(tree, list(state.items()))
    tree.apply(tree.plan(contents))
    bucket = tree.bucket_of(keys[0])
    stale = [(k, h) for k, h in contents[bucket] if k != keys[0]]
    with pytest.raises(ConflictError, match="read the bucket again"):
        tree.prove(keys[0], stale)
    moved = [(k, head(99) if k == keys[0] else h) for k, h in contents[bucket]]
    with pytest.raises(ConflictError):
        tree.prove(keys[0], moved)


# ---- negative: decoding and verification

MAP = {hashlib.sha256(b"m%d" % i).digest(): head(i) for i in range(300)}
PAIRS = list(MAP.items())
ROOT = index_root(PAIRS)
KEY = next(iter(MAP))
PRESENT = encode_proof(prove(PAIRS, KEY))
DEEP = release_key("deep", "1")
DEEP_PAIRS = [(DEEP, head(0)), (flip(DEEP, 255), head(1))]
DEEP_ROOT = index_root(DEEP_PAIRS)
ABSENT_255 = flip(DEEP, 254)  # walk ends at an EMPTY subtree at depth 255: one unused bitmap bit


def set_byte(data: bytes, pos: int, value: int) -> bytes:
    """The bytes with one byte replaced."""
    return data[:pos] + bytes([value]) + data[pos + 1 :]


def test_deep_proofs_have_the_expected_shape() -> None:
    proof = prove(DEEP_PAIRS, ABSENT_255)
    assert proof.ending == Ending.ABSENT_EMPTY
    assert proof.depth == 255
    assert verify_index_proof(DEEP_ROOT, ABSENT_255, encode_proof(proof)) is None
    assert prove(DEEP_PAIRS, DEEP).depth == 256
    assert verify_index_proof(DEEP_ROOT, DEEP, encode_proof(prove(DEEP_PAIRS, DEEP))) == head(0)


@FAST
@given(st.integers(0, 10**6), st.integers(0, 7))
def test_a_tampered_sibling_byte_is_caught(where: int, which_bit: int) -> None:
    proof = decode_proof(PRESENT)
    start = 4 + (proof.depth + 7) // 8
    end = len(PRESENT) - 48
    pos = start + where % (end - start)
    tampered = set_byte(PRESENT, pos, PRESENT[pos] ^ (1 << which_bit))
    with pytest.raises(RootMismatchError):
        verify_index_proof(ROOT, KEY, tampered)


def test_a_tampered_head_is_caught() -> None:
    tampered = PRESENT[:-1] + bytes([PRESENT[-1] ^ 1])
    with pytest.raises(RootMismatchError):
        verify_index_proof(ROOT, KEY, tampered)


def test_a_flipped_bitmap_bit_is_caught() -> None:
    proof = decode_proof(PRESENT)
    for i in range(proof.depth):
        flipped = set_byte(PRESENT, 4 + i // 8, PRESENT[4 + i // 8] ^ (0x80 >> (i % 8)))
        with pytest.raises(EncodingError, match="header and bitmap say"):
            verify_index_proof(ROOT, KEY, flipped)
    # Flipped with a length that fits: an EMPTY sibling where there was one, or one where there was none.
    siblings = list(proof.siblings)
    siblings[-1] = EMPTY if siblings[-1] != EMPTY else hashlib.sha256(b"forged").digest()
    with pytest.raises(RootMismatchError):
        verify_index_proof(
            ROOT, KEY, encode_proof(IndexProof(proof.ending, tuple(siblings), head=proof.head))
        )


def test_a_set_unused_bitmap_bit_is_refused() -> None:
    good = encode_proof(prove(DEEP_PAIRS, ABSENT_255))
    assert verify_index_proof(DEEP_ROOT, ABSENT_255, good) is None
    last = 4 + 31  # the bitmap's last byte; its lowest bit is unused at depth 255
    with pytest.raises(EncodingError, match="unused bit"):
        verify_index_proof(DEEP_ROOT, ABSENT_255, set_byte(good, last, good[last] | 1))


def test_trailing_and_truncated_bytes_are_refused() -> None:
    absent = encode_proof(prove(DEEP_PAIRS, ABSENT_255))  # nothing follows the siblings of this ending
    for proof in (PRESENT, absent, b"\x01\x01\x00\x00"):
        with pytest.raises(EncodingError, match="header and bitmap say"):
            decode_proof(proof + b"\x00")
    for length in range(len(PRESENT)):
        with pytest.raises(EncodingError):
            decode_proof(PRESENT[:length])


def test_header_fields_out_of_range_are_refused() -> None:
    with pytest.raises(EncodingError, match="version 2"):
        decode_proof(set_byte(PRESENT, 0, 2))
    with pytest.raises(EncodingError, match="ending 3"):
        decode_proof(set_byte(PRESENT, 1, 3))
    too_deep = struct.pack(">BBH", 1, 1, 257) + bytes(33)  # depth 257, all siblings EMPTY, ending empty
    with pytest.raises(EncodingError, match="at most 256"):
        decode_proof(too_deep)
    with pytest.raises(InputError):
        IndexProof(Ending.ABSENT_EMPTY, (EMPTY,) * 257)


def test_an_empty_sibling_marked_present_is_refused() -> None:
    forged = struct.pack(">BBH", 1, 1, 1) + b"\x80" + EMPTY
    with pytest.raises(EncodingError, match="marked non-EMPTY"):
        decode_proof(forged)


def test_a_head_counting_no_entries_is_refused() -> None:
    zero = PRESENT[:-48] + Head(0, 5, bytes(range(32))).encode()
    with pytest.raises(EncodingError, match="at least one entry"):
        decode_proof(zero)
    other = encode_proof(prove(PAIRS, flip(KEY, 250)))
    assert decode_proof(other).ending == Ending.ABSENT_OTHER
    with pytest.raises(EncodingError, match="at least one entry"):
        decode_proof(other[:-48] + Head(0, 5, bytes(32)).encode())


def test_a_proof_replayed_for_another_key_or_root_fails() -> None:
    for other in [k for k in MAP if k != KEY][:50]:
        with pytest.raises(RootMismatchError):
            verify_index_proof(ROOT, other, PRESENT)
    with pytest.raises(RootMismatchError) as caught:
        verify_index_proof(DEEP_ROOT, KEY, PRESENT)
    assert caught.value.expected == DEEP_ROOT.hex()


def test_an_other_leaf_ending_naming_the_key_itself_is_refused() -> None:
    real = decode_proof(PRESENT)
    # The key's own leaf, relabelled "another key's leaf": it hashes to the same root.
    forged = IndexProof(Ending.ABSENT_OTHER, real.siblings, other_key=KEY, other_head=real.head)
    with pytest.raises(VerificationError, match="that same key"):
        verify_index_proof(ROOT, KEY, encode_proof(forged))


def test_an_other_leaf_ending_off_the_path_is_refused() -> None:
    # A server's tree holding another key's leaf on this key's path where that key does not belong.
    key, stranger = release_key("p", "1"), release_key("p", "2")
    depth = 3
    assert (
        bit(key, 0) != bit(stranger, 0) or bit(key, 1) != bit(stranger, 1) or bit(key, 2) != bit(stranger, 2)
    )
    siblings = tuple(hashlib.sha256(b"s%d" % i).digest() for i in range(depth))
    digest = leaf_hash(stranger, head(1))
    for d in range(depth, 0, -1):
        digest = node_hash(siblings[d - 1], digest) if bit(key, d - 1) else node_hash(digest, siblings[d - 1])
    forged = IndexProof(Ending.ABSENT_OTHER, siblings, other_key=stranger, other_head=head(1))
    with pytest.raises(VerificationError, match="does not share the first 3 bits"):
        verify_index_proof(digest, key, encode_proof(forged))


def test_absence_of_a_present_key_cannot_be_built_from_its_real_siblings() -> None:
    real = decode_proof(PRESENT)
    with pytest.raises(RootMismatchError):
        verify_index_proof(ROOT, KEY, IndexProof(Ending.ABSENT_EMPTY, real.siblings))
    # Nor ending higher up, at any real leaf that shares the prefix so far.
    for depth in range(real.depth):
        for other, other_head in PAIRS:
            if other != KEY and (int.from_bytes(other) ^ int.from_bytes(KEY)) >> (256 - depth) == 0:
                forged = IndexProof(
                    Ending.ABSENT_OTHER, real.siblings[:depth], other_key=other, other_head=other_head
                )
                with pytest.raises(RootMismatchError):
                    verify_index_proof(ROOT, KEY, forged)
        with pytest.raises(RootMismatchError):
            verify_index_proof(ROOT, KEY, IndexProof(Ending.ABSENT_EMPTY, real.siblings[:depth]))


# ---- fixed vectors: a change of the hashes or the encoding shows here

VECTOR_PAIRS = [
    (release_key("p", "1"), Head(3, 41, bytes.fromhex("11" * 32))),
    (artifact_key("sha256:" + "ab" * 32), Head(1, 7, bytes.fromhex("22" * 32))),
    (KEY_EVENTS_KEY, Head(2, 40, bytes.fromhex("33" * 32))),
]
VECTOR_ROOT = "142a4a4c43f5aa410a05ae8a8307cf68d4ec48b9f6206ac0ac5d78cdc4c76189"
# The release key starts with bit 1, the other two with 0: its leaf sits at depth 1.
VECTOR_PROOF_RELEASE = (
    "01000001"
    "80"
    "dbcb36e458d28f46fb6cb26a19987d157e13f7df108a1d1b9a7b4808a37394e3"
    "0000000000000003"
    "0000000000000029" + "11" * 32
)
# The artifact and key-event keys share 2 bits: depth 3, the sibling at depth 2 EMPTY (bitmap 1010 0000).
VECTOR_PROOF_ARTIFACT = (
    "01000003"
    "a0"
    "66fff6ac465a4e445bd3a34d74cb38552eb9679c59a24da7e9fe1de1e0cb5f24"
    "db705605a2c9c6109a5318243de9488558991b48f1089291460ca4a19543f52a"
    "0000000000000001"
    "0000000000000007" + "22" * 32
)


def test_fixed_vectors() -> None:
    assert release_key("p", "1") == hashlib.sha256(b"evledger-index-key/v1\0release\0p\x001").digest()
    assert hashlib.sha256(b"evledger-index-key/v1\0keys").digest() == KEY_EVENTS_KEY
    assert index_root(VECTOR_PAIRS).hex() == VECTOR_ROOT
    assert ref_hash(VECTOR_PAIRS).hex() == VECTOR_ROOT
    for (key, key_head), vector in zip(
        VECTOR_PAIRS, (VECTOR_PROOF_RELEASE, VECTOR_PROOF_ARTIFACT), strict=False
    ):
        encoded = encode_proof(prove(VECTOR_PAIRS, key))
        assert encoded.hex() == vector
        assert verify_index_proof(bytes.fromhex(VECTOR_ROOT), key, bytes.fromhex(vector)) == key_head
