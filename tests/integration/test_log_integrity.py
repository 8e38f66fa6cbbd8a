"""Nothing but the sequencer can extend the log, and the service trusts only what the log proves (issue #9).

The service's own database role (`evledger_app`) may INSERT into the log's tables, so
without more it could plant a row beside the sequencer: a future entry or checkpoint
that wedges every later batch, or a key registration that makes the service accept a
forged key and sign checkpoints over it. The database refuses rows that do not follow
the head (007_log_integrity.sql); what it cannot refuse (a head moved together with
forged rows and a forged checkpoint, which only a signature can tell) the service
refuses to build on, serve or trust, and `evledger audit` names.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import msgspec
import pytest
from audit_support import run_cli
from ledger_harness import Ledger, evidence, free_port, init_ledger, register, to_json, token
from service_support import bearer, check_error, service

from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, sign_envelope
from ledger.core.entry import encode_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.records.admin import KeyRegistered, encode_admin_record
from ledger.storage.postgres import APP_ROLE

PIPELINE = SignerKey.from_seed("ci.test/pipeline", bytes(range(7, 39)))
FORGED = SignerKey.from_seed("forged.test/insider", bytes(range(9, 41)))
INTEGRITY = "23000"  # integrity_constraint_violation, as 007_log_integrity.sql raises it


@dataclass(frozen=True)
class World:
    ledger: Ledger
    admin: dict[str, str]
    appender: dict[str, str]


@pytest.fixture
def world(fresh_dsn: str, tmp_path: Path) -> World:
    """A ledger of three entries: entry 0, the pipeline's key, one piece of evidence."""
    ledger = init_ledger(fresh_dsn, tmp_path)
    admin, appender = bearer(token(fresh_dsn, "admin")), bearer(token(fresh_dsn, "appender"))
    with service(ledger, max_delay=0) as client:
        registered = client.post(
            "/v1/entries", content=to_json(register(ledger.signer, PIPELINE, ["appender"])), headers=admin
        )
        assert registered.status_code == 201, registered.text
        appended = client.post("/v1/entries", content=to_json(evidence(PIPELINE, n=1)), headers=appender)
        assert appended.status_code == 201, appended.text
    return World(ledger, admin, appender)


def run_as_service(dsn: str, *statements: str) -> BaseException | None:
    """Run `statements` as the service role in one transaction that commits; return what was raised."""

    async def run() -> BaseException | None:
        conn = await asyncpg.connect(dsn, server_settings={"role": APP_ROLE})
        try:
            async with conn.transaction():
                for sql in statements:
                    await conn.execute(sql)
        except asyncpg.PostgresError as exc:
            return exc
        finally:
            await conn.close()
        return None

    return asyncio.run(run())


def snapshot(dsn: str) -> tuple[object, ...]:
    async def run() -> tuple[object, ...]:
        conn = await asyncpg.connect(dsn)
        try:
            return tuple(
                [
                    await conn.fetch(f"SELECT * FROM {table} ORDER BY 1")  # noqa: S608 - constant names
                    for table in ("entries", "checkpoints", "tiles", "idempotency_keys", "log_head")
                ]
            )
        finally:
            await conn.close()

    return asyncio.run(run())


# A copy of entry 2's row at another index: every column well formed, unique where it must be.
_PLANT_ENTRY = """INSERT INTO entries (idx, leaf_hash, data, integrated_at, signer_keyid, payload_type, kind,
                                       product, version, subjects, release_seq, statement_hash)
                  SELECT {idx}, sha256(leaf_hash || '{idx}'), data, integrated_at, signer_keyid, payload_type,
                         kind, product, version, subjects, NULL, sha256(statement_hash || '{idx}')
                  FROM entries WHERE idx = 2"""
PLANTED = {
    "entry_past_the_head": [_PLANT_ENTRY.format(idx="(SELECT tree_size + 5 FROM log_head)")],
    "entry_at_the_head": [_PLANT_ENTRY.format(idx="(SELECT tree_size FROM log_head)")],
    "checkpoint_past_the_head": [
        """INSERT INTO checkpoints (tree_size, root_hash, note)
           SELECT tree_size + 1, sha256('x'), 'bogus' FROM log_head"""
    ],
    "checkpoint_at_an_unissued_size": [
        "INSERT INTO checkpoints (tree_size, root_hash, note) VALUES (0, sha256('x'), 'bogus')"
    ],
    "tile_past_the_head": ["INSERT INTO tiles (level, idx, width, hashes) VALUES (0, 7, 1, sha256('x'))"],
    "idempotency_key": [
        """INSERT INTO idempotency_keys (token_id, key, body_hash, first_idx, count, checkpoint_size)
           SELECT min(id), 'planted', sha256('x'), 1, 1, 3 FROM api_tokens"""
    ],
    "head_moved_without_entries": ["UPDATE log_head SET tree_size = tree_size + 1"],
    "head_moved_without_checkpoint": [
        "UPDATE log_head SET tree_size = tree_size + 1",
        _PLANT_ENTRY.format(idx="(SELECT tree_size - 1 FROM log_head)"),
    ],
}


@pytest.mark.parametrize("statements", PLANTED.values(), ids=PLANTED.keys())
def test_service_role_cannot_plant_a_row_beside_the_sequencer(world: World, statements: list[str]) -> None:
    before = snapshot(world.ledger.dsn)
    error = run_as_service(world.ledger.dsn, *statements)
    assert isinstance(error, asyncpg.IntegrityConstraintViolationError), repr(error)
    assert error.sqlstate == INTEGRITY
    assert error.message.startswith("evidence-ledger: ")
    assert snapshot(world.ledger.dsn) == before
    # The log is not wedged: the next append is the next entry, and the whole log audits.
    with service(world.ledger, max_delay=0) as client:
        response = client.post(
            "/v1/entries", content=to_json(evidence(PIPELINE, n=2)), headers=world.appender
        )
        assert response.status_code == 201, response.text
        assert response.json()["index"] == 3
    code, output = run_cli("audit", "--dsn", world.ledger.dsn)
    assert code == 0, output


def forge_key_grant(world: World) -> None:
    """As the service role: register FORGED the way a derived table or a planted row would.

    Where a `key_events` table exists it gets a row (what the issue's insider did); in any
    case a key registration entry, signed by FORGED itself, is added with the head moved
    past it and a checkpoint row for the new size. Only the signatures are wrong.
    """
    record = KeyRegistered(FORGED.verifier().format(), "insider", ["appender", "admin"], [])
    envelope = sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(record), [FORGED])

    async def run() -> None:
        conn = await asyncpg.connect(world.ledger.dsn, server_settings={"role": APP_ROLE})
        try:
            async with conn.transaction():
                head = await conn.fetchrow("SELECT tree_size, last_leaf_hash, last_time FROM log_head")
                index = head["tree_size"]
                data = encode_entry(index, head["last_leaf_hash"], head["last_time"], envelope)
                if await conn.fetchval("SELECT to_regclass('key_events') IS NOT NULL"):
                    await conn.execute(
                        "INSERT INTO key_events (idx, kind, keyid, verifier, owner, roles) "
                        "VALUES (2, 'key.registered', $1, $2, 'insider', '{appender,admin}')",
                        FORGED.keyid,
                        FORGED.verifier().format(),
                    )
                    return
                await conn.execute(
                    "UPDATE log_head SET tree_size = $1, last_admin_entry = $2", index + 1, index
                )
                await conn.execute(
                    "INSERT INTO entries (idx, leaf_hash, data, integrated_at, signer_keyid, payload_type, "
                    "kind, statement_hash) VALUES ($1, $2, $3, now(), $4, $5, 'key.registered', $6)",
                    index,
                    leaf_hash(data),
                    data,
                    FORGED.keyid,
                    ADMIN_PAYLOAD_TYPE,
                    hashlib.sha256(data).digest(),
                )
                await conn.execute(
                    "INSERT INTO checkpoints (tree_size, root_hash, note) VALUES ($1, sha256('x'), 'bogus')",
                    index + 1,
                )
        finally:
            await conn.close()

    asyncio.run(run())


def test_a_key_granted_around_the_sequencer_is_never_trusted(world: World) -> None:
    with service(world.ledger, max_delay=0) as client:
        forge_key_grant(world)
        statement = to_json(evidence(FORGED, n=3))
        response = client.post("/v1/entries", content=statement, headers=world.appender)
        # Not appended: the key is unknown, or the log it would rest on does not verify.
        assert response.status_code in {422, 503}, response.text
        assert response.status_code != 201
        # Nor does any other append build on the forged head, or the checkpoint endpoint pass it on.
        honest = client.post("/v1/entries", content=to_json(evidence(PIPELINE, n=4)), headers=world.appender)
        body = check_error(honest, 503)
        assert "not signed by the ledger key" in str(body["detail"])
        assert "evledger audit" in str(body["detail"])
        checkpoint = client.get("/checkpoint", headers=world.appender)
        check_error(checkpoint, 503)
        assert "bogus" not in checkpoint.text
    code, output = run_cli("audit", "--dsn", world.ledger.dsn)
    assert code == 1, output
    assert "checkpoint at size 4" in output


def test_a_service_started_on_a_forged_log_refuses_to_start(world: World) -> None:
    forge_key_grant(world)
    app_error = None
    try:
        with service(world.ledger, max_delay=0):
            pass
    except Exception as exc:  # noqa: BLE001 - whatever the lifespan raised, checked below
        app_error = exc
    assert app_error is not None
    causes = [app_error, *getattr(app_error, "exceptions", [])]
    assert any("not signed by the ledger key" in str(cause) for cause in causes), causes


def test_statements_signed_by_a_known_key_still_append_after_a_refused_plant(world: World) -> None:
    # The control for the tests above: a refused plant leaves a working ledger behind.
    error = run_as_service(world.ledger.dsn, PLANTED["tile_past_the_head"][0])
    assert error is not None
    with service(world.ledger, max_delay=0) as client:
        for n in range(5, 8):
            body = msgspec.json.encode(evidence(PIPELINE, n=n))
            assert client.post("/v1/entries", content=body, headers=world.appender).status_code == 201
    code, output = run_cli("audit", "--dsn", world.ledger.dsn)
    assert code == 0, output


def test_serve_refuses_to_start_on_a_log_changed_around_the_ledger(world: World) -> None:
    forge_key_grant(world)
    command = [str(Path(sys.executable).with_name("evledger")), "serve", "--dsn", world.ledger.dsn]
    command += ["--key", str(world.ledger.key_path), "--port", str(free_port())]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "evledger: verification FAILED: the stored checkpoint at size 4 is not signed by the ledger key"
        in (done.stderr)
    )
    assert "Traceback" not in done.stdout + done.stderr
