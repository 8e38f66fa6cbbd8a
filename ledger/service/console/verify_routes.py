"""The console's verify page, and the dossier it fetches (docs/console.md, issue #15).

`/ui/verify` checks a release dossier in the browser (static/verify-page.js and static/verify/):
a file the auditor picks, or, with `?product=P&version=V`, the dossier this console serves at
`/ui/releases/P/V/dossier`. Either way the check runs in the browser against the ledger key the
auditor pins, trusting nothing the server says: the server only hands over bytes to check.

The dossier route answers exactly what `GET /v1/releases/{product}/{version}/dossier` answers
(`ledger.service.routes_compliance.release_dossier`), for a signed-in person instead of a bearer
token, within the token's products (403 for another). It is read by the page's script, so its
errors are the API's JSON errors, a missing or ended session included (401), never a redirect.
"""

from __future__ import annotations

from litestar import Response, get
from litestar.params import FromQuery
from litestar.response import Template

from ledger.errors import InputError
from ledger.records.statement import MAX_NAME
from ledger.service.console.pages import (
    JSON_CALL_ERRORS,
    SECURITY_HEADERS,
    SESSION,
    ConsoleSvc,
    SignedIn,
    frame,
    page,
)
from ledger.service.params import Product, Version
from ledger.service.routes_compliance import release_dossier
from ledger.verify.dossier import Dossier


def _named(product: str, version: str) -> None:
    """InputError (400) unless both name a release as statements can: 1 to MAX_NAME characters."""
    if not (0 < len(product) <= MAX_NAME and 0 < len(version) <= MAX_NAME):
        raise InputError(f"a release's product and version are 1 to {MAX_NAME} characters each")


@get("/verify", dependencies=SESSION)
async def verify_page(
    session: SignedIn, product: FromQuery[str | None] = None, version: FromQuery[str | None] = None
) -> Template:
    """Verify a dossier in the browser against a pinned key: a file, or the release named (fetched).

    With `product` and `version` (both, or neither) the page fetches that release's dossier from
    this console; the token must be allowed that product. Without them it verifies a file.
    """
    fetched = None
    if product is not None or version is not None:
        named = {"product": product or "", "version": version or ""}
        _named(named["product"], named["version"])
        session.token.require_product(named["product"])
        fetched = named
    return page("verify.html", **frame(session, fetched=fetched))


@get(
    "/releases/{product:str}/{version:str}/dossier",
    dependencies=SESSION,
    exception_handlers=JSON_CALL_ERRORS,
)
async def release_dossier_json(
    svc: ConsoleSvc, session: SignedIn, product: Product, version: Version
) -> Response[Dossier]:
    """The release's dossier, as `GET /v1/releases/{product}/{version}/dossier` answers it."""
    _named(product, version)
    session.token.require_product(product)
    dossier = await release_dossier(svc, product, version, None)
    return Response(dossier, headers=SECURITY_HEADERS, media_type="application/json")


VERIFY_ROUTES = [verify_page, release_dossier_json]
"""The verify page and the dossier it fetches, for the console's router."""
