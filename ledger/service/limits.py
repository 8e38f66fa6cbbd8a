"""How much one service worker takes on at once, and the HTTP server settings that follow.

Every limit holds per worker process and is read from an environment variable, by
`evledger serve` (which configures granian with the connection limits) and by each
worker (which enforces the byte budgets and the body deadline itself):

- `EVLEDGER_MAX_CONNECTIONS` (4096): open client connections a worker serves at once.
  Granian holds one permit a connection, from accept to close; past the limit new
  connections wait in the listen backlog, so it must stay far above what an attacker's
  half-open connections can fill before the header timeout closes them.
- `EVLEDGER_BACKLOG` (2048): connections the kernel queues before a worker accepts them
  (capped by the kernel's `net.core.somaxconn`).
- `EVLEDGER_HEADER_TIMEOUT` (10 s): time a client has to send a request's headers, from
  its connection or from the end of its previous response. It also closes idle
  keep-alive connections and connections that never send a byte.
- `EVLEDGER_BODY_TIMEOUT` (30 s): time the whole request body has to arrive (408 after).
- `EVLEDGER_BODY_BUDGET` (128 MiB): bytes of request bodies a worker holds at once, from
  the first read of a body until its response is sent (503 with Retry-After past it).
- `EVLEDGER_QUEUE_BYTES` (64 MiB): bytes of envelopes waiting in the worker's sequencer
  queue for their transaction (503 with Retry-After past it).
- `EVLEDGER_MAX_BLOB` (1 GiB): the largest evidence file `PUT /v1/blobs/…` takes (413
  past it). An upload is streamed into the database, so it is charged to the body budget
  only a message at a time, and held to a pace (`EVLEDGER_BODY_TIMEOUT` without a byte at
  most), not to the body timeout as a whole.
- `EVLEDGER_MAX_UPLOADS` (4): evidence-file uploads a worker runs at once (503 with Retry-After
  past it): each holds a database connection (or an S3 part buffer) while it streams.
- `EVLEDGER_BLOB_STORE` (`postgres`): where evidence files' bytes are kept; `s3://BUCKET[/PREFIX]`
  with `?endpoint=URL&region=NAME` puts them in S3-compatible object storage
  (ledger/storage/s3_blobs.py). Not a limit, but read here with them, before anything starts.

docs/deployment.md explains them to operators; the module is light (no granian, no
Litestar at import) because every CLI command imports the `serve` module.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import resource
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ledger.errors import InputError
from ledger.storage.s3_location import S3Location

log = logging.getLogger(__name__)
MIB = 1 << 20
# File descriptors a worker needs besides its clients' connections: the database pool,
# the listening socket, log files, the interpreter's own.
SPARE_FILES = 256
# Granian reads the header timeout in milliseconds and refuses more than a minute.
MAX_HEADER_TIMEOUT = 60.0
# What `evledger serve` hands each worker besides the limits (ledger.service.app reads them).
ENV_DSN, ENV_KEY = "EVLEDGER_DSN", "EVLEDGER_KEY"  # the database, and the ledger key's file
ENV_PUBLIC_LOG = "EVLEDGER_PUBLIC_LOG"  # "1": `serve --public-log`
ENV_BLOB_STORE = "EVLEDGER_BLOB_STORE"  # `serve --blob-store`: "postgres" (or empty), or s3://BUCKET/PREFIX?…
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
MMAP_THRESHOLD = 32 * 1024  # bytes: envelopes of a big batch (up to 64 KiB each) get their own mappings


@dataclass(frozen=True, slots=True)
class Limits:
    """The per-worker limits (see the module docstring for what each bounds)."""

    max_connections: int = 4096
    backlog: int = 2048
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    body_budget: int = 128 * MIB
    queue_bytes: int = 64 * MIB
    max_blob: int = 1024 * MIB
    max_uploads: int = 4

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Limits:
        """The limits named in `environ` (EVLEDGER_<FIELD>), the defaults for the rest.

        Raises InputError naming the variable when a value is not a number or is out of range.
        """
        values: dict[str, Any] = {}
        for spec in fields(cls):
            name = f"EVLEDGER_{spec.name.upper()}"
            text = environ.get(name, "").strip()
            if not text:
                continue
            kind, noun = (
                (float, "number of seconds") if isinstance(spec.default, float) else (int, "whole number")
            )
            try:
                value = kind(text)
            except ValueError:
                raise InputError(f"{name} must be a {noun}, not {text!r}") from None
            if not (value > 0 and math.isfinite(value)):
                raise InputError(f"{name} must be above 0 and finite, not {text}")
            values[spec.name] = value
        limits = cls(**values)
        if limits.header_timeout > MAX_HEADER_TIMEOUT:
            raise InputError(f"EVLEDGER_HEADER_TIMEOUT may be at most {MAX_HEADER_TIMEOUT:.0f} s")
        return limits


def allow_open_files(connections: int) -> int:
    """Raise this process's soft open-file limit for `connections` clients; the connections it allows.

    Worker processes inherit the limit. When the hard limit is lower than needed, the
    connections are capped to fit it (a warning says so) rather than failing to accept later.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return connections
    allowed = max(1, soft - SPARE_FILES)
    log.warning(
        "the open-file limit (%d) allows %d connections per worker, not %d: raise `ulimit -n`",
        soft,
        allowed,
        connections,
    )
    return allowed


def blob_location(setting: str) -> S3Location | None:
    """Where evidence files' bytes go (EVLEDGER_BLOB_STORE): None for PostgreSQL (`postgres` or empty).

    InputError for anything but `postgres` or an `s3://` URL (S3Location.parse).
    """
    setting = setting.strip()
    if setting in {"", "postgres"}:
        return None
    return S3Location.parse(setting)


def return_freed_memory() -> None:
    """Have this process's C allocator map blocks of MMAP_THRESHOLD bytes and more on their own.

    Freeing such a block then returns it to the system at once. Without this, glibc's
    adaptive threshold soon rises above a batch's envelope size, the envelopes and entries
    of a burst of big batches land on the heap, and the worker keeps its peak long after
    (measured: 190-270 MB kept after bursts of 54 MB batches, 80 MB with this, 65 MB idle;
    benchmarks/bench_availability.py). Small allocations, the common case, are not affected. A no-op
    where the C library has no `mallopt` (musl accepts and ignores it).
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def server_options(
    *, host: str, port: int, workers: int, environ: Mapping[str, str] = os.environ
) -> dict[str, Any]:
    """Keyword arguments for `granian.Granian` that serve the ledger app under the limits in `environ`.

    The workers read the same variables (they inherit the environment); a bad value
    raises InputError here, before anything starts.

    HTTP/1.1 only: granian's HTTP/2 detection reads a new connection's first bytes with
    no deadline, so a connection that never sends one would hold its permit for good;
    with HTTP/1.1 alone the header timeout covers it (a reverse proxy may speak HTTP/2
    to clients, see docs/deployment.md). Raises this process's open-file limit as needed.
    """
    from granian.constants import HTTPModes, Interfaces, Loops  # noqa: PLC0415 - only `serve` needs granian
    from granian.http import HTTP1Settings  # noqa: PLC0415

    limits = Limits.from_env(environ)
    return {
        "target": "ledger.service.app:app_from_env",
        "factory": True,
        "address": host,
        "port": port,
        "interface": Interfaces.ASGI,
        "workers": workers,
        "loop": Loops.uvloop,
        "log_access": False,
        "http": HTTPModes.http1,
        "backlog": limits.backlog,
        "backpressure": allow_open_files(limits.max_connections),
        "http1_settings": HTTP1Settings(header_read_timeout=round(limits.header_timeout * 1000)),
        # A worker that dies (killed for its memory, a crash) is replaced; the others go on serving.
        # Granian still stops when one dies twice within a few seconds (a crash loop).
        "respawn_failed_workers": True,
    }
