"""The console in a real browser (issue #15): Debian's Chromium, driven by Playwright.

A person signs in through the form, reads the releases at a desktop and at a phone's width,
and verifies a dossier in the browser with a pinned key: the real one passes, a tampered one
is refused. Screenshots of each page are written to the test's directory to be looked at.
The browser and its helpers: tests/integration/browser_support.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import WIDTHS, fits_width, launched_browser, screenshot, signed_in_page
from ledger_harness import live_server, token
from service_support import scratch_ledger

DOSSIER = Path(__file__).parent / "fixtures" / "pre_issue9"


@pytest.fixture(scope="module")
def site(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with (
        scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("console-browser")) as ledger,
        live_server(ledger) as url,
    ):
        yield url, token(ledger.dsn, "auditor")


@pytest.fixture(scope="module")
def browser(site: tuple[str, str]) -> Iterator[Any]:
    del site  # started first: see browser_support
    with launched_browser() as launched:
        yield launched


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_a_person_signs_in_and_reads_the_releases(
    browser: Any, site: tuple[str, str], screen: str, tmp_path: Path
) -> None:
    url, secret = site
    page = signed_in_page(browser, url, secret, WIDTHS[screen])
    assert page.inner_text("h1") == "Releases"
    assert "Signed in: auditor" in page.inner_text("header")
    overflow = fits_width(page)
    assert overflow <= 0, f"the page is {overflow} px wider than a {WIDTHS[screen]} px screen"
    screenshot(page, f"releases-{screen}", tmp_path)
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
    screenshot(page, "verify-ok", tmp_path)

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
    screenshot(page, "verify-tampered", tmp_path)

    other = dossier | {"checkpoint": (DOSSIER / "sealed-release.dossier.json").read_text()}  # not a note
    (tmp_path / "broken.json").write_text(json.dumps(other)[:-10])  # not even JSON
    page.set_input_files("#dossier", str(tmp_path / "broken.json"))
    page.click("button:has-text('Verify')")
    page.locator("#verdict", has_text="JSON").wait_for()  # this file's own failure, not the last one
    assert page.inner_text("#verdict").startswith("FAILED: ")
    page.close()
