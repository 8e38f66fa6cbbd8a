"""A log monitor's judgement of one served checkpoint, against its history and with its anchors. Pure.

A monitor follows one ledger and keeps its own record of every checkpoint it accepted
(`ledger.verify.monitor_history.MonitorHistory`), so that the ledger cannot show it one
history today and another tomorrow without the monitor holding two signed checkpoints that
contradict each other (RFC 9162 §8.2 and c2sp.org/tlog-witness describe the same duty for a
witness). Each poll, `observe` judges a served checkpoint (a C2SP signed note) against that
history:

- the ledger's signature must verify with the trusted key (`bad-signature`);
- with a witness policy, a quorum of its witnesses must have cosigned it
  (`missing-quorum`; a policy witness's line that does not verify is a `bad-signature`),
  as `ledger.verify.witness_policy.check_quorum` decides;
- a size below the newest accepted one is a `rollback`; a size seen before with another
  root, or a larger size whose RFC 9162 §2.1.4 consistency proof from the newest accepted
  checkpoint does not verify, is a `split-view`.

`check_anchors` judges what `GET /v1/anchors` serves for the checkpoint: the document is
`ledger.verify.anchoring`'s (`decode_served_anchors`), and so is the check of its RFC 3161
tokens (`check_anchoring`); a failure is a `bad-timestamp`, and anchors of another tree of
the same size are a `split-view`. The entries under a new checkpoint are
`ledger.verify.monitor_watch.walk_entries`'s. A checkpoint is accepted into the history only
when every check passed.

Nothing here does I/O: consistency proofs come from a callable the caller supplies, and the
anchors are the bytes the caller fetched (`cli/monitor_poll.py`, docs/monitor.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger.core.checkpoint import Checkpoint
from ledger.core.keys import VerifierKey
from ledger.errors import EncodingError, SignatureError, VerificationError
from ledger.verify.anchoring import Trust, check_anchoring, decode_served_anchors, decode_timestamps
from ledger.verify.checkpoints import open_served_checkpoint, verify_extension
from ledger.verify.monitor_history import (
    BAD_SIGNATURE,
    BAD_TIMESTAMP,
    MISSING_QUORUM,
    ROLLBACK,
    SPLIT_VIEW,
    AcceptedCheckpoint,
    Alert,
    MonitorHistory,
    alert_from,
)
from ledger.verify.trusted_time import TsaCertificate
from ledger.verify.witness_policy import WitnessPolicy, check_quorum

# A consistency proof from tree size `first` to `second`, as the ledger serves it
# (GET /v1/proofs/consistency). It may raise VerificationError for a malformed answer.
ProofFetcher = Callable[[int, int], Sequence[bytes]]


@dataclass(frozen=True, slots=True)
class Observation:
    """What one served checkpoint showed: the alerts, and the checkpoint to accept if nothing is wrong.

    `checkpoint` is the opened checkpoint (None when its signature failed). `accepted` is set
    only when there is no alert and the checkpoint is newer than the history (or the first);
    `unchanged` when it is exactly the newest accepted one.
    """

    alerts: tuple[Alert, ...]
    accepted: AcceptedCheckpoint | None
    checkpoint: Checkpoint | None = None
    unchanged: bool = False


def observe(
    history: MonitorHistory,
    note: str | bytes,
    verifier: VerifierKey,
    policy: WitnessPolicy | None = None,
    consistency: ProofFetcher | Sequence[bytes] | None = None,
) -> Observation:
    """Judge one served checkpoint `note` against `history`; nothing is changed (see `MonitorHistory.accept`).

    `verifier` is the ledger key (normally `history.verifier`). `policy`, when given, requires
    a quorum of cosignatures (c2sp.org/tlog-cosignature). `consistency` is the RFC 9162 §2.1.4
    proof from the newest accepted size to the note's size, or a callable `(first, second)`
    that fetches it; it is asked for only when the note is larger than the newest accepted
    checkpoint. Every check runs even after one failed (a bad quorum does not hide a split
    view). Errors other than VerificationError raised by the fetcher (an unreachable server)
    propagate: they say nothing about the log.
    """
    text = note.decode("utf-8", errors="replace") if isinstance(note, bytes) else note
    data = note if isinstance(note, bytes) else note.encode()
    try:
        checkpoint = open_served_checkpoint(data, verifier, history.origin, "served")
    except VerificationError as exc:
        return Observation((alert_from(BAD_SIGNATURE, exc, note=text),), None)
    alerts: list[Alert] = []
    if policy is not None:
        alerts.extend(_quorum_alerts(data, policy, checkpoint, text))
    alerts.extend(_history_alerts(history, checkpoint, text, consistency))
    latest = history.latest
    unchanged = latest is not None and (latest.checkpoint.size, latest.checkpoint.root_hash) == (
        checkpoint.size,
        checkpoint.root_hash,
    )
    newer = latest is None or checkpoint.size > latest.checkpoint.size
    accepted = AcceptedCheckpoint(checkpoint, text) if newer and not alerts else None
    return Observation(tuple(alerts), accepted, checkpoint, unchanged and not alerts)


def _quorum_alerts(data: bytes, policy: WitnessPolicy, checkpoint: Checkpoint, text: str) -> list[Alert]:
    try:
        check_quorum(data, policy)
    except SignatureError as exc:
        # A line by a policy witness that does not verify: someone forged a cosignature.
        return [alert_from(BAD_SIGNATURE, exc, checkpoint.size, note=text)]
    except (VerificationError, EncodingError) as exc:
        return [alert_from(MISSING_QUORUM, exc, checkpoint.size, note=text)]
    return []


def _history_alerts(
    history: MonitorHistory,
    checkpoint: Checkpoint,
    text: str,
    consistency: ProofFetcher | Sequence[bytes] | None,
) -> list[Alert]:
    alerts: list[Alert] = []
    size, root = checkpoint.size, checkpoint.root_hash
    latest = history.latest
    seen = history.roots.get(size)
    if seen is not None and seen != root:
        earlier = latest.note if latest is not None and latest.checkpoint.size == size else ""
        alerts.append(
            Alert(
                SPLIT_VIEW,
                f"the ledger signed two different trees of size {size}: the one this monitor accepted "
                "before and the one it serves now",
                size,
                seen.hex(),
                root.hex(),
                ("root accepted before", "root served now"),
                {"note": text, **({"earlier_note": earlier} if earlier else {})},
            )
        )
    if latest is None:
        return alerts
    newest = latest.checkpoint
    if size < newest.size:
        alerts.append(
            Alert(
                ROLLBACK,
                f"the ledger serves a checkpoint of size {size}, smaller than size {newest.size} "
                "it served before",
                size,
                str(newest.size),
                str(size),
                ("size accepted before", "size served now"),
                {"note": text, "earlier_note": latest.note},
            )
        )
    elif size > newest.size:
        try:
            proof = consistency(newest.size, size) if callable(consistency) else (consistency or [])
            verify_extension(newest, checkpoint, proof)
        except VerificationError as exc:
            alert = alert_from(SPLIT_VIEW, exc, size, note=text, earlier_note=latest.note)
            message = (
                f"the tree of size {size} does not extend the tree of size {newest.size} this monitor "
                f"accepted before: {alert.message}"
            )
            alerts.append(
                Alert(
                    alert.kind, message, size, alert.expected, alert.calculated, alert.labels, alert.evidence
                )
            )
    return alerts


@dataclass(frozen=True, slots=True)
class TimestampReport:
    """What `check_anchors` found: alerts, and `(TSA, genTime ISO 8601)` of each token that verified."""

    alerts: tuple[Alert, ...]
    times: tuple[tuple[str, str], ...]


def check_anchors(
    body: bytes, checkpoint: Checkpoint, verifier: VerifierKey, trusted: Sequence[TsaCertificate]
) -> TimestampReport:
    """Judge the anchors the ledger serves for `checkpoint` (`body`, the `GET /v1/anchors` answer).

    Their checkpoint must verify with `verifier` and be the same tree: another root for the
    same size is a `split-view`, anything else (a malformed document, another checkpoint) a
    `bad-timestamp`. The tokens are checked by `check_anchoring` against the `trusted`
    certificates; its failure (naming the token) is a `bad-timestamp`. Anchors without a
    token yet are no alert: a ledger stamps a checkpoint after publishing it
    (docs/monitor.md). The witness quorum is `observe`'s judgement, on the served
    checkpoint, not this one's. Precondition: `checkpoint` was opened with `verifier`.
    """
    size = checkpoint.size
    try:
        anchors = decode_served_anchors(body, f"of size {size} the ledger")
    except VerificationError as exc:
        return TimestampReport((alert_from(BAD_TIMESTAMP, exc, size),), ())
    try:
        anchored = open_served_checkpoint(anchors.checkpoint.encode(), verifier, checkpoint.origin, "anchors")
    except VerificationError as exc:
        return TimestampReport((alert_from(BAD_TIMESTAMP, exc, size, note=anchors.checkpoint),), ())
    mismatch = _anchored_elsewhere(checkpoint, anchored, anchors.checkpoint)
    if mismatch is not None:
        return TimestampReport((mismatch,), ())
    if not anchors.timestamps:
        return TimestampReport((), ())
    try:
        tokens = decode_timestamps(anchors.timestamps, "served")
        anchoring = check_anchoring(anchors.checkpoint, tokens, Trust(None, tuple(trusted)))
    except VerificationError as exc:
        return TimestampReport((alert_from(BAD_TIMESTAMP, exc, size),), ())
    return TimestampReport((), tuple((t.tsa, t.time.isoformat()) for t in anchoring.times))


def _anchored_elsewhere(checkpoint: Checkpoint, anchored: Checkpoint, anchors_note: str) -> Alert | None:
    """The alert when the anchors' checkpoint is not `checkpoint` (another tree, or another size)."""
    size = checkpoint.size
    if anchored.size == size and anchored.root_hash != checkpoint.root_hash:
        return Alert(
            SPLIT_VIEW,
            f"the anchors route serves another tree of size {size} than the checkpoint route",
            size,
            checkpoint.root_hash.hex(),
            anchored.root_hash.hex(),
            ("checkpoint root", "anchors root"),
            {"note": checkpoint.text(), "anchors_note": anchors_note},
        )
    if anchored.text() != checkpoint.text():
        return Alert(
            BAD_TIMESTAMP,
            f"the anchors asked for size {size} are for another checkpoint",
            size,
            str(size),
            str(anchored.size),
            ("size asked for", "anchors' size"),
        )
    return None
