"""What the delivery and readiness measures read of the ledger: a period, and event summaries. Pure.

`ledger.compliance.delivery_metrics` computes the measures from these; `ledger.query.metrics`
reads them from the events it fetches (`ledger.rules.events.Event`) with the functions named
after them. Every time is the time the ledger recorded an entry, except an approval's
`signed_at` (docs/http-api.md, "Metrics").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ledger.core.encoding import format_time
from ledger.errors import InputError
from ledger.records import predicates as p
from ledger.records.formats import parse_offset_time
from ledger.rules.events import Event

DEFAULT_PERIOD = timedelta(days=90)
MAX_PERIOD = timedelta(days=366)  # at most 53 weekly points, and a bounded search
WEEK = timedelta(days=7)
Release = tuple[str, str]  # (product, version)


@dataclass(frozen=True, slots=True)
class Period:
    """The span measured: from `since` (included) to `until` (excluded)."""

    since: datetime
    until: datetime

    def __contains__(self, moment: datetime) -> bool:
        """Whether `moment` falls in the period."""
        return self.since <= moment < self.until

    def weeks(self) -> list[Period]:
        """Seven-day spans from `since`; the last one ends at `until` (it may be shorter)."""
        spans, start = [], self.since
        while start < self.until:
            spans.append(Period(start, min(start + WEEK, self.until)))
            start += WEEK
        return spans


def period(since: datetime | None, until: datetime | None, now: datetime) -> Period:
    """The period asked for: `until` defaults to `now`, `since` to DEFAULT_PERIOD before `until`.

    InputError when `since` is not before `until`, or the period is longer than MAX_PERIOD.
    """
    end = now if until is None else until
    start = end - DEFAULT_PERIOD if since is None else since
    if start >= end:
        raise InputError(f"since ({format_time(start)}) must be before until ({format_time(end)})")
    if end - start > MAX_PERIOD:
        raise InputError(f"a period is at most {MAX_PERIOD.days} days long")
    return Period(start, end)


# --- the events, as the measures read them ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deployed:
    """A deployment record: its entry, when the ledger recorded it, where it went, with what result."""

    index: int
    recorded: datetime
    release: Release
    environment: str
    succeeded: bool
    digest: str


@dataclass(frozen=True, slots=True)
class RolledBack:
    """A rollback record: its entry, when recorded, where, the digest it took out, with what result."""

    index: int
    recorded: datetime
    release: Release
    environment: str
    succeeded: bool
    from_digest: str


@dataclass(frozen=True, slots=True)
class Decision:
    """An approval record: when recorded and signed, its role and decision, the newest entry it reviewed."""

    index: int
    recorded: datetime
    release: Release
    role: str
    decision: str
    signed_at: datetime | None
    reviewed_up_to: int | None  # the highest index among the entries it lists (None: it lists none)


@dataclass(frozen=True, slots=True)
class Granted:
    """An exception record: its entry, when recorded, its rule and when its review is due."""

    index: int
    recorded: datetime
    release: Release
    rule: str
    review_due: datetime | None
    review_due_text: str


@dataclass(frozen=True, slots=True)
class Reviewed:
    """An exception-review record: its entry, when recorded, and the exception it reviews."""

    index: int
    recorded: datetime
    exception_entry: int


@dataclass(frozen=True, slots=True)
class ReleaseHistory:
    """What lead time and restore read of one release: its first change record and its deployments."""

    first_change: datetime | None
    deployments: tuple[Deployed, ...]


def recorded_at(event: Event) -> datetime:
    """When the ledger recorded the event (entry times are RFC 3339 UTC, `format_time`'s)."""
    moment = parse_offset_time(event.time)
    if moment is None:
        raise InputError(f"entry {event.index} has no readable time")
    return moment


def _release(event: Event, named: p.Release) -> Release:
    return event.release or (named.product, named.version)


def deployed(event: Event) -> Deployed | None:
    """The deployment an event records (None for any other event)."""
    d = event.predicate
    if not isinstance(d, p.Deployment):
        return None
    release = _release(event, d.release)
    digest = d.artifact_digest.lower()
    return Deployed(event.index, recorded_at(event), release, d.environment, d.result == "succeeded", digest)


def rolled_back(event: Event) -> RolledBack | None:
    """The rollback an event records (None for any other event)."""
    r = event.predicate
    if not isinstance(r, p.Rollback):
        return None
    release = _release(event, r.release)
    succeeded = r.result == "succeeded"
    return RolledBack(
        event.index, recorded_at(event), release, r.environment, succeeded, r.from_digest.lower()
    )


def decision(event: Event) -> Decision | None:
    """The approval an event records (None for any other event)."""
    a = event.predicate
    if not isinstance(a, p.Approval):
        return None
    signed = parse_offset_time(a.signed_at) if a.signed_at else None
    reviewed = max(a.entries) if a.entries else None
    release = _release(event, a.release)
    return Decision(event.index, recorded_at(event), release, a.role, a.decision, signed, reviewed)


def granted(event: Event) -> Granted | None:
    """The exception an event records (None for any other event)."""
    e = event.predicate
    if not isinstance(e, p.PolicyException):
        return None
    due = parse_offset_time(e.review_due)
    return Granted(event.index, recorded_at(event), _release(event, e.release), e.rule, due, e.review_due)


def reviewed(event: Event) -> Reviewed | None:
    """The exception review an event records (None for any other event)."""
    r = event.predicate
    if not isinstance(r, p.ExceptionReview):
        return None
    return Reviewed(event.index, recorded_at(event), r.exception_entry)
