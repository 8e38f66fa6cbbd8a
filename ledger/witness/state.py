"""The witness's durable state: the latest cosigned checkpoint of each log, and refused evidence.

Layout of the data directory (docs/witness.md):

* `checkpoints/<hex SHA-256 of the origin>`: the latest checkpoint the witness cosigned for
  that origin, as a signed note carrying the log's verified signature(s) and the witness's
  cosignature. Replaced atomically: write a temporary file, fsync it, rename it over the old
  one, fsync the directory. A file that cannot be read or parsed stops the witness for that
  origin (503): treating it as "never cosigned" would let a log roll the witness back.
* `refused.jsonl`: one JSON object per line, appended and fsynced, for each refused
  checkpoint whose signature verified but which contradicts what was cosigned (a consistency
  proof that does not verify, another root at the cosigned size): possible evidence of log
  misbehaviour (c2sp.org/tlog-witness §add-checkpoint lets the witness log such requests).

tlog-witness §add-checkpoint requires the check of the old size and the persisting of the new
checkpoint to be atomic, and the checkpoint to be persisted before the response: each origin
has an asyncio.Lock held from reading the stored checkpoint until the new one is on disk, and
that critical section is shielded from the request's cancellation. Precondition: one process
uses a data directory at a time (`evledger witness serve` locks it, and runs one worker).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ledger.core.checkpoint import Checkpoint, parse_checkpoint_text
from ledger.core.cosignature import cosign
from ledger.core.encoding import b64encode
from ledger.core.keys import SignerKey, VerifierKey
from ledger.core.note import SIGNATURE_PREFIX, parse_note
from ledger.core.witness_protocol import AddCheckpoint, Authenticated, Refusal, authenticate, judge
from ledger.errors import LedgerError, UnavailableError
from ledger.storage.durable_files import append_durably, replace_durably

CHECKPOINTS_DIR = "checkpoints"
REFUSED_FILE = "refused.jsonl"
STATE_RETRY_AFTER = 60  # seconds: a broken state file or a full disk does not heal by itself


def state_file_name(origin: str) -> str:
    """The file name of an origin's state: the hex SHA-256 of its UTF-8 bytes (any origin is safe)."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Cosigned:
    """A checkpoint the witness cosigned and persisted: the response body's lines."""

    checkpoint: Checkpoint
    lines: tuple[str, ...]


def _signature_line(name: str, key_id: int, signature: bytes) -> str:
    return f"{SIGNATURE_PREFIX}{name} {b64encode(key_id.to_bytes(4, 'big') + signature)}\n"


class WitnessState:
    """The latest cosigned checkpoint per origin in `data_dir`, and the witness's add-checkpoint.

    Precondition: no other process writes `data_dir` while this object is used.
    """

    def __init__(
        self,
        data_dir: Path,
        key: SignerKey,
        logs: Mapping[str, Sequence[VerifierKey]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Use (and create) `data_dir`; cosign with `key` the checkpoints of `logs` (origin -> keys)."""
        self.data_dir = data_dir
        self.checkpoints_dir = data_dir / CHECKPOINTS_DIR
        self.refused_path = data_dir / REFUSED_FILE
        self.key = key
        self.logs = {origin: tuple(keys) for origin, keys in logs.items()}
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._latest: dict[str, Checkpoint | None] = {}
        self._refused_lock = threading.Lock()
        self._tasks: set[asyncio.Task[Cosigned | Refusal]] = set()
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)

    def path_of(self, origin: str) -> Path:
        """The state file of `origin`."""
        return self.checkpoints_dir / state_file_name(origin)

    def latest_note(self, origin: str) -> str | None:
        """The stored signed note of the latest checkpoint cosigned for `origin`, None if never.

        UnavailableError (503) when the file exists but cannot be read as a checkpoint of `origin`.
        """
        path = self.path_of(origin)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UnavailableError(
                f"cannot read the witness state of {origin[:200]!r} ({path}): {exc.strerror or exc}",
                retry_after=STATE_RETRY_AFTER,
            ) from exc
        try:
            note = data.decode("utf-8")
            checkpoint = parse_checkpoint_text(parse_note(note).text)
        except (UnicodeDecodeError, LedgerError) as exc:
            raise UnavailableError(
                f"the witness state of {origin[:200]!r} ({path}) is corrupt: {exc}",
                retry_after=STATE_RETRY_AFTER,
            ) from exc
        if checkpoint.origin != origin:
            raise UnavailableError(
                f"the witness state file {path} holds origin {checkpoint.origin[:200]!r}, "
                f"not {origin[:200]!r}",
                retry_after=STATE_RETRY_AFTER,
            )
        return note

    def latest(self, origin: str) -> Checkpoint | None:
        """The latest checkpoint cosigned for `origin` (None if never), read once then kept in memory."""
        if origin not in self._latest:
            note = self.latest_note(origin)
            self._latest[origin] = None if note is None else parse_checkpoint_text(parse_note(note).text)
        return self._latest[origin]

    def store(self, origin: str, note: str) -> None:
        """Durably replace `origin`'s state with `note`: temp file, fsync, rename, fsync the directory.

        Precondition: the caller holds `origin`'s lock and `note` is a signed checkpoint of
        `origin`. UnavailableError (503) when the disk refuses; the old state then stays.
        """
        try:
            replace_durably(self.path_of(origin), note.encode("utf-8"))
        except OSError as exc:
            raise UnavailableError(
                f"cannot persist the witness state of {origin[:200]!r}: {exc.strerror or exc}",
                retry_after=STATE_RETRY_AFTER,
            ) from exc

    def record_refusal(self, request: AddCheckpoint, submitted: Checkpoint, refusal: Refusal) -> None:
        """Append one JSON line to `refused.jsonl` (fsynced) for a signed checkpoint refused as evidence.

        Precondition: `submitted`'s signature verified with a trusted log key. An OSError is
        raised as UnavailableError: the refusal is not answered until it is on record.
        """
        latest = self._latest.get(submitted.origin)
        record = {
            "time": int(self.clock()),
            "origin": submitted.origin,
            "status": refusal.status,
            "reason": refusal.reason,
            "cosigned_size": latest.size if latest is not None else 0,
            "cosigned_root": b64encode(latest.root_hash) if latest is not None else None,
            "submitted_size": submitted.size,
            "submitted_root": b64encode(submitted.root_hash),
            "old_size": request.old_size,
            "proof": [b64encode(h) for h in request.proof],
            "checkpoint": request.checkpoint,
        }
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._refused_lock:
            try:
                append_durably(self.refused_path, line)
            except OSError as exc:
                raise UnavailableError(
                    f"cannot record a refused checkpoint: {exc.strerror or exc}",
                    retry_after=STATE_RETRY_AFTER,
                ) from exc

    def _lock(self, origin: str) -> asyncio.Lock:
        lock = self._locks.get(origin)
        if lock is None:
            lock = self._locks[origin] = asyncio.Lock()
        return lock

    async def add_checkpoint(self, request: AddCheckpoint) -> Cosigned | Refusal:
        """tlog-witness §add-checkpoint for one parsed request: cosign and persist, or refuse.

        Origin and signature are checked first (404, 403; `authenticate`). Then, under the
        origin's lock and shielded from cancellation, the stored checkpoint is compared
        (`judge`), and on success the new checkpoint is persisted before the cosignature is
        returned. Precondition: `request` came from `parse_add_checkpoint`. Raises
        UnavailableError when the state cannot be read or written.
        """
        outcome = authenticate(request, self.logs)
        if isinstance(outcome, Refusal):
            return outcome
        task = asyncio.ensure_future(self._check_and_update(request, outcome))
        self._tasks.add(task)  # a cancelled request must not let the task be collected mid-write
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    async def _check_and_update(self, request: AddCheckpoint, submitted: Authenticated) -> Cosigned | Refusal:
        origin = submitted.checkpoint.origin
        async with self._lock(origin):
            latest = await asyncio.to_thread(self.latest, origin)
            refusal = judge(request, submitted.checkpoint, latest)
            if refusal is not None:
                if refusal.evidence:
                    await asyncio.to_thread(self.record_refusal, request, submitted.checkpoint, refusal)
                return refusal
            line = cosign(submitted.text, self.key, int(self.clock()))
            await asyncio.to_thread(self.store, origin, self._state_note(request, submitted, line))
            self._latest[origin] = submitted.checkpoint
            return Cosigned(submitted.checkpoint, (line,))

    @staticmethod
    def _state_note(request: AddCheckpoint, submitted: Authenticated, cosignature: str) -> str:
        """The note kept as state: the text, the verified log signatures, then the witness's cosignature."""
        trusted = {(key.name, key.key_id) for key in submitted.verified}
        lines = [
            _signature_line(sig.name, sig.key_id, sig.signature)
            for sig in parse_note(request.checkpoint).signatures
            if (sig.name, sig.key_id) in trusted
        ]
        return submitted.text + "\n" + "".join(lines) + cosignature
