"""A log monitor's replay of the entries under a new checkpoint, and the new entries it watches for. Pure.

`walk_entries` replays every entry under a checkpoint with the checks of `verify-log`
(`ledger.verify.log_walk.LogWalk`, `ledger.rules.replay`): a failure is one `bad-entry`
alert; a completeness index root that is not the one the entries give
(`ledger.verify.index_check`) is one `bad-index` alert. Along the way it reports the new
entries of watched kinds (`WATCH_KINDS`: key registrations and revocations, exceptions,
denying gate decisions, ... docs/monitor.md#watching-entries),
which are news, not misbehaviour: this module owns those kinds and how a verified entry
matches them (`watch_matches`). The only I/O is the tile source the caller passes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from ledger.core.checkpoint import Checkpoint
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, SignatureCheck, check_now, envelope_payload
from ledger.core.keys import VerifierKey, parse_verifier_key
from ledger.errors import EncodingError, InputError, VerificationError, failure_context
from ledger.records import predicates
from ledger.records.admin import ADMIN_KINDS, KeyRegistered, KeyRevoked, PolicyPublished
from ledger.records.statement import decode_statement
from ledger.rules.replay import LogReplayer, ReplayedEntry, latest_plausible_time
from ledger.verify.index_check import ServedProof, stated_first_chained_index
from ledger.verify.log_walk import LogWalk, default_jobs
from ledger.verify.monitor_history import BAD_ENTRY, BAD_INDEX, Alert, alert_from
from ledger.verify.signature_pool import DeferredSignatures
from ledger.verify.tile_source import Prefetcher, TileSource
from ledger.verify.tree_check import Progress

# The kinds of new entries `--watch` can report: the admin records, every predicate's short
# name, and `gate-deny` (a gate decision whose decision is deny).
GATE_DENY = "gate-deny"
WATCH_KINDS: tuple[str, ...] = (
    *ADMIN_KINDS,
    *sorted(set(predicates.KIND_NAMES.values())),
    GATE_DENY,
    "evidence",
)


@dataclass(frozen=True, slots=True)
class WatchMatch:
    """A new entry of a watched kind: its index, the watch kind it matched and a one-line description."""

    index: int
    kind: str
    description: str

    def to_json(self) -> dict[str, Any]:
        """The match as a JSON object (webhook messages of type "watch", `--json`)."""
        return {"index": self.index, "kind": self.kind, "description": self.description}


def check_watch_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """The watch kinds given, deduplicated in order; InputError naming an unknown one and the known ones."""
    result: list[str] = []
    for kind in kinds:
        if kind not in WATCH_KINDS:
            raise InputError(f"unknown watch kind {kind!r}: choose from {', '.join(WATCH_KINDS)}")
        if kind not in result:
            result.append(kind)
    return tuple(result)


def watch_matches(replayed: ReplayedEntry, kinds: Sequence[str]) -> list[WatchMatch]:
    """The watch kinds among `kinds` a replayed (verified) entry is, each with a description."""
    admitted, index = replayed.admitted, replayed.entry.index
    record = admitted.admin
    signer = admitted.signer_keyid if admitted.signers else "?"
    if record is not None:
        kind = admitted.kind
        if kind not in kinds:
            return []
        if isinstance(record, KeyRegistered):
            key = parse_verifier_key(record.key)
            products = ", ".join(record.products) or "all products"
            text = f"key {key.keyid} registered for {record.owner} as {', '.join(record.roles)} ({products})"
        elif isinstance(record, KeyRevoked):
            text = f"key {record.keyid} revoked: {record.reason}"
        elif isinstance(record, PolicyPublished):
            text = f"policy {record.name} {record.version} published"
        else:  # pragma: no cover - AdminRecord is exactly these three
            text = kind
        return [WatchMatch(index, kind, f"{text} (signed by {signer})")]
    name = predicates.kind_name(admitted.kind)
    release = f"{admitted.product} {admitted.version}" if admitted.product else "no release"
    found: list[WatchMatch] = []
    if name in kinds:
        found.append(WatchMatch(index, name, f"{name} for {release} (signed by {signer})"))
    if GATE_DENY in kinds and admitted.kind == predicates.GATE_DECISION:
        decision = _gate_decision(replayed)
        if decision == "deny":
            found.append(
                WatchMatch(index, GATE_DENY, f"gate decision deny for {release} (signed by {signer})")
            )
    return found


def _gate_decision(replayed: ReplayedEntry) -> str | None:
    envelope = replayed.entry.envelope
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE:
        return None
    try:
        statement = decode_statement(envelope_payload(envelope))
    except EncodingError:
        return None
    extension = statement.predicate.get(predicates.GATE_EXTENSION)  # the shape since issue #12
    holder = extension if isinstance(extension, dict) else statement.predicate
    decision = holder.get("decision")
    return decision if isinstance(decision, str) else None


@dataclass(frozen=True, slots=True)
class EntryReport:
    """What `walk_entries` found.

    The alert (at most one: a walk stops at its first failure), the watched new entries
    (none when it failed), the signatures checked and the seconds taken; `index_matched` when
    the checkpoint carries a completeness index root and the entries give the same one.
    """

    alerts: tuple[Alert, ...]
    watched: tuple[WatchMatch, ...]
    signatures: int
    seconds: float
    index_matched: bool = False


class _RecordingReplayer(LogReplayer):
    """A `LogReplayer` that also collects watched entries from index `first` on."""

    def __init__(
        self,
        check: SignatureCheck,
        *,
        not_after: str,
        chained_from: int | None,
        first: int,
        kinds: Sequence[str],
    ) -> None:
        super().__init__(check, not_after=not_after, chained_from=chained_from)
        self.first = first
        self.kinds = kinds
        self.matches: list[WatchMatch] = []

    def check(self, data: bytes) -> ReplayedEntry:
        replayed = super().check(data)
        if self.kinds and replayed.entry.index >= self.first:
            self.matches.extend(watch_matches(replayed, self.kinds))
        return replayed


def walk_entries(  # noqa: PLR0913 - keyword-only options of one walk
    source: TileSource,
    checkpoint: Checkpoint,
    verifier: VerifierKey,
    *,
    first_new: int = 0,
    watch: Sequence[str] = (),
    jobs: int | None = None,
    progress: bool = False,
    note: str = "",
    prove: ServedProof | None = None,
) -> EntryReport:
    """Replay every entry under `checkpoint` from the tiles of `source`, as `verify-log` does, from entry 0.

    Every entry is checked (canonical bytes, index, chain link, signature by a key registered
    and not revoked before it, admin role, plausible time), every hash tile and the root are
    compared with the checkpoint. A failure is one `bad-entry` alert carrying the
    VerificationError's message (which names the entry or tile). Entries from `first_new` on
    whose kind is in `watch` are reported once the whole walk passed. Precondition:
    `checkpoint` was opened with `verifier` (`ledger.verify.monitor.observe`). `jobs` as in
    `walk_log`. A source that cannot be read (an unreachable server) raises its own error,
    not an alert. Once the walk passed, the checkpoint's completeness index root (when it carries
    one) must be the one the entries give: otherwise one `bad-index` alert, with `note` (the
    signed checkpoint as served) as its evidence. With `prove` (the server's proof route), the
    alert also names the first changed chain the server proves otherwise
    (`IndexCheck.served_disagreement`).
    """
    start = time.monotonic()
    size = checkpoint.size
    try:
        chained_from = stated_first_chained_index(checkpoint.extensions)
    except VerificationError as exc:
        return EntryReport((_index_alert(exc, size, note),), (), 0, time.monotonic() - start)
    with ExitStack() as stack:
        fetch = stack.enter_context(Prefetcher(source))
        counter = Progress("monitor", size, enabled=progress)
        helpers = default_jobs(size) if jobs is None else jobs
        signatures = stack.enter_context(DeferredSignatures(helpers)) if helpers > 0 else None
        replayer = _RecordingReplayer(
            check_now if signatures is None else signatures,
            not_after=latest_plausible_time(),
            chained_from=chained_from,
            first=first_new,
            kinds=watch,
        )
        walk = LogWalk(
            source, fetch, verifier, counter, signatures, chained_from=chained_from, replayer=replayer
        )
        try:
            with failure_context(f"log at size {size}"):
                walk.run(checkpoint)
        except VerificationError as exc:
            return EntryReport(
                (alert_from(BAD_ENTRY, exc, size),), (), walk.signature_count, time.monotonic() - start
            )
        finally:
            counter.close()
        try:
            matched = walk.check_index(checkpoint)
        except VerificationError as exc:
            alert = _index_alert(exc, size, note)
            if prove is not None and walk.index.mismatched_at == size:
                named = walk.index.served_disagreement(prove)
                alert = dataclasses.replace(alert, message=f"{alert.message}; {named}")
            return EntryReport((alert,), (), walk.signature_count, time.monotonic() - start)
        return EntryReport(
            (), tuple(replayer.matches), walk.signature_count, time.monotonic() - start, matched
        )


def _index_alert(exc: VerificationError, size: int, note: str) -> Alert:
    """The `bad-index` alert for a checkpoint whose index line the entries contradict."""
    return alert_from(BAD_INDEX, exc, size, **({"note": note} if note else {}))
