"""The OpenAPI document at `/schema` (docs/http-api.md): what Litestar cannot infer from the routes.

The append routes read and decode their body by hand (the hot path), so Litestar
sees no `data` parameter and would document no request body. Such a route names
its body model in its `opt` (`opt=request_body(Envelope)`); `document_request_bodies`
adds the body, with the model's JSON Schema from msgspec (the same structs that
decode it), to the document once, when the app is built.

Likewise for authentication: every route needs a bearer token except the probes,
whose `opt` says they read none (`NO_AUTH`), and the C2SP log routes, whose access
check (ledger.service.auth `LOG_READ`) opens them when the operator serves the log
publicly. `document_security` writes the bearer scheme and each route's requirement
into the document for the app's mode, from those same declarations.

And for what any route may answer before it runs (ledger.service.availability):
`document_availability` adds the 503 with Retry-After (database unreachable, a
budget or queue full) and, for routes that take a body, the 408 of a slow one.

The page at `/schema` is Swagger UI (`DocsPage`), whose script, style and icon the
service serves itself, from the installed swagger-ui-py package, under
`/schema/static/<its version>/`: the page works without internet access and loads
nothing from any other site.
"""

from __future__ import annotations

from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Router, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)
from litestar.params import FromPath
from litestar.response import File

from ledger.errors import NotFoundError
from ledger.service.auth import access_of
from ledger.service.wire import ErrorBody

_REQUEST_BODY = "request_body"
_AUTH = "auth"
BEARER = "bearer"
NO_AUTH = {_AUTH: "none"}
"""The `opt` of a route that reads no credential at all (liveness and readiness probes)."""
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


def request_body(model: type[msgspec.Struct | bytes]) -> dict[str, Any]:
    """The `opt` of a route that decodes a `model` body by hand, so that it is documented.

    `bytes`: the body is a file's raw bytes (`application/octet-stream`).
    """
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
    for path, method, _ in [body for body in bodies if body[2] is bytes]:
        _operation(document, path, method).request_body = RequestBody(
            content={
                "application/octet-stream": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
                )
            },
            required=True,
        )
    bodies = [body for body in bodies if body[2] is not bytes]
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
        _operation(document, path, method).request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=spec_schema(ref))}, required=True
        )


def _operation(document: OpenAPI, path: str, method: str) -> Operation:
    """The document's operation for `method` on `path`; ValueError when it has none."""
    operation: Operation | None = getattr(document.paths[path], method) if document.paths else None
    if operation is None:
        msg = f"no {method.upper()} {path} in the OpenAPI document"
        raise ValueError(msg)
    return operation


def document_security(app: Litestar, *, public_log: bool) -> None:
    """Declare the bearer scheme for the whole API and each route's exception to it (OpenAPI 3.1 §4.8.30).

    A probe (`opt=NO_AUTH`) requires nothing (`security: []`); a route whose access check
    opens it on a public log takes a token or none under `public_log` (`[{}, {"bearer": []}]`);
    every other route inherits the document's requirement, a bearer token.
    """
    document = app.openapi_schema
    document.components.security_schemes = {
        BEARER: SecurityScheme(
            type="http",
            scheme="bearer",
            description="An API token from `evledger token create`: `Authorization: Bearer <token>`.",
        )
    }
    document.security = [{BEARER: []}]
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            no_auth = handler.opt.get(_AUTH) == NO_AUTH[_AUTH]
            open_log = public_log and getattr(access_of(handler), "public_log", False)
            if not (no_auth or open_log):
                continue
            item = document.paths.get(route.path_format or "/") if document.paths else None
            for method in handler.http_methods:
                operation = getattr(item, method.lower(), None)
                if operation is not None:
                    operation.security = [] if no_auth else [{}, {BEARER: []}]


def document_availability(app: Litestar) -> None:
    """Add to the OpenAPI document the 503 every database-backed route can answer, and 408 for bodies.

    The 503 (database unreachable, a budget or queue full) carries Retry-After; /healthz
    touches no database and /readyz documents its own 503. Precondition: some route
    already lists an error, so the `ErrorBody` schema is in the document.
    """
    document = app.openapi_schema
    error_ref = Reference(ref=_REF_TEMPLATE.format(name=ErrorBody.__name__))
    error_body = {"application/json": OpenAPIMediaType(schema=error_ref)}
    retry_after = {
        "Retry-After": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.INTEGER), description="Seconds to wait before retrying"
        )
    }
    for path, item in (document.paths or {}).items():
        if path in {"/healthz", "/readyz"}:
            continue
        for method in ("get", "post", "put"):
            operation = getattr(item, method)
            if operation is None:
                continue
            responses: dict[str, Any] = operation.responses if operation.responses is not None else {}
            unavailable = responses.setdefault(
                "503", OpenAPIResponse(description="Service Unavailable", content=error_body)
            )
            unavailable.headers = retry_after
            if method != "get":  # a route that reads a body
                timed_out = OpenAPIResponse(description="Request Timeout", content=error_body)
                responses.setdefault("408", timed_out)
            operation.responses = responses


_SWAGGER_UI = "swagger_ui"  # the import name of swagger-ui-py, which ships Swagger UI's built files
_DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
# The asset URLs name the package's version, so a file under one URL never changes: cache it for good.
_IMMUTABLE = "public, max-age=31536000, immutable"


def _swagger_ui_static() -> Path:
    """The directory of Swagger UI's files in the installed swagger-ui-py (found, not imported)."""
    spec = find_spec(_SWAGGER_UI)
    if spec is None or not spec.submodule_search_locations:
        msg = "swagger-ui-py is not installed: the /schema page has no Swagger UI to serve"
        raise RuntimeError(msg)
    return Path(next(iter(spec.submodule_search_locations))) / "static"


class DocsPage(SwaggerRenderPlugin):
    """Swagger UI at the schema root (`/schema`), with its files served from the service, not a CDN.

    `schema_path` is the app's `OpenAPIConfig.path`; the assets live under it, in
    `static/<swagger-ui-py version>/`, need no token and may be cached for good.
    """

    def __init__(self, schema_path: str = "/schema") -> None:
        """The page, its asset URLs under `schema_path`."""
        self.assets = _swagger_ui_static()
        self.release = version("swagger-ui-py")
        self.schema_path = schema_path.rstrip("/")
        base = f"{self.schema_path}/static/{self.release}"
        super().__init__(
            js_url=f"{base}/swagger-ui-bundle.js",
            css_url=f"{base}/swagger-ui.css",
            standalone_preset_js_url=f"{base}/swagger-ui-standalone-preset.js",
            path="/",
            favicon=f"<link rel='icon' type='image/png' href='{base}/favicon-32x32.png'>",
        )

    def receive_router(self, router: Router) -> None:
        """Serve the page's files beside it (and, unlike Swagger's default, no OAuth2 redirect page)."""
        if router.path.rstrip("/") != self.schema_path:
            msg = f"the docs page links its files under {self.schema_path}, the schema is at {router.path}"
            raise ValueError(msg)
        assets, headers = self.assets, {"Cache-Control": _IMMUTABLE, "X-Content-Type-Options": "nosniff"}

        @get(f"/static/{self.release}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
        def docs_asset(name: FromPath[str]) -> File:
            media_type = _DOCS_ASSETS.get(name)
            if media_type is None:
                raise NotFoundError(f"no file {name!r} belongs to the documentation page")
            return File(
                assets / name,
                filename=name,
                media_type=media_type,
                content_disposition_type="inline",
                headers=headers,
            )

        router.register(docs_asset)
