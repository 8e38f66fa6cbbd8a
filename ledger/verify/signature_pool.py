"""Signature checks for `verify-log` on the machine's other cores.

Replaying a log is sequential (each entry's registry, chain links and key
rights depend on the entries before it), but checking an Ed25519 signature is
not: once replay has named the key that must have signed an entry and the
message it signed, the check itself can run anywhere. `DeferredSignatures` is
the replayer's `SignatureCheck` (`ledger.core.dsse`): it queues each check
with the entry it belongs to, and helper processes verify them a bundle at a
time while the main process goes on replaying. Processes, not threads: PyNaCl
releases the GIL inside libsodium, but the replay's Python work holds it.

The verdict is the one a sequential replay gives. Checks are settled in log
order, and the caller settles every queued check before it reports any other
failure, so a bad signature at or before the entry where something else went
wrong is the failure reported, as it would have been had it been checked at
once. At most `jobs + 1` bundles of checks are out at any time: memory stays
flat in the log's size.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Self

import nacl.bindings
import nacl.exceptions

from ledger.core.keys import VerifierKey
from ledger.errors import SignatureError, UnavailableError

ED25519_SIGNATURE_SIZE = 64
Check = tuple[bytes, bytes, bytes]  # (32-byte public key, signed message, raw signature)


def first_bad_signature(checks: list[Check]) -> int:
    """The position of the first check whose signature does not verify, or -1 (runs in a helper)."""
    for position, (public_key, message, signature) in enumerate(checks):
        if len(signature) != ED25519_SIGNATURE_SIZE:
            return position
        try:
            nacl.bindings.crypto_sign_open(signature + message, public_key)
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return position
    return -1


class _Job:
    __slots__ = ("future", "where")

    def __init__(self, future: Future[int], where: list[tuple[int, str]]) -> None:
        self.future = future
        self.where = where  # (entry index, keyid) of each check, in order


class DeferredSignatures:
    """A `SignatureCheck` that verifies in `jobs` helper processes, settled in log order.

    Set `index` to the entry being replayed before each `LogReplayer.check`; call
    `submit()` after each bundle and `settle()` before reporting any outcome.
    """

    def __init__(self, jobs: int) -> None:
        """Start a pool of `jobs` (>= 1) helper processes (spawned: no state of this process is shared)."""
        self.index = -1
        self._jobs = jobs
        self._pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
        self._checks: list[Check] = []
        self._where: list[tuple[int, str]] = []
        self._running: deque[_Job] = deque()

    def __enter__(self) -> Self:
        """The pool itself."""
        return self

    def __exit__(self, *_: object) -> None:
        """Drop what is still queued and stop the helpers."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __call__(self, key: VerifierKey, message: bytes, signature: bytes) -> None:
        """Queue the check of `signature` by `key` over `message`, for entry `index`."""
        self._checks.append((key.public_key, message, signature))
        self._where.append((self.index, key.keyid))

    def submit(self) -> None:
        """Hand the queued checks to a helper; wait for the oldest batches while over `jobs + 1` are out."""
        if self._checks:
            future = self._pool.submit(first_bad_signature, self._checks)
            self._running.append(_Job(future, self._where))
            self._checks, self._where = [], []
        while len(self._running) > self._jobs + 1:
            self._settle_oldest()

    def settle(self) -> None:
        """Wait for every queued check; raise SignatureError naming the first entry whose signature failed."""
        self.submit()
        while self._running:
            self._settle_oldest()

    def _settle_oldest(self) -> None:
        job = self._running.popleft()
        try:
            bad = job.future.result()
        except BrokenProcessPool as exc:
            self._running.clear()
            raise UnavailableError(f"a signature-checking process stopped: {exc}") from exc
        if bad >= 0:
            for later in self._running:  # every later check is moot: this is the first failure
                later.future.cancel()
            self._running.clear()
            index, keyid = job.where[bad]
            raise SignatureError(f"entry {index}: signature by {keyid} does not verify")
