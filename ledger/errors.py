"""The one error hierarchy of the project.

Every failure the ledger can report is a `LedgerError`. Only the HTTP service
maps these to statuses and only the CLI maps them to exit codes; everything
else raises them and never catches them to hide a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class InputError(LedgerError):
    """The caller gave something malformed: bad encoding, wrong type, out of range."""


class EncodingError(InputError):
    """Bytes or text that do not follow the contract format (docs/formats.md)."""


class TooLargeError(InputError):
    """An entry or body over its size limit (65,535 bytes for an entry)."""


DEFAULT_LABELS = ("expected", "calculated")


class VerificationError(LedgerError):
    """A check failed: the data is not what it claims to be.

    `expected` and `calculated` are the two sides of the failed comparison, in a
    printable form (lowercase hex for hashes), when both exist. `labels` names
    each side for people: what it is, not which attribute holds it ("dossier
    claims" / "re-evaluated", "trusted key" / "signed by"). Without labels the
    sides are "expected" (what the verifier was given or trusts) and
    "calculated" (what it computed or found).
    """

    def __init__(
        self,
        message: str,
        *,
        expected: str = "",
        calculated: str = "",
        labels: tuple[str, str] = DEFAULT_LABELS,
    ) -> None:
        """Keep the message, the two sides of the failed comparison and their labels."""
        super().__init__(message)
        self.expected = expected
        self.calculated = calculated
        self.labels = labels

    def restated(self, message: str) -> VerificationError:
        """The same failure (type, sides, labels) told with another message, to add context to it."""
        return type(self)(message, expected=self.expected, calculated=self.calculated, labels=self.labels)

    def __str__(self) -> str:
        """The message, then the two values, each after its label, when they were given."""
        text = super().__str__()
        if self.expected or self.calculated:
            text += f" ({self.labels[0]} {self.expected}, {self.labels[1]} {self.calculated})"
        return text


class RootMismatchError(VerificationError):
    """A proof recomputed a root other than the one the checkpoint commits to."""


class WitnessRefusalError(VerificationError):
    """A witness refused a checkpoint in a way that points at the log itself: a fork or a rollback.

    It holds a larger tree than the log has, another root at the same size, or found the
    consistency proof from its tree to the log's invalid (c2sp.org/tlog-witness 409/422).
    """


class SignatureError(VerificationError):
    """A signature is missing, malformed, by an unknown key, or does not verify."""


class UntrustedSignerError(SignatureError):
    """No signature on an envelope is by a key that may sign there (unknown, or revoked)."""


class ChainError(VerificationError):
    """An entry's `prev` link or index does not follow its predecessor."""


class KeyFormatError(InputError):
    """A key string does not parse (docs/formats.md#keys)."""


class NotFoundError(LedgerError):
    """The thing asked for does not exist (an index past the tree size, an unknown id)."""


class ConflictError(LedgerError):
    """The request contradicts what is recorded (an idempotency key reused with another body)."""


class DuplicateStatementError(ConflictError):
    """A batch would record a signed statement the log already holds (its PAE hash is indexed unique).

    The store raises it when the write collides; the sequencer then looks the statements up and
    answers each such request with the entry that already records it.
    """


class StaleEvaluationError(ConflictError):
    """A decision was evaluated on a release whose chain has moved on since (the gate re-evaluates)."""


class PermissionDeniedError(LedgerError):
    """The caller is known but not allowed to do this (role, product scope)."""


class UnauthenticatedError(LedgerError):
    """No credentials, or credentials the ledger does not know."""


class UnavailableError(LedgerError):
    """The ledger cannot take the request now; retry after `retry_after` seconds.

    Its queue or body budget is full, or its database is unreachable (ledger.storage.outage).
    """

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        """Keep the advised wait."""
        super().__init__(message)
        self.retry_after = retry_after


class LogIntegrityError(UnavailableError):
    """The stored log disagrees with what the ledger signed: appends stop until an operator acts.

    Raised when the head's checkpoint does not verify with the ledger key, or the key registry
    replayed from the entries contradicts the checkpoints; `evledger audit` names the cause.
    """

    def __init__(self, message: str) -> None:
        """Advise a long wait: this does not heal by itself."""
        super().__init__(message, retry_after=60)


class RequestTimeoutError(LedgerError):
    """The client did not send its request body in the time the server allows (HTTP 408)."""


class UnstorableError(EncodingError):
    """The store refused a batch for a value it cannot hold (HTTP 422 once traced to one request).

    Admission refuses every such value it knows of; this is what the storage raises for the
    rest, so that the sequencer can isolate the request that carries it (ledger.append.sequencer).
    """


class MalformedRequestError(InputError):
    """A request body that is not the JSON or envelope shape it must be (HTTP 400)."""


@contextmanager
def failure_context(subject: str) -> Iterator[None]:
    """Name `subject` (for example "old checkpoint old.note") in any LedgerError or OSError raised inside.

    Precondition: none; the error propagates unchanged apart from a note
    (`BaseException.add_note`) that the CLI prints in front of its message.
    """
    try:
        yield
    except (LedgerError, OSError) as exc:
        exc.add_note(subject)
        raise
