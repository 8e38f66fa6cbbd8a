"""What `evledger serve` makes sure of before it starts: a free port, and a data directory of its own.

granian listens with SO_REUSEPORT, so on a busy port a second server would start
without a word and the kernel would share the connections between the two
(two ledgers answering in turn). And a second `serve` on the same data directory
would attach to the first one's embedded PostgreSQL. Both are refused here, with
exit status 2 and a message that says what to do instead.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ledger.errors import InputError

SERVE_LOCK_FILE = "serve.lock"


def _endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def refuse_busy_port(host: str, port: int) -> None:
    """InputError unless every address `host` names can listen on `port` now.

    The probe binds with SO_REUSEADDR only, as any restarted server does (so connections
    of a stopped server in TIME_WAIT do not count), and without SO_REUSEPORT: the bind
    then fails against any socket listening there, whether that socket set SO_REUSEPORT
    or not. Precondition: 1 <= port <= 65535. The window between this check and the
    server's own bind is a few milliseconds; two servers starting in it are not caught.
    """
    where = _endpoint(host, port)
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(f"cannot listen on {host!r}: {exc.strerror}; give an address with --host") from exc
    unusable: list[str] = []
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise InputError(
                        f"{where} is already in use: another `evledger serve`, or another program, "
                        f"listens there. Stop it, or choose another port with --port."
                    ) from exc
                if exc.errno == errno.EACCES:
                    raise InputError(
                        f"not allowed to listen on {where} (ports below 1024 need privileges): "
                        f"choose another port with --port"
                    ) from exc
                unusable.append(exc.strerror or str(exc))
    if len(unusable) == len(addresses):
        raise InputError(f"cannot listen on {where}: {'; '.join(unusable)}; give an address with --host")


@contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on DATA_DIR/serve.lock for the block: one `serve` per data directory.

    The lock (flock) goes with the process: it is released however the server ends,
    even when killed, so a stale lock file never blocks the next start. The file names
    the holder's pid. InputError, naming the directory and that pid, when it is held.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SERVE_LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise InputError(
                f"another `evledger serve` (pid {holder}) is serving the data directory "
                f"{data_dir.resolve()}: stop it first, or give this one its own --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)
