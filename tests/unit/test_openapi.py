"""The OpenAPI additions of `ledger.service.openapi`: msgspec's JSON Schema, carried over exactly."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest

from ledger.core.dsse import Envelope
from ledger.service import openapi
from ledger.service.wire import BatchRequest

REF = "#/components/schemas/{name}"


class Sample(msgspec.Struct, forbid_unknown_fields=True):
    """Every keyword the converter maps."""

    count: Annotated[int, msgspec.Meta(ge=1, le=9)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=8, pattern="^[a-z]+$")]
    tags: Annotated[list[str], msgspec.Meta(min_length=1, max_length=3)]
    kind: Annotated[str, msgspec.Meta(title="Kind", description="What it is")] = "a"
    note: str | None = None
    counts: dict[str, int] = {}
    envelope: Envelope | None = None


def _without_null_defaults(node: object) -> object:
    """Litestar's spec objects cannot say `"default": null` (None means "not set"): the one loss."""
    if isinstance(node, dict):
        return {k: _without_null_defaults(v) for k, v in node.items() if not (k == "default" and v is None)}
    if isinstance(node, list):
        return [_without_null_defaults(v) for v in node]
    return node


@pytest.mark.parametrize("model", [Envelope, BatchRequest, Sample])
def test_converted_schema_renders_back_to_msgspecs_json_schema(model: type[msgspec.Struct]) -> None:
    (ref,), components = msgspec.json.schema_components([model], ref_template=REF)
    assert openapi.spec_schema(ref).to_schema() == ref
    for node in components.values():
        assert openapi.spec_schema(node).to_schema() == _without_null_defaults(node)


def test_unknown_json_schema_keyword_is_refused_not_dropped() -> None:
    with pytest.raises(ValueError, match="dependentRequired"):
        openapi.spec_schema({"type": "object", "dependentRequired": {"a": ["b"]}})


def test_request_body_names_the_model_in_the_route_options() -> None:
    assert openapi.request_body(Envelope) == {"request_body": Envelope}
