"""RFC 9162 §2.1.1 Merkle tree hashing: leaf, interior node and empty-tree hashes.

The leaf and node prefixes are the domain separation that stops an interior
node from being presented as a leaf (the second-preimage forgery merkletools
allows; see README "Why not merkletools").
"""

from __future__ import annotations

import hashlib

from ledger.errors import InputError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    """Return `SHA-256(0x00 || entry)`, the hash of one log entry (RFC 9162 §2.1.1)."""
    return _sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return `SHA-256(0x01 || left || right)`; both children are 32-byte hashes."""
    return _sha256(NODE_PREFIX + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """Return the largest power of two strictly less than `n` (RFC 9162's k); needs n > 1."""
    if n < 2:
        raise InputError(f"split point needs n > 1, got {n}")
    return 1 << ((n - 1).bit_length() - 1)


def check_hash(value: bytes, what: str) -> bytes:
    """Return `value` unchanged if it is a 32-byte hash; raise InputError naming `what` otherwise."""
    if len(value) != HASH_SIZE:
        raise InputError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")
    return value
