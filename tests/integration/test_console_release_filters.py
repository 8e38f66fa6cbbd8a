"""The console's releases list filters (issue #15): compliance and the environment deployed to.

Releases of the small qa-only policy (tests/integration/release_support.py): one approved and
deployed to staging (compliant), one never decided and tried on production, in a failed
deployment (incomplete), one rejected (non-compliant), and one of another product. Each filter
narrows to exactly the right releases, on the page and (the environment) on `GET /v1/releases`;
each release shows its compliance status; a page evaluates at most 25 releases and leads on;
a bad filter value is a clear 400 page, never a 500.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from html import unescape

import asyncpg
import httpx
import msgspec
import pytest
from console_support import console_client
from ledger_harness import Ledger, evidence, init_ledger, live_server, register, token
from release_support import ARTIFACT, PRODUCT, append, decision, now, set_up
from service_support import check_error, scratch_database
from story_support import signed

from ledger.core.keys import SignerKey
from ledger.records import predicates as p
from ledger.storage import entry_queries

OTHER = "other-product"
BULK = "bulk"


@dataclass(frozen=True)
class Site:
    url: str
    ledger: Ledger
    auditor: str
    scoped: str  # an auditor's token for PRODUCT only

    def signed_in(self, secret: str | None = None) -> AbstractContextManager[httpx.Client]:
        return console_client(self.url, secret or self.auditor, timeout=60)


def deploy(
    url: str, appender: str, key: SignerKey, release: tuple[str, str], *, into: str, result: str
) -> None:
    """Record a deployment of the release's artifact into environment `into`."""
    started = now()
    deployment = p.Deployment(p.Release(*release), into, ARTIFACT, started, started, result)  # type: ignore[arg-type]
    append(url, appender, signed(key, p.DEPLOYMENT, deployment, ARTIFACT))


@pytest.fixture(scope="module")
def site(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with scratch_database(pg_server_dsn) as dsn:
        ledger = init_ledger(dsn, tmp_path_factory.mktemp("release-filters"))
        admin, appender, auditor = (token(dsn, role) for role in ("admin", "appender", "auditor"))
        with live_server(ledger) as url:
            people = set_up(url, ledger, admin, appender, "1.0")
            append(url, appender, decision(people, "1.0", "approved", "fine"))
            deploy(url, appender, people.pipeline, (PRODUCT, "1.0"), into="staging", result="succeeded")
            people = set_up(url, ledger, admin, appender, "2.0")
            deploy(url, appender, people.pipeline, (PRODUCT, "2.0"), into="production", result="failed")
            people = set_up(url, ledger, admin, appender, "3.0")
            append(url, appender, decision(people, "3.0", "rejected", "a defect"))
            deploy(url, appender, people.pipeline, (PRODUCT, "3.0"), into="staging-eu", result="succeeded")
            release = p.Release(OTHER, "1.0")
            build = p.Build(release, "git.test/other", "beef", "b-9", "ci", [p.Artifact("o.tar", ARTIFACT)])
            append(url, appender, signed(people.pipeline, p.BUILD, build, ARTIFACT))
            deploy(url, appender, people.pipeline, (OTHER, "1.0"), into="staging", result="succeeded")
            bulk = SignerKey.generate("people.test/bulk")
            append(url, admin, register(ledger.signer, bulk, ["appender"]))
            envelopes = [evidence(bulk, product=BULK, version=f"{n:02}", n=n) for n in range(26)]
            batch = httpx.post(
                url + "/v1/entries/batch", content=msgspec.json.encode({"envelopes": envelopes}),
                headers={"Authorization": f"Bearer {appender}"}, timeout=60,
            )  # fmt: skip
            assert batch.status_code == 201, batch.text
            yield Site(url, ledger, auditor, token(dsn, "auditor", [PRODUCT]))


def listed(html: str) -> list[tuple[str, str, str]]:
    """(product, version, compliance shown) of each release row of a releases page."""
    rows = re.findall(
        r'<tr>\s*<td[^>]*>(.*?)</td>\s*<td[^>]*><a href="[^"]+">(.*?)</a></td>\s*<td[^>]*>(.*?)</td>',
        html,
        re.DOTALL,
    )
    return [(unescape(a), unescape(b), " ".join(re.sub(r"<[^>]+>", " ", c).split())) for a, b, c in rows]


def versions(client: httpx.Client, query: str) -> set[tuple[str, str]]:
    answer = client.get(f"/ui/releases?{query}")
    assert answer.status_code == 200, answer.text
    return {(product, version) for product, version, _ in listed(answer.text)}


def test_each_release_shows_its_compliance_status(site: Site) -> None:
    with site.signed_in() as client:
        rows = listed(client.get(f"/ui/releases?product={PRODUCT}").text)
    assert rows == [
        (PRODUCT, "1.0", "compliant"),
        (PRODUCT, "2.0", "incomplete"),
        (PRODUCT, "3.0", "non-compliant"),
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (f"product={PRODUCT}&compliance=compliant", {"1.0"}),
        (f"product={PRODUCT}&compliance=incomplete", {"2.0"}),
        (f"product={PRODUCT}&compliance=non-compliant", {"3.0"}),
        (f"product={PRODUCT}&compliance=", {"1.0", "2.0", "3.0"}),
        (f"product={PRODUCT}&deployed_to=staging", {"1.0"}),
        (f"product={PRODUCT}&deployed_to=production", {"2.0"}),  # a failed attempt is a deployment
        (f"product={PRODUCT}&deployed_to=staging-eu", {"3.0"}),
        (f"product={PRODUCT}&deployed_to=nowhere", set()),
        (f"product={PRODUCT}&deployed_to=staging&compliance=compliant", {"1.0"}),
        (f"product={PRODUCT}&deployed_to=staging&compliance=incomplete", set()),
        (f"product={PRODUCT}&deployed_to=staging-eu&state=open", {"3.0"}),
        (f"product={PRODUCT}&deployed_to=staging-eu&state=sealed", set()),
    ],
)
def test_each_filter_narrows_to_the_right_releases(site: Site, query: str, expected: set[str]) -> None:
    with site.signed_in() as client:
        assert versions(client, query) == {(PRODUCT, v) for v in expected}


def test_the_environment_filter_spans_products(site: Site) -> None:
    with site.signed_in() as client:
        assert versions(client, "deployed_to=staging") == {(PRODUCT, "1.0"), (OTHER, "1.0")}
    with site.signed_in(site.scoped) as client:  # a scoped token: its products only
        assert versions(client, "deployed_to=staging") == {(PRODUCT, "1.0")}
        assert versions(client, "") == {(PRODUCT, v) for v in ("1.0", "2.0", "3.0")}
        assert client.get(f"/ui/releases?product={OTHER}&deployed_to=staging").status_code == 403


def test_the_json_releases_list_filters_by_environment(site: Site) -> None:
    reader = {"Authorization": f"Bearer {site.auditor}"}
    answer = httpx.get(site.url + "/v1/releases", params={"deployed_to": "staging"}, headers=reader)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(r["product"], r["version"]) for r in body["releases"]] == [(PRODUCT, "1.0"), (OTHER, "1.0")]
    assert body["next_cursor"] is None
    paged = httpx.get(
        site.url + "/v1/releases", params={"deployed_to": "staging", "limit": 1}, headers=reader
    )
    first = paged.json()
    assert [r["product"] for r in first["releases"]] == [PRODUCT]
    rest = httpx.get(
        site.url + "/v1/releases",
        params={"deployed_to": "staging", "limit": 1, "cursor": first["next_cursor"]},
        headers=reader,
    ).json()
    assert [(r["product"], r["version"]) for r in rest["releases"]] == [(OTHER, "1.0")]
    for bad in ("x" * 257, "prod\x01"):
        check_error(httpx.get(site.url + "/v1/releases", params={"deployed_to": bad}, headers=reader), 400)


def test_a_page_evaluates_at_most_25_releases_and_leads_on(site: Site) -> None:
    with site.signed_in() as client:
        first = client.get(f"/ui/releases?product={BULK}")
        rows = listed(first.text)
        assert [v for _, v, _ in rows] == [f"{n:02}" for n in range(25)]
        assert "at most 25 releases a page" in first.text
        link = re.search(r'<a href="([^"]+)">More releases</a>', first.text)
        assert link is not None
        assert "product=bulk" in unescape(link.group(1))
        second = listed(client.get(unescape(link.group(1))).text)
        assert [v for _, v, _ in second] == ["25"]
        # Filtered by compliance, a page shows the matching ones among the 25 it evaluated.
        filtered = client.get(f"/ui/releases?product={BULK}&compliance=compliant")
        assert listed(filtered.text) == []
        assert "More releases" in filtered.text
        assert "may be short, even empty" in filtered.text
        assert "No release matches on this page" in filtered.text
        assert "compliance=compliant" in unescape(re.search(r'href="([^"]+)">More', filtered.text).group(1))  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("compliance=pass", "compliance must be one of compliant, non-compliant, incomplete"),
        ("compliance=" + "x" * 5000, "compliance must be one of"),
        ("state=closed", "state must be open or sealed"),
        ("deployed_to=" + "e" * 300, "environment is longer than 256 characters"),
        ("deployed_to=prod%01", "holds a control character"),
        ("product=" + "p" * 300, "product is longer than 256 characters"),
        ("cursor=not-a-cursor", "is not one this server issued"),
        ("deployed_to=%00", "NUL"),
    ],
)
def test_a_bad_filter_value_is_a_clear_400_page(site: Site, query: str, says: str) -> None:
    with site.signed_in() as client:
        answer = client.get(f"/ui/releases?{query}")
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in answer.text
    assert says in unescape(answer.text)
    assert "Traceback" not in answer.text


def test_the_filters_need_a_session(site: Site) -> None:
    with httpx.Client(base_url=site.url, follow_redirects=False) as client:
        answer = client.get("/ui/releases?compliance=compliant&deployed_to=staging")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/ui/login?next=%2Fui%2Freleases%3Fcompliance")


def test_the_deployments_of_a_page_are_read_through_an_index(site: Site) -> None:
    async def plan() -> str:
        conn = await asyncpg.connect(site.ledger.dsn)
        try:
            await conn.execute("SET enable_seqscan = off")  # a tiny table: ask whether an index serves
            args = [p.DEPLOYMENT, [PRODUCT, OTHER], ["1.0", "1.0"]]
            rows = await conn.fetch(f"EXPLAIN {entry_queries.RELEASE_ENTRIES_OF_KIND_SQL}", *args)
            return "\n".join(r[0] for r in rows)
        finally:
            await conn.close()

    found = asyncio.run(plan())
    assert "Seq Scan on entries" not in found, found
    assert re.search(r"Index Scan using entries_(kind|release|release_seq) on entries", found), found
