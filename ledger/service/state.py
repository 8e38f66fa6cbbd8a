"""What the routes share: the store, its evidence index, the sequencer, the proof reader, tokens, metrics.

Appends go through the one `Appender` (ledger.append.appender), built here on the
sequencer; tokens are checked by `Tokens` (ledger.service.auth). What is left here is
the service's own: the cached, verified newest checkpoint and the metrics.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from litestar.di import NamedDependency

from ledger.append.appender import Appender
from ledger.append.sequencer import Sequencer
from ledger.core.cosignature import add_cosignatures
from ledger.core.keys import SignerKey
from ledger.errors import LedgerError, LogIntegrityError, NotFoundError, UnavailableError
from ledger.query.index_follow import IndexFollower
from ledger.query.proofs import ProofReader
from ledger.rules.log_state import verified_checkpoint
from ledger.service.auth import Tokens
from ledger.service.availability import UploadSlots
from ledger.service.console.sessions import ConsoleSessions
from ledger.service.metrics import PUBLISH_SECONDS, Metrics, Tallies
from ledger.service.witnessing import Witnessing, witness_keyids
from ledger.service.witnessing_config import WitnessingConfig
from ledger.storage.protocol import (
    AnchorStore,
    BlobStore,
    CheckpointRow,
    EvidenceIndex,
    LogStore,
    SessionStore,
)
from ledger.verify.witness_policy import check_quorum

CHECKPOINT_CACHE_SECONDS = 0.2


@dataclass(slots=True)
class ServiceState:
    """Shared by every request of one service process.

    Preconditions: `sequencer` is started on `store`; `index` and `proofs` read `store`;
    `signer` is the ledger key the sequencer signs checkpoints with.
    """

    store: LogStore
    index: EvidenceIndex  # the read model over `store`'s entries (timelines, search, compliance)
    sequencer: Sequencer
    proofs: ProofReader
    signer: SignerKey
    anchors: AnchorStore  # witness cosignatures and time-stamp tokens of `store`'s checkpoints
    blobs: BlobStore  # the evidence files (issue #14)
    max_blob: int  # the largest file `PUT /v1/blobs/…` takes (Limits.max_blob)
    uploads: UploadSlots  # how many uploads run at once (Limits.max_uploads)
    sessions: SessionStore  # the web console's sessions (issue #15)
    witnessing: WitnessingConfig = field(default_factory=WitnessingConfig)
    metrics: Metrics = field(default_factory=Metrics)
    public_log: bool = False  # `serve --public-log`: /checkpoint and /tile/* need no token
    witnesses: Witnessing = field(init=False)  # this process's witnessing tasks (run by the lease holder)
    appender: Appender = field(init=False)  # every append of this process, on `sequencer`
    tokens: Tokens = field(
        init=False
    )  # the bearer tokens of `store`, as each route's access check reads them
    console: ConsoleSessions = field(init=False)  # sign-in and sessions of the web console
    _latest: tuple[CheckpointRow, float] | None = None
    _verified_note: str = ""  # the newest checkpoint note this process checked (or signed)
    _verified_anchored: str = ""  # the newest anchored checkpoint note this process checked

    @property
    def completeness(self) -> IndexFollower:
        """The completeness index this process knows: the sequencer's, brought forward by the proof route."""
        return self.sequencer.completeness

    def __post_init__(self) -> None:
        """Build the appender and the token cache on the store and sequencer given."""
        self.appender = Appender(self.store, self.sequencer, self.proofs, on_commit=self._committed)
        self.tokens = Tokens(self.store)
        self.console = ConsoleSessions(self.sessions, self.tokens)
        self.witnesses = Witnessing(self.store, self.anchors, self.proofs, self.witnessing)

    async def latest_checkpoint(self, at_least: int = 0, *, fresh: bool = False) -> CheckpointRow:
        """The newest checkpoint, read at most every CHECKPOINT_CACHE_SECONDS unless `fresh`.

        Proof routes use the cached one: other processes' commits only make it grow, so a
        value a few milliseconds old is still a signed, valid checkpoint, and a request
        for a larger tree size reloads it first. `GET /checkpoint`, compliance and gates
        read afresh: they must see everything acknowledged before they were asked, on any
        worker. A checkpoint is served only once its signature verifies with the ledger key
        (LogIntegrityError otherwise: a row written around the ledger is never passed on).
        """
        cached = self._latest
        if (
            not fresh
            and cached is not None
            and cached[0].tree_size >= at_least
            and cached[1] > time.monotonic()
        ):
            return cached[0]
        checkpoint = await self.store.latest_checkpoint()
        if checkpoint is None:
            raise NotFoundError("the ledger has no checkpoint yet")
        if checkpoint.note != self._verified_note:
            verified_checkpoint(checkpoint, self.sequencer.ledger_key, self.sequencer.origin)
            self._verified_note = checkpoint.note
        self._remember(checkpoint)
        return checkpoint

    async def served_checkpoint(self) -> CheckpointRow:
        """The checkpoint `GET /checkpoint` serves, with every cosignature gathered as a signature line.

        Without witnesses or authorities, the newest checkpoint. Otherwise the newest one that
        holds what they give (docs/trust-model.md): its policy's quorum of cosignatures and,
        with authorities, a time-stamp token (they stamp only cosigned checkpoints). Until one
        exists, UnavailableError (a 503): a verifier holding the policy accepts nothing less,
        and receipts carry the ledger-signed checkpoints meanwhile. Its ledger signature and
        quorum are checked before it is served (LogIntegrityError otherwise).
        """
        config = self.witnessing
        if not config.enabled:
            return await self.latest_checkpoint(fresh=True)
        policy = config.policy
        if config.authorities:
            size = await self.anchors.latest_timestamped()
        else:
            assert policy is not None  # noqa: S101 - `enabled` without authorities means a policy
            size = await self.anchors.latest_cosigned(witness_keyids(policy), policy.quorum)
        row = None if size is None else await self.store.checkpoint(size)
        if row is None:
            needs = policy.describe() if policy else "a time-stamp token"
            raise UnavailableError(f"no checkpoint is anchored yet (it needs {needs})", retry_after=5)
        anchors = await self.anchors.anchors(row.tree_size)
        note = add_cosignatures(row.note, anchors.cosignatures)
        if note != self._verified_anchored:
            verified_checkpoint(row, self.sequencer.ledger_key, self.sequencer.origin)
            if policy is not None:
                try:
                    check_quorum(note, policy)
                except LedgerError as exc:
                    raise LogIntegrityError(f"the cosignatures of checkpoint {row.tree_size}: {exc}") from exc
            self._verified_anchored = note
        return CheckpointRow(row.tree_size, row.root_hash, note)

    def _remember(self, checkpoint: CheckpointRow) -> None:
        if self._latest is None or checkpoint.tree_size >= self._latest[0].tree_size:
            self._latest = (checkpoint, time.monotonic() + CHECKPOINT_CACHE_SECONDS)

    def publish_metrics(self) -> None:
        """Hand this process's tallies and queue length to the metrics (`ledger.service.metrics`)."""
        seq, witnesses = self.sequencer, self.witnesses
        tallies = Tallies(seq.batches, seq.entries, witnesses.refusals, witnesses.failures)
        self.metrics.publish(tallies, seq.pending)

    async def keep_metrics_published(self) -> None:
        """Publish every PUBLISH_SECONDS until cancelled: any worker's scrape sees this one's counts."""
        while True:
            self.publish_metrics()
            await asyncio.sleep(PUBLISH_SECONDS)

    def retire_metrics(self) -> None:
        """Once the sequencer stopped: publish the last counts and leave the live gauges."""
        self.publish_metrics()
        self.metrics.retire()

    def _committed(self, count: int) -> None:
        """After this process's appender committed `count` entries: count them, remember the checkpoint.

        The sequencer signed that checkpoint itself, so it needs no verifying when served.
        """
        self.metrics.appended(count)
        signed = self.sequencer.last_checkpoint
        if signed is not None:
            self._verified_note = signed.note
            self._remember(signed)


Svc = NamedDependency[ServiceState]
"""How a route handler asks for the shared state (an explicitly named dependency)."""
