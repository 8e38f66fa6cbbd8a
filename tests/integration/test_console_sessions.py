"""The web console's sessions and first pages against a live server (issue #15, docs/console.md).

Signing in turns an API token into an HttpOnly, SameSite=Strict session cookie; every page
but sign-in needs a live session and redirects to sign-in without one; sign-out needs the
session's CSRF secret and the console's own origin; a revoked token ends its sessions; the
pages escape what the ledger holds and load nothing from another origin.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

import httpx
import pytest
from console_support import console_client, csrf_of
from ledger_harness import Ledger, live_server, token
from release_support import PRODUCT, set_up
from service_support import scratch_ledger
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


@dataclass(frozen=True)
class Console:
    url: str
    ledger: Ledger
    auditor: str
    appender: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, follow_redirects=False)

    def signed_in(self, secret: str | None = None) -> AbstractContextManager[httpx.Client]:
        return console_client(self.url, secret or self.auditor)


@pytest.fixture(scope="module")
def console(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with (
        scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("console")) as ledger,
        live_server(ledger) as url,
    ):
        yield Console(url, ledger, token(ledger.dsn, "auditor"), token(ledger.dsn, "appender"))


def test_signing_in_sets_an_httponly_strict_cookie_and_leads_to_the_releases(console: Console) -> None:
    with console.client() as client:
        answer = client.post("/ui/login", data={"token": console.auditor, "next": "/ui/releases?state=open"})
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/ui/releases?state=open"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("evl_session=")
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie or "samesite=strict" in cookie.lower()
        assert "Path=/ui" in cookie
        assert console.auditor not in cookie  # the token never goes back to the browser
        page = client.get("/ui/releases")
        assert page.status_code == 200, page.text
        assert "Signed in: auditor" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")


@pytest.mark.parametrize("secret", ["", "evl_not-a-token", "x" * 300])
def test_a_bad_token_gets_the_form_again_with_the_reason_and_no_cookie(console: Console, secret: str) -> None:
    with console.client() as client:
        answer = client.post("/ui/login", data={"token": secret})
        assert answer.status_code == 401, answer.text
        assert "set-cookie" not in answer.headers
        assert 'role="alert"' in answer.text
        assert "Traceback" not in answer.text


def test_an_oversized_sign_in_is_refused(console: Console) -> None:
    with console.client() as client:
        answer = client.post("/ui/login", data={"token": "x" * 10_000})
        assert answer.status_code == 413


def test_a_page_without_a_session_redirects_to_sign_in_and_back(console: Console) -> None:
    with console.client() as client:
        for path in ("/ui/releases?product=a", "/ui/releases/a/1"):
            answer = client.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/ui/login?next=%2Fui%2Freleases")
        client.cookies.set("evl_session", "forged-session-id", path="/ui")
        assert client.get("/ui/releases").status_code == 303


def test_after_sign_in_only_console_paths_are_followed(console: Console) -> None:
    with console.client() as client:
        for target in ("https://evil.example/", "//evil.example/x", "/v1/keys", "/ui\\..\\x"):
            answer = client.post("/ui/login", data={"token": console.auditor, "next": target})
            assert answer.headers["location"] == "/ui/releases", target


def test_signing_out_needs_the_csrf_secret_and_this_origin_then_ends_the_session(console: Console) -> None:
    with console.signed_in() as client:
        csrf = csrf_of(client.get("/ui/releases").text)
        assert client.post("/ui/logout", data={"csrf": "wrong"}).status_code == 403
        assert client.post("/ui/logout", data={}).status_code == 403
        foreign = client.post("/ui/logout", data={"csrf": csrf}, headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403
        cross = client.post("/ui/logout", data={"csrf": csrf}, headers={"Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403
        assert client.get("/ui/releases").status_code == 200  # none of those ended it
        session = client.cookies.get("evl_session")
        out = client.post("/ui/logout", data={"csrf": csrf})
        assert out.status_code == 303
        assert out.headers["location"] == "/ui/login"
    with console.client() as replay:  # the old cookie, kept by an attacker, no longer works
        replay.cookies.set("evl_session", session or "", path="/ui")
        assert replay.get("/ui/releases").status_code == 303


def test_a_revoked_token_ends_its_sessions(console: Console) -> None:
    secret = token(console.ledger.dsn, "auditor")
    with console.signed_in(secret) as client:
        assert client.get("/ui/releases").status_code == 200
        listed = runner.invoke(app, ["token", "list", "--dsn", console.ledger.dsn, "--json"])
        assert listed.exit_code == 0, listed.stdout
        newest = max(t["id"] for t in json.loads(listed.stdout)["tokens"])
        revoked = runner.invoke(
            app, ["token", "revoke", str(newest), "--reason", "left", "--dsn", console.ledger.dsn, "--json"]
        )
        assert revoked.exit_code == 0, revoked.stdout
        assert client.get("/ui/releases").status_code == 303


def test_the_release_pages_show_the_ledger_and_escape_what_it_holds(console: Console) -> None:
    product, version = PRODUCT, "1.0<script>"  # a version is the ledger's to hold, the page's to escape
    set_up(console.url, console.ledger, token(console.ledger.dsn, "admin"), console.appender, version)
    with console.signed_in() as client:
        listing = client.get("/ui/releases", params={"product": product})
        assert listing.status_code == 200
        assert f"/ui/releases/{product}/1.0%3Cscript%3E" in listing.text
        assert "1.0&lt;script&gt;" in listing.text
        page = client.get(f"/ui/releases/{product}/1.0%3Cscript%3E")
        assert page.status_code == 200, page.text
        assert "Timeline" in page.text
        assert "Compliance" in page.text
        assert "<script" not in page.text  # nothing executes: no inline script, nothing from elsewhere
        missing = client.get("/ui/releases/no-such/1")
        assert missing.status_code == 404
        assert "Traceback" not in missing.text
        assert client.get("/ui/static/console.css").status_code == 200
