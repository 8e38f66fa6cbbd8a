"""Database outages, told apart from every other failure, and raised as UnavailableError.

When PostgreSQL restarts, fails over, is cut off from the service or runs out of
connections, every call the store makes fails at the connection level. None of that
is the request's fault and all of it passes: the service answers 503 with Retry-After
(docs/http-api.md), never 500, and the pool replaces the broken connections by itself on
later calls (through `open_connection`, for which any failure to connect is an outage).
`is_outage` names those failures; `unavailable_on_outage` wraps a store
class so that each of its public coroutines and async context managers raises them as
UnavailableError (the cause stays chained, and logged once, for the operator).

Anything else (a constraint, a bug, a value PostgreSQL refuses) passes through
unchanged: a failure that would recur on retry must not be disguised as an outage.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any, ParamSpec, TypeVar

import asyncpg

from ledger.errors import UnavailableError

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound=type)

OUTAGE_RETRY_AFTER = 2  # seconds: a restart or failover takes a few; the pool reconnects on the next call
CONNECT_TIMEOUT = 5.0  # seconds to open a connection; asyncpg's 60 s default would hang requests that long
COMMAND_TIMEOUT = 60.0  # seconds a statement may take before the connection is presumed lost
OUTAGE_DETAIL = "the ledger's database is unreachable; retry shortly"
LOG_INTERVAL = 1.0  # seconds between two log lines about failures of an outage

# Connection-level SQLSTATE classes: 08 connection exception, 53 insufficient resources
# (too many connections, out of memory, disk full), 57 operator intervention
# (admin shutdown, crash shutdown, cannot connect now, query cancelled, database dropped).
_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, CannotConnectError, TimeoutError (connect, command, pool)
    asyncpg.PostgresConnectionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
)
# asyncpg's InterfaceError is mostly misuse and its InternalClientError mostly a bug, except when
# they say a connection is gone: used after it closed, or, when the server ended the session between
# two queries (pg_terminate_backend, a restart), the next query on it ("cannot switch to state 12;
# another operation (2) is in progress", seen with asyncpg 0.32).
_GONE: tuple[tuple[type[Exception], tuple[str, ...]], ...] = (
    (
        asyncpg.InterfaceError,
        ("connection is closed", "connection was closed", "pool is closing", "pool is closed"),
    ),
    (asyncpg.InternalClientError, ("cannot switch to state",)),
)


class CannotConnectError(OSError):
    """The pool could not open a connection to the database (the reason is the message and the cause)."""


async def open_connection(*args: object, **kwargs: object) -> asyncpg.Connection[Any]:
    """`asyncpg.connect` for the pool: whatever stops a new connection is an outage.

    Refused, unreachable, timed out, but also a database that takes no connections now
    (SQLSTATE 55000 while an operator has set ALLOW_CONNECTIONS false), a server starting
    up, or credentials it no longer accepts: the service cannot serve until that passes.
    The message keeps the reason for the operator (a CLI prints it; the HTTP service logs it).
    """
    try:
        connection: asyncpg.Connection[Any] = await asyncpg.connect(*args, **kwargs)  # type: ignore[call-overload]  # the pool passes connect's own arguments
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise CannotConnectError(f"cannot connect to the ledger's database: {exc}") from exc
    return connection


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached or cannot serve now (not what was asked of it)."""
    if isinstance(exc, _OUTAGE_ERRORS):
        return True
    return any(isinstance(exc, cls) and any(t in str(exc) for t in texts) for cls, texts in _GONE)


class _Warnings:
    """At most one log line a second about an outage, however many requests meet it."""

    def __init__(self) -> None:
        self.last = -LOG_INTERVAL
        self.quiet = 0

    def note(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self.last < LOG_INTERVAL:
            self.quiet += 1
            return
        more = f" (and {self.quiet} more since the last report)" if self.quiet else ""
        log.warning("database unavailable during %s: %s: %s%s", what, type(exc).__name__, exc, more)
        self.last, self.quiet = now, 0


_warnings = _Warnings()


def _raise_if_outage(what: str, exc: Exception) -> None:
    """Raise UnavailableError from `exc` if it is an outage (logged, rate-limited); else return."""
    if isinstance(exc, UnavailableError) or not is_outage(exc):
        return
    _warnings.note(what, exc)
    raise UnavailableError(OUTAGE_DETAIL, retry_after=OUTAGE_RETRY_AFTER) from exc


@contextmanager
def outages_as_unavailable(what: str) -> Iterator[None]:
    """Raise an outage inside the block as UnavailableError; let every other exception through."""
    try:
        yield
    except Exception as exc:
        _raise_if_outage(what, exc)
        raise


def _coroutine(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    what = method.__qualname__

    @functools.wraps(method)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        # A plain try (free when nothing is raised): this wraps every query of the hot read paths.
        try:
            return await method(*args, **kwargs)
        except Exception as exc:
            _raise_if_outage(what, exc)
            raise

    return guarded


def _context(
    method: Callable[P, AbstractAsyncContextManager[R]],
) -> Callable[P, AbstractAsyncContextManager[R]]:
    @functools.wraps(method)
    @asynccontextmanager
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[R]:
        # Entering (acquire, BEGIN) and leaving (COMMIT, ROLLBACK, release) are guarded; an
        # error of the block itself passes through, translated only if it is an outage.
        with outages_as_unavailable(method.__qualname__):
            async with method(*args, **kwargs) as value:
                yield value

    return guarded


def unavailable_on_outage(cls: C) -> C:
    """Class decorator: every public coroutine method and async context manager of `cls` is guarded.

    Precondition: the class's async context managers are `contextlib.asynccontextmanager`
    functions (recognised through their wrapped async generator).
    """
    for name, attribute in list(vars(cls).items()):
        if name.startswith("_") or not callable(attribute):
            continue
        if inspect.iscoroutinefunction(attribute):
            setattr(cls, name, _coroutine(attribute))
        elif inspect.isasyncgenfunction(inspect.unwrap(attribute)):
            setattr(cls, name, _context(attribute))
    return cls
