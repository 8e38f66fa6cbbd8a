"""An artifact's history, proven complete at a checkpoint (docs/completeness-index.md, issue #13). Pure.

The completeness index proves the head of the artifact's chain (how many entries name
the digest, and the newest one's index and leaf hash) against the index root a signed
checkpoint commits to. From that head the chain is walked back: each entry's RFC 9162
leaf hash must be the one its successor's back-link (or the head) names, it must carry an
artifact link for the digest with the expected place `seq`, and its link names the entry
before, down to `seq` 0. Every member is authenticated by this hash chain from the head,
so no inclusion proofs are needed, and the server can neither drop, insert, substitute
nor cut off a member (docs/completeness-index.md, "What a verifier learns").

The entries come from a callable `entry_at(index) -> bytes` (the CLI fetches them over
HTTP); a `NotFoundError` from it is a withheld entry, a failed verification. The
messages a reader sees about the result are made here, in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ledger.core.checkpoint import Checkpoint, open_checkpoint
from ledger.core.entry import ArtifactLink, Entry, parse_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import VerifierKey
from ledger.core.sparse_merkle import Head, artifact_key, verify_index_proof
from ledger.errors import EncodingError, NotFoundError, TooLargeError, VerificationError
from ledger.rules.chains import index_line_of

MAX_ARTIFACT_ENTRIES = 10_000  # a longer chain is refused before any entry is fetched
EntrySource = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class IndexCheckpoint:
    """A checkpoint the ledger key signed, with the index root and first chained index its line names."""

    checkpoint: Checkpoint
    root: bytes
    chained_from: int  # S0: the first log index whose entries carry artifact back-links

    @property
    def tree_size(self) -> int:
        """The log size the checkpoint commits to."""
        return self.checkpoint.size


@dataclass(frozen=True, slots=True)
class ArtifactMember:
    """One verified entry about the artifact: its index, leaf hash, exact bytes and parsed form."""

    index: int
    leaf_hash: bytes
    data: bytes
    entry: Entry
    link: ArtifactLink  # the entry's back-link for the digest (its `seq` is its place in the chain)


@dataclass(frozen=True, slots=True)
class ArtifactHistory:
    """Every entry naming a digest at a checkpoint, in log order, proven complete (or proven absent)."""

    digest: str
    at: IndexCheckpoint
    head: Head | None  # None: no entry names the digest at the checkpoint
    members: tuple[ArtifactMember, ...]

    @property
    def count(self) -> int:
        """How many entries name the digest at the checkpoint."""
        return len(self.members)

    def statement(self) -> str:
        """What was proven, in one sentence: the wording every reader of the result is shown."""
        size = self.at.tree_size
        if self.head is None:
            text = f"no entry names {self.digest} at checkpoint {size} (proven absent)"
        else:
            text = (
                f"complete at checkpoint {size}: {self.count} of {self.head.count} entries about "
                f"{self.digest} (the completeness index names entry {self.head.last_index} as the newest)"
            )
        if self.at.chained_from > 0:
            text += f"; entries before index {self.at.chained_from} are not covered (not chained)"
        return text


def open_index_checkpoint(
    note: str | bytes, key: VerifierKey, tree_size: int | None = None, origin: str | None = None
) -> IndexCheckpoint:
    """Open a checkpoint with the ledger key and read its `evledger-index` line.

    VerificationError (SignatureError) when the key did not sign it, when it names another
    `origin` (if given), when `tree_size` (what the response claims) differs from the size
    it signs, or when it names no index (or a malformed one): a signed checkpoint without a
    usable index line proves nothing here.
    """
    checkpoint = open_checkpoint(note, key, origin)
    if tree_size is not None and tree_size != checkpoint.size:
        raise VerificationError(
            "the response's tree size is not the size its checkpoint signs",
            expected=str(checkpoint.size),
            calculated=str(tree_size),
            labels=("checkpoint signs", "response says"),
        )
    try:
        line = index_line_of(checkpoint.extensions)
    except EncodingError as exc:
        raise VerificationError(f"checkpoint {checkpoint.size}: {exc}") from exc
    if line is None:
        raise VerificationError(
            f"checkpoint {checkpoint.size} has no evledger-index line: it commits to no completeness index"
        )
    root, chained_from = line
    return IndexCheckpoint(checkpoint, root, chained_from)


def verify_artifact_history(
    at: IndexCheckpoint,
    digest: str,
    proof: bytes,
    entry_at: EntrySource,
    *,
    limit: int = MAX_ARTIFACT_ENTRIES,
) -> ArtifactHistory:
    """Every entry naming `digest` at checkpoint `at`, in log order, proven complete.

    Precondition: `digest` is `sha256:<64 lowercase hex>` (as stored) and `at` came from
    `open_index_checkpoint`. Verifies `proof` for the digest's index key against the
    checkpoint's index root (EncodingError for a proof that does not decode,
    RootMismatchError for one against another root), then walks the chain from its head
    (see the module docstring). VerificationError naming the entry for any member that is
    withheld, altered, another entry, out of place or missing its link; TooLargeError
    when the chain holds more than `limit` entries (nothing is fetched then).
    """
    head = verify_index_proof(at.root, artifact_key(digest), proof)
    if head is None:
        return ArtifactHistory(digest, at, None, ())
    if head.count > limit:
        raise TooLargeError(
            f"{head.count} entries name {digest} at checkpoint {at.tree_size}; "
            f"this command lists at most {limit}"
        )
    if head.last_index >= at.tree_size:
        raise VerificationError(
            f"the completeness index names entry {head.last_index} as the newest about {digest}, "
            f"but checkpoint {at.tree_size} holds entries 0 to {at.tree_size - 1}"
        )
    members: list[ArtifactMember] = []
    promise = _Promise(
        head.last_index,
        head.last_leaf,
        head.count - 1,
        f"the completeness index's head at checkpoint {at.tree_size}",
    )
    while True:
        member = _member(entry_at, digest, promise)
        members.append(member)
        prev = member.link.prev
        if prev is None:  # seq 0 (parse_entry ties a missing prev to seq 0)
            break
        promise = _Promise(
            prev.index,
            bytes.fromhex(prev.leaf_hash),
            promise.seq - 1,
            f"the back-link of entry {member.index}",
        )
    members.reverse()
    return ArtifactHistory(digest, at, head, tuple(members))


@dataclass(frozen=True, slots=True)
class _Promise:
    """What a link (the head, or a back-link) says of the member it names."""

    index: int
    leaf: bytes
    seq: int
    named_by: str


def _member(entry_at: EntrySource, digest: str, promise: _Promise) -> ArtifactMember:
    """Fetch the entry `promise` names and check it is the chain's member that the link promises."""
    index, expected_leaf, seq, named_by = promise.index, promise.leaf, promise.seq, promise.named_by
    where = f"entry {index} (member {seq} of the chain of {digest}, named by {named_by})"
    try:
        data = entry_at(index)
    except NotFoundError as exc:
        raise VerificationError(f"{where} was withheld: {exc}") from exc
    got = leaf_hash(data)
    if got != expected_leaf:
        raise VerificationError(
            f"{where}: the entry given has another leaf hash (altered, or another entry)",
            expected=expected_leaf.hex(),
            calculated=got.hex(),
            labels=("link names leaf", "entry given hashes to"),
        )
    try:
        entry = parse_entry(data)
    except EncodingError as exc:  # the ledger chained bytes that are not an entry
        raise VerificationError(f"{where} is not a valid entry: {exc}") from exc
    if entry.index != index:
        raise VerificationError(
            f"{where} names another index", expected=str(index), calculated=str(entry.index)
        )
    link = next((a for a in entry.artifacts or () if a.digest == digest), None)
    if link is None:
        raise VerificationError(f"{where} has no artifact link for {digest}")
    if link.seq != seq:
        raise VerificationError(
            f"{where} is at another place in the chain",
            expected=str(seq),
            calculated=str(link.seq),
            labels=("expected seq", "entry's seq"),
        )
    return ArtifactMember(index, got, data, entry, link)
