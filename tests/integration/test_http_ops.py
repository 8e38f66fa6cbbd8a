"""Probes, public log reads and the text content types (docs/http-api.md: who needs a token, and for what).

`/healthz` and `/readyz` answer without a token: liveness and readiness probes carry no
credentials. Everything else needs one, unless the operator opts in to public log reads
(`serve --public-log`), which opens exactly the C2SP routes `/checkpoint` and `/tile/*`.
A credential that is presented is always checked, on every route that reads one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from email.headerregistry import HeaderRegistry

import pytest
from ledger_harness import Ledger, token
from litestar.testing import TestClient
from service_support import bearer, check_error, opened, scratch_ledger, service

from ledger.service.app import settings_from_env

PROBES = ["/healthz", "/readyz"]
LOG_ROUTES = ["/checkpoint", "/tile/0/000.p/1", "/tile/entries/000.p/1"]
# Every other GET route, each with a request that would succeed with a token.
PRIVATE_ROUTES = [
    "/v1/checkpoint",
    "/v1/anchors",
    "/v1/anchors?tree_size=1",
    "/v1/entries/0",
    "/v1/entries?start=0&limit=1",
    "/v1/proofs/inclusion?index=0&tree_size=1",
    "/v1/proofs/consistency?first=1&second=1",
    "/v1/releases/prod/1.0/timeline",
    "/v1/artifacts/sha256:" + "0" * 64,
    "/v1/search?kind=key.registered",
    "/v1/search?signer_owner=nobody",
    "/v1/releases",
    "/v1/keys",
    "/v1/policies",
    "/metrics",
]
BAD_CREDENTIALS = {
    "unknown_token": {"Authorization": "Bearer evl_this-token-was-never-issued"},
    "empty_bearer": {"Authorization": "Bearer "},
    "basic_scheme": {"Authorization": "Basic YWRtaW46YWRtaW4="},
    "empty_header": {"Authorization": ""},
}


@dataclass
class Served:
    client: TestClient  # type: ignore[type-arg]
    ledger: Ledger
    auditor: str


@pytest.fixture(scope="module")
def ledger(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("http-ops")) as made:
        yield made


@pytest.fixture(scope="module")
def private(ledger: Ledger) -> Iterator[Served]:
    with service(ledger) as client:
        yield Served(client, ledger, token(ledger.dsn, "auditor"))


@pytest.fixture(scope="module")
def public(ledger: Ledger) -> Iterator[Served]:
    with service(ledger, public_log=True) as client:
        yield Served(client, ledger, token(ledger.dsn, "auditor"))


def strict_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Parse a Content-Type as strictly as Go's mime.ParseMediaType: a duplicate parameter is an error."""
    header = HeaderRegistry()("content-type", value)
    assert not header.defects, f"{value!r}: {header.defects}"
    return header.content_type, dict(header.params)


# --- item 20: one charset, parsable by strict parsers ---------------------------------------------


@pytest.mark.parametrize("path", ["/checkpoint", "/v1/checkpoint"])
def test_checkpoint_content_type_names_its_charset_once(private: Served, path: str) -> None:
    response = private.client.get(path, headers=bearer(private.auditor))
    assert response.status_code == 200, response.text
    value = response.headers["content-type"]
    assert value == "text/plain; charset=utf-8"
    assert strict_content_type(value) == ("text/plain", {"charset": "utf-8"})
    assert len(response.headers.get_list("content-type")) == 1


def test_metrics_content_type_is_prometheus_text_with_one_charset(private: Served) -> None:
    response = private.client.get("/metrics", headers=bearer(private.auditor))
    assert response.status_code == 200, response.text
    value = response.headers["content-type"]
    assert value == "text/plain; version=0.0.4; charset=utf-8"
    assert strict_content_type(value) == ("text/plain", {"version": "0.0.4", "charset": "utf-8"})


def test_the_strict_parser_refuses_a_repeated_charset() -> None:
    with pytest.raises(AssertionError, match="duplicate parameter"):
        strict_content_type("text/plain; charset=utf-8; charset=utf-8")


# --- item 19: probes need no token ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["private", "public"])
def test_probes_answer_without_a_token(request: pytest.FixtureRequest, mode: str) -> None:
    served: Served = request.getfixturevalue(mode)
    assert served.client.get("/healthz").json() == {"status": "ok"}
    ready = served.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert ready.json()["tree_size"] >= 1


@pytest.mark.parametrize("headers", [*BAD_CREDENTIALS.values(), None], ids=[*BAD_CREDENTIALS, "auditor"])
def test_probes_ignore_whatever_credential_a_prober_sends(
    private: Served, headers: dict[str, str] | None
) -> None:
    # A probe reveals nothing, so it checks nothing: it is no oracle for guessing tokens either.
    sent = headers if headers is not None else bearer(private.auditor)
    assert private.client.get("/healthz", headers=sent).json() == {"status": "ok"}
    assert private.client.get("/readyz", headers=sent).status_code == 200


# --- item 19: the log stays private by default -----------------------------------------------------


@pytest.mark.parametrize("path", LOG_ROUTES + PRIVATE_ROUTES)
def test_by_default_every_other_route_needs_a_token(private: Served, path: str) -> None:
    check_error(private.client.get(path), 401)
    assert private.client.get(path, headers=bearer(private.auditor)).status_code not in {401, 403, 500}


@pytest.mark.parametrize("headers", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
def test_by_default_a_bad_credential_on_a_log_route_is_401(private: Served, headers: dict[str, str]) -> None:
    for path in LOG_ROUTES:
        check_error(private.client.get(path, headers=headers), 401)


# --- item 19: --public-log opens /checkpoint and /tile/* and nothing else -----------------------------


def test_public_log_serves_checkpoint_and_tiles_without_a_token(public: Served) -> None:
    checkpoint = public.client.get("/checkpoint")
    assert checkpoint.status_code == 200, checkpoint.text
    assert opened(checkpoint.text, public.ledger).size >= 1
    for path in LOG_ROUTES[1:]:
        response = public.client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.content
    # With a valid token they answer just the same.
    assert public.client.get("/checkpoint", headers=bearer(public.auditor)).text == checkpoint.text


@pytest.mark.parametrize("path", PRIVATE_ROUTES)
def test_public_log_keeps_every_other_route_private(public: Served, path: str) -> None:
    check_error(public.client.get(path), 401)
    assert public.client.get(path, headers=bearer(public.auditor)).status_code not in {401, 403, 500}


def test_public_log_keeps_appends_private(public: Served) -> None:
    check_error(public.client.post("/v1/entries", content=b"{}"), 401)
    check_error(public.client.post("/v1/entries/batch", content=b"{}"), 401)
    check_error(public.client.post("/v1/gates/evaluate", content=b"{}"), 401)


@pytest.mark.parametrize("headers", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
def test_public_log_refuses_a_bad_credential_instead_of_ignoring_it(
    public: Served, headers: dict[str, str]
) -> None:
    for path in LOG_ROUTES:
        body = check_error(public.client.get(path, headers=headers), 401)
        assert "token" in str(body["detail"]).lower()


def test_settings_read_public_log_from_the_environment(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVLEDGER_DSN", ledger.dsn)
    monkeypatch.setenv("EVLEDGER_KEY", str(ledger.key_path))
    monkeypatch.delenv("EVLEDGER_PUBLIC_LOG", raising=False)
    assert settings_from_env().public_log is False
    monkeypatch.setenv("EVLEDGER_PUBLIC_LOG", "1")
    assert settings_from_env().public_log is True


# --- item 19: the OpenAPI document says who needs what ------------------------------------------------

BEARER = [{"bearer": []}]


def _operations(document: dict[str, object]) -> dict[tuple[str, str], dict[str, object]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {
        (path, method): operation
        for path, item in paths.items()
        for method, operation in item.items()
        if method in {"get", "post"}
    }


@pytest.mark.parametrize("mode", ["private", "public"])
def test_openapi_declares_bearer_auth_and_the_open_routes(request: pytest.FixtureRequest, mode: str) -> None:
    served: Served = request.getfixturevalue(mode)
    document = served.client.get("/schema/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert document["security"] == BEARER
    operations = _operations(document)
    assert len(operations) > 15
    open_log = [{}, *BEARER] if mode == "public" else BEARER
    for (path, method), operation in operations.items():
        # The token is the `bearer` scheme's: OpenAPI 3.1 ignores a header parameter named Authorization.
        assert not any(p["name"].lower() == "authorization" for p in operation.get("parameters", [])), path
        if path in PROBES:
            assert operation["security"] == [], path
            assert "401" not in operation["responses"], path
        elif path in {"/checkpoint", "/tile/{path}"}:
            assert operation.get("security", BEARER) == open_log, path
            assert "401" in operation["responses"], path
        else:
            assert operation.get("security", BEARER) == BEARER, (method, path)
            assert "401" in operation["responses"], (method, path)
