"""Release reconstruction routes: timeline, artifacts, search (docs/http-api.md, contract; issue #4).

Each route takes a read token (`dependencies=READ`), asks `ledger.query.timeline` for event
records (one or two index queries) and shapes them as wire views. Every event
links to its inclusion proof and its exact entry bytes, so an auditor can
check each one against a signed checkpoint.
"""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.params import PathParameter, QueryParameter

from ledger.errors import InputError
from ledger.query import audit_lists, timeline
from ledger.rules.events import Event
from ledger.service.auth import READ
from ledger.service.params import RELEASE, Cursor, Limit, Product, Version
from ledger.service.state import Svc
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


def event_view(event: Event) -> EventView:
    """The wire view of an event, with links to its proof and entry."""
    release = ReleaseRef(*event.release) if event.release is not None else None
    signer = event.signer
    return EventView(
        index=event.index,
        leaf_hash=event.leaf_hash.hex(),
        time=event.time,
        kind=event.kind,
        predicate_type=event.predicate_type,
        release=release,
        release_seq=event.release_seq,
        signer=SignerView(signer.keyid, signer.owner, signer.roles),
        subjects=event.subjects,
        summary=event.summary,
        proof=ProofLinks(f"/v1/proofs/inclusion?index={event.index}", f"/v1/entries/{event.index}"),
    )


@get(
    f"{RELEASE}/timeline", summary="A release's timeline", responses=errors(400, 401, 404), dependencies=READ
)
async def release_timeline(svc: Svc, product: Product, version: Version) -> TimelineView:
    """Every entry of the release's chain and the generic evidence about what it built, index order.

    `complete` says whether the chain walked from its head back to seq 0 has no
    gap; 404 when the release has no entry.
    """
    found = await timeline.release_timeline(svc.store, svc.index, svc.sequencer, product, version)
    return TimelineView(
        product=found.product,
        version=found.version,
        count=found.count,
        head=ChainHeadView(found.head.index, found.head.leaf_hash.hex()),
        sealed=found.sealed,
        complete=found.complete,
        events=[event_view(r) for r in found.events],
    )


@get(
    "/v1/artifacts/{digest:str}",
    summary="The entries about an artifact",
    responses=errors(400, 401),
    dependencies=READ,
)
async def artifact(
    svc: Svc,
    digest: Annotated[str, PathParameter(schema_extra={"pattern": timeline.DIGEST_PATTERN})],
    cursor: Cursor = None,
    limit: Limit = timeline.MAX_PAGE,
) -> ArtifactView:
    """Entries naming `digest` (sha256:<hex>) as a subject, and builds listing it, index order.

    400 for a malformed digest; an artifact nothing names gives an empty list.
    """
    wanted = timeline.parse_digest(digest)
    page = await timeline.artifact_events(svc.store, svc.index, svc.sequencer, wanted, cursor, limit)
    return ArtifactView(wanted, [event_view(r) for r in page.events], page.next_cursor)


@get(
    "/v1/search",
    summary="Search entries by kind, product, signer and time",
    responses=errors(400, 401),
    dependencies=READ,
)
async def search(  # noqa: PLR0913 - each query parameter is one documented filter
    *,
    svc: Svc,
    kind: Annotated[
        str | None, QueryParameter(description="Short name (change, build, …), predicate type or admin kind.")
    ] = None,
    product: Annotated[str | None, QueryParameter(description="Product named by the release.")] = None,
    version: Annotated[str | None, QueryParameter(description="Version (with product).")] = None,
    signer: Annotated[str | None, QueryParameter(description="Signer keyid string.")] = None,
    signer_owner: Annotated[
        str | None,
        QueryParameter(description="Owner as registered: any of the owner's keys, revoked ones too."),
    ] = None,
    since: Annotated[str | None, QueryParameter(description="RFC 3339; entries at or after.")] = None,
    until: Annotated[str | None, QueryParameter(description="RFC 3339; entries before.")] = None,
    cursor: Cursor = None,
    limit: Limit = timeline.DEFAULT_PAGE,
) -> SearchPage:
    """Entries matching every filter given, in index order, a page at a time.

    `signer_owner` searches every key ever registered to that owner; it does not combine with `signer`.
    """
    query = timeline.SearchQuery(kind, product, version, signer, since, until, cursor, limit)
    if signer_owner:
        if signer:
            raise InputError("give signer or signer_owner, not both")
        page = await audit_lists.search_by_owner(svc.store, svc.index, svc.sequencer, query, signer_owner)
    else:
        page = await timeline.search(svc.store, svc.index, svc.sequencer, query)
    return SearchPage([event_view(r) for r in page.events], page.next_cursor)
