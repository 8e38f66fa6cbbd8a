"""The log itself in the console (`/ui/log`, issue #15) against a live, witnessed, timestamped ledger.

A real `evledger witness serve` cosigns the checkpoints and a real RFC 3161 authority (OpenSSL,
tests/tsa_authority.py) timestamps them. The page shows the tree, the latest checkpoint with the
ledger's signature and the witness's cosignature named and verified, its trusted time, the keys
with their history (registered by whom, revoked with the reason), the people and every policy
version; a product-scoped token sees neither another product's releases nor its keys; bad page
numbers are a 400 page; long lists come a page at a time; and it reads well in Chromium at a
desktop's and a phone's width.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from browser_support import WIDTHS, fits_width, launched_browser, screenshot, signed_in_page
from console_support import console_client
from ledger_harness import Ledger, init_ledger, live_server, register, revoke, token
from release_support import ARTIFACT, PRODUCT, append, set_up
from service_support import scratch_database
from story_support import signed
from tsa_authority import LocalTsa, local_tsa, needs_openssl
from witness_support import WitnessSpec, make_witness, running_witness, wait_for, write_policy

from ledger.core.checkpoint import open_checkpoint
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, sign_envelope
from ledger.core.keys import SignerKey
from ledger.records import predicates as p
from ledger.records.admin import KeyRegistered, encode_admin_record

__all__ = ["local_tsa"]  # a pytest fixture, imported to be found
pytestmark = needs_openssl
OTHER = "hidden-product"


@dataclass
class Site:
    url: str
    ledger: Ledger
    admin: str
    auditor: str
    scoped: str  # an auditor's token for PRODUCT only
    witness: WitnessSpec
    witness_running: ExitStack
    revoked: SignerKey
    other_key: SignerKey  # may sign for OTHER only

    def signed_in(self, secret: str | None = None) -> AbstractContextManager[httpx.Client]:
        return console_client(self.url, secret or self.auditor, start="/ui/log")


def _anchored_at(url: str, reader: str, size: int) -> dict[str, Any] | None:
    answer = httpx.get(url + "/v1/anchors", headers={"Authorization": f"Bearer {reader}"}, timeout=10)
    if answer.status_code != 200:
        return None
    body: dict[str, Any] = answer.json()
    return body if body["tree_size"] >= size and body["timestamps"] else None


def _size(url: str, reader: str) -> int:
    answer = httpx.get(url + "/v1/entries?start=0&limit=1000", headers={"Authorization": f"Bearer {reader}"})
    return len(answer.json()["entries"])


@pytest.fixture(scope="module")
def site(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory, local_tsa: LocalTsa) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("console-log")
    with scratch_database(pg_server_dsn) as dsn, ExitStack() as witness_running:
        ledger = init_ledger(dsn, directory)
        witness = make_witness(directory, "w1")
        policy = write_policy(directory / "witnesses.policy", [witness], 1)
        args = ["--witness-policy", str(policy), "--tsa", local_tsa.url]
        args += ["--tsa-cert", str(local_tsa.cert_path), "--tsa-interval", "0.2"]
        admin, appender, auditor = (token(dsn, role) for role in ("admin", "appender", "auditor"))
        scoped = token(dsn, "auditor", [PRODUCT])
        witness_running.enter_context(running_witness(witness, ledger.pub_path))
        with live_server(ledger, args=args) as url:
            set_up(url, ledger, admin, appender, "1.0")
            revoked = SignerKey.generate("people.test/leaver")
            append(url, admin, register(ledger.signer, revoked, ["qa"]))
            append(url, admin, revoke(ledger.signer, revoked.verifier().keyid, "left the company"))
            other_key = SignerKey.generate("people.test/other-pipeline")
            append(url, admin, register(ledger.signer, other_key, ["appender"], [OTHER]))
            escaped = KeyRegistered(
                SignerKey.generate("people.test/eve").verifier().format(), "<b>Eve</b>", ["qa"], []
            )
            append(
                url, admin, sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(escaped), [ledger.signer])
            )
            release = p.Release(OTHER, "9.9")
            build = p.Build(release, "git.test/other", "beef", "b-9", "ci", [p.Artifact("o.tar", ARTIFACT)])
            append(url, appender, signed(other_key, p.BUILD, build, ARTIFACT))
            size = _size(url, auditor)
            wait_for(lambda: _anchored_at(url, auditor, size), 30, "a cosigned, timestamped checkpoint")
            yield Site(url, ledger, admin, auditor, scoped, witness, witness_running, revoked, other_key)


def text_of(html: str) -> str:
    """The page's text, tags dropped and whitespace collapsed, to assert on what a person reads."""
    words = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    return re.sub(r" ([,.:)])", r"\1", words)  # punctuation after an inline element's end


def test_the_log_page_shows_the_tree_the_checkpoint_its_cosignature_and_its_trusted_time(site: Site) -> None:
    reader = {"Authorization": f"Bearer {site.auditor}"}
    note = httpx.get(site.url + "/checkpoint", headers=reader).text
    checkpoint = open_checkpoint(note, site.ledger.signer.verifier())
    with site.signed_in() as client:
        answer = client.get("/ui/log")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-security-policy"].startswith("default-src 'self'")
    page = text_of(answer.text)
    assert f"Tree size {checkpoint.size} entries" in page
    assert f"Root hash {checkpoint.root_hash.hex()}" in page
    assert site.ledger.signer.verifier().format() in page  # the key to pin
    ledger_key = site.ledger.signer.verifier()
    assert f"ledger {ledger_key.name} {ledger_key.key_id:08x}" in page
    witness = site.witness.key.verifier()
    cosigned = re.search(
        rf"witness {re.escape(witness.name)} {re.escape(witness.name)} {witness.key_id:08x} (\S+) verified",
        page,
    )
    assert cosigned is not None, page  # named, with the time it states, and verified
    assert "cosigned by 1 of the 1 witnesses the policy requires" in page
    trusted = re.search(
        r"Trusted time \(RFC 3161\) .*? (\d{4}-\d\d-\d\dT\S+Z) http://127\.0\.0\.1:\d+/\S* "
        r"(.*?) \d+ verified",
        page,
    )
    assert trusted is not None, page
    assert "Local Test TSA" in trusted.group(2)
    assert "Newest anchored checkpoint" not in page  # the latest is the anchored one


def test_keys_people_and_policies_with_their_history(site: Site) -> None:
    with site.signed_in() as client:
        answer = client.get("/ui/log")
    page = text_of(answer.text)
    ledger_keyid = site.ledger.signer.verifier().keyid
    leaver = site.revoked.verifier().keyid
    by = re.escape(ledger_keyid)
    found = re.search(
        rf"{re.escape(leaver)} owner of people\.test/leaver qa any revoked Registered at entry (\d+), "
        rf"\S+, by {by} \(.*?\)\. Revoked at entry (\d+), \S+, by {by} \(.*?\): left the company",
        page,
    )
    assert found is not None, page
    assert int(found.group(2)) > int(found.group(1))
    assert "owner of people.test/qa qa any 1 / 1" in page  # a person, their roles and keys
    assert "owner of people.test/leaver none any 0 / 1" in page  # no active key, no role
    assert re.search(r"qa-only \(in force\) 1 \d+ \d{4}-\S+Z " + re.escape(ledger_keyid), page), page
    assert "<b>Eve</b>" not in answer.text  # a ledger value is text, never markup
    assert "&lt;b&gt;Eve&lt;/b&gt;" in answer.text


def test_a_product_scoped_token_sees_only_its_products(site: Site) -> None:
    with site.signed_in(site.scoped) as client:
        releases = client.get("/ui/releases")
        assert releases.status_code == 200, releases.text
        assert f"/ui/releases/{PRODUCT}/1.0" in releases.text
        assert OTHER not in releases.text
        refused = client.get(f"/ui/releases?product={OTHER}")
        assert refused.status_code == 403
        assert OTHER in text_of(refused.text)  # the reason, as a page
        assert "9.9" not in refused.text
        log = client.get("/ui/log")
        assert log.status_code == 200
        assert site.other_key.verifier().keyid not in log.text
        assert "1 key of other products is not shown to this token" in text_of(log.text)
    with site.signed_in() as client:  # an unscoped auditor sees both
        everything = client.get("/ui/releases").text
        assert f"/ui/releases/{OTHER}/9.9" in everything
        assert site.other_key.verifier().keyid in client.get("/ui/log").text


def test_the_log_page_needs_a_session(site: Site) -> None:
    with httpx.Client(base_url=site.url, follow_redirects=False) as client:
        answer = client.get("/ui/log")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/login?next=%2Fui%2Flog"
        api = client.get("/ui/log", headers={"Authorization": f"Bearer {site.auditor}"})
        assert api.status_code == 303  # a bearer token is no session


@pytest.mark.parametrize(
    "query", ["keys=abc", "keys=-1", "people=1.5", "policies=99999999999", "keys=" + "9" * 5000, "keys=%00"]
)
def test_bad_page_numbers_are_a_400_page(site: Site, query: str) -> None:
    with site.signed_in() as client:
        answer = client.get(f"/ui/log?{query}")
    assert answer.status_code in {400, 414, 431}, answer.text
    if answer.status_code == 400:
        assert "Traceback" not in answer.text
        assert 'role="alert"' in answer.text
        assert answer.headers["content-type"].startswith("text/html")
        assert "whole number" in answer.text or "NUL" in answer.text


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_the_log_page_in_a_browser(browser: Any, site: Site, screen: str, tmp_path: Path) -> None:
    page = signed_in_page(browser, site.url, site.auditor, WIDTHS[screen], start="/ui/log")
    assert page.inner_text("h1") == "The log"
    assert page.locator("nav a[href='/ui/log']").count() == 1
    signatures = page.locator("#latest ~ div table").first.inner_text()
    assert "witness " + site.witness.key.name in signatures
    assert "verified" in signatures
    assert "Local Test TSA" in page.inner_text("main")
    overflow = fits_width(page)
    assert overflow <= 0, f"the page is {overflow} px wider than a {WIDTHS[screen]} px screen"
    screenshot(page, f"log-{screen}", tmp_path)
    page.close()


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_the_releases_filters_in_a_browser(browser: Any, site: Site, screen: str, tmp_path: Path) -> None:
    page = signed_in_page(browser, site.url, site.auditor, WIDTHS[screen])
    assert page.locator("tbody tr").count() == 2  # both products' releases
    page.select_option("#compliance", "incomplete")
    page.fill("#deployed_to", "staging")
    page.click("button:has-text('Filter')")
    page.wait_for_url(f"{site.url}/ui/releases?*compliance=incomplete*")
    assert page.inner_text("caption") == "Releases, incomplete, deployed to staging"
    assert page.locator("tbody tr").inner_text() == "No release matches."
    page.select_option("#compliance", "")
    page.fill("#deployed_to", "")
    page.click("button:has-text('Filter')")
    page.wait_for_selector(".status.incomplete")  # the release of set_up has no approval yet
    overflow = fits_width(page)
    assert overflow <= 0, f"the page is {overflow} px wider than a {WIDTHS[screen]} px screen"
    screenshot(page, f"releases-filtered-{screen}", tmp_path)
    page.close()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    del site  # started first: see browser_support
    with launched_browser() as launched:
        yield launched


def test_a_checkpoint_the_witness_did_not_cosign_yet_shows_the_anchored_one(site: Site) -> None:
    site.witness_running.close()  # the witness goes away; appends go on
    reader = {"Authorization": f"Bearer {site.auditor}"}
    anchored = open_checkpoint(
        httpx.get(site.url + "/checkpoint", headers=reader).text, site.ledger.signer.verifier()
    )
    qa = SignerKey.generate("people.test/late-qa")
    receipt = append(site.url, site.admin, register(site.ledger.signer, qa, ["qa"]))
    latest = open_checkpoint(str(receipt["checkpoint"]), site.ledger.signer.verifier())
    with site.signed_in() as client:
        page = text_of(client.get("/ui/log").text)
    assert f"Latest checkpoint Origin {latest.origin} Tree size {latest.size} entries" in page
    assert "No trusted time (RFC 3161 token) is kept for this checkpoint." in page
    shown = re.search(r"Newest anchored checkpoint .*? Tree size (\d+) entries", page)
    assert shown is not None, page
    assert int(shown.group(1)) == anchored.size < latest.size


def test_long_lists_come_a_page_at_a_time(site: Site) -> None:
    keys = [SignerKey.generate(f"people.test/bulk-{n:03}") for n in range(101)]
    body = msgspec.json.encode({"envelopes": [register(site.ledger.signer, k, ["qa"]) for k in keys]})
    answer = httpx.post(
        site.url + "/v1/entries/batch",
        content=body,
        headers={"Authorization": f"Bearer {site.admin}"},
        timeout=60,
    )
    assert answer.status_code == 201, answer.text
    with site.signed_in() as client:
        first = client.get("/ui/log")
        page = text_of(first.text)
        total = int(re.search(r"Keys 1 to 100 of (\d+)\.", page).group(1))  # type: ignore[union-attr]
        assert total >= 101 + 6
        assert keys[-1].verifier().keyid not in first.text
        link = re.search(r'href="(/ui/log\?keys=100&amp;people=0&amp;policies=0#keys)"', first.text)
        assert link is not None, first.text
        second = client.get(unescape(link.group(1)))
        assert second.status_code == 200
        assert keys[-1].verifier().keyid in second.text
        assert f"Keys 101 to {total} of {total}." in text_of(second.text)
        assert "Previous keys" in second.text
