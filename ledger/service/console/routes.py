"""The console's pages (docs/console.md): sign-in, the releases, one release.

Server-rendered HTML (Jinja2, autoescaped) over the same query functions the JSON API uses, so a
page shows exactly what the API answers. Every page but sign-in needs a live session
(`console_session`); without one it redirects to sign-in. Forms that change something carry the
session's CSRF secret and must come from this origin (`same_origin`). Pages are not part of the
API, so they are left out of the OpenAPI document; every asset is served from /ui/static, and
the Content-Security-Policy lets a page load nothing from anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery, QueryParameter
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router

from ledger.core.encoding import format_time
from ledger.errors import LedgerError
from ledger.query import audit_lists
from ledger.query.release_statuses import COMPLIANCE_STATUSES, check_compliance_filter, release_statuses
from ledger.service.console.approve import APPROVAL_ROUTES
from ledger.service.console.dashboard import dashboard
from ledger.service.console.log_page import log_page
from ledger.service.console.pages import (
    PUBLIC,
    SECURITY_HEADERS,
    SESSION,
    STATIC,
    ConsoleSvc,
    SignedIn,
    SignInRequiredError,
    frame,
    page,
    safe_next,
    same_origin,
    secure,
    sessions_of,
)
from ledger.service.console.release_page import RELEASE_ROUTES
from ledger.service.console.sessions import SESSION_COOKIE, SESSION_LIFETIME
from ledger.service.console.verify_routes import VERIFY_ROUTES
from ledger.service.errors import status_of

LOGIN_BODY_LIMIT = 4096  # a token and a CSRF field; anything larger is no sign-in


@dataclass
class SignInForm:
    """The sign-in form: an API token, and where to go next."""

    token: str = ""
    next: str = ""


@get("/", dependencies=PUBLIC)
async def home() -> Redirect:
    """The console starts at the releases."""
    return Redirect("/ui/releases", status_code=303)


@get("/login", dependencies=PUBLIC)
async def login_page(
    target: Annotated[str | None, QueryParameter(name="next")] = None,
) -> Template:
    """The sign-in form."""
    return page("login.html", next=safe_next(target), error=None)


@post("/login", dependencies=PUBLIC, request_max_body_size=LOGIN_BODY_LIMIT)
async def login(
    request: Request[Any, Any, Any],
    data: Annotated[SignInForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Start a session for the token pasted in; the form again, with the reason, when it is refused."""
    same_origin(request)
    try:
        session_id = await sessions_of(request).sign_in(data.token)
    except LedgerError as exc:
        status, _ = status_of(exc)
        if status >= 500:
            raise
        return page("login.html", status=status, next=safe_next(data.next), error=str(exc))
    cookie = Cookie(
        key=SESSION_COOKIE,
        value=session_id,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=secure(request),
        max_age=int(SESSION_LIFETIME.total_seconds()),
    )
    return Redirect(safe_next(data.next), status_code=303, cookies=[cookie], headers=SECURITY_HEADERS)


@dataclass
class CsrfForm:
    """A form that changes something: the session's CSRF secret."""

    csrf: str = ""


@post("/logout", dependencies=SESSION, request_max_body_size=LOGIN_BODY_LIMIT)
async def logout(
    request: Request[Any, Any, Any],
    session: SignedIn,
    data: Annotated[CsrfForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Redirect:
    """End the session (its cookie is cleared too)."""
    same_origin(request)
    session.require_csrf(data.csrf)
    await sessions_of(request).sign_out(session)
    gone = Cookie(key=SESSION_COOKIE, value="", path="/ui", httponly=True, samesite="strict", max_age=0)
    return Redirect("/ui/login", status_code=303, cookies=[gone], headers=SECURITY_HEADERS)


RELEASES_PAGE = 25
"""Releases a console page lists at most: each is evaluated for its compliance status."""


@get("/releases", dependencies=SESSION)
async def releases(  # noqa: PLR0913, PLR0917 - one query parameter per filter
    svc: ConsoleSvc,
    session: SignedIn,
    product: FromQuery[str | None] = None,
    release_state: Annotated[str | None, QueryParameter(name="state")] = None,
    compliance: FromQuery[str | None] = None,
    deployed_to: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
) -> Template:
    """The releases of the token's products, a page at a time, each with its compliance status.

    Filtered by product, state and the environment deployed to in the query layer
    (`audit_lists.releases`); by compliance here, among the page's releases, since that needs an
    evaluation per release: a page evaluates at most RELEASES_PAGE releases, so a page filtered by
    compliance may be short and still lead on. A bad filter value is a 400 page.
    """
    wanted = check_compliance_filter(compliance) if compliance else None
    found = await audit_lists.releases(
        svc.index, product=product or None, state=release_state or None, cursor=cursor or None,
        limit=RELEASES_PAGE, deployed_to=deployed_to or None, scope=session.token.row.products,
    )  # fmt: skip
    before = (await svc.latest_checkpoint(fresh=True)).tree_size
    statuses = await release_statuses(
        svc.store, svc.index, svc.sequencer, [(r.product, r.version) for r in found.releases],
        now=format_time(datetime.now(UTC)), before=before,
    )  # fmt: skip
    listed = [
        (r, statuses[r.product, r.version])
        for r in found.releases
        if wanted is None or statuses[r.product, r.version].status == wanted
    ]
    filters = {
        "product": product or "", "state": release_state or "",
        "compliance": compliance or "", "deployed_to": deployed_to or "",
    }  # fmt: skip
    next_link = None
    if found.next_cursor:
        query = {**{k: v for k, v in filters.items() if v}, "cursor": found.next_cursor}
        next_link = "/ui/releases?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
    return page(
        "releases.html",
        **frame(
            session, releases=listed, page_size=RELEASES_PAGE, statuses=COMPLIANCE_STATUSES,
            next_link=next_link, **filters,
        ),
    )  # fmt: skip


def _error_page(_: Request[Any, Any, Any], exc: LedgerError) -> Response[Any]:
    """A refusal as a page, with the API's status and message (never a trace)."""
    status, title = status_of(exc)
    return page("error.html", status=status, title=title, detail=str(exc))


def _sign_in_first(request: Request[Any, Any, Any], _: SignInRequiredError) -> Response[Any]:
    target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="")
    return Redirect(f"/ui/login?next={target}", status_code=303, headers=SECURITY_HEADERS)


console_router = Router(
    path="/ui",
    route_handlers=[
        home,
        login_page,
        login,
        logout,
        releases,
        *RELEASE_ROUTES,
        *VERIFY_ROUTES,
        dashboard,
        log_page,
        *APPROVAL_ROUTES,
        create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False),
    ],
    exception_handlers={SignInRequiredError: _sign_in_first, LedgerError: _error_page},
    include_in_schema=False,
)
