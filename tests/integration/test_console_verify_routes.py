"""The console's verify page and the dossier it fetches, over HTTP (issue #15, docs/console.md).

`GET /ui/releases/P/V/dossier` answers what `GET /v1/releases/P/V/dossier` answers, for a signed-in
person only, within the token's products; its refusals are the API's JSON errors (the page's
script reads them). `GET /ui/verify?product=P&version=V` is the page that fetches it. The browser
side (verifying what is fetched) is tests/integration/test_console_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from console_support import console_client
from ledger_harness import Ledger, live_server, token
from release_support import PRODUCT, set_up
from service_support import scratch_ledger

from ledger.verify.dossier import decode_dossier, verify_dossier

VERSION = "3.1.0"
DOSSIER = f"/ui/releases/{PRODUCT}/{VERSION}/dossier"


@dataclass(frozen=True)
class Site:
    url: str
    ledger: Ledger
    auditor: str

    def signed_in(self, secret: str | None = None) -> AbstractContextManager[httpx.Client]:
        return console_client(self.url, secret or self.auditor, start="/ui/verify")

    def token(self, role: str, products: list[str] | None = None) -> str:
        return token(self.ledger.dsn, role, products)


@pytest.fixture(scope="module")
def site(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with (
        scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("console-verify")) as ledger,
        live_server(ledger) as url,
    ):
        admin, appender = token(ledger.dsn, "admin"), token(ledger.dsn, "appender")
        set_up(url, ledger, admin, appender, VERSION)
        yield Site(url, ledger, token(ledger.dsn, "auditor"))


def _error(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    assert "Traceback" not in answer.text
    return body


def test_the_console_hands_over_the_dossier_the_api_serves(site: Site) -> None:
    with site.signed_in() as client:
        answer = client.get(DOSSIER)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers["content-security-policy"].startswith("default-src 'self'")
    assert answer.headers["cache-control"] == "no-store"
    api = httpx.get(
        f"{site.url}/v1/releases/{PRODUCT}/{VERSION}/dossier",
        headers={"Authorization": f"Bearer {site.auditor}"},
    )
    assert api.status_code == 200, api.text
    console, served = answer.json(), api.json()
    assert console.pop("evaluated_at") <= served.pop(
        "evaluated_at"
    )  # evaluated when asked: the rest is the same
    console.pop("compliance"), served.pop("compliance")
    assert console == served
    assert console["index_proof"]  # this ledger's checkpoints commit to the completeness index
    verify_dossier(decode_dossier(answer.content, "the console's dossier"), site.ledger.signer.verifier())


def test_without_a_session_the_dossier_is_a_401_not_a_redirect(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=30, follow_redirects=False) as client:
        assert "session" in _error(client.get(DOSSIER), 401)["detail"]
        client.cookies.set("evl_session", "not-a-session", path="/ui")
        _error(client.get(DOSSIER), 401)
        # The console takes no bearer token: a page is for a signed-in person.
        _error(client.get(DOSSIER, headers={"Authorization": f"Bearer {site.auditor}"}), 401)


def test_a_token_scoped_to_other_products_gets_a_403_and_one_scoped_to_this_product_the_dossier(
    site: Site,
) -> None:
    with site.signed_in(site.token("auditor", ["another-product"])) as client:
        assert PRODUCT in _error(client.get(DOSSIER), 403)["detail"]
        page = client.get("/ui/verify", params={"product": PRODUCT, "version": VERSION})
        assert page.status_code == 403
        assert "text/html" in page.headers["content-type"]
    with site.signed_in(site.token("auditor", [PRODUCT])) as client:
        assert client.get(DOSSIER).status_code == 200


def test_every_role_may_fetch_a_dossier_as_every_role_may_read_the_api(site: Site) -> None:
    for role in ("appender", "admin"):
        with site.signed_in(site.token(role)) as client:
            assert client.get(DOSSIER).status_code == 200, role


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/ui/releases/{PRODUCT}/9.9.9/dossier", 404),
        ("/ui/releases/no-such-product/1/dossier", 404),
        (f"/ui/releases/{'p' * 257}/1/dossier", 400),
        (f"/ui/releases/{PRODUCT}/{'v' * 257}/dossier", 400),
        (f"/ui/releases/{PRODUCT}/{'v' * 20000}/dossier", 400),
    ],
)
def test_bad_or_oversized_names_and_unknown_releases_are_json_errors(
    site: Site, path: str, status: int
) -> None:
    with site.signed_in() as client:
        _error(client.get(path), status)


def test_the_verify_page_names_the_release_it_fetches_escaped_and_refuses_half_a_name(site: Site) -> None:
    with site.signed_in() as client:
        page = client.get("/ui/verify", params={"product": PRODUCT, "version": VERSION})
        assert page.status_code == 200, page.text
        assert f'data-product="{PRODUCT}" data-version="{VERSION}"' in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        odd = client.get("/ui/verify", params={"product": PRODUCT, "version": '1"><script>x'})
        assert odd.status_code == 200
        assert 'data-version="1&#34;&gt;&lt;script&gt;x"' in odd.text
        assert "<script>x" not in odd.text
        plain = client.get("/ui/verify")
        assert plain.status_code == 200
        assert "data-product" not in plain.text
        assert client.get("/ui/verify", params={"product": PRODUCT}).status_code == 400
        assert client.get("/ui/verify", params={"version": VERSION}).status_code == 400
        assert client.get("/ui/verify", params={"product": PRODUCT, "version": "v" * 300}).status_code == 400
    with httpx.Client(base_url=site.url, timeout=30, follow_redirects=False) as client:
        away = client.get("/ui/verify", params={"product": PRODUCT, "version": VERSION})
        assert away.status_code == 303
        assert away.headers["location"].startswith("/ui/login?next=%2Fui%2Fverify%3Fproduct%3D")
