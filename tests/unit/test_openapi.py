"""The OpenAPI additions of `ledger.service.openapi`: msgspec's JSON Schema, carried over exactly.

And the document the service serves (issue #12): valid OpenAPI 3.1 (checked here, rule by
rule), the token a security scheme rather than a header parameter, and the docs page's
files served by the service itself.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
import pytest
from litestar.serialization import encode_json

from ledger.core.dsse import Envelope
from ledger.core.keys import SignerKey
from ledger.service import openapi
from ledger.service.app import Settings, create_app
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


# --- the document as served: valid OpenAPI 3.1, tokens as a security scheme (issue #12) ---------

_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
_PATH_ITEM_KEYS = _METHODS | {"$ref", "summary", "description", "servers", "parameters"}
_IN = {"query", "header", "path", "cookie"}
# OpenAPI 3.1 §4.8.12.1: header parameters with these names SHALL be ignored.
_IGNORED_HEADERS = {"accept", "content-type", "authorization"}
_STATUS = re.compile(r"default|[1-5](?:[0-9]{2}|XX)")
_COMPONENT_NAME = re.compile(r"[a-zA-Z0-9._-]+")
_MEDIA_RANGE = re.compile(r"[\w.+*-]+/[\w.+*-]+(?:\s*;.*)?")
_JSON_TYPES = {"null", "boolean", "object", "array", "number", "string", "integer"}
_SCHEME_TYPES = {"apiKey", "http", "mutualTLS", "oauth2", "openIdConnect"}


def _document(*, public_log: bool = False) -> dict[str, Any]:
    signer = SignerKey.from_seed("ledger.test/openapi", bytes(range(32)))
    app = create_app(Settings(dsn="postgresql://unused", signer=signer, public_log=public_log))
    document: dict[str, Any] = msgspec.json.decode(encode_json(app.openapi_schema.to_schema()))
    return document


def _resolve(document: dict[str, Any], ref: str) -> Any:
    """The node a local `$ref` (a JSON Pointer, RFC 6901) names; LookupError when there is none."""
    if not ref.startswith("#/"):
        raise LookupError(ref)
    node: Any = document
    for token in ref[2:].split("/"):
        key = token.replace("~1", "/").replace("~0", "~")
        try:
            node = node[int(key)] if isinstance(node, list) else node[key]
        except (ValueError, TypeError) as exc:
            raise LookupError(ref) from exc
    return node


def _deref(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """`node`, or what its `$ref` names; {} when that is nothing (`_ref_problems` reports it)."""
    if "$ref" not in node:
        return node
    try:
        found = _resolve(document, node["$ref"])
    except LookupError:
        return {}
    return found if isinstance(found, dict) else {}


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _keyword_problems(schema: dict[str, Any], where: str) -> Iterator[str]:
    """The keywords of one Schema Object that do not have the form JSON Schema 2020-12 gives them."""
    kinds = schema.get("type")
    for kind in kinds if isinstance(kinds, list) else [] if kinds is None else [kinds]:
        if kind not in _JSON_TYPES:
            yield f"{where}: type {kind!r}"
    required = schema.get("required", [])
    if not (isinstance(required, list) and all(isinstance(r, str) for r in required)):
        yield f"{where}: required must be a list of names"
    elif len(set(required)) != len(required):
        yield f"{where}: required repeats a name"
    for key in ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"):
        if key in schema and not isinstance(schema[key], int | float):
            yield f"{where}: {key} must be a number"
    try:
        re.compile(schema.get("pattern", ""))
    except re.error as exc:
        yield f"{where}: pattern does not compile: {exc}"


def _schema_problems(schema: object, where: str) -> Iterator[str]:
    """What in a Schema Object and its subschemas is not well-formed, in the keywords this API uses."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        yield f"{where}: a schema is an object or a boolean"
        return
    yield from _keyword_problems(schema, where)
    subschemas = [(f"properties.{name}", sub) for name, sub in schema.get("properties", {}).items()]
    subschemas += [(key, schema[key]) for key in ("items", "additionalProperties", "not") if key in schema]
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        listed = schema.get(key, [])
        if not isinstance(listed, list) or (key in schema and not listed):
            yield f"{where}: {key} must be a non-empty list"
        else:
            subschemas += [(f"{key}[{number}]", sub) for number, sub in enumerate(listed)]
    for name, sub in subschemas:
        yield from _schema_problems(sub, f"{where}.{name}")


def _parameter_problems(document: dict[str, Any], path: str, where: str, listed: list[Any]) -> Iterator[str]:
    """The parameters of one operation (its own and its path's): their form, names and the path template."""
    parameters = [_deref(document, p) for p in listed]
    keys = [(p.get("name"), p.get("in")) for p in parameters]
    if len(set(keys)) != len(keys):
        yield f"{where}: a parameter is listed twice"
    for parameter in parameters:
        name, location = parameter.get("name"), parameter.get("in")
        if not isinstance(name, str) or location not in _IN:
            yield f"{where}: a parameter needs a name and `in` one of {sorted(_IN)}"
            continue
        if location == "path" and parameter.get("required") is not True:
            yield f"{where}: path parameter {name!r} must be required"
        if location == "header" and name.lower() in _IGNORED_HEADERS:
            yield f"{where}: header parameter {name!r} is ignored by OpenAPI 3.1 (§4.8.12.1)"
        if ("schema" in parameter) == ("content" in parameter):
            yield f"{where}: parameter {name!r} needs exactly one of schema and content"
        yield from _schema_problems(parameter.get("schema", True), f"{where}.{name}")
    in_template = set(re.findall(r"\{([^}/]+)\}", path))
    in_path = {p.get("name") for p in parameters if p.get("in") == "path"}
    if in_template != in_path:
        named = sorted(map(str, in_path))
        yield f"{where}: path parameters {named} but the template names {sorted(in_template)}"


def _response_problems(document: dict[str, Any], where: str, responses: object) -> Iterator[str]:
    """The Responses Object of one operation: status keys, descriptions, media types, schemas, headers."""
    if not isinstance(responses, dict) or not responses:
        yield f"{where}: no responses"
        return
    for status, listed in responses.items():
        if not _STATUS.fullmatch(status):
            yield f"{where}: response key {status!r}"
        response = _deref(document, listed)
        if not isinstance(response.get("description"), str):
            yield f"{where} {status}: a response needs a description"
        for media_type, media in response.get("content", {}).items():
            if not _MEDIA_RANGE.fullmatch(media_type):
                yield f"{where} {status}: media type {media_type!r}"
            yield from _schema_problems(media.get("schema", True), f"{where} {status} {media_type}")
        if any(header.lower() == "content-type" for header in response.get("headers", {})):
            yield f"{where} {status}: a Content-Type response header is ignored"


def _security_problems(document: dict[str, Any], where: str, requirements: list[Any]) -> Iterator[str]:
    schemes = document.get("components", {}).get("securitySchemes", {})
    for requirement in requirements:
        for name, scopes in requirement.items():
            if name not in schemes or not isinstance(scopes, list):
                yield f"{where}: security requirement {name!r} names no declared scheme"


def _path_problems(document: dict[str, Any]) -> Iterator[str]:
    """Paths, their templates and every operation under them."""
    templates: dict[str, str] = {}
    operation_ids: set[str] = set()
    for path, item in document.get("paths", {}).items():
        if not path.startswith("/"):
            yield f"path {path!r} does not start with /"
        shape = re.sub(r"\{[^}/]+\}", "{}", path)
        if shape in templates:
            yield f"paths {templates[shape]!r} and {path!r} are the same template"
        templates[shape] = path
        yield from (f"{path}: unknown field {key!r}" for key in item if key not in _PATH_ITEM_KEYS)
        for method in sorted(_METHODS & set(item)):
            operation, where = item[method], f"{method.upper()} {path}"
            operation_id = operation.get("operationId")
            if operation_id in operation_ids:
                yield f"operationId {operation_id!r} is not unique"
            if operation_id is not None:
                operation_ids.add(operation_id)
            listed = [*item.get("parameters", []), *operation.get("parameters", [])]
            yield from _parameter_problems(document, path, where, listed)
            yield from _response_problems(document, where, operation.get("responses"))
            if "requestBody" in operation and not _deref(document, operation["requestBody"]).get("content"):
                yield f"{where}: a request body needs content"
            yield from _security_problems(document, where, operation.get("security", []))


def _component_problems(document: dict[str, Any]) -> Iterator[str]:
    components = document.get("components", {})
    for kind, entries in components.items():
        yield from (
            f"components.{kind}: name {name!r}" for name in entries if not _COMPONENT_NAME.fullmatch(name)
        )
    for name, schema in components.get("schemas", {}).items():
        yield from _schema_problems(schema, f"components.schemas.{name}")
    for name, scheme in components.get("securitySchemes", {}).items():
        if scheme.get("type") not in _SCHEME_TYPES or (scheme["type"] == "http" and not scheme.get("scheme")):
            yield f"securitySchemes.{name}: {scheme}"


def openapi_problems(document: dict[str, Any]) -> list[str]:
    """What keeps `document` from being a valid OpenAPI 3.1 document, in the parts this API writes.

    The checks openapi-spec-validator would make of it, written out (the project takes no
    dependency for them): versions, info, paths and templates, parameters, responses,
    request bodies, security, component names, schemas, and that every `$ref` resolves.
    """
    problems: list[str] = []
    if not re.fullmatch(r"3\.1\.\d+", str(document.get("openapi"))):
        problems.append(f"openapi is {document.get('openapi')!r}, not 3.1.x")
    info = document.get("info", {})
    if not (isinstance(info.get("title"), str) and isinstance(info.get("version"), str)):
        problems.append("info needs a title and a version")
    problems += _component_problems(document)
    problems += _security_problems(document, "security", document.get("security", []))
    problems += _path_problems(document)
    for ref in sorted(set(_refs(document))):
        try:
            _resolve(document, ref)
        except LookupError:
            problems.append(f"$ref {ref!r} resolves to nothing")
    return problems


def test_the_checks_catch_what_they_are_for() -> None:
    document = _document()
    broken = copy.deepcopy(document)
    operation = broken["paths"]["/v1/entries/{index}"]["get"]
    operation["parameters"].append({"name": "Authorization", "in": "header", "schema": {"type": "string"}})
    operation["responses"]["2xx"] = {"description": "wrong key"}
    operation["responses"]["404"] = {"$ref": "#/components/responses/Missing"}
    operation["security"] = [{"basic": []}]
    broken["paths"]["/v1/entries/{other}"] = {"get": operation}
    broken["components"]["schemas"]["ErrorBody"]["properties"]["status"]["type"] = "int"
    broken["openapi"] = "3.0.3"
    problems = "\n".join(openapi_problems(broken))
    for expected in (
        "not 3.1.x",
        "ErrorBody.properties.status: type 'int'",
        "'Authorization' is ignored",
        "'2xx'",
        "Missing",
        "'basic'",
        "same template",
        "template names",
    ):
        assert expected in problems


@pytest.mark.parametrize("public_log", [False, True])
def test_the_document_is_valid_openapi_3_1(public_log: bool) -> None:
    document = _document(public_log=public_log)
    assert len(document["paths"]) > 15
    assert document["components"]["schemas"]
    assert openapi_problems(document) == []


@pytest.mark.parametrize("public_log", [False, True])
def test_the_token_is_a_security_scheme_not_an_authorization_parameter(public_log: bool) -> None:
    document = _document(public_log=public_log)
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token from `evledger token create`: `Authorization: Bearer <token>`.",
    }
    assert document["security"] == [{"bearer": []}]
    for path, item in document["paths"].items():
        for method in _METHODS & set(item):
            names = {p["name"].lower() for p in item[method].get("parameters", [])}
            assert "authorization" not in names, (method, path)


def test_every_route_but_the_probes_documents_the_outage_503_and_every_body_route_the_408() -> None:
    for path, item in _document()["paths"].items():
        for method in _METHODS & set(item):
            statuses = set(item[method]["responses"])
            assert "400" in statuses, (method, path)  # a NUL in the request target, on any route
            if path != "/healthz":
                assert "503" in statuses, (method, path)
            assert ("408" in statuses) == (method in {"post", "put"}), (method, path)
            assert ("413" in statuses) == (method in {"post", "put"}), (method, path)


def test_the_docs_page_loads_its_files_from_the_service() -> None:
    page = openapi.DocsPage("/schema")
    urls = [page.js_url, page.css_url, page.standalone_preset_js_url]
    assert all(url.startswith(f"/schema/static/{page.release}/") for url in urls)
    assert f"href='/schema/static/{page.release}/favicon-32x32.png'" in page.favicon
    assert page.paths == ["/"]
    for name in openapi._DOCS_ASSETS:  # every file the page may ask for is installed
        assert (page.assets / name).is_file(), name
