"""C2SP tlog-tiles routes: `/tile/<L>/<N>[.p/<W>]` and `/tile/entries/<N>[.p/<W>]` (docs/formats.md#tiles)."""

from __future__ import annotations

from litestar import Response, get
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
async def tile(svc: Svc, path: FromPath[str]) -> Response[bytes]:
    """A hash tile (`<L>/<N>[.p/<W>]`) or an entry bundle (`entries/<N>[.p/<W>]`)."""
    level, index, width = _parse(path.lstrip("/"))
    headers = _IMMUTABLE if width == TILE_WIDTH else _PARTIAL
    if level is None:
        rows = await svc.store.entries(index * TILE_WIDTH, width) if index < MAX_INDEX // TILE_WIDTH else []
        if len(rows) != width:
            raise NotFoundError(f"entry bundle {index} does not have {width} entries yet")
        return Response(encode_entry_bundle([r.data for r in rows]), media_type=OCTETS, headers=headers)
    rows_found = await svc.store.tiles([(level, index)])
    if not rows_found or rows_found[0].width < width:
        raise NotFoundError(f"tile {level}/{index} does not have width {width} yet")
    return Response(rows_found[0].hashes[: width * HASH_SIZE], media_type=OCTETS, headers=headers)
