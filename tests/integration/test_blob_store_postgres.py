"""The PostgreSQL blob store (013_blobs.sql): evidence files stored whole, checked, immutable (issue #14).

Each test uploads through the service role's pool, as the service will, into a freshly
migrated ledger database, and reads back what PostgreSQL holds.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

import asyncpg
import pytest
from ledger_harness import Ledger
from service_support import scratch_ledger

from ledger.errors import InputError, NotFoundError, TooLargeError
from ledger.storage.postgres import PostgresStore
from ledger.storage.postgres_blobs import CHUNK_SIZE, PostgresBlobStore

T = TypeVar("T")
LIMIT = 8 * CHUNK_SIZE


@pytest.fixture(scope="module")
def ledger(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("blobs")) as ledger:
        yield ledger


def with_blobs(ledger: Ledger, work: Callable[[PostgresBlobStore, PostgresStore], Awaitable[T]]) -> T:
    async def run() -> T:
        store = await PostgresStore.connect(ledger.dsn)
        try:
            return await work(PostgresBlobStore(store.pool), store)
        finally:
            await store.close()

    return asyncio.run(run())


async def pieces(data: bytes, sizes: tuple[int, ...] = (1, 4096, 700_001)) -> AsyncIterator[bytes]:
    """`data` in uneven pieces, as a client's body arrives."""
    position, turn = 0, 0
    while position < len(data):
        step = sizes[turn % len(sizes)]
        yield data[position : position + step]
        position, turn = position + step, turn + 1


async def read_all(blobs: PostgresBlobStore, digest: bytes) -> bytes:
    return b"".join([chunk async for chunk in blobs.read(digest)])


async def rows(store: PostgresStore, digest: bytes) -> tuple[int, int, int]:
    """How many rows of each blob table hold `digest`."""
    counts = [
        await store.pool.fetchval(f"SELECT count(*) FROM {table} WHERE digest = $1", digest)  # noqa: S608
        for table in ("blobs", "blob_chunks", "blob_products")
    ]
    return counts[0], counts[1], counts[2]


def test_a_blob_crossing_chunks_is_stored_and_read_back_whole(ledger: Ledger) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 12_345)
    digest = hashlib.sha256(data).digest()

    async def work(blobs: PostgresBlobStore, store: PostgresStore) -> None:
        stored = await blobs.put(digest, "analyzer", pieces(data), LIMIT)
        assert stored.created
        assert stored.info.size == len(data)
        assert stored.info.products == ("analyzer",)
        assert await read_all(blobs, digest) == data
        assert [len(c) async for c in blobs.read(digest)] == [CHUNK_SIZE, CHUNK_SIZE, 12_345]
        assert await rows(store, digest) == (1, 3, 1)

    with_blobs(ledger, work)


def test_an_upload_is_idempotent_and_lists_each_product_once(ledger: Ledger) -> None:
    data = os.urandom(5000)
    digest = hashlib.sha256(data).digest()

    async def work(blobs: PostgresBlobStore, store: PostgresStore) -> None:
        assert (await blobs.put(digest, "analyzer", pieces(data), LIMIT)).created
        again = await blobs.put(digest, "analyzer", pieces(data), LIMIT)
        assert not again.created
        other = await blobs.put(digest, "reader", pieces(data), LIMIT)
        assert other.info.products == ("analyzer", "reader")
        assert await rows(store, digest) == (1, 1, 2)
        assert await blobs.info(digest) == other.info

    with_blobs(ledger, work)


def test_the_empty_file_is_a_blob(ledger: Ledger) -> None:
    digest = hashlib.sha256(b"").digest()

    async def work(blobs: PostgresBlobStore, store: PostgresStore) -> None:
        assert (await blobs.put(digest, "analyzer", pieces(b""), LIMIT)).info.size == 0
        assert await read_all(blobs, digest) == b""
        assert await rows(store, digest) == (1, 0, 1)

    with_blobs(ledger, work)


def test_bytes_that_do_not_hash_to_their_name_store_nothing(ledger: Ledger) -> None:
    data = os.urandom(CHUNK_SIZE + 10)
    named = hashlib.sha256(data + b"!").digest()

    async def work(blobs: PostgresBlobStore, store: PostgresStore) -> None:
        with pytest.raises(InputError, match="nothing was stored"):
            await blobs.put(named, "analyzer", pieces(data), LIMIT)
        assert await rows(store, named) == (0, 0, 0)
        assert await blobs.info(named) is None
        with pytest.raises(NotFoundError):
            await read_all(blobs, named)

    with_blobs(ledger, work)


def test_a_blob_over_the_limit_stores_nothing(ledger: Ledger) -> None:
    data = os.urandom(3 * CHUNK_SIZE)
    digest = hashlib.sha256(data).digest()

    async def work(blobs: PostgresBlobStore, store: PostgresStore) -> None:
        with pytest.raises(TooLargeError, match="over the"):
            await blobs.put(digest, "analyzer", pieces(data), 2 * CHUNK_SIZE)
        assert await rows(store, digest) == (0, 0, 0)

    with_blobs(ledger, work)


def test_naming_a_stored_blob_for_another_product_needs_its_bytes(ledger: Ledger) -> None:
    # Knowing a digest is not holding the file: another product's uploader must send the bytes.
    data = os.urandom(3000)
    digest = hashlib.sha256(data).digest()

    async def work(blobs: PostgresBlobStore, _: PostgresStore) -> None:
        await blobs.put(digest, "analyzer", pieces(data), LIMIT)
        with pytest.raises(InputError, match="nothing was stored"):
            await blobs.put(digest, "intruder", pieces(b"guess" * 600), LIMIT)
        assert (await blobs.info(digest)).products == ("analyzer",)  # type: ignore[union-attr]

    with_blobs(ledger, work)


def test_two_uploads_of_the_same_new_file_at_once_store_it_once(ledger: Ledger) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 1)
    digest = hashlib.sha256(data).digest()

    async def work(blobs: PostgresBlobStore, store: PostgresStore) -> None:
        first, second = await asyncio.gather(
            blobs.put(digest, "analyzer", pieces(data), LIMIT),
            blobs.put(digest, "reader", pieces(data), LIMIT),
        )
        assert sorted([first.created, second.created]) == [False, True]
        assert await rows(store, digest) == (1, 3, 2)
        assert await read_all(blobs, digest) == data

    with_blobs(ledger, work)


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

    async def work(blobs: PostgresBlobStore, store: PostgresStore) -> None:
        await blobs.put(hashlib.sha256(data).digest(), "analyzer", pieces(data), LIMIT)
        with pytest.raises(asyncpg.PostgresError):
            await store.pool.execute(statement)

    with_blobs(ledger, work)


@pytest.mark.parametrize(
    ("digest", "product"), [(b"\x01" * 31, "analyzer"), (b"\x01" * 32, ""), (b"\x01" * 32, "p" * 257)]
)
def test_a_malformed_name_is_refused_before_reading(ledger: Ledger, digest: bytes, product: str) -> None:
    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("the body was read")
        yield b""  # pragma: no cover - makes this an async generator

    async def work(blobs: PostgresBlobStore, _: PostgresStore) -> None:
        with pytest.raises(InputError):
            await blobs.put(digest, product, never(), LIMIT)

    with_blobs(ledger, work)
