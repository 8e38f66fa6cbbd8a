"""Which failures are database outages, and how a store raises them (ledger.storage.outage).

The exceptions are the ones asyncpg and the socket layer raise; the real outage (a cut
connection, terminated sessions) is tests/integration/test_outage.py.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from ledger.errors import UnavailableError, UnstorableError
from ledger.storage import outage
from ledger.storage.outage import (
    OUTAGE_RETRY_AFTER,
    CannotConnectError,
    is_outage,
    open_connection,
    unavailable_on_outage,
)

OUTAGES = [
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError(),  # connect, command and pool-acquire timeouts
    OSError(113, "No route to host"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.ConnectionFailureError("connection failure"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.CrashShutdownError("terminating connection because of crash of another server process"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.InterfaceError("connection is closed"),
    asyncpg.InterfaceError("pool is closing"),
    # The next query on a session the server ended while it was idle (asyncpg 0.32).
    asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
]
NOT_OUTAGES = [
    asyncpg.UniqueViolationError("duplicate key value violates unique constraint"),
    asyncpg.DataError("invalid byte sequence for encoding"),
    asyncpg.UndefinedTableError('relation "entries" does not exist'),
    asyncpg.InsufficientPrivilegeError("permission denied for table entries"),
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    asyncpg.InternalClientError("unexpected codec type: 42"),
    RuntimeError("the ledger is not initialised"),
    ValueError("a bug"),
    UnstorableError("a value the store cannot hold"),
]


@pytest.mark.parametrize("exc", OUTAGES, ids=lambda e: type(e).__name__ + ":" + str(e)[:20])
def test_connection_level_failures_are_outages(exc: BaseException) -> None:
    assert is_outage(exc)


@pytest.mark.parametrize("exc", NOT_OUTAGES, ids=lambda e: type(e).__name__)
def test_failures_that_would_recur_on_retry_are_not_outages(exc: BaseException) -> None:
    assert not is_outage(exc)


@unavailable_on_outage
class _Store:
    """A store whose calls fail with whatever the test sets."""

    def __init__(self) -> None:
        self.failure: BaseException | None = None
        self.released = False

    async def read(self) -> int:
        if self.failure is not None:
            raise self.failure
        return 7

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Store]:
        if self.failure is not None:
            raise self.failure
        try:
            yield self
        finally:
            self.released = True

    async def _private(self) -> None:
        raise ConnectionResetError


@pytest.mark.parametrize("exc", OUTAGES[:6], ids=lambda e: type(e).__name__)
def test_a_guarded_coroutine_raises_an_outage_as_unavailable_with_its_cause(exc: BaseException) -> None:
    store = _Store()
    assert asyncio.run(store.read()) == 7
    store.failure = exc
    with pytest.raises(UnavailableError) as raised:
        asyncio.run(store.read())
    assert raised.value.retry_after == OUTAGE_RETRY_AFTER
    assert raised.value.__cause__ is exc
    assert "unreachable" in str(raised.value)
    assert "Connection" not in str(raised.value)  # the cause is for the server log, not the client


@pytest.mark.parametrize("exc", NOT_OUTAGES, ids=lambda e: type(e).__name__)
def test_a_guarded_coroutine_lets_other_failures_through_unchanged(exc: BaseException) -> None:
    store = _Store()
    store.failure = exc
    with pytest.raises(type(exc)) as raised:
        asyncio.run(store.read())
    assert raised.value is exc


def test_a_guarded_transaction_raises_outages_on_entry_and_inside_and_lets_the_rest_through() -> None:
    async def scenario() -> None:
        store = _Store()
        store.failure = asyncpg.CannotConnectNowError("the database system is shutting down")
        with pytest.raises(UnavailableError):
            async with store.transaction():
                pytest.fail("entered a transaction that could not begin")
        store.failure = None
        with pytest.raises(UnavailableError):
            async with store.transaction():
                raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        assert store.released
        bug = RuntimeError("not an outage")
        with pytest.raises(RuntimeError) as raised:
            async with store.transaction():
                raise bug
        assert raised.value is bug
        async with store.transaction() as txn:
            assert await txn.read() == 7

    asyncio.run(scenario())


def test_private_helpers_are_left_alone() -> None:
    with pytest.raises(ConnectionResetError):
        asyncio.run(_Store()._private())


def test_any_failure_to_open_a_pool_connection_is_an_outage_that_keeps_its_reason() -> None:
    with socket.socket() as s:  # a port nothing listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(CannotConnectError) as refused:
        asyncio.run(open_connection(f"postgresql://nobody@127.0.0.1:{port}/none", timeout=2))
    assert is_outage(refused.value)
    assert "cannot connect to the ledger's database" in str(refused.value)
    assert isinstance(refused.value.__cause__, OSError)  # the reason stays, for the operator's log


def test_an_outage_is_logged_at_most_once_a_second_however_many_requests_meet_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _Store()
    store.failure = ConnectionRefusedError(111, "Connection refused")

    async def many() -> None:
        for _ in range(50):
            with pytest.raises(UnavailableError):
                await store.read()

    with caplog.at_level("WARNING", logger="ledger.storage.outage"):
        outage._warnings.last = -outage.LOG_INTERVAL  # as after a quiet second
        asyncio.run(many())
    lines = [r for r in caplog.records if r.name == "ledger.storage.outage"]
    assert len(lines) == 1
    assert "Connection refused" in lines[0].getMessage()
