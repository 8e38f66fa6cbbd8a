"""What every console page shares: sessions as a dependency, the page response, its frame.

A page that needs a signed-in person declares `dependencies=SESSION` and takes `session:
SignedIn`; a form that changes something calls `same_origin` and `session.require_csrf`. `page`
renders a template with the console's security headers, and `frame` adds what every signed-in
page shows (who is signed in, the CSRF secret for its forms).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response
from litestar.di import NamedDependency, Provide
from litestar.response import Template
from litestar.types import ExceptionHandlersMap

from ledger.errors import LedgerError, PermissionDeniedError, UnauthenticatedError
from ledger.service.console.sessions import CSRF_FIELD, SESSION_COOKIE, ConsoleSessions, Session
from ledger.service.errors import ledger_error_handler
from ledger.service.state import ServiceState

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
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


def svc_of(request: Request[Any, Any, Any]) -> ServiceState:
    """The service's state, as the app holds it."""
    state: ServiceState = request.app.state.svc
    return state


def sessions_of(request: Request[Any, Any, Any]) -> ConsoleSessions:
    """The console's sessions."""
    return svc_of(request).console


async def console_session(request: Request[Any, Any, Any]) -> Session:
    """The request's live console session (the cookie); SignInRequiredError without one."""
    session = await sessions_of(request).current(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise SignInRequiredError
    return session


SignedIn = NamedDependency[Session]
"""How a page asks for the signed-in person's session."""
ConsoleSvc = NamedDependency[ServiceState]
SESSION = {"session": Provide(console_session), "svc": Provide(svc_of, sync_to_thread=False)}
"""What a page that needs a signed-in person declares (tests/unit/test_service_access.py checks it)."""
PUBLIC = {"svc": Provide(svc_of, sync_to_thread=False)}
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


def page(name: str, status: int = 200, **context: Any) -> Template:  # noqa: ANN401 - template values
    """The template `name` rendered with `context`, under the console's security headers."""
    return Template(template_name=name, context=context, status_code=status, headers=SECURITY_HEADERS)


def secure(request: Request[Any, Any, Any]) -> bool:
    """Whether the browser reached the console over HTTPS (directly or through a proxy)."""
    forwarded = request.headers.get("x-forwarded-proto")
    return request.url.scheme == "https" or forwarded == "https"


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a console path only (never another site)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/releases"


def frame(session: Session, **context: Any) -> dict[str, Any]:  # noqa: ANN401 - template values
    """What every signed-in page shows: who is signed in, and the CSRF secret for its forms."""
    row = session.token.row
    return {
        "role": row.role,
        "products": list(row.products),
        "csrf": session.csrf,
        "csrf_field": CSRF_FIELD,
        **context,
    }


def _json_error(request: Request[Any, Any, Any], exc: LedgerError) -> Response[Any]:
    """A refusal as the API words it (`{"status", "error", "detail"}`), for a page's script to show."""
    response = ledger_error_handler(request, exc)
    response.headers.update(SECURITY_HEADERS)
    return response


def _session_ended(request: Request[Any, Any, Any], _: SignInRequiredError) -> Response[Any]:
    return _json_error(request, UnauthenticatedError("the console session has ended: sign in again"))


JSON_CALL_ERRORS: ExceptionHandlersMap = {LedgerError: _json_error, SignInRequiredError: _session_ended}
"""The errors of the console's JSON calls (read by its pages' scripts): the API's error body, and a
401 instead of a redirect to sign-in when the session has ended."""
