"""The completeness index: a sparse Merkle tree with shortcut leaves (docs/completeness-index.md). Pure.

An authenticated map from index keys (SHA-256 of a chain's name) to the chain's
head (count, newest index, newest leaf hash). This module owns the key texts, the
head encoding, the three hashes, the proofs and their verification.
"""

from __future__ import annotations

import hashlib
import struct
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache
from operator import itemgetter
from typing import NamedTuple

from ledger.core.hashing import HASH_SIZE
from ledger.errors import ConflictError, EncodingError, InputError, RootMismatchError, VerificationError

KEY_SIZE = HASH_SIZE
HEAD_SIZE = 48
EMPTY = bytes(HASH_SIZE)
LEAF_PREFIX = b"\x02"
NODE_PREFIX = b"\x03"
KEY_DOMAIN = b"evledger-index-key/v1"
# A statement may name at most this many distinct sha256 subject digests: each gets a back-link.
MAX_CHAINED_SUBJECTS = 64
ARTIFACT_ALGORITHM = "sha256"

_HEAD = struct.Struct(">QQ32s")


@lru_cache(maxsize=1 << 16)  # a batch asks for the same chain's key several times
def _key(*fields: str) -> bytes:
    return hashlib.sha256(b"\x00".join([KEY_DOMAIN, *(f.encode() for f in fields)])).digest()


def release_key(product: str, version: str) -> bytes:
    """The index key of the release chain of (product, version)."""
    return _key("release", product, version)


def artifact_key(digest: str) -> bytes:
    """The index key of the artifact chain of `digest` (`sha256:<64 lowercase hex>`, as stored)."""
    return _key("artifact", digest)


KEY_EVENTS_KEY = _key("keys")  # the index key of the key-event chain


def is_chained_digest(digest: str) -> bool:
    """Whether a subject digest (`<algorithm>:<value>`, as stored) forms an artifact chain: sha256 only."""
    return digest.startswith(ARTIFACT_ALGORITHM + ":")


@dataclass(frozen=True, slots=True)
class Head:
    """A chain's head: how many entries it holds, and its newest entry's log index and leaf hash."""

    count: int
    last_index: int
    last_leaf: bytes

    def encode(self) -> bytes:
        """The 48 bytes stored under the key: count and last_index big-endian uint64, then the leaf hash."""
        return _HEAD.pack(self.count, self.last_index, self.last_leaf)

    @classmethod
    def decode(cls, data: bytes) -> Head:
        """Parse 48 head bytes; EncodingError for any other length or a count of zero."""
        if len(data) != HEAD_SIZE:
            raise EncodingError(f"an index head is {HEAD_SIZE} bytes, got {len(data)}")
        count, last_index, last_leaf = _HEAD.unpack(data)
        if count < 1:
            raise EncodingError("an index head counts at least one entry")
        return cls(count, last_index, last_leaf)


def leaf_hash(key: bytes, head: Head) -> bytes:
    """SHA-256(0x02 || key || head): a key's leaf."""
    return hashlib.sha256(LEAF_PREFIX + key + head.encode()).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x03 || left || right): an inner node, even when one side is EMPTY."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


# ---- subtrees ------------------------------------------------------------------------------------

_sha256 = hashlib.sha256
_LEAF = struct.Struct(">B32sQQ32s")  # 0x02 || key || head, packed in one call (the hot path of a rebuild)
_NODE_BYTE = NODE_PREFIX[0]
_NODE_EMPTY = NODE_PREFIX + EMPTY  # node(EMPTY, h) = SHA-256(_NODE_EMPTY + h)
_MAX_DEPTH = 8 * KEY_SIZE


class Subtree(NamedTuple):
    """A subtree's hash and how many keys it holds: 0, 1 or 2 (2 meaning two or more).

    The count is what the shortcut rule needs: a subtree holding one key has that key's
    leaf hash at any depth, so it moves up unchanged when combined with an empty sibling.
    """

    hash: bytes
    count: int  # type: ignore[assignment]  # the field shadows tuple.count, on purpose: (hash, count)


EMPTY_SUBTREE = Subtree(EMPTY, 0)


def combine(left: Subtree, right: Subtree) -> Subtree:
    """The subtree whose children are `left` and `right` (docs/completeness-index.md, "The map").

    Both empty: EMPTY. One key in total: that key's leaf, unchanged (a shortcut leaf).
    Otherwise `node(left, right)`, even if one side is EMPTY.
    """
    total = left[1] + right[1]
    if total == 0:
        return EMPTY_SUBTREE
    if total == 1:
        return Subtree(*(left if left[1] else right))
    return Subtree(_sha256(NODE_PREFIX + left[0] + right[0]).digest(), 2)


def _lift(digest: bytes, key_int: int, branch: int, depth: int) -> bytes:
    """The hash, at `depth`, of a subtree of two or more keys that first differ at bit `branch`.

    Between the two depths every node has one EMPTY child: wrap once per level, the
    non-empty side chosen by the keys' shared bit there.
    """
    sha256 = _sha256
    for d in range(branch - 1, depth - 1, -1):
        if (key_int >> (_MAX_DEPTH - 1 - d)) & 1:
            digest = sha256(_NODE_EMPTY + digest).digest()
        else:
            digest = sha256(NODE_PREFIX + digest + EMPTY).digest()
    return digest


def _fold(pairs: Sequence[tuple[bytes, Head]], lo: int, hi: int, depth: int) -> Subtree:
    """The Subtree at `depth` of `pairs[lo:hi]` (sorted by key, unique, sharing their first `depth` bits).

    One pass, no copies: a stack holds the right spine of the tree built so far. Adjacent
    sorted keys first differ at some bit, their *split*; the keys of a subtree first differ
    at the smallest split among them, so before a key is pushed every pending pair split
    deeper than it is merged (a Cartesian tree by split bit). A merge lifts both sides to
    the depth just below its split (the nodes with one EMPTY child) and hashes the node.
    ValueError for unsorted or duplicate keys, or keys not sharing their first `depth` bits.
    """
    if lo >= hi:
        return EMPTY_SUBTREE
    sha256 = _sha256
    pack = _LEAF.pack
    from_bytes = int.from_bytes
    node = NODE_PREFIX
    top = _MAX_DEPTH
    key, head = pairs[lo]
    prev = from_bytes(key)
    # Parallel stacks: hash, branch bit (`top` for a lone leaf), one key of the subtree (an int);
    # splits[j] is the bit at which the keys of items j and j + 1 first differ.
    hashes = [sha256(pack(2, key, head.count, head.last_index, head.last_leaf)).digest()]
    branches = [top]
    keys = [prev]
    splits: list[int] = []
    for i in range(lo + 1, hi + 1):
        if i < hi:
            key, head = pairs[i]
            current = from_bytes(key)
            split = top - (prev ^ current).bit_length()
            if current <= prev or split < depth:
                _refuse_order(prev, current, depth)
        else:
            split = -1  # after the last key: merge everything
        while splits and splits[-1] > split:
            bit = splits.pop()
            right, rbranch, rkey = hashes.pop(), branches.pop(), keys.pop()
            left, lbranch = hashes[-1], branches[-1]
            if bit + 1 < lbranch < top:
                left = _lift(left, keys[-1], lbranch, bit + 1)
            if bit + 1 < rbranch < top:
                right = _lift(right, rkey, rbranch, bit + 1)
            hashes[-1] = sha256(node + left + right).digest()
            branches[-1] = bit
        if i < hi:
            splits.append(split)
            hashes.append(sha256(pack(2, key, head.count, head.last_index, head.last_leaf)).digest())
            branches.append(top)
            keys.append(current)
            prev = current
    if branches[0] == top:
        return Subtree(hashes[0], 1)
    return Subtree(_lift(hashes[0], keys[0], branches[0], depth), 2)


def _refuse_order(prev: int, current: int, depth: int) -> None:
    """Raise the ValueError for two adjacent keys a fold cannot take."""
    if current <= prev:
        raise ValueError(f"index keys are not sorted and unique: {current:064x} after {prev:064x}")
    raise ValueError(f"index key {current:064x} does not share the first {depth} bits of the others")


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise InputError(f"an index key is {KEY_SIZE} bytes, got {len(key)}")


def _check_keys(pairs: Sequence[tuple[bytes, Head]]) -> None:
    if any(len(key) != KEY_SIZE for key, _ in pairs):
        _check_key(next(key for key, _ in pairs if len(key) != KEY_SIZE))


def subtree(leaves: Sequence[tuple[bytes, Head]], depth: int) -> Subtree:
    """The Subtree at `depth` of (key, head) pairs sorted by key that share their first `depth` bits.

    The hash is the one docs/completeness-index.md defines for the subtree at that depth.
    ValueError for unsorted or duplicate keys or keys that do not share the prefix.
    """
    if not 0 <= depth <= _MAX_DEPTH:
        raise InputError(f"a subtree depth is 0 to {_MAX_DEPTH}, got {depth}")
    _check_keys(leaves)
    return _fold(leaves, 0, len(leaves), depth)


def index_root(pairs: Iterable[tuple[bytes, Head]]) -> bytes:
    """The index root of the whole map given as (key, head) pairs in any order (an audit's recomputation).

    Sorts once, then folds in one pass (O(n) hashes; the stack is at most 257 deep, as the
    pending splits strictly increase). EMPTY for no pairs. ValueError for a duplicate key,
    InputError for a key that is not 32 bytes.
    """
    ordered = sorted(pairs, key=itemgetter(0))
    _check_keys(ordered)
    return _fold(ordered, 0, len(ordered), 0).hash


# ---- proofs --------------------------------------------------------------------------------------

PROOF_VERSION = 1
_PROOF_HEADER = struct.Struct(">BBH")  # version, ending, depth


class Ending(IntEnum):
    """What the walk down a key's path ended at (docs/completeness-index.md, "Proofs")."""

    PRESENT = 0  # the key's own leaf
    ABSENT_EMPTY = 1  # an empty subtree
    ABSENT_OTHER = 2  # another key's leaf, sharing the first `depth` bits


@dataclass(frozen=True, slots=True)
class IndexProof:
    """A key's head, or its absence, against an index root.

    `siblings` are the hashes met on the way down, from depth 1 (a child of the root) to
    `depth`, EMPTY where the subtree is empty. `head` is set for PRESENT; `other_key` and
    `other_head` for ABSENT_OTHER; neither for ABSENT_EMPTY.
    """

    ending: Ending
    siblings: tuple[bytes, ...]
    head: Head | None = None
    other_key: bytes | None = None
    other_head: Head | None = None

    def __post_init__(self) -> None:
        """Refuse a proof whose fields do not fit its ending, or siblings that are not hashes."""
        if len(self.siblings) > _MAX_DEPTH:
            raise InputError(f"an index proof is at most {_MAX_DEPTH} deep, got {len(self.siblings)}")
        if any(len(s) != HASH_SIZE for s in self.siblings):
            raise InputError(f"every sibling of an index proof is {HASH_SIZE} bytes")
        present = self.ending == Ending.PRESENT
        other = self.ending == Ending.ABSENT_OTHER
        if (self.head is not None) != present:
            raise InputError("an index proof carries the key's head exactly when the key is present")
        if (self.other_key is not None) != other or (self.other_head is not None) != other:
            raise InputError("an index proof carries another leaf exactly when it ends at another key's leaf")
        if self.other_key is not None:
            _check_key(self.other_key)

    @property
    def depth(self) -> int:
        """The depth the walk ended at: the number of siblings."""
        return len(self.siblings)


def encode_proof(proof: IndexProof) -> bytes:
    """The binary encoding of a proof (docs/completeness-index.md, "Proofs")."""
    depth = len(proof.siblings)
    bitmap = bytearray((depth + 7) // 8)
    present = []
    for i, sibling in enumerate(proof.siblings):
        if sibling != EMPTY:
            bitmap[i >> 3] |= 0x80 >> (i & 7)
            present.append(sibling)
    parts = [_PROOF_HEADER.pack(PROOF_VERSION, proof.ending, depth), bytes(bitmap), *present]
    if proof.head is not None:
        parts.append(proof.head.encode())
    if proof.other_key is not None and proof.other_head is not None:
        parts += [proof.other_key, proof.other_head.encode()]
    return b"".join(parts)


_ENDING_SIZE = {Ending.PRESENT: HEAD_SIZE, Ending.ABSENT_EMPTY: 0, Ending.ABSENT_OTHER: KEY_SIZE + HEAD_SIZE}


def _decode_siblings(data: bytes, depth: int, ending_size: int) -> tuple[list[bytes], int]:
    """The siblings after a proof's header, EMPTY filled in, and where the ending data starts."""
    pos = _PROOF_HEADER.size
    bitmap = data[pos : pos + (depth + 7) // 8]
    pos += len(bitmap)
    if len(bitmap) != (depth + 7) // 8:
        raise EncodingError(f"the index proof ends inside its bitmap ({len(data)} bytes)")
    mask = int.from_bytes(bitmap)
    if mask & ((1 << (len(bitmap) * 8 - depth)) - 1):
        raise EncodingError("an unused bit of the index proof's bitmap is set")
    expected = pos + HASH_SIZE * mask.bit_count() + ending_size
    if len(data) != expected:
        raise EncodingError(f"the index proof is {len(data)} bytes; its header and bitmap say {expected}")
    siblings = []
    for i in range(depth):
        if bitmap[i >> 3] & (0x80 >> (i & 7)):
            sibling = data[pos : pos + HASH_SIZE]
            if sibling == EMPTY:
                raise EncodingError(f"the sibling at depth {i + 1} is marked non-EMPTY but is EMPTY")
            siblings.append(sibling)
            pos += HASH_SIZE
        else:
            siblings.append(EMPTY)
    return siblings, pos


def decode_proof(data: bytes) -> IndexProof:
    """Parse an encoded proof, strictly; EncodingError for anything but the one encoding of a proof.

    Refused: a version other than 1, an ending other than 0 to 2, a depth over 256, a set
    unused bitmap bit, a sibling marked non-EMPTY that is EMPTY (32 zero bytes), a head
    counting no entries, and any length but the exact one the header and bitmap imply.
    """
    data = bytes(data)
    if len(data) < _PROOF_HEADER.size:
        raise EncodingError(f"an index proof is at least {_PROOF_HEADER.size} bytes, got {len(data)}")
    version, ending_byte, depth = _PROOF_HEADER.unpack_from(data)
    if version != PROOF_VERSION:
        raise EncodingError(f"index proof version {version} is not known (only {PROOF_VERSION})")
    if ending_byte > Ending.ABSENT_OTHER:
        raise EncodingError(f"index proof ending {ending_byte} is not 0, 1 or 2")
    ending = Ending(ending_byte)
    if depth > _MAX_DEPTH:
        raise EncodingError(f"an index proof is at most {_MAX_DEPTH} deep, this one says {depth}")
    siblings, pos = _decode_siblings(data, depth, _ENDING_SIZE[ending])
    if ending == Ending.PRESENT:
        return IndexProof(ending, tuple(siblings), head=Head.decode(data[pos:]))
    if ending == Ending.ABSENT_OTHER:
        other_key, other_head = data[pos : pos + KEY_SIZE], Head.decode(data[pos + KEY_SIZE :])
        return IndexProof(ending, tuple(siblings), other_key=other_key, other_head=other_head)
    return IndexProof(ending, tuple(siblings))


def verify_index_proof(root: bytes, key: bytes, proof: bytes | IndexProof) -> Head | None:
    """The head of `key` a proof shows against `root`, or None when it shows the key absent.

    docs/completeness-index.md, "Verifying": decode strictly (EncodingError), start from
    the ending's hash, fold the siblings up the key's path and compare with the root.
    RootMismatchError when the result is another root; VerificationError when an
    other-leaf ending names the key itself or a key that does not share the path.
    """
    if len(root) != HASH_SIZE:
        raise InputError(f"an index root is {HASH_SIZE} bytes, got {len(root)}")
    _check_key(key)
    if not isinstance(proof, IndexProof):
        proof = decode_proof(proof)
    key_int = int.from_bytes(key)
    depth = len(proof.siblings)
    if proof.ending == Ending.PRESENT:
        assert proof.head is not None  # noqa: S101 - IndexProof guarantees it
        digest = leaf_hash(key, proof.head)
    elif proof.ending == Ending.ABSENT_EMPTY:
        digest = EMPTY
    else:
        assert proof.other_key is not None  # noqa: S101 - as above
        assert proof.other_head is not None  # noqa: S101 - as above
        if proof.other_key == key:
            raise VerificationError(f"the index proof for key {key.hex()} ends at a leaf of that same key")
        if (int.from_bytes(proof.other_key) ^ key_int) >> (_MAX_DEPTH - depth):
            raise VerificationError(
                f"the index proof for key {key.hex()} ends at depth {depth} at the leaf of key "
                f"{proof.other_key.hex()}, which does not share the first {depth} bits of the key"
            )
        digest = leaf_hash(proof.other_key, proof.other_head)
    sha256 = _sha256
    node = NODE_PREFIX
    siblings = proof.siblings
    for d in range(depth, 0, -1):
        if (key_int >> (_MAX_DEPTH - d)) & 1:
            digest = sha256(node + siblings[d - 1] + digest).digest()
        else:
            digest = sha256(node + digest + siblings[d - 1]).digest()
    if digest != root:
        raise RootMismatchError(
            f"the index proof for key {key.hex()} does not lead to the index root",
            expected=root.hex(),
            calculated=digest.hex(),
        )
    return proof.head


def _ending(key: bytes, leaf: tuple[bytes, Head], siblings: list[bytes]) -> IndexProof:
    """The proof ending at a lone leaf: the key's own (present) or another key's (absent)."""
    if leaf[0] == key:
        return IndexProof(Ending.PRESENT, tuple(siblings), head=leaf[1])
    return IndexProof(Ending.ABSENT_OTHER, tuple(siblings), other_key=leaf[0], other_head=leaf[1])


def _prove_in(
    ordered: Sequence[tuple[bytes, Head]], key: bytes, depth: int, siblings: list[bytes]
) -> IndexProof:
    """Walk down from `depth` through sorted leaves that all share the key's first `depth` bits."""
    key_int = int.from_bytes(key)
    ints = [int.from_bytes(k) for k, _ in ordered]
    lo, hi = 0, len(ordered)
    while hi - lo >= 2:
        shift = _MAX_DEPTH - 1 - depth
        mid = bisect_left(ints, ((key_int >> shift) | 1) << shift, lo, hi)  # first key with bit `depth` set
        if (key_int >> shift) & 1:
            siblings.append(_fold(ordered, lo, mid, depth + 1).hash)
            lo = mid
        else:
            siblings.append(_fold(ordered, mid, hi, depth + 1).hash)
            hi = mid
        depth += 1
    if lo == hi:
        return IndexProof(Ending.ABSENT_EMPTY, tuple(siblings))
    return _ending(key, ordered[lo], siblings)


def prove(pairs: Iterable[tuple[bytes, Head]], key: bytes) -> IndexProof:
    """The proof for `key` in the whole map given as (key, head) pairs (an audit's or a test's, O(n))."""
    _check_key(key)
    ordered = sorted(pairs, key=itemgetter(0))
    return _prove_in(ordered, key, 0, [])


# ---- the incremental tree ------------------------------------------------------------------------

MAX_BUCKET_BITS = 24
# The bucket a head is stored under (index_heads.bucket, 011_index_heads.sql), and so the buckets
# of the tree every process keeps: a key's first 16 bits.
STORED_BUCKET_BITS = 16


def stored_bucket(key: bytes) -> int:
    """The bucket a key's head is stored under: its first STORED_BUCKET_BITS bits."""
    return int.from_bytes(key[:2])


# IndexTree.delta's encoding: a header, one record per changed bucket, one per changed one-key bucket.
DELTA_VERSION = 1
_DELTA_HEADER = struct.Struct(">BBII")  # version, bucket bits, bucket records, lone-key records
_DELTA_ROOT = struct.Struct(">IB32s")  # bucket, count (0, 1 or 2: two or more), Subtree hash
_DELTA_LONE = struct.Struct(">I32sQQ32s")  # bucket, its one key, that key's head


@dataclass(frozen=True, slots=True)
class IndexPlan:
    """A change of an IndexTree computed without applying it: the new root and the new bucket Subtrees.

    `bucket_roots` is what to persist with the batch. The rest is private to the tree
    that planned it: every changed node, and the lone leaf of each changed bucket.
    """

    root: bytes
    bucket_roots: dict[int, Subtree]
    nodes: dict[int, tuple[bytes, int]] = field(repr=False)  # (hash, count) of every changed node
    lone: dict[int, tuple[bytes, Head] | None] = field(repr=False)
    version: tuple[int, int] = field(repr=False)  # (id of the tree, its version) the plan was made on


class IndexTree:
    """The index held in memory: a Subtree per bucket, and above them a dense tree of Subtrees.

    A bucket is the set of keys sharing their first `bucket_bits` bits; its Subtree is the
    one at depth `bucket_bits`. Node i of the dense tree (root 1, children 2i and 2i + 1)
    sits at depth `i.bit_length() - 1`; bucket b is node `2**bucket_bits + b`. Each node
    is `combine` of its children, so the root is the index root of docs/completeness-index.md.
    The tree also remembers the leaf of every bucket holding one key (learned from bucket
    contents), which a proof needs when its walk ends at a shortcut leaf above the buckets.
    """

    __slots__ = ("_counts", "_hashes", "_lone", "_version", "bucket_bits")

    def __init__(self, bucket_bits: int = STORED_BUCKET_BITS) -> None:
        """An empty map with 2**bucket_bits buckets (0 to MAX_BUCKET_BITS)."""
        if not 0 <= bucket_bits <= MAX_BUCKET_BITS:
            raise InputError(f"bucket_bits is 0 to {MAX_BUCKET_BITS}, got {bucket_bits}")
        self.bucket_bits = bucket_bits
        self._hashes = [EMPTY] * (2 << bucket_bits)
        self._counts = bytearray(2 << bucket_bits)
        self._lone: dict[int, tuple[bytes, Head]] = {}
        self._version = 0

    def copy(self) -> IndexTree:
        """An independent copy (to rewind to an earlier checkpoint without touching this tree)."""
        twin = IndexTree(self.bucket_bits)
        twin._hashes[:] = self._hashes
        twin._counts[:] = self._counts
        twin._lone.update(self._lone)
        return twin

    def bucket_of(self, key: bytes) -> int:
        """The bucket of a key: its first `bucket_bits` bits."""
        return int.from_bytes(key[:4]) >> (32 - self.bucket_bits)

    def root(self) -> bytes:
        """The index root of the map the tree holds."""
        return self._hashes[1]

    def bucket_root(self, bucket: int) -> Subtree:
        """The stored Subtree of one bucket."""
        i = (1 << self.bucket_bits) + bucket
        return Subtree(self._hashes[i], self._counts[i])

    def _bucket_subtree(
        self, bucket: int, leaves: Sequence[tuple[bytes, Head]]
    ) -> tuple[list[tuple[bytes, Head]], Subtree]:
        """Sort a bucket's leaves, check they belong to it, and fold them at depth `bucket_bits`."""
        if not 0 <= bucket < 1 << self.bucket_bits:
            raise InputError(f"bucket {bucket} is outside 0 to {(1 << self.bucket_bits) - 1}")
        ordered = sorted(leaves, key=itemgetter(0))
        _check_keys(ordered)
        if ordered and not self.bucket_of(ordered[0][0]) == bucket == self.bucket_of(ordered[-1][0]):
            raise InputError(f"bucket {bucket} was given keys of another bucket")
        return ordered, _fold(ordered, 0, len(ordered), self.bucket_bits)

    def _above(self, changed: dict[int, Subtree]) -> dict[int, tuple[bytes, int]]:
        """`changed` (bucket nodes) and every ancestor recomputed from it, each parent once.

        The hot loop of every batch (thousands of nodes): `combine` inlined on plain tuples.
        """
        hashes, counts = self._hashes, self._counts
        nodes: dict[int, tuple[bytes, int]] = dict(changed)
        get, sha256, prefix, empty = nodes.get, _sha256, NODE_PREFIX, EMPTY_SUBTREE
        level = set(changed)
        while level and 1 not in level:
            parents = {i >> 1 for i in level}
            for p in parents:
                left = get(2 * p) or (hashes[2 * p], counts[2 * p])
                right = get(2 * p + 1) or (hashes[2 * p + 1], counts[2 * p + 1])
                total = left[1] + right[1]
                if total >= 2:
                    nodes[p] = (sha256(prefix + left[0] + right[0]).digest(), 2)
                elif total:
                    nodes[p] = left if left[1] else right
                else:
                    nodes[p] = empty
            level = parents
        return nodes

    def plan(self, buckets: Mapping[int, Sequence[tuple[bytes, Head]]]) -> IndexPlan:
        """The tree with each given bucket holding exactly the given (key, head) pairs; nothing changes yet.

        Every bucket Subtree is folded from its leaves; each changed node above them is
        computed once. InputError for a bucket number out of range or a key of another
        bucket; ValueError for a duplicate key.
        """
        offset = 1 << self.bucket_bits
        bucket_roots: dict[int, Subtree] = {}
        lone: dict[int, tuple[bytes, Head] | None] = {}
        for bucket, leaves in buckets.items():
            ordered, root = self._bucket_subtree(bucket, leaves)
            bucket_roots[bucket] = root
            lone[bucket] = ordered[0] if root.count == 1 else None
        nodes = self._above({offset + b: r for b, r in bucket_roots.items()})
        root_hash = nodes[1][0] if 1 in nodes else self._hashes[1]
        return IndexPlan(root_hash, bucket_roots, nodes, lone, (id(self), self._version))

    def apply(self, plan: IndexPlan) -> None:
        """Make a plan the tree's state (after the batch it belongs to committed).

        A plan made on this tree as it still is is written as is. If the tree changed since
        (another process's commits were loaded), the plan's bucket Subtrees are loaded
        instead: they are the buckets' whole contents, so nothing loaded since is undone.
        """
        if plan.version != (id(self), self._version):
            self._load(plan.bucket_roots, plan.lone)
            return
        hashes, counts = self._hashes, self._counts
        for i, (digest, count) in plan.nodes.items():
            hashes[i] = digest
            counts[i] = count
        self._remember(plan.lone)
        self._version += 1

    def delta(self, plan: IndexPlan) -> bytes:
        """A plan's change as bytes that another process's tree takes on with `apply_delta`.

        Derived data shared between the service's processes (the `index_deltas` table), not a
        format any verifier reads: each changed bucket's Subtree, then the key and head of each
        changed bucket holding one key. The nodes above the buckets are left out on purpose: the
        tree taking a delta on computes them itself, so its root checks every byte of the delta.
        Precondition: `plan` was made on this tree.
        """
        lone = [(b, leaf) for b, leaf in plan.lone.items() if leaf is not None]
        parts = [_DELTA_HEADER.pack(DELTA_VERSION, self.bucket_bits, len(plan.bucket_roots), len(lone))]
        root, leaf_record = _DELTA_ROOT.pack, _DELTA_LONE.pack
        parts += [root(bucket, count, digest) for bucket, (digest, count) in plan.bucket_roots.items()]
        parts += [leaf_record(b, key, h.count, h.last_index, h.last_leaf) for b, (key, h) in lone]
        return b"".join(parts)

    def apply_delta(self, data: bytes) -> None:
        """Take on a change `delta` encoded: set its buckets' Subtrees and recompute every node above them.

        Precondition (the caller's to keep, see IndexFollower.take_deltas): the delta's plan was
        made on a tree holding the map this one holds, so that its buckets are the only ones that
        changed. The caller then compares the root with the one the batch's checkpoint commits
        to, which a wrong bucket Subtree cannot reach. EncodingError, the tree unchanged, for bytes
        that are not a delta for a tree of this many buckets, or whose lone key's leaf is not its
        bucket's Subtree.
        """
        header = _DELTA_HEADER.size
        if len(data) < header:
            raise EncodingError(f"an index delta is at least {header} bytes, got {len(data)}")
        version, bits, root_count, lone_count = _DELTA_HEADER.unpack_from(data)
        if version != DELTA_VERSION or bits != self.bucket_bits:
            raise EncodingError(
                f"an index delta of version {version} over 2**{bits} buckets does not fit this tree "
                f"(version {DELTA_VERSION}, 2**{self.bucket_bits} buckets)"
            )
        roots_end = header + root_count * _DELTA_ROOT.size
        if len(data) != roots_end + lone_count * _DELTA_LONE.size:
            raise EncodingError(f"the index delta is {len(data)} bytes; its header says otherwise")
        view = memoryview(data)
        roots = {
            b: Subtree(digest, count) for b, count, digest in _DELTA_ROOT.iter_unpack(view[header:roots_end])
        }
        lone: dict[int, tuple[bytes, Head] | None] = dict.fromkeys(roots)
        for b, key, count, last, leaf in _DELTA_LONE.iter_unpack(view[roots_end:]):
            lone[b] = (key, Head(count, last, leaf))
        singles = {b for b, (_, count) in roots.items() if count == 1}
        if len(roots) != root_count or any(not 0 <= b < 1 << bits for b in roots):
            raise EncodingError("the index delta repeats a bucket or names one outside this tree")
        if any(count > 2 or (count == 0) != (digest == EMPTY) for digest, count in roots.values()):
            raise EncodingError(
                "the index delta gives a bucket a count other than 0, 1 or 2, or an empty one a hash"
            )
        if {b for b, leaf in lone.items() if leaf is not None} != singles or lone_count != len(singles):
            raise EncodingError("the index delta's lone keys are not those of its one-key buckets")
        for b in singles:
            key, head = lone[b]  # type: ignore[misc]  # every one-key bucket has its leaf, checked above
            if self.bucket_of(key) != b or leaf_hash(key, head) != roots[b].hash:
                raise EncodingError(f"the index delta's key for bucket {b} is not the one its Subtree holds")
        self._load(roots, lone)

    def load(self, bucket_roots: Mapping[int, Subtree]) -> None:
        """Set many bucket Subtrees (start-up, or another process's commits) and recompute the nodes above.

        The leaf of a bucket holding one key is not known from its Subtree: a proof whose
        walk ends at that leaf, above the buckets, needs the bucket read (see `prove`).
        """
        self._load(bucket_roots, dict.fromkeys(bucket_roots))

    def _load(
        self, bucket_roots: Mapping[int, Subtree], lone: Mapping[int, tuple[bytes, Head] | None]
    ) -> None:
        offset = 1 << self.bucket_bits
        changed = {}
        for bucket, root in bucket_roots.items():
            if not 0 <= bucket < offset:
                raise InputError(f"bucket {bucket} is outside 0 to {offset - 1}")
            if len(root[0]) != HASH_SIZE or root[1] not in (0, 1, 2):
                raise InputError(f"bucket {bucket}'s Subtree is not a hash and a count of 0, 1 or 2")
            changed[offset + bucket] = Subtree(*root)
        hashes, counts = self._hashes, self._counts
        for i, (digest, count) in self._above(changed).items():
            hashes[i] = digest
            counts[i] = count
        self._remember(lone)
        self._version += 1

    def _remember(self, lone: Mapping[int, tuple[bytes, Head] | None]) -> None:
        for bucket, leaf in lone.items():
            if leaf is None:
                self._lone.pop(bucket, None)
            else:
                self._lone[bucket] = leaf

    def prove(self, key: bytes, bucket_leaves: Sequence[tuple[bytes, Head]]) -> IndexProof:
        """The proof for `key` against `root()`, given the current (key, head) pairs of the key's bucket.

        Precondition: `bucket_leaves` is the bucket's content this tree reflects; ConflictError
        when their Subtree is not the stored one (a writer moved the bucket on: read it again
        and retry). When the walk ends above the buckets at another bucket's lone leaf, that
        leaf comes from what the tree remembers; InputError if it was loaded without it.
        """
        _check_key(key)
        bucket = self.bucket_of(key)
        ordered, given = self._bucket_subtree(bucket, bucket_leaves)
        stored = self.bucket_root(bucket)
        if given != stored:
            raise ConflictError(
                f"the leaves given for bucket {bucket} are not the ones the index tree holds "
                f"(given {given.hash.hex()}, held {stored.hash.hex()}): read the bucket again"
            )
        hashes, counts = self._hashes, self._counts
        key_int = int.from_bytes(key)
        siblings: list[bytes] = []
        i = 1
        for depth in range(self.bucket_bits):
            if counts[i] < 2:
                if counts[i] == 0:
                    return IndexProof(Ending.ABSENT_EMPTY, tuple(siblings))
                return _ending(key, self._lone_leaf(i, bucket, ordered), siblings)
            child = 2 * i + ((key_int >> (_MAX_DEPTH - 1 - depth)) & 1)
            siblings.append(hashes[child ^ 1])
            i = child
        return _prove_in(ordered, key, self.bucket_bits, siblings)

    def _lone_leaf(self, node: int, bucket: int, ordered: Sequence[tuple[bytes, Head]]) -> tuple[bytes, Head]:
        """The one leaf under a node holding one key: from the given bucket, or remembered."""
        offset = 1 << self.bucket_bits
        counts = self._counts
        while node < offset:
            node = 2 * node if counts[2 * node] else 2 * node + 1
        if node - offset == bucket:
            return ordered[0]
        leaf = self._lone.get(node - offset)
        if leaf is None:
            raise InputError(
                f"the index tree does not know the lone leaf of bucket {node - offset} (it was loaded "
                "from bucket roots): plan that bucket's contents first"
            )
        return leaf
