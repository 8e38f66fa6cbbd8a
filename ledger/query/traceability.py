"""A release's traceability matrix and SOUP list, read with the evidence files they need (issue #14).

The matrix itself is pure (ledger.compliance.traceability); what it adds from storage is the
full requirements baseline (titles, and which risk controls each requirement implements), kept
as an evidence file the newest `requirements` entry names. The SOUP list is the stored file an
SBOM entry names. Both files are read through the blob store, which checks them against their
digests as they are read; a file the store lacks leaves the matrix without titles, and the
SOUP list unavailable (NotFoundError, saying which file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from ledger.compliance.facts import Item, candidates, collect, scoped_deployments
from ledger.compliance.traceability import TraceabilityMatrix, release_matrix
from ledger.errors import NotFoundError
from ledger.query.release_record import policy_in_force, release_events, release_rows
from ledger.query.timeline import RegistryHolder
from ledger.records import predicates as p
from ledger.records.admin import policy_from_record
from ledger.records.policy import Policy
from ledger.records.requirements import Baseline, decode_baseline
from ledger.records.sbom import SoupComponent, decode_soup_list
from ledger.rules.events import Event
from ledger.storage.protocol import BlobStore, EvidenceIndex, LogStore

MAX_DERIVED_FILE = 64 * 1024 * 1024  # a canonical baseline or SOUP list; far above 20,000 requirements


class SoupView(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The SOUP list of a release's SBOM (IEC 62304 §8.1.2): the entry it comes from, and the list."""

    entry: int
    subjects: list[str]
    format: str
    spec_version: str
    tools: list[str]
    gaps: p.SoupGaps
    sbom_digest: str
    soup_list_digest: str
    components: list[SoupComponent]


async def read_file(blobs: BlobStore, digest: str) -> bytes | None:
    """A stored evidence file's bytes (`sha256:<hex>`), checked as they are read; None when not stored.

    Precondition: the file is at most MAX_DERIVED_FILE bytes (what the ledger derives and stores).
    """
    name = bytes.fromhex(digest.removeprefix("sha256:"))
    info = await blobs.info(name)
    if info is None or info.size > MAX_DERIVED_FILE:
        return None
    return b"".join([piece async for piece in blobs.read(name)])


@dataclass(frozen=True, slots=True)
class Sources:
    """Where a release's evidence is read: its entries, their index, the key registry and the files."""

    store: LogStore
    index: EvidenceIndex
    holder: RegistryHolder
    blobs: BlobStore

    async def events(self, product: str, version: str, before: int) -> list[Event]:
        """The release's events below index `before` (NotFoundError for a release without entries)."""
        rows = await release_rows(self.index, product, version, before)
        return await release_events(self.store, self.holder, rows)


async def release_traceability(
    sources: Sources,
    product: str,
    version: str,
    *,
    environment: str | None,
    before: int,
) -> TraceabilityMatrix:
    """The release's traceability matrix as of index `before`, with the full baseline when it is stored.

    The candidates are those the policy in force picks (its continuity environments and
    `environment`). NotFoundError for a release without entries or a ledger without a policy.
    """
    events = await sources.events(product, version, before)
    record, _ = await policy_in_force(sources.index, before)
    in_force = collect(events).baseline
    baseline: Baseline | None = None
    if in_force is not None:
        data = await read_file(sources.blobs, in_force.pred.baseline_digest)
        baseline = decode_baseline(data) if data is not None else None
    return release_matrix(events, policy_from_record(record), environment=environment, baseline=baseline)


def release_sbom(events: Sequence[Event], policy: Policy, environment: str | None) -> Item[p.Sbom] | None:
    """The release's newest SBOM of a candidate the policy picks, else its newest SBOM; None without one."""
    facts = collect(events)
    if not facts.sboms:
        return None
    wanted = {c.digest for c in candidates(facts, scoped_deployments(facts, policy, environment))}
    on_candidate = [item for item in facts.sboms if wanted.intersection(item.event.subjects)]
    return (on_candidate or list(facts.sboms))[-1]


def soup_view(item: Item[p.Sbom], soup_list: bytes) -> SoupView:
    """The SOUP list view of an SBOM entry, from its stored SOUP list file (decoded strictly)."""
    sbom = item.pred
    return SoupView(
        entry=item.index,
        subjects=sorted(item.event.subjects),
        format=sbom.format,
        spec_version=sbom.spec_version,
        tools=sbom.tools,
        gaps=sbom.gaps,
        sbom_digest=sbom.sbom_digest,
        soup_list_digest=sbom.soup_list_digest,
        components=list(decode_soup_list(soup_list)),
    )


async def release_soup(
    sources: Sources,
    product: str,
    version: str,
    *,
    environment: str | None,
    before: int,
) -> SoupView:
    """The SOUP list of the release's SBOM (`release_sbom`) as of `before`.

    NotFoundError when the release has no SBOM, or its SOUP list file is not stored.
    """
    events = await sources.events(product, version, before)
    record, _ = await policy_in_force(sources.index, before)
    item = release_sbom(events, policy_from_record(record), environment)
    if item is None:
        raise NotFoundError(f"release {product} {version} has no SBOM: record one with evledger attest sbom")
    data = await read_file(sources.blobs, item.pred.soup_list_digest)
    if data is None:
        raise NotFoundError(f"the SOUP list {item.pred.soup_list_digest} of entry {item.index} is not stored")
    return soup_view(item, data)
