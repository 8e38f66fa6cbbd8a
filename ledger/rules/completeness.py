"""What a verified dossier proves about a release being whole, in the words every output uses. Pure.

A release's events form a back-linked chain (ledger.rules.chains): a dossier cannot
leave out an event from the middle of its release without breaking a link. It
can, however, stop early. Under an open (unsealed) release nothing in the
dossier shows that no later event exists: the chain's newest event links back,
never forward. So a verifier proves completeness only up to the last event the
dossier shows, and must say so. A seal closes the chain: it commits to the
count and the head of the chain before it, and nothing may join the release
after it; a dossier whose chain ends in a proven seal is complete.

`Completeness.statement` is the one wording of this, used by `evledger verify`
(text and JSON) and by the printed release record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LastEvent:
    """The newest release event a dossier shows: its log index, its place (seq) in the chain, its time."""

    index: int
    seq: int
    time: str


@dataclass(frozen=True, slots=True)
class Completeness:
    """How far a verified dossier proves its release complete.

    `sealed_at` is the index of the seal that ends the chain, once proven (the
    seal is the chain's head, its count and head match the chain before it);
    None for an open release. `last` is the newest chained event shown (the
    seal itself when sealed); None when the dossier shows no release event.
    `tree_size` is the size of the checkpoint the dossier is proven against. `indexed` is
    True when the completeness index committed by that checkpoint proved the chain's head
    (docs/completeness-index.md) and the dossier holds the whole chain down from it.
    """

    sealed_at: int | None
    last: LastEvent | None
    chain_length: int
    tree_size: int
    indexed: bool = False

    @property
    def complete(self) -> bool:
        """Whether the dossier proves that no event of the release is missing: a proven seal or index head."""
        return self.sealed_at is not None or self.indexed

    def headline(self) -> str:
        """One short phrase: `sealed at entry N: complete`, complete at a checkpoint, or open."""
        if self.sealed_at is not None:
            return f"sealed at entry {self.sealed_at}: complete"
        if self.indexed:
            n = self.chain_length
            return f"complete at checkpoint {self.tree_size}: {n} of {n} events (not sealed)"
        return "OPEN (not sealed): completeness proven only up to the last event shown"

    def statement(self) -> str:
        """The full sentence people read: what is proven, up to where, and what is not."""
        if self.sealed_at is not None:
            return (
                f"sealed at entry {self.sealed_at}: complete. The seal commits to the "
                f"{self.chain_length - 1} release events before it, "
                "and no event can join the release after it."
            )
        checkpoint = f"the checkpoint of {self.tree_size:,} entries"
        if self.indexed:
            n = self.chain_length
            newest = "" if self.last is None else f", entry {self.last.index} the newest"
            return (
                f"complete at checkpoint {self.tree_size}: {n} of {n} events. The completeness index "
                f"committed by {checkpoint} counts {n} events of the release{newest}, and the dossier "
                "holds every one of them. The release is not sealed: events recorded after that "
                "checkpoint may join it."
            )
        if self.last is None:
            return (
                "OPEN (not sealed): the dossier shows no event of the release's chain, so nothing about its "
                f"completeness is proven. Events of this release under {checkpoint} may exist and are not "
                "proven absent."
            )
        last = self.last
        return (
            "OPEN (not sealed): completeness is proven only up to the last event shown, "
            f"entry {last.index} (event {last.seq} of the release, counted from 0, recorded {last.time}). "
            f"Later events of this release under {checkpoint} may exist and are not proven absent."
        )

    def as_json(self) -> dict[str, Any]:
        """The same facts for `--json` (`proven_through` is the last event shown, or null)."""
        last = self.last
        through = None if last is None else {"index": last.index, "seq": last.seq, "time": last.time}
        return {
            "complete": self.complete,
            "sealed_at": self.sealed_at,
            "indexed": self.indexed,
            "proven_through": through,
            "chain_length": self.chain_length,
            "tree_size": self.tree_size,
            "statement": self.statement(),
        }
