"""The console's page of one release (docs/console.md, issue #15): what the API answers, for people.

Everything on it is read under one checkpoint, read afresh when the page is asked for: the
timeline, each rule's outcome under the policy in force with the entries behind it, the
traceability matrix, the gate decisions the ledger signed, the deployments and rollbacks by
environment, and what proves the release: the checkpoint, whether its chain is complete, and
its head as the completeness index at that checkpoint holds it. The page links each event to
its own page (ledger.service.console.event_page) and the release to the browser's verifier,
which fetches the dossier and trusts nothing the server says. A token scoped to products reads
only their releases (403 for another).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import get
from litestar.response import Template

from ledger.compliance.evaluate import result_data
from ledger.core.encoding import format_time
from ledger.core.sparse_merkle import release_key
from ledger.errors import LedgerError
from ledger.query import timeline
from ledger.query.event_details import headline
from ledger.query.index_follow import committed_index
from ledger.query.release_record import evaluate_release, policy_in_force
from ledger.query.report import rule_outcomes
from ledger.query.traceability import Sources, release_traceability
from ledger.records import predicates as p
from ledger.records.admin import policy_from_record
from ledger.rules.events import Event
from ledger.service.console.event_page import EVENT_ROUTES, release_path
from ledger.service.console.pages import SESSION, ConsoleSvc, SignedIn, frame, page
from ledger.service.params import Product, Version
from ledger.service.state import ServiceState
from ledger.storage.protocol import CheckpointRow

_NOT_MET = frozenset({"fail", "missing"})


@dataclass(frozen=True, slots=True)
class GateRow:
    """A gate decision the ledger signed: where it was asked for, what it decided, the rules not met."""

    event: Event
    environment: str
    decision: str
    verification_result: str
    policy: str
    not_met: list[str]


@dataclass(frozen=True, slots=True)
class DeploymentRow:
    """A deployment or a rollback into one environment."""

    event: Event
    artifact: str
    result: str
    started: str
    finished: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class Proofs:
    """What proves the release at the page's checkpoint: its chain, and its head in the completeness index.

    `index` is "present" (the index proves a head: `index_count` events, the newest `index_last`),
    "absent" (it proves there is none), "not committed" (the checkpoint predates the index) or
    "unavailable" (`problem` says why).
    """

    checkpoint: CheckpointRow
    index: str
    index_count: int | None = None
    index_last: int | None = None
    problem: str | None = None


def gate_rows(events: list[Event]) -> list[GateRow]:
    """The ledger's gate decisions among the events, in log order (others' VSAs are generic evidence)."""
    rows = []
    for event in events:
        gate = event.predicate
        if isinstance(gate, p.GateDecision):
            not_met = sorted({str(f.get("rule")) for f in gate.findings if f.get("status") in _NOT_MET})
            rows.append(
                GateRow(
                    event, gate.environment, gate.decision, gate.verification_result,
                    gate.policy.uri, not_met,
                )
            )  # fmt: skip
    return rows


def deployments_by_environment(events: list[Event]) -> list[tuple[str, list[DeploymentRow]]]:
    """Deployments and rollbacks grouped by environment (sorted by name), each group in log order."""
    groups: dict[str, list[DeploymentRow]] = {}
    for event in events:
        v = event.predicate
        if isinstance(v, p.Deployment):
            row = DeploymentRow(event, v.artifact_digest, v.result, v.started, v.finished, None)
        elif isinstance(v, p.Rollback):
            row = DeploymentRow(
                event, f"{v.from_digest} → {v.to_digest}", v.result, v.started, v.finished, v.reason
            )
        else:
            continue
        groups.setdefault(v.environment, []).append(row)
    return sorted(groups.items())


async def release_proofs(svc: ServiceState, product: str, version: str, checkpoint: CheckpointRow) -> Proofs:
    """The release chain's head as the completeness index at `checkpoint` proves it."""
    if committed_index(checkpoint) is None:
        return Proofs(checkpoint, "not committed")
    try:
        proven = await svc.completeness.prove(svc.store, release_key(product, version), checkpoint.tree_size)
    except LedgerError as exc:  # shown, not hidden: the rest of the page still reads
        return Proofs(checkpoint, "unavailable", problem=str(exc))
    head = proven.proof.head
    if head is None:
        return Proofs(checkpoint, "absent")
    return Proofs(checkpoint, "present", head.count, head.last_index)


@get("/releases/{product:str}/{version:str}", dependencies=SESSION)
async def release(svc: ConsoleSvc, session: SignedIn, product: Product, version: Version) -> Template:
    """One release: compliance by rule, traceability, gates, deployments, proofs and its timeline."""
    session.token.require_product(product)
    found = await timeline.release_timeline(svc.store, svc.index, svc.sequencer, product, version)
    checkpoint = await svc.latest_checkpoint(fresh=True)  # holds every entry just read, and perhaps more
    before = checkpoint.tree_size
    compliance: dict[str, Any] | None = None
    outcomes = None
    matrix = None
    problem = None
    try:
        policy = await policy_in_force(svc.index, before)
        result, _ = await evaluate_release(
            svc.store, svc.index, svc.sequencer, product, version,
            environment=None, now=format_time(datetime.now(UTC)), before=before, policy=policy,
        )  # fmt: skip
        compliance = result_data(result)
        outcomes = rule_outcomes(policy_from_record(policy[0]), compliance["findings"])
        sources = Sources(svc.store, svc.index, svc.sequencer, svc.blobs)
        matrix = await release_traceability(sources, product, version, environment=None, before=before)
    except LedgerError as exc:  # no policy published yet: the timeline still shows
        problem = str(exc)
    base = release_path(product, version)
    return page(
        "release.html",
        **frame(
            session, product=product, version=version, base=base, timeline=found,
            events=[(event, headline(event)) for event in found.events],
            compliance=compliance, outcomes=outcomes, matrix=matrix, problem=problem,
            gates=gate_rows(found.events), deployments=deployments_by_environment(found.events),
            proofs=await release_proofs(svc, product, version, checkpoint),
        ),
    )  # fmt: skip


RELEASE_ROUTES = [release, *EVENT_ROUTES]
"""The release page, its events' pages and their files, for the console's router."""
