"""What keeps one worker answering under slow clients and big bodies: a body budget and a body deadline.

`BodyGuard` is ASGI middleware around every route. A request body is charged to the
worker's `BodyBudget` from the route's first read until its response is sent: the whole
`Content-Length` at once, before any byte is read, or a chunked body's bytes as they
arrive. Past the budget the request is refused with 503 and Retry-After (nothing is
written); a body that could never fit gets 413. Only routes that read a body charge it,
and they read it after the token is checked, so an unauthenticated client reserves nothing.

A body must also arrive in time (the worker's `BodyWatch`): all of it within `timeout`
seconds of the route's first read, and, after a grace of BODY_GRACE seconds, at the pace
that would finish by then. A client sending at any steady rate that meets the deadline is
never cut; a client trickling bytes to keep a large reservation is cut (408) as soon as it
falls behind, and its budget freed.

A route that writes its body on as it reads it (a blob upload) says so in its `opt`
(STREAMED_BODY): only the bytes read and not yet consumed are charged, and the body is held
to a pace instead of a total time (`_StreamedBody`).

ledger.service.openapi lists these answers, and the outage 503, in the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterator
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from ledger.errors import RequestTimeoutError, TooLargeError, UnavailableError

BODY_GRACE = 5.0  # seconds a body may take to start flowing (TCP slow start, a proxy's first flush)
BUDGET_RETRY_AFTER = 1  # seconds: bodies in flight finish in about that time
SWEEP_INTERVAL = 0.25  # seconds between two checks of the bodies being read
_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})
# A route's `opt` key: it consumes its body as it arrives, so the guard charges only what is in
# flight and holds the body to a pace, not a total time (`_StreamedBody`).
STREAMED_BODY = "evledger_streamed_body"
STREAM_MIN_RATE = 64 * 1024  # bytes a second a streamed body must average after BODY_GRACE
UPLOAD_RETRY_AFTER = 2  # seconds a refused upload is asked to wait


class BodyBudget:
    """Bytes of request bodies one worker holds at once; one instance per worker process."""

    __slots__ = ("capacity", "in_use")

    def __init__(self, capacity: int) -> None:
        """A budget of `capacity` bytes (> 0), none in use."""
        self.capacity = capacity
        self.in_use = 0

    def take(self, nbytes: int) -> None:
        """Charge `nbytes`; TooLargeError when they exceed the whole budget, UnavailableError when busy."""
        if nbytes > self.capacity:
            raise TooLargeError(
                f"the body is {nbytes} bytes; this server takes at most {self.capacity} at once"
            )
        if self.in_use + nbytes > self.capacity:
            raise UnavailableError(
                "the server is receiving as many request bodies as it may hold; retry shortly",
                retry_after=BUDGET_RETRY_AFTER,
            )
        self.in_use += nbytes

    def give_back(self, nbytes: int) -> None:
        """Return bytes charged by `take`."""
        self.in_use -= nbytes


class UploadSlots:
    """At most `limit` evidence-file uploads at once in this worker; one more is refused at once (503).

    An upload to the PostgreSQL store holds a pool connection for as long as it streams, and
    one to S3 a part buffer (ledger/storage/s3_blobs.py): without a bound, a few slow uploads
    would take every connection from appends and reads. Refusing beats queueing: a waiting
    upload would hold its connection to the client, and its client retries after Retry-After.
    """

    def __init__(self, limit: int) -> None:
        """Allow `limit` (>= 1) uploads at once."""
        self.limit = limit
        self._free = limit

    @property
    def in_use(self) -> int:
        """Uploads running now."""
        return self.limit - self._free

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the block; UnavailableError (503, Retry-After) when every slot is taken."""
        if self._free <= 0:
            raise UnavailableError(
                f"{self.limit} evidence-file uploads are in progress on this worker (EVLEDGER_MAX_UPLOADS); "
                "retry shortly",
                retry_after=UPLOAD_RETRY_AFTER,
            )
        self._free -= 1  # no await between the check and this: the event loop cannot interleave
        try:
            yield
        finally:
            self._free += 1


class BodyWatch:
    """The bodies one worker is reading, checked against their deadlines SWEEP_INTERVAL apart.

    One timer for the worker, set only while some body is being read, instead of one per
    request: with uvloop, setting and cancelling a timer costs about 2.5 µs, a few percent
    of a small append. A body is cut at most SWEEP_INTERVAL after its deadline.
    """

    __slots__ = ("_armed_on", "_reading", "timeout")

    def __init__(self, timeout: float) -> None:
        """Watch bodies that must arrive within `timeout` seconds (> 0) of their first read."""
        self.timeout = timeout
        self._reading: set[_GuardedBody] = set()
        self._armed_on: asyncio.AbstractEventLoop | None = None

    def add(self, body: _GuardedBody) -> None:
        """Start watching `body` (its first read is under way)."""
        self._reading.add(body)
        loop = asyncio.get_running_loop()
        if self._armed_on is not loop:  # not yet, or on a loop that has since gone (tests)
            self._armed_on = loop
            loop.call_later(SWEEP_INTERVAL, self._sweep)

    def discard(self, body: _GuardedBody) -> None:
        """Stop watching `body` (complete, refused or answered)."""
        self._reading.discard(body)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for body in [b for b in self._reading if now >= b.overdue_at()]:
            self._reading.discard(body)
            body.cut()
        if self._reading:
            loop.call_later(SWEEP_INTERVAL, self._sweep)
        else:
            self._armed_on = None


def declared_length(scope: Scope) -> int | None:
    """The request's `Content-Length`, None when it sends none (a chunked body) or a malformed one."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class _GuardedBody:
    """The `receive` of one request: charges its body to the budget and enforces its deadline.

    When the worker's `BodyWatch` finds the body overdue it cancels the reading task, and
    the read raises RequestTimeoutError instead.
    """

    __slots__ = (
        "_budget",
        "_declared",
        "_done",
        "_overdue",
        "_pace",
        "_receive",
        "_start",
        "_task",
        "_watch",
        "held",
        "received",
    )

    def __init__(self, receive: Receive, budget: BodyBudget, watch: BodyWatch, declared: int | None) -> None:
        self._receive, self._budget, self._watch, self._declared = receive, budget, watch, declared
        self._start = 0.0  # set at the first read: time spent on the token before it is the server's
        timeout = watch.timeout
        self._pace = (timeout - BODY_GRACE) / declared if declared and timeout > BODY_GRACE else 0.0
        self._done = self._overdue = False
        self._task: asyncio.Task[Any] | None = None
        self.held = self.received = 0

    def overdue_at(self) -> float:
        """When the body is overdue: at its deadline, or once behind the pace that meets it."""
        deadline = self._start + self._watch.timeout
        if self._pace:
            deadline = min(deadline, self._start + BODY_GRACE + self.received * self._pace)
        return deadline

    def cut(self) -> None:
        """The body is overdue: stop the read under way (it raises RequestTimeoutError)."""
        if self._task is not None and not self._done:
            self._overdue = True
            self._task.cancel()

    def close(self) -> None:
        """Stop watching (the body is complete, or the request is over)."""
        if not self._done:
            self._done = True
            self._watch.discard(self)

    async def __call__(self) -> ReceiveMessage:
        if self._done:
            return await self._receive()
        if not self._start:
            self._start = asyncio.get_running_loop().time()
            self._task = asyncio.current_task()
            self._watch.add(self)
            if self._declared:
                await self._charge(self._declared)
        message = await self._next()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.close()
            if self.received > self.held:  # a chunked body, charged as it arrives
                await self._charge(self.received - self.held)
        return message

    async def _charge(self, nbytes: int) -> None:
        """Take `nbytes` from the budget; when it is full, drain the body first, then refuse (503)."""
        try:
            self._budget.take(nbytes)
        except UnavailableError:
            await self._discard()
            raise
        self.held += nbytes

    async def _discard(self) -> None:
        """Read the refused body to its end, keeping none of it, so that the client sees the answer.

        A client still sending when the connection closes gets a reset, not the 503 it should
        retry on. Draining costs the time of the upload (within the same deadline), no memory.
        """
        with contextlib.suppress(RequestTimeoutError):
            while not self._done:
                message = await self._next()
                if message["type"] != "http.request":
                    break
                self.received += len(message.get("body", b""))
                if not message.get("more_body", False):
                    self.close()

    async def _next(self) -> ReceiveMessage:
        """The next message, or RequestTimeoutError once the body is overdue."""
        try:
            return await self._receive()
        except asyncio.CancelledError:
            if not self._overdue or self._task is None:
                raise
            self._task.uncancel()  # the cancellation was the watch's, and it is handled here
            self.close()
            raise RequestTimeoutError(self._too_slow()) from None

    def _too_slow(self) -> str:
        elapsed = asyncio.get_running_loop().time() - self._start
        size = f"of {self._declared} bytes" if self._declared is not None else "bytes"
        return (
            f"the request body arrived too slowly ({self.received} {size} in {elapsed:.1f} s): "
            f"it must all arrive within {self._watch.timeout:g} s, at a steady pace after the "
            f"first {BODY_GRACE:g} s"
        )


class _StreamedBody(_GuardedBody):
    """The `receive` of a route that consumes its body as it arrives (`STREAMED_BODY`: a blob upload).

    Only the part read and not yet consumed is charged: each message when it arrives, given
    back at the next read, by which time the route has written it on. Such a body may be far
    larger than the budget and take long, so its deadline is one of pace, not of total time:
    no more than `timeout` seconds without a byte, and at least STREAM_MIN_RATE on average
    after the first BODY_GRACE seconds.
    """

    __slots__ = ("_unconsumed", "_waiting_since")

    def __init__(self, receive: Receive, budget: BodyBudget, watch: BodyWatch) -> None:
        super().__init__(receive, budget, watch, None)
        self._waiting_since: float | None = None  # when the route began to wait for the next bytes
        self._unconsumed = 0  # bytes of the last message, charged until the next read

    def overdue_at(self) -> float:
        """When the body is overdue: `timeout` seconds into a wait for bytes, or once behind the pace.

        Only while the route waits for the client: time the route spends writing what it read
        (a slow database) is never the client's fault, and the read under way is what is cut.
        """
        if self._waiting_since is None:
            return math.inf
        pace = self._start + BODY_GRACE + self.received / STREAM_MIN_RATE
        return min(self._waiting_since + self._watch.timeout, pace)

    async def __call__(self) -> ReceiveMessage:
        if self._done:
            return await self._receive()
        now = asyncio.get_running_loop().time()
        if not self._start:
            self._start = now
            self._task = asyncio.current_task()
            self._watch.add(self)
        if self._unconsumed:  # the route has written the previous message on
            self._budget.give_back(self._unconsumed)
            self.held -= self._unconsumed
            self._unconsumed = 0
        message = await self._next()
        if message["type"] == "http.request":
            size = len(message.get("body", b""))
            self.received += size
            if not message.get("more_body", False):
                self.close()
            if size:
                await self._charge(size)
                self._unconsumed = size
        return message

    async def _next(self) -> ReceiveMessage:
        """The next message, watched while it is awaited (also when a refused body is drained)."""
        self._waiting_since = asyncio.get_running_loop().time()
        try:
            return await super()._next()
        finally:
            self._waiting_since = None

    def _too_slow(self) -> str:
        elapsed = asyncio.get_running_loop().time() - self._start
        return (
            f"the request body arrived too slowly ({self.received:,} bytes in {elapsed:.1f} s): a streamed "
            f"body may pause at most {self._watch.timeout:g} s and must average at least "
            f"{STREAM_MIN_RATE // 1024} KiB/s after the first {BODY_GRACE:g} s"
        )


class BodyGuard:
    """ASGI middleware: every request body is charged to `budget` and watched by `watch`."""

    def __init__(self, app: ASGIApp, budget: BodyBudget, watch: BodyWatch) -> None:
        """Guard `app` (Litestar builds one per route; they share the worker's budget and watch)."""
        self._app, self._budget, self._watch = app, budget, watch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the route with the guarded `receive`; the body's bytes are freed once it has answered."""
        if scope["type"] != ScopeType.HTTP or scope["method"] in _NO_BODY:
            await self._app(scope, receive, send)
            return
        handler = scope.get("route_handler")
        if handler is not None and handler.opt.get(STREAMED_BODY):
            body: _GuardedBody = _StreamedBody(receive, self._budget, self._watch)
        else:
            body = _GuardedBody(receive, self._budget, self._watch, declared_length(scope))
        try:
            await self._app(scope, body, send)
        finally:
            body.close()
            self._budget.give_back(body.held)
