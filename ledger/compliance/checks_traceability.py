"""The policy's traceability rules: SBOM, requirement coverage, residual anomalies, component risk. Pure.

Each rule reads a `Context` like those of `ledger.compliance.checks`, and is
switched on by the policy (schemas/POLICY.md): a tier's `require_sbom`,
`coverage` and `require_anomaly_disposition`, and the `[classification]`
table. A policy without them gets no finding from them, so it evaluates exactly
as it did before they existed. Findings are `missing` when the evidence the
policy needs is not recorded yet and `fail` when recorded evidence contradicts
the policy; exceptions waive them like any other rule's (waivers.py).

Test runs count as the traceability matrix counts them
(`ledger.compliance.traceability`): every run whose subjects include the
candidate's digest, re-runs included, with its per-requirement results.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.compliance.checks import Context, Finding, finding
from ledger.compliance.traceability import (
    counted_runs,
    dispositioning,
    results_by_requirement,
)
from ledger.records import policy as pol
from ledger.records.predicates import RISK_CLASSES, RiskClass

MAX_LISTED = 20  # requirement ids named in one finding's message; a gate decision must fit one entry


def _listed(ids: Sequence[str]) -> str:
    """Sorted ids, at most MAX_LISTED of them, then how many more (the matrix lists them all)."""
    ordered = sorted(ids)
    shown = ", ".join(ordered[:MAX_LISTED])
    more = len(ordered) - MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def check_sbom(ctx: Context) -> list[Finding]:
    """sbom.required: an SBOM whose subjects include each candidate's digest, when the tier requires one.

    IEC 62304 §8.1.2 asks that each SOUP item be identified; the SBOM of the artifact shipped
    (predicate `sbom`) is that record. An SBOM of another artifact (an earlier build) does not
    count. Preconditions: none beyond `Context`'s.
    """
    if ctx.tier is None or not ctx.tier.requires_sbom():
        return []
    if not ctx.candidates:
        return [finding(pol.SBOM_REQUIRED, "missing", "no build yet to record an SBOM of", [])]
    out: list[Finding] = []
    for cand in ctx.candidates:
        if any(s.about(cand.digest) for s in ctx.facts.sboms):
            continue
        others = [s.index for s in ctx.facts.sboms]
        elsewhere = f" (the SBOMs at entries {', '.join(map(str, others))} describe other artifacts)"
        message = f"no SBOM recorded for {cand.name} ({cand.digest}); the tier requires one" + (
            elsewhere if others else ""
        )
        out.append(finding(pol.SBOM_REQUIRED, "missing", message, ctx.builds_of(cand.digest)))
    return out


def check_coverage(ctx: Context) -> list[Finding]:
    """requirements.coverage: each requirement the tier selects has a passing test case on each candidate.

    IEC 62304 §5.7.1 (tests for each software requirement) and §7.3.1 (verification of each
    risk control measure). The requirements are those of the baseline in force (the release's
    newest `requirements` entry), selected by type and risk class (`Tier.coverage`); a
    requirement counts as verified on a candidate when a counted test run reports a passing
    case of it (its failures are tests.passed's and anomalies.dispositioned's concern). No
    baseline, or no build yet, is `missing`; so is each candidate with uncovered requirements,
    naming the baseline entry and the runs that reported those requirements without a pass.
    """
    coverage = ctx.tier.coverage_required() if ctx.tier is not None else None
    if coverage is None:
        return []
    baseline = ctx.facts.baseline
    if baseline is None:
        message = (
            f"no requirements baseline recorded for this release; the tier requires a passing test "
            f"of each of the {coverage.describe()}"
        )
        return [finding(pol.REQUIREMENTS_COVERAGE, "missing", message, [])]
    if not ctx.candidates:
        return [finding(pol.REQUIREMENTS_COVERAGE, "missing", "no build yet to verify requirements on", [])]
    selected = sorted(
        i for g in baseline.pred.groups if coverage.selects(g.type, g.risk_class) for i in g.ids
    )
    out: list[Finding] = []
    for cand in ctx.candidates:
        runs = [(run, results_by_requirement(run)) for run in counted_runs(ctx.facts, [cand.digest])]
        passing = {i for _, found in runs for i, r in found.items() if r.passed > 0}
        uncovered = [i for i in selected if i not in passing]
        if not uncovered:
            continue
        tried = [run.index for run, found in runs if any(i in found for i in uncovered)]
        message = (
            f"{len(uncovered)} of the {len(selected)} {coverage.describe()} in the baseline "
            f"{baseline.pred.document_id} {baseline.pred.document_version} (entry {baseline.index}) "
            f"have no passing test on {cand.name} ({cand.digest}): {_listed(uncovered)}"
        )
        out.append(finding(pol.REQUIREMENTS_COVERAGE, "missing", message, [baseline.index, *tried]))
    return out


def check_anomalies(ctx: Context) -> list[Finding]:
    """anomalies.dispositioned: each failed or skipped case of a requirement has a later anomaly record.

    IEC 62304 §5.8.2 (evaluate and record each residual anomaly) and §5.8.3 (they do not
    contribute to an unacceptable risk). For every counted test run on a candidate (re-runs
    included: a failure stays in the record), each requirement it reports failed or skipped
    cases of needs an anomaly record naming it recorded after the run; an anomaly recorded
    before the run has not evaluated it. One `fail` per run, naming the run's entry. Runs
    without per-requirement results are tests.passed's concern only.
    """
    if ctx.tier is None or not ctx.tier.requires_anomaly_disposition():
        return []
    digests = [c.digest for c in ctx.candidates]
    out: list[Finding] = []
    for run in counted_runs(ctx.facts, digests):
        found = results_by_requirement(run)
        open_ids = [
            i
            for i, r in sorted(found.items())
            if r.failed + r.skipped > 0 and not dispositioning(ctx.facts, i, run.index)
        ]
        if not open_ids:
            continue
        what = ", ".join(
            f"{i} ({found[i].failed} failed, {found[i].skipped} skipped)" for i in open_ids[:MAX_LISTED]
        )
        more = f" and {len(open_ids) - MAX_LISTED} more" if len(open_ids) > MAX_LISTED else ""
        earlier = sorted(
            a.index
            for a in ctx.facts.anomalies
            if a.index < run.index and set(open_ids) & set(a.pred.requirements)
        )
        note = (
            f"; the anomaly records at entries {', '.join(map(str, earlier))} came before the run"
            if earlier
            else ""
        )
        about = ", ".join(d for d in digests if run.about(d))
        message = (
            f"{run.pred.suite} test run (entry {run.index}) on {about} "
            f"has failed or skipped cases of requirements no later anomaly record dispositions: "
            f"{what}{more}{note}"
        )
        out.append(finding(pol.ANOMALIES_DISPOSITIONED, "fail", message, [run.index]))
    return out


def _higher(left: RiskClass, right: RiskClass) -> bool:
    return RISK_CLASSES.index(left) > RISK_CLASSES.index(right)


def check_component_risk(ctx: Context) -> list[Finding]:
    """change.component-risk: the release's risk class is at least each changed component's minimum.

    IEC 62304 §7.4.1-§7.4.3 (risk management of software changes): the policy's
    `[classification]` gives the least risk class a change touching a component must carry.
    The release's risk class is the highest its change records state (the tier applied), so a
    later change record raising it clears the finding, as it raises the tier. Each change
    record listing a component whose minimum is above that class is a `fail`, naming the
    change entry and those components. Preconditions: none beyond `Context`'s.
    """
    changes = ctx.facts.changes
    if not changes:
        return []
    release_class = max((c.pred.risk_class for c in changes), key=RISK_CLASSES.index)
    out: list[Finding] = []
    for change in changes:
        over = sorted(
            {
                (component, minimum)
                for component in change.pred.components
                if (minimum := ctx.policy.component_minimum(component)) is not None
                and _higher(minimum, release_class)
            }
        )
        if not over:
            continue
        what = ", ".join(f"{component} (at least {minimum})" for component, minimum in over)
        message = (
            f"change {change.pred.change_id} (entry {change.index}, classified {change.pred.risk_class}) "
            f"touches {what}, but the release's risk class is {release_class}"
        )
        out.append(finding(pol.CHANGE_COMPONENT_RISK, "fail", message, [change.index]))
    return out
