"""The access log: one line per HTTP request on the logger `evledger.access` (docs/operations.md#access-log).

A line says who asked what and how it was answered::

    127.0.0.1 7 appender "POST /v1/entries" 201 0.84ms

the client's address, the token's id and role (`- -` when the request was not
authenticated: no token, a refused one, or a route that reads none), the method and
path, the status, and the milliseconds from the request's arrival at the app to the
end of its response. The path is logged without its query string: query values
(searched digests, products, versions) may be confidential, so only the query's
parameter names are kept (`/v1/search?product&version`). No header is ever logged,
so neither is a bearer token. A path with a character that would break the line (a
control character, a quote) is logged escaped.

`install(app)` wraps the whole app, not each route, so requests the router answers
itself (404 for an unknown path, 405) are logged too. The token is the one the
access check left in the ASGI scope (`scope["auth"]`, read by Litestar as
`request.auth`). It is cheap on the append hot path: nothing is formatted unless the
logger is enabled for INFO (`logging`'s lazy `%` formatting), and with
`EVLEDGER_ACCESS_LOG=0` the app is not wrapped at all.

Where the lines go: granian configures only its own loggers in each worker, so a
logger of ours has no handler there (warnings reach stderr through `logging`'s last
resort, INFO lines would be dropped). `install` gives `evledger.access` a stderr
handler when no handler would print its lines, and the level INFO unless one was set.
That handler writes from a thread through a bounded queue: a stderr nobody reads (a
full pipe) never blocks the event loop; past MAX_QUEUED waiting lines, lines are dropped.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import sys
import time
from collections.abc import Mapping
from logging.handlers import QueueHandler, QueueListener

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from ledger.service.auth import Token

ENV_ACCESS_LOG = "EVLEDGER_ACCESS_LOG"
LOGGER_NAME = "evledger.access"
log = logging.getLogger(LOGGER_NAME)

_FORMAT = '%s %s %s "%s %s" %d %.2fms'
_NO_RESPONSE = 0  # the status logged when the app sent none (the client went away first)
MAX_QUEUED = 10_000  # lines waiting for stderr, at most; more are dropped rather than stall the worker


def enabled(environ: Mapping[str, str]) -> bool:
    """Whether the access log is on: only when EVLEDGER_ACCESS_LOG is `1` (or `true`, `on`, `yes`).

    Off by default: measured on 2 cores (`bench_service.py --workers 2 --seconds 3`, two runs
    each, 2026-12-05), appends ran at 3,680 and 3,642/s with it and 4,064 and 4,060/s without
    (about 10 % less), and the trivial POST at 9,064 and 9,367/s against 12,655 and 13,221/s.
    """
    return environ.get(ENV_ACCESS_LOG, "0").strip().lower() in {"1", "true", "on", "yes"}


def install(app: Litestar) -> None:
    """Log every HTTP request `app` answers, one line each (the caller decides whether: `enabled`)."""
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    if not log.hasHandlers():
        _write_to_stderr()
    app.asgi_handler = AccessLog(app.asgi_handler)


class _DroppingQueueHandler(QueueHandler):
    """Hands records to the writer thread; drops them when MAX_QUEUED are already waiting."""

    def enqueue(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(record)


def _write_to_stderr() -> None:
    """Lines to stderr, written by a thread: a slow or unread stderr never stalls the event loop."""
    waiting: queue.Queue[logging.LogRecord] = queue.Queue(MAX_QUEUED)
    output = logging.StreamHandler(sys.stderr)
    output.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    listener = QueueListener(waiting, output)
    listener.start()
    atexit.register(listener.stop)  # the lines still waiting, at a clean exit
    log.addHandler(_DroppingQueueHandler(waiting))


def _who(scope: Scope) -> tuple[object, str]:
    token = scope.get("auth")
    if isinstance(token, Token):
        return token.row.token_id, token.row.role
    return "-", "-"


def _target(scope: Scope) -> str:
    """The path, and the query's parameter names without their values."""
    path: str = scope["path"]
    if not path.isprintable() or '"' in path:
        path = path.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    query: bytes = scope.get("query_string", b"")
    if query:
        names = (part.partition(b"=")[0] for part in query.split(b"&") if part)
        shown = b"&".join(names).decode("ascii", "backslashreplace")
        path = f"{path}?{shown}" if shown.isprintable() and '"' not in shown else f"{path}?…"
    return path


class AccessLog:
    """ASGI middleware: after each HTTP response, one line on `evledger.access` (see the module)."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        """Log the HTTP requests `app` answers."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer with `app`, keeping the response's status; log once the response is sent."""
        if scope["type"] != ScopeType.HTTP or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = _NO_RESPONSE

        async def keep_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, keep_status)
        except Exception:
            if status == _NO_RESPONSE:
                status = 500  # what the server answers for an app that failed before its response
            raise
        finally:
            client = scope.get("client")
            token_id, role = _who(scope)
            log.info(
                _FORMAT,
                client[0] if client else "-",
                token_id,
                role,
                scope["method"],
                _target(scope),
                status,
                (time.perf_counter() - started) * 1000,
            )
