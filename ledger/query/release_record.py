"""A release's record read from the store: its events, the policy in force, compliance, dossier.

The pure rules live below (`ledger.rules.events`, `ledger.compliance`, `ledger.verify.dossier`); this
module only fetches what they need, all under one checkpoint, so a dossier's
entries, proofs and policy agree with the checkpoint it carries.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.compliance.evaluate import ComplianceResult, evaluate_record, result_data
from ledger.core.dsse import envelope_payload
from ledger.core.encoding import b64encode
from ledger.core.entry import parse_entry
from ledger.errors import NotFoundError
from ledger.query.proofs import ProofReader
from ledger.query.timeline import RegistryHolder, current_registry
from ledger.records.admin import KEY_EVENT_KINDS, POLICY_KIND, PolicyPublished, decode_admin_record
from ledger.rules.events import Event, events_from_entries
from ledger.storage.protocol import CheckpointRow, EntryRow, EvidenceIndex, LogStore
from ledger.verify.dossier import DOSSIER_FORMAT, Dossier, ProvenEntry


async def release_rows(index: EvidenceIndex, product: str, version: str, before: int) -> list[EntryRow]:
    """The release's chain and the generic evidence about its artifacts, below index `before`."""
    rows = [r for r in await index.release_timeline_entries(product, version) if r.index < before]
    if not any(r.release_seq is not None for r in rows):
        raise NotFoundError(f"no release {product} {version}")
    return rows


async def release_events(store: LogStore, holder: RegistryHolder, rows: Sequence[EntryRow]) -> list[Event]:
    """The rows read as evidence, signers named from the (caught-up) key registry."""
    registry = await current_registry(store, holder, {r.signer_keyid for r in rows})
    return events_from_entries([(r.data, r.signer_keyid) for r in rows], registry)


async def policy_in_force(index: EvidenceIndex, before: int) -> tuple[PolicyPublished, EntryRow]:
    """The newest published policy below index `before`; NotFoundError when none was published."""
    row = await index.latest_entry_of_kind(POLICY_KIND, before)
    if row is None:
        raise NotFoundError("no policy is in force: publish one with `evledger policy publish FILE`")
    record = decode_admin_record(envelope_payload(parse_entry(row.data).envelope))
    assert isinstance(record, PolicyPublished)  # noqa: S101 - the row's kind says so
    return record, row


async def evaluate_release(  # noqa: PLR0913 - one argument per input of the evaluation
    store: LogStore,
    index: EvidenceIndex,
    holder: RegistryHolder,
    product: str,
    version: str,
    *,
    environment: str | None,
    now: str,
    before: int,
    policy: tuple[PolicyPublished, EntryRow] | None = None,
) -> tuple[ComplianceResult, list[EntryRow]]:
    """Compliance of the release as of index `before` (a checkpoint's size), evaluated at `now`.

    `policy` is `policy_in_force(index, before)` when the caller read it already (one read for
    many releases); read here otherwise. Precondition: `index` reads the entries of `store`.
    """
    rows = await release_rows(index, product, version, before)
    record, policy_row = policy if policy is not None else await policy_in_force(index, before)
    events = await release_events(store, holder, rows)
    result = evaluate_record(events, record, policy_row.index, now=now, environment=environment)
    return result, rows


async def build_dossier(  # noqa: PLR0913, PLR0917 - one argument per input of the dossier
    store: LogStore,
    index: EvidenceIndex,
    proofs: ProofReader,
    holder: RegistryHolder,
    product: str,
    version: str,
    *,
    environment: str | None,
    now: str,
    checkpoint: CheckpointRow | None = None,
    timestamps: Sequence[bytes] = (),
    index_proof: bytes | None = None,
) -> Dossier:
    """Everything about the release under `checkpoint` (default: the latest), with proofs against it.

    `checkpoint` may carry witness cosignatures, and `timestamps` are its RFC 3161 tokens:
    the dossier carries both, so an inspector needs nothing else (docs/trust-model.md).
    `index_proof` proves the release chain's head in the completeness index `checkpoint` commits
    to (docs/completeness-index.md): with it, the dossier proves the release complete there.
    Precondition: `index` reads the entries of `store`, and `proofs` the tiles of `store`;
    `checkpoint` is one of `store`'s.
    """
    if checkpoint is None:
        checkpoint = await store.latest_checkpoint()
    if checkpoint is None:
        raise NotFoundError("the ledger has no checkpoint yet")
    size = checkpoint.tree_size
    result, rows = await evaluate_release(
        store, index, holder, product, version, environment=environment, now=now, before=size
    )
    keys = await store.entries_at(await index.indices_of_kinds(KEY_EVENT_KINDS, size))
    policy = await store.entries_at([result.policy.entry])
    wanted = [r.index for r in rows] + [r.index for r in keys] + [r.index for r in policy]
    paths = dict(zip(wanted, await proofs.inclusion_many(wanted, size), strict=True))

    def proven(row: EntryRow) -> ProvenEntry:
        return ProvenEntry(row.index, b64encode(row.data), [h.hex() for h in paths[row.index]])

    return Dossier(
        format=DOSSIER_FORMAT,
        product=product,
        version=version,
        checkpoint=checkpoint.note,
        entries=[proven(r) for r in rows],
        keys=[proven(r) for r in keys],
        policy=proven(policy[0]),
        evaluated_at=now,
        environment=environment,
        compliance=result_data(result),
        timestamps=[b64encode(token) for token in timestamps],
        index_proof=None if index_proof is None else b64encode(index_proof),
    )
