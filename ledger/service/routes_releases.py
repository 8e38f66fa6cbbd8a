"""Release reconstruction routes: timeline, artifacts, search (DESIGN.md §4, contract; issue #4).

Each route authenticates a read token, asks `ledger.query.timeline` for event
records (one or two index queries) and shapes them as wire views. Every event
links to its inclusion proof and its exact entry bytes, so an auditor can
check each one against a signed checkpoint.
"""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.params import FromPath, PathParameter, QueryParameter

from ledger.query import timeline
from ledger.rules.timeline import EventRecord
from ledger.service.routes_append import Authorization
from ledger.service.state import READ_ROLES, Svc
from ledger.service.wire import (
    ArtifactView,
    ChainHeadView,
    EventView,
    ProofLinks,
    ReleaseRef,
    SearchPage,
    SignerView,
    TimelineView,
    errors,
)

Limit = Annotated[
    int, QueryParameter(ge=1, le=timeline.MAX_PAGE, description="Events per page (default 100, max 1000).")
]
Cursor = Annotated[
    str | None, QueryParameter(description="The `next_cursor` of the previous page (omit for the first).")
]


def event_view(record: EventRecord) -> EventView:
    """The wire view of an event record, with links to its proof and entry."""
    release = ReleaseRef(*record.release) if record.release is not None else None
    signer = record.signer
    return EventView(
        index=record.index,
        leaf_hash=record.leaf_hash.hex(),
        time=record.time,
        kind=record.kind,
        predicate_type=record.predicate_type,
        release=release,
        release_seq=record.release_seq,
        signer=SignerView(signer.keyid, signer.owner, signer.roles),
        subjects=record.subjects,
        summary=record.summary,
        proof=ProofLinks(f"/v1/proofs/inclusion?index={record.index}", f"/v1/entries/{record.index}"),
    )


@get(
    "/v1/releases/{product:str}/{version:str}/timeline",
    summary="A release's timeline",
    responses=errors(400, 401, 404),
)
async def release_timeline(
    svc: Svc, authorization: Authorization, product: FromPath[str], version: FromPath[str]
) -> TimelineView:
    """Every entry of the release's chain and the generic evidence about what it built, index order.

    `complete` says whether the chain walked from its head back to seq 0 has no
    gap; 404 when the release has no entry.
    """
    await svc.authenticate(authorization, READ_ROLES)
    found = await timeline.release_timeline(svc.store, svc.sequencer, product, version)
    return TimelineView(
        product=found.product,
        version=found.version,
        count=found.count,
        head=ChainHeadView(found.head.index, found.head.leaf_hash.hex()),
        sealed=found.sealed,
        complete=found.complete,
        events=[event_view(r) for r in found.events],
    )


@get("/v1/artifacts/{digest:str}", summary="The entries about an artifact", responses=errors(400, 401))
async def artifact(
    svc: Svc,
    authorization: Authorization,
    digest: Annotated[str, PathParameter(schema_extra={"pattern": timeline.DIGEST_PATTERN})],
    cursor: Cursor = None,
    limit: Limit = timeline.MAX_PAGE,
) -> ArtifactView:
    """Entries naming `digest` (sha256:<hex>) as a subject, and builds listing it, index order.

    400 for a malformed digest; an artifact nothing names gives an empty list.
    """
    await svc.authenticate(authorization, READ_ROLES)
    wanted = timeline.parse_digest(digest)
    page = await timeline.artifact_events(svc.store, svc.sequencer, wanted, cursor, limit)
    return ArtifactView(wanted, [event_view(r) for r in page.events], page.next_cursor)


@get(
    "/v1/search",
    summary="Search entries by kind, product, signer and time",
    responses=errors(400, 401),
)
async def search(  # noqa: PLR0913 - each query parameter is one documented filter
    *,
    svc: Svc,
    authorization: Authorization,
    kind: Annotated[
        str | None, QueryParameter(description="Short name (change, build, …), predicate type or admin kind.")
    ] = None,
    product: Annotated[str | None, QueryParameter(description="Product named by the release.")] = None,
    version: Annotated[str | None, QueryParameter(description="Version (with product).")] = None,
    signer: Annotated[str | None, QueryParameter(description="Signer keyid string.")] = None,
    since: Annotated[str | None, QueryParameter(description="RFC 3339; entries at or after.")] = None,
    until: Annotated[str | None, QueryParameter(description="RFC 3339; entries before.")] = None,
    cursor: Cursor = None,
    limit: Limit = timeline.DEFAULT_PAGE,
) -> SearchPage:
    """Entries matching every filter given, in index order, a page at a time."""
    await svc.authenticate(authorization, READ_ROLES)
    query = timeline.SearchQuery(kind, product, version, signer, since, until, cursor, limit)
    page = await timeline.search(svc.store, svc.sequencer, query)
    return SearchPage([event_view(r) for r in page.events], page.next_cursor)
