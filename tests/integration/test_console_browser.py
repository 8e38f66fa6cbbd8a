"""The console in a real browser (issue #15): Debian's Chromium, driven by Playwright.

A person signs in through the form, reads the releases at a desktop and at a phone's width,
and verifies a dossier in the browser with a pinned key: a file (the real one passes, tampered
and forged ones are refused with the reason shown), and the dossier of a live story's release,
fetched from the console, whatever the server answers (a lying one is caught). Screenshots of
each page are written to the test's directory to be looked at.
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
from story_support import LiveLedger, live_ledger, play_story

from cli import story as s

DOSSIER = Path(__file__).parent / "fixtures" / "pre_issue9"
JS_FIXTURES = (
    Path(__file__).parents[1] / "js" / "fixtures"
)  # dossiers written with the ledger's rules, attacked
STORY_VERSION = "7.0.0-browser"


@pytest.fixture(scope="module")
def site(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with (
        scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("console-browser")) as ledger,
        live_server(ledger) as url,
    ):
        yield url, token(ledger.dsn, "auditor")


@pytest.fixture(scope="module")
def story(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveLedger, str]]:
    """A live ledger whose release STORY_VERSION went through the demo's story, sealed; an auditor's token."""
    with live_ledger(pg_server_dsn, tmp_path_factory.mktemp("console-story")) as live:
        play_story(live, STORY_VERSION)
        yield live, token(live.ledger.dsn, "auditor")


@pytest.fixture(scope="module")
def browser(site: tuple[str, str], story: tuple[LiveLedger, str]) -> Iterator[Any]:
    del site, story  # started first: see browser_support
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


def _verify_file(page: Any, path: Path) -> str:
    """Pick a dossier file and verify it; the verdict once it is in."""
    page.set_input_files("#dossier", str(path))
    page.click("button:has-text('Verify')")
    page.wait_for_selector(
        "#verdict.ok, #verdict.error"
    )  # a selector, not a script: the page's CSP refuses eval
    verdict: str = page.inner_text("#verdict")
    return verdict


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_a_dossier_verifies_in_the_browser_and_a_tampered_or_forged_one_does_not(
    browser: Any, site: tuple[str, str], screen: str, tmp_path: Path
) -> None:
    url, secret = site
    page = signed_in_page(browser, url, secret, WIDTHS[screen], start="/ui/verify")
    not_checked = page.inner_text("#not-checked")
    assert "compliance result" in not_checked
    assert "RFC 3161" in not_checked
    assert "witness" in not_checked
    page.fill("#key", (DOSSIER / "ledger.pub").read_text().strip())
    verdict = _verify_file(page, DOSSIER / "sealed-release.dossier.json")
    assert verdict == (
        "VERIFIED (proofs, signatures, chains, completeness): "
        "ivd-analyzer 2.4.20261204201839, sealed at entry 26: complete"
    )
    assert page.locator("#checks li").count() == 7
    assert (
        "The dossier claims the release is compliant. This browser does not re-evaluate"
        in page.inner_text("#claimed")
    )
    overflow = fits_width(page)
    assert overflow <= 0, f"the page is {overflow} px wider than a {WIDTHS[screen]} px screen"
    screenshot(page, f"verify-ok-{screen}", tmp_path)

    dossier = json.loads((DOSSIER / "sealed-release.dossier.json").read_text())
    proof = dossier["entries"][0]["inclusion_proof"]
    proof[0] = ("0" if proof[0][0] != "0" else "1") + proof[0][1:]  # one nibble of one proof hash
    tampered = tmp_path / "tampered.dossier.json"
    tampered.write_text(json.dumps(dossier))
    verdict = _verify_file(page, tampered)
    assert verdict.startswith("FAILED: release entry 8 is not in the tree of the dossier's checkpoint"), (
        verdict
    )
    assert page.locator("#checks li").count() == 0
    assert page.is_hidden("#claimed")
    screenshot(page, f"verify-tampered-{screen}", tmp_path)

    # A forger holding the ledger key: every proof holds, but a revoked key signed an entry.
    stored = json.loads((JS_FIXTURES / "dossiers.json").read_text())
    (attack,) = [a for a in stored["attacks"] if a["attack"] == "a signature by a revoked key"]
    forged = tmp_path / "forged.dossier.json"
    forged.write_text(json.dumps(attack["dossier"]))
    page.fill("#key", stored["ledger"])
    verdict = _verify_file(page, forged)
    assert "its signature is not valid at its index" in verdict, verdict
    assert "was revoked at entry" in verdict, verdict
    screenshot(page, f"verify-forged-{screen}", tmp_path)

    (tmp_path / "broken.json").write_text(json.dumps(dossier)[:-10])  # not even JSON
    page.set_input_files("#dossier", str(tmp_path / "broken.json"))
    page.click("button:has-text('Verify')")
    page.locator(
        "#verdict", has_text="JSON is malformed"
    ).wait_for()  # this file's own failure, not the last one
    assert page.inner_text("#verdict").startswith("FAILED: the dossier is not an intact dossier")
    page.close()


def test_a_fetched_release_dossier_is_verified_against_the_pinned_key_whatever_the_server_says(
    browser: Any, story: tuple[LiveLedger, str], tmp_path: Path
) -> None:
    live, secret = story
    address = f"/ui/verify?product={s.PRODUCT}&version={STORY_VERSION}"
    key = live.ledger.pub_path.read_text().strip()
    for screen, width in WIDTHS.items():
        page = signed_in_page(browser, live.url, secret, width, start=address)
        assert STORY_VERSION in page.inner_text("#source")
        assert page.input_value("#key") == ""  # nothing is pinned for you
        page.fill("#key", key)
        page.check("#remember")
        page.click("button:has-text('Verify')")
        page.wait_for_selector("#verdict.ok, #verdict.error")
        verdict = page.inner_text("#verdict")
        assert verdict.startswith(
            "VERIFIED (proofs, signatures, chains, completeness): ivd-analyzer 7.0.0-browser, sealed"
        ), verdict
        checks = page.inner_text("#checks")
        assert "completeness index of checkpoint" in checks
        assert "artifact back-links" in checks
        overflow = fits_width(page)
        assert overflow <= 0, f"the page is {overflow} px wider than a {width} px screen"
        screenshot(page, f"verify-fetched-{screen}", tmp_path)

        # The key is remembered in this browser, and the page says so and which key it is.
        page.reload()
        assert page.input_value("#key") == key
        assert page.is_checked("#remember")
        assert f"{live.ledger.signer.keyid}" in page.inner_text("#pinned")
        page.click("#forget")
        assert "No key is remembered" in page.inner_text("#pinned")
        page.close()

    page = signed_in_page(browser, live.url, secret, WIDTHS["desktop"], start=address)
    page.fill("#key", (DOSSIER / "ledger.pub").read_text().strip())  # another ledger's key
    page.click("button:has-text('Verify')")
    page.wait_for_selector("#verdict.error")
    assert "not signed by any trusted key" in page.inner_text("#verdict")

    # A server that lies: it leaves out the release's newest event (and its seal) from the dossier.
    def lie(route: Any) -> None:
        answer = route.fetch()
        dossier = answer.json()
        dossier["entries"] = dossier["entries"][:-1]
        route.fulfill(response=answer, body=json.dumps(dossier))

    page.route("**/dossier", lie)
    page.fill("#key", key)
    page.click("button:has-text('Verify')")
    page.locator("#verdict", has_text="not all of them").wait_for()
    assert page.inner_text("#verdict").startswith(
        "FAILED: the release's events in the dossier are not all of them"
    )
    screenshot(page, "verify-fetched-lying-server", tmp_path)
    page.close()
