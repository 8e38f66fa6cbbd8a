"""The dashboard in a real browser (issue #15): the measures and their charts, as the API answers them.

On the ledger of metrics_support (a release deployed, one rolled back, one whose deployment
failed, exceptions open, overdue and reviewed), a person signs in and reads the dashboard at a
desktop's and at a phone's width: every figure is the one `/v1/metrics/…` answers, each chart is
an image with a name, a description and its numbers as a table, and nothing is wider than the
screen. A token limited to another product sees none of it and is refused the story's product.
Screenshots go to EVLEDGER_SCREENSHOTS (browser_support), to be looked at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import WIDTHS, fits_width, launched_browser, screenshot, signed_in_page
from metrics_support import OTHER, MetricsWorld, metrics_world

from cli import story as s

# The card on the page, and where the API's answer holds its value.
FIGURES = {
    "deployments": ("delivery", ("deployments",)),
    "lead-time": ("delivery", ("lead_time", "median_seconds")),
    "change-failure-rate": ("delivery", ("change_failure_rate",)),
    "time-to-restore": ("delivery", ("time_to_restore", "median_seconds")),
    "complete-evidence": ("readiness", ("evidence", "share_complete")),
    "approval-latency": ("readiness", ("approvals", "latency", "median_seconds")),
    "exceptions-granted": ("readiness", ("exceptions", "granted")),
    "open-reviews": ("readiness", ("exceptions", "open_reviews")),
}
CHARTS = ("deployments", "lead-time", "change-failure", "evidence", "approval-latency", "exceptions")


@pytest.fixture(scope="module")
def world(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetricsWorld]:
    with metrics_world(pg_server_dsn, tmp_path_factory.mktemp("console-dashboard")) as built:
        yield built


@pytest.fixture(scope="module")
def browser(world: MetricsWorld) -> Iterator[Any]:
    del world  # started first: see browser_support
    with launched_browser() as launched:
        yield launched


def _api(world: MetricsWorld, which: str, secret: str, **params: str) -> dict[str, Any]:
    response = httpx.get(
        f"{world.live.url}/v1/metrics/{which}", params=params, headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _value(answer: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        answer = answer[key]
    return answer


def _shown(page: Any) -> dict[str, str]:
    cards = page.locator(".figure")
    return {
        cards.nth(i).get_attribute("data-measure"): cards.nth(i).get_attribute("data-value")
        for i in range(cards.count())
    }


def _csp_reports(page: Any) -> list[str]:
    reports: list[str] = []
    page.on("console", lambda m: reports.append(m.text) if "Content Security Policy" in m.text else None)
    return reports


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_the_dashboard_shows_the_apis_figures_and_charts(
    browser: Any, world: MetricsWorld, screen: str, tmp_path: Path
) -> None:
    url = world.live.url
    page = signed_in_page(browser, url, world.auditor, WIDTHS[screen], start="/ui/dashboard")
    reports = _csp_reports(page)
    page.reload()
    assert page.inner_text("h1") == "Dashboard"
    answers = {which: _api(world, which, world.auditor) for which in ("delivery", "readiness")}
    shown = _shown(page)
    assert set(shown) == set(FIGURES)
    for measure, (which, path) in FIGURES.items():
        expected = _value(answers[which], path)
        assert shown[measure] == ("" if expected is None else str(expected)), measure
    assert page.inner_text("[data-measure=deployments] .figure-value") == "2"
    assert page.inner_text("[data-measure=change-failure-rate] .figure-value") == "50%"
    assert page.inner_text("[data-measure=complete-evidence] .figure-value") == "50%"
    assert page.inner_text("[data-measure=open-reviews] .figure-value") == "2"
    assert "1 overdue" in page.inner_text("[data-measure=open-reviews] .figure-note")

    for key in CHARTS:
        chart = page.locator(f"#chart-{key}")
        title = chart.locator("figcaption").inner_text()
        image = chart.get_by_role("img", name=title, exact=True)  # its accessible name, as computed
        assert image.count() == 1
        described = page.locator(f"#{image.get_attribute('aria-describedby')}").text_content()
        assert described.startswith("13 weeks from ")
        assert chart.locator("details table tbody tr").count() == 13
    last_week = page.locator("#chart-deployments details table tbody tr").last
    assert last_week.locator("td").all_text_contents() == ["2", "1", "1"]  # in a closed <details>
    assert page.locator("#chart-deployments rect.bar").count() > 0
    assert page.locator("[style]").count() == 0  # the CSP would refuse them

    rows = page.locator("section[aria-labelledby=shipped] tbody tr")
    assert rows.count() == 2
    assert "non-compliant" in rows.first.inner_text()  # B, deployed last, without a gate
    assert world.versions[2] in page.inner_text("section[aria-labelledby=overdue]")

    overflow = fits_width(page)
    assert overflow <= 0, f"the page is {overflow} px wider than a {WIDTHS[screen]} px screen"
    page.locator("#chart-deployments details summary").click()
    screenshot(page, f"dashboard-{screen}", tmp_path)
    assert fits_width(page) <= 0  # the opened table scrolls inside its box
    assert reports == []
    page.close()


def test_the_filters_pick_the_environment_and_period_and_refuse_a_bad_date(
    browser: Any, world: MetricsWorld, tmp_path: Path
) -> None:
    url = world.live.url
    page = signed_in_page(browser, url, world.auditor, WIDTHS["desktop"], start="/ui/dashboard")
    page.fill("#environment", "staging")
    page.select_option("#days", "30")
    page.click("form.dashboard-filters button[type=submit]")
    page.wait_for_url(f"{url}/ui/dashboard?*environment=staging*")
    assert _shown(page)["deployments"] == "0"
    assert "deployments to staging" in page.inner_text(".scope")
    assert page.input_value("#environment") == "staging"
    response = page.goto(f"{url}/ui/dashboard?from=31-12-2026")
    assert response.status == 400
    assert "from must be a date" in page.inner_text("[role=alert]")
    assert page.locator("form.dashboard-filters").count() == 1  # the form, to try again
    response = page.goto(f"{url}/ui/dashboard?product=no-such-product")
    assert response.status == 404
    screenshot(page, "dashboard-unknown-product", tmp_path)
    page.close()


def test_a_token_limited_to_another_product_sees_none_of_the_story(
    browser: Any, world: MetricsWorld, tmp_path: Path
) -> None:
    url = world.live.url
    page = signed_in_page(browser, url, world.other, WIDTHS["phone"], start="/ui/dashboard")
    assert page.locator("#product option").all_inner_texts() == ["All my products", OTHER]
    assert _shown(page)["deployments"] == "0"
    assert _shown(page)["open-reviews"] == "0"
    assert s.PRODUCT not in page.inner_text("main")
    screenshot(page, "dashboard-other-product", tmp_path)
    response = page.goto(f"{url}/ui/dashboard?product={s.PRODUCT}")
    assert response.status == 403
    assert "may not read the metrics of product" in page.inner_text("[role=alert]")
    assert page.locator(".figure").count() == 0  # no figure of it, nor of anything else
    page.close()
