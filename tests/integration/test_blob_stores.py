"""The blob stores (013_blobs.sql, 014_blob_locations.sql): evidence files stored whole, checked, immutable.

Every test runs on both backends (issue #14): PostgreSQL, and S3-compatible object storage
(a real SeaweedFS server, tests/integration/s3_support.py) with the catalog in PostgreSQL.
Each uploads through the service role's pool, as the service will, into a freshly migrated
ledger database, and reads back what PostgreSQL and the bucket hold.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
import pytest
from blob_support import pieces, read_all, read_into
from ledger_harness import Ledger
from s3_support import S3Server, new_bucket
from service_support import scratch_ledger

from ledger.errors import InputError, LogIntegrityError, NotFoundError, TooLargeError
from ledger.storage.postgres import PostgresStore
from ledger.storage.postgres_blobs import CHUNK_SIZE, PostgresBlobStore
from ledger.storage.protocol import BlobStore
from ledger.storage.s3_blobs import S3BlobStore, s3_client
from ledger.storage.s3_location import S3Location

T = TypeVar("T")
LIMIT = 8 * CHUNK_SIZE


@dataclass
class Backend:
    """One way of keeping blob bytes, on its own ledger database (and bucket)."""

    name: str
    ledger: Ledger
    location: S3Location | None = None

    def run(self, work: Callable[[BlobStore, PostgresStore], Awaitable[T]]) -> T:
        async def go() -> T:
            store = await PostgresStore.connect(self.ledger.dsn)
            try:
                if self.location is None:
                    return await work(PostgresBlobStore(store.pool), store)
                async with S3BlobStore.open(store.pool, self.location) as blobs:
                    return await work(blobs, store)
            finally:
                await store.close()

        return asyncio.run(go())

    def units(self, size: int) -> int:
        """Where the backend keeps a blob of `size` bytes: chunk rows, or one object."""
        return math.ceil(size / CHUNK_SIZE) if self.location is None else 1

    async def rows(self, store: PostgresStore, digest: bytes) -> tuple[int, int, int]:
        """Catalog rows, units of content (chunk rows or objects) and product rows holding `digest`."""
        blobs, chunks, products = [
            await store.pool.fetchval(f"SELECT count(*) FROM {table} WHERE digest = $1", digest)  # noqa: S608
            for table in ("blobs", "blob_chunks", "blob_products")
        ]
        if self.location is None:
            return blobs, chunks, products
        assert chunks == 0
        return blobs, await objects(self.location, digest), products


async def objects(location: S3Location, digest: bytes) -> int:
    """1 if the bucket holds the blob's object, else 0; and no upload of it may be left open."""
    async with s3_client(location) as client:
        listed = await client.list_objects_v2(Bucket=location.bucket, Prefix=location.key(digest))
        pending = await client.list_multipart_uploads(Bucket=location.bucket)
    assert pending.get("Uploads", []) == [], "an upload was left open"
    return int(listed.get("KeyCount", 0))


@pytest.fixture(scope="module", params=["postgres", "s3"])
def backend(
    request: pytest.FixtureRequest, pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("blobs")) as ledger:
        if request.param == "postgres":
            yield Backend("postgres", ledger)
            return
        server: S3Server = request.getfixturevalue("s3_server")
        yield Backend("s3", ledger, server.location(new_bucket(server, "blobs"), "ledger-a"))


@pytest.fixture(scope="module")
def ledger(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("blob_tables")) as ledger:
        yield ledger


def test_a_blob_crossing_chunks_is_stored_and_read_back_whole(backend: Backend) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 12_345)
    digest = hashlib.sha256(data).digest()

    async def work(blobs: BlobStore, store: PostgresStore) -> None:
        stored = await blobs.put(digest, "analyzer", pieces(data), LIMIT)
        assert stored.created
        assert stored.info.size == len(data)
        assert stored.info.products == ("analyzer",)
        assert await read_all(blobs, digest) == data
        if backend.location is None:
            assert [len(c) async for c in blobs.read(digest)] == [CHUNK_SIZE, CHUNK_SIZE, 12_345]
        assert await backend.rows(store, digest) == (1, backend.units(len(data)), 1)

    backend.run(work)


def test_an_upload_is_idempotent_and_lists_each_product_once(backend: Backend) -> None:
    data = os.urandom(5000)
    digest = hashlib.sha256(data).digest()

    async def work(blobs: BlobStore, store: PostgresStore) -> None:
        assert (await blobs.put(digest, "analyzer", pieces(data), LIMIT)).created
        again = await blobs.put(digest, "analyzer", pieces(data), LIMIT)
        assert not again.created
        other = await blobs.put(digest, "reader", pieces(data), LIMIT)
        assert other.info.products == ("analyzer", "reader")
        assert await backend.rows(store, digest) == (1, 1, 2)
        assert await blobs.info(digest) == other.info

    backend.run(work)


def test_the_empty_file_is_a_blob(backend: Backend) -> None:
    digest = hashlib.sha256(b"").digest()

    async def work(blobs: BlobStore, store: PostgresStore) -> None:
        assert (await blobs.put(digest, "analyzer", pieces(b""), LIMIT)).info.size == 0
        assert await read_all(blobs, digest) == b""
        assert await backend.rows(store, digest) == (1, backend.units(0), 1)

    backend.run(work)


def test_bytes_that_do_not_hash_to_their_name_store_nothing(backend: Backend) -> None:
    data = os.urandom(CHUNK_SIZE + 10)
    named = hashlib.sha256(data + b"!").digest()

    async def work(blobs: BlobStore, store: PostgresStore) -> None:
        with pytest.raises(InputError, match="nothing was stored"):
            await blobs.put(named, "analyzer", pieces(data), LIMIT)
        assert await backend.rows(store, named) == (0, 0, 0)
        assert await blobs.info(named) is None
        with pytest.raises(NotFoundError):
            await read_all(blobs, named)

    backend.run(work)


def test_a_blob_over_the_limit_stores_nothing(backend: Backend) -> None:
    data = os.urandom(3 * CHUNK_SIZE)
    digest = hashlib.sha256(data).digest()

    async def work(blobs: BlobStore, store: PostgresStore) -> None:
        with pytest.raises(TooLargeError, match="over the"):
            await blobs.put(digest, "analyzer", pieces(data), 2 * CHUNK_SIZE)
        assert await backend.rows(store, digest) == (0, 0, 0)

    backend.run(work)


def test_naming_a_stored_blob_for_another_product_needs_its_bytes(backend: Backend) -> None:
    # Knowing a digest is not holding the file: another product's uploader must send the bytes.
    data = os.urandom(3000)
    digest = hashlib.sha256(data).digest()

    async def work(blobs: BlobStore, _: PostgresStore) -> None:
        await blobs.put(digest, "analyzer", pieces(data), LIMIT)
        with pytest.raises(InputError, match="nothing was stored"):
            await blobs.put(digest, "intruder", pieces(b"guess" * 600), LIMIT)
        assert (await blobs.info(digest)).products == ("analyzer",)  # type: ignore[union-attr]

    backend.run(work)


def test_two_uploads_of_the_same_new_file_at_once_store_it_once(backend: Backend) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 1)
    digest = hashlib.sha256(data).digest()

    async def work(blobs: BlobStore, store: PostgresStore) -> None:
        first, second = await asyncio.gather(
            blobs.put(digest, "analyzer", pieces(data), LIMIT),
            blobs.put(digest, "reader", pieces(data), LIMIT),
        )
        assert sorted([first.created, second.created]) == [False, True]
        assert await backend.rows(store, digest) == (1, backend.units(len(data)), 2)
        assert await read_all(blobs, digest) == data

    backend.run(work)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE blob_chunks SET data = 'x'::bytea",
        "DELETE FROM blob_products",
        "UPDATE blobs SET size = size + 1",
        "DELETE FROM blobs",
        "TRUNCATE blob_chunks CASCADE",
    ],
)
def test_stored_blobs_cannot_be_changed_or_removed(ledger: Ledger, statement: str) -> None:
    data = os.urandom(100)

    async def work(blobs: BlobStore, store: PostgresStore) -> None:
        await blobs.put(hashlib.sha256(data).digest(), "analyzer", pieces(data), LIMIT)
        with pytest.raises(asyncpg.PostgresError):
            await store.pool.execute(statement)

    Backend("postgres", ledger).run(work)


def test_a_chunk_altered_behind_the_triggers_is_caught_before_its_last_byte(ledger: Ledger) -> None:
    # The database's owner can switch the triggers off; the bytes still have to hash to the name.
    data = os.urandom(2 * CHUNK_SIZE + 5)
    digest = hashlib.sha256(data).digest()

    async def work(blobs: BlobStore, _: PostgresStore) -> None:
        await blobs.put(digest, "analyzer", pieces(data), LIMIT)
        owner = await asyncpg.connect(ledger.dsn)  # not the service role: the owner of the tables
        try:
            await owner.execute("ALTER TABLE blob_chunks DISABLE TRIGGER USER")
            await owner.execute(
                "UPDATE blob_chunks SET data = set_byte(data, 6, get_byte(data, 6) # 255) "
                "WHERE digest = $1 AND seq = 1",
                digest,
            )
            await owner.execute("ALTER TABLE blob_chunks ENABLE TRIGGER USER")
        finally:
            await owner.close()
        received = bytearray()
        with pytest.raises(LogIntegrityError, match="was altered"):
            await read_into(blobs, digest, received)
        assert len(received) < len(data)  # the last piece was held back

    Backend("postgres", ledger).run(work)


@pytest.mark.parametrize(
    ("digest", "product"), [(b"\x01" * 31, "analyzer"), (b"\x01" * 32, ""), (b"\x01" * 32, "p" * 257)]
)
def test_a_malformed_name_is_refused_before_reading(backend: Backend, digest: bytes, product: str) -> None:
    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("the body was read")
        yield b""  # pragma: no cover - makes this an async generator

    async def work(blobs: BlobStore, _: PostgresStore) -> None:
        with pytest.raises(InputError):
            await blobs.put(digest, product, never(), LIMIT)

    backend.run(work)
