"""Witnessing beside the sequencer: new checkpoints go to the witnesses and time-stamping authorities.

One task per witness of the policy (C2SP tlog-witness) and one per authority (RFC 3161)
follow the newest checkpoint in the database. A witness gets `old <size it last
cosigned>`, the consistency proof from there, and the checkpoint; its cosignature lines
are checked against its key and kept (`AnchorStore`). An authority gets the SHA-256 of
the checkpoint's note text; its token is checked against the configured certificates and
kept. Nothing here is on the append path: a slow, absent or lying witness only delays
the cosigned checkpoint (`GET /checkpoint`), and the lag shows in `/metrics`.

Several service processes may share one database; one of them at a time leads the
witnessing, under a PostgreSQL advisory lock (`AnchorStore.witnessing_lease`), so a
witness sees one client per log and its 409 answers mean what they say.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

from ledger.core.checkpoint import parse_checkpoint_text
from ledger.core.note import parse_note
from ledger.core.witness_protocol import (
    SIZE_CONTENT_TYPE,
    format_add_checkpoint,
    parse_cosignature_response,
    parse_size_body,
)
from ledger.errors import InputError, LedgerError
from ledger.query.proofs import ProofReader
from ledger.service.timestamping import request_timestamp
from ledger.storage.protocol import AnchorStore, CheckpointRow, LogStore
from ledger.verify.trusted_time import TsaCertificate, load_tsa_certificates
from ledger.verify.witness_policy import Witness, WitnessPolicy, parse_witness_policy

log = logging.getLogger("evledger.witnessing")

POLL_SECONDS = 0.25  # how often witnessing looks for a newer checkpoint (a primary-key read)
ROUND_SECONDS = 0.5  # how long a round of submissions waits for a slow witness before moving on
LEASE_RETRY_SECONDS = 1.0  # how often a process that does not lead asks again
SUBMIT_TIMEOUT_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 30.0
MAX_RESPONSE_BYTES = 64 * 1024
DEFAULT_TSA_INTERVAL = 10.0

_Handler = Callable[[CheckpointRow], Awaitable[None]]

# How `evledger serve` hands the configuration to its worker processes.
ENV_WITNESS_POLICY = "EVLEDGER_WITNESS_POLICY"  # a policy file's path
ENV_TSA_URLS = "EVLEDGER_TSA_URLS"  # authority URLs, separated by spaces
ENV_TSA_CERTS = "EVLEDGER_TSA_CERTS"  # PEM files, separated by os.pathsep
ENV_TSA_INTERVAL = "EVLEDGER_TSA_INTERVAL"  # seconds between two tokens of one authority


@dataclass(frozen=True, slots=True)
class Authority:
    """A time-stamping authority: its URL and the certificates its tokens must verify against."""

    url: str
    certificates: tuple[TsaCertificate, ...]


@dataclass(frozen=True, slots=True)
class WitnessingConfig:
    """What the ledger submits its checkpoints to (`serve --witness-policy`, `--tsa`/`--tsa-cert`)."""

    policy: WitnessPolicy | None = None
    authorities: tuple[Authority, ...] = ()
    tsa_interval: float = DEFAULT_TSA_INTERVAL  # at most one token per authority this often

    @property
    def enabled(self) -> bool:
        """Whether there is anything to submit checkpoints to."""
        return self.policy is not None or bool(self.authorities)


def load_witnessing(
    policy: Path | None, tsa_urls: Sequence[str], tsa_certs: Sequence[Path], tsa_interval: float
) -> WitnessingConfig:
    """Read and check a witness policy file and the authorities' certificates; InputError names what is wrong.

    Every URL is trusted with every certificate given (a token must verify against one of
    them); an authority without any certificate is refused, so no token goes unchecked.
    """
    parsed = None if policy is None else parse_witness_policy(_read(policy), str(policy))
    if tsa_urls and not tsa_certs:
        raise InputError("--tsa needs --tsa-cert CERT.pem: the certificate its tokens must verify against")
    if tsa_certs and not tsa_urls:
        raise InputError("--tsa-cert is given without --tsa URL (the authority to ask)")
    for url in tsa_urls:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"--tsa {url!r} is not an http:// or https:// URL")
    certificates = tuple(c for path in tsa_certs for c in load_tsa_certificates(_read(path).encode()))
    if not tsa_interval > 0:
        raise InputError(f"the time-stamping interval must be positive, not {tsa_interval}")
    return WitnessingConfig(parsed, tuple(Authority(u, certificates) for u in tsa_urls), tsa_interval)


def witnessing_from_env(environ: Mapping[str, str]) -> WitnessingConfig:
    """The configuration `evledger serve` put in the environment of its workers (see the ENV_ names)."""
    policy = environ.get(ENV_WITNESS_POLICY)
    return load_witnessing(
        Path(policy) if policy else None,
        environ.get(ENV_TSA_URLS, "").split(),
        [Path(p) for p in environ.get(ENV_TSA_CERTS, "").split(os.pathsep) if p],
        float(environ.get(ENV_TSA_INTERVAL, str(DEFAULT_TSA_INTERVAL))),
    )


def witnessing_env(
    policy: Path | None, urls: Sequence[str], certs: Sequence[Path], interval: float
) -> dict[str, str]:
    """The environment that makes `witnessing_from_env` read back these arguments of `load_witnessing`."""
    return {
        ENV_WITNESS_POLICY: str(policy.resolve()) if policy else "",
        ENV_TSA_URLS: " ".join(urls),
        ENV_TSA_CERTS: os.pathsep.join(str(c.resolve()) for c in certs),
        ENV_TSA_INTERVAL: str(interval),
    }


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc


class WitnessRefusalError(LedgerError):
    """A witness refused a checkpoint in a way that points at the log (a fork or a rollback)."""


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
