"""Every console page passes axe-core's WCAG 2.0/2.1 A and AA rules and fits 1280 and 390 px (issue #15).

The pages are found in the app itself: every GET route under /ui whose handler answers with a
template (`pages.page`), so a page added later is checked with no change here. What is not a
page is left out: /ui/static, the JSON answers read by the pages' scripts, redirects and file
downloads. Path parameters come from one ledger: the demo's story (a sealed release, whose events
give one event page of each kind, and whose approve page is the error page, 403) and an open
release (release_support.set_up). An admin signs in (it sees every product) and makes a signing
key in the browser, which is registered, so the approval pages show their forms.

Each page, at each width: no axe violation of impact "serious" or "critical" (each one listed:
rule, element, help), no horizontal scroll (browser_support.fits_width), and a screenshot
(browser_support.screenshot) to be looked at. A page whose state its script sets is checked once
the script has settled (a selector to wait on: SETTLED). The states a person brings a page to
are checked too: the skip link (a keyboard's first stop), a refused sign-in, the signing key
page before a key exists, an approval under review, a verified dossier. axe-core is axe-playwright-python's
bundled axe.min.js, run under the pages' own strict CSP: Playwright's `evaluate` goes through the
DevTools protocol, which the CSP does not govern, and axe itself needs no eval (the first test
proves it runs there), so no `bypass_csp` is needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, get_args
from urllib.parse import quote

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from browser_support import WIDTHS, fits_width, launched_browser, screenshot, signed_in_page
from ledger_harness import token
from litestar.handlers import HTTPRouteHandler
from litestar.response import Template
from release_support import PRODUCT as OPEN_PRODUCT
from release_support import set_up
from story_support import LiveLedger, evledger, live_ledger, play_story

from cli import story as s
from ledger.core.keys import SignerKey
from ledger.service.app import Settings, create_app

SEALED, OPEN = "7.1.0", "7.2.0"  # the story's release (sealed); a release still open
KEY_NAME = "people.example/ada"
RULES = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
FAILING = {"serious", "critical"}
APPROVE = "/ui/releases/{product:str}/{version:str}/approve"
SETTLED = {
    # What shows once the page's script has done its work (a selector: the CSP refuses string waits).
    "/ui/verify": "#not-checked li",
    "/ui/signing-key": "#registration.ok",
    APPROVE: "#key-state.ok, p.error[role=alert]",  # the open release's form; the sealed one's refusal
}
PARAMETER = re.compile(r"\{(\w+):\w+\}")
axe = Axe()
PLANT_AN_IMAGE_WITHOUT_ALT = """() => {
  const image = document.createElement("img");
  image.src = "/ui/static/console.css";
  document.querySelector("main").append(image);
}"""


@cache
def console_pages() -> list[str]:
    """The console's pages: GET routes under /ui answering with a template, as the app routes them."""
    signer = SignerKey.from_seed("ledger.test/a11y", bytes(range(32)))
    app = create_app(Settings(dsn="postgresql://unused", signer=signer))  # never started: no database

    def renders_a_page(handler: HTTPRouteHandler) -> bool:
        answer = handler.parsed_fn_signature.return_type.annotation
        return Template in (answer, *get_args(answer))  # `Template | Response[bytes]`: a page with a CSV

    return sorted(
        {
            route.path
            for route in app.routes
            if route.path.startswith("/ui") and not route.path.startswith("/ui/static")
            for handler in getattr(route, "route_handlers", [])
            if isinstance(handler, HTTPRouteHandler)
            and "GET" in handler.http_methods
            and renders_a_page(handler)
        }
    )


@dataclass(frozen=True)
class Site:
    live: LiveLedger
    releases: list[dict[str, str]]  # product and version of each release
    events: list[dict[str, str]]  # product, version and index: one event of each kind of the story

    def urls(self, route: str) -> list[str]:
        """The route's pages: its path parameters filled from the ledger's releases and events."""
        names = set(PARAMETER.findall(route))
        if not names:
            return [route]
        if names == {"product", "version"}:
            fills = self.releases
        elif names == {"product", "version", "index"}:
            fills = self.events
        else:
            pytest.fail(f"{route}: no value to fill its parameters {sorted(names)} with; add them here")
        return [PARAMETER.sub(lambda m, fill=fill: quote(fill[m.group(1)], safe=""), route) for fill in fills]


@pytest.fixture(scope="module")
def site(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with live_ledger(pg_server_dsn, tmp_path_factory.mktemp("console-a11y")) as live:
        play_story(live, SEALED)
        appender = token(live.ledger.dsn, "appender", [OPEN_PRODUCT])
        set_up(live.url, live.ledger, live.admin_token, appender, OPEN)
        timeline = httpx.get(
            f"{live.url}/v1/releases/{s.PRODUCT}/{SEALED}/timeline",
            headers={"Authorization": f"Bearer {live.admin_token}"},
            timeout=30,
        ).json()
        kinds = {e["kind"]: str(e["index"]) for e in reversed(timeline["events"])}  # each kind's first
        events = [
            {"product": s.PRODUCT, "version": SEALED, "index": i} for i in sorted(kinds.values(), key=int)
        ]
        releases = [{"product": s.PRODUCT, "version": SEALED}, {"product": OPEN_PRODUCT, "version": OPEN}]
        yield Site(live, releases, events)


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    del site  # started first: see browser_support
    with launched_browser() as launched:
        yield launched


@pytest.fixture(scope="module")
def console(browser: Any, site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A page signed in as an admin, whose browser holds a signing key the ledger has registered."""
    live = site.live
    page = signed_in_page(browser, live.url, live.admin_token, WIDTHS["desktop"])
    page.goto(f"{live.url}/ui/signing-key")
    page.fill("#new-key-name", KEY_NAME)
    page.click("text=Make my signing key in this browser")
    page.wait_for_selector("#registration.warn")
    pub = tmp_path_factory.mktemp("a11y-key") / "ada.pub"
    pub.write_text(page.inner_text("#verifier").strip() + "\n")
    registered = evledger(
        "key", "register", str(pub), "--owner", "Ada Approver", "--role", "qa", "--product", OPEN_PRODUCT,
        "--key", str(live.ledger.key_path), "--server", live.url, "--token", live.admin_token,
    )  # fmt: skip
    assert registered.exit_code == 0, registered.output
    yield page
    page.close()


def check(page: Any, name: str, width: int, tmp_path: Path) -> list[str]:
    """What is wrong with the page as it shows now: serious or critical axe violations, overflow."""
    found = axe.run(page, options=RULES).response
    problems = [
        f"{name}: {v['id']} ({v['impact']}) at {' '.join(map(str, node['target']))}: {v['help']}"
        for v in found["violations"]
        if v["impact"] in FAILING
        for node in v["nodes"]
    ]
    overflow = fits_width(page)
    if overflow > 0:
        problems.append(f"{name}: {overflow} px wider than a {width} px screen")
    screenshot(page, name, tmp_path)
    return problems


def shot_name(url: str, screen: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", url.removeprefix("/ui/").strip("/")) + f"-{screen}"


def test_axe_runs_under_the_pages_own_csp_and_finds_a_planted_fault(console: Any, site: Site) -> None:
    response = console.goto(f"{site.live.url}/ui/releases")
    assert "default-src 'self'" in response.headers["content-security-policy"]  # no bypass_csp
    console.evaluate(PLANT_AN_IMAGE_WITHOUT_ALT)
    found = axe.run(console, options=RULES).response
    assert found["testEngine"]["name"] == "axe-core"
    assert "image-alt" in {v["id"] for v in found["violations"] if v["impact"] in FAILING}


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_every_console_page_is_accessible_and_fits_the_screen(
    console: Any, site: Site, screen: str, tmp_path: Path
) -> None:
    routes = console_pages()
    assert routes, "no console page found among the app's routes"
    assert {"/ui/releases", "/ui/login", APPROVE} <= set(routes)
    width = WIDTHS[screen]
    console.set_viewport_size({"width": width, "height": 900})
    problems: list[str] = []
    visited: dict[str, int] = {}
    for route in routes:
        for url in site.urls(route):
            response = console.goto(f"{site.live.url}{url}")
            visited[url] = response.status
            if route in SETTLED:
                console.wait_for_selector(SETTLED[route], timeout=10_000)
            elif console.locator("script[type=module]").count():
                problems.append(f"{url}: its script sets its state: add a selector to wait on to SETTLED")
            problems += check(console, shot_name(url, screen), width, tmp_path)
    assert {"/ui/releases", "/ui/login"} <= set(visited)
    refused = {url: status for url, status in visited.items() if status != 200}
    assert refused == {f"/ui/releases/{s.PRODUCT}/{SEALED}/approve": 403}  # sealed: the error page
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_the_states_the_pages_get_to_are_accessible_and_fit_too(
    browser: Any, console: Any, site: Site, screen: str, tmp_path: Path
) -> None:
    url, width = site.live.url, WIDTHS[screen]
    problems: list[str] = []
    fresh = browser.new_page(viewport={"width": width, "height": 900})  # no session, no signing key
    fresh.goto(f"{url}/ui/login")
    fresh.keyboard.press("Tab")  # a keyboard's first stop: the skip link, shown while focused
    assert fresh.evaluate("document.activeElement.getAttribute('href')") == "#main"
    assert fresh.locator(".skip").bounding_box()["y"] >= 0
    problems += check(fresh, f"state-skip-link-{screen}", width, tmp_path)
    fresh.fill("#token", "not-a-token")
    fresh.click("button[type=submit]")
    fresh.wait_for_selector("p.error[role=alert]")
    problems += check(fresh, f"state-login-refused-{screen}", width, tmp_path)
    fresh.fill("#token", site.live.admin_token)
    fresh.click("button[type=submit]")
    fresh.wait_for_url(f"{url}/ui/releases")
    fresh.goto(f"{url}/ui/signing-key")
    fresh.wait_for_selector("#make-key")  # this browser holds no key yet
    problems += check(fresh, f"state-signing-key-none-{screen}", width, tmp_path)
    fresh.close()

    console.set_viewport_size({"width": width, "height": 900})
    console.goto(f"{url}/ui/releases/{OPEN_PRODUCT}/{OPEN}/approve")
    console.wait_for_selector("#key-state.ok")
    console.check("input[name=decision][value=approved]")
    console.click("text=Review what you will sign")
    console.wait_for_selector("#confirm:not([hidden])")
    console.click("text=The exact statement")
    problems += check(console, f"state-approve-review-{screen}", width, tmp_path)

    console.goto(f"{url}/ui/verify?product={s.PRODUCT}&version={SEALED}")  # the dossier, fetched
    console.fill("#key", site.live.ledger.pub_path.read_text().strip())
    console.click("#verify button[type=submit]")
    console.wait_for_selector("#verdict.ok, #verdict.error")
    problems += check(console, f"state-verify-outcome-{screen}", width, tmp_path)
    assert not problems, "\n".join(problems)
