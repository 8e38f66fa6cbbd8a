"""Read routes: checkpoints, entries, proofs (docs/http-api.md); any token reads them (`READ`)."""

from __future__ import annotations

from typing import Annotated

from litestar import Response, get
from litestar.params import PathParameter, QueryParameter
from litestar.response.base import ASGIResponse

from ledger.core.cosignature import add_cosignatures
from ledger.core.encoding import b64encode, hash_from_hex
from ledger.core.proof import NodeID
from ledger.errors import EncodingError, InputError, NotFoundError
from ledger.records.formats import HEX64_ANY_CASE, anchored
from ledger.service.auth import LOG_READ, READ
from ledger.service.params import EntryLimit, EntryStart, Index, TreeSize
from ledger.service.state import Svc
from ledger.service.wire import (
    ConsistencyProof,
    EntryPage,
    EntryView,
    InclusionProof,
    documented,
    errors,
    json_response,
)
from ledger.storage.protocol import MAX_INDEX
from ledger.verify.anchoring import ServedAnchors

# Litestar appends `; charset=utf-8` to every text/* type itself; naming it here too would send it twice.
TEXT = "text/plain"


async def _latest_size(svc: Svc, at_least: int = 0) -> tuple[int, str]:
    checkpoint = await svc.latest_checkpoint(at_least)
    return checkpoint.tree_size, checkpoint.note


async def _checkpoint_note(svc: Svc) -> Response[str]:
    """The served checkpoint as a C2SP signed note, cosigned under a witness policy (never cached)."""
    checkpoint = await svc.served_checkpoint()
    return Response(checkpoint.note, media_type=TEXT, headers={"Cache-Control": "no-store"})


@get(
    "/v1/checkpoint",
    media_type=TEXT,
    summary="The latest signed checkpoint (with a witness policy: the latest its quorum cosigned)",
    responses=errors(400, 401, 404, 503),
    dependencies=READ,
)
async def latest_checkpoint(svc: Svc) -> Response[str]:
    """The newest checkpoint as a C2SP signed note; needs a reader's token."""
    return await _checkpoint_note(svc)


@get(
    "/checkpoint",
    media_type=TEXT,
    summary="The latest signed checkpoint (C2SP tlog-tiles; open to all under serve --public-log)",
    responses=errors(400, 401, 404, 503),
    dependencies=LOG_READ,
)
async def tlog_checkpoint(svc: Svc) -> Response[str]:
    """The same note at the C2SP tlog-tiles path; without a token only when the log is public."""
    return await _checkpoint_note(svc)


@get(
    "/v1/anchors",
    summary="A checkpoint with its witness cosignatures and RFC 3161 time-stamp tokens",
    responses={**documented(ServedAnchors), **errors(400, 401, 404, 503)},
    dependencies=READ,
)
async def checkpoint_anchors(
    svc: Svc,
    tree_size: Annotated[
        int | None,
        QueryParameter(
            ge=0,
            le=MAX_INDEX,
            description="A checkpoint's tree size; default: the one GET /checkpoint serves.",
        ),
    ] = None,
) -> ASGIResponse:
    """The checkpoint of `tree_size`, every cosignature gathered for it as signature lines, and its tokens."""
    found = await (svc.served_checkpoint() if tree_size is None else svc.store.checkpoint(tree_size))
    if found is None:
        raise NotFoundError(f"no checkpoint was issued at tree size {tree_size}")
    anchors = await svc.anchors.anchors(found.tree_size)
    note = add_cosignatures(found.note, anchors.cosignatures)
    return json_response(
        ServedAnchors(
            tree_size=anchors.tree_size,
            checkpoint=note,
            timestamps=[b64encode(token) for _, token in anchors.timestamps],
        )
    )


@get(
    "/v1/entries/{index:int}",
    summary="One entry's exact bytes",
    responses=errors(400, 401, 404),
    dependencies=READ,
)
async def entry(svc: Svc, index: Annotated[int, PathParameter(schema_extra={"minimum": 0})]) -> EntryView:
    """Entry `index` as base64 of its exact bytes, with its leaf hash."""
    if index < 0:
        raise InputError("index must be >= 0")
    rows = await svc.store.entries(index, 1)
    if not rows:
        raise NotFoundError(f"no entry {index}")
    return EntryView(rows[0].index, rows[0].leaf_hash.hex(), b64encode(rows[0].data))


@get("/v1/entries", summary="A page of entries", responses=errors(400, 401), dependencies=READ)
async def entries(svc: Svc, start: EntryStart = 0, limit: EntryLimit = 100) -> EntryPage:
    """Entries [start, start+limit) in index order; `next` is where the following page starts."""
    rows = await svc.store.entries(start, limit)
    views = [EntryView(r.index, r.leaf_hash.hex(), b64encode(r.data)) for r in rows]
    return EntryPage(views, start + limit if len(rows) == limit else None)


async def _tree_size(svc: Svc, tree_size: int | None) -> int:
    latest, _ = await _latest_size(svc, tree_size or 0)
    if tree_size is None:
        return latest
    if not 1 <= tree_size <= latest:
        raise InputError(f"tree_size must be between 1 and {latest}, got {tree_size}")
    return tree_size


@get(
    "/v1/proofs/inclusion",
    summary="Inclusion proof (RFC 9162 audit path)",
    responses={**documented(InclusionProof), **errors(400, 401, 404)},
    dependencies=READ,
)
async def inclusion_proof(
    svc: Svc,
    index: Index = None,
    leaf_hash: Annotated[
        str | None, QueryParameter(schema_extra={"pattern": anchored(HEX64_ANY_CASE)})
    ] = None,
    tree_size: TreeSize = None,
) -> ASGIResponse:
    """The audit path of an entry (by index or leaf hash) in a tree no larger than the latest."""
    size = await _tree_size(svc, tree_size)
    if (index is None) == (leaf_hash is None):
        raise InputError("give exactly one of index or leaf_hash")
    if leaf_hash is not None:
        try:
            digest = hash_from_hex(leaf_hash.lower(), "leaf_hash")
        except EncodingError as exc:
            raise InputError(str(exc)) from exc
        index = await svc.store.entry_index_by_leaf_hash(digest)
        if index is None:
            raise NotFoundError(f"no entry has leaf hash {leaf_hash}")
    assert index is not None  # noqa: S101 - one of the two was given
    if not 0 <= index < size:
        raise InputError(f"index {index} is not in a tree of size {size}")
    path = await svc.proofs.inclusion(index, size)
    (leaf,) = await svc.proofs.node_hashes([NodeID(0, index)])  # from the tile the proof just used
    return json_response(InclusionProof(index, size, leaf.hex(), [h.hex() for h in path]))


@get(
    "/v1/proofs/consistency",
    summary="Consistency proof between two tree sizes",
    responses={**documented(ConsistencyProof), **errors(400, 401, 404)},
    dependencies=READ,
)
async def consistency_proof(
    svc: Svc,
    first: Annotated[int, QueryParameter(schema_extra={"minimum": 1})],
    second: TreeSize = None,
) -> ASGIResponse:
    """The RFC 9162 consistency proof from `first` to `second` (default: the latest size)."""
    size = await _tree_size(svc, second)
    if not 1 <= first <= size:
        raise InputError(f"first must be between 1 and {size}, got {first}")
    path = await svc.proofs.consistency(first, size)
    return json_response(ConsistencyProof(first, size, [h.hex() for h in path]))
