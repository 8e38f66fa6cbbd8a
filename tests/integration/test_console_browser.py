"""The console in a real browser (issue #15): Debian's Chromium, driven by Playwright.

A person signs in through the form, reads the releases at a desktop and at a phone's width,
and verifies a dossier in the browser with a pinned key: the real one passes, a tampered one
is refused. Screenshots of each page are written to the test's directory to be looked at.
Without Chromium or Playwright a developer's run skips, saying so; a CI run fails.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ci_mode import ci_requested
from ledger_harness import live_server, token
from service_support import scratch_ledger

DOSSIER = Path(__file__).parent / "fixtures" / "pre_issue9"
WIDTHS = {"desktop": 1280, "phone": 390}


def _browser_or_skip() -> tuple[Any, str]:
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only the browser tests need it
    except ImportError:
        sync_playwright = None
    if chromium is None or sync_playwright is None:
        reason = "Chromium (Debian's `chromium`) or Playwright is missing: the browser tests did not run"
        if ci_requested():
            pytest.fail(reason)
        pytest.skip(reason)
    return sync_playwright, chromium


@pytest.fixture(scope="module")
def site(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with (
        scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("console-browser")) as ledger,
        live_server(ledger) as url,
    ):
        yield url, token(ledger.dsn, "auditor")


@pytest.fixture(scope="module")
def browser(site: tuple[str, str]) -> Iterator[Any]:
    # After `site`: Playwright's sync API runs an event loop, and the ledger's set-up runs its own.
    del site
    sync_playwright, chromium = _browser_or_skip()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


def signed_in_page(browser: Any, url: str, secret: str, width: int) -> Any:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(f"{url}/ui/releases")
    assert page.url.startswith(f"{url}/ui/login")  # sent to sign in first
    page.fill("#token", secret)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/ui/releases")
    return page


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_a_person_signs_in_and_reads_the_releases(
    browser: Any, site: tuple[str, str], screen: str, tmp_path: Path
) -> None:
    url, secret = site
    page = signed_in_page(browser, url, secret, WIDTHS[screen])
    assert page.inner_text("h1") == "Releases"
    assert "Signed in: auditor" in page.inner_text("header")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than a {WIDTHS[screen]} px screen"
    page.screenshot(path=str(tmp_path / f"releases-{screen}.png"), full_page=True)
    page.click("button:has-text('Sign out')")
    page.wait_for_url(f"{url}/ui/login")
    page.goto(f"{url}/ui/releases")
    assert page.url.startswith(f"{url}/ui/login")  # the session is over
    page.close()


def test_a_dossier_verifies_in_the_browser_and_a_tampered_one_does_not(
    browser: Any, site: tuple[str, str], tmp_path: Path
) -> None:
    url, secret = site
    page = signed_in_page(browser, url, secret, WIDTHS["desktop"])
    page.goto(f"{url}/ui/verify")
    page.fill("#key", (DOSSIER / "ledger.pub").read_text().strip())
    page.set_input_files("#dossier", str(DOSSIER / "sealed-release.dossier.json"))
    page.click("button:has-text('Verify')")
    page.wait_for_selector("#verdict.ok")  # a selector, not a script: the page's CSP refuses eval
    assert page.inner_text("#verdict").startswith("PROOFS HOLD: ivd-analyzer 2.4.20261204201839")
    assert page.locator("#checks li").count() >= 2
    page.screenshot(path=str(tmp_path / "verify-ok.png"), full_page=True)

    dossier = json.loads((DOSSIER / "sealed-release.dossier.json").read_text())
    proof = dossier["entries"][0]["inclusion_proof"]
    proof[0] = ("0" if proof[0][0] != "0" else "1") + proof[0][1:]  # one nibble of one proof hash
    tampered = tmp_path / "tampered.dossier.json"
    tampered.write_text(json.dumps(dossier))
    page.set_input_files("#dossier", str(tampered))
    page.click("button:has-text('Verify')")
    page.wait_for_selector("#verdict.error")
    assert page.inner_text("#verdict").startswith("FAILED: ")
    assert "inclusion" in page.inner_text("#verdict").lower() or "root" in page.inner_text("#verdict").lower()
    assert page.locator("#checks li").count() == 0
    page.screenshot(path=str(tmp_path / "verify-tampered.png"), full_page=True)

    other = dossier | {"checkpoint": (DOSSIER / "sealed-release.dossier.json").read_text()}  # not a note
    (tmp_path / "broken.json").write_text(json.dumps(other)[:-10])  # not even JSON
    page.set_input_files("#dossier", str(tmp_path / "broken.json"))
    page.click("button:has-text('Verify')")
    page.locator("#verdict", has_text="JSON").wait_for()  # this file's own failure, not the last one
    assert page.inner_text("#verdict").startswith("FAILED: ")
    page.close()
