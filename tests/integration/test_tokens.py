"""API tokens have a life: `evledger token create | list | revoke`, expiry, and revocation within a second.

The commands run in-process (CliRunner) against a real database; the service runs
in-process for the per-request rules, and as a real two-worker `evledger serve` for
the promise that matters most: once `token revoke` returns, every worker refuses the
token within TOKEN_CACHE_SECONDS.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from ledger_harness import Ledger, evidence, live_server
from service_support import bearer, check_error, scratch_ledger, service
from typer.testing import CliRunner

from cli.main import app
from cli.token_cmd import parse_expiry
from ledger.core.encoding import format_time
from ledger.errors import InputError
from ledger.service.auth import TOKEN_CACHE_SECONDS
from ledger.storage.protocol import TokenRow

runner = CliRunner()
REVOCATION_PROMISE = 1.0  # seconds from `token revoke` returning to every worker refusing the token
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# ledger_harness.live_server leaves the server's stdout pipe to the garbage collector.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <_io.FileIO:pytest.PytestUnraisableExceptionWarning"
)


@pytest.fixture(scope="module")
def ledger(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("tokens")) as made:
        yield made


def evledger(ledger: Ledger, *args: str) -> tuple[int, dict[str, Any]]:
    """Run `evledger token ... --json --dsn` in-process; its exit code and its one JSON object."""
    result = runner.invoke(app, ["token", *args, "--json", "--dsn", ledger.dsn])
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, (result.exit_code, result.stdout, result.stderr)
    return result.exit_code, json.loads(lines[0])


def created(ledger: Ledger, *args: str) -> dict[str, Any]:
    code, output = evledger(ledger, "create", *args)
    assert code == 0, output
    return output


def token_count(ledger: Ledger) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(ledger.dsn)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM api_tokens"))
        finally:
            await conn.close()

    return asyncio.run(count())


def owner_sql(ledger: Ledger, sql: str, *args: object) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(ledger.dsn)
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.close()

    asyncio.run(run())


def listed(ledger: Ledger) -> dict[int, dict[str, Any]]:
    code, output = evledger(ledger, "list")
    assert code == 0, output
    return {item["id"]: item for item in output["tokens"]}


# --- create and list ---------------------------------------------------------------------------------


def test_create_prints_id_and_token_and_list_shows_everything_but_the_token(ledger: Ledger) -> None:
    made = created(ledger, "--role", "appender", "--product", "ivd", "--name", "ci main", "--expires", "90d")
    assert made["token"].startswith("evl_")
    assert (made["role"], made["products"], made["name"]) == ("appender", ["ivd"], "ci main")
    expires = datetime.fromisoformat(made["expires"])
    assert timedelta(days=89, hours=23) < expires - datetime.now(UTC) <= timedelta(days=90)

    item = listed(ledger)[made["id"]]
    assert item == {
        "id": made["id"],
        "name": "ci main",
        "role": "appender",
        "products": ["ivd"],
        "created": item["created"],
        "expires": made["expires"],
        "revoked": None,
        "revoked_reason": None,
        "status": "active",
    }
    text = runner.invoke(app, ["token", "list", "--dsn", ledger.dsn])
    assert text.exit_code == 0, text.stderr
    header, *rows = text.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "ROLE", "PRODUCTS", "CREATED", "EXPIRES", "STATUS"]
    row = next(r for r in rows if r.startswith(f"{made['id']} "))
    assert "ci main" in row
    assert "appender" in row
    assert made["expires"] in row
    assert row.endswith("active")
    assert made["token"] not in text.stdout


def test_create_as_text_ends_with_the_token(ledger: Ledger) -> None:
    result = runner.invoke(app, ["token", "create", "--role", "auditor", "--dsn", ledger.dsn])
    assert result.exit_code == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("token ")
    assert "role auditor (all products)" in last
    assert last.split()[-1].startswith("evl_")


def test_expiry_takes_an_rfc3339_time_with_a_zone(ledger: Ledger) -> None:
    made = created(ledger, "--role", "auditor", "--expires", "2099-01-31T00:00:00+01:00")
    assert made["expires"] == "2099-01-30T23:00:00.000Z"
    assert listed(ledger)[made["id"]]["expires"] == "2099-01-30T23:00:00.000Z"


BAD_CREATE = {
    "unknown_role": (["--role", "root"], "role must be one of appender, auditor, admin"),
    "bad_duration_unit": (["--role", "auditor", "--expires", "5x"], "--expires must be"),
    "zero_duration": (["--role", "auditor", "--expires", "0d"], "--expires must be"),
    "negative_duration": (["--role", "auditor", "--expires", "-1d"], "--expires must be"),
    "empty_expiry": (["--role", "auditor", "--expires", ""], "--expires must be"),
    "time_without_zone": (["--role", "auditor", "--expires", "2099-01-31T00:00:00"], "--expires must be"),
    "date_only": (["--role", "auditor", "--expires", "2099-01-31"], "--expires must be"),
    "expiry_in_the_past": (["--role", "auditor", "--expires", "2001-01-01T00:00:00Z"], "not in the future"),
    "duration_too_long": (["--role", "auditor", "--expires", "9999999d"], "--expires must be"),
    "name_with_newline": (["--role", "auditor", "--name", "a\nb"], "printable"),
    "name_too_long": (["--role", "auditor", "--name", "n" * 201], "1 to 200"),
    "empty_name": (["--role", "auditor", "--name", ""], "1 to 200"),
    "empty_product": (["--role", "appender", "--product", ""], "product name"),
}


@pytest.mark.parametrize(("args", "message"), BAD_CREATE.values(), ids=BAD_CREATE.keys())
def test_bad_create_exits_2_and_creates_nothing(ledger: Ledger, args: list[str], message: str) -> None:
    before = token_count(ledger)
    code, output = evledger(ledger, "create", *args)
    assert code == 2, output
    assert output["ok"] is False
    assert message in output["detail"]
    assert token_count(ledger) == before


def test_create_without_a_role_is_a_usage_error() -> None:
    result = runner.invoke(app, ["token", "create"])
    assert result.exit_code == 2
    assert "--role" in result.stderr


# --- revoke ------------------------------------------------------------------------------------------


def test_revoke_marks_the_token_and_list_shows_when_and_why(ledger: Ledger) -> None:
    made = created(ledger, "--role", "appender", "--name", "leaked")
    code, output = evledger(ledger, "revoke", str(made["id"]), "--reason", "printed in a CI log")
    assert code == 0, output
    assert (output["status"], output["revoked_reason"]) == ("revoked", "printed in a CI log")
    item = listed(ledger)[made["id"]]
    assert item["status"] == "revoked"
    assert item["revoked"] == output["revoked"]
    assert item["revoked_reason"] == "printed in a CI log"

    again, second = evledger(ledger, "revoke", str(made["id"]), "--reason", "another reason")
    assert again == 2
    assert "already revoked" in second["detail"]
    assert "printed in a CI log" in second["detail"]
    assert listed(ledger)[made["id"]]["revoked_reason"] == "printed in a CI log"  # the first one stands


BAD_REVOKE = {
    "unknown_id": (["987654"], "no token has id 987654"),
    "id_zero": (["0"], "no token has id 0"),
    "id_past_bigint": ([str(1 << 63)], "no token has id"),
    "empty_reason": (["1", "--reason", ""], "1 to 500"),
    "reason_with_newline": (["1", "--reason", "a\nb"], "printable"),
    "reason_too_long": (["1", "--reason", "r" * 501], "1 to 500"),
}


@pytest.mark.parametrize(("args", "message"), BAD_REVOKE.values(), ids=BAD_REVOKE.keys())
def test_bad_revoke_exits_2_and_revokes_nothing(ledger: Ledger, args: list[str], message: str) -> None:
    before = listed(ledger)
    full = args if "--reason" in args else [*args, "--reason", "test"]
    code, output = evledger(ledger, "revoke", *full)
    assert code == 2, output
    assert message in output["detail"]
    assert listed(ledger) == before


@pytest.mark.parametrize(
    "args", [["abc", "--reason", "x"], ["1"], []], ids=["not_a_number", "no_reason", "no_id"]
)
def test_revoke_usage_errors_exit_2(args: list[str]) -> None:
    assert runner.invoke(app, ["token", "revoke", *args]).exit_code == 2


# --- the database keeps the record -------------------------------------------------------------------

RECORD_REWRITES = {
    "delete": "DELETE FROM api_tokens WHERE id = $1",
    "truncate": "TRUNCATE api_tokens CASCADE",
    "regrant": "UPDATE api_tokens SET role = 'admin' WHERE id = $1",
    "rescope": "UPDATE api_tokens SET products = '{other}' WHERE id = $1",
    "unrevoke": "UPDATE api_tokens SET revoked_at = NULL, revoked_reason = NULL WHERE id = $1",
    "rewrite_reason": "UPDATE api_tokens SET revoked_reason = 'nothing happened' WHERE id = $1",
}


@pytest.mark.parametrize("sql", RECORD_REWRITES.values(), ids=RECORD_REWRITES.keys())
def test_even_the_owner_cannot_rewrite_the_token_record(ledger: Ledger, sql: str) -> None:
    made = created(ledger, "--role", "auditor")
    assert evledger(ledger, "revoke", str(made["id"]), "--reason", "test")[0] == 0
    before = listed(ledger)
    args = (made["id"],) if "$1" in sql else ()
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="evidence-ledger: api token"):
        owner_sql(ledger, sql, *args)
    assert listed(ledger) == before


# --- the service honours revocation and expiry --------------------------------------------------------


def test_a_token_that_used_an_idempotency_key_is_revoked_and_refused(ledger: Ledger) -> None:
    made = created(ledger, "--role", "admin", "--name", "ci with retries")
    headers = {**bearer(made["token"]), "Idempotency-Key": "job-1"}
    body = msgspec.json.encode(evidence(ledger.signer, n=41))
    with service(ledger) as client:
        first = client.post("/v1/entries", content=body, headers=headers)
        assert first.status_code == 201, first.text
        # The foreign key from idempotency_keys once made such a token impossible to delete.
        code, output = evledger(ledger, "revoke", str(made["id"]), "--reason", "rotated")
        assert code == 0, output
    with service(ledger) as client:  # a fresh process: no cached row
        refused = check_error(client.post("/v1/entries", content=body, headers=headers), 401)
        assert "revoked" in str(refused["detail"])
        check_error(client.get("/v1/checkpoint", headers=headers), 401)


def test_an_expired_token_is_refused_from_its_expiry_on(ledger: Ledger) -> None:
    made = created(ledger, "--role", "auditor", "--expires", "3s")
    expires = datetime.fromisoformat(made["expires"])
    with service(ledger) as client:
        assert client.get("/v1/checkpoint", headers=bearer(made["token"])).status_code == 200
        while datetime.now(UTC) < expires:
            time.sleep(0.05)
        body = check_error(client.get("/v1/checkpoint", headers=bearer(made["token"])), 401)
        assert f"expired at {format_time(expires)}" in str(body["detail"])
    assert listed(ledger)[made["id"]]["status"] == "expired"


def test_revocation_reaches_every_worker_within_the_cache_period(ledger: Ledger) -> None:
    """After `evledger token revoke` returns, no request sent a second later succeeds, on any worker.

    Each request opens its own connection, so the kernel spreads them over both workers
    (SO_REUSEPORT hashes each connection); forty requests all landing on one worker has
    odds of 2^-39.
    """
    assert TOKEN_CACHE_SECONDS <= REVOCATION_PROMISE
    made = created(ledger, "--role", "auditor", "--name", "doomed")
    with live_server(ledger, workers=2) as url:

        def status() -> int:
            return httpx.get(url + "/v1/checkpoint", headers=bearer(made["token"]), timeout=10).status_code

        assert [status() for _ in range(40)] == [200] * 40  # every worker has the row cached
        cli = Path(sys.executable).with_name("evledger")
        revoke = [str(cli), "token", "revoke", str(made["id"]), "--reason", "test", "--dsn", ledger.dsn]
        subprocess.run(revoke, check=True, capture_output=True, timeout=60)  # noqa: S603 - our CLI
        returned = time.monotonic()
        late: list[int] = []
        while time.monotonic() < returned + REVOCATION_PROMISE + 3.0:
            sent = time.monotonic()
            code = status()
            if sent >= returned + REVOCATION_PROMISE:
                late.append(code)
        assert len(late) >= 20, "too few requests after the cache period to judge"
        assert set(late) == {401}, f"{late.count(200)} of {len(late)} late requests still succeeded"
        body = httpx.get(url + "/v1/checkpoint", headers=bearer(made["token"]), timeout=10).json()
        assert "revoked" in body["detail"]


# --- pure parts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delta"),
    [("45s", timedelta(seconds=45)), ("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)),
     ("90d", timedelta(days=90)), ("2w", timedelta(weeks=2))],
)  # fmt: skip
def test_parse_expiry_durations(text: str, delta: timedelta) -> None:
    assert parse_expiry(text, NOW) == NOW + delta


def test_parse_expiry_absolute_times_keep_their_instant() -> None:
    assert parse_expiry("2027-01-31T00:00:00Z", NOW) == datetime(2027, 1, 31, tzinfo=UTC)
    assert parse_expiry("2027-01-31T01:00:00+01:00", NOW) == datetime(2027, 1, 31, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "d", "1.5d", "1 d", "1D", "1y", "01d", "tomorrow", "2027-01-31"])
def test_parse_expiry_refuses_anything_else(text: str) -> None:
    with pytest.raises(InputError, match="--expires must be"):
        parse_expiry(text, NOW)


def test_token_refusal_names_revocation_before_expiry() -> None:
    past, future = NOW - timedelta(seconds=1), NOW + timedelta(seconds=1)
    assert TokenRow(1, "auditor", ()).refusal(NOW) is None
    assert TokenRow(1, "auditor", (), expires_at=future).refusal(NOW) is None
    assert (
        TokenRow(1, "auditor", (), expires_at=NOW).refusal(NOW)
        == "this token expired at 2026-03-01T12:00:00.000Z"
    )
    revoked = TokenRow(1, "auditor", (), expires_at=past, revoked_at=past).refusal(NOW)
    assert revoked == "this token was revoked at 2026-03-01T11:59:59.000Z"
