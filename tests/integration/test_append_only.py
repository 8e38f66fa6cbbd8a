"""The database itself keeps the log append-only (docs/architecture.md#storage), whoever connects.

As the owner (who runs migrations) the triggers of 002_append_only.sql refuse
every change to what the log is made of; as the service role `evledger_app`
the privileges of 003_service_role.sql refuse it before any trigger runs, and
the role cannot switch the triggers off or drop the tables.

One ledger of 301 entries (entry 0 and a batch of 300) serves the module: level-0
tile 0 is full (width 256) and tile 1 is partial (width 45). Every attempt runs
in a transaction that is rolled back, so each test sees the same ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import msgspec
import pytest
from ledger_harness import Ledger, evidence, token
from service_support import bearer, scratch_ledger, service

from ledger.storage.postgres import APP_ROLE

APPENDED = 300
TREE_SIZE = APPENDED + 1
PARTIAL_WIDTH = TREE_SIZE - 256

Connection = asyncpg.Connection  # type: ignore[type-arg]


@pytest.fixture(scope="module")
def ledger(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("append-only")) as built:
        admin = token(built.dsn, "admin")
        batch = {"envelopes": [evidence(built.signer, n=n) for n in range(APPENDED)]}
        with service(built) as client:
            response = client.post(
                "/v1/entries/batch", content=msgspec.json.encode(batch), headers=bearer(admin)
            )
            assert response.status_code == 201, response.text
        yield built


async def _snapshot(conn: Connection) -> tuple[Any, ...]:
    return (
        await conn.fetch("SELECT * FROM entries ORDER BY idx"),
        await conn.fetch("SELECT * FROM checkpoints ORDER BY tree_size"),
        await conn.fetch("SELECT * FROM tiles ORDER BY level, idx"),
        await conn.fetch("SELECT * FROM log_head"),
    )


def attempt(dsn: str, sql: str, *, as_service: bool = False) -> BaseException | None:
    """Run `sql` in a transaction that is rolled back; return what PostgreSQL raised, if anything.

    Checks that the log's tables are unchanged afterwards, as seen by the owner.
    """

    async def run() -> BaseException | None:
        owner = await asyncpg.connect(dsn)
        settings = {"role": APP_ROLE} if as_service else {}
        conn = await asyncpg.connect(dsn, server_settings=settings)
        try:
            before = await _snapshot(owner)
            if as_service:
                assert await conn.fetchval("SELECT current_user") == APP_ROLE
            caught: BaseException | None = None
            transaction = conn.transaction()
            await transaction.start()
            try:
                await conn.execute(sql)
            except asyncpg.PostgresError as exc:
                caught = exc
            finally:
                await transaction.rollback()
            assert await _snapshot(owner) == before
            return caught
        finally:
            await conn.close()
            await owner.close()

    return asyncio.run(run())


def accepted_then_rolled_back(dsn: str, sql: str, check: str, *, as_service: bool = False) -> object:
    """Run `sql` (it must succeed) and return `check`'s value inside the same transaction, then roll back."""

    async def run() -> object:
        settings = {"role": APP_ROLE} if as_service else {}
        conn = await asyncpg.connect(dsn, server_settings=settings)
        try:
            transaction = conn.transaction()
            await transaction.start()
            try:
                await conn.execute(sql)
                return await conn.fetchval(check)
            finally:
                await transaction.rollback()
        finally:
            await conn.close()

    return asyncio.run(run())


INSUFFICIENT_PRIVILEGE = "42501"


def refused(operation: str, table: str) -> str:
    """The message of 002_append_only.sql's `evledger_refuse_change` trigger."""
    return f"evidence-ledger: {operation} on {table} is refused: the log is append-only"


def assert_refused_by_trigger(error: BaseException | None, message: str) -> None:
    """Refused by one of our triggers with exactly `message` (SQLSTATE insufficient_privilege)."""
    assert isinstance(error, asyncpg.InsufficientPrivilegeError), repr(error)
    assert (error.sqlstate, error.message) == (INSUFFICIENT_PRIVILEGE, message), error.as_dict()


def assert_refused_by_privileges(error: BaseException | None, message: str) -> None:
    """Refused by PostgreSQL's privilege check with exactly `message`: the role never reaches a trigger."""
    assert isinstance(error, asyncpg.InsufficientPrivilegeError), repr(error)
    assert (error.sqlstate, error.message) == (INSUFFICIENT_PRIVILEGE, message), error.as_dict()


def test_the_fixture_ledger_has_a_full_and_a_partial_tile(ledger: Ledger) -> None:
    async def run() -> list[tuple[int, int, int]]:
        conn = await asyncpg.connect(ledger.dsn)
        try:
            rows = await conn.fetch("SELECT level, idx, width FROM tiles WHERE level = 0 ORDER BY idx")
            assert await conn.fetchval("SELECT tree_size FROM log_head") == TREE_SIZE
            return [(r[0], r[1], r[2]) for r in rows]
        finally:
            await conn.close()

    assert asyncio.run(run()) == [(0, 0, 256), (0, 1, PARTIAL_WIDTH)]


# --- as the owner: triggers ----------------------------------------------------------------------

ADD_COSIGNATURE = (
    "INSERT INTO checkpoint_cosignatures (tree_size, witness, line) VALUES (1, 'w+00000000', '— w AAAA'); "
)
ADD_TIMESTAMP = (
    "INSERT INTO checkpoint_timestamps (tree_size, tsa, token) VALUES (1, 'http://tsa', '\\x01'); "
)
OWNER_ATTACKS = {
    "rewrite_entry_bytes": (
        "UPDATE entries SET data = convert_to('{}', 'UTF8') WHERE idx = 5",
        refused("UPDATE", "entries"),
    ),
    "rewrite_entry_index_columns": (
        "UPDATE entries SET product = 'other', signer_keyid = 'x' WHERE idx > 0",
        refused("UPDATE", "entries"),
    ),
    "delete_last_entry": (
        "DELETE FROM entries WHERE idx = (SELECT max(idx) FROM entries)",
        refused("DELETE", "entries"),
    ),
    "delete_every_entry": ("DELETE FROM entries", refused("DELETE", "entries")),
    "truncate_entries_cascade": ("TRUNCATE entries CASCADE", refused("TRUNCATE", "entries")),
    # No table references entries by a foreign key (007_log_integrity.sql dropped key_events), so
    # a plain TRUNCATE reaches the trigger rather than stopping at PostgreSQL's foreign-key check.
    "truncate_entries": ("TRUNCATE entries", refused("TRUNCATE", "entries")),
    "rewrite_checkpoint_root": (
        "UPDATE checkpoints SET root_hash = decode(repeat('00', 32), 'hex')",
        refused("UPDATE", "checkpoints"),
    ),
    "rewrite_checkpoint_note": (
        "UPDATE checkpoints SET note = note || 'x'",
        refused("UPDATE", "checkpoints"),
    ),
    "delete_checkpoint": ("DELETE FROM checkpoints WHERE tree_size = 1", refused("DELETE", "checkpoints")),
    "truncate_checkpoints": ("TRUNCATE checkpoints", refused("TRUNCATE", "checkpoints")),
    # What anchors a checkpoint outside the operator is as append-only as the log (issue #11). The
    # row triggers fire only on rows, so each attack first adds one (rolled back with the attack).
    "rewrite_cosignature": (
        ADD_COSIGNATURE + "UPDATE checkpoint_cosignatures SET line = line || 'x'",  # noqa: S608 - constant SQL of the test
        refused("UPDATE", "checkpoint_cosignatures"),
    ),
    "delete_cosignatures": (
        ADD_COSIGNATURE + "DELETE FROM checkpoint_cosignatures",  # noqa: S608 - constant SQL of the test
        refused("DELETE", "checkpoint_cosignatures"),
    ),
    "truncate_cosignatures": (
        "TRUNCATE checkpoint_cosignatures",
        refused("TRUNCATE", "checkpoint_cosignatures"),
    ),
    "rewrite_timestamp": (
        ADD_TIMESTAMP + "UPDATE checkpoint_timestamps SET token = token || '\\x00'::bytea",  # noqa: S608 - constant SQL of the test
        refused("UPDATE", "checkpoint_timestamps"),
    ),
    "delete_timestamps": (
        ADD_TIMESTAMP + "DELETE FROM checkpoint_timestamps",  # noqa: S608 - constant SQL of the test
        refused("DELETE", "checkpoint_timestamps"),
    ),
    "truncate_timestamps": ("TRUNCATE checkpoint_timestamps", refused("TRUNCATE", "checkpoint_timestamps")),
}


@pytest.mark.parametrize(("sql", "message"), OWNER_ATTACKS.values(), ids=OWNER_ATTACKS.keys())
def test_owner_attack_on_log_tables_is_refused_by_trigger(ledger: Ledger, sql: str, message: str) -> None:
    assert_refused_by_trigger(attempt(ledger.dsn, sql), message)


# Tile 0/0 is full, tile 0/1 partial; `decode(repeat('00', 32), 'hex')` is a forged 32-byte hash.
FULL_TILE_UPDATE = "evidence-ledger: UPDATE of full tile 0/0 is refused"
PARTIAL_TILE_GROWS = "evidence-ledger: tile 0/1 may only grow by appending"
DELETE_TILE = "evidence-ledger: DELETE of full tile {} is refused"
TILE_ATTACKS = {
    "full_tile_rewrite_same_bytes": (
        "UPDATE tiles SET hashes = hashes WHERE level = 0 AND idx = 0", FULL_TILE_UPDATE),
    "full_tile_rewrite_first_hash": (
        ("UPDATE tiles SET hashes = decode(repeat('00', 32), 'hex') || substring(hashes FROM 33) "
         "WHERE level = 0 AND idx = 0"), FULL_TILE_UPDATE),
    "full_tile_shrink": (
        ("UPDATE tiles SET width = 255, hashes = substring(hashes FROM 1 FOR 8160) "
         "WHERE level = 0 AND idx = 0"), FULL_TILE_UPDATE),
    "full_tile_move": ("UPDATE tiles SET idx = 7 WHERE level = 0 AND idx = 0", FULL_TILE_UPDATE),
    "full_tile_delete": (
        "DELETE FROM tiles WHERE level = 0 AND idx = 0", DELETE_TILE.format("0/0")),
    "partial_tile_shrink": (
        ("UPDATE tiles SET width = width - 1, hashes = substring(hashes FROM 1 FOR 32 * (width - 1)) "
         "WHERE level = 0 AND idx = 1"), PARTIAL_TILE_GROWS),
    "partial_tile_rewrite_same_width": (
        ("UPDATE tiles SET hashes = decode(repeat('00', 32), 'hex') || substring(hashes FROM 33) "
         "WHERE level = 0 AND idx = 1"), PARTIAL_TILE_GROWS),
    "partial_tile_rewrite_while_growing": (
        ("UPDATE tiles SET width = width + 1, hashes = decode(repeat('00', 32), 'hex') "
         "|| substring(hashes FROM 33) || decode(repeat('00', 32), 'hex') WHERE level = 0 AND idx = 1"),
        PARTIAL_TILE_GROWS),
    "partial_tile_same_width_no_op": (
        "UPDATE tiles SET hashes = hashes WHERE level = 0 AND idx = 1", PARTIAL_TILE_GROWS),
    "partial_tile_move": ("UPDATE tiles SET idx = 9 WHERE level = 0 AND idx = 1", PARTIAL_TILE_GROWS),
    # The trigger refuses every DELETE with the full-tile message, the partial tile's too.
    "partial_tile_delete": (
        "DELETE FROM tiles WHERE level = 0 AND idx = 1", DELETE_TILE.format("0/1")),
    "truncate_tiles": ("TRUNCATE tiles", refused("TRUNCATE", "tiles")),
}  # fmt: skip


@pytest.mark.parametrize(("sql", "message"), TILE_ATTACKS.values(), ids=TILE_ATTACKS.keys())
def test_owner_attack_on_tiles_is_refused_by_trigger(ledger: Ledger, sql: str, message: str) -> None:
    assert_refused_by_trigger(attempt(ledger.dsn, sql), message)


GROW_PARTIAL_TILE = (
    "UPDATE tiles SET width = width + 1, hashes = hashes || decode(repeat('00', 32), 'hex') "
    "WHERE level = 0 AND idx = 1"
)
PARTIAL_WIDTH_SQL = "SELECT width FROM tiles WHERE level = 0 AND idx = 1"


@pytest.mark.parametrize("as_service", [False, True], ids=["owner", "service_role"])
def test_partial_tile_may_grow_by_appending(ledger: Ledger, as_service: bool) -> None:
    width = accepted_then_rolled_back(ledger.dsn, GROW_PARTIAL_TILE, PARTIAL_WIDTH_SQL, as_service=as_service)
    assert width == PARTIAL_WIDTH + 1


HEAD_FORWARD = "evidence-ledger: the log head may only move forward"
HEAD_ATTACKS = {
    "head_back_in_size": ("UPDATE log_head SET tree_size = tree_size - 1", HEAD_FORWARD),
    "head_back_to_zero": ("UPDATE log_head SET tree_size = 0, compact_range = '{}'", HEAD_FORWARD),
    "head_other_origin": ("UPDATE log_head SET origin = 'another.log/x'", HEAD_FORWARD),
    "head_delete": ("DELETE FROM log_head", HEAD_FORWARD),
    "head_truncate": ("TRUNCATE log_head", refused("TRUNCATE", "log_head")),
}


@pytest.mark.parametrize(("sql", "message"), HEAD_ATTACKS.values(), ids=HEAD_ATTACKS.keys())
def test_owner_attack_on_log_head_is_refused_by_trigger(ledger: Ledger, sql: str, message: str) -> None:
    assert_refused_by_trigger(attempt(ledger.dsn, sql), message)


def test_log_head_may_move_forward(ledger: Ledger) -> None:
    size = accepted_then_rolled_back(
        ledger.dsn, "UPDATE log_head SET tree_size = tree_size + 1", "SELECT tree_size FROM log_head"
    )
    assert size == TREE_SIZE + 1


# --- as the service role: privileges -----------------------------------------------------------


def denied(table: str) -> str:
    return f"permission denied for table {table}"


def not_owner(kind: str, name: str) -> str:
    return f"must be owner of {kind} {name}"


SERVICE_ATTACKS = {
    "update_entries": ("UPDATE entries SET kind = 'x'", denied("entries")),
    "delete_entries": ("DELETE FROM entries", denied("entries")),
    "truncate_entries": ("TRUNCATE entries", denied("entries")),
    "truncate_entries_cascade": ("TRUNCATE entries CASCADE", denied("entries")),
    "update_checkpoints": ("UPDATE checkpoints SET note = ''", denied("checkpoints")),
    "delete_checkpoints": ("DELETE FROM checkpoints", denied("checkpoints")),
    "truncate_checkpoints": ("TRUNCATE checkpoints", denied("checkpoints")),
    "update_cosignatures": (
        "UPDATE checkpoint_cosignatures SET line = ''",
        denied("checkpoint_cosignatures"),
    ),
    "delete_cosignatures": ("DELETE FROM checkpoint_cosignatures", denied("checkpoint_cosignatures")),
    "delete_timestamps": ("DELETE FROM checkpoint_timestamps", denied("checkpoint_timestamps")),
    "delete_tiles": ("DELETE FROM tiles", denied("tiles")),
    "truncate_tiles": ("TRUNCATE tiles", denied("tiles")),
    "delete_log_head": ("DELETE FROM log_head", denied("log_head")),
    "truncate_log_head": ("TRUNCATE log_head", denied("log_head")),
    "mint_api_token": (
        "INSERT INTO api_tokens (token_hash, role) VALUES (decode(repeat('ab', 32), 'hex'), 'admin')",
        denied("api_tokens"),
    ),
    "regrant_api_token": ("UPDATE api_tokens SET role = 'admin'", denied("api_tokens")),
    "rewrite_idempotency_record": ("UPDATE idempotency_keys SET first_idx = 0", denied("idempotency_keys")),
    "delete_idempotency_record": ("DELETE FROM idempotency_keys", denied("idempotency_keys")),
    "disable_entry_triggers": (
        "ALTER TABLE entries DISABLE TRIGGER entries_no_update_delete",
        not_owner("table", "entries"),
    ),
    "disable_all_entry_triggers": ("ALTER TABLE entries DISABLE TRIGGER ALL", not_owner("table", "entries")),
    "disable_tile_trigger": (
        "ALTER TABLE tiles DISABLE TRIGGER tiles_grow_only",
        not_owner("table", "tiles"),
    ),
    "drop_trigger": ("DROP TRIGGER entries_no_update_delete ON entries", not_owner("relation", "entries")),
    "drop_refusal_function": (
        "DROP FUNCTION evledger_refuse_change() CASCADE",
        not_owner("function", "evledger_refuse_change"),
    ),
    "drop_entries": ("DROP TABLE entries CASCADE", not_owner("table", "entries")),
    "drop_checkpoints": ("DROP TABLE checkpoints CASCADE", not_owner("table", "checkpoints")),
    "replace_refusal_function": (
        (
            "CREATE OR REPLACE FUNCTION evledger_refuse_change() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END; $$"
        ),
        "permission denied for schema public",  # it may not even create a function to replace it
    ),
}


@pytest.mark.parametrize(("sql", "message"), SERVICE_ATTACKS.values(), ids=SERVICE_ATTACKS.keys())
def test_service_role_attack_is_refused_by_privileges(ledger: Ledger, sql: str, message: str) -> None:
    assert_refused_by_privileges(attempt(ledger.dsn, sql, as_service=True), message)


def test_service_role_attack_switch_off_triggers_with_replication_role(ledger: Ledger) -> None:
    error = attempt(ledger.dsn, "SET LOCAL session_replication_role = replica", as_service=True)
    assert_refused_by_privileges(error, 'permission denied to set parameter "session_replication_role"')


SERVICE_GUARDED = {
    "full_tile_rewrite": TILE_ATTACKS["full_tile_rewrite_first_hash"],
    "partial_tile_shrink": TILE_ATTACKS["partial_tile_shrink"],
    "head_back_in_size": HEAD_ATTACKS["head_back_in_size"],
}


@pytest.mark.parametrize(("sql", "message"), SERVICE_GUARDED.values(), ids=SERVICE_GUARDED.keys())
def test_service_role_attack_through_its_update_grants_is_refused_by_trigger(
    ledger: Ledger, sql: str, message: str
) -> None:
    # The service may UPDATE tiles and the head (to extend them); the triggers still guard those rows.
    assert_refused_by_trigger(attempt(ledger.dsn, sql, as_service=True), message)


def test_service_role_may_still_read_and_append(ledger: Ledger) -> None:
    # The refusals above are not a role that can do nothing: it reads and inserts (then rolls back).
    count = accepted_then_rolled_back(
        ledger.dsn,
        "INSERT INTO checkpoints (tree_size, root_hash, note) "
        "VALUES (999999, decode(repeat('00', 32), 'hex'), 'x')",
        "SELECT count(*) FROM checkpoints WHERE tree_size = 999999",
        as_service=True,
    )
    assert count == 1
