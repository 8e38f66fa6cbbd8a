"""Fixtures for tests against a real PostgreSQL server.

The server is `EVLEDGER_TEST_DSN` when set (any database the user may CREATE DATABASE
from, e.g. postgresql://postgres@127.0.0.1:5432/test), else one embedded server per
session. Each test that needs a database asks for `fresh_dsn`: a database of its own,
created empty and dropped afterwards, whatever the test's outcome.

Embedded data directories come from `tempfile`, not pytest's `tmp_path`: as root the
server runs as an unprivileged account, which cannot enter /tmp/pytest-of-root (0700).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from s3_support import CREDENTIALS, S3Server, seaweedfs

from cli.embedded_postgres import EmbeddedPostgres

_HERE = Path(__file__).resolve().parent
_database_numbers = itertools.count()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration as `integration` (select with -m, skip with -m 'not ...')."""
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.integration)


def database_dsn(server_dsn: str, database: str) -> str:
    """`server_dsn` with its database replaced; host, port, socket and options are kept."""
    return urlunsplit(urlsplit(server_dsn)._replace(path=f"/{database}"))


async def execute_on(dsn: str, sql: str) -> None:
    """Run one statement on its own connection (CREATE/DROP DATABASE cannot run in a transaction)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def embedded_data_dir() -> Iterator[Path]:
    """An empty data directory the embedded server's account can reach; removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="evledger-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """DSN of the test server: EVLEDGER_TEST_DSN, or an embedded one running for the session."""
    configured = os.environ.get("EVLEDGER_TEST_DSN")
    if configured:
        yield configured
        return
    data_dir = Path(tempfile.mkdtemp(prefix="evledger-test-server-"))
    try:
        with EmbeddedPostgres(data_dir, durable=False) as server:
            yield server.dsn
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def fresh_dsn(pg_server_dsn: str) -> Iterator[str]:
    """DSN of a new, empty database on the test server, dropped (sessions and all) after the test."""
    name = f"evl_test_{os.getpid()}_{next(_database_numbers)}_{secrets.token_hex(4)}"
    asyncio.run(execute_on(pg_server_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield database_dsn(pg_server_dsn, name)
    finally:
        asyncio.run(execute_on(pg_server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A SeaweedFS S3 gateway for the session; its credentials are in this process's environment."""
    directory = Path(tempfile.mkdtemp(prefix="evledger-s3-"))
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in CREDENTIALS.items():
                patch.setenv(name, value)
            with seaweedfs(directory) as server:
                yield server
    finally:
        shutil.rmtree(directory, ignore_errors=True)
