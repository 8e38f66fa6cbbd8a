"""The policy's evidence rules, one function each, returning findings (schemas/POLICY.md). Pure.

Every rule reads a `Context`: the release's facts, the policy and tier, and the
candidate artifacts. A finding is `missing` when evidence the policy needs is
simply not recorded yet and `fail` when recorded evidence contradicts the
policy; it names its rule id and the entries involved. Exceptions (which turn
findings into `waived` ones) are applied afterwards, in compliance_exceptions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec

from ledger.compliance.facts import Facts, Item
from ledger.records import policy as pol
from ledger.records import predicates as p
from ledger.records.formats import parse_offset_time

FindingStatus = Literal["fail", "missing", "waived"]
COUNTED_MEANINGS = frozenset({"approval", "responsibility"})  # a `review` is not a release approval


class Finding(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One way a release falls short of (or was excused from) one rule, with the entries involved."""

    rule: str
    status: FindingStatus
    message: str
    entries: list[int]
    waived_by: int | None = None  # the exception entry that waived it


def finding(rule: str, status: FindingStatus, message: str, entries: Iterable[int]) -> Finding:
    """A finding with its entries sorted and unique (results must be byte-for-byte deterministic)."""
    return Finding(rule, status, message, sorted(set(entries)))


@dataclass(frozen=True, slots=True)
class Context:
    """What every rule reads; `tier` is None until the change is classified."""

    facts: Facts
    policy: pol.Policy
    tier: pol.Tier | None
    candidates: list[p.Artifact]
    deployments: list[Item[p.Deployment]]  # those the evaluation is about (compliance_facts)

    def builds_of(self, digest: str) -> list[int]:
        """Indices of the builds that produced `digest` (named in findings about it)."""
        return [b.index for b in self.facts.builds_of(digest)]

    def decisions(self, digest: str) -> list[Item[p.Approval]]:
        """Approvals and rejections of `digest`, in decision order (authorship signs no decision)."""
        return in_decision_order(
            a
            for a in self.facts.approvals
            if a.pred.artifact_digest.lower() == digest and a.pred.meaning != "authorship"
        )

    def relevant_approvals(self) -> list[Item[p.Approval]]:
        """Approving decisions of the candidates (any artifact while no build names one), decision order."""
        digests = {c.digest for c in self.candidates}
        return in_decision_order(
            a
            for a in self.facts.approvals
            if a.pred.decision == "approved"
            and a.pred.meaning != "authorship"
            and (not digests or a.pred.artifact_digest.lower() in digests)
        )


def decided_at(approval: Item[p.Approval]) -> datetime:
    """When a decision was made: when it was signed, but never later than when it was recorded.

    A signature's own time may be claimed later than the truth, never earlier than it reached
    the log; so a decision signed before another cannot be made to override it by recording it
    late, nor by dating it ahead. Precondition: the predicate passed admission (RFC 3339 times).
    """
    recorded = parse_offset_time(approval.event.time)
    signed_at = approval.pred.signed_at  # None only for approvals recorded before it was required
    signed = None if signed_at is None else parse_offset_time(signed_at)
    assert recorded is not None  # noqa: S101 - entry times are checked when the entry is read
    return recorded if signed is None else min(signed, recorded)


def in_decision_order(approvals: Iterable[Item[p.Approval]]) -> list[Item[p.Approval]]:
    """Decisions ordered by when they were made, then by log index (the later decision comes last)."""
    return sorted(approvals, key=lambda a: (decided_at(a), a.index))


def _names(values: Iterable[str]) -> str:
    return ", ".join(values)


def check_classified(ctx: Context) -> list[Finding]:
    """change.classified: a change record gives the release its risk class, hence its tier."""
    if ctx.facts.changes:
        return []
    return [
        finding(
            pol.CHANGE_CLASSIFIED,
            "missing",
            "no change record names this release, so its risk class and tier are unknown; "
            "the tier's test, validation, approval and findings rules are checked once it is classified",
            [],
        )
    ]


def check_tests(ctx: Context) -> list[Finding]:
    """tests.required-suites (each required suite ran on each candidate) and tests.passed (all passed)."""
    out: list[Finding] = []
    required = list(ctx.tier.required_suites) if ctx.tier is not None else []
    if required and not ctx.candidates:
        out.append(finding(pol.TESTS_REQUIRED, "missing", f"no build yet to run {_names(required)} on", []))
    for cand in ctx.candidates:
        runs = [t for t in ctx.facts.tests if t.about(cand.digest)]
        ran = {t.pred.suite for t in runs}
        absent = [s for s in required if s not in ran]
        if absent:
            message = f"no {_names(absent)} test run recorded for {cand.name} ({cand.digest})"
            out.append(finding(pol.TESTS_REQUIRED, "missing", message, ctx.builds_of(cand.digest)))
        failed = [t for t in runs if t.pred.result != "passed" or t.pred.failed > 0]
        if failed:
            what = _names(f"{t.pred.suite} (entry {t.index}, {t.pred.failed} failed)" for t in failed)
            message = f"test runs on {cand.name} ({cand.digest}) failed: {what}"
            out.append(finding(pol.TESTS_PASSED, "fail", message, [t.index for t in failed]))
    return out


def check_validation(ctx: Context) -> list[Finding]:
    """validation.required: a passing validation of each candidate when the tier needs one; no failed one."""
    out: list[Finding] = []
    required = ctx.tier is not None and ctx.tier.require_validation
    if required and not ctx.candidates:
        out.append(finding(pol.VALIDATION_REQUIRED, "missing", "no build yet to validate", []))
    for cand in ctx.candidates:
        runs = [v for v in ctx.facts.validations if v.about(cand.digest)]
        failed = [v for v in runs if v.pred.result != "passed"]
        if failed:
            what = _names(f"{v.pred.objective} on {v.pred.dataset.name} (entry {v.index})" for v in failed)
            message = f"validation of {cand.name} ({cand.digest}) failed: {what}"
            out.append(finding(pol.VALIDATION_REQUIRED, "fail", message, [v.index for v in failed]))
        elif required and not runs:
            message = f"no validation run recorded for {cand.name} ({cand.digest}); the tier requires one"
            out.append(finding(pol.VALIDATION_REQUIRED, "missing", message, ctx.builds_of(cand.digest)))
    return out


def _by_role(decisions: Sequence[Item[p.Approval]]) -> dict[str, list[Item[p.Approval]]]:
    roles: dict[str, list[Item[p.Approval]]] = {}
    for decision in decisions:
        roles.setdefault(decision.pred.role, []).append(decision)
    return roles


def _standing_approvals(decisions: Sequence[Item[p.Approval]]) -> list[Item[p.Approval]]:
    """The approvals in one role that count: approving, of a counted meaning, made after its last rejection.

    Precondition: `decisions` are in decision order (`in_decision_order`).
    """
    last_rejection = max((n for n, d in enumerate(decisions) if d.pred.decision == "rejected"), default=-1)
    return [
        d
        for d in decisions[last_rejection + 1 :]
        if d.pred.decision == "approved" and d.pred.meaning in COUNTED_MEANINGS
    ]


def _rejection(decisions: Sequence[Item[p.Approval]]) -> Item[p.Approval] | None:
    """The role's last decision when it is a rejection (it stands until a later approval); decision order."""
    return decisions[-1] if decisions and decisions[-1].pred.decision == "rejected" else None


def check_approvals(ctx: Context) -> list[Finding]:
    """approvals.required-roles (each required role approved each candidate) and approvals.rejected."""
    out: list[Finding] = []
    required = ctx.tier.required_approval_roles if ctx.tier is not None else []
    if required and not ctx.candidates:
        message = f"no build yet for roles {_names(required)} to approve"
        out.append(finding(pol.APPROVALS_REQUIRED, "missing", message, []))
    for cand in ctx.candidates:
        roles = _by_role(ctx.decisions(cand.digest))
        for role, decisions in sorted(roles.items()):
            if (last := _rejection(decisions)) is not None:
                message = (
                    f"{last.owner} rejected {cand.name} ({cand.digest}) in role {role} (entry {last.index}); "
                    "no approval in that role followed"
                )
                out.append(finding(pol.APPROVALS_REJECTED, "fail", message, [last.index]))
        # A role whose last word is a rejection is reported as rejected, not also as missing.
        unfilled = [
            r
            for r in required
            if not _standing_approvals(roles.get(r, [])) and _rejection(roles.get(r, [])) is None
        ]
        if unfilled:
            message = f"no approval of {cand.name} ({cand.digest}) in role {_names(unfilled)}"
            out.append(finding(pol.APPROVALS_REQUIRED, "missing", message, ctx.builds_of(cand.digest)))
    return out


def _person(name: str) -> str:
    return " ".join(name.split()).casefold()


def check_separation(ctx: Context) -> list[Finding]:
    """sod.approver-not-author and sod.one-person-one-role, as the policy enables them."""
    sod = ctx.policy.separation_of_duties
    return [
        *(_not_author(ctx) if sod.approver_not_author else []),
        *(_one_role(ctx) if sod.one_person_one_role else []),
    ]


def _not_author(ctx: Context) -> list[Finding]:
    out = []
    for approval in ctx.relevant_approvals():
        authored = [c.index for c in ctx.facts.changes if _person(c.pred.author) == _person(approval.owner)]
        if authored:
            message = (
                f"{approval.owner} approved in role {approval.pred.role} (entry {approval.index}) "
                "a change they authored"
            )
            out.append(finding(pol.SOD_NOT_AUTHOR, "fail", message, [approval.index, *authored]))
    return out


def _one_role(ctx: Context) -> list[Finding]:
    if ctx.tier is None:
        return []
    out = []
    required = set(ctx.tier.required_approval_roles)
    for cand in ctx.candidates:
        people: dict[str, list[Item[p.Approval]]] = {}
        for role, decisions in _by_role(ctx.decisions(cand.digest)).items():
            for approval in _standing_approvals(decisions) if role in required else []:
                people.setdefault(_person(approval.owner), []).append(approval)
        for approvals in people.values():
            roles = sorted({a.pred.role for a in approvals})
            if len(roles) > 1:
                message = (
                    f"{approvals[0].owner} filled required roles {_names(roles)} for {cand.name} "
                    f"({cand.digest}); each required role needs a different person"
                )
                out.append(finding(pol.SOD_ONE_ROLE, "fail", message, [a.index for a in approvals]))
    return out


def latest_approvals(ctx: Context) -> list[Item[p.Approval]]:
    """The latest approving decision made per candidate digest and role, in index order.

    A later approval in the same role re-approves: only it is checked by the rules about what an
    approval lists and when it came (approvals.after-evidence, approvals.entries-in-release).
    """
    latest = {(a.pred.artifact_digest.lower(), a.pred.role): a for a in ctx.relevant_approvals()}
    return sorted(latest.values(), key=lambda a: a.index)


def check_after_evidence(ctx: Context) -> list[Finding]:
    """approvals.after-evidence: a role's latest approval follows what it lists and its digest's evidence."""
    if not ctx.policy.approvals.after_evidence:
        return []
    out: list[Finding] = []
    for approval in latest_approvals(ctx):
        digest = approval.pred.artifact_digest.lower()
        later = [e.index for e in ctx.facts.evidence_about(digest) if e.index > approval.index]
        listed = sorted(i for i in approval.pred.entries if i >= approval.index)
        if later or listed:
            parts = [f"entries it lists come at or after it ({_names(map(str, listed))})"] if listed else []
            if later:
                parts.append(f"evidence about {digest} was recorded after it ({_names(map(str, later))})")
            message = (
                f"approval by {approval.owner} in role {approval.pred.role} (entry {approval.index}) came "
                f"before the evidence it approves: {'; '.join(parts)}"
            )
            out.append(
                finding(pol.APPROVALS_AFTER_EVIDENCE, "fail", message, [approval.index, *later, *listed])
            )
    return out


def check_entries_in_release(ctx: Context) -> list[Finding]:
    """approvals.entries-in-release: every entry a role's latest approval lists is an entry of its release.

    An entry of another release, or one not in the log when the release is evaluated (the
    evaluation is given every entry of the release), is a `fail`: the approval says it
    reviewed something that is not part of what it approves.
    """
    if not ctx.policy.approvals.checks_entries():
        return []
    out: list[Finding] = []
    release = ctx.facts.release
    name = "its release" if release is None else f"release {release.product} {release.version}"
    for approval in latest_approvals(ctx):
        foreign = sorted({i for i in approval.pred.entries if i not in ctx.facts.release_entries})
        if foreign:
            message = (
                f"approval by {approval.owner} in role {approval.pred.role} (entry {approval.index}) lists "
                f"entries that are not entries of {name} (of another release, or not in the log when "
                f"evaluated): {_names(map(str, foreign))}"
            )
            out.append(finding(pol.APPROVALS_ENTRIES_IN_RELEASE, "fail", message, [approval.index]))
    return out


def check_findings(ctx: Context) -> list[Finding]:
    """findings.max-open: the latest scan per tool of each candidate (or its source) within the limits."""
    limits = ctx.tier.max_open_findings if ctx.tier is not None else None
    if limits is None:
        return []
    if not ctx.candidates:
        return [finding(pol.FINDINGS_MAX_OPEN, "missing", "no build yet to scan", [])]
    out: list[Finding] = []
    for cand in ctx.candidates:
        sources = ctx.facts.sources_of(cand.digest)
        latest: dict[str, Item[p.Scan]] = {}
        for scan in ctx.facts.scans:
            if scan.about(cand.digest) or sources & set(scan.event.subjects):
                latest[scan.pred.tool] = scan
        if not latest:
            message = f"no scan recorded for {cand.name} ({cand.digest}); the tier limits open findings"
            out.append(finding(pol.FINDINGS_MAX_OPEN, "missing", message, ctx.builds_of(cand.digest)))
            continue
        over = []
        for severity in ("critical", "high", "medium", "low"):
            total = sum(getattr(s.pred.findings, severity) for s in latest.values())
            if total > getattr(limits, severity):
                over.append(f"{severity} {total} (at most {getattr(limits, severity)})")
        if over:
            message = f"open findings on {cand.name} ({cand.digest}) over the tier's limits: {_names(over)}"
            out.append(finding(pol.FINDINGS_MAX_OPEN, "fail", message, [s.index for s in latest.values()]))
    return out
