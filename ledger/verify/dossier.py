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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from ledger.core.checkpoint import Checkpoint, open_checkpoint
from ledger.core.encoding import JSON_ERRORS, b64decode_strict, hash_from_hex, parse_time
from ledger.core.entry import ChainLink, Entry, KeyLink, ReleaseLink, parse_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import VerifierKey
from ledger.core.proof import verify_inclusion
from ledger.core.sparse_merkle import release_key, verify_index_proof
from ledger.errors import ChainError, InputError, LedgerError, VerificationError
from ledger.records.admin import PolicyPublished
from ledger.rules.admission import Admitted, admit, admit_genesis
from ledger.rules.chains import (
    KEY_CHAIN_EXTENSION,
    UNSTATED,
    Chains,
    Member,
    chained_digests,
    first_break,
    index_line_of,
    key_chain_head_of,
)
from ledger.rules.completeness import Completeness, LastEvent
from ledger.rules.events import Event, SignerNames, admitted_event
from ledger.rules.registry import KeyRegistry
from ledger.rules.replay import apply_recorded
from ledger.verify.anchoring import (
    LEDGER_KEY_ONLY,
    NO_ANCHORS,
    Anchoring,
    Trust,
    check_anchoring,
    check_entry_times,
    check_evaluation_time,
    decode_timestamps,
)
from ledger.verify.compliance_claim import first_difference
from ledger.verify.compliance_claim import recompute as recompute_compliance

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
    timestamps: list[str] = []  # RFC 3161 tokens over the checkpoint's note text, base64 DER
    # The release chain's head in the completeness index the checkpoint commits to, a base64 proof
    # as completeness-index.md defines it: required when the checkpoint carries its index line.
    index_proof: str | None = None


# (events, policy record, policy entry index, evaluated_at, environment) -> compliance result as JSON data
Recompute = Callable[[Sequence[Event], PolicyPublished | None, int | None, str, str | None], dict[str, Any]]
_decoder = msgspec.json.Decoder(Dossier)


@dataclass(slots=True)
class DossierReport:
    """What a successful verification established."""

    checkpoint: Checkpoint
    events: list[Event]
    keys: int
    completeness: Completeness
    compliance: dict[str, Any]
    checks: list[str] = field(default_factory=list)
    anchoring: Anchoring = NO_ANCHORS  # the witness quorum and trusted time checked, if asked

    @property
    def sealed(self) -> bool:
        """Whether the dossier proves a seal that closes the release (then it is complete for good)."""
        return self.completeness.sealed_at is not None


@dataclass(slots=True)
class _Proven:
    index: int
    data: bytes
    entry: Entry
    leaf: bytes


def _prove(item: ProvenEntry, checkpoint: Checkpoint, what: str) -> _Proven:
    try:
        data = b64decode_strict(item.entry, f"{what} {item.index}")
        proof = [hash_from_hex(h, "proof hash") for h in item.inclusion_proof]
        entry = parse_entry(data)
    except LedgerError as exc:
        raise VerificationError(f"{what} {item.index} is malformed: {exc}") from exc
    if entry.index != item.index:
        raise VerificationError(f"{what} listed as {item.index} is entry {entry.index}")
    leaf = leaf_hash(data)
    try:
        verify_inclusion(item.index, checkpoint.size, leaf, proof, checkpoint.root_hash)
    except VerificationError as exc:
        raise exc.restated(
            f"{what} {item.index} is not in the tree of the dossier's checkpoint (size {checkpoint.size}): "
            f"{exc.args[0]}"
        ) from exc
    return _Proven(item.index, data, entry, leaf)


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


def _replay_keys(keys: list[_Proven], head: int, chained_from: int | None = UNSTATED) -> KeyRegistry:
    """Rebuild the registry from the complete key-event chain ending at entry `head`."""
    if not keys or keys[-1].index != head:
        raise VerificationError(
            "the dossier's key events do not end at the checkpoint's newest key event",
            expected=str(head),
            calculated=str(keys[-1].index if keys else None),
            labels=("checkpoint's newest key event", "dossier's last key event"),
        )
    members = [_member(proven, proven.entry.keys) for proven in keys]
    broken = first_break(members)
    if broken is not None:
        raise ChainError(
            f"key event {broken.member.index} does not follow the key event before it: one is missing",
            expected=str(broken.expected),
            calculated=str(broken.actual),
            labels=("link to the key event before", "entry's link"),
        )
    registry, chains = KeyRegistry(), Chains(chained_from=chained_from)
    for proven, member in zip(keys, members, strict=True):
        with _valid_at_its_index(proven.index):
            apply_recorded(proven.entry, member.leaf_hash, registry, chains)
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


def _member(proven: _Proven, link: ReleaseLink | KeyLink | None) -> Member:
    """`proven` as a member of the chain `link` (its release link or its key-event link) puts it on."""
    return Member(proven.index, proven.leaf, *((link.seq, link.prev) if link else (None, None)))


@contextmanager
def _valid_at_its_index(index: int) -> Iterator[None]:
    """Admission failures of entry `index` as what they mean in a dossier: a failed verification."""
    try:
        yield
    except LedgerError as exc:
        raise VerificationError(f"entry {index}: its signature is not valid at its index: {exc}") from exc


def _admit(proven: _Proven, registry: KeyRegistry) -> Admitted:
    with _valid_at_its_index(proven.index):
        if proven.index == 0:
            return admit_genesis(proven.entry.envelope)
        entry = proven.entry
        return admit(entry.envelope, registry, proven.index, at=parse_time(entry.time), keep_decoded=True)


def _check_release_chain(release: list[_Proven], product: str, version: str) -> None:
    """The release's chain must run from seq 0 with every back-link matching (ChainError if not)."""
    for proven in release:
        link = proven.entry.release
        assert link is not None  # noqa: S101 - the caller selected chained entries
        if (link.product, link.version) != (product, version):
            raise ChainError(f"entry {proven.index} belongs to release {link.product} {link.version}")
    broken = first_break([_member(proven, proven.entry.release) for proven in release])
    if broken is None:
        return
    member, position = broken.member, broken.position
    if broken.out_of_place:
        missing = (
            f"event {position} of the release is missing" if (member.seq or 0) > position else "out of order"
        )
        raise ChainError(f"entry {member.index} is event {member.seq} of the release: {missing}")
    raise ChainError(
        f"entry {member.index} does not link to the release event before it",
        expected=str(broken.expected),
        calculated=str(broken.actual),
        labels=("link to the event before", "entry's link"),
    )


def _check_artifact_links(
    entries: list[_Proven], admitted: dict[int, Admitted], chained_from: int | None
) -> int:
    """Each entry carries the artifact links its subjects imply, consistent with the others held; ChainError.

    From the first chained index on (`chained_from`; UNSTATED: from the first entry carrying
    artifact links), an entry carries one link per distinct sha256 subject digest and none
    below it (`ledger.rules.chains.Chains.check`, the whole-log rule). A dossier holds only
    part of each artifact's chain, so links are checked against the entries it holds: a later
    entry on the same chain counts a later place and links no earlier than the one held, to it
    by its leaf hash when it counts the very next place, and an entry a link names must be on
    that chain. Precondition: `entries` are in index order. Returns how many carry links.
    """
    held = {proven.index: proven for proven in entries}
    newest: dict[str, tuple[_Proven, int]] = {}  # digest -> newest entry held on its chain, its seq
    carrying = 0
    for proven in entries:
        links = proven.entry.artifacts
        if chained_from is UNSTATED and links is not None:
            chained_from = proven.index
        digests = chained_digests(admitted[proven.index].subjects)
        implied = digests if chained_from is not None and proven.index >= chained_from and digests else None
        carried = None if links is None else [link.digest for link in links]
        if carried != implied:
            raise ChainError(
                f"entry {proven.index} does not carry the artifact back-links its subjects imply",
                expected=", ".join(implied or ["none"]),
                calculated=", ".join(carried or ["none"]),
                labels=("subjects' sha256 digests", "entry links"),
            )
        carrying += links is not None
        for link in links or ():
            prev = link.prev
            named = held.get(prev.index) if prev is not None else None
            if named is not None and not any(a.digest == link.digest for a in named.entry.artifacts or ()):
                raise ChainError(
                    f"entry {proven.index} links to entry {named.index} on the chain of {link.digest}, "
                    "which that entry is not on"
                )
            before = newest.get(link.digest)
            if before is not None:
                _follows(proven, link.digest, link.seq, prev, before)
            newest[link.digest] = (proven, link.seq)
    return carrying


def _artifact_link_checks(
    entries: list[_Proven], admitted: dict[int, Admitted], chained_from: int | None
) -> list[str]:
    """`_check_artifact_links`, and what it established (nothing to say when no entry carries links)."""
    carrying = _check_artifact_links(entries, admitted, chained_from)
    return (
        [f"artifact back-links of {carrying} entries: as their subjects imply, consistent"]
        if carrying
        else []
    )


def _follows(
    proven: _Proven, digest: str, seq: int, prev: ChainLink | None, before: tuple[_Proven, int]
) -> None:
    """Entry `proven` (at `seq` on the chain of `digest`, linking to `prev`) follows `before`, held on it."""
    earlier, earlier_seq = before
    linked = None if prev is None else (prev.index, prev.leaf_hash)
    right = (earlier.index, earlier.leaf.hex())
    consistent = (
        seq > earlier_seq
        and linked is not None
        and linked[0] >= earlier.index
        and (linked == right) == (seq == earlier_seq + 1)
        and (linked[0] != earlier.index or linked == right)
    )
    if not consistent:
        raise ChainError(
            f"entry {proven.index} does not follow entry {earlier.index} on the chain of {digest}",
            expected=f"a place after {earlier_seq}, linking to entry {earlier.index} or a later one",
            calculated=f"place {seq}, linking to {linked[0] if linked else 'nothing'}",
            labels=("the entries held imply", "entry's link"),
        )


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
    chain = (len(release) - 1, before.leaf.hex() if before is not None else "")
    claimed = admitted[seal.index].seal
    if claimed != chain:
        raise ChainError(
            f"the release seal at entry {seal.index} does not commit to the release chain before it",
            expected=f"count {chain[0]}, head {chain[1] or '-'}",
            calculated=f"count {claimed[0]}, head {claimed[1]}" if claimed else "-",
            labels=("the chain holds", "the seal says"),
        )
    return Completeness(seal.index, last, len(release), tree_size)


def _release_completeness(  # noqa: PLR0913, PLR0917 - the dossier, what was proven of it, the list to extend
    dossier: Dossier,
    entries: list[_Proven],
    admitted: dict[int, Admitted],
    size: int,
    line: tuple[bytes, int] | None,
    checks: list[str],
) -> Completeness:
    """The release chain held, checked unbroken, its seal, and its head in the index `line` commits to."""
    chained = [p for p in entries if p.entry.release is not None]
    _check_release_chain(chained, dossier.product, dossier.version)
    completeness = _completeness(chained, admitted, size)
    checks.append(f"release chain of {len(chained)} events unbroken from its first event")
    if line is not None:
        _check_index_head(dossier, line[0], chained, size)
        completeness = replace(completeness, indexed=True)
        checks.append(
            f"completeness index of checkpoint {size}: the release's head is its entry "
            f"{chained[-1].index if chained else '-'}, {len(chained)} events, all held"
        )
    if completeness.sealed_at is not None:
        checks.append(f"release seal at entry {completeness.sealed_at} commits to the chain before it")
    return completeness


def _index_line(checkpoint: Checkpoint) -> tuple[bytes, int] | None:
    """The checkpoint's `evledger-index` line (root, first chained index); None for an older checkpoint."""
    try:
        return index_line_of(checkpoint.extensions)
    except LedgerError as exc:
        raise VerificationError(f"the dossier's checkpoint has a malformed index line: {exc}") from exc


def _check_index_head(dossier: Dossier, root: bytes, chained: list[_Proven], size: int) -> None:
    """The release chain held must be the whole chain the completeness index names (completeness-index.md).

    The index proof gives the chain's head at the checkpoint: its count, newest entry and that
    entry's leaf hash. The chain held (already checked unbroken from its first event) must end
    at that entry and hold that many events; otherwise events were left out (or the root is stale).
    """
    if dossier.index_proof is None:
        raise VerificationError(
            f"the checkpoint of {size} entries commits to a completeness index, but the dossier carries "
            "no index proof for the release: it cannot show that no event is left out"
        )
    try:
        proof = b64decode_strict(dossier.index_proof, "the dossier's index proof")
        head = verify_index_proof(root, release_key(dossier.product, dossier.version), proof)
    except InputError as exc:  # a malformed proof is a dossier that fails, not bad input (exit 1)
        raise VerificationError(f"the dossier's index proof is malformed: {exc}") from exc
    held = (len(chained), chained[-1].index, chained[-1].leaf.hex()) if chained else (0, None, None)
    named = (head.count, head.last_index, head.last_leaf.hex()) if head is not None else (0, None, None)
    if held != named:
        raise VerificationError(
            f"the release's events in the dossier are not all of them: the completeness index of "
            f"checkpoint {size} counts {named[0]} events ending at entry {named[1]}, the dossier holds "
            f"{held[0]} ending at entry {held[1]}",
            expected=f"{named[0]} events, newest entry {named[1]} (leaf {named[2]})",
            calculated=f"{held[0]} events, newest entry {held[1]} (leaf {held[2]})",
            labels=("completeness index", "dossier holds"),
        )


def decode_dossier(data: bytes | str, source: str) -> Dossier:
    """Parse a dossier (JSON, `Dossier`); any damage to it fails verification, naming `source`."""
    try:
        return _decoder.decode(data)
    except JSON_ERRORS as exc:
        raise VerificationError(f"{source} is not an intact dossier: {exc}") from exc


def _anchored(dossier: Dossier, trust: Trust, proven: list[_Proven]) -> Anchoring:
    """The anchors `trust` requires of the checkpoint, and the times they bound (ledger.verify.anchoring)."""
    anchoring = check_anchoring(dossier.checkpoint, decode_timestamps(dossier.timestamps, "dossier"), trust)
    check_entry_times(anchoring, ((p.index, p.entry.time) for p in proven))
    check_evaluation_time(anchoring, dossier.evaluated_at)
    return anchoring


def verify_dossier(
    dossier: Dossier,
    verifier: VerifierKey,
    recompute: Recompute = recompute_compliance,
    *,
    trust: Trust = LEDGER_KEY_ONLY,
    chained_from: int | None = UNSTATED,
) -> DossierReport:
    """Verify a dossier offline, trusting only `verifier` (the ledger key); raise at the first failure.

    Checks, in this order: the checkpoint's signature (C2SP signed-note); each entry's
    inclusion proof against it (RFC 9162 §2.1.3.2); the complete key-event chain up to
    the key event the checkpoint names; the policy entry and every release entry
    signed by keys registered and unrevoked at their index; the release chain and its
    seal; and the compliance claim, re-evaluated with `recompute` (by default exactly
    as the ledger evaluates it). With `trust`, the checkpoint must also carry the witness
    quorum and trusted time it requires, and every entry time and the evaluation time must
    agree with that time (`ledger.verify.anchoring`). VerificationError (or one of its kinds)
    otherwise.

    `chained_from` is the ledger's first chained index as the checkpoint's `evledger-index` line
    states it: entries from it on carry artifact back-links, entries below it none. UNSTATED (the
    default, for a checkpoint without that line, signed before the ledger chained artifacts): the
    first entry of the dossier carrying artifact links is taken as where they begin.
    """
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
    line = _index_line(checkpoint)
    chained_from = chained_from if line is None else line[1]  # the checkpoint says where they begin
    _in_order(dossier.keys, "key events")
    _in_order(dossier.entries, "release entries")
    keys = [_prove(item, checkpoint, "key event") for item in dossier.keys]
    registry = _replay_keys(keys, _key_chain_head(checkpoint), chained_from)
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
    checks += _artifact_link_checks(entries, admitted, chained_from)
    completeness = _release_completeness(dossier, entries, admitted, checkpoint.size, line, checks)
    anchoring = _anchored(dossier, trust, [*keys, *entries])
    checks += anchoring.statements()
    names = SignerNames(registry)
    read = (
        admitted_event(p.entry, p.leaf, admitted[p.index], names(admitted[p.index].signer_keyid))
        for p in entries
    )
    events = [event for event in read if event is not None]  # decoded once, by admission
    try:
        computed = recompute(events, policy_record, policy_index, dossier.evaluated_at, dossier.environment)
    except VerificationError:
        raise
    except LedgerError as exc:
        raise VerificationError(f"the dossier's compliance inputs are malformed: {exc}") from exc
    if computed != dossier.compliance:
        differing, claimed, recomputed = first_difference(dossier.compliance, computed)
        raise VerificationError(
            "the dossier's compliance result does not follow from its evidence and policy: "
            f"its {differing} differs",
            expected=claimed,
            calculated=recomputed,
            labels=("dossier claims", "re-evaluated"),
        )
    checks.append(f"compliance re-evaluated: {computed.get('status')}")
    return DossierReport(checkpoint, events, len(keys), completeness, computed, checks, anchoring)
