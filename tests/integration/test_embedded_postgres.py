"""The embedded PostgreSQL: first start, reuse, stop on every exit path, account, test databases."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from cli.embedded_postgres import CLUSTER_DIR, EmbeddedPostgres, EmbeddedPostgresError

ROOT = Path(__file__).resolve().parents[2]
IS_ROOT = os.geteuid() == 0
root_only = pytest.mark.skipif(not IS_ROOT, reason="the account switch happens only as root")


async def _fetchval(dsn: str, sql: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def fetchval(dsn: str, sql: str) -> object:
    return asyncio.run(_fetchval(dsn, sql))


def execute(dsn: str, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def process_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a non-reaping init may keep zombies around)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return state.split()[1] not in {"Z", "X"}


def process_uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    return int(uid_line.split()[2])  # real, *effective*, saved, filesystem


@pytest.fixture(scope="module")
def shared_data_dir() -> Iterator[Path]:
    """A data directory with its cluster already created, for tests that only need a server (initdb once)."""
    path = Path(tempfile.mkdtemp(prefix="evledger-test-"))
    try:
        with EmbeddedPostgres(path, durable=False):
            pass
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_first_start_creates_the_cluster_and_accepts_connections(embedded_data_dir):
    with EmbeddedPostgres(embedded_data_dir, durable=False) as pg:
        assert pg.dsn.startswith("postgresql://postgres@/evledger?host=")
        assert pg.socket_dir.is_relative_to(embedded_data_dir)
        assert fetchval(pg.dsn, "SELECT 1") == 1
        assert fetchval(pg.dsn, "SELECT current_user || '/' || current_database()") == "postgres/evledger"
        assert fetchval(pg.dsn, "SHOW listen_addresses") == ""  # socket only: no TCP port
        assert fetchval(pg.dsn, "SHOW fsync") == "off"
        assert fetchval(pg.dsn, "SHOW server_encoding") == "UTF8"
    assert (embedded_data_dir / CLUSTER_DIR / "postgres.log").stat().st_size > 0


def test_second_start_reuses_the_cluster_and_its_data(shared_data_dir):
    with EmbeddedPostgres(shared_data_dir, durable=False) as pg:
        execute(pg.dsn, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')")
        system_id = fetchval(pg.dsn, "SELECT system_identifier FROM pg_control_system()")
    with EmbeddedPostgres(shared_data_dir) as pg:
        # Another initdb would mint another system identifier.
        assert fetchval(pg.dsn, "SELECT system_identifier FROM pg_control_system()") == system_id
        assert fetchval(pg.dsn, "SELECT v FROM kept") == "survives"
        assert fetchval(pg.dsn, "SHOW fsync") == "on"  # durable is the default


def test_leaving_the_block_stops_the_server(shared_data_dir):
    with EmbeddedPostgres(shared_data_dir, durable=False) as pg:
        pid = pg.pid
        socket = pg.socket_dir / f".s.PGSQL.{pg.port}"
        assert process_alive(pid)
        assert socket.is_socket()
    assert not process_alive(pid)
    assert not socket.exists()
    assert not (pg.pgdata / "postmaster.pid").exists()
    assert not pg.running


def test_keyboard_interrupt_in_the_block_stops_the_server(shared_data_dir):
    pids = []

    def interrupted_session():
        with EmbeddedPostgres(shared_data_dir, durable=False) as pg:
            pids.append(pg.pid)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_session()
    assert not process_alive(pids[0])


def test_sigterm_stops_the_server(shared_data_dir):
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from cli.embedded_postgres import EmbeddedPostgres
        with EmbeddedPostgres(Path(sys.argv[1]), durable=False) as pg:
            print(pg.pid, flush=True)
            time.sleep(60)
        """
    )
    argv = [sys.executable, "-c", script, str(shared_data_dir)]
    with subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True) as child:  # noqa: S603 -- our script
        try:
            assert child.stdout is not None
            pid = int(child.stdout.readline())
            assert process_alive(pid)
            child.send_signal(signal.SIGTERM)
            assert child.wait(timeout=30) == 128 + signal.SIGTERM
        finally:
            child.kill()
    assert not process_alive(pid)


def test_a_cluster_runs_for_one_owner_at_a_time(shared_data_dir):
    with EmbeddedPostgres(shared_data_dir, durable=False) as pg:
        with pytest.raises(EmbeddedPostgresError, match="in use by another process"):
            EmbeddedPostgres(shared_data_dir, durable=False).start()
        assert fetchval(pg.dsn, "SELECT 1") == 1  # the refused start left the running server alone


def test_a_failed_start_says_why_with_the_server_log(shared_data_dir):
    auto_conf = shared_data_dir / CLUSTER_DIR / "data" / "postgresql.auto.conf"
    original = auto_conf.read_text()
    auto_conf.write_text(original + "shared_buffers = 'plenty'\n")  # rewrites in place: owner kept
    try:
        with pytest.raises(
            EmbeddedPostgresError, match=r"(?s)pg_ctl start failed.*invalid value.*shared_buffers"
        ):
            EmbeddedPostgres(shared_data_dir, durable=False).start()
    finally:
        auto_conf.write_text(original)
    with EmbeddedPostgres(shared_data_dir, durable=False) as pg:  # the failed start released the cluster
        assert fetchval(pg.dsn, "SELECT 1") == 1


def test_a_data_dir_too_long_for_a_socket_path_gets_a_short_socket_dir(embedded_data_dir):
    embedded_data_dir.chmod(0o711)  # as root the server's account must enter this parent
    deep = embedded_data_dir / ("d" * 100)
    with EmbeddedPostgres(deep, durable=False) as pg:
        socket_dir = pg.socket_dir
        assert not socket_dir.is_relative_to(deep)
        assert fetchval(pg.dsn, "SELECT 1") == 1
    assert not socket_dir.exists()


def test_the_server_never_runs_as_root(shared_data_dir):
    with EmbeddedPostgres(shared_data_dir, durable=False) as pg:
        uid = process_uid(pg.pid)
        expected = pwd.getpwnam(pg.os_user).pw_uid if IS_ROOT else os.geteuid()
    assert uid == expected
    assert uid != 0


@root_only
def test_as_root_only_the_cluster_directory_changes_hands(shared_data_dir):
    tmp_mode = Path(tempfile.gettempdir()).stat().st_mode
    with EmbeddedPostgres(shared_data_dir, durable=False) as pg:
        account_uid = pwd.getpwnam(pg.os_user).pw_uid
        assert pg.os_user != "root"
    assert Path(tempfile.gettempdir()).stat().st_mode == tmp_mode
    assert shared_data_dir.stat().st_uid == 0
    assert (shared_data_dir / "postgres.lock").stat().st_uid == 0
    assert (shared_data_dir / CLUSTER_DIR).stat().st_uid == account_uid
    assert stat.S_IMODE((shared_data_dir / CLUSTER_DIR).stat().st_mode) == 0o700
    # mkdtemp made the data directory 0700: the account was given search (not read) permission on it.
    assert stat.S_IMODE(shared_data_dir.stat().st_mode) == 0o701


@root_only
def test_as_root_an_unreachable_data_dir_fails_clearly_and_changes_nothing(embedded_data_dir):
    closed = embedded_data_dir / "closed"
    closed.mkdir(mode=0o700)
    with pytest.raises(EmbeddedPostgresError, match=r"cannot enter .*closed.*/var/lib/evledger"):
        EmbeddedPostgres(closed / "data", durable=False).start()
    assert stat.S_IMODE(closed.stat().st_mode) == 0o700


@pytest.fixture
def dropped_databases(pg_server_dsn) -> Iterator[list[str]]:
    """Names a test records here must be gone once its other fixtures are torn down.

    Requested before `fresh_dsn`, so it is set up before and torn down after it.
    """
    names: list[str] = []
    yield names
    for name in names:
        count = fetchval(pg_server_dsn, f"SELECT count(*) FROM pg_database WHERE datname = '{name}'")  # noqa: S608
        assert count == 0, f"{name} was not dropped"


def test_fresh_dsn_is_an_empty_database_of_its_own_dropped_afterwards(
    dropped_databases, fresh_dsn, pg_server_dsn
):
    name = urlsplit(fresh_dsn).path.lstrip("/")
    dropped_databases.append(name)
    assert name.startswith("evl_test_")
    assert name != urlsplit(pg_server_dsn).path.lstrip("/")
    assert fetchval(fresh_dsn, "SELECT current_database()") == name
    assert (
        fetchval(fresh_dsn, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace") == 0
    )
    execute(fresh_dsn, "CREATE TABLE scratch (v int)")  # a database with content is dropped as well
