"""The completeness index over HTTP: a chain's head with its proof (docs/completeness-index.md, issue #13).

A thin edge over `ledger.query.index_follow`: the route names the chain, the follower
proves it at the newest checkpoint, and the answer carries that checkpoint so a client
verifies the proof against the ledger key without trusting this server.
"""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.params import QueryParameter

from ledger.core.encoding import b64encode
from ledger.core.sparse_merkle import encode_proof
from ledger.query.index_follow import chain_named
from ledger.service.auth import READ
from ledger.service.state import Svc
from ledger.service.wire import IndexHeadView, IndexProofView, errors


@get(
    "/v1/index/proof",
    summary="A release's or an artifact's chain head, proven in the completeness index",
    responses=errors(400, 401, 503),
    dependencies=READ,
)
async def index_proof(
    svc: Svc,
    release: Annotated[
        str | None, QueryParameter(description="`<product>/<version>`: the release's chain.")
    ] = None,
    artifact: Annotated[
        str | None, QueryParameter(description="`sha256:<hex>`: the artifact's chain.")
    ] = None,
    product: Annotated[
        str | None, QueryParameter(description="With `version`: a release whose product name holds a `/`.")
    ] = None,
    version: Annotated[str | None, QueryParameter(description="With `product`.")] = None,
) -> IndexProofView:
    """The chain's head (count, newest entry) or its absence, with a proof against the newest checkpoint.

    Give exactly one of `release`, `product` with `version`, and `artifact`. `head` is null
    when no entry of that chain exists at the checkpoint; the proof then shows the absence.
    """
    named = chain_named(release, artifact, product, version)
    proven = await svc.completeness.prove(svc.store, named.key)  # its root checked against the line
    head = proven.proof.head  # set exactly when the proof shows the key present
    return IndexProofView(
        chain=named.chain,
        name=named.name,
        key=named.key.hex(),
        tree_size=proven.checkpoint.tree_size,
        checkpoint=proven.checkpoint.note,
        proof=b64encode(encode_proof(proven.proof)),
        head=None if head is None else IndexHeadView(head.count, head.last_index, head.last_leaf.hex()),
    )
