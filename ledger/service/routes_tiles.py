"""C2SP tlog-tiles routes: `/tile/<L>/<N>[.p/<W>]` and `/tile/entries/<N>[.p/<W>]` (docs/formats.md#tiles).

Entry bundles are sent gzip-compressed to a client whose `Accept-Encoding` takes gzip, as
tlog-tiles recommends (they are JSON envelopes, several times smaller compressed), with
`Vary: Accept-Encoding` either way. Hash tiles are hashes, which do not compress: always
sent as they are.
"""

from __future__ import annotations

import gzip
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from ledger.core.hashing import HASH_SIZE
from ledger.core.tiles import TILE_WIDTH, encode_entry_bundle, parse_tile_path
from ledger.errors import EncodingError, InputError, NotFoundError
from ledger.service.auth import LOG_READ
from ledger.service.state import Svc
from ledger.service.wire import errors
from ledger.storage.protocol import MAX_INDEX

OCTETS = "application/octet-stream"
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
_PARTIAL = {"Cache-Control": "no-cache"}
_VARY = {"Vary": "Accept-Encoding"}
_GZIP = {"Content-Encoding": "gzip"}
GZIP_LEVEL = 6  # as small as level 9 on real bundles (about 1/6 of their size), faster


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an `Accept-Encoding` value takes gzip (RFC 9110 §12.5.3).

    The weight of `gzip` (or `x-gzip`) decides, or else that of `*`; a weight of 0 refuses.
    """
    if not accept_encoding:
        return False
    named: float | None = None
    anything: float | None = None
    for item in accept_encoding.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0  # a weight we cannot read takes nothing
        coding = coding.lower()
        if coding in {"gzip", "x-gzip"}:
            named = quality if named is None else max(named, quality)
        elif coding == "*":
            anything = quality if anything is None else max(anything, quality)
    chosen = named if named is not None else anything
    return chosen is not None and chosen > 0


def _parse(path: str) -> tuple[int | None, int, int]:
    try:
        return parse_tile_path(path)
    except EncodingError as exc:
        raise InputError(f"not a tile path: {exc}") from exc


@get(
    "/tile/{path:path}",
    media_type=OCTETS,
    summary="C2SP tlog-tiles hash tiles and entry bundles (open to all under serve --public-log)",
    responses=errors(400, 401, 404),
    dependencies=LOG_READ,
)
async def tile(request: Request[Any, Any, Any], svc: Svc, path: FromPath[str]) -> Response[bytes]:
    """A hash tile (`<L>/<N>[.p/<W>]`) or an entry bundle (`entries/<N>[.p/<W>]`, gzip when accepted)."""
    level, index, width = _parse(path.lstrip("/"))
    headers = _IMMUTABLE if width == TILE_WIDTH else _PARTIAL
    if level is None:
        rows = await svc.store.entries(index * TILE_WIDTH, width) if index < MAX_INDEX // TILE_WIDTH else []
        if len(rows) != width:
            raise NotFoundError(f"entry bundle {index} does not have {width} entries yet")
        bundle = encode_entry_bundle([r.data for r in rows])
        if accepts_gzip(",".join(request.headers.getall("accept-encoding", []))):
            # mtime=0: the same bundle is always the same bytes, as a cache in front expects.
            compressed = gzip.compress(bundle, compresslevel=GZIP_LEVEL, mtime=0)
            return Response(compressed, media_type=OCTETS, headers={**headers, **_VARY, **_GZIP})
        return Response(bundle, media_type=OCTETS, headers={**headers, **_VARY})
    rows_found = await svc.store.tiles([(level, index)])
    if not rows_found or rows_found[0].width < width:
        raise NotFoundError(f"tile {level}/{index} does not have width {width} yet")
    return Response(rows_found[0].hashes[: width * HASH_SIZE], media_type=OCTETS, headers=headers)
