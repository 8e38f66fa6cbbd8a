"""Compliance, gates and dossiers (docs/http-api.md, issue #4): the release as the policy sees it.

The handlers parse the request, authorize it and map the answer to HTTP; reading,
evaluating and appending a gate decision is `ledger.append.decisions.decide_gate`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import msgspec
from litestar import Request, Response, get, post

from ledger.append.decisions import decide_gate
from ledger.compliance.evaluate import result_data
from ledger.core.encoding import format_time
from ledger.core.sparse_merkle import encode_proof, release_key
from ledger.query.index_follow import committed_index
from ledger.query.release_record import build_dossier, evaluate_release
from ledger.records import predicates as p
from ledger.service.auth import APPEND, READ, Token
from ledger.service.openapi import request_body
from ledger.service.params import RELEASE, Environment, Product, Version
from ledger.service.state import Svc
from ledger.service.wire import GateRequest, GateResponse, decode_body, errors, gate_decoder, refuse_nul
from ledger.verify.dossier import Dossier

GATE_BODY_LIMIT = 16 * 1024  # three short names; anything larger is not a gate request


def _now() -> str:
    return format_time(datetime.now(UTC))


async def _latest_size(svc: Svc) -> int:
    """The newest tree size, read afresh: everything acknowledged before the request, on any worker."""
    return (await svc.latest_checkpoint(fresh=True)).tree_size


@get(
    f"{RELEASE}/compliance",
    summary="Compliance of a release",
    responses=errors(400, 401, 404),
    dependencies=READ,
)
async def compliance(
    svc: Svc, product: Product, version: Version, environment: Environment = None
) -> dict[str, Any]:
    """Compliant / non-compliant / incomplete, with findings naming their rule and entries."""
    result, _ = await evaluate_release(
        svc.store, svc.index, svc.sequencer, product, version,
        environment=environment, now=_now(), before=await _latest_size(svc),
    )  # fmt: skip
    return result_data(result)


@get(
    f"{RELEASE}/dossier",
    summary="Offline-verifiable dossier of a release",
    responses=errors(400, 401, 404, 503),
    dependencies=READ,
)
async def dossier(svc: Svc, product: Product, version: Version, environment: Environment = None) -> Dossier:
    """The checkpoint, every release entry with its proof, the key chain, the policy and compliance.

    Under the checkpoint `GET /checkpoint` serves: with witnesses and authorities, the newest
    one anchored by them, carried with its cosignatures and tokens.
    """
    return await release_dossier(svc, product, version, environment)


async def release_dossier(svc: Svc, product: str, version: str, environment: str | None) -> Dossier:
    """The release's dossier as `GET /v1/releases/{product}/{version}/dossier` answers it (the console's too).

    Under the served checkpoint, with its anchors, and the completeness index proof when the
    checkpoint commits to an index (docs/completeness-index.md).
    """
    checkpoint = await svc.served_checkpoint()
    anchors = await svc.anchors.anchors(checkpoint.tree_size)
    key = release_key(product, version)
    proof = None
    if committed_index(checkpoint) is not None:  # checkpoints signed before the index have none
        proof = encode_proof((await svc.completeness.prove(svc.store, key, checkpoint.tree_size)).proof)
    return await build_dossier(
        svc.store,
        svc.index,
        svc.proofs,
        svc.sequencer,
        product,
        version,
        environment=environment,
        now=_now(),
        checkpoint=checkpoint,
        timestamps=[token for _, token in anchors.timestamps],
        index_proof=proof,
    )


@post(
    "/v1/gates/evaluate",
    status_code=201,
    summary="Gate decision, appended as a signed VSA",
    request_max_body_size=GATE_BODY_LIMIT,
    responses=errors(400, 401, 403, 404, 409, 413, 422, 503),
    opt=request_body(GateRequest),
    dependencies=APPEND,
)
async def evaluate_gate(request: Request[Any, Token, Any], svc: Svc) -> Response[GateResponse]:
    """Evaluate the release for `environment`; append the decision (signed by the ledger) and return it.

    The decision covers everything acknowledged before the request (the newest checkpoint,
    read afresh) and is appended only if the release's chain is still what it evaluated
    (`decide_gate`). The body is decoded by hand, as on the append routes: a typed decoder
    refuses deep nesting at once, where Litestar's untyped first pass would exhaust the
    interpreter's recursion limit.
    """
    token = request.auth
    data = decode_body(gate_decoder, await request.body(), "the body")
    assert isinstance(data, GateRequest)  # noqa: S101 - the decoder's type
    for name in ("product", "version", "environment"):
        refuse_nul(getattr(data, name), name)
    token.require_product(data.product)
    decided = await decide_gate(
        svc.appender,
        svc.index,
        svc.signer,
        p.Release(data.product, data.version),
        data.environment,
        tree_size=partial(_latest_size, svc),
        client=token,
    )
    receipt = msgspec.structs.asdict(decided.receipt)
    return Response(GateResponse(decided.decision, result_data(decided.result), receipt), status_code=201)
