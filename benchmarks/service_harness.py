"""What the service benchmarks share: scratch databases, a prepared ledger, in-process appends, the server.

- `scratch_database` creates a uniquely named database (`evl_bench_<tag>_<pid>_<hex>`)
  on the PostgreSQL server and drops it afterwards, whatever happens.
- `prepare_ledger` initialises a ledger (entry 0), registers an appender key
  (entry 1, written in-process) and creates an appender token.
- `local_sequencers` runs the product's own sequencer(s) in-process, no HTTP:
  the 1M fill and the naive one-transaction-per-append baseline use it.
- `running_server` starts `evledger serve ... --workers N` with the benchmark
  routes mounted and stops it at the end.
- `UniqueEvidence` numbers every envelope afresh: the ledger records a signed
  statement once and answers a repeat with the original entry, so a benchmark
  that sent one body twice would measure replays, not appends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec

from ledger.append.batch import PendingRequest
from ledger.append.bootstrap import initialise, load_registry
from ledger.append.sequencer import Sequencer
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE, Envelope, sign_envelope
from ledger.core.keys import SignerKey
from ledger.records.admin import KeyRegistered, encode_admin_record
from ledger.rules.admission import Admitted, admit
from ledger.storage.migrate import create_token
from ledger.storage.postgres import PostgresStore

DEFAULT_SERVER_DSN = "postgresql://postgres@127.0.0.1:5432/test"
ORIGIN = "ledger.bench/service"
PRODUCT = "bench-product"
RELEASES = 256  # evidence is spread over this many releases (versions 1.0 .. 1.255) unless told
ANY_LATER_INDEX = sys.maxsize  # admission as the service does it: "registered and not revoked now"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


def server_dsn() -> str:
    """The PostgreSQL server to create scratch databases on (EVLEDGER_BENCH_DSN, else the local one)."""
    return os.environ.get("EVLEDGER_BENCH_DSN", DEFAULT_SERVER_DSN)


def database_dsn(dsn: str, database: str) -> str:
    """`dsn` with its database replaced."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


async def execute_on(dsn: str, sql: str) -> None:
    """One statement on its own connection (CREATE/DROP DATABASE cannot run in a transaction)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def scratch_database(tag: str) -> Iterator[str]:
    """A new empty database, dropped (sessions and all) on the way out."""
    name = f"evl_bench_{tag}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = server_dsn()
    asyncio.run(execute_on(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield database_dsn(admin, name)
    finally:
        asyncio.run(execute_on(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def statement(n: int, version: str = "1.0", per_artifact: int = 1) -> bytes:
    """An in-toto Statement v1 about artifact `n // per_artifact` of release PRODUCT `version` (~330 bytes).

    `per_artifact` consecutive statements name one artifact: 1, every statement a new one (each
    starts a chain of the completeness index); more, as a pipeline records several pieces of
    evidence about each artifact it builds.
    """
    artifact = n // per_artifact
    return msgspec.json.encode(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": f"dist/bench-{artifact}.tar.gz", "digest": {"sha256": f"{artifact:064x}"}}],
            "predicateType": "https://evledger.example/test-run/v1",
            "predicate": {
                "release": {"product": PRODUCT, "version": version},
                "suite": "integration",
                "passed": 1200 + n % 7,
                "failed": 0,
                "runner": "ci.example/pipeline/42",
            },
        }
    )


def evidence(signer: SignerKey, n: int, version: str | None = None, per_artifact: int = 1) -> Envelope:
    """Signed evidence `n` of release PRODUCT `version` (default 1.<n % RELEASES>); see `statement`."""
    body = statement(n, version or f"1.{n % RELEASES}", per_artifact)
    return sign_envelope(INTOTO_PAYLOAD_TYPE, body, [signer])


def _signed_bodies(  # noqa: PLR0913, PLR0917 - one job of a process pool: its arguments, positionally
    name: str, seed: bytes, numbers: range, version: str | None, group: int, per_artifact: int = 1
) -> list[bytes]:
    """Evidence `numbers` signed by the key (name, seed), each as its JSON request body.

    With `group`, evidence n names release `<version>.<n // group>`: `group` consecutive
    numbers per release; without, `version` as `evidence` takes it.
    """
    signer = SignerKey.from_seed(name, seed)
    return [
        msgspec.json.encode(
            evidence(signer, n, f"{version}.{n // group}" if group else version, per_artifact)
        )
        for n in numbers
    ]


class UniqueEvidence:
    """Signed evidence never sent before: each envelope gets the next number.

    Large amounts are signed on every core (one chunk a process), since a run of a
    few minutes sends hundreds of thousands.
    """

    CHUNK = 20_000

    def __init__(self, signer: SignerKey, first: int = 1, per_artifact: int = 1) -> None:
        """Sign with `signer`, numbering from `first` (past every number used on the ledger before).

        `per_artifact` consecutive envelopes name one artifact (see `statement`).
        """
        self.signer = signer
        self.per_artifact = per_artifact
        self._numbers = itertools.count(first)

    def bodies(self, count: int, version: str | None = None, group: int = 0) -> list[bytes]:
        """`count` request bodies (one envelope each), in order; `version`, `group` as `_signed_bodies`."""
        first = next(self._numbers)
        self._numbers = itertools.count(first + count)
        end = first + count
        jobs = [
            (
                self.signer.name,
                self.signer.seed,
                range(n, min(n + self.CHUNK, end)),
                version,
                group,
                self.per_artifact,
            )
            for n in range(first, end, self.CHUNK)
        ]
        if len(jobs) <= 1:
            return [body for job in jobs for body in _signed_bodies(*job)]
        with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
            return [body for part in pool.map(_signed_bodies, *zip(*jobs, strict=True)) for body in part]

    def envelopes(self, count: int, version: str | None = None, group: int = 0) -> list[Envelope]:
        """`count` envelopes, decoded from `bodies`."""
        decoder = msgspec.json.Decoder(Envelope)
        return [decoder.decode(body) for body in self.bodies(count, version, group)]


@dataclass(frozen=True, slots=True)
class BenchLedger:
    """An initialised ledger: its DSN, ledger key (file), a registered appender key and its token."""

    dsn: str
    ledger_key: SignerKey
    key_path: Path
    appender: SignerKey
    token: str


@contextlib.asynccontextmanager
async def local_sequencers(
    dsn: str, signer: SignerKey, *, count: int = 1, max_batch: int = 1000, pool_size: int = 2
) -> AsyncIterator[list[Sequencer]]:
    """`count` running sequencers of the product on one pool, writing without HTTP.

    Each is `ledger.append.sequencer.Sequencer` as the service runs it (lock the head,
    plan with `ledger.append.batch.plan_batch`, `PostgresAppendTransaction.write`,
    commit), with `max_delay=0`: it integrates whatever is queued at once, up
    to `max_batch` envelopes per transaction.
    """
    store = await PostgresStore.connect(dsn, min_size=min(2, pool_size), max_size=pool_size)
    try:
        registry = await load_registry(store, signer.verifier())
        sequencers = [
            Sequencer(
                store,
                signer,
                registry.copy(),
                max_batch=max_batch,
                max_delay=0.0,
                max_pending=max(20_000, max_batch),
            )
            for _ in range(count)
        ]
        for sequencer in sequencers:
            sequencer.start()
        try:
            yield sequencers
        finally:
            for sequencer in sequencers:
                await sequencer.stop()
    finally:
        await store.close()


def admit_now(sequencer: Sequencer, envelope: Envelope) -> Admitted:
    """Signature and key checks, as the service does them before queueing."""
    return admit(envelope, sequencer.registry, ANY_LATER_INDEX)


def _trusted(key: object, message: bytes, signature: bytes) -> None:
    """A signature check that checks nothing: for envelopes this process has just signed itself."""
    del key, message, signature


def admit_own(sequencer: Sequencer, envelope: Envelope) -> Admitted:
    """Admission of an envelope this process signed, without verifying its signature again (fills only)."""
    return admit(envelope, sequencer.registry, ANY_LATER_INDEX, _trusted)


async def _register_appender(dsn: str, ledger_key: SignerKey, appender: SignerKey) -> str:
    record = KeyRegistered(appender.verifier().format(), "benchmark pipeline", ["appender"], [PRODUCT])
    envelope = sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(record), [ledger_key])
    async with local_sequencers(dsn, ledger_key) as (sequencer,):
        await sequencer.append(PendingRequest([admit_now(sequencer, envelope)]))
    return await create_token(dsn, "appender", [PRODUCT])


def prepare_ledger(dsn: str, directory: Path, appender: SignerKey | None = None) -> BenchLedger:
    """Entry 0 with a fresh ledger key (saved in `directory`), entry 1 registering an appender key.

    The appender key is `appender`, or a new one.
    """
    ledger_key = SignerKey.generate(ORIGIN)
    key_path = directory / f"ledger-{secrets.token_hex(3)}.key"
    key_path.write_text(ledger_key.format() + "\n")
    key_path.chmod(0o600)
    asyncio.run(initialise(dsn, ledger_key))
    appender = appender or SignerKey.generate("pipeline.bench/ci")
    token = asyncio.run(_register_appender(dsn, ledger_key, appender))
    return BenchLedger(dsn, ledger_key, key_path, appender, token)


async def tree_size(dsn: str) -> int:
    """The log head's tree size."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT tree_size FROM log_head WHERE id = 1"))
    finally:
        await conn.close()


async def settled_size(dsn: str, quiet: float = 0.5, limit: float = 20.0) -> int:
    """The tree size once it has not changed for `quiet` seconds (at most `limit` seconds of waiting).

    wrk stops at its deadline with requests still in flight; the server finishes
    them afterwards. Waiting for the log to settle keeps that work out of the
    next measurement and counts it in this one's growth.
    """
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + limit
        size = int(await conn.fetchval("SELECT tree_size FROM log_head WHERE id = 1"))
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            now = int(await conn.fetchval("SELECT tree_size FROM log_head WHERE id = 1"))
            if now != size:
                size, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since >= quiet:
                break
        return size
    finally:
        await conn.close()


# --- the server under test ---------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str) -> int | None:
    """The status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - http://127.0.0.1 only
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


@dataclass(frozen=True, slots=True)
class Server:
    """A running `evledger serve`: its base URL and the command that started it."""

    url: str
    command: str
    env: dict[str, str]
    pid: int


@contextlib.contextmanager
def running_server(
    ledger: BenchLedger, workers: int, env: dict[str, str] | None = None, args: Sequence[str] = ()
) -> Iterator[Server]:
    """`evledger serve --dsn ... --key ... --port ... --workers N [args]` with EVLEDGER_BENCH_ROUTES=1.

    Output goes to a temporary log, printed if the server fails to start. The
    server runs in its own process group; on the way out it gets SIGTERM, and
    that group SIGKILL if it has not stopped within STOP_TIMEOUT.
    """
    port = free_port()
    cli = Path(sys.executable).with_name("evledger")
    command = [str(cli), "serve", "--dsn", ledger.dsn, "--key", str(ledger.key_path)]
    command += ["--port", str(port), "--workers", str(workers), *args]
    extra = {"EVLEDGER_BENCH_ROUTES": "1", **(env or {})}
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(  # noqa: S603 - our own CLI with arguments we built
        command, env={**os.environ, **extra}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    shown = " ".join(f"{k}={v}" for k, v in extra.items()) + " evledger serve --dsn DSN --key KEY"
    shown += f" --port {port} --workers {workers}" + "".join(f" {a}" for a in args)
    try:
        _wait_ready(process, url, log)
        yield Server(url, shown, extra, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group of the server this function started
            process.wait()
        log.close()


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: object) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"evledger serve exited with {process.returncode}:\n{_read_log(log)}")
        if http_status(url + "/healthz") in {200, 401} and http_status(url + "/_bench/ping") == 200:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"evledger serve was not ready within {START_TIMEOUT:.0f} s:\n{_read_log(log)}"
            )
        time.sleep(0.2)


def _read_log(log: object) -> str:
    seek, read = getattr(log, "seek", None), getattr(log, "read", None)
    if seek is None or read is None:
        return ""
    seek(0)
    return bytes(read()).decode(errors="replace")[-4000:]
