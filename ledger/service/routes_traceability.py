"""A release's traceability matrix and SOUP list over HTTP (docs/http-api.md, issue #14).

Thin edges over ledger.query.traceability: the matrix (requirement -> risk controls -> tests ->
results on the release candidate, with gaps) and the SOUP list of the release's SBOM, both as
of the newest checkpoint, evaluated on the candidates the policy in force picks.
"""

from __future__ import annotations

from litestar import get

from ledger.compliance.traceability import TraceabilityMatrix
from ledger.query.traceability import SoupView, Sources, release_soup, release_traceability
from ledger.service.auth import READ
from ledger.service.params import RELEASE, Environment, Product, Version
from ledger.service.state import Svc
from ledger.service.wire import errors


def _sources(svc: Svc) -> Sources:
    return Sources(svc.store, svc.index, svc.sequencer, svc.blobs)


@get(
    f"{RELEASE}/traceability",
    summary="Traceability matrix of a release (IEC 62304)",
    description=(
        "Each requirement of the baseline in force with the risk controls it implements, the test "
        "runs on the release candidate that verify it, their results, the residual anomalies that "
        "disposition its failures, and its status: verified, failed, incomplete or not-verified."
    ),
    responses=errors(400, 401, 404, 503),
    dependencies=READ,
)
async def traceability(
    svc: Svc, product: Product, version: Version, environment: Environment = None
) -> TraceabilityMatrix:
    """The matrix as of the newest checkpoint (with titles and links when the baseline file is stored)."""
    before = (await svc.latest_checkpoint(fresh=True)).tree_size
    return await release_traceability(_sources(svc), product, version, environment=environment, before=before)


@get(
    f"{RELEASE}/soup",
    summary="SOUP list of a release (IEC 62304 §8.1.2)",
    description=(
        "The components of the release's newest SBOM of its candidate: name, version, supplier, "
        "licence and purl of each, with the entry that recorded it."
    ),
    responses=errors(400, 401, 404, 503),
    dependencies=READ,
)
async def soup(svc: Svc, product: Product, version: Version, environment: Environment = None) -> SoupView:
    """The SOUP list as of the newest checkpoint (404 when the release has no SBOM)."""
    before = (await svc.latest_checkpoint(fresh=True)).tree_size
    return await release_soup(_sources(svc), product, version, environment=environment, before=before)
