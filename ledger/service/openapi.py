"""The OpenAPI document at `/schema` (DESIGN.md §4): what Litestar cannot infer from the routes.

The append routes read and decode their body by hand (the hot path), so Litestar
sees no `data` parameter and would document no request body. Such a route names
its body model in its `opt` (`opt=request_body(Envelope)`); `document_request_bodies`
adds the body, with the model's JSON Schema from msgspec (the same structs that
decode it), to the document once, when the app is built.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Reference, RequestBody, Schema

_REQUEST_BODY = "request_body"
_REF_TEMPLATE = "#/components/schemas/{name}"
# JSON Schema keywords msgspec emits, as the fields of Litestar's `Schema`.
_SCALARS = {
    "title": "title",
    "description": "description",
    "required": "required",
    "minLength": "min_length",
    "maxLength": "max_length",
    "minItems": "min_items",
    "maxItems": "max_items",
    "minimum": "minimum",
    "maximum": "maximum",
    "pattern": "pattern",
    "format": "format",
    "enum": "enum",
    "const": "const",
    "default": "default",
}


def request_body(model: type[msgspec.Struct]) -> dict[str, Any]:
    """The `opt` of a route that decodes a `model` body by hand, so that it is documented."""
    return {_REQUEST_BODY: model}


def spec_schema(node: dict[str, Any]) -> Schema | Reference:
    """One msgspec JSON Schema node as Litestar's spec object (OpenAPI 3.1 Schema Object).

    An unknown keyword raises ValueError rather than being dropped. The one loss:
    `"default": null` renders as no default (Litestar's None means "not set").
    """
    if "$ref" in node:
        return Reference(ref=node["$ref"])
    fields: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCALARS:
            fields[_SCALARS[key]] = value
        elif key == "type":
            fields["type"] = OpenAPIType(value)
        elif key == "items":
            fields["items"] = spec_schema(value)
        elif key == "properties":
            fields["properties"] = {name: spec_schema(sub) for name, sub in value.items()}
        elif key == "additionalProperties":
            fields["additional_properties"] = value if isinstance(value, bool) else spec_schema(value)
        elif key == "anyOf":
            fields["any_of"] = [spec_schema(sub) for sub in value]
        else:
            msg = f"JSON Schema keyword {key!r} is not mapped to OpenAPI"
            raise ValueError(msg)
    return Schema(**fields)


def document_request_bodies(app: Litestar) -> None:
    """Add the request body of every route whose `opt` names one, and its models' schemas.

    Precondition: no other route's models share a name with these (a clash raises ValueError).
    """
    document = app.openapi_schema
    bodies = [
        (route.path_format or "/", method.lower(), handler.opt[_REQUEST_BODY])
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if isinstance(handler, HTTPRouteHandler) and _REQUEST_BODY in handler.opt
        for method in handler.http_methods
    ]
    if not bodies:
        return
    refs, components = msgspec.json.schema_components(
        [model for _, _, model in bodies], ref_template=_REF_TEMPLATE
    )
    schemas = document.components.schemas
    for name, node in components.items():
        if name in schemas:
            msg = f"the OpenAPI document already has a schema named {name!r}"
            raise ValueError(msg)
        converted = spec_schema(node)
        assert isinstance(converted, Schema)  # noqa: S101 - a component is never a bare reference
        schemas[name] = converted
    for (path, method, _), ref in zip(bodies, refs, strict=True):
        operation = getattr(document.paths[path], method) if document.paths else None
        if operation is None:
            msg = f"no {method.upper()} {path} in the OpenAPI document"
            raise ValueError(msg)
        operation.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=spec_schema(ref))}, required=True
        )
