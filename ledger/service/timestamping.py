"""Ask an RFC 3161 time-stamping authority for a token on a checkpoint, over HTTP (RFC 3161 section 3.4).

The request, the reply checks and the offline verification are `ledger.verify.trusted_time`'s;
this module only carries the bytes. A token is returned only once it verifies against the
configured TSA certificates, so a token that does not verify is never stored.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from ledger.errors import UnavailableError, VerificationError
from ledger.verify.trusted_time import TsaCertificate, check_response, timestamp_request, verify_timestamp

QUERY_CONTENT_TYPE = "application/timestamp-query"  # RFC 3161 section 3.4
REPLY_CONTENT_TYPE = "application/timestamp-reply"  # RFC 3161 section 3.4
MAX_REPLY_BYTES = 64 * 1024  # a token with a certificate chain is a few KiB


async def request_timestamp(
    http: httpx.AsyncClient, url: str, note_text: str, trusted: Sequence[TsaCertificate]
) -> bytes:
    """A verified token (DER TimeStampResp) from the TSA at `url` for a checkpoint (RFC 3161 section 3.4).

    POSTs a TimeStampReq (SHA-256 of `note_text`, a nonce, certReq) as
    `application/timestamp-query`, and requires status 200, an `application/timestamp-reply`
    body of at most 64 KiB that answers this request (`check_response`: granted, same imprint,
    same nonce) and that verifies against `trusted` (`verify_timestamp`). Preconditions:
    `note_text` is the checkpoint's note text; `http` is open, its timeout set by the caller.

    Raises UnavailableError when the TSA cannot be reached or answers another status than 200,
    and VerificationError (or SignatureError) when its reply is not a good token for this
    checkpoint, signed by a trusted TSA.
    """
    request = timestamp_request(note_text)
    try:
        async with http.stream(
            "POST", url, content=request, headers={"Content-Type": QUERY_CONTENT_TYPE}
        ) as response:
            if response.status_code != httpx.codes.OK:
                raise UnavailableError(
                    f"TSA {url} answered HTTP {response.status_code}", retry_after=_retry_after(response)
                )
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if content_type != REPLY_CONTENT_TYPE:
                raise VerificationError(
                    f"TSA {url} did not answer a timestamp reply",
                    expected=REPLY_CONTENT_TYPE,
                    calculated=content_type or "no Content-Type",
                    labels=("RFC 3161 type", "answered"),
                )
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_REPLY_BYTES:
                    raise VerificationError(f"TSA {url} answered more than {MAX_REPLY_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise UnavailableError(f"TSA {url} unreachable: {type(exc).__name__}: {exc}") from exc
    token = check_response(bytes(body), request)
    verify_timestamp(token, note_text, trusted)
    return token


def _retry_after(response: httpx.Response) -> int:
    """The TSA's Retry-After in seconds when it gives a number (RFC 9110 section 10.2.3), else 1."""
    value = response.headers.get("Retry-After", "")
    return max(1, int(value)) if value.isdecimal() else 1
