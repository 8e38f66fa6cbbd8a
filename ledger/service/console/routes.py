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
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery, QueryParameter
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router

from ledger.compliance.evaluate import result_data
from ledger.core.encoding import format_time
from ledger.errors import LedgerError, PermissionDeniedError
from ledger.query import audit_lists, timeline
from ledger.query.release_record import evaluate_release
from ledger.query.traceability import Sources, release_traceability
from ledger.service.console.sessions import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    ConsoleSessions,
    Session,
)
from ledger.service.errors import status_of
from ledger.service.params import Product, Version
from ledger.service.routes_releases import event_view
from ledger.service.state import ServiceState

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
LOGIN_BODY_LIMIT = 4096  # a token and a CSRF field; anything larger is no sign-in
SECURITY_HEADERS = {
    # Nothing from anywhere else, no inline script, no framing: the console works offline.
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInRequiredError(Exception):
    """The page needs a live console session; the request is sent to sign-in."""


def _svc(request: Request[Any, Any, Any]) -> ServiceState:
    state: ServiceState = request.app.state.svc
    return state


def _sessions(request: Request[Any, Any, Any]) -> ConsoleSessions:
    return _svc(request).console


async def console_session(request: Request[Any, Any, Any]) -> Session:
    """The request's live console session (the cookie); SignInRequiredError without one."""
    session = await _sessions(request).current(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise SignInRequiredError
    return session


SignedIn = NamedDependency[Session]
"""How a page asks for the signed-in person's session."""
ConsoleSvc = NamedDependency[ServiceState]
SESSION = {"session": Provide(console_session), "svc": Provide(_svc, sync_to_thread=False)}
"""What a page that needs a signed-in person declares (tests/unit/test_service_access.py checks it)."""
PUBLIC = {"svc": Provide(_svc, sync_to_thread=False)}
"""What the sign-in pages declare: no session yet."""


def same_origin(request: Request[Any, Any, Any]) -> None:
    """PermissionDeniedError unless a form was posted from this console's own origin.

    Browsers send `Origin` with every POST; one naming another host, or a request the browser
    marks cross-site (`Sec-Fetch-Site`), is refused before the form is read.
    """
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin is not None and urlsplit(origin).netloc != host:
        raise PermissionDeniedError("the form was posted from another site")
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise PermissionDeniedError("the form was posted from another site")


def _page(name: str, status: int = 200, **context: Any) -> Template:  # noqa: ANN401 - template values
    return Template(template_name=name, context=context, status_code=status, headers=SECURITY_HEADERS)


def _secure(request: Request[Any, Any, Any]) -> bool:
    forwarded = request.headers.get("x-forwarded-proto")
    return request.url.scheme == "https" or forwarded == "https"


def _safe_next(target: str | None) -> str:
    """Where to go after sign-in: a console path only (never another site)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/releases"


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
    return _page("login.html", next=_safe_next(target), error=None)


@post("/login", dependencies=PUBLIC, request_max_body_size=LOGIN_BODY_LIMIT)
async def login(
    request: Request[Any, Any, Any],
    data: Annotated[SignInForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Start a session for the token pasted in; the form again, with the reason, when it is refused."""
    same_origin(request)
    try:
        session_id = await _sessions(request).sign_in(data.token)
    except LedgerError as exc:
        status, _ = status_of(exc)
        if status >= 500:
            raise
        return _page("login.html", status=status, next=_safe_next(data.next), error=str(exc))
    cookie = Cookie(
        key=SESSION_COOKIE,
        value=session_id,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        max_age=int(SESSION_LIFETIME.total_seconds()),
    )
    return Redirect(_safe_next(data.next), status_code=303, cookies=[cookie], headers=SECURITY_HEADERS)


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
    await _sessions(request).sign_out(session)
    gone = Cookie(key=SESSION_COOKIE, value="", path="/ui", httponly=True, samesite="strict", max_age=0)
    return Redirect("/ui/login", status_code=303, cookies=[gone], headers=SECURITY_HEADERS)


def _frame(session: Session, **context: Any) -> dict[str, Any]:  # noqa: ANN401 - template values
    """What every signed-in page shows: who is signed in, and the CSRF secret for its forms."""
    row = session.token.row
    return {
        "role": row.role,
        "products": list(row.products),
        "csrf": session.csrf,
        "csrf_field": CSRF_FIELD,
        **context,
    }


@get("/releases", dependencies=SESSION)
async def releases(
    svc: ConsoleSvc,
    session: SignedIn,
    product: FromQuery[str | None] = None,
    release_state: Annotated[str | None, QueryParameter(name="state")] = None,
    cursor: FromQuery[str | None] = None,
) -> Template:
    """The releases, filtered by product and state, a page at a time."""
    chosen_state = release_state if release_state in {"open", "sealed"} else None
    page = await audit_lists.releases(
        svc.index, product=product or None, state=chosen_state, cursor=cursor or None, limit=100
    )
    next_link = None
    if page.next_cursor:
        query = {"product": product or "", "state": chosen_state or "", "cursor": page.next_cursor}
        next_link = "/ui/releases?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
    return _page(
        "releases.html",
        **_frame(
            session,
            releases=page.releases,
            product=product or "",
            state=chosen_state or "",
            next_link=next_link,
        ),
    )


@get("/releases/{product:str}/{version:str}", dependencies=SESSION)
async def release(svc: ConsoleSvc, session: SignedIn, product: Product, version: Version) -> Template:
    """One release: its compliance, traceability and timeline, as the API answers them."""
    found = await timeline.release_timeline(svc.store, svc.index, svc.sequencer, product, version)
    before = (await svc.latest_checkpoint(fresh=True)).tree_size
    compliance: dict[str, Any] | None = None
    matrix = None
    problem = None
    try:
        result, _ = await evaluate_release(
            svc.store, svc.index, svc.sequencer, product, version,
            environment=None, now=format_time(datetime.now(UTC)), before=before,
        )  # fmt: skip
        compliance = result_data(result)
        sources = Sources(svc.store, svc.index, svc.sequencer, svc.blobs)
        matrix = await release_traceability(sources, product, version, environment=None, before=before)
    except LedgerError as exc:  # no policy published yet: the timeline still shows
        problem = str(exc)
    events = [event_view(event) for event in found.events]
    return _page(
        "release.html",
        **_frame(
            session, product=product, version=version, timeline=found, events=events,
            compliance=compliance, matrix=matrix, problem=problem,
        ),
    )  # fmt: skip


@get("/verify", dependencies=SESSION)
async def verify_page(session: SignedIn) -> Template:
    """Verify a dossier in the browser, against a key the auditor pins (static/verify-page.js)."""
    return _page("verify.html", **_frame(session))


def _error_page(_: Request[Any, Any, Any], exc: LedgerError) -> Response[Any]:
    """A refusal as a page, with the API's status and message (never a trace)."""
    status, title = status_of(exc)
    return _page("error.html", status=status, title=title, detail=str(exc))


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
        release,
        verify_page,
        create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False),
    ],
    exception_handlers={SignInRequiredError: _sign_in_first, LedgerError: _error_page},
    include_in_schema=False,
)
