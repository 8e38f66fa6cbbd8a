"""The route parameters several routes share, each defined once: paths, headers, pagination.

Bounds given as `schema_extra` are documented only: the handlers check them with their
own messages (a 400 in the API's error shape). docs/http-api.md lists them for clients.
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import FromPath, FromQuery, HeaderParameter, QueryParameter

from ledger.query import timeline

RELEASE = "/v1/releases/{product:str}/{version:str}"
"""The path of a release; its routes take `Product` and `Version`."""
Product = FromPath[str]
Version = FromPath[str]
Environment = FromQuery[str | None]
"""The environment a release is evaluated for (compliance, dossier); None: the policy's default rules."""

IdempotencyKey = Annotated[str | None, HeaderParameter(name="Idempotency-Key", required=False)]

MAX_ENTRY_PAGE = 1000
EntryStart = Annotated[int, QueryParameter(ge=0)]
EntryLimit = Annotated[int, QueryParameter(ge=1, le=MAX_ENTRY_PAGE)]
Index = Annotated[int | None, QueryParameter(schema_extra={"minimum": 0})]
TreeSize = Annotated[int | None, QueryParameter(schema_extra={"minimum": 1})]

Limit = Annotated[
    int, QueryParameter(ge=1, le=timeline.MAX_PAGE, description="Events per page (default 100, max 1000).")
]
Cursor = Annotated[
    str | None, QueryParameter(description="The `next_cursor` of the previous page (omit for the first).")
]
