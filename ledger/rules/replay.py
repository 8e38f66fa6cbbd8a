"""Replaying a log: the checks every verifier applies to every entry, in log order. Pure.

For each entry: its bytes are canonical (§3.4), it names the next index and
links to its predecessor's leaf hash, its release, key-event and artifact back-links
are exactly what the chains imply (`ledger.rules.chains`), and its envelope carries a valid
signature by a key registered and not revoked before it (§3.5), with admin
records signed by an admin key. Admin records then update the registry. The
sequencer applies the same rules when it appends (`ledger.rules.admission`), so a
log the service wrote is exactly a log this replayer accepts. Memory is flat
in the log's length apart from the key registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ledger.core.dsse import SignatureCheck, check_now
from ledger.core.encoding import format_time, parse_time
from ledger.core.entry import ChainVerifier, Entry
from ledger.errors import LedgerError, SignatureError, VerificationError
from ledger.rules.admission import Admitted, admit, admit_genesis
from ledger.rules.chains import UNSTATED, Chains
from ledger.rules.registry import KeyRegistry

# How far ahead of a verifier's clock an entry may be stamped before it counts as from the future:
# the ledger's own clock and the verifier's both drift a little.
FUTURE_TOLERANCE = timedelta(minutes=5)


def latest_plausible_time(now: datetime | None = None) -> str:
    """The latest entry time a verifier running now accepts (`LogReplayer`'s `not_after`)."""
    return format_time((now or datetime.now(UTC)) + FUTURE_TOLERANCE)


@dataclass(frozen=True, slots=True)
class ReplayedEntry:
    """An entry that passed every check, with its leaf hash and what admission extracted."""

    entry: Entry
    leaf_hash: bytes
    admitted: Admitted


def apply_recorded(
    entry: Entry, leaf: bytes, registry: KeyRegistry, chains: Chains, check: SignatureCheck = check_now
) -> Admitted:
    """Replay one recorded entry: admit it at its own index, check its links, apply what it changes.

    The one rule every reader of the log applies to an entry it holds (the whole-log
    replay, the registry the service follows, a dossier's key events): entry 0 must be
    the ledger key's self-registration, any other entry must pass admission against
    `registry` as it stood before it (`ledger.rules.admission`), carry exactly the
    back-links `chains` implies (artifact links only from `chains.chained_from` on), and
    then its admin record (if any) updates `registry` and the entry becomes the head of
    its chains. Precondition: `entry` parsed from bytes whose leaf hash is `leaf`, and
    `registry` and `chains` hold every entry of the chains it joins that came before it.
    Raises the admission error or ChainError.
    """
    if entry.index == 0:
        admitted = admit_genesis(entry.envelope)
    else:
        admitted = admit(entry.envelope, registry, entry.index, check, at=parse_time(entry.time))
    chains.check(entry, admitted)
    if admitted.admin is not None:
        registry.apply(entry.index, admitted.admin)
    chains.advance(entry.index, leaf, entry.release, entry.keys, admitted.kind, entry.artifacts)
    return admitted


class LogReplayer:
    """Checks entries one by one from index 0 (or from a trusted point with its registry)."""

    def __init__(
        self, check: SignatureCheck = check_now, *, not_after: str = "", chained_from: int | None = UNSTATED
    ) -> None:
        """Start at entry 0 with an empty registry and no chains; `check` verifies signatures.

        `chained_from` is the log's first chained index, as its checkpoint's `evledger-index` line
        states it (docs/completeness-index.md#checkpoints): entries below it carry no artifact links,
        entries from it on exactly the implied ones. UNSTATED (the default, for a checkpoint without
        that line): the first entry carrying artifact links is taken as the first chained index.

        A `check` that defers verification (see `ledger.core.dsse.verify_envelope`) makes
        `check` below provisional: the caller must fail the entry if a deferred check fails.
        Entry 0 (the ledger key's self-registration) is always verified at once.
        `not_after`, when given (`format_time` of the verifier's clock plus a tolerance,
        see `latest_plausible_time`), refuses an entry stamped later: a time from the future.
        """
        self._check = check
        self._not_after = not_after
        self.registry = KeyRegistry()
        self.chain = ChainVerifier()
        self.chains = Chains(chained_from=chained_from)

    @property
    def next_index(self) -> int:
        """The index the next entry must have."""
        return self.chain.next_index

    def check(self, data: bytes) -> ReplayedEntry:
        """Check the next entry's bytes; raise VerificationError (naming the index) if any check fails."""
        index = self.chain.next_index
        try:
            entry, leaf = self.chain.check(data)
            self._check_time(entry)
            admitted = apply_recorded(entry, leaf, self.registry, self.chains, self._check)
        except VerificationError as exc:
            raise exc.restated(f"entry {index}: {exc.args[0]}") from exc
        except LedgerError as exc:
            # An entry the ledger should never have accepted: a verification failure, not bad input.
            raise SignatureError(f"entry {index}: {exc}") from exc
        return ReplayedEntry(entry, leaf, admitted)

    def _check_time(self, entry: Entry) -> None:
        if self._not_after and entry.time > self._not_after:
            raise VerificationError(
                "it is stamped in the future of this verifier's clock: the ledger's clock leapt ahead",
                expected=self._not_after,
                calculated=entry.time,
                labels=("latest plausible time", "entry stamped"),
            )
