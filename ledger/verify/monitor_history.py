"""The record a log monitor keeps: the alerts it raises, and its history of accepted checkpoints. Pure.

It owns the alert kinds (`ALERT_KINDS`, docs/monitor.md#alerts) and the `Alert` each judgement
of `ledger.verify.monitor` and `ledger.verify.monitor_watch` returns, and the history file's
format (`HISTORY_FORMAT`, docs/monitor.md#state-directory): `MonitorHistory` holds every
checkpoint the monitor accepted (size -> root hash, and the newest signed note in full),
loaded from and saved to text the caller reads and writes (`cli/monitor_state.py` keeps it
in the state directory). A history line's note is checked with the ledger key as it is read:
the file is the monitor's evidence, not something it trusts blindly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ledger.core.checkpoint import Checkpoint
from ledger.core.keys import VerifierKey, parse_verifier_key
from ledger.errors import InputError, LedgerError, VerificationError
from ledger.verify.checkpoints import open_served_checkpoint

# The kinds of misbehaviour a monitor reports (docs/monitor.md#alerts).
ROLLBACK = "rollback"
SPLIT_VIEW = "split-view"
BAD_SIGNATURE = "bad-signature"
MISSING_QUORUM = "missing-quorum"
BAD_TIMESTAMP = "bad-timestamp"
BAD_ENTRY = "bad-entry"
BAD_INDEX = "bad-index"  # the checkpoint's completeness index root is not the one its entries give
ALERT_KINDS = (ROLLBACK, SPLIT_VIEW, BAD_SIGNATURE, MISSING_QUORUM, BAD_TIMESTAMP, BAD_ENTRY, BAD_INDEX)

HISTORY_FORMAT = "evledger-monitor-history/v1"


@dataclass(frozen=True, slots=True)
class Alert:
    """One piece of misbehaviour: its kind (one of `ALERT_KINDS`), what was seen, and the evidence.

    `expected`/`calculated` and `labels` are the two values that differed, as in a
    VerificationError; `evidence` holds what proves it to a third party (the signed notes
    that contradict each other), by name.
    """

    kind: str
    message: str
    tree_size: int | None = None
    expected: str | None = None
    calculated: str | None = None
    labels: tuple[str, str] | None = None
    evidence: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The alert as a JSON object (what `--json` prints and the webhook receives under "alert")."""
        return {
            "kind": self.kind,
            "message": self.message,
            "tree_size": self.tree_size,
            "expected": self.expected,
            "calculated": self.calculated,
            "labels": None
            if self.labels is None
            else {"expected": self.labels[0], "calculated": self.labels[1]},
            "evidence": dict(self.evidence),
        }

    def fingerprint(self) -> str:
        """What makes two alerts the same one (a long-running monitor reports each once)."""
        return json.dumps([self.kind, self.message, self.tree_size, self.expected, self.calculated])


def alert_from(kind: str, exc: LedgerError, tree_size: int | None = None, **evidence: str) -> Alert:
    """An alert of `kind` carrying a failure's message (its contexts first) and its two compared values."""
    message = str(exc.args[0]) if exc.args else type(exc).__name__
    message = ": ".join([*reversed(getattr(exc, "__notes__", [])), message])
    expected = getattr(exc, "expected", "") or None
    calculated = getattr(exc, "calculated", "") or None
    labels: tuple[str, str] | None = getattr(exc, "labels", None) if expected or calculated else None
    return Alert(kind, message, tree_size, expected, calculated, labels, dict(evidence))


@dataclass(frozen=True, slots=True)
class AcceptedCheckpoint:
    """A checkpoint that passed every check, with the exact signed note it was served as."""

    checkpoint: Checkpoint
    note: str

    def to_json_line(self) -> str:
        """One line of the history file (with its newline): size, root hash (hex) and the note."""
        record = {"size": self.checkpoint.size, "root": self.checkpoint.root_hash.hex(), "note": self.note}
        return json.dumps(record, sort_keys=True) + "\n"


class MonitorHistory:
    """Every checkpoint a monitor accepted for one log (size -> root hash), and the newest one in full.

    Saved as JSON Lines (docs/monitor.md#state-directory): a header line naming the format,
    the trusted ledger key and the origin, then one `AcceptedCheckpoint.to_json_line` per
    accepted checkpoint, oldest first, so a caller can append one line per acceptance
    instead of rewriting the file. Only the newest note is kept in memory; the file keeps all.
    """

    def __init__(self, verifier: VerifierKey, origin: str | None = None) -> None:
        """An empty history for the log `verifier` signs (its origin comes with the first checkpoint)."""
        self.verifier = verifier
        self.origin = origin
        self.roots: dict[int, bytes] = {}
        self.latest: AcceptedCheckpoint | None = None

    def __len__(self) -> int:
        """The number of checkpoints accepted."""
        return len(self.roots)

    def header_line(self) -> str:
        """The first line of the history file (with its newline)."""
        return (
            json.dumps({"format": HISTORY_FORMAT, "ledger_key": self.verifier.format()}, sort_keys=True)
            + "\n"
        )

    def dumps(self) -> str:
        """The whole history file's text, to write in one go.

        Only the newest note is kept in memory, so older lines carry an empty note; a caller
        that wants every note kept appends `AcceptedCheckpoint.to_json_line` on each acceptance.
        """
        lines = [self.header_line()]
        for size in sorted(self.roots):
            if self.latest is not None and size == self.latest.checkpoint.size:
                lines.append(self.latest.to_json_line())
            else:
                record = {"size": size, "root": self.roots[size].hex(), "note": ""}
                lines.append(json.dumps(record, sort_keys=True) + "\n")
        return "".join(lines)

    @classmethod
    def loads(cls, text: str, verifier: VerifierKey, source: str = "monitor history") -> MonitorHistory:
        """Read a history file's text, kept for the ledger key `verifier`.

        A last line without its newline is an append cut short by a crash and is ignored.
        InputError (naming the line) for a file of another format or another ledger key, a
        line that does not parse, sizes not strictly increasing, or a note that does not
        verify with `verifier` or does not match its line.
        """
        history = cls(verifier)
        lines = text.split("\n")
        complete = lines[:-1]  # the part after the last newline was never finished
        if not complete:
            raise InputError(f"{source} is empty")
        try:
            header = json.loads(complete[0])
            fmt, key_text = header.get("format"), str(header["ledger_key"])
        except (json.JSONDecodeError, KeyError, AttributeError) as exc:
            raise InputError(f"{source} line 1: not a monitor history header: {exc}") from exc
        if fmt != HISTORY_FORMAT:
            raise InputError(f"{source} line 1: not a {HISTORY_FORMAT} file")
        key = parse_verifier_key(key_text)
        if key != verifier:
            raise InputError(
                f"{source} was kept for ledger key {key.keyid}, not {verifier.keyid}: "
                "use another state directory for another ledger"
            )
        for number, line in enumerate(complete[1:], 2):
            history._load_line(line, f"{source} line {number}")
        return history

    def _load_line(self, line: str, where: str) -> None:
        try:
            record = json.loads(line)
            size, root, note = int(record["size"]), bytes.fromhex(str(record["root"])), str(record["note"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: not an accepted checkpoint: {exc}") from exc
        if self.roots and size <= max(self.roots):
            raise InputError(f"{where}: size {size} does not follow size {max(self.roots)}")
        if note:
            try:
                checkpoint = open_served_checkpoint(note.encode(), self.verifier, self.origin, where)
            except VerificationError as exc:
                raise InputError(f"{where}: {exc}") from exc
            if (checkpoint.size, checkpoint.root_hash) != (size, root):
                raise InputError(f"{where}: the note is not the checkpoint the line names")
            self.origin = checkpoint.origin
            self.latest = AcceptedCheckpoint(checkpoint, note)
        self.roots[size] = root

    def accept(self, accepted: AcceptedCheckpoint) -> None:
        """Record a checkpoint that passed every check as the newest one.

        Precondition: it came from `ledger.verify.monitor.observe` (and passed the entry and
        timestamp checks the caller runs); its size is larger than every size recorded so far.
        """
        if self.roots and accepted.checkpoint.size <= max(self.roots):
            raise ValueError(f"size {accepted.checkpoint.size} is not newer than the history")
        self.roots[accepted.checkpoint.size] = accepted.checkpoint.root_hash
        self.origin = accepted.checkpoint.origin
        self.latest = accepted
