"""Compliance, gates and dossiers (DESIGN.md §4, issue #4): the release as the policy sees it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery

from ledger.compliance.evaluate import result_data
from ledger.compliance.gate import decision_of, gate_statement
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.encoding import format_time
from ledger.errors import PermissionDeniedError, StaleEvaluationError, UnavailableError
from ledger.query.release_record import build_dossier, evaluate_release
from ledger.records import predicates as p
from ledger.service.openapi import request_body
from ledger.service.routes_append import Authorization
from ledger.service.state import APPEND_ROLES, READ_ROLES, Svc
from ledger.service.wire import GateRequest, GateResponse, decode_body, errors, gate_decoder, refuse_nul
from ledger.storage.protocol import EntryRow
from ledger.verify.dossier import Dossier

GATE_BODY_LIMIT = 16 * 1024  # three short names; anything larger is not a gate request
GATE_ATTEMPTS = 5  # evaluations of a release that keeps gaining entries, before asking for a retry


def _now() -> str:
    return format_time(datetime.now(UTC))


async def _latest_size(svc: Svc) -> int:
    """The newest tree size, read afresh: everything acknowledged before the request, on any worker."""
    return (await svc.latest_checkpoint(fresh=True)).tree_size


def _chain_state(rows: list[EntryRow]) -> tuple[int, str]:
    """(count, head leaf hash) of the release chain among `rows`: what a decision on them saw."""
    head = max((r for r in rows if r.release_seq is not None), key=lambda r: r.release_seq or 0)
    return (head.release_seq or 0) + 1, head.leaf_hash.hex()


@get(
    "/v1/releases/{product:str}/{version:str}/compliance",
    summary="Compliance of a release",
    responses=errors(400, 401, 404),
)
async def compliance(
    svc: Svc,
    authorization: Authorization,
    product: FromPath[str],
    version: FromPath[str],
    environment: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """Compliant / non-compliant / incomplete, with findings naming their rule and entries."""
    await svc.authenticate(authorization, READ_ROLES)
    result, _ = await evaluate_release(
        svc.store, svc.sequencer, product, version,
        environment=environment, now=_now(), before=await _latest_size(svc),
    )  # fmt: skip
    return result_data(result)


@get(
    "/v1/releases/{product:str}/{version:str}/dossier",
    summary="Offline-verifiable dossier of a release",
    responses=errors(400, 401, 404),
)
async def dossier(
    svc: Svc,
    authorization: Authorization,
    product: FromPath[str],
    version: FromPath[str],
    environment: FromQuery[str | None] = None,
) -> Dossier:
    """The checkpoint, every release entry with its proof, the key chain, the policy and compliance."""
    await svc.authenticate(authorization, READ_ROLES)
    return await build_dossier(
        svc.store, svc.proofs, svc.sequencer, product, version, environment=environment, now=_now()
    )


@post(
    "/v1/gates/evaluate",
    status_code=201,
    summary="Gate decision, appended as a signed VSA",
    request_max_body_size=GATE_BODY_LIMIT,
    responses=errors(400, 401, 403, 404, 409, 413, 503),
    opt=request_body(GateRequest),
)
async def evaluate_gate(
    request: Request[Any, Any, Any], svc: Svc, authorization: Authorization
) -> Response[GateResponse]:
    """Evaluate the release for `environment`; append the decision (signed by the ledger) and return it.

    The decision covers everything acknowledged before the request (the newest checkpoint,
    read afresh) and is appended only if the release's chain is still what it evaluated: an
    entry that joined meanwhile (a rejection, say) makes it evaluate again, so a decision
    never lands after evidence it did not see. The body is decoded by hand, as on the
    append routes: a typed decoder refuses deep nesting at once, where Litestar's untyped
    first pass would exhaust the interpreter's recursion limit.
    """
    token = await svc.authenticate(authorization, APPEND_ROLES)
    data = decode_body(gate_decoder, await request.body(), "the body")
    assert isinstance(data, GateRequest)  # noqa: S101 - the decoder's type
    for name in ("product", "version", "environment"):
        refuse_nul(getattr(data, name), name)
    if token.products and data.product not in token.products:
        raise PermissionDeniedError(f"this token may not act for product {data.product!r}")
    for _ in range(GATE_ATTEMPTS):
        now = _now()
        result, rows = await evaluate_release(
            svc.store, svc.sequencer, data.product, data.version,
            environment=data.environment, now=now, before=await _latest_size(svc),
        )  # fmt: skip
        leaves = {r.index: r.leaf_hash.hex() for r in rows}
        statement = gate_statement(
            result,
            p.Release(data.product, data.version),
            environment=data.environment,
            policy_ref=(result.policy.entry, result.policy.digest),
            input_entries=[(i, leaves[i]) for i in result.entries if i in leaves],
            verifier_id=svc.signer.name,
            time=now,
        )
        envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, statement, [svc.signer])
        try:
            receipts, _ = await svc.append([envelope], token, None, expected_chain=_chain_state(rows))
        except StaleEvaluationError:
            continue  # the release gained an entry since the evaluation read it: evaluate again
        body = GateResponse(decision_of(result), result_data(result), msgspec.structs.asdict(receipts[0]))
        return Response(body, status_code=201)
    raise UnavailableError(f"release {data.product} {data.version} kept changing while it was evaluated")
