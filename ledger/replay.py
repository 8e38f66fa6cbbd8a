"""Replaying a log: the checks every verifier applies to every entry, in log order. Pure.

For each entry: its bytes are canonical (§3.4), it names the next index and
links to its predecessor's leaf hash, its release and key-event back-links are
exactly what the chains imply (`ledger.chains`), and its envelope carries a valid
signature by a key registered and not revoked before it (§3.5), with admin
records signed by an admin key. Admin records then update the registry. The
sequencer applies the same rules when it appends (`ledger.admission`), so a
log the service wrote is exactly a log this replayer accepts. Memory is flat
in the log's length apart from the key registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.admin import KeyRegistered, KeyRevoked
from ledger.admission import Admitted, admit, admit_genesis
from ledger.chains import Chains
from ledger.core.dsse import SignatureCheck, check_now
from ledger.core.entry import ChainVerifier, Entry
from ledger.errors import LedgerError, SignatureError, VerificationError
from ledger.registry import KeyRegistry


@dataclass(frozen=True, slots=True)
class ReplayedEntry:
    """An entry that passed every check, with its leaf hash and what admission extracted."""

    entry: Entry
    leaf_hash: bytes
    admitted: Admitted


class LogReplayer:
    """Checks entries one by one from index 0 (or from a trusted point with its registry)."""

    def __init__(self, check: SignatureCheck = check_now) -> None:
        """Start at entry 0 with an empty registry and no chains; `check` verifies signatures.

        A `check` that defers verification (see `ledger.core.dsse.verify_envelope`) makes
        `check` below provisional: the caller must fail the entry if a deferred check fails.
        Entry 0 (the ledger key's self-registration) is always verified at once.
        """
        self._check = check
        self.registry = KeyRegistry()
        self.chain = ChainVerifier()
        self.chains = Chains()

    @property
    def next_index(self) -> int:
        """The index the next entry must have."""
        return self.chain.next_index

    def check(self, data: bytes) -> ReplayedEntry:
        """Check the next entry's bytes; raise VerificationError (naming the index) if any check fails."""
        index = self.chain.next_index
        try:
            entry, leaf = self.chain.check(data)
            if index == 0:
                admitted = admit_genesis(entry.envelope)
            else:
                admitted = admit(entry.envelope, self.registry, index, self._check)
            self.chains.check(entry, admitted)
            self._apply(index, admitted)
            self.chains.advance(index, leaf, entry.release, entry.keys, admitted.kind)
        except VerificationError as exc:
            raise exc.restated(f"entry {index}: {exc.args[0]}") from exc
        except LedgerError as exc:
            # An entry the ledger should never have accepted: a verification failure, not bad input.
            raise SignatureError(f"entry {index}: {exc}") from exc
        return ReplayedEntry(entry, leaf, admitted)

    def _apply(self, index: int, admitted: Admitted) -> None:
        record = admitted.admin
        if isinstance(record, KeyRegistered):
            self.registry.register(index, record)
        elif isinstance(record, KeyRevoked):
            self.registry.revoke(index, record)
