"""The body budget and body deadline of `ledger.service.availability`, driven through ASGI.

A stand-in route reads its body as Litestar does (receive until `more_body` is false);
the client side is a queue of ASGI messages the test feeds, so a slow or stalled body is
exact and fast. The real server under slow clients is tests/integration/test_availability.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import pytest

from ledger.errors import RequestTimeoutError, TooLargeError, UnavailableError
from ledger.service import availability
from ledger.service.availability import BodyBudget, BodyGuard, BodyWatch

Message = dict[str, Any]


class Client:
    """One request's ASGI side: its scope, and the body messages the test releases."""

    def __init__(self, method: str = "POST", length: int | None = None) -> None:
        headers = [(b"content-length", str(length).encode())] if length is not None else []
        self.scope: dict[str, Any] = {"type": "http", "method": method, "headers": headers}
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.reads = 0

    def send_body(self, data: bytes, *, more: bool) -> None:
        self.messages.put_nowait({"type": "http.request", "body": data, "more_body": more})

    async def receive(self) -> Message:
        self.reads += 1
        return await self.messages.get()


async def read_body(receive: Callable[[], Awaitable[Message]]) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class Route:
    """A stand-in route: reads its whole body, then holds the request open until `release`."""

    def __init__(self, *, hold: bool = False) -> None:
        self.bodies: list[bytes] = []
        self.has_read = asyncio.Event()
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        del scope, send
        self.bodies.append(await read_body(receive))
        self.has_read.set()
        await self.release.wait()  # still being handled: its body stays charged


def guarded(route: Route, budget: BodyBudget, timeout: float) -> BodyGuard:
    return BodyGuard(route, budget=budget, watch=BodyWatch(timeout))


async def _no_send(message: Any) -> None:
    del message


def test_content_length_is_charged_before_reading_and_freed_after_the_answer() -> None:
    async def scenario() -> None:
        budget = BodyBudget(1000)
        route = Route(hold=True)
        client = Client(length=600)
        client.send_body(b"x" * 600, more=False)
        task = asyncio.create_task(guarded(route, budget, 5.0)(client.scope, client.receive, _no_send))
        await route.has_read.wait()
        assert budget.in_use == 600
        route.release.set()
        await task
        assert budget.in_use == 0
        assert route.bodies == [b"x" * 600]

    asyncio.run(scenario())


def test_a_body_that_does_not_fit_now_is_drained_then_refused_with_retry_after() -> None:
    async def scenario() -> None:
        budget = BodyBudget(1000)
        route = Route(hold=True)
        first = Client(length=600)
        first.send_body(b"a" * 600, more=False)
        task = asyncio.create_task(guarded(route, budget, 5.0)(first.scope, first.receive, _no_send))
        await route.has_read.wait()

        second = Client(length=500)
        for _ in range(5):
            second.send_body(b"b" * 100, more=True)
        second.send_body(b"", more=False)
        with pytest.raises(UnavailableError) as refused:
            await guarded(Route(), budget, 5.0)(second.scope, second.receive, _no_send)
        assert refused.value.retry_after >= 1
        # Read to its end (the client sees the 503 instead of a reset), and none of it charged.
        assert second.messages.empty()
        assert second.reads == 6
        assert budget.in_use == 600
        route.release.set()
        await task
        assert budget.in_use == 0

    asyncio.run(scenario())


def test_a_body_larger_than_the_whole_budget_is_too_large() -> None:
    async def scenario() -> None:
        budget = BodyBudget(1000)
        client = Client(length=1001)
        with pytest.raises(TooLargeError, match="at most 1000"):
            await guarded(Route(), budget, 5.0)(client.scope, client.receive, _no_send)
        assert budget.in_use == 0

    asyncio.run(scenario())


def test_a_chunked_body_is_charged_as_it_arrives_and_refused_past_the_budget() -> None:
    async def scenario() -> None:
        budget = BodyBudget(1000)
        budget.take(700)  # other requests' bodies
        client = Client(length=None)
        client.send_body(b"c" * 200, more=True)
        client.send_body(b"c" * 200, more=True)
        client.send_body(b"c" * 50, more=False)
        with pytest.raises(UnavailableError):
            await guarded(Route(), budget, 5.0)(client.scope, client.receive, _no_send)
        assert client.messages.empty()  # drained
        assert budget.in_use == 700  # its first 200 bytes were charged, then given back

    asyncio.run(scenario())


def test_a_stalled_body_is_cut_at_the_deadline_and_its_budget_freed() -> None:
    async def scenario() -> None:
        budget = BodyBudget(100_000)
        client = Client(length=60_000)
        client.send_body(b"{", more=True)  # then nothing more
        started = asyncio.get_running_loop().time()
        with pytest.raises(RequestTimeoutError, match="1 of 60000 bytes"):
            await guarded(Route(), budget, 0.3)(client.scope, client.receive, _no_send)
        assert 0.25 <= asyncio.get_running_loop().time() - started < 2
        assert budget.in_use == 0

    asyncio.run(scenario())


def test_a_trickling_body_is_cut_as_soon_as_it_falls_behind_the_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(availability, "BODY_GRACE", 0.2)

    async def scenario() -> None:
        budget = BodyBudget(100_000)
        client = Client(length=60_000)

        async def trickle() -> None:
            while True:
                client.send_body(b" ", more=True)
                await asyncio.sleep(0.05)

        feeder = asyncio.create_task(trickle())
        started = asyncio.get_running_loop().time()
        with pytest.raises(RequestTimeoutError):
            await guarded(Route(), budget, 30.0)(client.scope, client.receive, _no_send)
        # Cut right after the grace, not at the 30 s deadline, although bytes kept coming.
        assert asyncio.get_running_loop().time() - started < 1.0
        assert budget.in_use == 0
        feeder.cancel()

    asyncio.run(scenario())


def test_a_steady_body_that_meets_the_deadline_is_never_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(availability, "BODY_GRACE", 0.1)

    async def scenario() -> None:
        client = Client(length=10_000)

        async def steady() -> None:
            for _ in range(9):  # 1,000 bytes every 0.05 s: all of it within 0.5 s of a 0.6 s deadline
                client.send_body(b"s" * 1000, more=True)
                await asyncio.sleep(0.05)
            client.send_body(b"s" * 1000, more=False)

        feeder = asyncio.create_task(steady())
        route = Route()
        await guarded(route, BodyBudget(100_000), 0.6)(client.scope, client.receive, _no_send)
        await feeder
        assert route.bodies == [b"s" * 10_000]

    asyncio.run(scenario())


def test_requests_without_a_body_pass_untouched() -> None:
    async def scenario() -> None:
        budget = BodyBudget(10)
        calls: list[object] = []

        async def route(scope: Any, receive: Any, send: Any) -> None:
            del scope, send
            calls.append(receive)

        client = Client(method="GET", length=100)
        await BodyGuard(route, budget=budget, watch=BodyWatch(0.01))(client.scope, client.receive, _no_send)
        assert calls == [client.receive]  # the server's own receive, no budget, no deadline
        assert budget.in_use == 0

    asyncio.run(scenario())


# --- a streamed body (STREAMED_BODY: a blob upload), consumed as it arrives --------------------------


class StreamedRoute:
    """A stand-in upload route: reads message by message, recording what the budget holds meanwhile,
    and takes `work` seconds to write each message on (a database insert)."""

    opt: ClassVar[dict[str, bool]] = {availability.STREAMED_BODY: True}

    def __init__(self, budget: BodyBudget, work: float = 0.0) -> None:
        self.budget, self.work = budget, work
        self.held: list[int] = []
        self.body = b""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        del scope, send
        while True:
            message = await receive()
            self.body += message.get("body", b"")
            self.held.append(self.budget.in_use)
            await asyncio.sleep(self.work)
            if not message.get("more_body", False):
                return


def streamed(client: Client, route: StreamedRoute) -> Client:
    client.scope["route_handler"] = route  # what Litestar's router sets before the route runs
    return client


def test_a_streamed_body_is_charged_only_for_the_message_in_flight() -> None:
    async def scenario() -> None:
        budget = BodyBudget(1000)
        route = StreamedRoute(budget)
        client = streamed(Client(length=2400), route)  # larger than the whole budget
        for _ in range(3):
            client.send_body(b"s" * 800, more=True)
        client.send_body(b"", more=False)
        await guarded(route, budget, 5.0)(client.scope, client.receive, _no_send)  # type: ignore[arg-type]
        assert route.body == b"s" * 2400
        assert route.held == [800, 800, 800, 0]
        assert budget.in_use == 0

    asyncio.run(scenario())


def test_a_streamed_body_that_pauses_past_the_timeout_is_cut() -> None:
    async def scenario() -> None:
        budget = BodyBudget(100_000)
        route = StreamedRoute(budget)
        client = streamed(Client(length=None), route)
        client.send_body(b"x" * 100, more=True)  # then nothing more
        with pytest.raises(RequestTimeoutError, match=r"may pause at most 0\.3 s"):
            await guarded(route, budget, 0.3)(client.scope, client.receive, _no_send)  # type: ignore[arg-type]
        assert budget.in_use == 0

    asyncio.run(scenario())


def test_a_route_slow_to_write_its_streamed_body_is_not_cut() -> None:
    # Time spent writing what was read is the server's, not the client's: only waits are watched.
    async def scenario() -> None:
        budget = BodyBudget(100_000)
        route = StreamedRoute(budget, work=0.5)
        client = streamed(Client(length=None), route)
        client.send_body(b"y" * 100, more=True)
        client.send_body(b"y" * 100, more=False)
        await guarded(route, budget, 0.3)(client.scope, client.receive, _no_send)  # type: ignore[arg-type]
        assert route.body == b"y" * 200

    asyncio.run(scenario())
