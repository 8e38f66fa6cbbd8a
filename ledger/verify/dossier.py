"""Release dossiers: everything an inspector needs to check a release offline. Pure.

A dossier holds one signed checkpoint and, each with its inclusion proof
against it: every entry of the release (exact bytes), the whole key-event
chain up to the key event the checkpoint names (so no registration or
revocation can be left out), and the policy entry in force; plus the
compliance result the ledger computed. `verify_dossier` trusts only the
ledger's public key and re-derives everything, failing with a precise
VerificationError at the first thing that does not hold.

The release chain proves that no event is missing before the newest one
shown, not that none came after it: a dossier is complete only when its chain
ends in a seal that holds (`ledger.rules.completeness` says which, in words).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ledger.core.checkpoint import Checkpoint, open_checkpoint
from ledger.core.encoding import b64decode_strict, hash_from_hex
from ledger.core.entry import Entry, parse_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import VerifierKey
from ledger.core.proof import verify_inclusion
from ledger.errors import ChainError, LedgerError, VerificationError
from ledger.records.admin import PolicyPublished
from ledger.rules.admission import Admitted, admit, admit_genesis
from ledger.rules.chains import KEY_CHAIN_EXTENSION, key_chain_head_of
from ledger.rules.completeness import Completeness, LastEvent
from ledger.rules.events import ReleaseEvent, event_from_entry
from ledger.rules.registry import KeyRegistry

DOSSIER_FORMAT = "evledger-dossier/v1"


class ProvenEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An entry's exact bytes (base64) and its inclusion proof (hex) against the dossier's checkpoint."""

    index: int
    entry: str
    inclusion_proof: list[str]


class Dossier(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A release's complete, offline-verifiable record (see the module docstring)."""

    format: str
    product: str
    version: str
    checkpoint: str
    entries: list[ProvenEntry]
    keys: list[ProvenEntry]
    policy: ProvenEntry | None
    evaluated_at: str
    environment: str | None
    compliance: dict[str, Any]


# (events, policy record, policy entry index, evaluated_at, environment) -> compliance result as JSON data
Recompute = Callable[
    [Sequence[ReleaseEvent], PolicyPublished | None, int | None, str, str | None], dict[str, Any]
]


@dataclass(slots=True)
class DossierReport:
    """What a successful verification established."""

    checkpoint: Checkpoint
    events: list[ReleaseEvent]
    keys: int
    completeness: Completeness
    compliance: dict[str, Any]
    checks: list[str] = field(default_factory=list)

    @property
    def sealed(self) -> bool:
        """Whether the dossier proves a seal that closes the release (then it is complete)."""
        return self.completeness.complete


@dataclass(slots=True)
class _Proven:
    index: int
    data: bytes
    entry: Entry


def _prove(item: ProvenEntry, checkpoint: Checkpoint, what: str) -> _Proven:
    try:
        data = b64decode_strict(item.entry, f"{what} {item.index}")
        proof = [hash_from_hex(h, "proof hash") for h in item.inclusion_proof]
        entry = parse_entry(data)
    except LedgerError as exc:
        raise VerificationError(f"{what} {item.index} is malformed: {exc}") from exc
    if entry.index != item.index:
        raise VerificationError(f"{what} listed as {item.index} is entry {entry.index}")
    try:
        verify_inclusion(item.index, checkpoint.size, leaf_hash(data), proof, checkpoint.root_hash)
    except VerificationError as exc:
        raise exc.restated(
            f"{what} {item.index} is not in the tree of the dossier's checkpoint (size {checkpoint.size}): "
            f"{exc.args[0]}"
        ) from exc
    return _Proven(item.index, data, entry)


def _in_order(items: Sequence[ProvenEntry], what: str) -> None:
    for before, after in itertools.pairwise(items):
        if after.index <= before.index:
            raise VerificationError(
                f"{what} are not in log order: entry {after.index} follows {before.index}"
            )


def _key_chain_head(checkpoint: Checkpoint) -> int:
    head = key_chain_head_of(checkpoint.extensions)
    if head is None:
        raise VerificationError(f"the checkpoint does not name its newest key event ({KEY_CHAIN_EXTENSION})")
    return head


def _replay_keys(keys: list[_Proven], head: int) -> KeyRegistry:
    """Rebuild the registry from the complete key-event chain ending at entry `head`."""
    if not keys or keys[-1].index != head:
        raise VerificationError(
            "the dossier's key events do not end at the checkpoint's newest key event",
            expected=str(head),
            calculated=str(keys[-1].index if keys else None),
            labels=("checkpoint's newest key event", "dossier's last key event"),
        )
    registry = KeyRegistry()
    previous: _Proven | None = None
    for position, proven in enumerate(keys):
        link = proven.entry.keys
        expected = None if previous is None else (previous.index, leaf_hash(previous.data).hex())
        actual = None if link is None or link.prev is None else (link.prev.index, link.prev.leaf_hash)
        if link is None or link.seq != position or actual != expected:
            raise ChainError(
                f"key event {proven.index} does not follow the key event before it: one is missing",
                expected=str(expected),
                calculated=str(actual),
                labels=("link to the key event before", "entry's link"),
            )
        record = _admit(proven, registry).admin
        if record is not None:
            registry.apply(proven.index, record)
        previous = proven
    return registry


def _as_of(
    registry: KeyRegistry, policy: PolicyPublished | None, policy_index: int | None, index: int
) -> KeyRegistry:
    """The registry to judge entry `index` by: with the sealing roles of the policy in force there.

    The dossier's policy is the newest before its checkpoint, so it was in force at every
    entry after it; at entries before it the policy in force is not in the dossier, and a
    seal's signer there is left to the whole-log verifiers (`verify-log`, `audit`).
    """
    judged = registry.copy()
    if policy is not None and policy_index is not None and index > policy_index:
        judged.apply(policy_index, policy)
    else:
        judged.seal_roles = None
    return judged


def _admit(proven: _Proven, registry: KeyRegistry) -> Admitted:
    try:
        if proven.index == 0:
            return admit_genesis(proven.entry.envelope)
        return admit(proven.entry.envelope, registry, proven.index)
    except LedgerError as exc:
        raise VerificationError(
            f"entry {proven.index}: its signature is not valid at its index: {exc}"
        ) from exc


def _check_release_chain(release: list[_Proven], product: str, version: str) -> None:
    """The release's chain must run from seq 0 with every back-link matching (ChainError if not)."""
    previous: _Proven | None = None
    for position, proven in enumerate(release):
        link = proven.entry.release
        assert link is not None  # noqa: S101 - the caller selected chained entries
        if (link.product, link.version) != (product, version):
            raise ChainError(f"entry {proven.index} belongs to release {link.product} {link.version}")
        if link.seq != position:
            missing = f"event {position} of the release is missing" if link.seq > position else "out of order"
            raise ChainError(f"entry {proven.index} is event {link.seq} of the release: {missing}")
        if previous is not None:
            expected = (previous.index, leaf_hash(previous.data).hex())
            actual = (link.prev.index, link.prev.leaf_hash) if link.prev else None
            if actual != expected:
                raise ChainError(
                    f"entry {proven.index} does not link to the release event before it",
                    expected=str(expected),
                    calculated=str(actual),
                    labels=("link to the event before", "entry's link"),
                )
        previous = proven


def _completeness(release: list[_Proven], admitted: dict[int, Admitted], tree_size: int) -> Completeness:
    """What the checked chain proves: complete when it ends in a seal that holds, else only up to its head.

    A seal proves completeness only if it is the chain's head (nothing follows it)
    and commits to exactly the chain before it: its count is its own place in the
    chain and its head the leaf hash of the event before it. Precondition: the
    chain passed `_check_release_chain`; `admitted` holds what admission returned
    for each of its entries.
    """
    seals = [p for p in release if admitted[p.index].seal is not None]
    if any(p is not release[-1] for p in seals):
        raise ChainError(f"the release seal at entry {seals[0].index} is followed by more release events")
    last = LastEvent(release[-1].index, len(release) - 1, release[-1].entry.time) if release else None
    if not seals:
        return Completeness(None, last, len(release), tree_size)
    seal = release[-1]
    before = release[-2] if len(release) > 1 else None
    chain = (len(release) - 1, leaf_hash(before.data).hex() if before is not None else "")
    claimed = admitted[seal.index].seal
    if claimed != chain:
        raise ChainError(
            f"the release seal at entry {seal.index} does not commit to the release chain before it",
            expected=f"count {chain[0]}, head {chain[1] or '-'}",
            calculated=f"count {claimed[0]}, head {claimed[1]}" if claimed else "-",
            labels=("the chain holds", "the seal says"),
        )
    return Completeness(seal.index, last, len(release), tree_size)


_ABSENT = object()
_SHOWN = 240  # characters of a differing compliance field shown on each side


def _first_difference(claimed: dict[str, Any], computed: dict[str, Any]) -> tuple[str, str, str]:
    """The first field where a compliance claim and its re-evaluation differ: (field, claimed, computed).

    `status` first, then the other fields by name. Values are compact JSON, cut
    short when long; a field one side lacks is shown as `(absent)`.
    """
    names = ["status", *sorted((claimed.keys() | computed.keys()) - {"status"})]
    name = next(n for n in names if claimed.get(n, _ABSENT) != computed.get(n, _ABSENT))
    return name, _shown(claimed.get(name, _ABSENT)), _shown(computed.get(name, _ABSENT))


def _shown(value: object) -> str:
    if value is _ABSENT:
        return "(absent)"
    if isinstance(value, str):
        text = value
    else:
        try:
            text = msgspec.json.encode(value, order="sorted").decode()
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def verify_dossier(dossier: Dossier, verifier: VerifierKey, recompute: Recompute) -> DossierReport:
    """Verify a dossier offline, trusting only `verifier` (the ledger key); raise at the first failure."""
    if dossier.format != DOSSIER_FORMAT:
        raise VerificationError(
            f"not a {DOSSIER_FORMAT} dossier",
            expected=DOSSIER_FORMAT,
            calculated=dossier.format,
            labels=("format this verifier reads", "dossier's format"),
        )
    try:
        checkpoint = open_checkpoint(dossier.checkpoint, verifier)
    except VerificationError:
        raise
    except LedgerError as exc:
        raise VerificationError(f"the dossier's checkpoint is malformed: {exc}") from exc
    checks = [f"checkpoint signed by {verifier.keyid}: size {checkpoint.size}"]
    _in_order(dossier.keys, "key events")
    _in_order(dossier.entries, "release entries")
    keys = [_prove(item, checkpoint, "key event") for item in dossier.keys]
    registry = _replay_keys(keys, _key_chain_head(checkpoint))
    checks.append(f"{len(keys)} key events: complete chain up to entry {keys[-1].index}, signatures valid")
    policy_record, policy_index = None, None
    if dossier.policy is not None:
        proven_policy = _prove(dossier.policy, checkpoint, "policy entry")
        record = _admit(proven_policy, registry).admin
        if not isinstance(record, PolicyPublished):
            raise VerificationError(f"entry {proven_policy.index} is not a published policy")
        policy_record, policy_index = record, proven_policy.index
        checks.append(f"policy entry {policy_index}: included and signed by an admin key")
    entries = [_prove(item, checkpoint, "release entry") for item in dossier.entries]
    admitted = {proven.index: _admit(proven, _as_of(registry, policy_record, policy_index, proven.index))
                for proven in entries}  # fmt: skip
    checks.append(f"{len(entries)} entries: included, signed by keys registered and unrevoked at their index")
    chained = [p for p in entries if p.entry.release is not None]
    _check_release_chain(chained, dossier.product, dossier.version)
    completeness = _completeness(chained, admitted, checkpoint.size)
    checks.append(f"release chain of {len(chained)} events unbroken from its first event")
    if completeness.sealed_at is not None:
        checks.append(f"release seal at entry {completeness.sealed_at} commits to the chain before it")
    signers = {index: item.signer_keyid for index, item in admitted.items()}
    events = [e for p in entries if (e := event_from_entry(p.data, registry, signers[p.index])) is not None]
    try:
        computed = recompute(events, policy_record, policy_index, dossier.evaluated_at, dossier.environment)
    except VerificationError:
        raise
    except LedgerError as exc:
        raise VerificationError(f"the dossier's compliance inputs are malformed: {exc}") from exc
    if computed != dossier.compliance:
        differing, claimed, recomputed = _first_difference(dossier.compliance, computed)
        raise VerificationError(
            "the dossier's compliance result does not follow from its evidence and policy: "
            f"its {differing} differs",
            expected=claimed,
            calculated=recomputed,
            labels=("dossier claims", "re-evaluated"),
        )
    checks.append(f"compliance re-evaluated: {computed.get('status')}")
    return DossierReport(checkpoint, events, len(keys), completeness, computed, checks)
