"""The storage interfaces the sequencer, the proof reader, the queries and the service depend on.

Two Protocols, each with one implementation a file (docs/architecture.md):

- `LogStore` (`postgres.PostgresStore`): the log itself. Its head, checkpoints,
  entries by index or leaf hash, hash tiles, API tokens, idempotency keys, and
  the append transaction, which holds the lock on the log head until it ends.
  The sequencer, the proof reader, receipts, the registry catch-up, audits and
  the service's log routes use only this.
- `EvidenceIndex` (`postgres_index.PostgresEvidenceIndex`): the read model over
  the same entries. Release timelines, artifacts, search and the kind lookups a
  release's compliance and dossier need. Read-only; every query is an index scan.

Callers know only these Protocols, so they can be tested with fakes. Every
method is a complete unit of work; the only multi-step unit is the append
transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ledger.core.encoding import format_time
from ledger.core.sparse_merkle import Head as IndexHead

# No log reaches 2^62 entries: an index at or past it (from a URL, say) names nothing, and
# implementations may answer "none" without asking their database (whose integers may overflow).
MAX_INDEX = 1 << 62


@dataclass(frozen=True, slots=True)
class Head:
    """The state a batch extends: tree size, compact range, newest leaf hash and entry time."""

    origin: str
    tree_size: int
    compact_range: tuple[bytes, ...]
    last_leaf_hash: bytes
    last_time: str
    last_key_event: int
    last_admin_entry: int = -1  # the newest key registration, revocation or policy (-1: none yet)


@dataclass(frozen=True, slots=True)
class EntryRow:
    """One entry as stored: exact bytes plus the columns the query API filters on."""

    index: int
    leaf_hash: bytes
    data: bytes
    integrated_at: datetime
    signer_keyid: str
    payload_type: str
    kind: str
    product: str | None
    version: str | None
    subjects: tuple[str, ...]
    release_seq: int | None = None
    statement_hash: bytes = b""  # SHA-256 of PAE(payloadType, payload): what the signatures sign


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The newest entry of a back-linked chain (a release's events, or the key events)."""

    index: int
    leaf_hash: bytes
    seq: int
    kind: str = ""


@dataclass(frozen=True, slots=True)
class TileAppend:
    """Hashes appended to tile (level, index); a tile that does not exist yet starts with them."""

    level: int
    index: int
    hashes: bytes


@dataclass(frozen=True, slots=True)
class TileRow:
    """A stored hash tile: `width` hashes of 32 bytes."""

    level: int
    index: int
    width: int
    hashes: bytes


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """A signed checkpoint as issued."""

    tree_size: int
    root_hash: bytes
    note: str


@dataclass(frozen=True, slots=True)
class IdempotencyRow:
    """What an idempotency key was first used for: the entries it appended, under which checkpoint."""

    token_id: int
    key: str
    body_hash: bytes
    first_index: int
    count: int
    checkpoint_size: int


@dataclass(frozen=True, slots=True)
class TokenRow:
    """An API token's grants and how long they last (the token itself is never stored)."""

    token_id: int
    role: str
    products: tuple[str, ...]
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def refusal(self, now: datetime) -> str | None:
        """Why the token grants nothing at `now` (revoked, or at or past its expiry); None while valid."""
        if self.revoked_at is not None:
            return f"this token was revoked at {format_time(self.revoked_at)}"
        if self.expires_at is not None and self.expires_at <= now:
            return f"this token expired at {format_time(self.expires_at)}"
        return None


@dataclass(frozen=True, slots=True)
class Beyond:
    """The first rows found past a head (None where there is none): what only tampering leaves."""

    entry: int | None = None  # the smallest entry index at or past the head's size
    checkpoint: int | None = None  # the smallest checkpoint size past it
    tile: tuple[int, int, int] | None = None  # (level, index, width) of a hash tile reaching past it


INDEX_KINDS = ("release", "artifact", "keys")  # as the CHECK on index_heads.kind (011_index_heads.sql)


@dataclass(frozen=True, slots=True)
class IndexHeadRow:
    """A chain's head as the completeness index stores it (docs/completeness-index.md#heads).

    `key_hash` is the chain's index key, `bucket` its first 16 bits; `kind` one of INDEX_KINDS,
    with `product` and `version` for a release, `digest` for an artifact, none for the key events.
    """

    key_hash: bytes
    bucket: int
    kind: str
    product: str | None
    version: str | None
    digest: str | None
    head: IndexHead


@dataclass(slots=True)
class BatchWrite:
    """Everything one integrated batch writes, in one transaction.

    `index_heads`: the new head of every chain the batch extended (release, artifact, keys).
    `index_delta`: the completeness index's change as `IndexTree.delta` encodes it, for the
    other processes on the store to take on without re-planning it (None: not shared).
    """

    entries: list[EntryRow]
    tiles: list[TileAppend]
    checkpoint: CheckpointRow
    head: Head
    idempotency: list[IdempotencyRow] = field(default_factory=list)
    index_heads: list[IndexHeadRow] = field(default_factory=list)
    index_delta: bytes | None = None


@dataclass(frozen=True, slots=True)
class IndexDelta:
    """One batch's change of the completeness index, as stored: it took the log from one size to the next."""

    from_size: int
    to_size: int
    data: bytes


BucketContents = dict[int, list[tuple[bytes, IndexHead]]]
"""Whole buckets of the completeness index: bucket number → every (index key, head) stored in it."""


@dataclass(frozen=True, slots=True)
class IndexView:
    """What a proof of the completeness index needs, read in one snapshot (`LogStore.index_view`).

    `checkpoint` is the newest one (None before entry 0); `changed` the whole content of each
    bucket with a head changed since the size asked about; `bucket` the asked bucket's content.
    """

    checkpoint: CheckpointRow | None
    changed: BucketContents
    bucket: list[tuple[bytes, IndexHead]]
    contents: BucketContents = field(default_factory=dict)  # every bucket read, whole
    past: CheckpointRow | None = None  # the earlier checkpoint asked about, if any
    rewind: dict[bytes, IndexHead | None] = field(default_factory=dict)  # heads there that moved since


class AppendTransaction(Protocol):
    """An open transaction holding the row lock on the log head."""

    async def head(self) -> Head:
        """The locked head (read once, at the start of the transaction)."""
        ...

    async def head_checkpoint(self) -> CheckpointRow | None:
        """The stored checkpoint at the locked head's size (read after the lock was taken)."""
        ...

    async def now(self) -> datetime:
        """The database's clock, read once the head was locked: the one source of entry times."""
        ...

    async def entries_of_kinds(self, kinds: Sequence[str], start: int) -> list[EntryRow]:
        """The entries of these kinds at log index >= `start`, in log order (the kind index)."""
        ...

    async def recorded_statements(self, statement_hashes: Sequence[bytes]) -> dict[bytes, int]:
        """The index of the entry recording each of these statement hashes, for those recorded."""
        ...

    async def find_idempotency(self, keys: Sequence[tuple[int, str]]) -> list[IdempotencyRow]:
        """Recorded uses of these (token id, key) pairs."""
        ...

    async def release_heads(self, releases: Sequence[tuple[str, str]]) -> dict[tuple[str, str], ChainHead]:
        """The newest chained entry of each (product, version) that has one."""
        ...

    async def chained_from(self) -> int:
        """The ledger's first chained index: where artifact chains begin (docs/completeness-index.md)."""
        ...

    async def index_buckets(self, buckets: Sequence[int], since: int) -> BucketContents:
        """The whole content of these buckets and of every bucket with a head changed after size `since`."""
        ...

    async def index_deltas(self, since: int) -> list[IndexDelta]:
        """The stored index deltas of the batches that ended after size `since`, oldest first.

        Only recent ones are kept (a window of sizes): a caller finding no unbroken run from
        `since` falls back to `index_buckets`.
        """
        ...

    async def write(self, batch: BatchWrite) -> None:
        """Write the batch; it becomes visible when the transaction commits.

        Raises UnstorableError when the store refuses a value of the batch itself (not for a
        failure of the store), so that the sequencer can find the request that carries it, and
        DuplicateStatementError when an entry's statement hash is already recorded.
        """
        ...


class LogStore(Protocol):
    """Durable storage of one log: head, checkpoints, entries, tiles, tokens, idempotency keys, appends.

    Appends go only through `append_transaction`; every other method reads.
    An index at or past MAX_INDEX names nothing.
    """

    async def index_changes(self, since: int) -> tuple[int, BucketContents]:
        """The log's size, and the whole content of each bucket with a head changed after `since`.

        Read in one snapshot.

        `since` -1 reads every bucket (start-up).
        """
        ...

    async def index_view(self, since: int, bucket: int, at: int | None = None) -> IndexView:
        """The newest checkpoint, the buckets changed after size `since`, and `bucket`; one snapshot.

        With `at`, an earlier checkpoint's size: the heads to put back to see the index there.
        """
        ...

    def append_transaction(self) -> AbstractAsyncContextManager[AppendTransaction]:
        """Open a transaction and lock the head; commit on normal exit, roll back on error."""
        ...

    async def head(self) -> Head | None:
        """The current head without locking it (None before `init`)."""
        ...

    async def latest_checkpoint(self) -> CheckpointRow | None:
        """The newest checkpoint."""
        ...

    async def checkpoint(self, tree_size: int) -> CheckpointRow | None:
        """The checkpoint issued at exactly this size, if one was."""
        ...

    async def entries(self, start: int, limit: int) -> list[EntryRow]:
        """Entries [start, start+limit) that exist, in index order."""
        ...

    async def entry_index_by_leaf_hash(self, leaf_hash: bytes) -> int | None:
        """The index of the entry with this leaf hash."""
        ...

    async def tiles(self, coords: Sequence[tuple[int, int]]) -> list[TileRow]:
        """The stored tiles among these (level, index) pairs, at their current width."""
        ...

    async def entries_of_kinds(self, kinds: Sequence[str], start: int) -> list[EntryRow]:
        """The entries of these kinds at log index >= `start`, in log order (the kind index)."""
        ...

    async def first_checkpoint_covering(self, index: int) -> CheckpointRow | None:
        """The checkpoint of the batch that appended entry `index`: the smallest one above it."""
        ...

    async def token(self, token_hash: bytes) -> TokenRow | None:
        """The grants, expiry and revocation of the token whose SHA-256 is `token_hash`."""
        ...

    async def find_idempotency(self, keys: Sequence[tuple[int, str]]) -> list[IdempotencyRow]:
        """Recorded uses of these (token id, key) pairs."""
        ...

    async def rows_beyond(self, tree_size: int) -> Beyond:
        """What lies past a head of `tree_size`: entries, checkpoints, tiles (for audits; read-only)."""
        ...

    async def checkpoints_from(self, tree_size: int, limit: int) -> list[CheckpointRow]:
        """Up to `limit` stored checkpoints of tree size >= `tree_size`, smallest first.

        Read-only; lets an auditor page through every checkpoint ever issued in
        size order with flat memory. Precondition: `limit` >= 1.
        """
        ...

    async def entries_at(self, indices: Sequence[int]) -> list[EntryRow]:
        """The entries at these indices that exist, index order (one primary-key probe each).

        The log's own read by index, as `entries` for a range: receipts and dossiers use it.
        """
        ...


@dataclass(frozen=True, slots=True)
class ReleaseSummaryRow:
    """A release as `EvidenceIndex.releases` lists it: its chain's first and newest entries (issue #12)."""

    product: str
    version: str
    first_index: int
    first_time: datetime
    last_index: int
    last_time: datetime
    last_seq: int  # the newest entry's release_seq: the chain holds last_seq + 1 entries
    last_kind: str  # the newest entry's kind (a release seal closes the chain)


class EvidenceIndex(Protocol):
    """The read model over the log's entries: release timelines, artifacts, search, kind lookups (issue #4).

    Read-only, and every method is an index scan. It reads the entries of the
    `LogStore` it was built beside (an implementation shares that store's
    connections and lives no longer than it), as committed when each call runs.
    """

    async def release_timeline_entries(self, product: str, version: str) -> list[EntryRow]:
        """A release's timeline entries, in index order: its chain, and generic evidence about what it built.

        Generic evidence: in-toto statements on no release chain whose subjects include
        a digest the chain's build statements name as a subject or (build/v1) list in
        `predicate.artifacts[].digest`. Read-only; empty for an unknown release.
        """
        ...

    async def entries_about_artifact(self, digest: str, start: int, limit: int) -> list[EntryRow]:
        """Up to `limit` entries at index >= `start` about `digest`, in index order.

        About it: entries naming it as a subject, and builds listing it among their artifacts.
        Read-only. Preconditions: `digest` is `sha256:<64 lowercase hex>`; `limit` >= 1.
        """
        ...

    async def search_entries(  # noqa: PLR0913 - each filter is one keyword, all optional
        self,
        *,
        start: int,
        stop: int | None,
        kinds: Sequence[str],
        product: str | None,
        version: str | None,
        signers: Sequence[str],
        limit: int,
    ) -> tuple[list[EntryRow], int | None]:
        """Up to `limit` entries with `start` <= index < `stop` matching every filter given, index order.

        `kinds` are stored kind values (predicate types or admin kinds; empty: any);
        `signers` keyid strings (empty: any);
        `version` needs `product`. The store may stop early to bound its work (a
        combination of filters no single index serves): the second value is then the
        index to continue from, else None. Read-only. Precondition: `limit` >= 1.
        """
        ...

    async def first_index_at_or_after(self, moment: datetime) -> int | None:
        """The smallest index whose integration time is >= `moment` (None if there is none).

        Relies on entry times never going backwards in index order (ledger.append.batch.plan_batch).
        """
        ...

    async def indices_of_kinds(self, kinds: Sequence[str], before: int) -> list[int]:
        """The indices of every entry of these kinds below `before`, in order (the kind index)."""
        ...

    async def latest_entry_of_kind(self, kind: str, before: int) -> EntryRow | None:
        """The newest entry of this kind (e.g. `policy.published`) below index `before`."""
        ...

    async def releases(
        self, *, product: str | None, after: tuple[str, str] | None, count: int
    ) -> list[ReleaseSummaryRow]:
        """Up to `count` releases (those with a chain) after `after`, in (product, version) order.

        Only `product`'s when given. Read-only; one index descent per release listed.
        Precondition: `count` >= 1.
        """
        ...

    async def release_entries_of_kind(self, kind: str, releases: Sequence[tuple[str, str]]) -> list[EntryRow]:
        """The entries of `kind` on the chains of these (product, version) releases, in index order.

        Read-only, an index scan: that kind's entries, or the releases' chains, whichever is
        fewer (a deployment filter asks this for the releases of one page). Unknown releases
        are skipped.
        """
        ...


@dataclass(frozen=True, slots=True)
class Anchors:
    """What anchors one checkpoint outside the operator: witness cosignature lines, RFC 3161 tokens."""

    tree_size: int
    cosignatures: tuple[str, ...]  # signature lines, `— <name> <base64>`, oldest first
    timestamps: tuple[tuple[str, bytes], ...]  # (authority URL, DER token), oldest first


class AnchorStore(Protocol):
    """Cosignatures and time-stamp tokens gathered for stored checkpoints (docs/trust-model.md).

    Rows are only added, never changed. Each belongs to a checkpoint of the `LogStore`
    it was built beside; the caller verifies a cosignature or token before adding it.
    """

    async def add_cosignature(self, tree_size: int, witness: str, line: str) -> None:
        """Keep witness `witness`'s (its keyid string) cosignature line for the checkpoint of `tree_size`.

        A second line by the same witness for the same size is ignored: the first one stands.
        Precondition: a checkpoint of `tree_size` is stored and `line` verified against it.
        """
        ...

    async def add_timestamp(self, tree_size: int, authority: str, token: bytes) -> None:
        """Keep the RFC 3161 token `authority` (its URL) issued for the checkpoint of `tree_size`.

        A second token by the same authority for the same size is ignored.
        Precondition: a checkpoint of `tree_size` is stored and `token` verified against it.
        """
        ...

    async def anchors(self, tree_size: int) -> Anchors:
        """Every cosignature line and token kept for the checkpoint of `tree_size` (empty when none)."""
        ...

    async def latest_cosigned(self, witnesses: Sequence[str], quorum: int) -> int | None:
        """The largest tree size cosigned by at least `quorum` of `witnesses` (keyid strings), or None."""
        ...

    async def latest_timestamped(self) -> int | None:
        """The largest tree size holding an RFC 3161 token, None if none does."""
        ...

    async def witnessing_lag(self, cosigned: int | None) -> float:
        """Seconds since the oldest checkpoint larger than `cosigned` was issued (0.0 when there is none)."""
        ...

    def witnessing_lease(self) -> AbstractAsyncContextManager[bool]:
        """Hold, for the block, the one lease on submitting this log's checkpoints; yields whether it was got.

        Only one holder at a time across every process on the database; the lease ends with
        the block, or when the holder's connection is lost.
        """
        ...


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A stored blob: its SHA-256, its size in bytes, and the products it was uploaded for (sorted)."""

    digest: bytes
    size: int
    products: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """What an upload did: the blob, and whether this upload stored its bytes (False: they were there)."""

    info: BlobInfo
    created: bool


class BlobStore(Protocol):
    """Content-addressed evidence files (issue #14): immutable, never deleted, named by their SHA-256."""

    async def put(
        self, digest: bytes, product: str, chunks: AsyncIterable[bytes], max_size: int
    ) -> StoredBlob:
        """Store the bytes `chunks` yields, which must hash to `digest`, as uploaded for `product`.

        Every byte is read and hashed before anything is kept: InputError when the bytes do not
        hash to `digest`, TooLargeError as soon as they pass `max_size`, and nothing is stored
        then. Idempotent: content already stored is not stored again (`created` False), and
        `product` is added to the products it was uploaded for.
        """
        ...

    async def info(self, digest: bytes) -> BlobInfo | None:
        """The stored blob with this SHA-256, or None."""
        ...

    def read(self, digest: bytes) -> AsyncIterator[bytes]:
        """The stored blob's bytes, in order, in chunks (NotFoundError for a digest not stored)."""
        ...


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A console session: the token it stands for, its CSRF secret, and until when it lasts."""

    token: TokenRow
    csrf: str
    expires_at: datetime
    ended_at: datetime | None


class SessionStore(Protocol):
    """Web console sessions (issue #15), each standing for one API token; the ids are kept as SHA-256."""

    async def start_session(
        self, session_hash: bytes, token_id: int, csrf: str, expires_at: datetime
    ) -> None:
        """Record a new session of token `token_id`, lasting until `expires_at`."""
        ...

    async def session(self, session_hash: bytes) -> SessionRow | None:
        """The session whose id hashes to `session_hash`, with its token's grants; None if unknown."""
        ...

    async def end_session(self, session_hash: bytes) -> None:
        """End the session now (sign-out); nothing when it is unknown or ended already."""
        ...
