"""Exit codes, failure reports and result printing for every evledger command (docs/cli.md, contract).

Exit 0 on success, 1 when a verification fails, 2 for usage or input errors.
Every command runs its body inside `command_errors`, which turns a
`LedgerError` (or a file the OS would not give us) into a plain-words message
on stderr, or with `--json` into one JSON object on stdout, and exits with the
matching code. This module is the only place in the project that maps errors
to exit codes, so the contract is kept in one table.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated

import typer

from ledger.errors import (
    DEFAULT_LABELS,
    ChainError,
    ConflictError,
    EncodingError,
    InputError,
    KeyFormatError,
    LedgerError,
    LogIntegrityError,
    NotFoundError,
    PermissionDeniedError,
    RootMismatchError,
    SignatureError,
    TooLargeError,
    UnauthenticatedError,
    UnavailableError,
    VerificationError,
)

EXIT_OK = 0
EXIT_VERIFICATION_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT; never confused with "verification failed"

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout instead of text (also on failure).")
]

# Most specific first: the first matching class names the error kind in JSON output.
_ERROR_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (RootMismatchError, "root_mismatch"),
    (SignatureError, "signature"),
    (ChainError, "chain"),
    (VerificationError, "verification"),
    (KeyFormatError, "key_format"),
    (TooLargeError, "too_large"),
    (EncodingError, "encoding"),
    (InputError, "input"),
    (NotFoundError, "not_found"),
    (ConflictError, "conflict"),
    (PermissionDeniedError, "permission_denied"),
    (UnauthenticatedError, "unauthenticated"),
    (LogIntegrityError, "log_integrity"),
    (UnavailableError, "unavailable"),
    (LedgerError, "error"),
    (OSError, "file"),
)


def error_kind(exc: BaseException) -> str:
    """The short name of an error's kind as it appears in JSON output (`"internal"` for a bug)."""
    for cls, kind in _ERROR_KINDS:
        if isinstance(exc, cls):
            return kind
    return "internal"


def exit_code_for(exc: BaseException) -> int:
    """The exit code of a failure (docs/cli.md#exit-codes).

    1 for a failed verification (a log failing the ledger's own checks too), 3 when the
    service is unavailable or unreachable, else 2 (usage or input).
    """
    if isinstance(exc, VerificationError | LogIntegrityError):
        return EXIT_VERIFICATION_FAILED
    return EXIT_UNAVAILABLE if isinstance(exc, UnavailableError) else EXIT_USAGE


def _detail(exc: BaseException) -> str:
    """The plain-words message of an error, its contexts first, without expected/calculated."""
    if isinstance(exc, OSError) and exc.strerror:
        message = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    elif exc.args:
        message = str(exc.args[0])
    else:
        message = type(exc).__name__
    contexts = reversed(getattr(exc, "__notes__", []))
    return ": ".join([*contexts, message])


def _report_failure(exc: BaseException, *, json_output: bool) -> None:
    """Print a failure: its kind and detail, then the two sides of a failed comparison, each labelled.

    JSON keeps the sides under "expected" and "calculated" (what scripts read) and
    names them for people under "labels": {"expected": ..., "calculated": ...}
    (null when the error has no sides). Text prints each side after its label,
    in that order.
    """
    kind = error_kind(exc)
    detail = _detail(exc)
    expected = getattr(exc, "expected", "") or None
    calculated = getattr(exc, "calculated", "") or None
    labels: tuple[str, str] = getattr(exc, "labels", DEFAULT_LABELS)
    sides = expected is not None or calculated is not None
    if json_output:
        report = {
            "ok": False,
            "error": kind,
            "detail": detail,
            "expected": expected,
            "calculated": calculated,
            "labels": {"expected": labels[0], "calculated": labels[1]} if sides else None,
        }
        print(json.dumps(report))
        return
    if isinstance(exc, VerificationError | LogIntegrityError):
        lines = [f"evledger: verification FAILED: {detail}"]
    elif kind == "internal":
        lines = [
            f"evledger: internal error (a bug in evledger, please report it): {type(exc).__name__}: {detail}"
        ]
    else:
        lines = [f"evledger: error: {detail}"]
    if sides:
        width = max(len(label) for label in labels) + 1
        values = (expected, calculated)
        lines += [
            f"  {label + ':':<{width}} {value or '-'}" for label, value in zip(labels, values, strict=True)
        ]
    print("\n".join(lines), file=sys.stderr)


@contextmanager
def command_errors(*, json_output: bool) -> Iterator[None]:
    """Run a command body; report any failure and exit with the contract's code.

    Precondition: the body prints its own success output (see `emit_success`)
    and signals failure only by raising. Errors never show a traceback: a
    LedgerError or OSError exits 1 or 2 by `exit_code_for`; any other
    exception is a bug, reported as such with exit 2 so that it can never be
    mistaken for a failed verification.
    """
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except (LedgerError, OSError) as exc:
        _report_failure(exc, json_output=json_output)
        raise typer.Exit(exit_code_for(exc)) from None
    except KeyboardInterrupt:
        print("evledger: interrupted", file=sys.stderr)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # noqa: BLE001 - a bug must still exit with a contract code, not a traceback
        _report_failure(exc, json_output=json_output)
        raise typer.Exit(EXIT_USAGE) from None


def emit_success(*, json_output: bool, fields: Mapping[str, object], lines: Iterable[str]) -> None:
    """Print a command's result on stdout: `lines` as text, or `{"ok": true, **fields}` as one JSON line.

    Precondition: `fields` holds only JSON-serialisable values (str, int, bool,
    None, lists and dicts of them) and no key named "ok".
    """
    if json_output:
        print(json.dumps({"ok": True, **fields}))
    else:
        print("\n".join(lines))
