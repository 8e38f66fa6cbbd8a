"""Operations routes: liveness, readiness and Prometheus metrics.

The probes read no credential (load balancers and orchestrators send none, and they
reveal nothing); the metrics need a reader's token like the rest of the API.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec

from ledger.errors import UnavailableError
from ledger.service.auth import READ
from ledger.service.openapi import NO_AUTH
from ledger.service.state import Svc
from ledger.service.wire import errors
from ledger.service.witnessing import witness_keyids

# The Prometheus text format 0.0.4; Litestar appends `; charset=utf-8` to every text/* type itself,
# and a second charset parameter makes strict parsers (Go's mime, Prometheus 3) refuse the response.
PROMETHEUS_TEXT = "text/plain; version=0.0.4"
# Seconds /readyz waits for the database: a database that hangs reads as "not ready" (503) within
# a probe's usual timeout of a few seconds, instead of holding the probe until its connection times out.
READY_TIMEOUT = 2.0


@get("/healthz", summary="Liveness (no token needed)", responses=errors(400), opt=NO_AUTH)
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@get(
    "/readyz",
    summary="Readiness (no token needed)",
    opt=NO_AUTH,
    responses={
        **errors(400),
        503: ResponseSpec(
            data_container=dict[str, Any],
            description="Not ready: the database does not answer, the ledger is not initialised "
            "or the sequencer is not running",
        ),
    },
)
async def readyz(svc: Svc) -> Response[dict[str, object]]:
    """The database answers and the sequencer runs; 503 otherwise (with Retry-After while it is down)."""
    try:
        head = await asyncio.wait_for(svc.store.head(), READY_TIMEOUT)
    except (UnavailableError, TimeoutError) as exc:
        retry = str(exc.retry_after if isinstance(exc, UnavailableError) else 1)
        down: dict[str, object] = {"status": "not ready", "detail": "the database does not answer"}
        return Response(down, status_code=503, headers={"Retry-After": retry})
    ready = head is not None and svc.sequencer.running
    body: dict[str, object] = {
        "status": "ready" if ready else "not ready",
        "tree_size": head.tree_size if head else 0,
    }
    return Response(body, status_code=200 if ready else 503)


@get(
    "/metrics",
    media_type=PROMETHEUS_TEXT,
    summary="Prometheus metrics",
    responses=errors(400, 401),
    dependencies=READ,
)
async def metrics(svc: Svc) -> str:
    """Counters and gauges in the Prometheus text format, the same from any worker (see metrics.py)."""
    head = await svc.store.head()
    facts: dict[str, float] = {"evledger_tree_size": head.tree_size if head else 0}
    policy = svc.witnessing.policy
    if policy is not None:
        cosigned = await svc.anchors.latest_cosigned(witness_keyids(policy), policy.quorum)
        facts["evledger_cosigned_tree_size"] = cosigned or 0
        facts["evledger_witness_lag_seconds"] = await svc.anchors.witnessing_lag(cosigned)
    svc.publish_metrics()  # this worker's counts up to now; the others' are at most PUBLISH_SECONDS old
    return svc.metrics.render(facts, witnessing=policy is not None)
