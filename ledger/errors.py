"""The one error hierarchy of the project.

Every failure the ledger can report is a `LedgerError`. Only the HTTP service
maps these to statuses and only the CLI maps them to exit codes; everything
else raises them and never catches them to hide a failure.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class InputError(LedgerError):
    """The caller gave something malformed: bad encoding, wrong type, out of range."""


class EncodingError(InputError):
    """Bytes or text that do not follow the contract format (DESIGN.md §3)."""


class TooLargeError(InputError):
    """An entry or body over its size limit (65,535 bytes for an entry)."""


class VerificationError(LedgerError):
    """A check failed: the data is not what it claims to be.

    `expected` and `calculated` say what the verifier was given and what it
    computed, in a printable form (lowercase hex for hashes), when both exist.
    """

    def __init__(self, message: str, *, expected: str = "", calculated: str = "") -> None:
        """Keep the message and the two sides of the failed comparison."""
        super().__init__(message)
        self.expected = expected
        self.calculated = calculated

    def __str__(self) -> str:
        """The message, then the two values when they were given."""
        text = super().__str__()
        if self.expected or self.calculated:
            text += f" (expected {self.expected}, calculated {self.calculated})"
        return text


class RootMismatchError(VerificationError):
    """A proof recomputed a root other than the one the checkpoint commits to."""


class SignatureError(VerificationError):
    """A signature is missing, malformed, by an unknown key, or does not verify."""


class UntrustedSignerError(SignatureError):
    """No signature on an envelope is by a key that may sign there (unknown, or revoked)."""


class ChainError(VerificationError):
    """An entry's `prev` link or index does not follow its predecessor."""


class KeyFormatError(InputError):
    """A key string does not parse (DESIGN.md §3.1)."""


class NotFoundError(LedgerError):
    """The thing asked for does not exist (an index past the tree size, an unknown id)."""


class ConflictError(LedgerError):
    """The request contradicts what is recorded (an idempotency key reused with another body)."""


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


class RequestTimeoutError(LedgerError):
    """The client did not send its request body in the time the server allows (HTTP 408)."""


class UnstorableError(EncodingError):
    """The store refused a batch for a value it cannot hold (HTTP 422 once traced to one request).

    Admission refuses every such value it knows of; this is what the storage raises for the
    rest, so that the sequencer can isolate the request that carries it (ledger.sequencer).
    """


class MalformedRequestError(InputError):
    """A request body that is not the JSON or envelope shape it must be (HTTP 400)."""
