"""A ledger with what the delivery and readiness measures count (issue #15), for their tests.

Three releases of the story's product, on one live `evledger serve` (story_support):
- A (`play_story`): changed, approved, an exception (review due in three weeks), gated,
  deployed to production and sealed;
- B: changed, approved, an exception reviewed at once, deployed to production without a gate
  (so not compliant), then rolled back to A's artifact;
- C: a change, an exception whose review date has already passed, and a failed deployment.
Expected, for production over the default period: 2 deployments, 1 failed, 1 rollback, one
restore, 2 releases deployed (1 of 2 with complete evidence), 8 approvals, 3 exceptions granted,
2 reviews open, 1 overdue.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger_harness import token
from story_support import LiveLedger, Played, live_ledger, play_story, signed

from cli import story as s
from cli.client import LedgerClient
from ledger.core.encoding import format_time
from ledger.records import predicates as p

OTHER = "other-product"  # a product of no release: a token limited to it sees nothing of the story


@dataclass(frozen=True)
class MetricsWorld:
    """The live ledger, its releases, and tokens: an auditor's, and one limited to OTHER."""

    live: LiveLedger
    played: Played
    versions: tuple[str, str, str]
    auditor: str
    other: str
    rollback_entry: int


def _quiet(_: str) -> None:
    """The story's printer, silenced."""


def _append(client: LedgerClient, story: s.Story, who: str, predicate_type: str, predicate: object) -> int:
    (receipt,) = client.append([signed(story.people[who].key, predicate_type, predicate, story.artifact)])
    index: int = receipt["index"]
    return index


def _rolled_back(live: LiveLedger, version: str, back_to: str) -> int:
    """Release B: evidence, approvals, an exception reviewed, a deployment without a gate, a rollback."""
    story = s.cast(live.ledger.signer, version)
    story.artifact = "sha256:" + "5b" * 32
    with live.admin() as admin, live.appender() as client:
        s.register_people(admin, story)
        s.build_and_test(client, story, _quiet)
        s.approve(client, story, _quiet)
        s.record_exception(client, story, _quiet)
        review = p.ExceptionReview(
            story.release, story.receipts["exception"]["index"], "accepted", "fix planned"
        )
        _append(client, story, "release_manager", p.EXCEPTION_REVIEW, review)
        now = format_time(datetime.now(UTC))
        deployment = p.Deployment(story.release, "production", story.artifact, now, now, "succeeded")
        _append(client, story, "pipeline", p.DEPLOYMENT, deployment)
        later = format_time(datetime.now(UTC))
        rollback = p.Rollback(
            story.release,
            "production",
            story.artifact,
            back_to,
            "alarm on results",
            later,
            later,
            "succeeded",
        )
        return _append(client, story, "pipeline", p.ROLLBACK, rollback)


def _failed(live: LiveLedger, version: str) -> None:
    """Release C: a change, an exception already due for review, and a failed deployment."""
    story = s.cast(live.ledger.signer, version)
    story.artifact = "sha256:" + "6c" * 32
    now = datetime.now(UTC)
    with live.admin() as admin, live.appender() as client:
        s.register_people(admin, story)
        summary = p.ChangeSummary("Faster start-up", "Operators wait", "None to results", "Smoke tests")
        change = p.Change(
            story.release, "CHG-7", summary, "low", affects_intended_use=False,
            patient_facing_output=False, components=["ui"], author="Dana Developer",
        )  # fmt: skip
        _append(client, story, "developer", p.CHANGE, change)
        exception = p.PolicyException(
            story.release, "tests.required-suites", "Suites are being rebuilt",
            format_time(now + timedelta(days=2)), format_time(now - timedelta(days=1)),
        )  # fmt: skip
        _append(client, story, "release_manager", p.EXCEPTION, exception)
        at = format_time(now)
        failed = p.Deployment(story.release, "production", story.artifact, at, at, "failed")
        _append(client, story, "pipeline", p.DEPLOYMENT, failed)


@contextmanager
def metrics_world(server_dsn: str, directory: Path) -> Iterator[MetricsWorld]:
    """A live ledger holding releases A, B and C, for a whole test module."""
    with live_ledger(server_dsn, directory) as live:
        versions = ("3.0.1", "3.0.2", "3.0.3")
        played = play_story(live, versions[0])
        rollback = _rolled_back(live, versions[1], played.story.artifact)
        _failed(live, versions[2])
        dsn = live.ledger.dsn
        yield MetricsWorld(
            live, played, versions, token(dsn, "auditor"), token(dsn, "auditor", [OTHER]), rollback
        )
