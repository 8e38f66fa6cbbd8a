"""`BlobStore` on PostgreSQL: evidence files in chunks, checked against their digest as they arrive.

Three immutable tables (migrations/013_blobs.sql; the catalog's part: blob_catalog.py). An
upload runs in one transaction: the bytes are hashed as they are read, cut into CHUNK_SIZE
rows, and the blob's own row is written only once the whole content hashed to the digest it
is named by; a mismatch or an oversized body rolls everything back. Content already stored
is hashed all the same (the uploader proves it holds the bytes before the blob is listed
under its product) but not stored again. Two uploads of the same new content at once
serialise on the first chunk's key; the second then finds the rows the first committed and
stores nothing. Reads are checked against the digest as they go out (blob_checks.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import asyncpg

from ledger.errors import LogIntegrityError, NotFoundError, UnavailableError
from ledger.storage.blob_catalog import blob_info, blob_meta, catalog_blob, check_name, list_under
from ledger.storage.blob_checks import UploadCheck, checked_chunks
from ledger.storage.outage import outages_as_unavailable, unavailable_on_outage
from ledger.storage.protocol import BlobInfo, StoredBlob

CHUNK_SIZE = 1 << 20  # bytes a blob_chunks row holds (the last one of a blob holds the rest)

_CHUNK_SQL = "INSERT INTO blob_chunks (digest, seq, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
_READ_SQL = "SELECT data FROM blob_chunks WHERE digest = $1 AND seq = $2"


@unavailable_on_outage  # a lost connection is a 503 with Retry-After, not a 500
class PostgresBlobStore:
    """The blobs of one PostgreSQL ledger database, through its log store's pool."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        """Use `pool`, a `PostgresStore`'s (`store.pool`), which the store closes.

        Precondition: the database is migrated to 014_blob_locations.sql.
        """
        self._pool = pool

    async def put(
        self, digest: bytes, product: str, chunks: AsyncIterable[bytes], max_size: int
    ) -> StoredBlob:
        """Store the bytes `chunks` yields as the blob `digest`, uploaded for `product` (BlobStore.put)."""
        check_name(digest, product)
        upload = UploadCheck(digest, max_size)
        seq, pending = 0, bytearray()
        async with self._pool.acquire() as conn, conn.transaction():
            stored = await blob_meta(conn, digest) is not None
            async for piece in upload.passing(chunks):
                if stored:
                    continue  # hashed only: the uploader must hold the bytes it names
                pending += piece
                while len(pending) >= CHUNK_SIZE:
                    await conn.execute(_CHUNK_SQL, digest, seq, bytes(pending[:CHUNK_SIZE]))
                    del pending[:CHUNK_SIZE]
                    seq += 1
            upload.require_match()
            created = False
            if not stored:
                if pending:
                    await conn.execute(_CHUNK_SQL, digest, seq, bytes(pending))
                    seq += 1
                created = await catalog_blob(conn, digest, upload.size, seq, "postgres")
            info = await list_under(conn, digest, product)
        return StoredBlob(info, created)

    async def info(self, digest: bytes) -> BlobInfo | None:
        """The stored blob with this SHA-256, or None."""
        return await blob_info(self._pool, digest)

    def read(self, digest: bytes) -> AsyncIterator[bytes]:
        """The stored blob's bytes, in order, a chunk at a time, checked against `digest` (blob_checks).

        NotFoundError before the first chunk for a blob not stored; UnavailableError for one whose
        bytes are held in object storage, which only an `S3BlobStore` reads.
        """
        return self._read(digest)

    async def _read(self, digest: bytes) -> AsyncIterator[bytes]:
        with outages_as_unavailable("PostgresBlobStore.read"):
            meta = await blob_meta(self._pool, digest)
        if meta is None:
            raise NotFoundError(f"no blob sha256:{digest.hex()} is stored")
        if meta.held_in != "postgres":
            raise UnavailableError(
                f"the blob sha256:{digest.hex()} is held in {meta.held_in} object storage, which this "
                "service is not configured to read (EVLEDGER_BLOB_STORE)"
            )
        async for piece in checked_chunks(digest, meta.size, self._stored_chunks(digest, meta.chunks)):
            yield piece

    async def _stored_chunks(self, digest: bytes, count: int) -> AsyncIterator[bytes]:
        """The `count` blob_chunks rows of `digest`, in order (checked by the caller: `checked_chunks`)."""
        for seq in range(count):
            with outages_as_unavailable("PostgresBlobStore.read"):
                data = await self._pool.fetchval(_READ_SQL, digest, seq)
            if data is None:
                raise LogIntegrityError(f"the stored blob sha256:{digest.hex()} lost its chunk {seq}")
            yield bytes(data)
