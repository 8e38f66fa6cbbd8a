"""The checks every `BlobStore` backend makes on a blob's bytes, going in and coming out.

Going in, `UploadCheck` counts and hashes an upload's bytes as they pass, refuses them past
the size limit, and after the last one refuses them unless they hash to the blob's name; a
backend keeps nothing visible until that check passed.

Coming out, a blob was stored only after its bytes hashed to its digest, but storage can still
be altered afterwards: a row edited by someone with the database's owner role, an object
overwritten in a bucket. `checked_chunks` hashes what the backend yields and holds the last
piece back until the whole content has hashed to the digest and its size matches: a reader of
altered content never gets all of its bytes (the response stops short of the length it
announced), and the store raises LogIntegrityError, which the service logs and answers with
503 when no byte went out yet.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator

from ledger.errors import InputError, LogIntegrityError, TooLargeError


class UploadCheck:
    """An upload's size and SHA-256 so far, against the blob's name and the size limit."""

    def __init__(self, digest: bytes, max_size: int) -> None:
        """Check bytes sent as the blob `digest`, of at most `max_size` bytes."""
        self.digest = digest
        self.max_size = max_size
        self.size = 0
        self._hasher = hashlib.sha256()

    async def passing(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """The pieces of `chunks`, each counted and hashed first; TooLargeError past the limit."""
        async for piece in chunks:
            self.size += len(piece)
            if self.size > self.max_size:
                raise TooLargeError(f"the blob is over the {self.max_size:,}-byte limit")
            self._hasher.update(piece)
            yield piece

    def require_match(self) -> None:
        """InputError unless every byte passed so far hashes to the blob's name.

        Precondition: the whole upload has passed through `passing`.
        """
        if self._hasher.digest() != self.digest:
            raise InputError(
                f"the {self.size:,} bytes sent hash to sha256:{self._hasher.hexdigest()}, not to the "
                f"sha256:{self.digest.hex()} they were sent as; nothing was stored"
            )


async def checked_chunks(digest: bytes, size: int, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The non-empty pieces of `chunks`, in order; the last one only once all hashed to `digest`.

    Precondition: `digest` and `size` are what the blob's catalog row says (the values checked
    at upload). Raises LogIntegrityError, naming the blob, when the content differs from them
    in a byte or in its length.
    """
    hasher = hashlib.sha256()
    seen = 0
    held: bytes | None = None
    async for piece in chunks:
        if not piece:
            continue
        hasher.update(piece)
        seen += len(piece)
        if held is not None:
            yield held
        held = piece
    if seen != size or hasher.digest() != digest:
        raise LogIntegrityError(
            f"the stored blob sha256:{digest.hex()} was altered: its {seen:,} stored bytes hash to "
            f"sha256:{hasher.hexdigest()} ({size:,} bytes were stored under that name)"
        )
    if held is not None:
        yield held
