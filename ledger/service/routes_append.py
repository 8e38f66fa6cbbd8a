"""`POST /v1/entries` and `POST /v1/entries/batch` (docs/http-api.md): HTTP around the `Appender`.

The routes decode and shape-check the body, then hand the envelopes, the token (the
Appender's `Client`: its scope limits what it may append) and the idempotency key to
`ledger.append.appender.Appender.append`; the answer is 201 with the receipts, or 200
when the request replays entries already appended.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.response.base import ASGIResponse

from ledger.core.dsse import Envelope
from ledger.core.encoding import b64decode_lenient
from ledger.core.tiles import MAX_ENTRY_SIZE
from ledger.errors import EncodingError, MalformedRequestError, TooLargeError
from ledger.service.auth import APPEND, APPEND_ROLES, Token
from ledger.service.openapi import request_body
from ledger.service.params import IdempotencyKey
from ledger.service.state import ServiceState, Svc
from ledger.service.wire import (
    BatchReceipts,
    BatchRequest,
    Receipt,
    batch_decoder,
    decode_body,
    documented,
    envelope_decoder,
    errors,
    json_response,
)

MAX_BATCH = 1000
# An envelope must fit in a 65,535-byte entry; the batch body may hold 1,000 of them.
SINGLE_BODY_LIMIT = MAX_ENTRY_SIZE
BATCH_BODY_LIMIT = MAX_BATCH * MAX_ENTRY_SIZE + 64 * 1024

# Malformed, unauthenticated, forbidden, idempotency conflict, too large, invalid, queue full.
APPEND_ERRORS = errors(400, 401, 403, 409, 413, 422, 503)


def _check_shape(envelope: Envelope, where: str) -> None:
    """Refuse an envelope whose signatures' base64 does not decode: a malformed envelope (400).

    The payload's base64 is checked once, where admission decodes it (also a 400).
    """
    try:
        for signature in envelope.signatures:
            by = f"by {signature.keyid}" if signature.keyid else "without keyid"
            b64decode_lenient(signature.sig, f"{where}signature {by}")
    except EncodingError as exc:
        raise MalformedRequestError(str(exc)) from exc
    if not envelope.signatures:
        raise MalformedRequestError(f"{where}envelope has no signatures")


def _status(replayed: bool) -> int:
    return 200 if replayed else 201


def _headers(request: Request[Any, Any, Any], *names: bytes) -> list[str | None]:
    """The first value of each named header (lower-case names), straight from the ASGI scope."""
    found: dict[bytes, str] = {}
    for name, value in request.scope["headers"]:
        if name in names and name not in found:
            found[name] = value.decode("latin-1")
    return [found.get(name) for name in names]


@post(
    "/v1/entries",
    request_max_body_size=SINGLE_BODY_LIMIT,
    status_code=201,
    summary="Append one envelope",
    responses={**documented(Receipt, 201), **documented(Receipt, 200), **APPEND_ERRORS},
    opt=request_body(Envelope),
)
async def append_entry(request: Request[Any, Any, Any]) -> ASGIResponse:
    """Append one DSSE envelope; 201 with its receipt, 200 when an idempotent retry replays it.

    Headers: `Authorization: Bearer <token>` (appender or admin), optional `Idempotency-Key`.
    The hot path of the service: it reads its two headers and the state straight from the
    request and answers with a ready ASGI response, skipping dependency injection, the
    header map and response rendering, which together cost more than the rest of the handler.
    For the same reason it checks its token itself, with the roles the other append routes
    declare (`APPEND_ROLES`, see ledger.service.auth).
    """
    svc: ServiceState = request.app.state.svc
    authorization, idempotency_key = _headers(request, b"authorization", b"idempotency-key")
    token = await svc.tokens.authenticate(authorization, APPEND_ROLES)
    request.scope["auth"] = token  # who appended, for the access log (ledger.service.access_log)
    envelope = decode_body(envelope_decoder, await request.body(), "the body")
    assert isinstance(envelope, Envelope)  # noqa: S101 - the decoder's type
    _check_shape(envelope, "")
    receipts, replayed = await svc.appender.append([envelope], token, idempotency_key)
    return json_response(receipts[0], _status(replayed))


@post(
    "/v1/entries/batch",
    request_max_body_size=BATCH_BODY_LIMIT,
    status_code=201,
    summary="Append up to 1,000 envelopes, all or nothing",
    responses={**documented(BatchReceipts, 201), **documented(BatchReceipts, 200), **APPEND_ERRORS},
    opt=request_body(BatchRequest),
    dependencies=APPEND,
)
async def append_batch(
    request: Request[Any, Token, Any], svc: Svc, idempotency_key: IdempotencyKey
) -> ASGIResponse:
    """Append envelopes all or nothing; 201 with one receipt each, in order."""
    body = await request.body()
    batch = decode_body(batch_decoder, body, "the body")
    envelopes: list[Envelope] = getattr(batch, "envelopes", [])
    if not 1 <= len(envelopes) <= MAX_BATCH:
        if len(envelopes) > MAX_BATCH:
            raise TooLargeError(f"a batch holds at most {MAX_BATCH} envelopes, got {len(envelopes)}")
        raise MalformedRequestError("a batch needs at least one envelope")
    for position, envelope in enumerate(envelopes):
        _check_shape(envelope, f"envelopes[{position}]: ")
    receipts, replayed = await svc.appender.append(envelopes, request.auth, idempotency_key)
    return json_response(BatchReceipts(receipts), _status(replayed))
