"""C2SP tlog-tiles routes: `/tile/<L>/<N>[.p/<W>]` and `/tile/entries/<N>[.p/<W>]` (DESIGN.md §3.6)."""

from __future__ import annotations

from litestar import Response, get
from litestar.params import FromPath

from ledger.core.hashing import HASH_SIZE
from ledger.core.tiles import TILE_WIDTH, encode_entry_bundle, parse_index_path
from ledger.errors import EncodingError, InputError, NotFoundError
from ledger.service.openapi import PUBLIC_LOG
from ledger.service.routes_append import Authorization
from ledger.service.state import Svc
from ledger.service.wire import errors
from ledger.storage.protocol import MAX_INDEX

OCTETS = "application/octet-stream"
MAX_TILE_LEVEL = 8  # 2^(8·8) leaves: far past any log
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
_PARTIAL = {"Cache-Control": "no-cache"}


def _parse(path: str) -> tuple[str, int, int]:
    head, _, rest = path.partition("/")
    try:
        index, width = parse_index_path(rest)
    except EncodingError as exc:
        raise InputError(f"/tile/{path} is not a tile path: {exc}") from exc
    return head, index, width


@get(
    "/tile/{path:path}",
    media_type=OCTETS,
    summary="C2SP tlog-tiles hash tiles and entry bundles (open to all under serve --public-log)",
    responses=errors(400, 401, 404),
    opt=PUBLIC_LOG,
)
async def tile(svc: Svc, authorization: Authorization, path: FromPath[str]) -> Response[bytes]:
    """A hash tile (`<L>/<N>[.p/<W>]`) or an entry bundle (`entries/<N>[.p/<W>]`)."""
    await svc.authenticate_log_read(authorization)
    head, index, width = _parse(path.lstrip("/"))
    headers = _IMMUTABLE if width == TILE_WIDTH else _PARTIAL
    if head == "entries":
        rows = await svc.store.entries(index * TILE_WIDTH, width) if index < MAX_INDEX // TILE_WIDTH else []
        if len(rows) != width:
            raise NotFoundError(f"entry bundle {index} does not have {width} entries yet")
        return Response(encode_entry_bundle([r.data for r in rows]), media_type=OCTETS, headers=headers)
    if not head.isdigit() or not head.isascii() or int(head) > MAX_TILE_LEVEL or str(int(head)) != head:
        raise InputError(f"tile level {head!r} is not a level from 0 to {MAX_TILE_LEVEL}")
    rows_found = await svc.store.tiles([(int(head), index)])
    if not rows_found or rows_found[0].width < width:
        raise NotFoundError(f"tile {head}/{index} does not have width {width} yet")
    return Response(rows_found[0].hashes[: width * HASH_SIZE], media_type=OCTETS, headers=headers)
