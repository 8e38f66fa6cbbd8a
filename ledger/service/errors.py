"""The one place where errors become HTTP responses (docs/http-api.md statuses).

Bad input is always a 4xx with `{"status", "error", "detail"}`; an unexpected
failure is a 500 whose body says nothing about the internals (the traceback
goes to the server log only). A full queue or body budget, and a database that
cannot be reached (ledger.storage.outage raises it as UnavailableError), are a
503 with Retry-After, never a 500; a body that arrives too slowly is a 408.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from ledger.errors import (
    ConflictError,
    EncodingError,
    InputError,
    LedgerError,
    MalformedRequestError,
    NotFoundError,
    PermissionDeniedError,
    RequestTimeoutError,
    TooLargeError,
    UnauthenticatedError,
    UnavailableError,
    VerificationError,
)
from ledger.service.wire import ErrorBody

log = logging.getLogger(__name__)

# Most specific first: the first class an error is an instance of decides.
_STATUSES: tuple[tuple[type[LedgerError], int, str], ...] = (
    (MalformedRequestError, 400, "malformed request"),
    (TooLargeError, 413, "too large"),
    (EncodingError, 422, "invalid content"),
    (InputError, 400, "bad request"),
    (VerificationError, 422, "signature or proof invalid"),
    (UnauthenticatedError, 401, "unauthenticated"),
    (PermissionDeniedError, 403, "forbidden"),
    (NotFoundError, 404, "not found"),
    (ConflictError, 409, "conflict"),
    (RequestTimeoutError, 408, "request timeout"),
    (UnavailableError, 503, "unavailable"),
)


def status_of(exc: LedgerError) -> tuple[int, str]:
    """The HTTP status and short error name for a ledger error."""
    for cls, status, name in _STATUSES:
        if isinstance(exc, cls):
            return status, name
    return 400, "bad request"


_CLOSING = frozenset({408, 413})
"""Refusals sent before the body was read to its end: the connection closes, and says so, so the
rest of the body is never read as the next request and a client does not reuse a connection the
server is about to drop."""


def _response(
    status: int, error: str, detail: str, headers: dict[str, str] | None = None
) -> Response[ErrorBody]:
    if status in _CLOSING:
        headers = {**(headers or {}), "Connection": "close"}
    return Response(ErrorBody(status, error, detail), status_code=status, headers=headers)


def ledger_error_handler(_: Request[Any, Any, Any], exc: LedgerError) -> Response[ErrorBody]:
    """Map a LedgerError to its status; 503s carry Retry-After, 408s and 413s close the connection."""
    status, error = status_of(exc)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, UnavailableError) else None
    return _response(status, error, str(exc), headers)


def http_error_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    """Litestar's own errors (404 route, 405, 413 body limit, validation) in our error shape."""
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    extra = getattr(exc, "extra", None)
    if exc.status_code == 400 and extra:
        detail = f"{detail}: {extra}"
    error = detail.lower() if exc.status_code != 400 else "bad request"
    return _response(exc.status_code, error, detail, exc.headers)  # a 405 keeps its Allow header


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """Anything unexpected: log it with its traceback, tell the client only that it happened."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _response(HTTP_500_INTERNAL_SERVER_ERROR, "internal error", "the server failed; see its log")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    LedgerError: ledger_error_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}
