"""`evledger audit`: recompute the log from the database and name the first row that disagrees.

One ledger is built per module over HTTP (302 entries in 4 checkpoints: sizes
1, 2, 152 and 302); each test audits its own copy of that database (CREATE
DATABASE ... TEMPLATE). Attacks run as the database owner with the
append-only triggers disabled, the way an insider with the owner's password
would rewrite history.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from audit_support import (
    ServedLedger,
    fill_ledger,
    new_ledger,
    run_cli,
    scratch_database,
    serving,
)
from ledger_harness import ORIGIN

from ledger.core.checkpoint import Checkpoint, parse_checkpoint_text, sign_checkpoint
from ledger.core.keys import SignerKey
from ledger.verify import audit as verify_audit


@pytest.fixture(scope="module")
def template(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedLedger]:
    directory = tmp_path_factory.mktemp("audit")
    with scratch_database(pg_server_dsn) as dsn:
        ledger = new_ledger(dsn, directory / "keys")
        with serving(ledger) as url:
            served = fill_ledger(ledger, url, [150, 150], directory)
        yield served  # the server is stopped: the database can be a template now


@pytest.fixture
def ledger_dsn(template: ServedLedger, pg_server_dsn: str) -> Iterator[str]:
    name = urlsplit(template.ledger.dsn).path.lstrip("/")
    with scratch_database(pg_server_dsn, template=name) as dsn:
        yield dsn


def tamper(dsn: str, table: str, sql: str, *args: object) -> None:
    """Run `sql` as the owner with the table's append-only triggers off, then turn them back on."""

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            await conn.execute(sql, *args)
            await conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        finally:
            await conn.close()

    asyncio.run(run())


def fetch(dsn: str, sql: str, *args: object) -> object:
    async def run() -> object:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def audit(dsn: str, *extra: str | Path) -> tuple[int, str]:
    return run_cli("audit", "--dsn", dsn, *extra)


def test_clean_ledger_passes(ledger_dsn: str):
    code, output = audit(ledger_dsn)
    assert code == 0, output
    assert "audit passed: log ledger.test/it: 302 entries" in output
    assert "completeness index recomputed: matches 4 checkpoints" in output
    code, output = audit(ledger_dsn, "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["tree_size"] == 302
    assert report["checkpoints"] == 4
    assert report["index_roots"] == 4
    assert report["tiles"] == 3  # 0/0, 0/1.p/46 and 1/0.p/1
    assert report["key_events"] == 2


def test_clean_ledger_passes_with_its_key(ledger_dsn: str, template: ServedLedger):
    code, output = audit(ledger_dsn, "--key", template.ledger.pub_path)
    assert code == 0, output


def test_another_trusted_key_fails(ledger_dsn: str, tmp_path: Path):
    other = tmp_path / "other.pub"
    other.write_text(SignerKey.generate(ORIGIN).verifier().format() + "\n")
    code, output = audit(ledger_dsn, "--key", other)
    assert code == 1, output
    assert "entry 0 does not register the trusted ledger key" in output
    assert "contradicts" not in output


def test_rewritten_entry_bytes_are_named(ledger_dsn: str):
    data = fetch(ledger_dsn, "SELECT data FROM entries WHERE idx = 300")
    assert isinstance(data, bytes)
    forged = data.replace(b'"index":300', b'"index":301')
    tamper(ledger_dsn, "entries", "UPDATE entries SET data = $1 WHERE idx = 300", forged)
    code, output = audit(ledger_dsn)
    assert code == 1, output
    assert "index 300 contradicts the checkpoint at size 302" in output
    assert "entry 300: the leaf hash of its data is not its stored leaf_hash" in output


def test_rewritten_entry_with_its_leaf_hash_is_named(ledger_dsn: str):
    # A careful insider also rewrites leaf_hash: the stored tile still holds the old hash.
    data = fetch(ledger_dsn, "SELECT data FROM entries WHERE idx = 300")
    assert isinstance(data, bytes)
    start = data.index(b'"time":"') + len(b'"time":"') + 20
    forged = data[:start] + (b"1" if data[start : start + 1] != b"1" else b"2") + data[start + 1 :]
    tamper(
        ledger_dsn,
        "entries",
        "UPDATE entries SET data = $1, leaf_hash = sha256('\\x00'::bytea || $1) WHERE idx = 300",
        forged,
    )
    code, output = audit(ledger_dsn)
    assert code == 1, output
    assert "hash tile 0/1 in the database, slot 44, is not the leaf hash of entry 300" in output


def test_rewritten_payload_with_hashes_and_tile_fails_its_signature(ledger_dsn: str):
    data = fetch(ledger_dsn, "SELECT data FROM entries WHERE idx = 300")
    assert isinstance(data, bytes)
    start = data.index(b'"payload":"') + len(b'"payload":"') + 20
    forged = data[:start] + (b"A" if data[start : start + 1] != b"A" else b"B") + data[start + 1 :]
    tamper(
        ledger_dsn,
        "entries",
        "UPDATE entries SET data = $1, leaf_hash = sha256('\\x00'::bytea || $1) WHERE idx = 300",
        forged,
    )
    tamper(
        ledger_dsn,
        "tiles",
        "UPDATE tiles SET hashes = overlay(hashes PLACING sha256('\\x00'::bytea || $1) FROM 32 * 44 + 1) "
        "WHERE level = 0 AND idx = 1",
        forged,
    )
    code, output = audit(ledger_dsn)
    assert code == 1, output
    assert "index 300 contradicts the checkpoint at size 302: entry 300:" in output


def test_deleted_entry_is_named(ledger_dsn: str):
    tamper(ledger_dsn, "entries", "DELETE FROM entries WHERE idx = 300")
    code, output = audit(ledger_dsn)
    assert code == 1, output
    assert "entry 300 is missing" in output
    assert "index 300 contradicts the checkpoint at size 302" in output


def test_rewritten_checkpoint_root_is_named(ledger_dsn: str):
    tamper(
        ledger_dsn, "checkpoints", "UPDATE checkpoints SET root_hash = $1 WHERE tree_size = 152", bytes(32)
    )
    code, output = audit(ledger_dsn)
    assert code == 1, output
    assert "checkpoint at size 152: its root_hash column is not the root its signed note states" in output


def test_checkpoint_re_signed_by_another_key_is_named(ledger_dsn: str):
    note = fetch(ledger_dsn, "SELECT note FROM checkpoints WHERE tree_size = 152")
    assert isinstance(note, str)
    forged = sign_checkpoint(
        parse_checkpoint_text(note.split("\n\n", 1)[0] + "\n"), SignerKey.generate(ORIGIN)
    )
    tamper(ledger_dsn, "checkpoints", "UPDATE checkpoints SET note = $1 WHERE tree_size = 152", forged)
    code, output = audit(ledger_dsn)
    assert code == 1, output
    assert "checkpoint at size 152: note is not signed by any trusted key" in output


def test_checkpoint_hiding_a_key_event_is_named(ledger_dsn: str, template: ServedLedger):
    note = fetch(ledger_dsn, "SELECT note FROM checkpoints WHERE tree_size = 152")
    assert isinstance(note, str)
    genuine = parse_checkpoint_text(note.split("\n\n", 1)[0] + "\n")
    assert genuine.extensions[0] == "evledger-keys 1"
    lying = Checkpoint(
        genuine.origin, genuine.size, genuine.root_hash, ("evledger-keys 0", *genuine.extensions[1:])
    )
    forged = sign_checkpoint(lying, template.ledger.signer)
    tamper(ledger_dsn, "checkpoints", "UPDATE checkpoints SET note = $1 WHERE tree_size = 152", forged)
    code, output = audit(ledger_dsn)
    assert code == 1, output
    assert "checkpoint at size 152: its evledger-keys line names another newest key event" in output


def signed_at(dsn: str, size: int) -> Checkpoint:
    note = fetch(dsn, "SELECT note FROM checkpoints WHERE tree_size = $1", size)
    assert isinstance(note, str)
    return parse_checkpoint_text(note.split("\n\n", 1)[0] + "\n")


def re_sign(dsn: str, template: ServedLedger, size: int, extensions: tuple[str, ...]) -> None:
    """Replace the checkpoint at `size` by one with these extension lines, signed by the ledger key."""
    genuine = signed_at(dsn, size)
    forged = sign_checkpoint(
        Checkpoint(genuine.origin, genuine.size, genuine.root_hash, extensions), template.ledger.signer
    )
    tamper(dsn, "checkpoints", "UPDATE checkpoints SET note = $1 WHERE tree_size = $2", forged, size)


def test_checkpoint_serving_a_stale_index_root_is_named(ledger_dsn: str, template: ServedLedger):
    earlier, later = signed_at(ledger_dsn, 152), signed_at(ledger_dsn, 302)
    assert earlier.extensions[1].startswith("evledger-index ")
    assert earlier.extensions[1] != later.extensions[1]
    re_sign(ledger_dsn, template, 302, (later.extensions[0], earlier.extensions[1]))
    code, output = audit(ledger_dsn)
    assert code == 1, output
    assert "the index root of the checkpoint at size 302 is not the one its entries give" in output
    # 150 new artifacts and the release between them: the suspects, named in key order.
    assert "151 chains changed since the last checkpoint that matched (size 152)" in output
    assert "artifact sha256:" in output
    # The database's own heads at size 302 are read back: they agree with the entries, so the root is stale.
    assert "stored chain heads at size 302 agree with the entries on every key" in output


def test_checkpoint_without_an_index_line_is_accepted_as_before(ledger_dsn: str, template: ServedLedger):
    re_sign(ledger_dsn, template, 152, signed_at(ledger_dsn, 152).extensions[:1])
    code, output = audit(ledger_dsn)
    assert code == 0, output
    assert "completeness index recomputed: matches 3 checkpoints" in output


def test_rewritten_tile_is_named(ledger_dsn: str):
    tamper(
        ledger_dsn,
        "tiles",
        "UPDATE tiles SET hashes = overlay(hashes PLACING $1 FROM 33) WHERE level = 0 AND idx = 0",
        bytes(32),
    )
    code, output = audit(ledger_dsn)
    assert code == 1, output
    assert "hash tile 0/0 in the database, slot 1, is not the leaf hash of entry 1" in output


def test_rewritten_upper_tile_is_named(ledger_dsn: str):
    tamper(ledger_dsn, "tiles", "UPDATE tiles SET hashes = $1 WHERE level = 1 AND idx = 0", bytes(32))
    code, output = audit(ledger_dsn)
    assert code == 1, output
    assert "hash tile tile/1/000.p/1 from the database, slot 0 (entries 0..255)" in output


def test_rewritten_release_column_is_named(ledger_dsn: str):
    tamper(ledger_dsn, "entries", "UPDATE entries SET product = 'other' WHERE idx = 200")
    code, output = audit(ledger_dsn)
    assert code == 1, output
    assert "entry 200: its product column does not match the entry" in output
    assert "index 200 contradicts the checkpoint at size 302" in output


def test_statement_hash_naming_another_entrys_statement_is_named(ledger_dsn: str):
    # Entry 201 would answer a retry of entry 200's statement: 200's own statement would be lost.
    tamper(ledger_dsn, "entries", "DROP INDEX entries_statement")
    tamper(
        ledger_dsn,
        "entries",
        "UPDATE entries SET statement_hash = (SELECT statement_hash FROM entries WHERE idx = 200) "
        "WHERE idx = 201",
    )
    code, output = audit(ledger_dsn)
    assert code == 1, output
    assert "entry 201: its statement_hash column does not match the entry" in output


@pytest.mark.parametrize(
    ("table", "sql", "named"),
    [
        # A copy of entry 1 (a key registration) planted past the head: what a forged key would be.
        (
            "entries",
            """INSERT INTO entries (idx, leaf_hash, data, integrated_at, signer_keyid, payload_type, kind,
                                    product, version, subjects, release_seq, statement_hash)
               SELECT 5000, sha256(leaf_hash), data, integrated_at, signer_keyid, payload_type, kind,
                      product, version, subjects, release_seq, sha256(statement_hash)
               FROM entries WHERE idx = 1""",
            "entry 5000",
        ),
        (
            "checkpoints",
            "INSERT INTO checkpoints (tree_size, root_hash, note) VALUES (303, sha256('x'), 'bogus')",
            "a checkpoint at size 303",
        ),
        (
            "tiles",
            "INSERT INTO tiles (level, idx, width, hashes) VALUES (0, 7, 1, sha256('x'))",
            "hash tile 0/7",
        ),
    ],
)
def test_rows_beyond_the_head_are_named(ledger_dsn: str, table: str, sql: str, named: str):
    tamper(ledger_dsn, table, sql)
    code, output = audit(ledger_dsn)
    assert code == 1, output
    assert "the database holds rows beyond the log head (size 302), written around the ledger" in output
    assert named in output


def test_rewritten_head_is_named(ledger_dsn: str):
    tamper(ledger_dsn, "log_head", "UPDATE log_head SET last_leaf_hash = $1", bytes(32))
    code, output = audit(ledger_dsn, "--json")
    assert code == 1, output
    report = json.loads(output)
    assert report["error"] == "verification"
    assert "log_head: its last_leaf_hash" in report["detail"]
    assert report["calculated"] == "00" * 32


def test_uninitialised_database_is_a_usage_error(fresh_dsn: str):
    code, output = audit(fresh_dsn)
    assert code == 2, output
    assert "the database holds no ledger" in output


def test_small_pages_give_the_same_result(ledger_dsn: str, monkeypatch: pytest.MonkeyPatch):
    # One checkpoint and one tile per read: every page boundary and refill path is crossed.
    monkeypatch.setattr(verify_audit, "CHECKPOINT_PAGE", 1)
    monkeypatch.setattr(verify_audit, "ENTRY_PAGE", 256)
    code, output = audit(ledger_dsn, "--json")
    assert code == 0, output
    assert json.loads(output)["checkpoints"] == 4


def test_entries_missing_at_the_end_are_named(ledger_dsn: str):
    tamper(ledger_dsn, "entries", "DELETE FROM entries WHERE idx >= 290")
    code, output = audit(ledger_dsn)
    assert code == 1, output
    assert "entry 290 is missing from the database" in output
    assert "index 290 contradicts the checkpoint at size 302" in output
