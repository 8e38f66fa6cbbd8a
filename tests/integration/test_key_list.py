"""`evledger key list` and passphrase-protected keys against a live `evledger serve` (issue #12).

One ledger and one server for the module. An approver's key is made with
`evledger keygen --passphrase`, registered as an admin with the ledger key, and signs
`evledger key register` and `evledger key revoke` with EVLEDGER_KEY_PASSPHRASE (through
`cli.settings.load_signer`, as every signing command); `evledger key list` then shows the
registered and the revoked keys.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ledger_harness import Ledger, evidence, live_server, register, to_json, token
from service_support import scratch_ledger
from typer.testing import CliRunner

from cli.main import app
from cli.settings import ENV_KEY_PASSPHRASE
from ledger.core.key_files import parse_encrypted_key
from ledger.core.keys import SignerKey

PASSPHRASE = "approver passphrase"  # noqa: S105 - a test passphrase
runner = CliRunner()


@dataclass(frozen=True)
class World:
    ledger: Ledger
    url: str
    admin: str
    auditor: str
    directory: Path


def cli(*args: object, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def world(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("key-list")
    with scratch_ledger(pg_server_dsn, directory) as ledger, live_server(ledger) as url:
        yield World(ledger, url, token(ledger.dsn, "admin"), token(ledger.dsn, "auditor"), directory)


def post(world: World, body: bytes) -> None:
    import httpx  # noqa: PLC0415 - only this helper talks HTTP directly

    response = httpx.post(
        f"{world.url}/v1/entries", content=body, headers={"Authorization": f"Bearer {world.admin}"}
    )
    assert response.status_code == 201, response.text


def test_encrypted_admin_key_signs_and_key_list_shows_registered_and_revoked(world: World) -> None:
    env = {ENV_KEY_PASSPHRASE: PASSPHRASE}
    out = world.directory / "approver"
    made = cli("keygen", "people.test/approver", "--out", out, "--passphrase", env=env)
    assert made.exit_code == 0, made.output
    key_path = out.with_suffix(".key")
    keyid = parse_encrypted_key(key_path.read_text()).keyid
    # the ledger key makes the approver an admin; the approver's encrypted key then signs
    registered = cli(
        "key", "register", out.with_suffix(".pub"), "--owner", "Ann Approver", "--role", "admin",
        "--key", world.ledger.key_path, "--token", world.admin, "--server", world.url,
    )  # fmt: skip
    assert registered.exit_code == 0, registered.output

    colleague, leaver = SignerKey.generate("people.test/colleague"), SignerKey.generate("people.test/leaver")
    post(world, to_json(register(world.ledger.signer, leaver, ["qa"], ["ivd-analyzer"])))
    pub = world.directory / "colleague.pub"
    pub.write_text(colleague.verifier().format() + "\n")
    signed = cli(
        "key", "register", pub, "--owner", "Carl Colleague", "--role", "qa", "--product", "ivd-analyzer",
        "--key", key_path, "--token", world.admin, "--server", world.url, env=env,
    )  # fmt: skip
    assert signed.exit_code == 0, signed.output
    revoked = cli(
        "key", "revoke", leaver.keyid, "--reason", "left the company",
        "--key", key_path, "--token", world.admin, "--server", world.url, env=env,
    )  # fmt: skip
    assert revoked.exit_code == 0, revoked.output

    listed = cli("key", "list", "--token", world.auditor, "--server", world.url, "--json")
    assert listed.exit_code == 0, listed.output
    keys = {k["keyid"]: k for k in json.loads(listed.stdout)["keys"]}
    assert keys[keyid]["owner"] == "Ann Approver"
    assert keys[keyid]["roles"] == ["admin"]
    assert keys[keyid]["revoked_at"] is None
    assert keys[colleague.keyid]["products"] == ["ivd-analyzer"]
    assert keys[leaver.keyid]["revoked_at"]["reason"] == "left the company"
    assert keys[world.ledger.signer.keyid]["roles"] == ["admin"]

    table = cli("key", "list", "--token", world.auditor, "--server", world.url)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["KEYID", "OWNER", "ROLES", "PRODUCTS", "EXPIRES", "REGISTERED", "REVOKED"]
    (leaver_line,) = [line for line in lines if line.startswith(leaver.keyid)]
    assert "left the company" in leaver_line
    (colleague_line,) = [line for line in lines if line.startswith(colleague.keyid)]
    assert "Carl Colleague" in colleague_line
    assert "ivd-analyzer" in colleague_line
    assert colleague_line.rstrip().endswith("-")  # not revoked
    assert " never " in colleague_line  # registered without an expiry


def test_encrypted_key_with_a_wrong_passphrase_appends_nothing(world: World) -> None:
    env = {ENV_KEY_PASSPHRASE: PASSPHRASE}
    out = world.directory / "other"
    assert cli("keygen", "people.test/other", "--out", out, "--passphrase", env=env).exit_code == 0
    pub = world.directory / "x.pub"
    pub.write_text(SignerKey.generate("people.test/x").verifier().format() + "\n")
    result = cli(
        "key", "register", pub, "--owner", "X", "--role", "qa",
        "--key", out.with_suffix(".key"), "--token", world.admin, "--server", world.url,
        env={ENV_KEY_PASSPHRASE: "not the passphrase"},
    )  # fmt: skip
    assert result.exit_code == 2
    assert "wrong passphrase for key people.test/other+" in result.output
    assert "Traceback" not in result.output
    listed = cli("key", "list", "--token", world.auditor, "--server", world.url, "--json")
    assert "people.test/x+" not in listed.stdout


def test_key_list_with_a_bad_token_exits_2(world: World) -> None:
    result = cli("key", "list", "--token", "not-a-token", "--server", world.url)
    assert result.exit_code == 2
    assert "401" in result.output
    as_json = cli("key", "list", "--token", "not-a-token", "--server", world.url, "--json")
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout)["error"] == "unauthenticated"


def _register_expiring(world: World, name: str, expires: str) -> tuple[SignerKey, Any]:
    key = SignerKey.generate(f"people.test/{name}")
    pub = world.directory / f"{name}.pub"
    pub.write_text(key.verifier().format() + "\n")
    result = cli(
        "key", "register", pub, "--owner", f"Owner {name}", "--role", "appender", "--expires", expires,
        "--key", world.ledger.key_path, "--token", world.admin, "--server", world.url,
    )  # fmt: skip
    return key, result


def test_a_key_signs_until_its_expiry_and_is_refused_after_it_with_a_clear_error(world: World) -> None:
    import httpx  # noqa: PLC0415 - only this test talks HTTP directly

    soon = (datetime.now(UTC) + timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    key, result = _register_expiring(world, "short-lived", soon)
    assert result.exit_code == 0, result.output
    headers = {"Authorization": f"Bearer {world.admin}"}
    before = httpx.post(f"{world.url}/v1/entries", content=to_json(evidence(key, n=1)), headers=headers)
    assert before.status_code == 201, before.text  # before its expiry the key signs
    time.sleep(max(0.0, (datetime.fromisoformat(soon) - datetime.now(UTC)).total_seconds()) + 0.2)
    after = httpx.post(f"{world.url}/v1/entries", content=to_json(evidence(key, n=2)), headers=headers)
    assert after.status_code == 422, after.text
    detail = after.json()["detail"]
    assert f"{key.keyid} expired at " in detail
    assert "register a new key for Owner short-lived" in detail

    listed = cli("key", "list", "--token", world.auditor, "--server", world.url, "--json")
    keys = {k["keyid"]: k for k in json.loads(listed.stdout)["keys"]}
    assert keys[key.keyid]["expires"] == soon[:23] + "Z"  # stated in the ledger's own time format


@pytest.mark.parametrize(
    ("expires", "complaint"),
    [
        ("2001-01-01", "is already past"),
        ("next tuesday", "is not an RFC 3339 date-time"),
        ("2031-02-30", "is not an RFC 3339 date-time"),
        ("2031-01-01T00:00:00", "is not an RFC 3339 date-time"),  # no zone
    ],
)
def test_key_register_refuses_an_expiry_that_is_past_or_malformed(
    world: World, expires: str, complaint: str
) -> None:
    key, result = _register_expiring(world, f"bad-{abs(hash(expires))}", expires)
    assert result.exit_code == 2, result.output
    assert complaint in result.output
    listed = cli("key", "list", "--token", world.auditor, "--server", world.url, "--json")
    assert key.keyid not in listed.stdout  # nothing was registered


def test_a_date_means_midnight_utc(world: World) -> None:
    key, result = _register_expiring(world, "dated", "2031-06-30")
    assert result.exit_code == 0, result.output
    listed = cli("key", "list", "--token", world.auditor, "--server", world.url, "--json")
    keys = {k["keyid"]: k for k in json.loads(listed.stdout)["keys"]}
    assert keys[key.keyid]["expires"] == "2031-06-30T00:00:00.000Z"
