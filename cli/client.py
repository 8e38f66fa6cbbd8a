"""A small HTTP client for the ledger's API (docs/http-api.md), mapping error bodies back to LedgerErrors."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Self

import msgspec

from ledger.core.dsse import Envelope
from ledger.errors import (
    ConflictError,
    EncodingError,
    InputError,
    LedgerError,
    NotFoundError,
    PermissionDeniedError,
    SignatureError,
    TooLargeError,
    UnauthenticatedError,
    UnavailableError,
)

_ERRORS: dict[int, type[LedgerError]] = {
    400: InputError,
    401: UnauthenticatedError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
    422: SignatureError,
    503: UnavailableError,
}
_encoder = msgspec.json.Encoder()
INVALID_CONTENT = (
    "invalid content"  # the `error` of a 422 for content that fails its schema (service/errors.py)
)

if TYPE_CHECKING:
    import httpx


def _httpx() -> ModuleType:
    """httpx, imported on first use: offline commands (verify, verify-proof) start 0.1 s faster."""
    import httpx  # noqa: PLC0415 - deferred on purpose, see the docstring

    return httpx


class LedgerClient:
    """Talks to one ledger service with one token. Use as a context manager."""

    def __init__(self, server: str, token: str | None, *, timeout: float = 30.0) -> None:
        """Prepare a client for `server` (a base URL); requests carry `token` as a Bearer token."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        http = _httpx()
        self._transport_error: type[Exception] = http.TransportError
        self._http: httpx.Client = http.Client(base_url=server.rstrip("/"), headers=headers, timeout=timeout)

    def __enter__(self) -> Self:
        """The client itself."""
        return self

    def __exit__(self, *_: object) -> None:
        """Close the connection pool."""
        self._http.close()

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code < 400:
            return response
        try:
            body = response.json()
            detail, kind = str(body.get("detail", response.text)), str(body.get("error", ""))
        except (ValueError, AttributeError):
            detail, kind = response.text[:300], ""
        error = _ERRORS.get(response.status_code, LedgerError)
        if response.status_code == 422 and kind == INVALID_CONTENT:
            error = EncodingError  # the statement or record is invalid: an input error, not a failed check
        raise error(f"the server refused it ({response.status_code}): {detail}")

    def get(self, path: str, **params: str | int) -> httpx.Response:
        """GET a path; LedgerError for an error status, OSError-like httpx errors for transport."""
        try:
            return self._check(self._http.get(path, params=params or None))
        except self._transport_error as exc:
            raise UnavailableError(f"cannot reach the ledger at {self._http.base_url}: {exc}") from exc

    def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a JSON body; return the JSON answer (LedgerError for an error status)."""
        try:
            response = self._check(
                self._http.post(
                    path, content=_encoder.encode(body), headers={"Content-Type": "application/json"}
                )
            )
        except self._transport_error as exc:
            raise UnavailableError(f"cannot reach the ledger at {self._http.base_url}: {exc}") from exc
        answer: dict[str, Any] = response.json()
        return answer

    def append(self, envelopes: list[Envelope], idempotency_key: str | None = None) -> list[dict[str, Any]]:
        """Append one envelope (POST /v1/entries) or several (the batch route); return the receipts."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        single = len(envelopes) == 1
        body = _encoder.encode(envelopes[0] if single else {"envelopes": envelopes})
        path = "/v1/entries" if single else "/v1/entries/batch"
        try:
            response = self._check(
                self._http.post(path, content=body, headers={"Content-Type": "application/json", **headers})
            )
        except self._transport_error as exc:
            raise UnavailableError(f"cannot reach the ledger at {self._http.base_url}: {exc}") from exc
        data = response.json()
        return [data] if single else list(data["receipts"])
