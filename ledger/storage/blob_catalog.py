"""The blob catalog in PostgreSQL, which every `BlobStore` backend shares (013_blobs.sql, 014_*.sql).

Wherever a blob's bytes are held, the catalog says that it exists, its size, where its bytes
are and the products it was uploaded for. A backend writes a blob's catalog row last, in the
transaction that lists its product, once the bytes hashed to the blob's name: a blob without
a row does not exist for the ledger, whatever a bucket holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ledger.core.hashing import HASH_SIZE
from ledger.errors import InputError
from ledger.records.statement import MAX_NAME
from ledger.storage.protocol import BlobInfo

HeldIn = Literal["postgres", "s3"]

_META_SQL = "SELECT size, chunks, held_in FROM blobs WHERE digest = $1"
_BLOB_SQL = """INSERT INTO blobs (digest, size, chunks, held_in) VALUES ($1, $2, $3, $4)
    ON CONFLICT (digest) DO NOTHING RETURNING true"""
_PRODUCT_SQL = "INSERT INTO blob_products (digest, product) VALUES ($1, $2) ON CONFLICT DO NOTHING"
_INFO_SQL = """SELECT b.size, array_agg(p.product ORDER BY p.product) AS products
    FROM blobs b JOIN blob_products p USING (digest) WHERE b.digest = $1 GROUP BY b.size"""

Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
Queryable: TypeAlias = "Connection | asyncpg.Pool[Any]"


@dataclass(frozen=True, slots=True)
class BlobMeta:
    """A cataloged blob's size, the rows of blob_chunks it has, and where its bytes are held."""

    size: int
    chunks: int
    held_in: HeldIn


def check_name(digest: bytes, product: str) -> None:
    """InputError unless `digest` is a SHA-256 and `product` a product name (1 to MAX_NAME characters)."""
    if len(digest) != HASH_SIZE:
        raise InputError(f"a blob is named by its {HASH_SIZE}-byte SHA-256, got {len(digest)} bytes")
    if not 0 < len(product) <= MAX_NAME:
        raise InputError(f"a product is 1 to {MAX_NAME} characters")


async def blob_meta(db: Queryable, digest: bytes) -> BlobMeta | None:
    """The catalog row of `digest`, or None when no blob of that name exists."""
    if len(digest) != HASH_SIZE:
        return None
    row = await db.fetchrow(_META_SQL, digest)
    return None if row is None else BlobMeta(row["size"], row["chunks"], row["held_in"])


async def blob_info(db: Queryable, digest: bytes) -> BlobInfo | None:
    """The stored blob with this SHA-256 and the products it was uploaded for, or None."""
    if len(digest) != HASH_SIZE:
        return None
    row = await db.fetchrow(_INFO_SQL, digest)
    return None if row is None else BlobInfo(digest, row["size"], tuple(row["products"]))


async def catalog_blob(conn: Connection, digest: bytes, size: int, chunks: int, held_in: HeldIn) -> bool:
    """Write the blob's catalog row; False when another upload wrote it first (the bytes are the same).

    Precondition: inside a transaction of `conn`, after every byte was found to hash to `digest`.
    """
    return bool(await conn.fetchval(_BLOB_SQL, digest, size, chunks, held_in))


async def list_under(conn: Connection, digest: bytes, product: str) -> BlobInfo:
    """List the cataloged blob `digest` under `product` too (nothing new when it is); the blob's info.

    Precondition: the blob's catalog row exists, or was written earlier in this transaction.
    """
    await conn.execute(_PRODUCT_SQL, digest, product)
    info = await blob_info(conn, digest)
    assert info is not None  # noqa: S101 - the precondition: the blob's row is there
    return info
