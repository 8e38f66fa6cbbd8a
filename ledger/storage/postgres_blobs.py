"""`BlobStore` on PostgreSQL: evidence files in chunks, checked against their digest as they arrive.

Three immutable tables (migrations/013_blobs.sql). An upload runs in one transaction: the
bytes are hashed as they are read, cut into CHUNK_SIZE rows, and the blob's own row is
written only once the whole content hashed to the digest it is named by; a mismatch or an
oversized body rolls everything back. Content already stored is hashed all the same (the
uploader proves it holds the bytes before the blob is listed under its product) but not
stored again. Two uploads of the same new content at once serialise on the first chunk's key;
the second then finds the rows the first committed and stores nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import asyncpg

from ledger.core.hashing import HASH_SIZE
from ledger.errors import InputError, NotFoundError, TooLargeError
from ledger.records.statement import MAX_NAME
from ledger.storage.outage import outages_as_unavailable, unavailable_on_outage
from ledger.storage.protocol import BlobInfo, StoredBlob

CHUNK_SIZE = 1 << 20  # bytes a blob_chunks row holds (the last one of a blob holds the rest)

_EXISTS_SQL = "SELECT chunks FROM blobs WHERE digest = $1"
_CHUNK_SQL = "INSERT INTO blob_chunks (digest, seq, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
_BLOB_SQL = """INSERT INTO blobs (digest, size, chunks) VALUES ($1, $2, $3)
    ON CONFLICT (digest) DO NOTHING RETURNING true"""
_PRODUCT_SQL = "INSERT INTO blob_products (digest, product) VALUES ($1, $2) ON CONFLICT DO NOTHING"
_INFO_SQL = """SELECT b.size, array_agg(p.product ORDER BY p.product) AS products
    FROM blobs b JOIN blob_products p USING (digest) WHERE b.digest = $1 GROUP BY b.size"""
_READ_SQL = "SELECT data FROM blob_chunks WHERE digest = $1 AND seq = $2"


def _check_name(digest: bytes, product: str) -> None:
    if len(digest) != HASH_SIZE:
        raise InputError(f"a blob is named by its {HASH_SIZE}-byte SHA-256, got {len(digest)} bytes")
    if not 0 < len(product) <= MAX_NAME:
        raise InputError(f"a product is 1 to {MAX_NAME} characters")


@unavailable_on_outage  # a lost connection is a 503 with Retry-After, not a 500
class PostgresBlobStore:
    """The blobs of one PostgreSQL ledger database, through its log store's pool."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        """Use `pool`, a `PostgresStore`'s (`store.pool`), which the store closes.

        Precondition: the database is migrated to 013_blobs.sql.
        """
        self._pool = pool

    async def put(
        self, digest: bytes, product: str, chunks: AsyncIterable[bytes], max_size: int
    ) -> StoredBlob:
        """Store the bytes `chunks` yields as the blob `digest`, uploaded for `product` (BlobStore.put)."""
        _check_name(digest, product)
        hasher = hashlib.sha256()
        size, seq, pending = 0, 0, bytearray()
        async with self._pool.acquire() as conn, conn.transaction():
            stored = await conn.fetchval(_EXISTS_SQL, digest) is not None
            async for piece in chunks:
                size += len(piece)
                if size > max_size:
                    raise TooLargeError(f"the blob is over the {max_size:,}-byte limit")
                hasher.update(piece)
                if stored:
                    continue  # hashed only: the uploader must hold the bytes it names
                pending += piece
                while len(pending) >= CHUNK_SIZE:
                    await conn.execute(_CHUNK_SQL, digest, seq, bytes(pending[:CHUNK_SIZE]))
                    del pending[:CHUNK_SIZE]
                    seq += 1
            if hasher.digest() != digest:
                raise InputError(
                    f"the {size:,} bytes sent hash to sha256:{hasher.hexdigest()}, not to the "
                    f"sha256:{digest.hex()} they were sent as; nothing was stored"
                )
            created = False
            if not stored:
                if pending:
                    await conn.execute(_CHUNK_SQL, digest, seq, bytes(pending))
                    seq += 1
                created = bool(await conn.fetchval(_BLOB_SQL, digest, size, seq))
            await conn.execute(_PRODUCT_SQL, digest, product)
            row = await conn.fetchrow(_INFO_SQL, digest)
        assert row is not None  # noqa: S101 - the blob and this product were written above, or were there
        return StoredBlob(BlobInfo(digest, row["size"], tuple(row["products"])), created)

    async def info(self, digest: bytes) -> BlobInfo | None:
        """The stored blob with this SHA-256, or None."""
        if len(digest) != HASH_SIZE:
            return None
        row = await self._pool.fetchrow(_INFO_SQL, digest)
        return None if row is None else BlobInfo(digest, row["size"], tuple(row["products"]))

    def read(self, digest: bytes) -> AsyncIterator[bytes]:
        """The stored blob's bytes, in order, a chunk at a time (NotFoundError before the first)."""
        return self._chunks(digest)

    async def _chunks(self, digest: bytes) -> AsyncIterator[bytes]:
        with outages_as_unavailable("PostgresBlobStore.read"):
            count = await self._pool.fetchval(_EXISTS_SQL, digest) if len(digest) == HASH_SIZE else None
        if count is None:
            raise NotFoundError(f"no blob sha256:{digest.hex()} is stored")
        for seq in range(count):
            with outages_as_unavailable("PostgresBlobStore.read"):
                data = await self._pool.fetchval(_READ_SQL, digest, seq)
            yield bytes(data)
