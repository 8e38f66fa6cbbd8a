"""A small HTTP client for the ledger's API (docs/http-api.md), mapping error bodies back to LedgerErrors."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, Self

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
    VerificationError,
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
ENV_RETRIES = "EVLEDGER_RETRIES"
RETRIES = 3  # tries after the first, while the service answers 503 or cannot be reached
BACKOFF_SECONDS = 0.5  # the first wait; doubled each time
MAX_WAIT_SECONDS = 30.0  # the longest single wait, whatever Retry-After asks
INVALID_CONTENT = (
    "invalid content"  # the `error` of a 422 for content that fails its schema (service/errors.py)
)

if TYPE_CHECKING:
    import httpx


def _httpx() -> ModuleType:
    """httpx, imported on first use: offline commands (verify, verify-proof) start 0.1 s faster."""
    import httpx  # noqa: PLC0415 - deferred on purpose, see the docstring

    return httpx


@dataclass(frozen=True, slots=True)
class Appended:
    """An append's receipts, and whether the ledger already held every entry (it answered 200, not 201)."""

    receipts: list[dict[str, Any]]
    already_recorded: bool


class LedgerClient:
    """Talks to one ledger service with one token. Use as a context manager.

    A request the service could not take (503, or no connection) is tried again up to
    `retries` times (EVLEDGER_RETRIES, default RETRIES), waiting what its `Retry-After` asks
    or an exponential back-off, at most MAX_WAIT_SECONDS a time; then UnavailableError
    (exit 3). Appends are safe to repeat: the ledger records a signed statement once and
    answers a repeat with the original receipt.
    """

    def __init__(
        self, server: str, token: str | None, *, timeout: float = 30.0, retries: int | None = None
    ) -> None:
        """Prepare a client for `server` (a base URL); requests carry `token` as a Bearer token."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        http = _httpx()
        self._transport_error: type[Exception] = http.TransportError
        self._connect_error: type[Exception] = http.ConnectError
        self._http: httpx.Client = http.Client(base_url=server.rstrip("/"), headers=headers, timeout=timeout)
        self.retries = retries if retries is not None else _retries_from_env()

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

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        repeatable: bool = True,
    ) -> httpx.Response:
        """One request, tried again while the service is unavailable; the checked response.

        Not `repeatable` (a gate decision): only a refused connection or a 503 is tried again,
        never a request that may have reached the service before its connection broke.
        """
        waited = 0.0
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, params=params, content=content, headers=headers)
            except self._transport_error as exc:
                if attempt == self.retries or not (repeatable or isinstance(exc, self._connect_error)):
                    raise UnavailableError(
                        f"cannot reach the ledger at {self._http.base_url}: {exc}"
                        + (f" (after {attempt + 1} attempts, {waited:.1f} s)" if attempt else "")
                    ) from exc
                waited += _pause(attempt, None)
                continue
            if response.status_code == 503 and attempt < self.retries:
                waited += _pause(attempt, response.headers.get("Retry-After"))
                continue
            return self._check(response)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def get(self, path: str, **params: str | int) -> httpx.Response:
        """GET a path; LedgerError for an error status, UnavailableError when it cannot be reached."""
        return self._send("GET", path, params=params or None)

    def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a JSON body that must not be sent twice; the JSON answer (LedgerError for an error status)."""
        response = self._send(
            "POST",
            path,
            repeatable=False,
            content=_encoder.encode(body),
            headers={"Content-Type": "application/json"},
        )
        answer: dict[str, Any] = response.json()
        return answer

    def put_blob(self, data: bytes, product: str) -> dict[str, Any]:
        """Store `data` as an evidence file for `product` (`PUT /v1/blobs/sha256:<hex>`); the server's answer.

        Safe to repeat: a file is named by its SHA-256, and storing it again stores nothing new.
        """
        name = f"sha256:{hashlib.sha256(data).hexdigest()}"
        response = self._send(
            "PUT",
            f"/v1/blobs/{name}",
            params={"product": product},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        answer: dict[str, Any] = response.json()
        return answer

    def download_blob(self, digest: str, sink: IO[bytes]) -> int:
        """Write the stored file `digest` (`sha256:<hex>`) into `sink` as it arrives; its size in bytes.

        The bytes are hashed as they are written: VerificationError (exit 1) when they hash to
        another digest, and whatever was written to `sink` must then be thrown away. NotFoundError
        for a file the ledger does not hold (or this token may not read), UnavailableError when the
        transfer breaks off (the service cuts a file it finds altered short of its length).
        """
        hasher, size = hashlib.sha256(), 0
        try:
            with self._http.stream("GET", f"/v1/blobs/{digest}") as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response)
                for block in response.iter_bytes(1 << 20):
                    hasher.update(block)
                    sink.write(block)
                    size += len(block)
        except self._transport_error as exc:
            raise UnavailableError(
                f"the transfer of {digest} from {self._http.base_url} broke off: {exc}"
            ) from exc
        got = f"sha256:{hasher.hexdigest()}"
        if got != digest:
            raise VerificationError(
                f"the server sent {size:,} bytes that hash to {got}, not to {digest}",
                expected=digest,
                calculated=got,
                labels=("asked for", "the bytes hash to"),
            )
        return size

    def append(self, envelopes: list[Envelope], idempotency_key: str | None = None) -> list[dict[str, Any]]:
        """Append one envelope (POST /v1/entries) or several (the batch route); return the receipts."""
        return self.append_envelopes(envelopes, idempotency_key).receipts

    def append_envelopes(self, envelopes: list[Envelope], idempotency_key: str | None = None) -> Appended:
        """Append one envelope or several, all or nothing; the receipts, and whether all were recorded before.

        A 409 for a reused Idempotency-Key says how to choose another (docs/cli.md).
        """
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        single = len(envelopes) == 1
        body = _encoder.encode(envelopes[0] if single else {"envelopes": envelopes})
        path = "/v1/entries" if single else "/v1/entries/batch"
        try:
            response = self._send(
                "POST", path, content=body, headers={"Content-Type": "application/json", **headers}
            )
        except ConflictError as exc:
            if idempotency_key and "Idempotency-Key" in str(exc):
                exc.add_note(
                    f"the key {idempotency_key!r} was first used for another request: give each distinct "
                    "request its own key with --idempotency-key (in CI, for example the run id, the job "
                    "name and the step; see docs/cli.md#idempotency-keys)"
                )
            raise
        data = response.json()
        receipts = [data] if single else list(data["receipts"])
        return Appended(receipts, already_recorded=response.status_code == 200)


def _retries_from_env() -> int:
    value = os.environ.get(ENV_RETRIES, str(RETRIES))
    if not value.isdigit():
        raise InputError(f"{ENV_RETRIES} must be a whole number of retries, not {value!r}")
    return int(value)


def _pause(attempt: int, retry_after: str | None) -> float:
    """Sleep before try `attempt + 2`: the server's Retry-After (seconds) if it gave one, else a back-off."""
    delay: float = BACKOFF_SECONDS * 2.0**attempt
    if retry_after is not None and retry_after.strip().isdigit():
        delay = float(retry_after.strip())
    delay = min(delay, MAX_WAIT_SECONDS)
    time.sleep(delay)
    return delay
