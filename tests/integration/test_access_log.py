"""The access log (docs/operations.md#access-log): one line per request on `evledger.access`.

Who (the token's id and role, `- -` without one), what (method and path, query values
dropped), the status and the time taken; never a bearer token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import asyncpg
import pytest
from ledger_harness import Ledger, evidence, register, to_json, token
from litestar.testing import TestClient
from service_support import bearer, scratch_ledger, service

from ledger.core.keys import SignerKey
from ledger.service.access_log import LOGGER_NAME, enabled
from ledger.storage.migrate import hash_token


@pytest.fixture(scope="module")
def ledger(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("access-log")) as made:
        yield made


@pytest.fixture(scope="module")
def client(ledger: Ledger) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with service(ledger, access_log=True) as made:
        yield made


def token_id(ledger: Ledger, secret: str) -> int:
    async def read() -> int:
        conn = await asyncpg.connect(ledger.dsn)
        try:
            sql = "SELECT id FROM api_tokens WHERE token_hash = $1"
            found: int = await conn.fetchval(sql, hash_token(secret))
        finally:
            await conn.close()
        return found

    return asyncio.run(read())


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == LOGGER_NAME]


def fields(line: str) -> tuple[str, str, str, str, int]:
    """(client, token id, role, "METHOD path", status) of one line; its duration is checked to be a number."""
    client, token_id, role, rest = line.split(" ", 3)
    request, _, tail = rest.rpartition('" ')
    status, duration = tail.split(" ")
    assert duration.endswith("ms")
    assert float(duration.removesuffix("ms")) >= 0
    return client, token_id, role, request.removeprefix('"'), int(status)


def test_an_append_logs_method_path_status_and_the_token(
    client: TestClient,  # type: ignore[type-arg]
    ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin, appender = token(ledger.dsn, "admin"), token(ledger.dsn, "appender", ["prod"])
    pipeline = SignerKey.generate("pipeline.test/access")
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        registration = to_json(register(ledger.signer, pipeline, ["builder"], ["prod"]))
        registered = client.post("/v1/entries", content=registration, headers=bearer(admin))
        appended = client.post(
            "/v1/entries", content=to_json(evidence(pipeline, product="prod")), headers=bearer(appender)
        )
    assert (registered.status_code, appended.status_code) == (201, 201), (registered.text, appended.text)
    lines = [fields(line) for line in access_lines(caplog)]
    assert [line[1:] for line in lines] == [
        (str(token_id(ledger, admin)), "admin", "POST /v1/entries", 201),
        (str(token_id(ledger, appender)), "appender", "POST /v1/entries", 201),
    ]
    for line in access_lines(caplog):
        assert admin not in line
        assert appender not in line


def test_a_route_behind_the_access_dependency_logs_its_token(
    client: TestClient,  # type: ignore[type-arg]
    ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    auditor = token(ledger.dsn, "auditor")
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        assert client.get("/v1/entries/0", headers=bearer(auditor)).status_code == 200
    [line] = access_lines(caplog)
    assert fields(line)[1:] == (str(token_id(ledger, auditor)), "auditor", "GET /v1/entries/0", 200)


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer evl_never-issued-secret"}, {"Authorization": "Basic c2VjcmV0"}]
)
def test_a_refused_request_logs_no_one_and_no_credential(
    client: TestClient,  # type: ignore[type-arg]
    caplog: pytest.LogCaptureFixture,
    headers: dict[str, str],
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        response = client.post("/v1/entries", content=b"{}", headers=headers)
    assert response.status_code == 401
    [line] = access_lines(caplog)
    assert fields(line)[1:] == ("-", "-", "POST /v1/entries", 401)
    assert "never-issued" not in caplog.text
    assert "c2VjcmV0" not in caplog.text


def test_query_values_are_dropped_and_their_names_kept(
    client: TestClient,  # type: ignore[type-arg]
    ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    auditor = token(ledger.dsn, "auditor")
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        client.get("/v1/search?product=secret-product&version=9.9", headers=bearer(auditor))
    [line] = access_lines(caplog)
    assert fields(line)[3] == "GET /v1/search?product&version"
    assert "secret-product" not in line


def test_the_router_answers_are_logged_too(
    client: TestClient,  # type: ignore[type-arg]
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        assert client.get("/no/such/route").status_code == 404
        assert client.get("/healthz").status_code == 200
    assert [fields(line)[1:] for line in access_lines(caplog)] == [
        ("-", "-", "GET /no/such/route", 404),
        ("-", "-", "GET /healthz", 200),
    ]


def test_a_path_that_would_break_the_line_is_escaped(
    client: TestClient,  # type: ignore[type-arg]
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        client.get("/no/such/%0Aforged%22line")
    [line] = access_lines(caplog)
    assert "\n" not in line
    assert '/no/such/\\nforged\\"line' in line


def test_nothing_is_logged_when_the_logger_is_above_info(
    client: TestClient,  # type: ignore[type-arg]
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        assert client.get("/healthz").status_code == 200
    assert access_lines(caplog) == []


@pytest.mark.parametrize(
    ("value", "on"),
    [(None, False), ("1", True), ("yes", True), ("0", False), ("off", False), ("false", False)],
)
def test_the_environment_turns_it_on(value: str | None, on: bool) -> None:
    assert enabled({} if value is None else {"EVLEDGER_ACCESS_LOG": value}) is on


def test_a_service_started_without_the_setting_logs_no_request(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    """Off by default: it costs about a tenth of the append rate (ledger.service.access_log.enabled)."""
    with service(ledger) as plain, caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        assert plain.get("/healthz").status_code == 200
    assert access_lines(caplog) == []
