"""The evidence a compliance evaluation reads: a release's events sorted by kind, and its candidates. Pure.

`collect` keeps the events of our predicate types that name the release
(schemas/PREDICATES.md) and files them by kind (SBOMs, VEX documents,
requirements baselines and anomaly records too: the newest baseline is the one
in force). Gate decisions are filed apart:
only `deployments.gate-allow` reads them, and they are not among `entries` (the
evidence evaluated). Generic evidence and seals say nothing the rules read, but
are entries of the release an approval may list (`release_entries`). `candidates`
picks the artifacts the rules are checked against (schemas/POLICY.md, "the candidate").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ledger.records import predicates as p
from ledger.records.policy import Policy
from ledger.rules.events import Event

P = TypeVar("P")
SHA256 = "sha256:"
GIT_COMMIT = "gitCommit:"


@dataclass(frozen=True, slots=True)
class Item(Generic[P]):
    """One event with its predicate narrowed to a kind."""

    event: Event
    pred: P

    @property
    def index(self) -> int:
        """The entry's log index."""
        return self.event.index

    @property
    def owner(self) -> str:
        """The signing key's registered owner: the person who signed."""
        return self.event.signer.owner

    def about(self, digest: str) -> bool:
        """Whether the statement's subjects include `digest`."""
        return digest in self.event.subjects


@dataclass(frozen=True, slots=True)
class Facts:
    """A release's evidence by kind, each tuple in index order, and what its builds produced."""

    release: p.Release | None
    entries: tuple[int, ...]
    changes: tuple[Item[p.Change], ...]
    builds: tuple[Item[p.Build | None], ...]  # None: SLSA provenance, read through its subjects
    tests: tuple[Item[p.TestRun], ...]
    scans: tuple[Item[p.Scan], ...]
    validations: tuple[Item[p.Validation], ...]
    approvals: tuple[Item[p.Approval], ...]
    exceptions: tuple[Item[p.PolicyException], ...]
    reviews: tuple[Item[p.ExceptionReview], ...]
    deployments: tuple[Item[p.Deployment], ...]
    # The ledger's own gate decisions about the release (either VSA shape, read by ledger.rules.events).
    gates: tuple[Item[p.GateDecision], ...] = ()
    # Every entry of the release the evaluation was given: its typed evidence, gate decisions and
    # seal, and generic evidence (about its artifacts); not the entries naming another release.
    release_entries: frozenset[int] = frozenset()
    sboms: tuple[Item[p.Sbom], ...] = ()
    vexes: tuple[Item[p.Vex], ...] = ()
    requirements: tuple[Item[p.Requirements], ...] = ()  # baselines; the newest is in force
    anomalies: tuple[Item[p.Anomaly], ...] = ()

    @property
    def baseline(self) -> Item[p.Requirements] | None:
        """The requirements baseline in force: the release's newest (highest index); None without one."""
        return self.requirements[-1] if self.requirements else None

    def build_artifacts(self, build: Item[p.Build | None]) -> list[p.Artifact]:
        """What one build produced: its artifacts and its statement's sha256 subjects, by digest."""
        found: dict[str, str] = {}
        if build.pred is not None:
            found.update((a.digest.lower(), a.name) for a in build.pred.artifacts)
        statement = build.event.statement
        for subject in statement.subject if statement is not None else ():
            digest = subject.digest.get("sha256")
            if digest is not None:
                found.setdefault(SHA256 + digest.lower(), subject.name)
        return [p.Artifact(name, digest) for digest, name in sorted(found.items())]

    def builds_of(self, digest: str) -> list[Item[p.Build | None]]:
        """The builds that produced `digest`."""
        return [b for b in self.builds if any(a.digest == digest for a in self.build_artifacts(b))]

    def evidence_about(self, digest: str) -> list[Event]:
        """The builds that produced `digest` and its test runs, validations and scans (of it or its source).

        What an approval of `digest` approves, and what a deployment of it deploys (rules
        approvals.after-evidence and deployments.after-evidence), in index order.
        """
        sources = self.sources_of(digest)
        found = [
            *(t.event for t in self.tests if t.about(digest)),
            *(v.event for v in self.validations if v.about(digest)),
            *(s.event for s in self.scans if s.about(digest) or sources & set(s.event.subjects)),
            *(b.event for b in self.builds_of(digest)),
        ]
        return sorted(found, key=lambda event: event.index)

    def sources_of(self, digest: str) -> set[str]:
        """`gitCommit:<sha>` of the commits `digest` was built from (scans of source count for it)."""
        found: set[str] = set()
        for build in self.builds_of(digest):
            if build.pred is not None:
                found.add(GIT_COMMIT + build.pred.commit.lower())
            found.update(s for s in build.event.subjects if s.startswith(GIT_COMMIT))
        return found


def _release_of(events: Sequence[Event]) -> p.Release | None:
    """The release most chain members name (ties: the one named first); None without typed events."""
    named = [e.predicate.release for e in events if e.predicate is not None and e.release_seq is not None]
    if not named:
        named = [e.predicate.release for e in events if e.predicate is not None]
    if not named:
        return None
    counts = Counter(named)
    return max(counts, key=lambda r: (counts[r], -named.index(r)))


def _of(events: Iterable[Event], cls: type[P]) -> tuple[Item[P], ...]:
    return tuple(Item(e, pred) for e in events if isinstance(pred := e.predicate, cls))


def _names(event: Event, release: p.Release | None) -> bool:
    """Whether the event's predicate names `release` (SLSA provenance names it in its raw predicate)."""
    if release is None:
        return False
    if event.predicate is not None:
        return event.predicate.release == release
    named = event.raw_predicate.get("release")
    return event.kind == "build" and named == {"product": release.product, "version": release.version}


def collect(events: Sequence[Event], release: p.Release | None = None) -> Facts:
    """File the events that name `release` (default: the one most of the chain names) by kind.

    Precondition: `events` are evidence Events as ledger.rules.events reads them; their order
    does not matter (they are sorted by index here).
    """
    ordered = sorted(events, key=lambda e: e.index)
    target = release or _release_of(ordered)
    named = [e for e in ordered if _names(e, target)]
    mine = [e for e in named if not isinstance(e.predicate, p.GateDecision | p.Seal)]
    generic = [e for e in ordered if e.statement is not None and e.predicate is None and e.kind != "build"]
    builds = tuple(
        Item(e, e.predicate if isinstance(e.predicate, p.Build) else None) for e in mine if e.kind == "build"
    )
    return Facts(
        release=target,
        entries=tuple(e.index for e in mine),
        changes=_of(mine, p.Change),
        builds=builds,
        tests=_of(mine, p.TestRun),
        scans=_of(mine, p.Scan),
        validations=_of(mine, p.Validation),
        approvals=_of(mine, p.Approval),
        exceptions=_of(mine, p.PolicyException),
        reviews=_of(mine, p.ExceptionReview),
        deployments=_of(mine, p.Deployment),
        gates=_of(named, p.GateDecision),
        release_entries=frozenset(e.index for e in (*named, *generic)),
        sboms=_of(mine, p.Sbom),
        vexes=_of(mine, p.Vex),
        requirements=_of(mine, p.Requirements),
        anomalies=_of(mine, p.Anomaly),
    )


def scoped_deployments(facts: Facts, policy: Policy, environment: str | None) -> list[Item[p.Deployment]]:
    """The deployments an evaluation is about: into `environment`, or (None) into any continuity one."""
    wanted = {environment} if environment is not None else set(policy.continuity.environments)
    return [d for d in facts.deployments if d.pred.environment in wanted]


def candidates(facts: Facts, deployments: Sequence[Item[p.Deployment]]) -> list[p.Artifact]:
    """The artifacts the rules are checked against, sorted by digest (schemas/POLICY.md).

    What was deployed, when `deployments` is not empty; else what the latest build produced;
    else nothing (no build yet).
    """
    if deployments:
        names = {a.digest: a.name for b in facts.builds for a in facts.build_artifacts(b)}
        digests = sorted({d.pred.artifact_digest.lower() for d in deployments})
        return [p.Artifact(names.get(digest, "deployed artifact"), digest) for digest in digests]
    if not facts.builds:
        return []
    return facts.build_artifacts(facts.builds[-1])
