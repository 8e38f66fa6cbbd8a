"""`BlobStore` on S3-compatible object storage: the bytes in a bucket, the catalog in PostgreSQL.

A blob's bytes are one object, `<prefix>sha256/<hex>`, in the configured bucket; its catalog row
and products stay in the ledger's database (blob_catalog.py, `held_in = 's3'`), written last.
Nothing becomes visible before the bytes hashed to the blob's name:

- a blob smaller than PART_SIZE is read whole into memory, checked, and then written with one
  PUT that carries its SHA-256 (`x-amz-checksum-sha256`), so the server refuses it too if a
  byte changed on the way;
- a larger one is sent as a multipart upload (S3 API CreateMultipartUpload / UploadPart), which
  no reader can see until CompleteMultipartUpload. The last part is sent, and the upload
  completed, only once every byte hashed to the name; on a mismatch, an oversized body, a
  client that goes away or any other failure the upload is aborted (AbortMultipartUpload).

An object whose catalog row was never written (the process died in between) is invisible to
the ledger and is written again by the next upload of the same content. A blob cataloged
before the store moved to S3 (`held_in = 'postgres'`) is still read from PostgreSQL. Reads are
checked against the digest as they go out (blob_checks.py). Every failure to reach the bucket
is an UnavailableError (503 with Retry-After); its cause is logged for the operator.

The client is aiobotocore (botocore's request signing, retries and S3 model on asyncio); the
credentials come from botocore's usual chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a
profile, or an instance role.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from ledger.errors import LogIntegrityError, NotFoundError, UnavailableError
from ledger.storage.blob_catalog import blob_info, blob_meta, catalog_blob, check_name, list_under
from ledger.storage.blob_checks import UploadCheck, checked_chunks
from ledger.storage.outage import OUTAGE_RETRY_AFTER, unavailable_on_outage
from ledger.storage.postgres_blobs import PostgresBlobStore
from ledger.storage.protocol import BlobInfo, StoredBlob
from ledger.storage.s3_location import S3Location

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

log = logging.getLogger(__name__)

PART_SIZE = 8 << 20  # bytes of a multipart part (S3 wants at least 5 MiB for all parts but the last)
READ_SIZE = 1 << 20  # bytes a read yields at a time
CONNECT_TIMEOUT = 5.0  # seconds to reach the bucket's endpoint
READ_TIMEOUT = 60.0  # seconds without a byte from the endpoint before a request is presumed lost


@contextmanager
def s3_outages(location: S3Location, action: str) -> Iterator[None]:
    """Raise any failure to use the bucket during the block as UnavailableError, its cause logged.

    Refusals that retrying will not cure (a missing bucket, refused credentials) are 503 too:
    the request is not at fault, the operator must mend the configuration, and the log says so.
    """
    try:
        yield
    except (TimeoutError, BotoCoreError, ClientError, aiohttp.ClientError, OSError) as exc:
        log.warning("evidence store %s: %s failed: %s", location.describe(), action, exc)
        raise UnavailableError(
            "the ledger's evidence store is unreachable; retry shortly", retry_after=OUTAGE_RETRY_AFTER
        ) from exc


@asynccontextmanager
async def s3_client(location: S3Location) -> AsyncIterator[S3Client]:
    """A client of `location`'s service, closed with the block; UnavailableError without its bucket."""
    config = AioConfig(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"max_attempts": 3, "mode": "standard"},
        # An endpoint of one's own (MinIO, SeaweedFS, Ceph) serves buckets as paths, not host names.
        s3={"addressing_style": "path" if location.endpoint else "auto"},
    )
    context = get_session().create_client(
        "s3", endpoint_url=location.endpoint, region_name=location.region, config=config
    )
    with s3_outages(location, "opening the client"):
        client = await context.__aenter__()
    try:
        with s3_outages(location, "finding the bucket"):
            await client.head_bucket(Bucket=location.bucket)
        yield client
    finally:
        await context.__aexit__(None, None, None)


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}


@unavailable_on_outage  # the catalog's database outages are 503s too
class S3BlobStore:
    """Blobs of one ledger database whose bytes are kept in an S3 bucket (see the module's docstring)."""

    def __init__(self, pool: asyncpg.Pool[Any], client: S3Client, location: S3Location) -> None:
        """Catalog blobs in `pool`'s database and keep their bytes through `client` at `location`.

        Precondition: the database is migrated to 014_blob_locations.sql; `client` stays open
        while the store is used (see `open`).
        """
        self._pool = pool
        self._client = client
        self._location = location
        self._postgres = PostgresBlobStore(pool)  # blobs cataloged before the move to S3

    @classmethod
    @asynccontextmanager
    async def open(cls, pool: asyncpg.Pool[Any], location: S3Location) -> AsyncIterator[S3BlobStore]:
        """A store on a new client of `location` (`s3_client`), closed with the block."""
        async with s3_client(location) as client:
            yield cls(pool, client, location)

    async def put(
        self, digest: bytes, product: str, chunks: AsyncIterable[bytes], max_size: int
    ) -> StoredBlob:
        """Store the bytes `chunks` yields as the blob `digest`, uploaded for `product` (BlobStore.put)."""
        check_name(digest, product)
        upload = UploadCheck(digest, max_size)
        if await blob_meta(self._pool, digest) is not None:
            async for _ in upload.passing(chunks):
                pass  # hashed only: the uploader must hold the bytes it names
            upload.require_match()
            created = False
        else:
            await self._upload(upload, chunks)
            created = True
        async with self._pool.acquire() as conn, conn.transaction():
            if created:
                created = await catalog_blob(conn, digest, upload.size, 0, "s3")
            info = await list_under(conn, digest, product)
        return StoredBlob(info, created)

    async def _upload(self, upload: UploadCheck, chunks: AsyncIterable[bytes]) -> None:
        """Send the bytes to the blob's object; it is visible only if all of them passed `upload`'s check."""
        key = self._location.key(upload.digest)
        pending = bytearray()
        multipart: _Multipart | None = None
        try:
            async for piece in upload.passing(chunks):
                pending += piece
                if len(pending) > PART_SIZE:  # more than a part: the last part must wait for the check
                    multipart = multipart or await _Multipart.start(self._client, self._location, key)
                    await multipart.send(bytes(pending[:PART_SIZE]))
                    del pending[:PART_SIZE]
            upload.require_match()
            if multipart is None:
                with s3_outages(self._location, "storing a blob"):
                    await self._client.put_object(
                        Bucket=self._location.bucket,
                        Key=key,
                        Body=bytes(pending),
                        ChecksumSHA256=base64.b64encode(upload.digest).decode(),
                    )
                return
            await multipart.send(bytes(pending))
            await multipart.complete(upload.size)
        except BaseException:
            if multipart is not None:
                # Shielded: a client that went away cancels this task, but the upload must still end.
                await asyncio.shield(multipart.abort())
            raise

    async def info(self, digest: bytes) -> BlobInfo | None:
        """The stored blob with this SHA-256, or None."""
        return await blob_info(self._pool, digest)

    def read(self, digest: bytes) -> AsyncIterator[bytes]:
        """The stored blob's bytes, in order, checked against `digest` (NotFoundError before the first)."""
        return self._read(digest)

    async def _read(self, digest: bytes) -> AsyncIterator[bytes]:
        meta = await blob_meta(self._pool, digest)
        if meta is None:
            raise NotFoundError(f"no blob sha256:{digest.hex()} is stored")
        source = self._postgres.read(digest) if meta.held_in == "postgres" else self._object(digest)
        async for piece in checked_chunks(digest, meta.size, source):
            yield piece

    async def _object(self, digest: bytes) -> AsyncIterator[bytes]:
        """The bytes of the blob's object, unchecked (the caller checks them)."""
        key = self._location.key(digest)
        try:
            with s3_outages(self._location, "reading a blob"):
                response = await self._client.get_object(Bucket=self._location.bucket, Key=key)
        except UnavailableError as exc:
            if isinstance(exc.__cause__, ClientError) and _missing(exc.__cause__):
                raise LogIntegrityError(
                    f"the cataloged blob sha256:{digest.hex()} has no object {key} in the bucket"
                ) from exc.__cause__
            raise
        body = response["Body"]
        try:
            while True:
                with s3_outages(self._location, "reading a blob"):
                    piece = await body.read(READ_SIZE)
                if not piece:
                    return
                yield piece
        finally:
            body.close()


class _Multipart:
    """One multipart upload of an object (S3 API), invisible to readers until it is completed."""

    def __init__(self, client: S3Client, location: S3Location, key: str, upload_id: str) -> None:
        self._client, self._location, self._key, self._id = client, location, key, upload_id
        self._parts: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, client: S3Client, location: S3Location, key: str) -> _Multipart:
        with s3_outages(location, "starting an upload"):
            started = await client.create_multipart_upload(Bucket=location.bucket, Key=key)
        return cls(client, location, key, started["UploadId"])

    async def send(self, data: bytes) -> None:
        number = len(self._parts) + 1
        with s3_outages(self._location, "sending a part"):
            sent = await self._client.upload_part(
                Bucket=self._location.bucket, Key=self._key, UploadId=self._id, PartNumber=number, Body=data
            )
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})

    async def complete(self, size: int) -> None:
        """Make the object visible, then check the bucket holds `size` bytes under its key."""
        with s3_outages(self._location, "completing an upload"):
            await self._client.complete_multipart_upload(
                Bucket=self._location.bucket,
                Key=self._key,
                UploadId=self._id,
                MultipartUpload={"Parts": self._parts},  # type: ignore[typeddict-item]
            )
            head = await self._client.head_object(Bucket=self._location.bucket, Key=self._key)
        if head["ContentLength"] != size:
            raise UnavailableError(
                f"the evidence store kept {head['ContentLength']:,} bytes of a {size:,}-byte upload",
                retry_after=OUTAGE_RETRY_AFTER,
            )

    async def abort(self) -> None:
        """End the upload without an object; a failure is logged (the bucket's lifecycle rule cleans up)."""
        try:
            await self._client.abort_multipart_upload(
                Bucket=self._location.bucket, Key=self._key, UploadId=self._id
            )
        except (TimeoutError, BotoCoreError, ClientError, aiohttp.ClientError, OSError) as exc:
            log.warning(
                "evidence store %s: abandoning upload %s failed: %s", self._location.describe(), self._id, exc
            )
