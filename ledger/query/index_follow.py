"""The completeness index as this process knows it, kept current with the stored log.

See docs/completeness-index.md.

The stored chain heads (`index_heads`, one row per chain) are the system of record;
the tree above them lives in memory (`ledger.core.sparse_merkle.IndexTree`), built
at start-up from every head and brought forward, bucket by bucket, from the heads
that changed since the size it reflects. The sequencer plans each batch's index
change on it and applies the plan once the batch committed; the proof route brings
it up to the newest checkpoint and proves a key there.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from functools import lru_cache

from ledger.core.checkpoint import parse_checkpoint_text
from ledger.core.note import parse_note
from ledger.core.sparse_merkle import Head, IndexPlan, IndexProof, IndexTree, artifact_key, release_key
from ledger.errors import ConflictError, EncodingError, InputError, LogIntegrityError, NotFoundError
from ledger.query.timeline import parse_digest
from ledger.records.statement import MAX_NAME
from ledger.rules.chains import index_line_of
from ledger.storage.protocol import BucketContents, CheckpointRow, IndexDelta, IndexView, LogStore

# A proof is made at the size the tree reflects; a writer in another process may move the
# log on between the read and the proof, so the read is tried again, at most this often.
MAX_PROOF_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class ChainName:
    """A chain the index maps, as a client names it: its kind, its name and its index key."""

    chain: str  # "release" or "artifact"
    name: str  # "<product>/<version>" or "sha256:<hex>"
    key: bytes


def chain_named(
    release: str | None, artifact: str | None, product: str | None = None, version: str | None = None
) -> ChainName:
    """The chain a proof request names; exactly one way of naming it.

    `release=<product>/<version>`, `product=` with `version=`, or `artifact=sha256:<hex>`.
    `release` splits at its first `/`: a product whose name holds a `/` is named with `product`
    and `version` instead. InputError (400) for none or several, an empty or over-long product or
    version, or a malformed digest.
    """
    named = [release is not None, artifact is not None, product is not None or version is not None]
    if sum(named) != 1:
        raise InputError(
            "name one chain: release=<product>/<version>, product= and version=, or artifact=sha256:<hex>"
        )
    if artifact is not None:
        digest = parse_digest(artifact)
        return ChainName("artifact", digest, artifact_key(digest))
    if release is not None:
        product, slash, version = release.partition("/")
        if not slash:
            raise InputError(f"release is <product>/<version>, got {release[:80]!r}")
    if product is None or version is None:
        raise InputError("product= and version= go together")
    if not 0 < len(product) <= MAX_NAME or not 0 < len(version) <= MAX_NAME:
        raise InputError(f"a product and a version are each 1 to {MAX_NAME} characters")
    return ChainName("release", f"{product}/{version}", release_key(product, version))


@dataclass(frozen=True, slots=True)
class ProvenHead:
    """A key's proof against one stored checkpoint, whose `evledger-index` line commits to `root`."""

    checkpoint: CheckpointRow
    root: bytes
    proof: IndexProof


@lru_cache(maxsize=64)  # proofs ask about the newest checkpoint, again and again
def _line_of_note(note: str) -> tuple[bytes, int] | None:
    return index_line_of(parse_checkpoint_text(parse_note(note).text).extensions)


def committed_index(checkpoint: CheckpointRow) -> tuple[bytes, int] | None:
    """The (index root, first chained index) a stored checkpoint's `evledger-index` line names, if any.

    Precondition: the checkpoint is one the ledger stored (its signature is not checked here).
    """
    return _line_of_note(checkpoint.note)


def _proven(checkpoint: CheckpointRow, root: bytes, proof: IndexProof) -> ProvenHead:
    """The proof, once the checkpoint's own line names the root the tree gave (LogIntegrityError if not)."""
    line = committed_index(checkpoint)
    if line is None or line[0] != root:
        raise LogIntegrityError(
            f"the completeness index held for size {checkpoint.tree_size} is not the one its checkpoint "
            "commits to; proofs are refused until an operator runs `evledger audit`"
        )
    return ProvenHead(checkpoint, root, proof)


class IndexFollower:
    """An IndexTree and the log size it reflects; one per process, shared by its sequencer and routes.

    Every change goes through `bring_to` (another process's batches, read from the heads)
    or `applied` (this process's own batch, after its commit), both synchronous, so the
    tree and `size` always change together.
    """

    def __init__(
        self, bucket_bits: int | None = None, guard: AbstractAsyncContextManager[object] | None = None
    ) -> None:
        """An empty tree at size 0 (a new ledger's, before `start`).

        `guard` is held around every snapshot a proof reads, and by this process's sequencer from
        its commit until the batch is applied (`applied`): so a snapshot never misses a batch
        the tree already holds (an asyncio.Lock in the service; none where nothing appends).
        """
        self.tree = IndexTree() if bucket_bits is None else IndexTree(bucket_bits)
        self.size = 0
        self.guard: AbstractAsyncContextManager[object] = guard or nullcontext()

    async def start(self, store: LogStore) -> None:
        """Build the tree from every stored head (start-up): O(heads) hashing, once."""
        size, changed = await store.index_changes(-1)
        self.bring_to(size, changed)

    def bring_to(self, size: int, changed: BucketContents) -> None:
        """Take on the stored state at `size`, given the whole content of each bucket changed since.

        Precondition: `changed` was read in one snapshot with `size` (the log's size there).
        A size at or below the tree's own is ignored: the tree never goes back.
        """
        if size <= self.size:
            return
        if changed:
            self.tree.apply(self.tree.plan(changed))
        self.size = size

    def take_deltas(self, deltas: Sequence[IndexDelta], size: int) -> bool:
        """Take on other processes' batches up to `size` from their stored deltas, if they run unbroken.

        Precondition: `deltas` were read under the head lock at `size`, oldest first. True when
        the tree is now at `size`; False when they do not lead from the tree's size to `size`
        one after another (some fell out of the window) or one is malformed: the tree is then
        still consistent at `self.size`, left as far as the deltas before the bad one took it.
        The caller compares the root with the checkpoint's (a delta is derived data).
        """
        chain = [d for d in deltas if d.to_size > self.size]
        ends = [self.size, *(end for d in chain for end in (d.from_size, d.to_size)), size]
        if not chain or any(a != b for a, b in zip(ends[::2], ends[1::2], strict=True)):
            return False  # each delta must start where the one before ended, the first at self.size
        for delta in chain:
            try:
                self.tree.apply_delta(delta.data)
            except EncodingError:
                return False
            self.size = delta.to_size
        return True

    def rebuild(self, size: int, every_bucket: BucketContents) -> None:
        """Start again from every stored head, read in one snapshot at `size` (a tree found wrong)."""
        self.tree = IndexTree(self.tree.bucket_bits)
        self.size = 0
        self.bring_to(size, every_bucket)

    def applied(self, plan: IndexPlan, size: int) -> None:
        """Take on this process's own batch, committed at `size`, whose index change is `plan`.

        Precondition: `plan` was made on the tree at the size the batch started from. A proof
        request may have read the committed batch from the store first (`bring_to`); the tree
        then holds it already, and perhaps later batches, which the plan must not undo.
        """
        if size <= self.size:
            return
        self.tree.apply(plan)
        self.size = size

    async def prove(self, store: LogStore, key: bytes, at: int | None = None) -> ProvenHead:
        """The proof of `key` (its head, or its absence) at the newest stored checkpoint, or at size `at`.

        Reads the newest checkpoint, the buckets changed since the tree's size and the key's
        own bucket in one snapshot, and brings the tree there. At an older checkpoint `at`, the
        index there is this one with every chain head that moved since put back (read from the
        chains' members below `at`), on a copy of the tree. NotFoundError when there is no
        checkpoint (at `at`); LogIntegrityError when the tree's root is not the one the checkpoint
        commits to, or when the log kept moving past every snapshot read.
        """
        bucket = self.tree.bucket_of(key)
        for _ in range(MAX_PROOF_ATTEMPTS):
            async with self.guard:
                view = await store.index_view(self.size, bucket, at)
            if view.checkpoint is None:
                raise NotFoundError("the log has no checkpoint yet: there is no index to prove against")
            self.bring_to(view.checkpoint.tree_size, view.changed)
            if self.size != view.checkpoint.tree_size:
                continue  # another request brought the tree past this snapshot: read again
            try:
                if at is None or view.checkpoint.tree_size <= at:  # `at` is the newest
                    return _proven(view.checkpoint, self.tree.root(), self.tree.prove(key, view.bucket))
                if view.past is None:
                    raise NotFoundError(f"no checkpoint was issued at size {at}")
                return self._proven_past(view, view.past, key, bucket)
            except ConflictError:
                continue  # the bucket read is not the one the tree holds: read again
        raise LogIntegrityError(
            f"the index could not be read at one checkpoint in {MAX_PROOF_ATTEMPTS} attempts "
            "(the log moved on)"
        )

    def _proven_past(self, view: IndexView, past: CheckpointRow, key: bytes, bucket: int) -> ProvenHead:
        """The proof at the older checkpoint `past`: the heads moved since put back, on a copy of the tree."""
        then: dict[int, dict[bytes, Head]] = {}
        for moved, head in view.rewind.items():
            b = self.tree.bucket_of(moved)
            content = then.setdefault(b, dict(view.contents.get(b, ())))
            if head is None:
                content.pop(moved, None)
            else:
                content[moved] = head
        tree = self.tree.copy()
        tree.apply(tree.plan({b: list(c.items()) for b, c in then.items()}))
        leaves = list(then[bucket].items()) if bucket in then else view.bucket
        return _proven(past, tree.root(), tree.prove(key, leaves))
