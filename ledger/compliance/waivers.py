"""Time-boxed exceptions (predicate `exception`) and artifact continuity (schemas/POLICY.md). Pure.

An exception turns the findings of its rule into `waived` ones only when it
is well-formed under the policy (allowed rule, justified, within the maximum
duration, review due in time) and in force when it is relied on: unexpired at
every deployment the evaluation is about, and recorded before it; before any
deployment, unexpired at the evaluation time. An exception whose review date
has passed without an `exception-review` is a finding of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from ledger.compliance.checks import COUNTED_MEANINGS, Context, Finding, finding
from ledger.compliance.facts import Item
from ledger.records import policy as pol
from ledger.records import predicates as p
from ledger.records.formats import parse_offset_time


@dataclass(frozen=True, slots=True)
class Moment:
    """A time an exception must be in force at: a deployment (its entry) or the evaluation time."""

    time: datetime
    entry: int | None
    label: str


def moments(ctx: Context, now: datetime, now_text: str) -> list[Moment]:
    """The deployments the evaluation is about, at the time the ledger recorded them; else `now`."""
    found = [
        Moment(when, d.index, f"deployment to {d.pred.environment} (entry {d.index}, {d.event.time})")
        for d in ctx.deployments
        if (when := parse_offset_time(d.event.time)) is not None
    ]
    return found or [Moment(now, None, f"the evaluation time {now_text}")]


def _problems(item: Item[p.PolicyException], policy: pol.Policy) -> list[str]:
    """Why an exception is not well-formed under the policy (empty when it is)."""
    exc, rules = item.pred, policy.exceptions
    problems = []
    if exc.rule in pol.NOT_WAIVABLE:
        problems.append(f"rule {exc.rule} can never be bypassed")
    elif exc.rule not in rules.allowed_rules:
        allowed = ", ".join(rules.allowed_rules) or "none"
        problems.append(f"the policy does not allow exceptions to rule {exc.rule} (allowed: {allowed})")
    if not exc.justification.strip():
        problems.append("it has no justification")
    recorded, expires, due = (
        parse_offset_time(item.event.time),
        parse_offset_time(exc.expires),
        parse_offset_time(exc.review_due),
    )
    if expires is None or due is None:
        problems.append("its expires and review_due must be RFC 3339 times with an offset")
    if recorded is None or expires is None or due is None:
        return problems
    if expires <= recorded:
        problems.append(f"it expires ({exc.expires}) before it was recorded ({item.event.time})")
    elif expires - recorded > timedelta(days=rules.max_duration_days):
        problems.append(f"it lasts over the {rules.max_duration_days} days the policy allows")
    if due <= recorded:
        problems.append(f"its review is due ({exc.review_due}) before it was recorded")
    elif due > expires + timedelta(days=rules.review_within_days):
        problems.append(f"its review is due over {rules.review_within_days} days after it expires")
    return problems


def _not_in_force(item: Item[p.PolicyException], at: list[Moment]) -> tuple[str, list[int]] | None:
    """Why a well-formed exception does not cover every moment (None when it does), with entries."""
    expires = parse_offset_time(item.pred.expires)
    for moment in at:
        if moment.entry is not None and item.index > moment.entry:
            return f"was recorded after {moment.label}", [moment.entry]
        if expires is not None and expires <= moment.time:
            return f"had expired ({item.pred.expires}) at {moment.label}", [] if moment.entry is None else [
                moment.entry
            ]
    return None


def apply_exceptions(
    ctx: Context, findings: list[Finding], now: datetime, now_text: str
) -> tuple[list[Finding], list[Finding]]:
    """Waive findings covered by an exception in force; return (findings, exception findings).

    Precondition: `findings` are the evidence rules' findings (none of them waived yet).
    """
    out: list[Finding] = []
    usable: dict[str, list[Item[p.PolicyException]]] = {}
    for item in ctx.facts.exceptions:
        problems = _problems(item, ctx.policy)
        if problems:
            message = f"exception (entry {item.index}) for rule {item.pred.rule} does not count: "
            out.append(finding(pol.EXCEPTION_VALID, "fail", message + "; ".join(problems), [item.index]))
        else:
            usable.setdefault(item.pred.rule, []).append(item)
    at = moments(ctx, now, now_text)
    waivers: dict[str, int] = {}
    for rule in sorted({f.rule for f in findings} & usable.keys()):
        reasons = [(item, _not_in_force(item, at)) for item in usable[rule]]
        in_force = [item for item, reason in reasons if reason is None]
        if in_force:
            waivers[rule] = in_force[0].index
            continue
        for item, reason in reasons:
            if reason is not None:
                message = f"exception (entry {item.index}) for rule {rule} {reason[0]}, so it does not apply"
                out.append(finding(pol.EXCEPTION_VALID, "fail", message, [item.index, *reason[1]]))
    waived = [
        msgspec.structs.replace(
            f, status="waived", waived_by=waivers[f.rule], entries=sorted({*f.entries, waivers[f.rule]})
        )
        if f.rule in waivers
        else f
        for f in findings
    ]
    return waived, out + _reviews(ctx, now, now_text)


def _reviews(ctx: Context, now: datetime, now_text: str) -> list[Finding]:
    """exceptions.review-due: every exception reviewed by its review date (late or absent: a finding)."""
    out = []
    for item in ctx.facts.exceptions:
        due = parse_offset_time(item.pred.review_due)
        if due is None:
            continue  # reported by exceptions.valid
        reviews = [
            r for r in ctx.facts.reviews if r.pred.exception_entry == item.index and r.index > item.index
        ]
        first = parse_offset_time(reviews[0].event.time) if reviews else None
        if reviews and first is not None and first > due:
            message = (
                f"exception (entry {item.index}) for rule {item.pred.rule} was reviewed late: "
                f"due {item.pred.review_due}, reviewed {reviews[0].event.time} (entry {reviews[0].index})"
            )
            out.append(finding(pol.EXCEPTION_REVIEW, "fail", message, [item.index, reviews[0].index]))
        elif not reviews and due < now:
            message = (
                f"exception (entry {item.index}) for rule {item.pred.rule} was due for review at "
                f"{item.pred.review_due}; no exception review is recorded by {now_text}"
            )
            out.append(finding(pol.EXCEPTION_REVIEW, "fail", message, [item.index]))
    return out


def check_continuity(ctx: Context) -> list[Finding]:
    """continuity.artifact: in continuity environments the deployed digest is the one built and evidenced."""
    facts = ctx.facts
    out = []
    if not facts.builds:
        out.append(finding(pol.CONTINUITY, "missing", "no build recorded yet: no artifact to release", []))
    built = {a.digest for b in facts.builds for a in facts.build_artifacts(b)}
    evidenced: dict[str, list[tuple[int, tuple[str, ...]]]] = {
        "tested": [(t.index, t.event.subjects) for t in facts.tests if t.pred.result == "passed"],
        "validated": [(v.index, v.event.subjects) for v in facts.validations if v.pred.result == "passed"],
        "approved": [
            (a.index, (a.pred.artifact_digest.lower(),))
            for a in facts.approvals
            if a.pred.decision == "approved" and a.pred.meaning in COUNTED_MEANINGS
        ],
    }
    for deployment in ctx.deployments:
        if deployment.pred.environment not in ctx.policy.continuity.environments:
            continue
        digest = deployment.pred.artifact_digest.lower()
        problems, involved = [], [deployment.index]
        if digest not in built:
            problems.append("no build of this release produced it")
        for what, items in evidenced.items():
            if items and not any(digest in subjects for _, subjects in items):
                others = sorted({s for _, subjects in items for s in subjects if s.startswith("sha256:")})
                problems.append(f"it is not what was {what} ({', '.join(others)})")
                involved += [index for index, _ in items]
        if problems:
            message = (
                f"deployment to {deployment.pred.environment} (entry {deployment.index}) put {digest} there, "
                f"but {'; '.join(problems)}"
            )
            out.append(finding(pol.CONTINUITY, "fail", message, involved))
    return out
