"""What the blob store tests share: uploads in uneven pieces, and reading a blob back."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ledger.storage.protocol import BlobStore


async def pieces(data: bytes, sizes: tuple[int, ...] = (1, 4096, 700_001)) -> AsyncIterator[bytes]:
    """`data` in uneven pieces, as a client's body arrives."""
    position, turn = 0, 0
    while position < len(data):
        step = sizes[turn % len(sizes)]
        yield data[position : position + step]
        position, turn = position + step, turn + 1


async def read_all(blobs: BlobStore, digest: bytes) -> bytes:
    return b"".join([chunk async for chunk in blobs.read(digest)])


async def read_into(blobs: BlobStore, digest: bytes, received: bytearray) -> None:
    """Append the blob's bytes to `received` as they come, so that a caller sees how far a read got."""
    async for piece in blobs.read(digest):
        received += piece
