"""The back-linked chains inside the log: one per release, one per artifact, one of key events. Pure.

Each release-scoped entry links to the previous entry of its release (index
and leaf hash) and counts its place (`seq`), so a release's events form their
own hash chain; leaving one out of a timeline breaks the chain. A release seal
commits to the count and the head, and nothing may join the release after it.
Key registrations and revocations form one more chain, whose newest index each
checkpoint names, so a verifier can know it holds every key event. Every entry
whose statement names a sha256 subject digest links to the previous entry naming
that digest, so an artifact's history is a chain too (docs/completeness-index.md).
A ledger upgraded to artifact chains has entries without artifact links below its
*first chained index*: `Chains.chained_from`.

The sequencer builds links with these rules and every verifier re-derives them
with the same code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ledger.core.encoding import b64decode_strict, b64encode
from ledger.core.entry import ArtifactLink, ChainLink, Entry, KeyLink, ReleaseLink
from ledger.core.hashing import HASH_SIZE
from ledger.core.sparse_merkle import (
    KEY_EVENTS_KEY,
    artifact_key,
    is_chained_digest,
    release_key,
    stored_bucket,
)
from ledger.core.sparse_merkle import Head as IndexHead
from ledger.errors import ChainError, ConflictError, EncodingError, StaleEvaluationError
from ledger.records.admin import KeyRegistered, KeyRevoked
from ledger.records.predicates import RELEASE_SEAL
from ledger.rules.admission import Admitted
from ledger.rules.events import Decoded
from ledger.storage.protocol import ChainHead, IndexHeadRow

KEY_CHAIN_EXTENSION = "evledger-keys"
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def key_chain_extension(last_key_event: int) -> tuple[str, ...]:
    """The checkpoint extension line naming the newest key event (its index) under this checkpoint.

    With it, a verifier holding the key-event chain down from that index knows it
    has every registration and revocation: none can be left out of a dossier.
    """
    return (f"{KEY_CHAIN_EXTENSION} {last_key_event}",)


def key_chain_head_of(extensions: tuple[str, ...]) -> int | None:
    """The newest key event a checkpoint's extension lines name (`evledger-keys N`), if they name one."""
    for line in extensions:
        name, _, value = line.partition(" ")
        if name == KEY_CHAIN_EXTENSION and (value.isdigit() or value == "-1"):
            return int(value)
    return None


INDEX_EXTENSION = "evledger-index"


def index_extension(root: bytes, chained_from: int) -> str:
    """The checkpoint extension line committing to the completeness index (docs/completeness-index.md).

    `evledger-index <base64 index root> <first chained index>`: the root of the map from every
    chain to its head under this checkpoint, and where artifact chains begin.
    """
    return f"{INDEX_EXTENSION} {b64encode(root)} {chained_from}"


def index_line_of(extensions: tuple[str, ...]) -> tuple[bytes, int] | None:
    """The (index root, first chained index) a checkpoint's `evledger-index` line names; None without one.

    EncodingError for a malformed line: a checkpoint that names an index must name it exactly.
    """
    for line in extensions:
        name, _, value = line.partition(" ")
        if name != INDEX_EXTENSION:
            continue
        root_text, _, since = value.partition(" ")
        root = b64decode_strict(root_text, "index root")
        if len(root) != HASH_SIZE or not _DECIMAL.fullmatch(since):
            raise EncodingError(f"checkpoint line {line[:120]!r} is not `{INDEX_EXTENSION} <root> <index>`")
        return root, int(since)
    return None


def _index_row(  # noqa: PLR0913, PLR0917 - the row's columns
    key: bytes, kind: str, head: ChainHead, product: str | None, version: str | None, digest: str | None
) -> IndexHeadRow:
    head_then = IndexHead(head.seq + 1, head.index, head.leaf_hash)
    return IndexHeadRow(key, stored_bucket(key), kind, product, version, digest, head_then)


def _next(head: ChainHead | None) -> tuple[int, ChainLink | None]:
    if head is None:
        return 0, None
    return head.seq + 1, ChainLink(head.index, head.leaf_hash.hex())


def is_key_event(item: Admitted) -> bool:
    """Whether an admitted envelope registers or revokes a key."""
    return isinstance(item.admin, KeyRegistered | KeyRevoked)


def chained_digests(subjects: Sequence[str]) -> list[str]:
    """The distinct sha256 digests among `subjects` (as stored), sorted: the artifact chains joined."""
    return sorted({digest for digest in subjects if is_chained_digest(digest)})


# `Chains.chained_from` when no checkpoint states the first chained index: artifact chains begin
# at the first entry that carries artifact links (see `Chains.check`).
UNSTATED: None = None


@dataclass(slots=True)
class Chains:
    """The heads of the chains: per (product, version), per artifact digest, and of the key events.

    `chained_from` is the ledger's first chained index (S0, docs/completeness-index.md#checkpoints):
    entries below it carry no artifact links, entries from it on exactly the links these chains
    imply. UNSTATED (None) when no checkpoint says: the first entry carrying artifact links is
    then taken as S0 (a log recorded before the upgrade carries none, one recorded after it
    carries them from S0 on), and `chained_from` is set to its index.
    """

    releases: dict[tuple[str, str], ChainHead] = field(default_factory=dict)
    keys: ChainHead | None = None
    artifacts: dict[str, ChainHead] = field(default_factory=dict)
    chained_from: int | None = 0

    def index(self) -> dict[bytes, IndexHead]:
        """The completeness index these heads make: each chain's index key and head (completeness-index.md).

        Precondition: the heads are those of the whole log up to some size (a replay from
        entry 0), so every chain is in them.
        """
        return {row.key_hash: row.head for row in self.index_rows()}

    def index_rows(self, before: Chains | None = None) -> list[IndexHeadRow]:
        """The stored completeness-index row of every chain here whose head differs from `before`'s.

        A chain's head only moves forward, so a head that differs is one extended since; its
        count is its newest member's seq + 1 (docs/completeness-index.md#heads). Without
        `before`, every chain's row.
        """
        old = before or Chains()
        rows = [
            _index_row(release_key(*release), "release", head, *release, None)
            for release, head in self.releases.items()
            if old.releases.get(release) != head
        ]
        rows += [
            _index_row(artifact_key(digest), "artifact", head, None, None, digest)
            for digest, head in self.artifacts.items()
            if old.artifacts.get(digest) != head
        ]
        if self.keys is not None and self.keys != old.keys:
            rows.append(_index_row(KEY_EVENTS_KEY, "keys", self.keys, None, None, None))
        return rows

    def copy(self) -> Chains:
        """An independent copy (heads are immutable; the dicts are not shared)."""
        return Chains(dict(self.releases), self.keys, dict(self.artifacts), self.chained_from)

    def release_link(self, item: Admitted) -> ReleaseLink | None:
        """The back-link the entry for `item` gets; ConflictError after a seal or for a stale seal."""
        release = item.release
        if release is None:
            return None
        head = self.releases.get(release)
        if head is not None and head.kind == RELEASE_SEAL:
            raise ConflictError(f"release {release[0]} {release[1]} is sealed (entry {head.index})")
        seq, prev = _next(head)
        head_hex = head.leaf_hash.hex() if head is not None else ""
        if item.expected_chain is not None and item.expected_chain != (seq, head_hex):
            raise StaleEvaluationError(
                f"release {release[0]} {release[1]} gained entries while it was evaluated: it has {seq} "
                f"entries ending in {head_hex or '-'}, the evaluation saw {item.expected_chain[0]}"
            )
        if item.seal is not None and item.seal != (seq, head_hex):
            raise ConflictError(
                f"the seal of {release[0]} {release[1]} does not match its chain: the release has "
                f"{seq} entries ending in {head_hex or '-'}; "
                f"the seal says {item.seal[0]} ending in {item.seal[1]}"
            )
        return ReleaseLink(release[0], release[1], seq, prev)

    def key_link(self, item: Admitted) -> KeyLink | None:
        """The key-chain link the entry for `item` gets (None unless it is a key event)."""
        if not is_key_event(item):
            return None
        seq, prev = _next(self.keys)
        return KeyLink(seq, prev)

    def artifact_links(self, item: Admitted) -> list[ArtifactLink] | None:
        """The artifact back-links the entry for `item` gets: one per sha256 subject, sorted (None if none).

        The writer's rule: every new entry is at or past the first chained index.
        """
        digests = chained_digests(item.subjects)
        if not digests:
            return None
        return [ArtifactLink(digest, *_next(self.artifacts.get(digest))) for digest in digests]

    def advance(  # noqa: PLR0913, PLR0917 - an entry's index, leaf hash, each chain's link and its kind
        self,
        index: int,
        leaf_hash: bytes,
        release: ReleaseLink | None,
        keys: KeyLink | None,
        kind: str,
        artifacts: Sequence[ArtifactLink] | None = None,
    ) -> None:
        """Record that entry `index` (with these links) is now the head of its chains."""
        if release is not None:
            self.releases[(release.product, release.version)] = ChainHead(index, leaf_hash, release.seq, kind)
        if keys is not None:
            self.keys = ChainHead(index, leaf_hash, keys.seq, kind)
        for link in artifacts or ():
            self.artifacts[link.digest] = ChainHead(index, leaf_hash, link.seq, kind)

    def _implied_artifact_links(self, entry: Entry, item: Admitted) -> list[ArtifactLink] | None:
        """The artifact links a recorded entry must carry: none below the first chained index."""
        if self.chained_from is UNSTATED and entry.artifacts is not None:
            self.chained_from = entry.index  # the first entry carrying links: artifact chains begin here
        if self.chained_from is UNSTATED or entry.index < self.chained_from:
            return None
        return self.artifact_links(item)

    def check(self, entry: Entry, item: Admitted) -> None:
        """Verify that a recorded entry carries exactly the links these chains imply (ChainError if not).

        Artifact links: none below `chained_from`, exactly `artifact_links(item)` from it on.
        """
        try:
            expected_release = self.release_link(item)
        except ConflictError as exc:
            raise ChainError(f"entry {entry.index}: {exc}") from exc
        links: tuple[tuple[str, object, object], ...] = (
            ("release back-link", expected_release, entry.release),
            ("key-event back-link", self.key_link(item), entry.keys),
            ("list of artifact back-links", self._implied_artifact_links(entry, item), entry.artifacts),
        )
        for what, implied, carried in links:
            if carried != implied:
                raise ChainError(
                    f"entry {entry.index}: {what} is wrong",
                    expected=str(implied),
                    calculated=str(carried),
                    labels=("chain implies", "entry carries"),
                )


@dataclass(frozen=True, slots=True)
class Member:
    """An entry of one chain as a reader holds it: its index and leaf hash, and the link it carries."""

    index: int
    leaf_hash: bytes
    seq: int | None  # None when the entry carries no link of this chain
    prev: ChainLink | None


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where a chain held whole first fails: the member at `position`, and the link it should carry."""

    position: int
    member: Member
    expected: tuple[int, str] | None  # (index, leaf hash hex) of the member before, None at the start
    actual: tuple[int, str] | None  # what the member's link names

    @property
    def out_of_place(self) -> bool:
        """Whether the member counts a place other than its own (one before it is missing or misordered)."""
        return self.member.seq != self.position


def first_break(members: Sequence[Member]) -> ChainBreak | None:
    """The first member, in the given (index) order, that does not follow the one before it; None if none.

    A chain held whole runs from seq 0 with no link, each member counting its own
    place and linking to the member before it by index and leaf hash (the links
    `Chains` gives when the log is written). Precondition: `members` are all the
    entries of one chain the reader holds, in index order.
    """
    previous: Member | None = None
    for position, member in enumerate(members):
        expected = None if previous is None else (previous.index, previous.leaf_hash.hex())
        actual = None if member.prev is None else (member.prev.index, member.prev.leaf_hash)
        if member.seq != position or actual != expected:
            return ChainBreak(position, member, expected, actual)
        previous = member
    return None


def chain_is_complete(chain: Sequence[Decoded], product: str, version: str) -> bool:
    """Whether `chain` is a whole release chain of (product, version): from seq 0, every link holding.

    Precondition: `chain` holds the release-chain entries of (product, version) as
    stored, in any order; a timeline that left one out says so.
    """
    members = []
    for item in chain:
        link = item.link
        if link is None or (link.product, link.version) != (product, version):
            return False
        members.append(Member(item.event.index, item.event.leaf_hash, link.seq, link.prev))
    members.sort(key=lambda member: member.index)
    return bool(members) and first_break(members) is None
