"""A pytest plugin: every status the in-process service answers must be listed by its OpenAPI operation.

Loaded by tests/integration/test_openapi_docs.py (`pytest_plugins`), it watches every
request any test of the session sends through Litestar's `TestClient`, finds the
operation of the app's own OpenAPI document it reached (method and path template, a
static path segment before a parameter, as Litestar routes), and records the status.
A status the operation does not list fails the session, with every such
(method, path, status) named in the summary; `undeclared()` lets a test check so far.

Requests that reach no operation are not judged: an unknown path (404) or a method the
path does not take (405) belong to no operation, and neither do the `/schema` pages.
Servers run in a subprocess (`evledger serve`) are not watched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing.transport import TestClientTransport

_PARAMETER = re.compile(r"\{(\w+)(?::(\w+))?\}")
_PATTERNS = {"int": r"[-+]?\d+", "path": r".*", "str": r"[^/]+"}


@dataclass(frozen=True)
class _Operation:
    template: str  # the path as the OpenAPI document writes it
    pattern: re.Pattern[str]
    rank: tuple[int, ...]  # per segment: 0 static, 1 parameter; lower wins, as in Litestar's router
    declared: dict[str, frozenset[str]]  # method (upper case) -> the statuses its operation lists


@dataclass
class Coverage:
    """What the session saw: (method, path template, status) -> a request path that got it."""

    seen: dict[tuple[str, str, int], str] = field(default_factory=dict)
    missing: dict[tuple[str, str, int], str] = field(default_factory=dict)
    _tables: dict[int, tuple[Litestar, list[_Operation]]] = field(default_factory=dict)

    def operations(self, app: Litestar) -> list[_Operation]:
        """The app's documented operations, built once per app."""
        cached = self._tables.get(id(app))
        if cached is not None and cached[0] is app:
            return cached[1]
        paths: dict[str, Any] = app.openapi_schema.to_schema().get("paths", {})
        table = []
        for route in app.routes:
            if not isinstance(route, HTTPRoute) or (route.path_format or "/") not in paths:
                continue
            item = paths[route.path_format or "/"]
            declared = {
                method.upper(): frozenset(operation.get("responses", {}))
                for method, operation in item.items()
                if isinstance(operation, dict) and "responses" in operation
            }
            pattern, rank, at = "", [], 0
            for found in _PARAMETER.finditer(route.path):
                pattern += re.escape(route.path[at : found.start()])
                pattern += f"({_PATTERNS.get(found.group(2) or 'str', _PATTERNS['str'])})"
                at = found.end()
            pattern += re.escape(route.path[at:])
            rank = [int("{" in segment) for segment in route.path.split("/")]
            table.append(_Operation(route.path_format or "/", re.compile(pattern), tuple(rank), declared))
        self._tables[id(app)] = (app, table)
        return table

    def record(self, app: Litestar, method: str, path: str, status: int) -> None:
        """Judge one answer: the operation `method path` reached must list `status`."""
        try:
            operations = self.operations(app)
        except Exception:  # noqa: BLE001 - an app without an OpenAPI document is not judged
            return
        matching = [op for op in operations if op.pattern.fullmatch(path)]
        if not matching:
            return
        operation = min(matching, key=lambda op: op.rank)
        declared = operation.declared.get(method.upper())
        if declared is None:
            return  # a 405: the path takes other methods only
        key = (method.upper(), operation.template, status)
        self.seen.setdefault(key, path)
        if str(status) not in declared and f"{status // 100}XX" not in declared and "default" not in declared:
            self.missing.setdefault(key, path)


COVERAGE = Coverage()


def undeclared() -> dict[tuple[str, str, int], str]:
    """Each (method, path template, status) seen so far that its operation does not list."""
    return dict(COVERAGE.missing)


def seen() -> dict[tuple[str, str, int], str]:
    """Each (method, path template, status) seen so far."""
    return dict(COVERAGE.seen)


def _watching(handle: Callable[[TestClientTransport, httpx.Request], httpx.Response]) -> Any:
    def handle_request(self: TestClientTransport, request: httpx.Request) -> httpx.Response:
        response = handle(self, request)
        app = getattr(self.client, "app", None)
        if isinstance(app, Litestar):
            COVERAGE.record(app, request.method, request.url.path, response.status_code)
        return response

    handle_request.watched = True  # type: ignore[attr-defined]
    return handle_request


def pytest_configure(config: pytest.Config) -> None:  # noqa: ARG001 - the hook's signature
    """Start watching (once, however often the plugin is named)."""
    if not getattr(TestClientTransport.handle_request, "watched", False):
        TestClientTransport.handle_request = _watching(TestClientTransport.handle_request)  # type: ignore[method-assign]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail a session that passed if some answer was not documented."""
    if COVERAGE.missing and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name every answer the OpenAPI document does not list."""
    if not COVERAGE.missing:
        return
    terminalreporter.section("statuses the OpenAPI document does not list", red=True)
    for (method, template, status), path in sorted(COVERAGE.missing.items()):
        terminalreporter.line(f"{method} {template}: {status} (e.g. {method} {path})")
