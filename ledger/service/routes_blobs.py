"""Evidence files over HTTP (issue #14): `PUT` and `GET /v1/blobs/sha256:<hex>`.

A thin edge over the store's `BlobStore`. An upload is streamed: the guard charges only the
bytes in flight (`STREAMED_BODY`), the store hashes them as they arrive and keeps nothing
unless all of them hash to the digest in the path. Uploads are product-scoped like appends
(`?product=`, which an appender's scoped token must hold); a read token scoped to products
sees a blob only when it was uploaded for one of them, and any other gets the 404 of a blob
never stored, so a digest alone tells it nothing.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from litestar import Request, Response, get, put
from litestar.openapi import ResponseSpec
from litestar.params import PathParameter, QueryParameter
from litestar.response import Stream

from ledger.errors import InputError, NotFoundError, TooLargeError
from ledger.query.timeline import DIGEST_PATTERN, parse_digest
from ledger.service.auth import APPEND, READ, Token
from ledger.service.availability import STREAMED_BODY, declared_length
from ledger.service.openapi import request_body
from ledger.service.state import Svc
from ledger.service.wire import BlobView, errors
from ledger.storage.protocol import BlobInfo

IMMUTABLE = "private, max-age=31536000, immutable"  # a blob's bytes never change
BlobDigest = Annotated[
    str,
    PathParameter(
        description="`sha256:<64 hex digits>`: the SHA-256 of the file's bytes.",
        schema_extra={"pattern": DIGEST_PATTERN},
    ),
]


def _blob_name(digest: str) -> bytes:
    """The SHA-256 a path names (`sha256:<64 lowercase hex>`); InputError otherwise."""
    try:
        return bytes.fromhex(parse_digest(digest).removeprefix("sha256:"))
    except InputError as exc:
        raise InputError(f"a blob is named sha256:<64 hex digits>, got {digest[:80]!r}") from exc


@put(
    "/v1/blobs/{digest:str}",
    summary="Upload an evidence file, named by its SHA-256",
    description=(
        "The body is the file's bytes, streamed. It is stored only if all of it hashes to the "
        "digest in the path; an upload of a file already stored is checked the same way and "
        "lists it under `product` too. 201 when the bytes were stored, 200 when they were there."
    ),
    dependencies=APPEND,
    status_code=201,
    # Not Litestar's limit (10 MB by default, answered in its own shape): the store enforces
    # `svc.max_blob` as it reads, and a declared length past it is refused before a byte is read.
    request_max_body_size=None,
    opt={STREAMED_BODY: True, **request_body(bytes)},
    responses={
        200: ResponseSpec(data_container=BlobView, description="The bytes were stored already"),
        **errors(400, 401, 403, 408, 413, 503),
    },
)
async def put_blob(
    svc: Svc,
    request: Request[Token, Any, Any],
    digest: BlobDigest,
    product: Annotated[str, QueryParameter(description="The product the file is evidence for.")],
) -> Response[BlobView]:
    """Store the body as the blob `digest` for `product`; nothing is kept if it hashes otherwise."""
    name = _blob_name(digest)
    request.auth.require_product(product)
    limit = svc.max_blob
    declared = declared_length(request.scope)
    if declared is not None and declared > limit:
        raise TooLargeError(f"the blob is {declared:,} bytes, over the {limit:,}-byte limit")
    with svc.uploads.slot():
        stored = await svc.blobs.put(name, product, request.stream(), limit)
    view = BlobView(f"sha256:{name.hex()}", stored.info.size, stored.created)
    return Response(view, status_code=201 if stored.created else 200)


def visible_blob(info: BlobInfo | None, token: Token, digest: bytes) -> BlobInfo:
    """The blob, if this token may read it: any, or one uploaded for a product the token holds.

    NotFoundError otherwise, as for a blob never stored. The one product-scope rule for reading
    files: this route and the console's downloads (ledger.service.console.event_page) apply it.
    """
    scope = token.row.products
    if info is None or (scope and not set(scope).intersection(info.products)):
        raise NotFoundError(f"no blob sha256:{digest.hex()} is stored")
    return info


@get(
    "/v1/blobs/{digest:str}",
    summary="Download an evidence file by its SHA-256",
    description=(
        "The file's bytes, streamed, with its size and digest in the headers. A token scoped to "
        "products reads only files uploaded for one of them."
    ),
    dependencies=READ,
    media_type="application/octet-stream",
    responses=errors(400, 401, 404, 503),
)
async def get_blob(svc: Svc, request: Request[Token, Any, Any], digest: BlobDigest) -> Stream:
    """The blob's bytes, a chunk at a time."""
    name = _blob_name(digest)
    info = visible_blob(await svc.blobs.info(name), request.auth, name)
    headers = {
        "Content-Length": str(info.size),
        "ETag": f'"sha256:{name.hex()}"',
        "Repr-Digest": f"sha-256=:{base64.b64encode(name).decode()}:",  # RFC 9530
        "Cache-Control": IMMUTABLE,
    }
    return Stream(svc.blobs.read(name), media_type="application/octet-stream", headers=headers)
