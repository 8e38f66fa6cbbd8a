"""A person approves a release in a real browser (issue #15, README "Approve a release in your browser").

Chromium makes the person's Ed25519 key with WebCrypto (non-extractable, kept in IndexedDB), an
admin registers its public key with `evledger key register`, and the person reviews exactly what
they sign, enters their token again, and signs in the browser. The approval is then in the
release's timeline and dossier, and `evledger verify` accepts the dossier. Screenshots of each
step are saved (browser_support.screenshot) to be looked at.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import WIDTHS, fits_width, launched_browser, screenshot, signed_in_page
from ledger_harness import Ledger, live_server, token
from release_support import ARTIFACT, PRODUCT, set_up
from service_support import scratch_ledger
from story_support import evledger

VERSION = "5.0.0"
OWNER = "Quinn Quality"
KEY_NAME = "people.example/quinn"
COMMENT = "Evidence reviewed: tests, scans, change <b>ok</b>"  # shown as text, never as HTML

Site = tuple[str, Ledger, str, str]
"""The server's URL, its ledger, an admin's token and an appender's for the release's product."""


@pytest.fixture(scope="module")
def site(
    pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Ledger, str, str]]:
    with (
        scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("approval-browser")) as ledger,
        live_server(ledger) as url,
    ):
        admin, appender = token(ledger.dsn, "admin"), token(ledger.dsn, "appender", [PRODUCT])
        set_up(url, ledger, admin, appender, VERSION)
        yield url, ledger, admin, appender


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    del site  # started first: see browser_support
    with launched_browser() as launched:
        yield launched


def _api(url: str, secret: str, path: str) -> httpx.Response:
    return httpx.get(url + path, headers={"Authorization": f"Bearer {secret}"}, timeout=30)


KEY_IS_LOCKED_IN = """async () => {
  const { loadKey } = await import("/ui/static/approve/keystore.js");
  const key = await loadKey();
  try { await crypto.subtle.exportKey("pkcs8", key.privateKey); return "exported"; }
  catch (error) { return `${key.privateKey.extractable}:${error.name}`; }
}"""


def _make_key(page: Any, tmp_path: Path) -> str:
    """Make the signing key in the browser (after one refused name); its public key, as shown."""
    page.wait_for_selector("#make-key")
    page.fill("#new-key-name", "has space")
    page.click("text=Make my signing key in this browser")
    page.wait_for_selector("#key-state.error")
    assert "No key was made" in page.inner_text("#key-state")
    page.fill("#new-key-name", KEY_NAME)
    page.click("text=Make my signing key in this browser")
    page.wait_for_selector("#registration.warn")  # the ledger does not know it yet
    public_key: str = page.inner_text("#verifier").strip()
    assert public_key.startswith(f"{KEY_NAME}+")
    assert page.evaluate(KEY_IS_LOCKED_IN) == "false:InvalidAccessError"  # the private key cannot leave
    screenshot(page, "signing-key-new", tmp_path)
    return public_key


def _register(site: Site, public_key: str, tmp_path: Path) -> None:
    """The admin registers the public key, as the signing key page tells them to."""
    url, ledger, admin, _ = site
    pub = tmp_path / "quinn.pub"
    pub.write_text(public_key + "\n")
    registered = evledger(
        "key", "register", str(pub), "--owner", OWNER, "--role", "qa", "--product", PRODUCT,
        "--key", str(ledger.key_path), "--server", url, "--token", admin,
    )  # fmt: skip
    assert registered.exit_code == 0, registered.output


def _review(page: Any, tmp_path: Path) -> None:
    """Choose, and read what will be signed: from the statement's own bytes, the comment unrendered."""
    page.wait_for_selector("#key-state.ok")
    assert OWNER in page.inner_text("#key-state")
    assert page.input_value("#role") == "qa"  # the key's only role
    page.check("input[name=decision][value=approved]")
    page.fill("#comment", COMMENT)
    screenshot(page, "approve-form", tmp_path)
    page.click("text=Review what you will sign")
    page.wait_for_selector("#confirm:not([hidden])")
    shown = page.inner_text("#what")
    for expected in (f"{PRODUCT} {VERSION}", ARTIFACT, "qa", "approval", "approved", OWNER, COMMENT):
        assert expected in shown, expected
    page.click("text=The exact statement")
    statement = json.loads(page.inner_text("#statement"))
    assert statement["predicate"]["comment"] == COMMENT
    screenshot(page, "approve-confirm", tmp_path)


def _sign(page: Any, site: Site, tmp_path: Path) -> int:
    """Sign: refused with the wrong credential (nothing appended), appended with the right one."""
    url, _, _, appender = site
    timeline = f"/v1/releases/{PRODUCT}/{VERSION}/timeline"
    before = _api(url, appender, timeline).json()["count"]
    page.fill("#credential", "not-my-token")
    page.click("text=Sign and append")
    page.wait_for_selector("#outcome.error")
    assert page.inner_text("#outcome").startswith("Not appended:")
    assert _api(url, appender, timeline).json()["count"] == before
    page.fill("#credential", appender)
    page.click("text=Sign and append")
    page.wait_for_selector("#outcome.ok")
    screenshot(page, "approve-done", tmp_path)
    return int(page.inner_text("#outcome").split("entry ")[1].rstrip("."))


def _recorded(site: Site, index: int, public_key: str, tmp_path: Path) -> None:
    """The approval is in the timeline, makes the release compliant, and is in a dossier that verifies."""
    url, ledger, _, appender = site
    release = f"/v1/releases/{PRODUCT}/{VERSION}"
    event = next(
        e for e in _api(url, appender, f"{release}/timeline").json()["events"] if e["index"] == index
    )
    assert (event["kind"], event["signer"]["owner"]) == ("approval", OWNER)
    assert event["signer"]["keyid"] == "+".join(public_key.split("+", 2)[:2])  # name+keyid
    assert _api(url, appender, f"{release}/compliance").json()["status"] == "compliant"  # the qa approval
    dossier = _api(url, appender, f"{release}/dossier")
    assert index in [json.loads(_entry(e))["index"] for e in dossier.json()["entries"]]
    (tmp_path / "release.dossier.json").write_bytes(dossier.content)
    verified = evledger("verify", str(tmp_path / "release.dossier.json"), "--key", str(ledger.pub_path))
    assert verified.exit_code == 0, verified.output


def test_a_person_makes_a_key_gets_it_registered_and_approves_in_the_browser(
    browser: Any, site: Site, tmp_path: Path
) -> None:
    url, _, _, appender = site
    page = signed_in_page(browser, url, appender, WIDTHS["desktop"], start="/ui/signing-key")
    public_key = _make_key(page, tmp_path)

    page.goto(f"{url}/ui/releases/{PRODUCT}/{VERSION}/approve")
    page.wait_for_selector("#key-state.error")  # the page will not go on with an unregistered key
    assert "not registered" in page.inner_text("#key-state")
    assert page.locator("#approval").is_hidden()

    _register(site, public_key, tmp_path)
    page.goto(f"{url}/ui/signing-key")
    page.wait_for_selector("#registration.ok")
    assert f"Registered to {OWNER}" in page.inner_text("#registration")
    screenshot(page, "signing-key-registered", tmp_path)

    page.goto(f"{url}/ui/releases/{PRODUCT}/{VERSION}")
    page.click("text=Approve this release")
    _review(page, tmp_path)
    index = _sign(page, site, tmp_path)
    _recorded(site, index, public_key, tmp_path)
    page.goto(f"{url}/ui/releases/{PRODUCT}/{VERSION}")
    assert OWNER in page.inner_text("main")
    page.close()


def _entry(proven: dict[str, Any]) -> bytes:
    return base64.b64decode(proven["entry"])


def test_the_approval_pages_fit_a_phone(
    browser: Any, site: tuple[str, Ledger, str, str], tmp_path: Path
) -> None:
    url, _, _, appender = site
    for path in ("/ui/signing-key", f"/ui/releases/{PRODUCT}/{VERSION}/approve"):
        page = signed_in_page(browser, url, appender, WIDTHS["phone"], start=path)
        page.wait_for_selector("#no-key:not([hidden]), #key-state.error, #key-state.ok")
        assert fits_width(page) <= 0, path
        screenshot(page, "phone-" + path.strip("/").replace("/", "-"), tmp_path)
        page.close()
