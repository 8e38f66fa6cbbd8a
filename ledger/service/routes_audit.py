"""Where an auditor starts (docs/http-api.md, issue #12): the releases, the keys and the policies.

Each route takes a read token (`dependencies=READ`) and asks `ledger.query.audit_lists`:
releases come from the evidence index, a page at a time; keys and policies are
replayed from their admin entries, so every service process answers alike.
"""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.params import QueryParameter

from ledger.core.encoding import format_time
from ledger.query import audit_lists
from ledger.service.auth import READ
from ledger.service.params import Cursor, Limit
from ledger.service.state import Svc
from ledger.service.wire import (
    EntryMoment,
    KeyList,
    KeyView,
    PolicyList,
    PolicyView,
    RevocationView,
    errors,
)


@get("/v1/releases", summary="List releases", responses=errors(400, 401), dependencies=READ)
async def list_releases(  # noqa: PLR0913, PLR0917 - one query parameter each
    svc: Svc,
    product: Annotated[str | None, QueryParameter(description="Only this product's releases.")] = None,
    release_state: Annotated[
        str | None,
        QueryParameter(name="state", description="`open` or `sealed`: only releases in that state."),
    ] = None,
    deployed_to: Annotated[
        str | None,
        QueryParameter(
            description="Only releases with a deployment into this environment on their chain "
            "(failed attempts included).",
        ),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> audit_lists.ReleaseList:
    """Every release with an entry on its chain, in (product, version) order, a page at a time.

    `sealed_at` is the index of the release's seal, null while it is open. A page
    filtered by `state` or `deployed_to` may be short (even empty) and still carry a cursor.
    """
    return await audit_lists.releases(
        svc.index,
        product=product,
        state=release_state,
        cursor=cursor,
        limit=limit,
        deployed_to=deployed_to,
    )


@get("/v1/keys", summary="Every key ever registered", responses=errors(400, 401), dependencies=READ)
async def list_keys(svc: Svc) -> KeyList:
    """Who may sign what, with history: every key registered, its owner, roles, products and revocation."""
    keys = []
    for history in await audit_lists.key_histories(svc.store):
        key = history.key
        revoked = None
        if key.revoked_at is not None and history.revoked_time is not None:
            revoked = RevocationView(key.revoked_at, history.revoked_time, key.revoke_reason)
        keys.append(
            KeyView(
                keyid=key.keyid,
                owner=key.owner,
                roles=sorted(key.roles),
                products=sorted(key.products),
                registered_at=EntryMoment(key.registered_at, history.registered_time),
                revoked_at=revoked,
                expires=None if key.expires is None else format_time(key.expires),
            )
        )
    return KeyList(keys)


@get("/v1/policies", summary="Every published policy", responses=errors(400, 401), dependencies=READ)
async def list_policies(svc: Svc) -> PolicyList:
    """Every policy published, in index order; the newest is the one in force."""
    policies = await audit_lists.published_policies(svc.store)
    return PolicyList(
        [PolicyView(p.index, p.time, p.name, p.version, p.digest, p.in_force) for p in policies]
    )
