"""A private PostgreSQL server inside the ledger's data directory, for `serve`, `demo` and tests.

Layout, all under ``<data_dir>``::

    postgres.lock        held (flock) by the process that runs the server
    postgres/            the cluster directory, mode 0700, owned by the server's account
        data/            PGDATA (initdb; created as ``data.init`` and renamed when complete)
        postgres.log     initdb, pg_ctl and server output
        .s.PGSQL.5432    the Unix socket

The server listens on that socket only (``listen_addresses = ''``): it opens no TCP
port and cannot collide with another PostgreSQL on the machine. When the socket path
would exceed the 107 bytes a Unix socket path may have, the socket lives in a fresh
private directory under the system temp directory instead, removed on stop.

Binaries: those bundled in the ``pgserver`` wheel, else ``initdb``/``pg_ctl`` on ``PATH``,
else ``/usr/lib/postgresql/*/bin`` (newest first); the first that runs and, for an
existing cluster, has the cluster's major version.

Root: PostgreSQL refuses to run as root, so as root the server runs as an unprivileged
account: the owner of an existing cluster directory, else ``evledger-pg`` (created as a
system account without home or login shell), else ``nobody`` when no account can be
created. Only the cluster directory is handed to that account. The data directory itself
gains search permission for others (``o+x``, not read) when it lacks it; nothing outside
the data directory is changed: when a parent directory or the binaries are out of the
account's reach, start-up fails and names the obstacle.

Lifetime: ``with EmbeddedPostgres(path) as pg:`` starts the server and stops it
(``pg_ctl stop -m fast``) when the block is left, also by KeyboardInterrupt or SIGTERM
(turned into SystemExit while the server runs, unless someone else handles SIGTERM);
atexit stops it if the block is never left. A postmaster orphaned by a killed owner is
stopped and restarted by the next start. Forked children never stop their parent's server.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import logging
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Self
from urllib.parse import quote

from ledger.errors import LedgerError

DATABASE = "evledger"
SUPERUSER = "postgres"  # initdb -U: the DSN user is the same whoever runs the server
ACCOUNT = "evledger-pg"
FALLBACK_ACCOUNT = "nobody"
PORT = 5432  # names the socket file only: no TCP port is opened
CLUSTER_DIR = "postgres"
_MAX_SOCKET_PATH = 107  # Linux sun_path holds 108 bytes with the terminating NUL
_TIMEOUT_S = 60
_LOG_ROTATE_BYTES = 10 << 20
_LOG_TAIL_BYTES = 3000
# pg_ctl pastes -D and -l into a /bin/sh command line between double quotes.
_SHELL_UNSAFE = re.compile(r'["$`\\\n]')
_NOT_DURABLE = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
_PG_CTL_NOT_RUNNING = 3
_SYSTEM_BIN_ROOT = Path("/usr/lib/postgresql")

_log = logging.getLogger(__name__)


class EmbeddedPostgresError(LedgerError):
    """The embedded server could not be set up, started or stopped; the message says why."""


@dataclass(frozen=True, slots=True)
class _Account:
    """The OS account that runs the server; `switch` is true when it is not this process's own."""

    name: str
    uid: int
    gid: int
    switch: bool


class EmbeddedPostgres:
    r"""A PostgreSQL cluster in `data_dir`, running while the context is entered.

    Preconditions: `data_dir` (created if missing) is on a local file system, its path
    holds none of ``" $ ` \\`` or a newline (pg_ctl passes it through a shell), and as
    root the account that runs the server can enter every parent of it. `durable=False`
    turns off fsync, synchronous commit and full-page writes: for tests only, a crash
    may then corrupt the cluster. Not thread-safe: start and stop from one thread.
    """

    def __init__(self, data_dir: Path, *, durable: bool = True, bin_dir: Path | None = None) -> None:
        """Describe the server; nothing runs until `start` or `__enter__`."""
        self.data_dir = data_dir.expanduser().resolve()
        self.durable = durable
        self.cluster_dir = self.data_dir / CLUSTER_DIR
        self.pgdata = self.cluster_dir / "data"
        self.log_path = self.cluster_dir / "postgres.log"
        self.superuser = SUPERUSER
        self.database = DATABASE
        self.port = PORT
        self.pid: int | None = None  # the postmaster's, while running
        self.os_user: str | None = None  # the account that runs the server, once started
        self._explicit_bin_dir = bin_dir
        self._account: _Account | None = None
        self._bin_dir: Path | None = None
        self._socket_dir: Path | None = None
        self._temp_socket_dir: Path | None = None
        self._lock_fd: int | None = None
        self._owner_pid = 0

    # -- public surface ---------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between a successful `start` and `stop`, in the process that started it."""
        return self.pid is not None and os.getpid() == self._owner_pid

    @property
    def socket_dir(self) -> Path:
        """The directory holding the server's Unix socket; the server must be running."""
        if self._socket_dir is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL is not running")
        return self._socket_dir

    @property
    def dsn(self) -> str:
        """libpq/asyncpg URL of the `evledger` database as the superuser, over the socket."""
        return self.dsn_for(self.database)

    def dsn_for(self, database: str) -> str:
        """libpq/asyncpg URL of `database` on this server; the server must be running."""
        host = quote(str(self.socket_dir), safe="/")
        return f"postgresql://{self.superuser}@/{quote(database, safe='')}?host={host}&port={self.port}"

    def __enter__(self) -> Self:
        """Start the server (see `start`)."""
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the server whatever ended the block."""
        self.stop()

    def start(self) -> None:
        """Create the cluster on first use, then start the server and wait until it accepts connections.

        Raises EmbeddedPostgresError, carrying the end of the server log where there is one.
        """
        if self.pid is not None:
            raise EmbeddedPostgresError(f"the embedded PostgreSQL in {self.data_dir} is already started")
        if _SHELL_UNSAFE.search(str(self.log_path)):
            raise EmbeddedPostgresError(
                f"data directory {self.data_dir} holds a character pg_ctl cannot pass through its shell "
                '(" $ ` \\ or a newline); choose another path'
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._account = _server_account(self.cluster_dir)
        self.os_user = self._account.name
        if self._account.switch:
            self._ensure_reachable()
        self._lock()
        try:
            self._prepare_cluster_dir()
            self._bin_dir = self._choose_binaries()
            if not (self.pgdata / "PG_VERSION").is_file():
                self._initdb()
            self._owner_pid = os.getpid()
            atexit.register(self._stop_at_exit)
            self._launch()
        except BaseException:
            # We hold the lock: whatever runs on this cluster now is ours to stop.
            with contextlib.suppress(EmbeddedPostgresError):
                self._cleanup(stop_server=True)
            raise
        self._install_sigterm_handler()

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are cut, committed work is kept) and release the cluster.

        Does nothing when the server is not running or in a process forked from its owner.
        """
        if self.running:
            self._cleanup(stop_server=True)

    # -- start-up steps ---------------------------------------------------------

    def _ensure_reachable(self) -> None:
        """As root: let the server's account enter the data directory; change nothing outside it."""
        account = self._account_or_fail()
        blocker = next((d for d in self.data_dir.parents if not _can_enter(d, account)), None)
        if blocker is not None:
            raise EmbeddedPostgresError(
                f"PostgreSQL refuses to run as root, so it runs as the unprivileged account "
                f"{account.name!r}, which cannot enter {blocker} ({stat.filemode(blocker.stat().st_mode)}); "
                f"evledger changes no permission outside its data directory. Choose a data directory "
                f"that account can reach (for example /var/lib/evledger or one under /tmp), or grant "
                f"it yourself: chmod o+x {shlex.quote(str(blocker))}"
            )
        if not _can_enter(self.data_dir, account):
            _log.info("granting search permission (o+x) on %s to the server's account", self.data_dir)
            self.data_dir.chmod(stat.S_IMODE(self.data_dir.stat().st_mode) | stat.S_IXOTH)

    def _lock(self) -> None:
        path = self.data_dir / "postgres.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL in {self.data_dir} is in use by another process (pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _prepare_cluster_dir(self) -> None:
        """Create the cluster directory and log; as root, hand both (and only them) to the account."""
        account = self._account_or_fail()
        self.cluster_dir.mkdir(mode=0o700, exist_ok=True)
        owner = self.cluster_dir.stat().st_uid
        if owner != account.uid:
            if not account.switch:
                raise EmbeddedPostgresError(
                    f"{self.cluster_dir} belongs to uid {owner}, not to {account.name!r} who runs "
                    f"PostgreSQL; run as its owner or as root"
                )
            _chown_tree(self.cluster_dir, account)
        if self.log_path.is_file() and self.log_path.stat().st_size > _LOG_ROTATE_BYTES:
            self.log_path.replace(self.log_path.with_suffix(".log.1"))
        self.log_path.touch(mode=0o600)
        if account.switch:
            os.chown(self.log_path, account.uid, account.gid)

    def _choose_binaries(self) -> Path:
        """The first binary directory that runs as the account and matches an existing cluster's version."""
        version_file = self.pgdata / "PG_VERSION"
        wanted = version_file.read_text().strip() if version_file.is_file() else None
        candidates = [self._explicit_bin_dir] if self._explicit_bin_dir else _candidate_bin_dirs()
        rejected: list[str] = []
        for bin_dir in candidates:
            major, reason = self._probe(bin_dir)
            if major is not None and wanted not in (None, major):
                reason = f"PostgreSQL {major}, but the cluster in {self.pgdata} is version {wanted}"
            elif major is not None:
                return bin_dir
            rejected.append(f"{bin_dir}: {reason}")
        raise EmbeddedPostgresError(
            "no usable PostgreSQL binaries (install the pgserver wheel or PostgreSQL's server package); "
            + ("; ".join(rejected) or "none found")
        )

    def _probe(self, bin_dir: Path) -> tuple[str | None, str]:
        """(major version, "") when `bin_dir` has working initdb, pg_ctl and postgres; else (None, why)."""
        account = self._account_or_fail()
        missing = [n for n in ("initdb", "pg_ctl", "postgres") if not (bin_dir / n).is_file()]
        if missing:
            return None, f"no {', '.join(missing)}"
        outputs = []
        for name in ("pg_ctl", "postgres"):  # pg_ctl loads libpq as initdb does; postgres is the server
            try:
                done = _run_as(account, [str(bin_dir / name), "--version"], cwd=self.cluster_dir)
                error = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
                why = error if done.returncode else ""
            except (OSError, subprocess.SubprocessError) as exc:
                why = str(exc)
            if why:
                blocker = next((d for d in (bin_dir, *bin_dir.parents) if not _can_enter(d, account)), None)
                if blocker is not None:  # only possible as root: say why instead of changing permissions
                    why += f" ({account.name!r} cannot enter {blocker}; use binaries it can reach)"
                return None, f"{name} does not run: {why}"
            outputs.append(done.stdout.decode(errors="replace"))
        match = re.search(r"\(PostgreSQL\) (\d+)", outputs[-1])
        return (match.group(1), "") if match else (None, f"unrecognised version {outputs[-1].strip()!r}")

    def _initdb(self) -> None:
        """Create the cluster and the `evledger` database in a staging directory, then rename it into place.

        A crash part-way leaves only the staging directory, which the next start discards.
        """
        staging = self.cluster_dir / "data.init"
        if staging.exists():
            shutil.rmtree(staging)
        initdb = [self._bin("initdb"), "-D", str(staging), "-U", SUPERUSER]
        initdb += ["--auth=trust", "--encoding=UTF8", "--locale=C"]
        self._run([*initdb, *([] if self.durable else ["--no-sync"])], "initdb")
        single = [self._bin("postgres"), "--single", "-D", str(staging), "-c", "exit_on_error=on"]
        single += [arg for setting in self._settings(with_socket=False) for arg in ("-c", setting)]
        # Single-user mode needs no socket and no client binary; exit_on_error makes a failure an exit status.
        self._run(
            [*single, "postgres"], "create the evledger database", stdin=f"CREATE DATABASE {DATABASE};\n"
        )
        staging.rename(self.pgdata)
        if self.durable:
            _fsync_dir(self.cluster_dir)

    def _launch(self) -> None:
        if self._pg_ctl_status_running():
            _log.warning("stopping a PostgreSQL in %s left running by an earlier process", self.pgdata)
            self._pg_ctl_stop()
        self._socket_dir = self._choose_socket_dir()
        options = shlex.join(
            ["-p", str(PORT)]
            + [arg for setting in self._settings(with_socket=True) for arg in ("-c", setting)]
        )
        start = [self._bin("pg_ctl"), "start", "-D", str(self.pgdata), "-l", str(self.log_path), "-w"]
        self._run([*start, "-t", str(_TIMEOUT_S), "-o", options], "pg_ctl start")
        self.pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        _log.info("embedded PostgreSQL %s running as %s (pid %d)", self.pgdata, self.os_user, self.pid)

    def _settings(self, *, with_socket: bool) -> list[str]:
        """Settings for this run, given on the command line: the cluster's files stay as initdb wrote them."""
        settings = [] if self.durable else list(_NOT_DURABLE)
        if with_socket:
            # The socket path is double-quoted for PostgreSQL's list syntax; `"` is excluded by start().
            settings += ["listen_addresses=", f'unix_socket_directories="{self._socket_dir}"']
        return settings

    def _choose_socket_dir(self) -> Path:
        if len(f"{self.cluster_dir}/.s.PGSQL.{PORT}") <= _MAX_SOCKET_PATH:
            return self.cluster_dir
        account = self._account_or_fail()
        self._temp_socket_dir = Path(tempfile.mkdtemp(prefix="evledger-pg-"))
        if account.switch:
            os.chown(self._temp_socket_dir, account.uid, account.gid)
        if len(f"{self._temp_socket_dir}/.s.PGSQL.{PORT}") > _MAX_SOCKET_PATH:
            raise EmbeddedPostgresError(
                f"temp directory {self._temp_socket_dir} is too long for a Unix socket"
            )
        return self._temp_socket_dir

    # -- shutdown ---------------------------------------------------------------

    def _cleanup(self, *, stop_server: bool) -> None:
        """Stop the server if asked, then release everything `start` took, even when stopping fails."""
        try:
            if stop_server and self._bin_dir is not None and self._pg_ctl_status_running():
                self._pg_ctl_stop()
        finally:
            self.pid = None
            self._socket_dir = None
            atexit.unregister(self._stop_at_exit)
            if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if self._temp_socket_dir is not None:
                shutil.rmtree(self._temp_socket_dir, ignore_errors=True)
                self._temp_socket_dir = None
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)  # explicit: forked children share the descriptor
                os.close(self._lock_fd)
                self._lock_fd = None

    def _pg_ctl_stop(self) -> None:
        """Fast shutdown; immediate (crash recovery on next start) if the fast one does not finish."""
        stop = [self._bin("pg_ctl"), "stop", "-D", str(self.pgdata), "-w", "-t", str(_TIMEOUT_S)]
        try:
            self._run([*stop, "-m", "fast"], "pg_ctl stop")
        except EmbeddedPostgresError:
            if self._pg_ctl_status_running():
                self._run([*stop, "-m", "immediate"], "pg_ctl stop -m immediate")

    def _stop_at_exit(self) -> None:
        try:
            self.stop()
        except EmbeddedPostgresError:
            _log.exception("could not stop the embedded PostgreSQL at exit")

    def _install_sigterm_handler(self) -> None:
        # Only where nobody else handles SIGTERM: an application's own handler stays in charge.
        if threading.current_thread() is threading.main_thread() and (
            signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        ):
            signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, _frame: FrameType | None) -> None:
        if os.getpid() != self._owner_pid:  # a forked child: die as it would have without us
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise SystemExit(128 + signum)  # unwinds through __exit__, or reaches atexit

    # -- helpers ----------------------------------------------------------------

    def _pg_ctl_status_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").is_file():
            return False
        status = [self._bin("pg_ctl"), "status", "-D", str(self.pgdata)]
        return self._run(status, "pg_ctl status", ok=(0, _PG_CTL_NOT_RUNNING)) == 0

    def _run(
        self, argv: list[str], what: str, *, stdin: str | None = None, ok: tuple[int, ...] = (0,)
    ) -> int:
        """Run `argv` as the server's account with its output appended to the log; return its exit status.

        Raises EmbeddedPostgresError with the log's tail when the status is not in `ok`.
        """
        account = self._account_or_fail()
        with self.log_path.open("ab") as log:
            start = log.tell()
            log.write(f"--- evledger: {what}: {shlex.join(argv)}\n".encode())
            log.flush()
            try:
                # pg_ctl's postmaster inherits stdout/stderr: a file, never a pipe we would wait on.
                done = _run_as(account, argv, cwd=self.cluster_dir, stdin=stdin, output=log)
            except (OSError, subprocess.SubprocessError) as exc:
                raise self._failure(f"{what} did not run: {exc}", start) from exc
        if done.returncode not in ok:
            raise self._failure(f"{what} failed with exit status {done.returncode}", start)
        return done.returncode

    def _failure(self, message: str, log_offset: int) -> EmbeddedPostgresError:
        """The error for a failed step, with what the log gained since `log_offset` (its last few KB)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(log_offset, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
                tail = log.read().decode(errors="replace")
        except OSError as exc:
            tail = f"(log unreadable: {exc})"
        return EmbeddedPostgresError(
            f"embedded PostgreSQL: {message}\n--- end of {self.log_path} ---\n{tail}"
        )

    def _bin(self, name: str) -> str:
        if self._bin_dir is None:
            raise EmbeddedPostgresError("PostgreSQL binaries have not been chosen yet")
        return str(self._bin_dir / name)

    def _account_or_fail(self) -> _Account:
        if self._account is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL has not been started")
        return self._account


def _run_as(
    account: _Account,
    argv: list[str],
    *,
    cwd: Path,
    stdin: str | None = None,
    output: IO[bytes] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `argv` as `account` (without root's groups) and without PG* environment settings.

    Output goes to `output` when given (both streams), else it is captured.
    """
    switch = account.switch
    return subprocess.run(  # noqa: S603 -- argv is a located PostgreSQL binary and our own paths, no shell
        argv,
        input=None if stdin is None else stdin.encode(),
        stdin=subprocess.DEVNULL if stdin is None else None,
        stdout=output if output is not None else subprocess.PIPE,
        stderr=subprocess.STDOUT if output is not None else subprocess.PIPE,
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
        user=account.uid if switch else None,
        group=account.gid if switch else None,
        extra_groups=[] if switch else None,
        umask=0o077 if switch else -1,
        timeout=_TIMEOUT_S * 2,
        check=False,
    )


def _server_account(cluster_dir: Path) -> _Account:
    """Who runs the server: this process unless it is root; as root see the module docstring."""
    euid = os.geteuid()
    if euid != 0:
        return _Account(_user_name(euid), euid, os.getegid(), switch=False)
    with contextlib.suppress(FileNotFoundError):
        owner = cluster_dir.stat()
        if owner.st_uid != 0:  # an existing cluster keeps its owner, whoever starts it
            return _Account(_user_name(owner.st_uid), owner.st_uid, owner.st_gid, switch=True)
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(ACCOUNT)
        return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid, switch=True)
    useradd = shutil.which("useradd") or shutil.which("useradd", path="/usr/sbin:/sbin")
    nologin = next((s for s in ("/usr/sbin/nologin", "/sbin/nologin") if Path(s).is_file()), "/bin/false")
    if useradd is not None:
        argv = [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
        try:
            done = subprocess.run(  # noqa: S603 -- fixed argv, no shell
                [*argv, "--shell", nologin, ACCOUNT], capture_output=True, check=False, timeout=_TIMEOUT_S
            )
            why = done.stderr.decode(errors="replace").strip()
        except (OSError, subprocess.SubprocessError) as exc:
            why = str(exc)
        with contextlib.suppress(KeyError):  # also when a concurrent start created it first
            entry = pwd.getpwnam(ACCOUNT)
            return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid, switch=True)
        _log.warning("useradd %s failed: %s", ACCOUNT, why)
    _log.warning(
        "running the embedded PostgreSQL as %r: could not create the account %r", FALLBACK_ACCOUNT, ACCOUNT
    )
    try:
        entry = pwd.getpwnam(FALLBACK_ACCOUNT)
    except KeyError:
        raise EmbeddedPostgresError(
            f"running as root, but neither {ACCOUNT!r} nor {FALLBACK_ACCOUNT!r} exists to run PostgreSQL; "
            f"create {ACCOUNT!r} or run evledger as an unprivileged user"
        ) from None
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid, switch=True)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # containers may run with a uid that has no passwd entry
        return str(uid)


def _can_enter(directory: Path, account: _Account) -> bool:
    """Whether `account` (its primary group only, as the server runs) may search `directory`."""
    st = directory.stat()
    if st.st_uid == account.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == account.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _candidate_bin_dirs() -> list[Path]:
    """Directories that may hold initdb, pg_ctl and postgres, in order of preference."""
    found: list[Path] = []
    spec = importlib.util.find_spec("pgserver")  # locates the wheel without importing it
    if spec is not None and spec.origin is not None:
        found.append(Path(spec.origin).parent / "pginstall" / "bin")
    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        found.append(Path(on_path).resolve().parent)
    system = [d for d in _SYSTEM_BIN_ROOT.glob("*/bin") if d.parent.name.isdigit()]
    found += sorted(system, key=lambda d: int(d.parent.name), reverse=True)
    return list(dict.fromkeys(found))


def _chown_tree(root: Path, account: _Account) -> None:
    """Give `root` and everything below it to `account`; never follows symlinks out of it."""
    os.chown(root, account.uid, account.gid, follow_symlinks=False)
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(Path(parent) / name, account.uid, account.gid, follow_symlinks=False)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
