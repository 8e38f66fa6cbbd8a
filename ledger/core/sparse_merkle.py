"""The completeness index: a sparse Merkle tree with shortcut leaves (docs/completeness-index.md). Pure.

An authenticated map from index keys (SHA-256 of a chain's name) to the chain's
head (count, newest index, newest leaf hash). This module owns the key texts, the
head encoding, the three hashes, the proofs and their verification.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from ledger.core.hashing import HASH_SIZE
from ledger.errors import EncodingError

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
