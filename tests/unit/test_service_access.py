"""Every route declares who may call it, once (ledger.service.auth).

A route's shared state comes through its access check (`dependencies=READ`, `APPEND` or
`LOG_READ`); the probes read no credential (`opt=NO_AUTH`); the one exception is the
measured hot path, `POST /v1/entries`, which checks its token itself with APPEND_ROLES.
A route added without any of these would be open to anyone: this test refuses it.
(tests/integration/test_http_ops.py checks what the OpenAPI document and the server say.)
"""

from __future__ import annotations

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler

from ledger.core.keys import SignerKey
from ledger.service.app import Settings, create_app
from ledger.service.auth import APPEND_ROLES, READ_ROLES, Access, access_of
from ledger.service.openapi import NO_AUTH

SELF_CHECKED = {("POST", "/v1/entries")}  # the hot path: ledger.service.routes_append.append_entry
APPENDS = {("POST", "/v1/entries/batch"), ("POST", "/v1/gates/evaluate"), ("PUT", "/v1/blobs/{digest:str}")}
LOG_ROUTES = {("GET", "/checkpoint"), ("GET", "/tile/{path:path}")}
PROBES = {("GET", "/healthz"), ("GET", "/readyz")}


def _app() -> Litestar:
    signer = SignerKey.from_seed("ledger.test/access", bytes(range(32)))
    return create_app(Settings(dsn="postgresql://unused", signer=signer))


def _routes(app: Litestar) -> dict[tuple[str, str], HTTPRouteHandler]:
    return {
        (method, route.path): handler
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if isinstance(handler, HTTPRouteHandler)
        and handler.fn.__module__.startswith("ledger.service.routes_")
        for method in handler.http_methods
    }


def test_every_route_declares_its_access_once() -> None:
    routes = _routes(_app())
    assert set(routes) >= SELF_CHECKED | APPENDS | LOG_ROUTES | PROBES
    for key, handler in routes.items():
        access = access_of(handler)
        no_auth = handler.opt.get("auth") == NO_AUTH["auth"]
        if key in SELF_CHECKED:
            assert access is None, key
            assert not no_auth, key
        elif key in PROBES:
            assert (access, no_auth) == (None, True), key
        else:
            assert isinstance(access, Access), f"{key} declares no access: it would be open to anyone"
            assert not no_auth, key
            expected = (
                Access(APPEND_ROLES) if key in APPENDS else Access(READ_ROLES, public_log=key in LOG_ROUTES)
            )
            assert access == expected, key


CONSOLE_PACKAGE = "ledger.service.console."
CONSOLE_PUBLIC = {("GET", "/ui"), ("GET", "/ui/login"), ("POST", "/ui/login")}  # before a session exists


def test_every_console_page_but_sign_in_needs_a_session() -> None:
    from ledger.service.console.pages import console_session  # noqa: PLC0415 - only this test

    app = _app()
    pages = {
        (method, route.path): handler
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if isinstance(handler, HTTPRouteHandler) and handler.fn.__module__.startswith(CONSOLE_PACKAGE)
        for method in handler.http_methods
    }
    assert set(pages) >= CONSOLE_PUBLIC | {("GET", "/ui/releases"), ("POST", "/ui/logout")}
    for key, handler in pages.items():
        provider = handler.resolve_dependencies().get("session")
        needs_session = getattr(provider, "dependency", None) is console_session
        assert needs_session == (key not in CONSOLE_PUBLIC), key
        assert access_of(handler) is None, key  # pages never take a bearer token
        assert not handler.resolve_include_in_schema(), key  # pages are not the API
