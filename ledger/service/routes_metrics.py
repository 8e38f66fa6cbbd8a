"""Delivery and audit-readiness measures as JSON, for dashboards (docs/http-api.md, "Metrics"; issue #15).

Each route takes a read token (`dependencies=READ`) and asks `ledger.query.metrics`, which reads
the events and has `ledger.compliance.delivery_metrics` compute the measures; the console's
dashboard (`ledger.service.console.dashboard`) shows the same answers. A token limited to
products reads only theirs: another product is a 403, and without `product` it reads its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, get
from litestar.params import QueryParameter

from ledger.compliance.metrics_answers import DeliveryMetrics, ReadinessMetrics
from ledger.query import metrics
from ledger.service.auth import READ, Token
from ledger.service.state import Svc
from ledger.service.wire import errors

MetricsProduct = Annotated[
    str | None,
    QueryParameter(
        description="Only this product (a token limited to products: one of them; without it, all of them)."
    ),
]
MetricsEnvironment = Annotated[
    str | None, QueryParameter(description="The deployment environment measured (default `production`).")
]
Since = Annotated[
    str | None,
    QueryParameter(
        description="RFC 3339 with a zone: the period's start, included (default: 90 days before until)."
    ),
]
Until = Annotated[
    str | None, QueryParameter(description="RFC 3339 with a zone: the period's end, excluded (default: now).")
]


def sources(svc: Svc) -> metrics.Sources:
    """Where the measures are read: the service's log, index and key registry."""
    return metrics.Sources(svc.store, svc.index, svc.sequencer)


@get(
    "/v1/metrics/delivery",
    summary="Delivery measures: deployments, lead time, change failure rate, time to restore",
    responses=errors(400, 401, 403, 404),
    dependencies=READ,
)
async def delivery(  # noqa: PLR0913, PLR0917 - each query parameter is one documented filter
    request: Request[Any, Token, Any],
    svc: Svc,
    product: MetricsProduct = None,
    environment: MetricsEnvironment = None,
    since: Since = None,
    until: Until = None,
) -> DeliveryMetrics:
    """How often and how well releases reached the environment in the period, with weekly points.

    400 for a time without a zone, `since` not before `until`, or a period over 366 days; 403
    for a product the token may not read; 404 for a product with no release.
    """
    query = metrics.MetricsQuery(product, environment, since, until)
    granted = request.auth.row.products
    return await metrics.delivery(sources(svc), query, granted, datetime.now(UTC))


@get(
    "/v1/metrics/readiness",
    summary="Audit-readiness measures: complete evidence, approval latency, exceptions and their reviews",
    responses=errors(400, 401, 403, 404),
    dependencies=READ,
)
async def readiness(  # noqa: PLR0913, PLR0917 - each query parameter is one documented filter
    request: Request[Any, Token, Any],
    svc: Svc,
    product: MetricsProduct = None,
    environment: MetricsEnvironment = None,
    since: Since = None,
    until: Until = None,
) -> ReadinessMetrics:
    """Whether what was deployed in the period could face an audit now, with weekly points.

    Each release deployed is judged under the policy in force as of the newest checkpoint (read
    afresh), as `GET /v1/releases/{product}/{version}/compliance` judges it. Errors as delivery's.
    """
    query = metrics.MetricsQuery(product, environment, since, until)
    granted = request.auth.row.products
    before = (await svc.latest_checkpoint(fresh=True)).tree_size
    return await metrics.readiness(sources(svc), query, granted, datetime.now(UTC), before)
