"""`GET /v1/metrics/delivery` and `GET /v1/metrics/readiness` on a live ledger (issue #15).

The ledger of metrics_support holds three releases: one deployed and sealed, one deployed and
rolled back, one whose deployment failed, with approvals and exceptions open, overdue and
reviewed. The figures are checked against what was recorded (and the evidence share against the
compliance route), then the filters, the refusals of bad input, and the token's product scope.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from metrics_support import OTHER, MetricsWorld, metrics_world

from cli import story as s
from ledger.core.encoding import format_time

DELIVERY, READINESS = "/v1/metrics/delivery", "/v1/metrics/readiness"


@pytest.fixture(scope="module")
def world(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetricsWorld]:
    with metrics_world(pg_server_dsn, tmp_path_factory.mktemp("metrics-routes")) as built:
        yield built


def _get(world: MetricsWorld, path: str, secret: str | None = None, **params: str) -> httpx.Response:
    headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
    return httpx.get(f"{world.live.url}{path}", params=params, headers=headers, timeout=30)


def _answer(world: MetricsWorld, path: str, secret: str | None = None, **params: str) -> dict[str, Any]:
    response = _get(world, path, secret or world.auditor, **params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_delivery_counts_deployments_failures_rollbacks_and_restores(world: MetricsWorld) -> None:
    answer = _answer(world, DELIVERY)
    assert answer["products"] is None
    assert answer["environment"] == "production"
    assert (answer["deployments"], answer["failed_deployments"], answer["releases_deployed"]) == (2, 1, 2)
    assert (answer["rollbacks"], answer["change_failure_rate"]) == (1, 0.5)
    assert answer["lead_time"]["count"] == 2
    assert answer["lead_time"]["median_seconds"] >= 0
    assert answer["releases_without_change"] == 0
    assert answer["time_to_restore"]["count"] == 1
    assert (answer["unrestored"], answer["rollbacks_unmatched"]) == (0, 0)
    assert len(answer["weeks"]) == 13
    assert sum(w["deployments"] for w in answer["weeks"]) == 2
    assert sum(w["rollbacks"] for w in answer["weeks"]) == 1
    assert answer["weeks"][-1]["deployments"] == 2  # all of it happened just now, in the last week
    until = datetime.fromisoformat(answer["until"])
    assert datetime.fromisoformat(answer["since"]) == until - timedelta(days=90)
    assert answer["truncated"] is False
    assert answer["limits"] == {"events_per_kind": 10000, "releases_read": 200, "releases_evaluated": 50}


def test_readiness_judges_each_release_deployed_as_the_compliance_route_does(world: MetricsWorld) -> None:
    answer = _answer(world, READINESS)
    evidence = answer["evidence"]
    assert (evidence["releases_deployed"], evidence["evaluated"], evidence["share_complete"]) == (2, 2, 0.5)
    assert evidence["policy_entry"] == world.played.policy["index"]
    statuses = {r["version"]: r["status"] for r in evidence["releases"]}
    a, b, _ = world.versions
    assert statuses == {a: "compliant", b: "non-compliant"}  # B went out without a gate allow
    for version, status in statuses.items():
        compliance = _answer(world, f"/v1/releases/{s.PRODUCT}/{version}/compliance")
        assert compliance["status"] == status
    approvals = answer["approvals"]
    assert (approvals["count"], approvals["approved"], approvals["rejected"]) == (8, 8, 0)
    assert approvals["latency"]["count"] == 8
    assert approvals["without_reviewed_entries"] == 0
    roles = {r["role"]: r["count"] for r in approvals["by_role"]}
    assert roles == {"clinical": 2, "qa": 2, "release-manager": 2, "security": 2}
    exceptions = answer["exceptions"]
    assert (exceptions["granted"], exceptions["reviewed"], exceptions["reviewed_late"]) == (3, 1, 0)
    assert (exceptions["open_reviews"], exceptions["overdue_reviews"]) == (2, 1)
    assert [(o["version"], o["rule"]) for o in exceptions["overdue"]] == [
        (world.versions[2], "tests.required-suites")
    ]
    last = answer["weeks"][-1]
    assert (last["releases_evaluated"], last["approvals"], last["exceptions_granted"]) == (2, 8, 3)
    assert (last["open_reviews"], last["overdue_reviews"]) == (2, 1)


def test_filters_product_environment_and_period(world: MetricsWorld) -> None:
    mine = _answer(world, DELIVERY, product=s.PRODUCT)
    assert mine["products"] == [s.PRODUCT]
    assert mine["deployments"] == 2
    staging = _answer(world, DELIVERY, environment="staging")
    assert (staging["deployments"], staging["failed_deployments"], staging["rollbacks"]) == (0, 0, 0)
    assert staging["change_failure_rate"] is None
    yesterday = format_time(datetime.now(UTC) - timedelta(days=1))
    before = _answer(world, READINESS, until=yesterday)
    assert before["until"] == yesterday
    assert before["evidence"]["releases_deployed"] == 0
    assert before["evidence"]["share_complete"] is None
    assert (before["exceptions"]["granted"], before["exceptions"]["open_reviews"]) == (0, 0)
    end = datetime.now(UTC) + timedelta(minutes=1)
    week = _answer(world, DELIVERY, since=format_time(end - timedelta(days=7)), until=format_time(end))
    assert len(week["weeks"]) == 1
    assert week["deployments"] == 2


@pytest.mark.parametrize("path", [DELIVERY, READINESS])
@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"since": "yesterday"}, "since must be an RFC 3339 time"),
        ({"until": "2026-01-31T12:00:00"}, "until must be an RFC 3339 time"),  # no zone
        ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "must be before until"),
        ({"since": "2026-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "must be before until"),
        ({"since": "2024-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "at most 366 days"),
        ({"product": "p" * 300}, "at most 256 characters"),
        ({"environment": "e" * 300}, "at most 256 characters"),
    ],
)
def test_bad_input_is_a_400_that_says_why(
    world: MetricsWorld, path: str, params: dict[str, str], words: str
) -> None:
    response = _get(world, path, world.auditor, **params)
    assert response.status_code == 400, response.text
    assert words in response.json()["detail"]


@pytest.mark.parametrize("path", [DELIVERY, READINESS])
def test_a_product_with_no_release_is_a_404(world: MetricsWorld, path: str) -> None:
    response = _get(world, path, world.auditor, product="no-such-product")
    assert response.status_code == 404
    assert "no release of product 'no-such-product'" in response.json()["detail"]


@pytest.mark.parametrize("path", [DELIVERY, READINESS])
def test_a_token_is_needed(world: MetricsWorld, path: str) -> None:
    assert _get(world, path).status_code == 401
    assert _get(world, path, "not-a-token").status_code == 401


@pytest.mark.parametrize("path", [DELIVERY, READINESS])
def test_a_token_limited_to_products_sees_only_its_own(world: MetricsWorld, path: str) -> None:
    other = _answer(world, path, world.other)
    assert other["products"] == [OTHER]
    mine = _answer(world, path, world.live.appender_token)
    assert mine["products"] == [s.PRODUCT]
    if path == DELIVERY:
        assert (other["deployments"], other["rollbacks"], other["failed_deployments"]) == (0, 0, 0)
        assert (mine["deployments"], mine["rollbacks"]) == (2, 1)
    else:
        assert other["evidence"]["releases_deployed"] == other["approvals"]["count"] == 0
        assert other["exceptions"]["granted"] == other["exceptions"]["open_reviews"] == 0
        assert mine["approvals"]["count"] == 8
    refused = _get(world, path, world.other, product=s.PRODUCT)
    assert refused.status_code == 403
    assert "may not read the metrics of product 'ivd-analyzer'" in refused.json()["detail"]
    unknown = _get(world, path, world.live.appender_token, product="no-such-product")
    assert unknown.status_code == 403  # out of its scope, whether or not it exists


def test_any_role_may_read(world: MetricsWorld) -> None:
    for secret in (world.live.admin_token, world.live.appender_token, world.auditor):
        assert _get(world, DELIVERY, secret).status_code == 200
