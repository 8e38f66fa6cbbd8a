"""The one way in for appends: the `Appender`, used by the HTTP service and by the direct (`--dsn`) commands.

Whoever asks, an append takes the same steps, in this order:

1. idempotency: a request whose idempotency key is on record already is answered with
   the receipts of the entries it appended (ConflictError when the key came with another body);
2. admission of each envelope (`ledger.rules.admission.admit`) against the current key
   registry, caught up from the stored log first when it does not know a signer (another
   process may have registered the key), then the caller's own limits (`Client.authorize`);
3. the sequencer, which integrates the request all or nothing in its next batch;
4. receipts (`ledger.append.receipts.build_receipts`): the same for a fresh append and a replay.

HTTP stays in `ledger.service`: there a bearer token is the `Client`, and its scope is
what `authorize` applies. The direct path (`append_direct`) has no client: whoever holds
the ledger key and the database may append whatever the registry admits.
docs/architecture.md follows one append through these steps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

import msgspec

from ledger.append.batch import Idempotency, PendingRequest
from ledger.append.bootstrap import load_registry
from ledger.append.receipts import Receipt, build_receipts
from ledger.append.sequencer import Appended, Sequencer
from ledger.core.dsse import Envelope
from ledger.core.keys import SignerKey
from ledger.errors import ConflictError, InputError, SignatureError
from ledger.query.proofs import ProofReader
from ledger.query.timeline import current_registry
from ledger.rules.admission import AS_OF_NOW, Admitted, admit
from ledger.storage.postgres import PostgresStore
from ledger.storage.protocol import LogStore

MAX_IDEMPOTENCY_KEY = 200
# The body an idempotency key is bound to, hashed in one canonical JSON spelling (sorted keys):
# the hash is stored with the key, so this spelling must never change.
_canonical = msgspec.json.Encoder(order="sorted")


class Client(Protocol):
    """Who asks for an append, as far as the Appender needs to know (the service's bearer token).

    `client_id` names the space its idempotency keys live in; `authorize` raises
    PermissionDeniedError for an admitted envelope this client may not append.
    """

    @property
    def client_id(self) -> int:
        """The id its idempotency keys are recorded under."""
        ...

    def authorize(self, admitted: Admitted) -> None:
        """Refuse (PermissionDeniedError) an envelope this client may not append."""
        ...


class Appender:
    """Admits, appends and proves requests; one per sequencer (one per process)."""

    def __init__(
        self,
        store: LogStore,
        sequencer: Sequencer,
        proofs: ProofReader,
        *,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        """Append through `sequencer`, started on `store`; prove receipts with `proofs`, which reads `store`.

        `on_commit(count)` runs after every request whose `count` entries this appender
        committed (not after replays), before its receipts are built.
        """
        self.store = store
        self.sequencer = sequencer
        self._proofs = proofs
        self._on_commit = on_commit

    async def admit(self, envelope: Envelope) -> Admitted:
        """Admit an envelope against the current registry: signature, key role, statement.

        A SignatureError first catches the registry up from the stored log (another process
        may have registered the key); it is raised only when the caught-up registry refuses too.
        A key expired by now is refused here already (the sequencer judges again when it stamps).
        """
        try:
            return admit(envelope, self.sequencer.registry, AS_OF_NOW, at=datetime.now(UTC))
        except SignatureError:
            before = self.sequencer.registry
            keyids = [s.keyid for s in envelope.signatures]
            if await current_registry(self.store, self.sequencer, keyids) is before:
                raise
        return admit(envelope, self.sequencer.registry, AS_OF_NOW, at=datetime.now(UTC))

    async def append(
        self,
        envelopes: Sequence[Envelope],
        client: Client | None = None,
        idempotency_key: str | None = None,
        *,
        expected_chain: tuple[int, str] | None = None,
    ) -> tuple[list[Receipt], bool]:
        """Admit and append envelopes all or nothing; return their receipts and whether they replay.

        A replay is a retry with a recorded idempotency key, or a request whose signed
        statements are all recorded already: either way the receipts are the original
        entries'. Each envelope is admitted, then authorized for `client`, before the next
        one is looked at. Preconditions: `envelopes` is not empty; an `idempotency_key` comes
        with a `client`; `expected_chain` (one envelope only) makes the append conditional
        on the release chain's (count, head leaf hash): StaleEvaluationError when it moved on.
        """
        idempotency = None
        if idempotency_key is not None:
            assert client is not None  # noqa: S101 - a key belongs to a client (precondition)
            idempotency = self._idempotency(envelopes, client.client_id, idempotency_key)
            replay = await self._replay(idempotency)
            if replay is not None:
                return replay, True
        admitted: list[Admitted] = []
        for envelope in envelopes:
            item = await self.admit(envelope)
            if client is not None:
                client.authorize(item)
            admitted.append(item)
        if expected_chain is not None:
            admitted = [replace(item, expected_chain=expected_chain) for item in admitted]
        appended = await self.sequencer.append(PendingRequest(admitted, idempotency))
        if appended.replayed:
            assert idempotency is not None  # noqa: S101 - only keyed requests replay
            self._check_same_body(appended.body_hash, idempotency)
            return await self._receipts(appended), True
        if appended.statement_replay is not None:
            return await self._receipts(appended), True
        if self._on_commit is not None:
            self._on_commit(len(admitted))
        return await self._receipts(appended), False

    @staticmethod
    def _idempotency(envelopes: Sequence[Envelope], client_id: int, key: str) -> Idempotency:
        if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
            raise InputError(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters")
        body = hashlib.sha256(_canonical.encode(list(envelopes))).digest()
        return Idempotency(client_id, key, body)

    @staticmethod
    def _check_same_body(recorded: bytes, idempotency: Idempotency) -> None:
        if recorded != idempotency.body_hash:
            raise ConflictError(f"Idempotency-Key {idempotency.key!r} was used before with another body")

    async def _replay(self, idempotency: Idempotency) -> list[Receipt] | None:
        """The receipts of the request recorded under this key, or None; ConflictError for another body."""
        rows = await self.store.find_idempotency([(idempotency.token_id, idempotency.key)])
        if not rows:
            return None
        row = rows[0]
        self._check_same_body(row.body_hash, idempotency)
        return await self._receipts(Appended(row.first_index, row.count, row.checkpoint_size, ""))

    async def _receipts(self, appended: Appended) -> list[Receipt]:
        return await build_receipts(self.store, self._proofs, appended)


async def append_direct(dsn: str, ledger_key: SignerKey, envelopes: Sequence[Envelope]) -> list[Receipt]:
    """Append envelopes all or nothing to the ledger at `dsn`, without the service; return their receipts.

    For `evledger key register --dsn` and friends: an Appender and a sequencer of this
    process's own, so the log cannot tell these entries from the service's. Preconditions:
    the ledger is initialised and `ledger_key` is its key (the checkpoint is signed with it).
    """
    store = await PostgresStore.connect(dsn, min_size=1, max_size=2)
    try:
        registry = await load_registry(store, ledger_key.verifier())
        sequencer = Sequencer(store, ledger_key, registry, max_delay=0)
        sequencer.start()
        try:
            receipts, _ = await Appender(store, sequencer, ProofReader(store)).append(envelopes)
        finally:
            await sequencer.stop()
        return receipts
    finally:
        await store.close()
