r"""The witness's HTTP edge: `POST /add-checkpoint` (c2sp.org/tlog-witness) and `GET /healthz`.

Statuses of `POST /add-checkpoint`, as tlog-witness §add-checkpoint prescribes them:

* 200: the body is the witness's cosignature line(s) `— <name> <base64>\n`, the new
  checkpoint already persisted;
* 400: a malformed body, or an old size above the checkpoint's size; 413: a body over
  `MAX_BODY_BYTES`;
* 403: no signature by a trusted key of the origin verifies; 404: unknown origin;
* 409: the old size is not the size the witness last cosigned, or the same size comes with
  another root: the body is that size, `<size>\n`, with Content-Type `text/x.tlog.size`;
* 422: the consistency proof (RFC 6962 §2.1.2) does not verify;
* 503 with Retry-After: the state cannot be read or written (nothing was cosigned).

Every error but the 409 has the ledger's body `{"status", "error", "detail"}`. Bad input is
never a 500. `app_from_env()` is the factory the server (granian) imports in its one worker.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware

from ledger.core.keys import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    SignerKey,
    VerifierKey,
    parse_signer_key,
    parse_verifier_key,
)
from ledger.core.witness_protocol import (
    MAX_BODY_BYTES,
    SIZE_CONTENT_TYPE,
    Refusal,
    format_size_body,
    parse_add_checkpoint,
)
from ledger.errors import InputError, KeyFormatError, TooLargeError, UnavailableError
from ledger.service.availability import BodyBudget, BodyGuard, BodyWatch
from ledger.service.errors import EXCEPTION_HANDLERS
from ledger.service.limits import Limits
from ledger.service.wire import ErrorBody, refuse_nul_in_target
from ledger.witness.state import Cosigned, WitnessState

ENV_WITNESS_KEY = "EVLEDGER_WITNESS_KEY"  # path of the witness's signer key file (type 0x04)
ENV_WITNESS_LOGS = "EVLEDGER_WITNESS_LOGS"  # the logs' verifier keys, one per line
ENV_WITNESS_DATA = "EVLEDGER_WITNESS_DATA"  # the data directory
COSIGNATURE_CONTENT_TYPE = "text/plain; charset=utf-8"
_REASONS = {
    400: "bad request",
    403: "forbidden",
    404: "not found",
    409: "conflict",
    413: "too large",
    422: "unprocessable",
    503: "unavailable",
}


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        ErrorBody(status, _REASONS.get(status, "error"), detail), status_code=status, headers=headers
    )


def _refusal_response(refusal: Refusal) -> Response[Any]:
    if refusal.status == 409 and refusal.latest_size is not None:
        # Set the header itself: Litestar would add "; charset=utf-8" to a text/* media type,
        # and clients compare the Content-Type with text/x.tlog.size exactly.
        return Response(
            format_size_body(refusal.latest_size),
            status_code=409,
            headers={"Content-Type": SIZE_CONTENT_TYPE},
        )
    return _error(refusal.status, refusal.reason)


@post("/add-checkpoint", request_max_body_size=MAX_BODY_BYTES, status_code=200)
async def add_checkpoint(request: Request[Any, Any, Any]) -> Response[Any]:
    """tlog-witness §add-checkpoint: verify, check against the stored state, persist, cosign.

    The body is read raw (no Content-Type needed), at most MAX_BODY_BYTES (else 413).
    """
    witness: WitnessState = request.app.state.witness
    try:
        parsed = parse_add_checkpoint(await request.body())
    except TooLargeError as exc:
        return _error(413, str(exc))
    except InputError as exc:
        return _error(400, str(exc))
    try:
        outcome = await witness.add_checkpoint(parsed)
    except UnavailableError as exc:
        return _error(503, str(exc), {"Retry-After": str(exc.retry_after)})
    if isinstance(outcome, Cosigned):
        return Response(
            "".join(outcome.lines).encode("utf-8"),
            status_code=200,
            headers={"Content-Type": COSIGNATURE_CONTENT_TYPE},
        )
    return _refusal_response(outcome)


@get("/healthz", status_code=200)
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


def check_witness_keys(key: SignerKey, logs: Sequence[VerifierKey]) -> dict[str, tuple[VerifierKey, ...]]:
    """The origins the witness accepts, each with its log keys (the origin is the key's name).

    Preconditions (KeyFormatError otherwise): `key` is a cosignature/v1 key (type 0x04,
    c2sp.org/tlog-cosignature), every log key an ordinary note key (type 0x01), at least one.
    """
    if key.key_type != ALG_COSIGNATURE_V1:
        raise KeyFormatError(
            f"witness key {key.keyid} is not a cosignature/v1 key (type 0x04); "
            "make one with `evledger keygen NAME --witness`"
        )
    if not logs:
        raise InputError("a witness needs at least one log key")
    origins: dict[str, tuple[VerifierKey, ...]] = {}
    for log in logs:
        if log.key_type != ALG_ED25519:
            raise KeyFormatError(f"log key {log.keyid} is not a note key (type 0x01)")
        origins[log.name] = (*origins.get(log.name, ()), log)
    return origins


def create_witness_app(
    key: SignerKey,
    logs: Sequence[VerifierKey],
    data_dir: Path,
    *,
    limits: Limits | None = None,
    clock: Callable[[], float] = time.time,
) -> Litestar:
    """A Litestar app witnessing `logs` with `key`, its state in `data_dir`.

    Preconditions: those of `check_witness_keys`; one process serves `data_dir` (the per-origin
    locks are in memory: run one worker). `limits` bounds request bodies (body timeout and
    budget, as the ledger service's), `clock` gives the cosignature timestamps (seconds).
    """
    origins = check_witness_keys(key, logs)
    limits = limits or Limits()
    witness = WitnessState(data_dir, key, origins, clock=clock)
    budget, watch = BodyBudget(limits.body_budget), BodyWatch(limits.body_timeout)
    return Litestar(
        route_handlers=[add_checkpoint, healthz],
        state=State({"witness": witness}),
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=refuse_nul_in_target,
        middleware=[DefineMiddleware(BodyGuard, budget=budget, watch=watch)],
        openapi_config=None,
        debug=False,
    )


def app_from_env() -> Litestar:
    """ASGI factory for the witness's worker: EVLEDGER_WITNESS_KEY, _LOGS and _DATA, set by the CLI."""
    key_path, log_text, data_dir = (
        os.environ.get(name) for name in (ENV_WITNESS_KEY, ENV_WITNESS_LOGS, ENV_WITNESS_DATA)
    )
    if not key_path or not log_text or not data_dir:
        msg = f"set {ENV_WITNESS_KEY}, {ENV_WITNESS_LOGS} and {ENV_WITNESS_DATA}"
        raise RuntimeError(msg)
    key = parse_signer_key(Path(key_path).read_text(encoding="utf-8"), ALG_COSIGNATURE_V1)
    logs = [parse_verifier_key(line) for line in log_text.split("\n") if line.strip()]
    return create_witness_app(key, logs, Path(data_dir), limits=Limits.from_env(os.environ))
