"""What a deployment needs first: a gate allow, and its evidence recorded (schemas/POLICY.md). Pure.

Both rules are switched on by the policy's optional `[deployments]` section and read
the deployments the evaluation is about (`Context.deployments`: those into the gate's
environment, or, for the release as a whole, into the continuity environments), failed
deployments included: an attempt is a deployment too.

- `deployments.gate-allow`: into an environment `require_gate_allow` lists, the latest
  gate decision recorded before the deployment (a lower log index) for the same
  environment whose subjects include the deployed digest must be an `allow`.
- `deployments.after-evidence`: a deployment's window (the earlier of its `started` and
  `finished`) may not begin before the ledger recorded the evidence of its digest that
  came before it in the log: the builds that produced it, its test runs, validations and
  scans (`Facts.evidence_about`) and the decisions approving it. Evidence recorded after
  the deployment (a smoke test in production, say) is not what it deployed; whether the
  release had its evidence before it was deployed at all is what the gate checks.
"""

from __future__ import annotations

from ledger.compliance.checks import Context, Finding, finding
from ledger.compliance.facts import Item
from ledger.records import policy as pol
from ledger.records import predicates as p
from ledger.records.formats import parse_offset_time


def _label(deployment: Item[p.Deployment]) -> str:
    digest = deployment.pred.artifact_digest.lower()
    return f"deployment of {digest} to {deployment.pred.environment} (entry {deployment.index})"


def deciding_gate(ctx: Context, deployment: Item[p.Deployment]) -> Item[p.GateDecision] | None:
    """The latest gate decision before `deployment` for its environment and digest (None: no such gate)."""
    digest = deployment.pred.artifact_digest.lower()
    earlier = [
        g
        for g in ctx.facts.gates
        if g.index < deployment.index
        and g.pred.environment == deployment.pred.environment
        and g.about(digest)
    ]
    return earlier[-1] if earlier else None


def _gated(ctx: Context) -> list[Item[p.Deployment]]:
    """The deployments the evaluation is about into an environment that needs a gate allow."""
    environments = set(ctx.policy.gated_environments())
    return [d for d in ctx.deployments if d.pred.environment in environments]


def gate_entries(ctx: Context) -> list[int]:
    """The gate decisions `deployments.gate-allow` relied on: the deciding one of each checked deployment."""
    return sorted({g.index for d in _gated(ctx) if (g := deciding_gate(ctx, d)) is not None})


def check_gate_allow(ctx: Context) -> list[Finding]:
    """deployments.gate-allow: each deployment into a gated environment follows a gate allow of its digest."""
    out: list[Finding] = []
    for deployment in _gated(ctx):
        gate = deciding_gate(ctx, deployment)
        if gate is None:
            message = (
                f"{_label(deployment)} has no gate decision before it allowing that digest into "
                f"{deployment.pred.environment}"
            )
            out.append(finding(pol.DEPLOY_GATE_ALLOW, "fail", message, [deployment.index]))
        elif gate.pred.decision != "allow":
            message = (
                f"{_label(deployment)} followed a gate decision that denied it (entry {gate.index}, "
                f"{gate.event.time}) with no allow after it"
            )
            out.append(finding(pol.DEPLOY_GATE_ALLOW, "fail", message, [deployment.index, gate.index]))
    return out


def check_deployed_after_evidence(ctx: Context) -> list[Finding]:
    """deployments.after-evidence: no deployment starts before the evidence of its digest was recorded."""
    if not ctx.policy.deployments_after_evidence():
        return []
    out: list[Finding] = []
    for deployment in ctx.deployments:
        digest = deployment.pred.artifact_digest.lower()
        window = [
            (t, text)
            for text in (deployment.pred.started, deployment.pred.finished)
            if (t := parse_offset_time(text))
        ]
        if not window:
            continue  # not past admission, which refuses a time that is not RFC 3339
        start, start_text = min(window)
        evidence = [
            *ctx.facts.evidence_about(digest),
            *(
                a.event
                for a in ctx.facts.approvals
                if a.pred.artifact_digest.lower() == digest
                and a.pred.decision == "approved"
                and a.pred.meaning != "authorship"
            ),
        ]
        later = sorted(
            (e.index, e.time)
            for e in evidence
            if e.index < deployment.index
            and (recorded := parse_offset_time(e.time)) is not None
            and recorded > start
        )
        if later:
            what = ", ".join(f"entry {index} at {time}" for index, time in later)
            message = (
                f"{_label(deployment)} began at {start_text}, before the evidence of its "
                f"digest was recorded: {what}"
            )
            out.append(
                finding(
                    pol.DEPLOY_AFTER_EVIDENCE, "fail", message, [deployment.index, *(i for i, _ in later)]
                )
            )
    return out
