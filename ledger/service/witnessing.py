"""Witnessing beside the sequencer: new checkpoints go to the witnesses and time-stamping authorities.

Every POLL_SECONDS a round hands the newest checkpoint in the database to each witness of
the policy (C2SP tlog-witness) that is free and behind, so that all of them cosign the
same checkpoints; one task per authority (RFC 3161) follows the newest checkpoint the
quorum cosigned. A witness gets `old <size it last cosigned>`, the consistency proof from
there, and the checkpoint; its cosignature lines are checked against its key and kept
(`AnchorStore`). An authority gets the SHA-256 of the checkpoint's note text; its token
is checked against the configured certificates and kept. The configuration is
`ledger.service.witnessing_config`. Nothing here is on the append path: a slow, absent or
lying witness only delays the cosigned checkpoint (`GET /checkpoint`), and the lag shows
in `/metrics`.

Several service processes may share one database; one of them at a time leads the
witnessing, under a PostgreSQL advisory lock (`AnchorStore.witnessing_lease`), so a
witness sees one client per log and its 409 answers mean what they say.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import httpx

from ledger.core.checkpoint import parse_checkpoint_text
from ledger.core.note import parse_note
from ledger.core.witness_protocol import (
    SIZE_CONTENT_TYPE,
    format_add_checkpoint,
    parse_cosignature_response,
    parse_size_body,
)
from ledger.errors import LedgerError, WitnessRefusalError
from ledger.query.proofs import ProofReader
from ledger.service.timestamping import request_timestamp
from ledger.service.witnessing_config import Authority, WitnessingConfig
from ledger.storage.protocol import AnchorStore, CheckpointRow, LogStore
from ledger.verify.witness_policy import Witness, WitnessPolicy

log = logging.getLogger("evledger.witnessing")

POLL_SECONDS = 0.25  # how often witnessing looks for a newer checkpoint (a primary-key read)
ROUND_SECONDS = 0.5  # how long a round of submissions waits for a slow witness before moving on
LEASE_RETRY_SECONDS = 1.0  # how often a process that does not lead asks again
SUBMIT_TIMEOUT_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 30.0
MAX_RESPONSE_BYTES = 64 * 1024

_Handler = Callable[[CheckpointRow], Awaitable[None]]


@dataclass(slots=True)
class _Backoff:
    failures: int = 0
    until: float = 0.0

    def failed(self) -> float:
        self.failures += 1
        delay = min(MAX_BACKOFF_SECONDS, 0.25 * 2.0 ** min(self.failures, 8))
        self.until = time.monotonic() + delay
        return delay

    def succeeded(self) -> None:
        self.failures, self.until = 0, 0.0


@dataclass(slots=True)
class Witnessing:
    """The witnessing tasks of one service process (run only by the process holding the lease)."""

    store: LogStore
    anchors: AnchorStore
    proofs: ProofReader
    config: WitnessingConfig
    refusals: int = 0  # witness answers that point at the log: a fork or rollback (see the log)
    failures: int = 0  # submissions that failed for any reason (unreachable, timeout, bad answer)
    _witness_sizes: dict[str, int] = field(default_factory=dict)

    async def run(self) -> None:
        """Lead the witnessing whenever this process holds the lease; return only when cancelled."""
        while True:
            try:
                async with self.anchors.witnessing_lease() as leading:
                    if leading:
                        await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a supervisor: whatever stopped the tasks, start again
                # A database outage reaches here as an ExceptionGroup from the task group; a bug
                # would too. Either way witnessing must resume, never die with the worker still up.
                log.warning("witnessing paused, retrying in %.0fs: %r", LEASE_RETRY_SECONDS, exc)
            await asyncio.sleep(LEASE_RETRY_SECONDS)

    async def _lead(self) -> None:
        async with httpx.AsyncClient(timeout=SUBMIT_TIMEOUT_SECONDS) as http, asyncio.TaskGroup() as tasks:
            if self.config.policy is not None:
                tasks.create_task(self._witness_rounds(http, self.config.policy))
            for authority in self.config.authorities:
                handler = partial(self._stamp, http, authority)
                tasks.create_task(
                    self._follow(
                        authority.url,
                        handler,
                        interval=self.config.tsa_interval,
                        cosigned_only=self.config.policy is not None,
                    )
                )

    async def _witness_rounds(self, http: httpx.AsyncClient, policy: WitnessPolicy) -> None:
        """Every POLL_SECONDS, submit the newest checkpoint to each witness that is free and behind.

        One round, one checkpoint for every witness: so the witnesses cosign the same
        checkpoints, and a quorum forms at each round's. A round waits at most ROUND_SECONDS
        for its answers; a slower witness keeps its submission and sits out the rounds until
        it answers, then joins the round of the moment, whose checkpoint the others cosign too.
        """
        busy: dict[str, asyncio.Task[None]] = {}
        backoffs = {w.name: _Backoff() for w in policy.witnesses}
        try:
            await self._rounds(http, policy, busy, backoffs)
        finally:
            for task in busy.values():
                task.cancel()

    async def _rounds(
        self,
        http: httpx.AsyncClient,
        policy: WitnessPolicy,
        busy: dict[str, asyncio.Task[None]],
        backoffs: dict[str, _Backoff],
    ) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            latest = await self.store.latest_checkpoint()
            if latest is None:
                continue
            now = time.monotonic()
            started = [
                busy.setdefault(w.name, asyncio.create_task(self._attempt(http, w, latest, backoffs[w.name])))
                for w in policy.witnesses
                if w.name not in busy
                and now >= backoffs[w.name].until
                and self._witness_sizes.get(w.name, -1) < latest.tree_size
            ]
            if started:
                await asyncio.wait(started, timeout=ROUND_SECONDS)
            for name, task in list(busy.items()):
                if task.done():
                    del busy[name]

    async def _attempt(
        self, http: httpx.AsyncClient, witness: Witness, checkpoint: CheckpointRow, backoff: _Backoff
    ) -> None:
        """One submission to one witness; a failure is logged and backs that witness off, never raised."""
        try:
            await self._submit(http, witness, checkpoint)
        except (LedgerError, httpx.HTTPError) as exc:
            self.failures += 1
            delay = backoff.failed()
            log.warning("witness %s: checkpoint %d not cosigned (retry in %.1fs): %s",
                        witness.name, checkpoint.tree_size, delay, exc)  # fmt: skip
        else:
            backoff.succeeded()

    async def _follow(
        self, name: str, handle: _Handler, *, interval: float = 0.0, cosigned_only: bool = False
    ) -> None:
        """Hand every newer checkpoint to `handle`, at most once per `interval`, backing off on failure.

        With `cosigned_only`, only checkpoints the policy's quorum cosigned: authorities stamp
        those, so that one checkpoint ends up with both and can be served.
        """
        done, backoff = -1, _Backoff()
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if time.monotonic() < backoff.until:
                continue
            latest = await (self._newest_cosigned() if cosigned_only else self.store.latest_checkpoint())
            if latest is None or latest.tree_size <= done:
                continue
            try:
                await handle(latest)
            except (LedgerError, httpx.HTTPError) as exc:
                self.failures += 1
                delay = backoff.failed()
                log.warning("%s: checkpoint %d not timestamped (retry in %.1fs): %s",
                            name, latest.tree_size, delay, exc)  # fmt: skip
                continue
            done = latest.tree_size
            backoff.succeeded()
            if interval:
                backoff.until = time.monotonic() + interval

    async def _newest_cosigned(self) -> CheckpointRow | None:
        policy = self.config.policy
        assert policy is not None  # noqa: S101 - only followed with a policy
        size = await self.anchors.latest_cosigned(witness_keyids(policy), policy.quorum)
        return None if size is None else await self.store.checkpoint(size)

    async def _submit(self, http: httpx.AsyncClient, witness: Witness, checkpoint: CheckpointRow) -> None:
        """Get `witness`'s cosignature on `checkpoint` (c2sp.org/tlog-witness §add-checkpoint) and keep it.

        The first request claims the size this process last saw cosigned (0 at start); a
        409 names the witness's size, and the request is made again from there, once.
        """
        old = self._witness_sizes.get(witness.name, 0)
        for _ in range(2):
            if old > checkpoint.tree_size:
                self.refusals += 1
                raise WitnessRefusalError(
                    f"witness {witness.name} has cosigned a tree of {old} entries, larger than this "
                    f"ledger's {checkpoint.tree_size}: the log was rolled back or forked"
                )
            proof = await self.proofs.consistency(old, checkpoint.tree_size) if old else []
            response = await http.post(
                f"{witness.url}/add-checkpoint",
                content=format_add_checkpoint(old, proof, checkpoint.note),
            )
            body = response.content[:MAX_RESPONSE_BYTES]
            if response.status_code == 200:
                lines = parse_cosignature_response(body, checkpoint.note, witness.key)
                for line in lines:
                    await self.anchors.add_cosignature(checkpoint.tree_size, witness.key.keyid, line)
                self._witness_sizes[witness.name] = checkpoint.tree_size
                return
            if response.status_code == 409 and response.headers.get("content-type", "").startswith(
                SIZE_CONTENT_TYPE
            ):
                size = parse_size_body(body)
                if size == old:
                    self.refusals += 1
                    raise WitnessRefusalError(
                        f"witness {witness.name} holds another tree of {size} entries than this ledger: "
                        "the log was forked"
                    )
                self._witness_sizes[witness.name] = old = size
                continue
            if response.status_code == 422:
                self.refusals += 1
                raise WitnessRefusalError(
                    f"witness {witness.name} found the consistency proof from {old} to "
                    f"{checkpoint.tree_size} invalid: this log does not extend the tree it cosigned"
                )
            raise _failed(witness.name, response)
        raise _failed(witness.name, response)

    async def _stamp(self, http: httpx.AsyncClient, authority: Authority, checkpoint: CheckpointRow) -> None:
        """Get an RFC 3161 token over the checkpoint's note text from `authority` and keep it."""
        text = parse_note(checkpoint.note).text
        parse_checkpoint_text(text)
        token = await request_timestamp(http, authority.url, text, authority.certificates)
        await self.anchors.add_timestamp(checkpoint.tree_size, authority.url, token)


def _failed(name: str, response: httpx.Response) -> LedgerError:
    detail = response.text[:200].strip()
    return LedgerError(f"witness {name} answered {response.status_code}: {detail}")


def witness_keyids(policy: WitnessPolicy) -> Sequence[str]:
    """The keyid strings under which the policy's witnesses' cosignatures are kept."""
    return [w.key.keyid for w in policy.witnesses]
