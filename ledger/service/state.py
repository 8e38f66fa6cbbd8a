"""What the routes share: the store, the sequencer, the proof reader, tokens and metrics.

The service-side rules of appending live here: who may append what, idempotency,
and turning a committed append into receipts.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from litestar.di import NamedDependency

from ledger.append.batch import Idempotency, PendingRequest
from ledger.append.receipts import Receipt, build_receipts
from ledger.append.sequencer import Appended, Sequencer
from ledger.core.dsse import Envelope
from ledger.core.keys import SignerKey
from ledger.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    SignatureError,
    UnauthenticatedError,
)
from ledger.query.proofs import ProofReader
from ledger.query.timeline import current_registry
from ledger.rules.admission import AS_OF_NOW, Admitted, admit
from ledger.rules.log_state import verified_checkpoint
from ledger.service.metrics import Metrics
from ledger.service.wire import canonical_encoder
from ledger.storage.migrate import TOKEN_ROLES, hash_token
from ledger.storage.protocol import CheckpointRow, LogStore, TokenRow

ROLE_APPENDER, ROLE_AUDITOR, ROLE_ADMIN = TOKEN_ROLES
APPEND_ROLES = frozenset({ROLE_APPENDER, ROLE_ADMIN})
READ_ROLES = frozenset(TOKEN_ROLES)
TOKEN_CACHE_SECONDS = 1.0  # how late a revocation may take effect (see `authenticate`)
CHECKPOINT_CACHE_SECONDS = 0.2
MAX_IDEMPOTENCY_KEY = 200


@dataclass(slots=True)
class ServiceState:
    """Shared by every request of one service process."""

    store: LogStore
    sequencer: Sequencer
    proofs: ProofReader
    signer: SignerKey
    metrics: Metrics = field(default_factory=Metrics)
    public_log: bool = False  # `serve --public-log`: /checkpoint and /tile/* need no token
    _tokens: dict[bytes, tuple[TokenRow, float]] = field(default_factory=dict)
    _latest: tuple[CheckpointRow, float] | None = None
    _verified_note: str = ""  # the newest checkpoint note this process checked (or signed)

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

    def _remember(self, checkpoint: CheckpointRow) -> None:
        if self._latest is None or checkpoint.tree_size >= self._latest[0].tree_size:
            self._latest = (checkpoint, time.monotonic() + CHECKPOINT_CACHE_SECONDS)

    def _signed_here(self, checkpoint: CheckpointRow) -> None:
        """Remember a checkpoint this process's sequencer signed: no need to verify it again."""
        self._verified_note = checkpoint.note
        self._remember(checkpoint)

    async def authenticate(self, authorization: str | None, roles: frozenset[str]) -> TokenRow:
        """The token's grants; 401 without a known, live bearer token; 403 without one of `roles`.

        A token's row is cached for TOKEN_CACHE_SECONDS, so a revocation reaches every
        worker of every service process within that time (one indexed read per token,
        worker and period); the expiry is checked against the clock on every request.
        """
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthenticatedError("send Authorization: Bearer <token>")
        digest = hash_token(token.strip())
        now = time.monotonic()
        cached = self._tokens.get(digest)
        if cached is not None and cached[1] > now:
            row = cached[0]
        else:
            # The deadline counts from before the read: a row read before a revocation committed
            # is served no later than TOKEN_CACHE_SECONDS after that commit.
            found = await self.store.token(digest)
            if found is None:
                raise UnauthenticatedError("unknown token")
            row = found
            self._tokens[digest] = (row, now + TOKEN_CACHE_SECONDS)
        if row.expires_at is not None or row.revoked_at is not None:
            refusal = row.refusal(datetime.now(UTC))
            if refusal is not None:
                raise UnauthenticatedError(f"{refusal}; ask the ledger's operator for a new one")
        if row.role not in roles:
            raise PermissionDeniedError(f"a token with role {row.role!r} may not do this")
        return row

    async def authenticate_log_read(self, authorization: str | None) -> TokenRow | None:
        """Who reads a C2SP log route (`/checkpoint`, `/tile/*`): anyone under `public_log`, else a reader.

        Tile clients send no credentials, so a public log lets them in without one; a
        credential that *is* sent is still checked, so a bad or revoked token is a 401.
        """
        if authorization is None and self.public_log:
            return None
        return await self.authenticate(authorization, READ_ROLES)

    async def admit(self, envelope: Envelope, token: TokenRow) -> Admitted:
        """Admit an envelope for this token: signature, key role and product scope."""
        try:
            admitted = admit(envelope, self.sequencer.registry, AS_OF_NOW)
        except SignatureError:
            # Another process may have registered the key: catch up from storage, then judge.
            if not await self._refresh_registry(envelope):
                raise
            admitted = admit(envelope, self.sequencer.registry, AS_OF_NOW)
        if admitted.admin is not None and token.role != ROLE_ADMIN:
            raise PermissionDeniedError("admin records need a token with role 'admin'")
        if token.products and admitted.product not in token.products:
            raise PermissionDeniedError(
                f"this token may append only for {sorted(token.products)}, "
                f"not for {admitted.product or 'a statement that names no product'}"
            )
        return admitted

    async def _refresh_registry(self, envelope: Envelope) -> bool:
        """Catch the registry up from storage if it lacks a signer; whether anything was learnt."""
        before = self.sequencer.registry
        keyids = [s.keyid for s in envelope.signatures]
        return await current_registry(self.store, self.sequencer, keyids) is not before

    async def append(
        self,
        envelopes: Sequence[Envelope],
        token: TokenRow,
        idempotency_key: str | None,
        *,
        expected_chain: tuple[int, str] | None = None,
    ) -> tuple[list[Receipt], bool]:
        """Admit and append envelopes all or nothing; return their receipts and whether they replay.

        A replay is a retry with a recorded idempotency key, or a request whose signed
        statements are all recorded already: either way the receipts are the original
        entries'. `expected_chain` (one envelope only) makes the append conditional on the
        release chain's (count, head leaf hash): StaleEvaluationError when it moved on.
        """
        idempotency = None
        if idempotency_key is not None:
            idempotency = self._idempotency(envelopes, token, idempotency_key)
            replay = await self._replay(idempotency)
            if replay is not None:
                return replay, True
        admitted = [await self.admit(envelope, token) for envelope in envelopes]
        if expected_chain is not None:
            admitted = [replace(item, expected_chain=expected_chain) for item in admitted]
        appended = await self.sequencer.append(PendingRequest(admitted, idempotency))
        if appended.replayed:
            assert idempotency is not None  # noqa: S101 - only keyed requests replay
            self._check_same_body(appended.body_hash, idempotency)
            return await self.receipts(appended), True
        if appended.statement_replay is not None:
            return await self.receipts(appended), True
        self.metrics.appended(len(admitted))
        if self.sequencer.last_checkpoint is not None:
            self._signed_here(self.sequencer.last_checkpoint)
        return await self.receipts(appended), False

    @staticmethod
    def _idempotency(envelopes: Sequence[Envelope], token: TokenRow, key: str) -> Idempotency:
        if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
            raise InputError(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters")
        body = hashlib.sha256(canonical_encoder.encode(list(envelopes))).digest()
        return Idempotency(token.token_id, key, body)

    @staticmethod
    def _check_same_body(recorded: bytes, idempotency: Idempotency) -> None:
        if recorded != idempotency.body_hash:
            raise ConflictError(f"Idempotency-Key {idempotency.key!r} was used before with another body")

    async def _replay(self, idempotency: Idempotency) -> list[Receipt] | None:
        rows = await self.store.find_idempotency([(idempotency.token_id, idempotency.key)])
        if not rows:
            return None
        row = rows[0]
        self._check_same_body(row.body_hash, idempotency)
        return await self.receipts(Appended(row.first_index, row.count, row.checkpoint_size, ""))

    async def receipts(self, appended: Appended) -> list[Receipt]:
        """Receipts for committed entries (see `ledger.append.receipts.build_receipts`)."""
        return await build_receipts(self.store, self.proofs, appended)


Svc = NamedDependency[ServiceState]
"""How a route handler asks for the shared state (an explicitly named dependency)."""
