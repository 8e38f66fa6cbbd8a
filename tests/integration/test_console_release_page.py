"""The console's release page, its events' pages and their files (issue #15, docs/console.md).

One ledger for the module plays the demo's story (tests/integration/story_support.py): a sealed
release with approvals, a denied then an allowed production gate, an exception and a
deployment. A second release of the same product then gets a JUnit report, two SARIF logs (one
stored, one not), an SBOM, a validation with its report attached, a deployment and a rollback,
through `evledger attest` and `evledger record` as a pipeline runs them. The pages must show
what the files say, serve the files byte for byte as downloads, keep every page to its release
and to the token's products, and answer bad paths with a page (400, 404), never a 500. The
browser test at the end looks at both pages at a desktop's and a phone's width.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import WIDTHS, fits_width, launched_browser, screenshot, signed_in_page
from console_support import console_client
from ledger_harness import token
from service_support import bearer
from story_support import LiveLedger, Played, live_ledger, play_story, signed
from typer.testing import CliRunner

from cli import story as s
from cli.main import app
from ledger.records import predicates as p
from ledger.records.sbom import parse_sbom

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures"
PRODUCT = s.PRODUCT
SOLD, FILED = "5.0.1", "5.0.2"  # the story's sealed release; the release with files
CANDIDATE = "sha256:" + "7e" * 32
EARLIER = "sha256:" + "5d" * 32
SUBJECT = ["--subject-name", "analyzer.tar", "--subject-digest", CANDIDATE]
ODD_NAME = 'notes "<script>draft".txt'
OTHER = "other-product"
FOREIGN = b"uploaded for another product only\n"
runner = CliRunner()


@dataclass(frozen=True)
class Site:
    live: LiveLedger
    played: Played
    outputs: dict[str, dict[str, Any]]
    directory: Path
    auditor: str
    other_product: str  # an auditor's token scoped to another product

    @property
    def url(self) -> str:
        return self.live.url

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, follow_redirects=False)

    def signed_in(self, secret: str | None = None) -> AbstractContextManager[httpx.Client]:
        return console_client(self.url, secret or self.auditor)

    def index(self, step: str) -> int:
        index: int = self.outputs[step]["receipts"][0]["index"]
        return index


def ok(env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run `evledger ARGS --json` with the pipeline's settings; its one JSON answer."""
    result = runner.invoke(app, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.stdout
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def record_files(live: LiveLedger, played: Played, directory: Path) -> dict[str, dict[str, Any]]:
    """The second release: each kind of evidence file, attested as a pipeline does."""
    key_path = directory / "pipeline.key"
    key_path.write_text(played.story.people["pipeline"].key.format() + "\n")
    key_path.chmod(0o600)
    env = {"EVLEDGER_SERVER": live.url, "EVLEDGER_TOKEN": live.appender_token, "EVLEDGER_KEY": str(key_path)}
    (directory / "run.log").write_bytes(b"collected 7 items\r\n\x00binary\xff tail\n" * 50)
    (directory / "validation.pdf").write_bytes(b"%PDF-1.7\n% agreement on the golden panel\n" * 40)
    (directory / ODD_NAME).write_text("a file whose name a page must escape\n")
    release = ["--product", PRODUCT, "--version", FILED, *SUBJECT]
    return {
        "junit": ok(
            env, "attest", "junit", str(FIXTURES / "junit-pytest.xml"), *release, "--suite", "unit",
            "--command", "pytest", "--commit", "4f1c2a9", "--environment", "ci",
            "--attach", str(directory / "run.log"), "--attach", str(directory / ODD_NAME),
        ),
        "codeql": ok(env, "attest", "sarif", str(FIXTURES / "codeql.sarif"), *release),
        "semgrep": ok(env, "attest", "sarif", str(FIXTURES / "semgrep.sarif"), *release, "--no-store"),
        "sbom": ok(env, "attest", "sbom", str(FIXTURES / "sbom" / "cyclonedx-py-1.6.json"), *release),
        "validation": ok(
            env, "record", "validation", PRODUCT, FILED, "--objective", "Agreement on the golden panel",
            "--dataset-name", "golden-panel", "--dataset-version", "2026.1",
            "--dataset-digest", "sha256:" + "9c" * 32, "--result", "passed", *SUBJECT,
            "--attach", str(directory / "validation.pdf"),
        ),
        "staging": ok(
            env, "record", "deployment", PRODUCT, FILED, "--environment", "staging",
            "--artifact-digest", CANDIDATE, "--result", "succeeded",
        ),
        "rollback": ok(
            env, "record", "rollback", PRODUCT, FILED, "--environment", "staging",
            "--from-digest", CANDIDATE, "--to-digest", EARLIER, "--reason", "alarms on the staging panel",
            "--result", "succeeded",
        ),
        "foreign": {"receipts": [foreign_attachment(live, played)]},
    }  # fmt: skip


def foreign_attachment(live: LiveLedger, played: Played) -> dict[str, Any]:
    """An entry of the release naming a file that was uploaded for another product only."""
    digest = f"sha256:{hashlib.sha256(FOREIGN).hexdigest()}"
    stored = httpx.put(
        f"{live.url}/v1/blobs/{digest}?product={OTHER}", content=FOREIGN, headers=bearer(live.admin_token)
    )
    assert stored.status_code == 201, stored.text
    validation = p.Validation(
        p.Release(PRODUCT, FILED), "Agreement on the other panel",
        p.Dataset("other", "1", "sha256:" + "8b" * 32), "passed",
        attachments=[p.Attachment("foreign.txt", digest, len(FOREIGN))],
    )  # fmt: skip
    envelope = signed(played.story.people["pipeline"].key, p.VALIDATION, validation, CANDIDATE)
    with live.appender() as client:
        (receipt,) = client.append([envelope])
    return receipt


@pytest.fixture(scope="module")
def site(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("console-release")
    with live_ledger(pg_server_dsn, directory) as live:
        played = play_story(live, SOLD)
        outputs = record_files(live, played, directory)
        dsn = live.ledger.dsn
        yield Site(live, played, outputs, directory, token(dsn, "auditor"), token(dsn, "auditor", [OTHER]))


def release_path(version: str) -> str:
    return f"/ui/releases/{PRODUCT}/{version}"


def text_of(page: str) -> str:
    """The page's text, tags dropped and entities decoded, white space squeezed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def timeline(site: Site, version: str) -> dict[str, Any]:
    with site.live.admin() as admin:
        answer: dict[str, Any] = admin.get(f"/v1/releases/{PRODUCT}/{version}/timeline").json()
        return answer


# --- the release page -------------------------------------------------------------------------------------


def test_the_release_page_shows_rules_gates_deployments_proofs_and_links_every_event(site: Site) -> None:
    with site.signed_in() as client:
        answer = client.get(release_path(SOLD))
    assert answer.status_code == 200, answer.text
    page, words = answer.text, text_of(answer.text)
    for event in timeline(site, SOLD)["events"]:  # every row links to its event's page
        assert f'href="{release_path(SOLD)}/events/{event["index"]}"' in page
    assert "findings.max-open" in words
    assert "waived" in words  # the exception waived the open high finding
    assert "sod.approver-not-author" in words  # a rule without a finding reads as met
    deny, allow = site.played.deny.answer, site.played.allow.answer
    assert (deny["decision"], allow["decision"]) == ("deny", "allow")
    gates = words.split("Decisions the ledger signed")[1].split("Not deployed")[0]
    assert "production deny (FAILED)" in gates
    assert "production allow (PASSED)" in gates
    assert gates.index("deny") < gates.index("allow")
    assert "Into production" in words
    deployment = site.played.story.receipts["deployment"]["index"]
    assert f'href="{release_path(SOLD)}/events/{deployment}"' in page
    proofs = words.split("Proofs")[-1]
    count = timeline(site, SOLD)["count"]
    assert f"{count} events" in proofs
    assert "no gap from its first event to its head" in proofs
    assert "sealed" in proofs
    assert f"holds the chain's head: {count} events" in proofs
    assert 'action="/ui/verify"' in page
    assert f'name="product" value="{PRODUCT}"' in page
    assert f'name="version" value="{SOLD}"' in page
    assert "Verify this release in your browser" in page


def test_deployments_are_grouped_by_environment_with_their_rollbacks(site: Site) -> None:
    with site.signed_in() as client:
        words = text_of(client.get(release_path(FILED)).text)
    staging = words.split("Into staging")[1].split("Traceability")[0]
    assert f"{site.index('staging')} deployment {CANDIDATE} succeeded" in staging
    assert f"{site.index('rollback')} rollback {CANDIDATE} → {EARLIER} alarms on the staging panel" in staging
    assert "No gate decision" in words


# --- event pages -----------------------------------------------------------------------------------------


def event_page(site: Site, version: str, index: int, secret: str | None = None) -> httpx.Response:
    with site.signed_in(secret) as client:
        return client.get(f"{release_path(version)}/events/{index}")


def test_a_test_run_shows_its_failing_tests_read_from_the_stored_report(site: Site) -> None:
    answer = event_page(site, FILED, site.index("junit"))
    assert answer.status_code == 200, answer.text
    words = text_of(answer.text)
    failing = words.split("Test cases that did not pass")[1].split("Files")[0]
    assert "from the stored JUnit XML report (7 test cases)" in failing
    assert (
        "tests.unit.test_calibration::test_concentration_within_reportable_range[glucose] failed "
        "AssertionError: 5.61 mmol/L outside reportable range [0.6, 5.5]"
    ) in failing
    assert (
        "tests.unit.test_lis_export::test_hl7_result_message failed "
        'failed on setup with "ConnectionRefusedError'
    ) in failing
    assert (
        "tests.unit.test_lis_export::test_astm_export skipped ASTM export is disabled in this build"
        in failing
    )
    assert "test_linear_fit_recovers_slope" not in failing  # passed
    assert "Suite unit: failed , 3 passed, 2 failed, 2 skipped, in ci" in words  # the entry's own counts


def test_an_event_page_shows_signer_statement_and_an_inclusion_proof_that_matches_the_api(site: Site) -> None:
    index = site.index("junit")
    words = text_of(event_page(site, FILED, index).text)
    assert "Signed by CI pipeline" in words
    assert f"Key {site.played.story.people['pipeline'].key.keyid}" in words
    assert "Roles builder, deployer, tester" in words
    assert f"analyzer.tar {CANDIDATE}" in words
    assert "suite unit" in words
    tree_size = int(words.split("Tree size ")[1].split(" ")[0])
    with site.live.admin() as admin:
        proof = admin.get(f"/v1/proofs/inclusion?index={index}&tree_size={tree_size}").json()
    assert f"Leaf hash {proof['leaf_hash']}" in words
    assert " ".join(proof["hashes"]) in words
    assert "the path leads from the leaf hash to the root hash" in words


def test_a_scan_shows_its_sarif_results_and_an_unstored_log_says_so(site: Site) -> None:
    words = text_of(event_page(site, FILED, site.index("codeql")).text)
    table = words.split("Results of the stored SARIF log")[1].split("Files")[0]
    assert "(8, 7 open)" in table
    assert "py/sql-injection" in table
    assert "This SQL query depends on a [user-provided value](1)." in table
    assert table.index("py/sql-injection") < table.index("py/clear-text-logging-sensitive-data")  # open first
    assert "not open py/clear-text-logging-sensitive-data" in table
    unstored = event_page(site, FILED, site.index("semgrep"))
    assert unstored.status_code == 200
    words = text_of(unstored.text)
    assert "Results of the stored SARIF log" not in words
    assert "is not stored in the ledger, so only its counts show" in words
    assert "(not stored)" in words
    assert "/files/" not in unstored.text  # nothing to download


def test_an_sbom_shows_its_soup_list(site: Site) -> None:
    words = text_of(event_page(site, FILED, site.index("sbom")).text)
    soup = words.split("Software of unknown provenance")[1].split("Files")[0]
    components = parse_sbom((FIXTURES / "sbom" / "cyclonedx-py-1.6.json").read_bytes()).components
    assert len(components) == 7
    for component in components:
        assert f"{component.name} {component.version or '—'}" in soup
        if component.purl:
            assert component.purl in soup


def test_a_validation_shows_its_dataset_and_an_approval_its_decision(site: Site) -> None:
    words = text_of(event_page(site, FILED, site.index("validation")).text)
    dataset = words.split("Dataset")[1]
    assert f"golden-panel 2026.1 sha256:{'9c' * 32}" in dataset
    approval = site.played.story.receipts["approval-qa"]["index"]
    answer = event_page(site, SOLD, approval)
    words = text_of(answer.text)
    assert "Who Quinn Quality Role qa Meaning approval Decision approved Signed at 20" in words
    reviewed = site.played.story.sent["approval-qa"]
    assert reviewed is not None
    build = site.played.story.receipts["build"]["index"]
    assert f'href="{release_path(SOLD)}/events/{build}"' in answer.text  # the entries reviewed link


def test_a_gate_decision_shows_the_findings_it_follows_from(site: Site) -> None:
    deny = site.played.deny.answer["receipt"]["index"]
    words = text_of(event_page(site, SOLD, deny).text)
    assert "Into production: deny (FAILED)" in words
    findings = words.split("The findings it follows from")[1]
    assert "findings.max-open fail" in findings


# --- files -----------------------------------------------------------------------------------------------


def test_attachments_and_reports_download_byte_for_byte_as_attachments(site: Site) -> None:
    index = site.index("junit")
    page = event_page(site, FILED, index).text
    links = re.findall(r'href="(/ui/releases/[^"]+/files/sha256:[0-9a-f]{64})"', page)
    wanted = {
        "run.log": (site.directory / "run.log").read_bytes(),
        ODD_NAME: (site.directory / ODD_NAME).read_bytes(),
        "report": (FIXTURES / "junit-pytest.xml").read_bytes(),
    }
    assert len(links) == len(wanted)
    assert ODD_NAME in text_of(page)
    assert "<script" not in page  # escaped
    by_digest = {f"sha256:{hashlib.sha256(data).hexdigest()}": name for name, data in wanted.items()}
    with site.signed_in() as client:
        for link in links:
            answer = client.get(link)
            assert answer.status_code == 200, answer.text
            name = by_digest[link.rsplit("/", 1)[1]]
            assert answer.content == wanted[name]
            assert answer.headers["content-type"] == "application/octet-stream"
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["content-length"] == str(len(wanted[name]))
            disposition = answer.headers["content-disposition"]
            assert disposition.startswith("attachment; filename=")
            assert re.fullmatch(r'attachment; filename="[A-Za-z0-9._-]+"', disposition), disposition
    expected = {"run.log": "run.log", ODD_NAME: "notes_script_draft_.txt"}
    with site.signed_in() as client:
        for name, safe in expected.items():
            digest = f"sha256:{hashlib.sha256(wanted[name]).hexdigest()}"
            answer = client.get(f"{release_path(FILED)}/events/{index}/files/{digest}")
            assert answer.headers["content-disposition"] == f'attachment; filename="{safe}"'


def test_a_file_the_event_does_not_name_or_the_ledger_does_not_hold_is_404(site: Site) -> None:
    junit, codeql = site.index("junit"), site.index("codeql")
    report = site.outputs["codeql"]["predicate"]["report_digest"]
    unstored = site.outputs["semgrep"]["predicate"]["report_digest"]
    with site.signed_in() as client:
        elsewhere = client.get(f"{release_path(FILED)}/events/{junit}/files/{report}")  # codeql's report
        assert elsewhere.status_code == 404, elsewhere.text
        assert "names no file" in elsewhere.text
        own = client.get(f"{release_path(FILED)}/events/{codeql}/files/{report}")
        assert own.status_code == 200
        gone = client.get(f"{release_path(FILED)}/events/{site.index('semgrep')}/files/{unstored}")
        assert gone.status_code == 404
        assert "Traceback" not in gone.text


def test_a_file_uploaded_for_another_product_only_is_not_served_to_a_token_scoped_to_this_one(
    site: Site,
) -> None:
    index = site.index("foreign")
    digest = f"sha256:{hashlib.sha256(FOREIGN).hexdigest()}"
    download = f"{release_path(FILED)}/events/{index}/files/{digest}"
    with site.signed_in() as client:  # every product: the blob route's rule lets it read the file
        assert f'href="{download}"' in client.get(f"{release_path(FILED)}/events/{index}").text
        assert client.get(download).content == FOREIGN
    with site.signed_in(site.live.appender_token) as client:  # scoped to this product only
        page = client.get(f"{release_path(FILED)}/events/{index}")
        assert page.status_code == 200
        assert "foreign.txt (not stored)" in text_of(page.text)
        assert f'href="{download}"' not in page.text
        refused = client.get(download)
        assert refused.status_code == 404, refused.text
        assert FOREIGN.decode() not in refused.text


# --- refusals --------------------------------------------------------------------------------------------


def test_an_event_of_another_release_is_a_404_page(site: Site) -> None:
    other = site.index("junit")  # an event of FILED, asked for under SOLD
    for version, index in ((SOLD, other), (FILED, 10**9), (FILED, 0)):  # entry 0: the ledger key's
        answer = event_page(site, version, index)
        assert answer.status_code == 404, (version, index, answer.text)
        assert answer.headers["content-type"].startswith("text/html")
        assert "is not an event of release" in answer.text
    with site.signed_in() as client:
        digest = site.outputs["junit"]["predicate"]["report_digest"]
        answer = client.get(f"{release_path(SOLD)}/events/{other}/files/{digest}")
        assert answer.status_code == 404
        assert client.get("/ui/releases/no-such-product/1/events/1").status_code == 404


@pytest.mark.parametrize("index", ["abc", "-1", "1e3", "0x10", "9" * 30, "%20", "1.0", "%E2%91%A0"])
def test_a_malformed_index_is_a_400_page(site: Site, index: str) -> None:
    with site.signed_in() as client:
        for path in (f"/events/{index}", f"/events/{index}/files/sha256:{'0' * 64}"):
            answer = client.get(f"{release_path(FILED)}{path}")
            assert answer.status_code == 400, (path, answer.text)
            assert answer.headers["content-type"].startswith("text/html")
            assert "Traceback" not in answer.text


@pytest.mark.parametrize("digest", ["sha256:xyz", "md5:" + "0" * 32, "sha256:" + "0" * 63, "x" * 300])
def test_a_malformed_digest_is_a_400_page(site: Site, digest: str) -> None:
    with site.signed_in() as client:
        answer = client.get(f"{release_path(FILED)}/events/{site.index('junit')}/files/{digest}")
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("text/html")


def test_a_token_scoped_to_another_product_is_refused_page_event_and_file(site: Site) -> None:
    index = site.index("junit")
    digest = site.outputs["junit"]["predicate"]["report_digest"]
    paths = [
        release_path(FILED),
        f"{release_path(FILED)}/events/{index}",
        f"{release_path(FILED)}/events/{index}/files/{digest}",
        "/ui/releases/no-such-product/1",
        f"{release_path(FILED)}/events/abc",  # the scope is checked first: nothing about the path leaks
    ]
    with site.signed_in(site.other_product) as client:
        for path in paths:
            answer = client.get(path)
            assert answer.status_code == 403, (path, answer.text)
            assert "may not act for product" in answer.text
            assert str(index) not in text_of(answer.text).replace(path, "")
    with site.signed_in(site.live.appender_token) as client:  # scoped to the product: it reads it
        for path in paths[:3]:
            assert client.get(path).status_code == 200, path


def test_without_a_session_event_pages_and_files_send_to_sign_in(site: Site) -> None:
    index = site.index("junit")
    digest = site.outputs["junit"]["predicate"]["report_digest"]
    with site.client() as client:
        for path in (
            f"{release_path(FILED)}/events/{index}",
            f"{release_path(FILED)}/events/{index}/files/{digest}",
        ):
            answer = client.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/ui/login?next=%2Fui%2Freleases")


# --- in a browser ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    del site  # started first: see browser_support
    with launched_browser() as launched:
        yield launched


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_the_release_and_event_pages_fit_the_screen(
    browser: Any, site: Site, screen: str, tmp_path: Path
) -> None:
    width = WIDTHS[screen]
    page = signed_in_page(browser, site.url, site.auditor, width, start=release_path(SOLD))
    assert page.inner_text("h1") == f"{PRODUCT} {SOLD}"
    overflow = fits_width(page)
    assert overflow <= 0, f"the release page is {overflow} px wider than a {width} px screen"
    screenshot(page, f"release-{screen}", tmp_path)
    deny = site.played.deny.answer["receipt"]["index"]
    page.click(f"section[aria-labelledby=timeline] a[href$='/events/{deny}']")
    page.wait_for_selector("#gate-findings")
    assert fits_width(page) <= 0
    screenshot(page, f"event-gate-{screen}", tmp_path)
    page.goto(f"{site.url}{release_path(FILED)}/events/{site.index('junit')}")
    page.wait_for_selector("#failing-tests")
    overflow = fits_width(page)
    assert overflow <= 0, f"the event page is {overflow} px wider than a {width} px screen"
    screenshot(page, f"event-junit-{screen}", tmp_path)
    page.goto(f"{site.url}{release_path(FILED)}/events/{site.index('codeql')}")
    page.wait_for_selector("#findings")
    assert fits_width(page) <= 0
    screenshot(page, f"event-sarif-{screen}", tmp_path)
    page.close()
