"""Baseline routes for benchmarks only (EVLEDGER_BENCH_ROUTES=1): the same server's trivial rates.

docs/architecture.md#performance-targets compares appends and proofs with "the same server's trivial
POST/GET rate"; these routes are that baseline. They touch no database and
are not mounted unless asked for.
"""

from __future__ import annotations

from typing import Annotated

from litestar import get, post
from litestar.params import Body

from ledger.core.dsse import Envelope


@post("/_bench/echo", status_code=200, include_in_schema=False)
async def bench_echo(data: Annotated[Envelope, Body()]) -> dict[str, int]:
    """Decode a typed envelope body and answer with a tiny JSON object."""
    return {"signatures": len(data.signatures)}


@get("/_bench/ping", include_in_schema=False)
async def bench_ping() -> dict[str, str]:
    """Answer at once."""
    return {"status": "ok"}
