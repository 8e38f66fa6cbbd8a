"""What only the S3 backend does (ledger/storage/s3_blobs.py), against a real SeaweedFS server.

Large files go up as multipart uploads, which must stay invisible until their bytes were
checked and be aborted otherwise; an object altered or removed in the bucket must be caught
on the way out; a blob kept in PostgreSQL before the move to S3 is still read; a bucket out
of reach is a 503, not a 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
from blob_support import pieces, read_all, read_into
from ledger_harness import Ledger
from s3_support import S3Server, new_bucket
from service_support import scratch_ledger

from ledger.errors import InputError, LogIntegrityError, TooLargeError, UnavailableError
from ledger.storage.postgres import PostgresStore
from ledger.storage.postgres_blobs import PostgresBlobStore
from ledger.storage.s3_blobs import PART_SIZE, S3BlobStore, s3_client
from ledger.storage.s3_location import S3Location

T = TypeVar("T")
LIMIT = 4 * PART_SIZE
LARGE = 2 * PART_SIZE + 123_457  # three parts


@pytest.fixture(scope="module")
def ledger(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("blobs_s3")) as ledger:
        yield ledger


@pytest.fixture(scope="module")
def location(s3_server: S3Server) -> S3Location:
    return s3_server.location(new_bucket(s3_server, "s3-only"))


def on_s3(
    ledger: Ledger, location: S3Location, work: Callable[[S3BlobStore, PostgresStore], Awaitable[T]]
) -> T:
    async def go() -> T:
        store = await PostgresStore.connect(ledger.dsn)
        try:
            async with S3BlobStore.open(store.pool, location) as blobs:
                return await work(blobs, store)
        finally:
            await store.close()

    return asyncio.run(go())


async def bucket_state(location: S3Location, digest: bytes) -> tuple[int, int]:
    """(objects named after `digest`, multipart uploads left open in the bucket)."""
    async with s3_client(location) as client:
        listed = await client.list_objects_v2(Bucket=location.bucket, Prefix=location.key(digest))
        pending = await client.list_multipart_uploads(Bucket=location.bucket)
    return int(listed.get("KeyCount", 0)), len(pending.get("Uploads", []))


async def cataloged(store: PostgresStore, digest: bytes) -> int:
    count: int = await store.pool.fetchval("SELECT count(*) FROM blobs WHERE digest = $1", digest)
    return count


def test_a_large_file_goes_up_in_parts_and_comes_back_whole(ledger: Ledger, location: S3Location) -> None:
    data = os.urandom(LARGE)
    digest = hashlib.sha256(data).digest()

    async def work(blobs: S3BlobStore, store: PostgresStore) -> None:
        stored = await blobs.put(digest, "analyzer", pieces(data, (1 << 20,)), LIMIT)
        assert stored.created
        assert stored.info.size == LARGE
        assert await read_all(blobs, digest) == data
        assert await bucket_state(location, digest) == (1, 0)
        held = await store.pool.fetchrow("SELECT held_in, chunks FROM blobs WHERE digest = $1", digest)
        assert (held["held_in"], held["chunks"]) == ("s3", 0)

    on_s3(ledger, location, work)


@pytest.mark.parametrize("size", [1000, LARGE], ids=["one-put", "multipart"])
def test_bytes_that_do_not_hash_to_their_name_leave_nothing_in_the_bucket(
    ledger: Ledger, location: S3Location, size: int
) -> None:
    data = os.urandom(size)
    named = hashlib.sha256(data + b"!").digest()  # never the digest of `data`, whatever its last byte

    async def work(blobs: S3BlobStore, store: PostgresStore) -> None:
        with pytest.raises(InputError, match="nothing was stored"):
            await blobs.put(named, "analyzer", pieces(data, (1 << 20,)), LIMIT)
        assert await bucket_state(location, named) == (0, 0)
        assert await cataloged(store, named) == 0

    on_s3(ledger, location, work)


def test_an_upload_past_the_limit_is_aborted(ledger: Ledger, location: S3Location) -> None:
    data = os.urandom(LARGE)
    digest = hashlib.sha256(data).digest()

    async def work(blobs: S3BlobStore, store: PostgresStore) -> None:
        with pytest.raises(TooLargeError):
            await blobs.put(digest, "analyzer", pieces(data, (1 << 20,)), PART_SIZE + 1)
        assert await bucket_state(location, digest) == (0, 0)
        assert await cataloged(store, digest) == 0

    on_s3(ledger, location, work)


class ClientGoneError(Exception):
    """What the request's body stream raises when the client disconnects (Litestar's own is no OSError)."""


def test_a_client_that_goes_away_mid_upload_leaves_nothing(ledger: Ledger, location: S3Location) -> None:
    data = os.urandom(LARGE)
    digest = hashlib.sha256(data).digest()

    async def departing() -> AsyncIterator[bytes]:
        async for piece in pieces(data[: 2 * PART_SIZE], (1 << 20,)):
            yield piece
        raise ClientGoneError

    async def work(blobs: S3BlobStore, store: PostgresStore) -> None:
        with pytest.raises(ClientGoneError):
            await blobs.put(digest, "analyzer", departing(), LIMIT)
        assert await bucket_state(location, digest) == (0, 0)
        assert await cataloged(store, digest) == 0

    on_s3(ledger, location, work)


@pytest.mark.parametrize("change", ["overwritten", "removed"])
def test_an_object_altered_in_the_bucket_is_caught_before_its_last_byte(
    ledger: Ledger, location: S3Location, change: str
) -> None:
    data = os.urandom(3 << 20)
    digest = hashlib.sha256(data).digest()

    async def work(blobs: S3BlobStore, _: PostgresStore) -> None:
        await blobs.put(digest, "analyzer", pieces(data, (1 << 20,)), LIMIT)
        async with s3_client(location) as client:
            if change == "overwritten":
                forged = data[:100] + bytes([data[100] ^ 1]) + data[101:]
                await client.put_object(Bucket=location.bucket, Key=location.key(digest), Body=forged)
            else:
                await client.delete_object(Bucket=location.bucket, Key=location.key(digest))
        received = bytearray()
        with pytest.raises(LogIntegrityError, match="altered" if change == "overwritten" else "no object"):
            await read_into(blobs, digest, received)
        assert len(received) < len(data)

    on_s3(ledger, location, work)


def test_a_blob_kept_in_postgres_before_the_move_is_still_read(ledger: Ledger, location: S3Location) -> None:
    data = os.urandom(2 << 20)
    digest = hashlib.sha256(data).digest()

    async def work(blobs: S3BlobStore, store: PostgresStore) -> None:
        await PostgresBlobStore(store.pool).put(digest, "analyzer", pieces(data, (1 << 20,)), LIMIT)
        assert await read_all(blobs, digest) == data
        again = await blobs.put(digest, "reader", pieces(data, (1 << 20,)), LIMIT)  # listed, not stored again
        assert not again.created
        assert again.info.products == ("analyzer", "reader")
        assert await bucket_state(location, digest) == (0, 0)

    on_s3(ledger, location, work)


def test_a_postgres_store_says_it_cannot_read_a_blob_kept_in_s3(ledger: Ledger, location: S3Location) -> None:
    data = os.urandom(500)
    digest = hashlib.sha256(data).digest()

    async def work(blobs: S3BlobStore, store: PostgresStore) -> None:
        await blobs.put(digest, "analyzer", pieces(data, (1 << 20,)), LIMIT)
        with pytest.raises(UnavailableError, match="EVLEDGER_BLOB_STORE"):
            [piece async for piece in PostgresBlobStore(store.pool).read(digest)]

    on_s3(ledger, location, work)


def test_a_bucket_out_of_reach_is_unavailable(ledger: Ledger, s3_server: S3Server) -> None:
    for location in (
        s3_server.location("no-such-bucket-here"),
        S3Location("evidence", "", "http://127.0.0.1:9"),  # nothing listens on the discard port
    ):

        async def work(_: S3BlobStore, __: PostgresStore) -> None:
            raise AssertionError("opened")

        with pytest.raises(UnavailableError, match="unreachable"):
            on_s3(ledger, location, work)
