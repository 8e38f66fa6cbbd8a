"""The console's browser tests' shared parts: Debian's Chromium through Playwright, and a signed-in page.

Each browser test module starts its own ledger first, then its browser (`launched_browser`):
Playwright's sync API runs an event loop, and the ledger's set-up runs its own, so the browser
fixture must come after the ledger fixture. Without Chromium or Playwright a developer's run
skips, saying so; a CI run fails. Screenshots go to the test's directory, or to
`EVLEDGER_SCREENSHOTS` when it is set, so a person can look at them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from ci_mode import ci_requested

WIDTHS = {"desktop": 1280, "phone": 390}
SCREENSHOTS_ENV = "EVLEDGER_SCREENSHOTS"


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


@contextmanager
def launched_browser() -> Iterator[Any]:
    """A headless Chromium for one test module; start the module's ledger before it."""
    sync_playwright, chromium = _browser_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def signed_in_page(browser: Any, url: str, secret: str, width: int, start: str = "/ui/releases") -> Any:
    """A new page at `width` px, signed in with the API token `secret` through the sign-in form."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(f"{url}{start}")
    assert page.url.startswith(f"{url}/ui/login")  # sent to sign in first
    page.fill("#token", secret)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}{start}")
    return page


def fits_width(page: Any) -> int:
    """How many px the page is wider than its window (0 or less: it fits)."""
    overflow: int = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    return overflow


def screenshot(page: Any, name: str, tmp_path: Path) -> Path:
    """Save a full-page screenshot `name`.png, to be looked at; returns where it went."""
    directory = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
