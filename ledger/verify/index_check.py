"""Recomputing the completeness index beside a replay, and comparing it with each checkpoint's line. Pure.

docs/completeness-index.md, "What a verifier learns": the monitor, `evledger audit` and
`evledger verify-log` rebuild the map from every chain to its head from the entries
themselves and compare its root with the `evledger-index <root> <first chained index>`
line of the checkpoints they check. `IndexCheck` follows a `LogReplayer`'s chains: it is
told each replayed entry (`note`), remembers which chains the entry moved, and at a
checkpoint (`compare`) replans only the buckets of those chains in an `IndexTree`, so a
comparison costs what changed since the last one, not the whole map. A checkpoint signed
before the ledger was upgraded to the index carries no line: there is nothing to compare.

A root alone does not say which key it disagrees on, so a mismatch names the suspects:
the chains whose heads changed since the last checkpoint that matched, in key order,
each with its recomputed head. A caller that can read the server's own map at that
checkpoint (`audit`, from the database) then names the first key on which the two
disagree (`first_disagreement`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ledger.core.entry import Entry
from ledger.core.sparse_merkle import (
    KEY_EVENTS_KEY,
    STORED_BUCKET_BITS,
    Head,
    IndexTree,
    artifact_key,
    release_key,
    verify_index_proof,
)
from ledger.errors import EncodingError, LedgerError, VerificationError
from ledger.rules.chains import INDEX_EXTENSION, Chains, index_line_of

BUCKET_BITS = STORED_BUCKET_BITS  # as the sequencer's tree
SUSPECTS_NAMED = 10  # a mismatch names at most this many changed chains, then says how many more


# A `bad-index` alert asks the server to prove at most this many of the chains that changed.
PROOFS_ASKED = 32
ServedProof = Callable[[dict[str, str]], tuple[int, bytes]]
"""Ask a server for an index proof (`GET /v1/index/proof` with these query parameters): its size and bytes."""


def _proof_query(kind: str, chain: str, chains: Chains) -> dict[str, str]:
    """The query naming a chain: `artifact=`, or `product=` with `version=` (a product may hold a `/`)."""
    if kind == "artifact":
        return {"artifact": chain}
    for product, version in chains.releases:
        if f"{product}/{version}" == chain:
            return {"product": product, "version": version}
    return {"release": chain}


def _head_text(head: Head | None) -> str:
    if head is None:
        return "no head (the chain is absent)"
    return f"{head.count} entries, newest {head.last_index}, leaf {head.last_leaf.hex()[:16]}…"


def _describe(name: str, head: Head) -> str:
    entries = "1 entry" if head.count == 1 else f"{head.count} entries"
    return f"{name} ({entries}, newest {head.last_index})"


@dataclass(slots=True)
class IndexCheck:
    """The completeness index of the entries a replay went through, checked at each checkpoint.

    `chains` is the replayer's (`LogReplayer.chains`), read at each comparison. `compared`
    counts the checkpoints whose line matched; `last_match` is the size of the newest one.
    `chained_from_source` says where the replay's first chained index came from, for a
    checkpoint that states another (for example "the checkpoint at size 9").
    Precondition: `note` is called with every entry the replayer accepted, in log order.
    """

    chains: Chains
    bucket_bits: int = BUCKET_BITS
    chained_from_source: str = ""
    compared: int = 0
    last_match: int | None = None
    mismatched_at: int | None = None  # the checkpoint whose root `compare` found wrong, if any
    suspects: list[tuple[bytes, str, Head]] = field(init=False, default_factory=list)  # its changed chains
    _committed: bytes = field(init=False, default=b"")  # and the root it commits to
    _tree: IndexTree = field(init=False)
    _buckets: dict[int, dict[bytes, Head]] = field(init=False, default_factory=dict)
    _releases: set[tuple[str, str]] = field(init=False, default_factory=set)
    _artifacts: set[str] = field(init=False, default_factory=set)
    _keys: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        """An empty tree: no chain yet."""
        self._tree = IndexTree(self.bucket_bits)

    def note(self, entry: Entry) -> None:
        """Remember the chains a replayed entry joined (its release, key-event and artifact links)."""
        if entry.release is not None:
            self._releases.add((entry.release.product, entry.release.version))
        if entry.keys is not None:
            self._keys = True
        for link in entry.artifacts or ():
            self._artifacts.add(link.digest)

    def _changed(self) -> list[tuple[bytes, str, Head]]:
        """(index key, chain name, head now) of every chain moved since the last comparison, in key order.

        The heads come from `Chains.index()` of a Chains holding only those chains: the key and
        head rules stay `ledger.rules.chains`'s.
        """
        chains = self.chains
        moved = Chains(
            {release: chains.releases[release] for release in self._releases},
            chains.keys if self._keys else None,
            {digest: chains.artifacts[digest] for digest in self._artifacts},
        )
        names = {release_key(p, v): f"release {p}/{v}" for p, v in self._releases}
        names.update((artifact_key(digest), f"artifact {digest}") for digest in self._artifacts)
        if self._keys:
            names[KEY_EVENTS_KEY] = "the key events"
        return sorted((key, names[key], head) for key, head in moved.index().items())

    def compare(self, size: int, extensions: tuple[str, ...]) -> bool:
        """Compare the `evledger-index` line of the checkpoint at `size` with the entries; False without one.

        Precondition: the replay has gone through exactly the first `size` entries. Raises
        VerificationError, naming the checkpoint, when the line does not parse, states another
        first chained index than the replay uses, or commits to another root than the entries
        give (naming the chains changed since the last checkpoint that matched).
        """
        try:
            line = index_line_of(extensions)
        except EncodingError as exc:
            raise VerificationError(f"the checkpoint at size {size}: {exc}") from exc
        if line is None:
            return False
        root, chained_from = line
        if chained_from != self.chains.chained_from:
            stated = self.chains.chained_from
            source = f" ({self.chained_from_source} states it)" if self.chained_from_source else ""
            raise VerificationError(
                f"the checkpoint at size {size} states another first chained index in its "
                f"{INDEX_EXTENSION} line than its entries were replayed with{source}",
                expected=str(chained_from),
                calculated="none stated" if stated is None else str(stated),
                labels=("checkpoint states", "replay uses"),
            )
        changed = self._changed()
        touched: set[int] = set()
        for key, _, head in changed:
            bucket = self._tree.bucket_of(key)
            self._buckets.setdefault(bucket, {})[key] = head
            touched.add(bucket)
        plan = self._tree.plan({bucket: list(self._buckets[bucket].items()) for bucket in touched})
        self._tree.apply(plan)
        self._releases.clear()
        self._artifacts.clear()
        self._keys = False
        if plan.root != root:
            self.mismatched_at, self.suspects, self._committed = size, changed, root
            raise self._mismatch(size, root, plan.root, changed)
        self.compared += 1
        self.last_match = size
        return True

    def first_disagreement(self, held: Mapping[bytes, Head]) -> str:
        """The first key, in key order, on which a store's map and the entries' disagree, named and explained.

        Precondition: `compare` has just raised a root mismatch (the recomputed map is at that
        checkpoint's size, `mismatched_at`), and `held` is every key's head the store held at
        that size. When no key disagrees, the checkpoint commits to a root neither map gives.
        """
        recomputed = {key: head for bucket in self._buckets.values() for key, head in bucket.items()}
        for key in sorted(held.keys() | recomputed.keys()):
            stored, given = held.get(key), recomputed.get(key)
            if stored != given:
                return (
                    f"the first key that disagrees, in key order, is {key.hex()} ({self._name_of(key)}): "
                    f"the database holds {_head_text(stored)}, the entries give {_head_text(given)}"
                )
        return (
            f"the database's stored chain heads at size {self.mismatched_at} agree with the entries on "
            "every key, so the checkpoint commits to a root that neither gives (a stale or forged root)"
        )

    def served_disagreement(self, served: ServedProof) -> str:
        """After a root mismatch: the first changed chain, in key order, that the server proves otherwise.

        For at most PROOFS_ASKED of the `suspects` (the key-event chain has no proof route), the
        server is asked (`served`) for the chain's proof; it must be at the mismatched
        checkpoint's size and verify against the root that checkpoint commits to. The first
        chain whose proven head is not the recomputed one is named, with both heads; so is the
        first the server cannot prove. When every one asked proves its recomputed head, the
        disagreement lies in a chain the entries did not move, which proofs by name cannot find.
        """
        asked = 0
        for key, name, given in self.suspects:
            kind, _, chain = name.partition(" ")
            if kind not in {"release", "artifact"}:
                continue
            if asked == PROOFS_ASKED:
                break
            asked += 1
            try:
                size, proof = served(_proof_query(kind, chain, self.chains))
                if size != self.mismatched_at:
                    return (
                        f"the server now proves at size {size}, not {self.mismatched_at}, so no chain "
                        "could be proven at the checkpoint that failed"
                    )
                proven = verify_index_proof(self._committed, key, proof)
            except LedgerError as exc:
                return f"the server could not prove the head of {name} against the checkpoint's root: {exc}"
            if proven != given:
                return (
                    f"the first changed chain, in key order, whose head the server proves otherwise is "
                    f"{name}: the server proves {_head_text(proven)}, the entries give {_head_text(given)}"
                )
        return (
            f"the server proves the recomputed head of each of the {asked} changed chains asked, so "
            "the disagreement lies in a chain the entries did not move"
        )

    def _name_of(self, key: bytes) -> str:
        """The chain a key indexes, among those the replay knows; else that no entry names it."""
        chains = self.chains
        if key == KEY_EVENTS_KEY:
            return "the key events"
        for product, version in chains.releases:
            if release_key(product, version) == key:
                return f"release {product}/{version}"
        for digest in chains.artifacts:
            if artifact_key(digest) == key:
                return f"artifact {digest}"
        return "a chain no entry names"

    def root(self) -> bytes:
        """The index root of the chains as of the last comparison."""
        return self._tree.root()

    def _mismatch(
        self, size: int, committed: bytes, recomputed: bytes, changed: list[tuple[bytes, str, Head]]
    ) -> VerificationError:
        since = (
            f"the last checkpoint that matched (size {self.last_match})"
            if self.last_match is not None
            else "the first entry (no earlier checkpoint's index was compared)"
        )
        if changed:
            named = [_describe(name, head) for _, name, head in changed[:SUSPECTS_NAMED]]
            more = len(changed) - len(named)
            suspects = ", ".join(named) + (f" and {more} more" if more else "")
            chains = "1 chain" if len(changed) == 1 else f"{len(changed)} chains"
            detail = f"{chains} changed since {since}; in key order, with recomputed heads: {suspects}"
        else:
            detail = f"no chain changed since {since}, so its root should be that checkpoint's"
        return VerificationError(
            f"the index root of the checkpoint at size {size} is not the one its entries give "
            f"(a stale or wrong completeness index); {detail}",
            expected=committed.hex(),
            calculated=recomputed.hex(),
            labels=("checkpoint's index root", "recomputed index root"),
        )


def stated_first_chained_index(extensions: tuple[str, ...]) -> int | None:
    """The first chained index a checkpoint's `evledger-index` line states, to replay its log with.

    UNSTATED (None) for a checkpoint without the line (signed before the ledger's upgrade).
    VerificationError for a line that does not parse: a checkpoint naming an index must name it exactly.
    """
    try:
        line = index_line_of(extensions)
    except EncodingError as exc:
        raise VerificationError(f"the checkpoint's {INDEX_EXTENSION} line: {exc}") from exc
    return None if line is None else line[1]


def chained_from_note(chained_from: int, size: int) -> str:
    """The note added to a chain failure when the replay took its first chained index from a checkpoint."""
    return (
        f"artifact links are checked from the first chained index {chained_from} on, "
        f"as the checkpoint at size {size} states"
    )
