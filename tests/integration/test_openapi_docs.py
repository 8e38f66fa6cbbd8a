"""What the service says about itself (issue #12): a docs page that works offline, and every status listed.

`/schema` is Swagger UI whose script, style and icon come from the service itself (no
CDN, no web font), and, like `/schema/openapi.json`, it needs no token. Each route's
OpenAPI operation lists every status the route answers: the requests below reach every
route with the answers they are meant to get, and tests/integration/openapi_coverage.py
(loaded here) holds every answer any test of the session gets from an in-process service
to the same rule; the last test of this module checks what the session saw up to it.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import msgspec
import pytest
from ledger_harness import Ledger, evidence, register, to_json, token
from litestar.testing import TestClient
from release_support import POLICY_TOML
from service_support import bearer, scratch_ledger, service
from story_support import signed

from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, sign_envelope
from ledger.core.keys import SignerKey
from ledger.records import predicates as p
from ledger.records.admin import PolicyPublished, encode_admin_record
from ledger.records.policy import load_policy_toml, policy_digest
from ledger.service.limits import Limits

pytest_plugins = ["openapi_coverage"]

_numbers = itertools.count(5_000)
_ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
# A request and the status it must get: method, operation path, request path, token role, body, status.
Call = tuple[str, str, str, str | None, bytes | None, int]
_ABSOLUTE_URL = re.compile(r"(?:https?:)?//[^\s\"'<>)]+", re.IGNORECASE)
BLOB = b"an evidence file"
BLOB_LIMIT = 64 * 1024  # the served app's EVLEDGER_MAX_BLOB


@dataclass
class Served:
    client: TestClient  # type: ignore[type-arg]
    ledger: Ledger
    tokens: dict[str, str]
    appender: SignerKey


@pytest.fixture(scope="module")
def served(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("openapi-docs")) as ledger:
        tokens = {
            "admin": token(ledger.dsn, "admin"),
            "appender": token(ledger.dsn, "appender"),
            "appender_a": token(ledger.dsn, "appender", ["A"]),
            "auditor": token(ledger.dsn, "auditor"),
        }
        appender = SignerKey.generate("appender.test/docs")
        with service(ledger, limits=Limits(max_blob=BLOB_LIMIT)) as client:
            registered = client.post(
                "/v1/entries",
                content=to_json(register(ledger.signer, appender, ["appender"])),
                headers=bearer(tokens["admin"]),
            )
            assert registered.status_code == 201, registered.text
            yield Served(client, ledger, tokens, appender)


class _References(HTMLParser):
    """Every URL a page makes the browser load or follow: src, href, srcset, poster, data, url(...)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if value and name in {"src", "href", "poster", "data", "action", "formaction"}:
                self.urls.append((tag, value))
            elif value and name == "srcset":
                self.urls += [(tag, part.split()[0]) for part in value.split(",") if part.strip()]
            elif value and name == "style":
                self.urls += [(tag, url) for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", value)]

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls += [("style", url) for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", data)]

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False


def test_the_docs_page_needs_no_token_and_loads_everything_from_the_service(served: Served) -> None:
    client = served.client
    page = client.get("/schema")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle" in page.text
    origin = str(client.base_url).rstrip("/")
    outside = [url for url in _ABSOLUTE_URL.findall(page.text) if not url.startswith(f"{origin}/")]
    assert outside == [], "the page names URLs outside the server: offline it would not load"
    parser = _References()
    parser.feed(page.text)
    loaded = {(tag, url) for tag, url in parser.urls}
    assert {tag for tag, _ in loaded} >= {"script", "link"}
    assert len(loaded) >= 4  # the bundle, the preset, the style sheet, the icon
    for tag, url in sorted(loaded):
        absolute = urljoin(f"{origin}/schema", url)
        assert urlsplit(absolute)[:2] == urlsplit(origin)[:2], (tag, url)
        asset = client.get(absolute)  # no token
        assert asset.status_code == 200, (url, asset.status_code)
        suffix = re.search(r"\.\w+$", urlsplit(absolute).path)
        expected = _ASSET_TYPES[suffix.group(0)] if suffix else None
        assert expected is not None, f"{tag} loads {url}, neither a script, a style sheet nor an image"
        assert asset.headers["content-type"].split(";")[0] == expected, url
        assert "immutable" in asset.headers["cache-control"], url
        assert asset.content, url


def test_the_docs_page_serves_no_other_file(served: Served) -> None:
    page = served.client.get("/schema").text
    script = re.search(r"src=\"(/schema/static/[^\"]+)/swagger-ui-bundle\.js\"", page)
    assert script is not None
    for name in ("index.css", "swagger-editor.js", "LICENSE", "..%2f__init__.py", "swagger-initializer.js"):
        assert served.client.get(f"{script.group(1)}/{name}").status_code == 404, name


def test_the_openapi_json_needs_no_token_and_declares_no_authorization_parameter(served: Served) -> None:
    response = served.client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            names = [p["name"].lower() for p in operation.get("parameters", [])]
            assert "authorization" not in names, (method, path)


# --- every route, with the answers it is meant to give -------------------------------------------


def _good(served: Served, product: str = "prod") -> bytes:
    return to_json(evidence(served.appender, product=product, n=next(_numbers)))


def _requests(served: Served) -> list[Call]:
    """(method, operation path, request path, token role, body, status the request must get).

    The first append and the last use one `Idempotency-Key` with two bodies: the last is a 409.
    """
    stranger = SignerKey.generate("stranger.test/docs")
    unsigned = to_json(evidence(stranger, n=next(_numbers)))
    good, other = _good(served), _good(served)
    batch = msgspec.json.encode({"envelopes": [msgspec.json.decode(_good(served))]})
    too_many = msgspec.json.encode({"envelopes": [msgspec.json.decode(good)] * 1001})
    gate = msgspec.json.encode({"product": "prod", "version": "1.0", "environment": "production"})
    entry, entries = "/v1/entries", "/v1/entries/batch"
    blobs, blob_path = "/v1/blobs/{digest}", f"/v1/blobs/sha256:{hashlib.sha256(BLOB).hexdigest()}"
    return [
        ("POST", entry, entry, "appender", good, 201),
        ("POST", entry, entry, "appender", good, 200),  # the same statement again: a replay
        ("POST", entry, entry, "appender", b"{", 400),
        ("POST", entry, entry, None, good, 401),
        ("POST", entry, entry, "auditor", good, 403),
        ("POST", entry, entry, "appender", b" " * 70_000, 413),
        ("POST", entry, entry, "appender", unsigned, 422),
        ("POST", entries, entries, "appender", batch, 201),
        ("POST", entries, entries, "appender", batch, 200),
        ("POST", entries, entries, "appender", b'{"envelopes": []}', 400),
        ("POST", entries, entries, None, batch, 401),
        ("POST", entries, entries, "auditor", batch, 403),
        ("POST", entries, entries, "appender", too_many, 413),
        (
            "POST",
            entries,
            entries,
            "appender",
            msgspec.json.encode({"envelopes": [msgspec.json.decode(unsigned)]}),
            422,
        ),
        ("GET", "/v1/checkpoint", "/v1/checkpoint", "auditor", None, 200),
        ("GET", "/v1/checkpoint", "/v1/checkpoint", None, None, 401),
        ("GET", "/checkpoint", "/checkpoint", "auditor", None, 200),
        ("GET", "/checkpoint", "/checkpoint", None, None, 401),
        ("GET", "/v1/anchors", "/v1/anchors", "auditor", None, 200),
        ("GET", "/v1/anchors", "/v1/anchors?tree_size=999999", "auditor", None, 404),
        ("GET", "/v1/anchors", "/v1/anchors?tree_size=-1", "auditor", None, 400),
        ("GET", "/v1/entries/{index}", "/v1/entries/0", "auditor", None, 200),
        ("GET", "/v1/entries/{index}", "/v1/entries/999999", "auditor", None, 404),
        ("GET", "/v1/entries/{index}", "/v1/entries/-1", "auditor", None, 400),
        ("GET", "/v1/entries/{index}", "/v1/entries/0", None, None, 401),
        ("GET", entry, "/v1/entries?start=0&limit=1", "auditor", None, 200),
        ("GET", entry, "/v1/entries?limit=0", "auditor", None, 400),
        ("GET", "/v1/proofs/inclusion", "/v1/proofs/inclusion?index=0", "auditor", None, 200),
        ("GET", "/v1/proofs/inclusion", "/v1/proofs/inclusion", "auditor", None, 400),
        ("GET", "/v1/proofs/inclusion", "/v1/proofs/inclusion?leaf_hash=" + "0" * 64, "auditor", None, 404),
        ("GET", "/v1/proofs/consistency", "/v1/proofs/consistency?first=1", "auditor", None, 200),
        ("GET", "/v1/proofs/consistency", "/v1/proofs/consistency?first=0", "auditor", None, 400),
        ("GET", "/tile/{path}", "/tile/0/000.p/1", "auditor", None, 200),
        ("GET", "/tile/{path}", "/tile/0/999", "auditor", None, 404),
        ("GET", "/tile/{path}", "/tile/x", "auditor", None, 400),
        ("GET", "/tile/{path}", "/tile/0/000.p/1", None, None, 401),
        (
            "GET",
            "/v1/releases/{product}/{version}/timeline",
            "/v1/releases/prod/1.0/timeline",
            "auditor",
            None,
            200,
        ),
        (
            "GET",
            "/v1/releases/{product}/{version}/timeline",
            "/v1/releases/no/1/timeline",
            "auditor",
            None,
            404,
        ),
        ("GET", "/v1/artifacts/{digest}", "/v1/artifacts/sha256:" + "0" * 64, "auditor", None, 200),
        ("GET", "/v1/artifacts/{digest}", "/v1/artifacts/md5:0", "auditor", None, 400),
        ("GET", "/v1/search", "/v1/search?kind=key.registered", "auditor", None, 200),
        ("GET", "/v1/search", "/v1/search?kind=no-such-kind", "auditor", None, 400),
        ("GET", "/v1/search", "/v1/search", None, None, 401),
        ("GET", "/v1/releases", "/v1/releases", "auditor", None, 200),
        ("GET", "/v1/releases", "/v1/releases?state=closed", "auditor", None, 400),
        ("GET", "/v1/releases", "/v1/releases", None, None, 401),
        ("GET", "/v1/index/proof", "/v1/index/proof?artifact=sha256:" + "0" * 64, "auditor", None, 200),
        ("GET", "/v1/index/proof", "/v1/index/proof?release=no-version", "auditor", None, 400),
        ("GET", "/v1/index/proof", "/v1/index/proof?release=a/1", None, None, 401),
        ("GET", "/v1/keys", "/v1/keys", "auditor", None, 200),
        ("GET", "/v1/keys", "/v1/keys", None, None, 401),
        ("GET", "/v1/policies", "/v1/policies", "auditor", None, 200),
        ("GET", "/v1/policies", "/v1/policies", None, None, 401),
        *_metrics_requests(),
        # No policy is published: compliance, dossier and gate have nothing to evaluate against.
        (
            "GET",
            "/v1/releases/{product}/{version}/compliance",
            "/v1/releases/prod/1.0/compliance",
            "auditor",
            None,
            404,
        ),
        (
            "GET",
            "/v1/releases/{product}/{version}/dossier",
            "/v1/releases/prod/1.0/dossier",
            "auditor",
            None,
            404,
        ),
        (
            "GET",
            "/v1/releases/{product}/{version}/traceability",
            "/v1/releases/prod/1.0/traceability",
            "auditor",
            None,
            404,
        ),
        (
            "GET",
            "/v1/releases/{product}/{version}/traceability",
            "/v1/releases/a/1/traceability",
            None,
            None,
            401,
        ),
        ("GET", "/v1/releases/{product}/{version}/soup", "/v1/releases/prod/1.0/soup", "auditor", None, 404),
        ("GET", "/v1/releases/{product}/{version}/soup", "/v1/releases/a/1/soup", None, None, 401),
        ("POST", "/v1/gates/evaluate", "/v1/gates/evaluate", "appender", gate, 404),
        ("POST", "/v1/gates/evaluate", "/v1/gates/evaluate", "appender", b"[]", 400),
        ("POST", "/v1/gates/evaluate", "/v1/gates/evaluate", None, gate, 401),
        ("POST", "/v1/gates/evaluate", "/v1/gates/evaluate", "auditor", gate, 403),
        ("POST", "/v1/gates/evaluate", "/v1/gates/evaluate", "appender_a", gate, 403),
        ("POST", "/v1/gates/evaluate", "/v1/gates/evaluate", "appender", b" " * 17_000, 413),
        ("PUT", blobs, f"{blob_path}?product=prod", "appender", BLOB, 201),
        ("PUT", blobs, f"{blob_path}?product=prod", "appender", BLOB, 200),  # stored already
        ("PUT", blobs, f"{blob_path}?product=prod", "appender", BLOB + b"!", 400),  # hashes otherwise
        ("PUT", blobs, f"{blob_path}?product=prod", None, BLOB, 401),
        ("PUT", blobs, f"{blob_path}?product=prod", "auditor", BLOB, 403),
        ("PUT", blobs, f"{blob_path}?product=prod", "appender_a", BLOB, 403),  # another product
        ("PUT", blobs, f"{blob_path}?product=prod", "appender", b" " * (BLOB_LIMIT + 1), 413),
        ("GET", blobs, blob_path, "auditor", None, 200),
        ("GET", blobs, "/v1/blobs/sha256:" + "0" * 64, "auditor", None, 404),
        ("GET", blobs, "/v1/blobs/md5:0", "auditor", None, 400),
        ("GET", blobs, blob_path, None, None, 401),
        ("GET", "/healthz", "/healthz", None, None, 200),
        ("GET", "/healthz", "/healthz?probe=%00", None, None, 400),
        ("GET", "/readyz", "/readyz", None, None, 200),
        ("GET", "/metrics", "/metrics", "auditor", None, 200),
        ("GET", "/metrics", "/metrics", None, None, 401),
        ("POST", entry, entry, "appender", other, 409),
    ]


def _metrics_requests() -> list[Call]:
    """The metrics routes: a product with a release (`prod`), another token's product, bad input."""
    calls: list[Call] = []
    for path in ("/v1/metrics/delivery", "/v1/metrics/readiness"):
        calls += [
            ("GET", path, path, "auditor", None, 200),
            ("GET", path, f"{path}?product=prod&environment=staging", "auditor", None, 200),
            ("GET", path, f"{path}?since=yesterday", "auditor", None, 400),
            ("GET", path, path, None, None, 401),
            ("GET", path, f"{path}?product=prod", "appender_a", None, 403),
            ("GET", path, f"{path}?product=no-such-product", "auditor", None, 404),
        ]
    return calls


def _answers(served: Served, call: Call, headers: dict[str, str] | None = None) -> Any:
    """Send `call`: it must get its status, and the served document must list it for the operation."""
    method, operation_path, path, role, body, status = call
    document = served.client.get("/schema/openapi.json").json()
    sent = {**(bearer(served.tokens[role]) if role else {}), **(headers or {})}
    response = served.client.request(method, path, content=body, headers=sent)
    assert response.status_code == status, (method, path, role, response.status_code, response.text[:300])
    listed = document["paths"][operation_path][method.lower()]["responses"]
    assert str(status) in listed, (
        f"{method} {operation_path} answers {status}, its operation lists {sorted(listed)}"
    )
    return response.json() if "json" in response.headers.get("content-type", "") else None


def test_every_status_a_route_answers_is_listed_by_its_operation(served: Served) -> None:
    requests = _requests(served)
    for number, call in enumerate(requests):
        key = {"Idempotency-Key": "docs-first-append"} if number in {0, len(requests) - 1} else {}
        _answers(served, call, key)
    document = served.client.get("/schema/openapi.json").json()
    reached = {(method.lower(), operation_path) for method, operation_path, *_ in requests}
    operations = {(method, path) for path, item in document["paths"].items() for method in item}
    assert reached == operations, "every documented operation is exercised here"


def test_under_a_policy_the_release_routes_answer_and_the_gate_of_a_sealed_release_is_409(
    served: Served,
) -> None:
    policy = load_policy_toml(POLICY_TOML)
    published = PolicyPublished(policy, policy_digest(policy))
    manager = SignerKey.generate("manager.test/docs")
    entry, gate = "/v1/entries", "/v1/gates/evaluate"
    for admin_record in (
        sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(published), [served.ledger.signer]),
        register(served.ledger.signer, manager, ["release-manager"]),
    ):
        _answers(served, ("POST", entry, entry, "admin", to_json(admin_record), 201))
    _answers(served, ("POST", entry, entry, "appender", _good(served, product="sealed"), 201))
    release = "/v1/releases/sealed/1.0"
    template = "/v1/releases/{product}/{version}"
    _answers(served, ("GET", f"{template}/compliance", f"{release}/compliance", "auditor", None, 200))
    _answers(served, ("GET", f"{template}/dossier", f"{release}/dossier", "auditor", None, 200))
    _answers(served, ("GET", f"{template}/traceability", f"{release}/traceability", "auditor", None, 200))
    _answers(served, ("GET", f"{template}/soup", f"{release}/soup", "auditor", None, 404))  # no SBOM
    asked = msgspec.json.encode({"product": "sealed", "version": "1.0", "environment": "production"})
    _answers(served, ("POST", gate, gate, "appender", asked, 201))
    timeline = _answers(served, ("GET", f"{template}/timeline", f"{release}/timeline", "auditor", None, 200))
    seal = p.Seal(p.Release("sealed", "1.0"), timeline["count"], timeline["head"]["leaf_hash"])
    sealed = signed(manager, p.RELEASE_SEAL, seal, "sha256:" + "5e" * 32)
    _answers(served, ("POST", entry, entry, "appender", to_json(sealed), 201))
    _answers(served, ("POST", gate, gate, "appender", asked, 409))


def test_no_answer_of_the_session_so_far_is_missing_from_the_openapi_document(
    request: pytest.FixtureRequest,
) -> None:
    """Every in-process request of every test that ran before this one (the plugin checks the rest)."""
    coverage: Any = request.config.pluginmanager.get_plugin("openapi_coverage")
    assert coverage is not None, "tests/integration/openapi_coverage.py is not loaded"
    assert coverage.seen(), "the plugin watched no request"
    assert coverage.undeclared() == {}
