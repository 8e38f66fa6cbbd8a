"""One poll of `evledger monitor`: fetch what the ledger serves, judge it, accept it or not.

`Monitor.poll` reads `GET /checkpoint` and has `ledger.verify.monitor.observe` judge it; for a
new checkpoint it fetches the tiles the mirror lacks and has
`ledger.verify.monitor_watch.walk_entries` replay the whole log over them (and recompute its
completeness index, compared with the checkpoint's); with trusted TSA
certificates it reads `GET /v1/anchors` for `ledger.verify.monitor.check_anchors`. Only a
checkpoint whose entries all verified enters the mirror and the history
(`cli.monitor_state`). Reporting what a poll found is `cli.monitor_cmd`'s.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from cli.client import LedgerClient
from cli.monitor_state import StagedTiles, StateDir, clear_pending, commit_mirror, fetch_missing
from cli.served import fetch_consistency_proof, served_index_proof_bytes
from cli.tile_source import HttpTiles
from ledger.core.checkpoint import Checkpoint
from ledger.core.keys import VerifierKey
from ledger.errors import LedgerError, NotFoundError, UnavailableError, VerificationError
from ledger.verify.anchoring import LEDGER_KEY_ONLY, Trust
from ledger.verify.monitor import check_anchors, observe
from ledger.verify.monitor_history import (
    BAD_ENTRY,
    BAD_INDEX,
    BAD_SIGNATURE,
    AcceptedCheckpoint,
    Alert,
    MonitorHistory,
    alert_from,
)
from ledger.verify.monitor_watch import WatchMatch, walk_entries
from ledger.verify.tile_source import MAX_CHECKPOINT_BYTES


@dataclass
class Poll:
    """What one poll found: the checkpoint served, alerts, new entries verified, watched entries."""

    checkpoint: Checkpoint | None = None
    accepted: bool = False
    unchanged: bool = False
    alerts: list[Alert] = field(default_factory=list)
    watched: list[WatchMatch] = field(default_factory=list)
    new_entries: int = 0
    fetched: int = 0
    signatures: int = 0
    seconds: float = 0.0
    timestamps: list[tuple[str, str]] = field(default_factory=list)
    index_matched: bool = False  # the checkpoint's completeness index root was recomputed and matched


@dataclass
class Monitor:
    """Everything a poll needs: the server, the ledger key and other trust, the state and its history."""

    server: str
    client: LedgerClient
    verifier: VerifierKey
    state: StateDir
    history: MonitorHistory
    trust: Trust = LEDGER_KEY_ONLY
    watch: tuple[str, ...] = ()
    jobs: int | None = None
    progress: bool = False

    def consistency(self, first: int, second: int) -> list[bytes]:
        """The server's consistency proof; a refusal other than unavailability fails verification."""
        try:
            return fetch_consistency_proof(self.client, first, second)
        except (UnavailableError, VerificationError):
            raise
        except LedgerError as exc:
            raise VerificationError(
                f"the ledger does not prove that size {second} extends size {first}: {exc}"
            ) from exc

    def poll(self) -> Poll:
        """Fetch and judge the served checkpoint; verify its entries and timestamps; accept it if all holds.

        UnavailableError when the server cannot be reached (nothing is changed then).
        """
        result = Poll()
        note = self.client.get("/checkpoint").content
        if len(note) > MAX_CHECKPOINT_BYTES:
            message = (
                f"the served checkpoint is {len(note):,} bytes, over the {MAX_CHECKPOINT_BYTES:,} allowed"
            )
            result.alerts.append(Alert(BAD_SIGNATURE, message))
            return result
        observation = observe(self.history, note, self.verifier, self.trust.policy, self.consistency)
        result.checkpoint, result.unchanged = observation.checkpoint, observation.unchanged
        result.alerts.extend(observation.alerts)
        accepted = observation.accepted
        if accepted is not None:
            try:
                self._verify_entries(accepted, result)
            except BaseException:
                clear_pending(self.state)
                raise
        if observation.checkpoint is not None and self.trust.tsa_certificates and not observation.alerts:
            self._verify_timestamps(observation.checkpoint, result)
        if accepted is not None and not any(a.kind in {BAD_ENTRY, BAD_INDEX} for a in result.alerts):
            commit_mirror(self.state, accepted)
            self.state.record(accepted)
            self.history.accept(accepted)
            result.accepted = True
        else:
            clear_pending(self.state)
            result.watched.clear()
        return result

    def _verify_entries(self, accepted: AcceptedCheckpoint, result: Poll) -> None:
        before = self.history.latest.checkpoint.size if self.history.latest is not None else 0
        clear_pending(self.state)
        http = HttpTiles(self.client, self.server)
        try:
            result.fetched = fetch_missing(self.state, http, accepted.checkpoint.size)
        except VerificationError as exc:
            result.alerts.append(alert_from(BAD_ENTRY, exc, accepted.checkpoint.size))
            return
        report = walk_entries(
            StagedTiles(self.state, http),
            accepted.checkpoint,
            self.verifier,
            first_new=before,
            watch=self.watch,
            jobs=self.jobs,
            progress=self.progress,
            note=accepted.note,
            prove=functools.partial(served_index_proof_bytes, self.client),
        )
        result.alerts.extend(report.alerts)
        result.index_matched = report.index_matched
        result.watched.extend(report.watched)
        result.new_entries = accepted.checkpoint.size - before
        result.signatures, result.seconds = report.signatures, report.seconds

    def _verify_timestamps(self, checkpoint: Checkpoint, result: Poll) -> None:
        try:
            body = self.client.get("/v1/anchors", tree_size=checkpoint.size).content
        except NotFoundError:
            return  # a ledger without trusted time (or an older one): no timestamps to check
        report = check_anchors(body, checkpoint, self.verifier, self.trust.tsa_certificates)
        result.alerts.extend(report.alerts)
        result.timestamps.extend(report.times)
