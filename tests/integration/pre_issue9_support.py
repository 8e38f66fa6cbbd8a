"""The ledger made before issue #9 (`fixtures/pre_issue9`), as tests of upgrades restore it.

The fixture was made with commit 5b774b4 (the last before #9): `evledger demo` on a database,
then one change statement appended twice (entries 27 and 28) and an approval without
`signed_at` (entry 29), both to the open release 2.5-open. `ledger.sql.gz` is
`pg_dump --no-owner --inserts` of that database; `ledger.key` is that ledger's (test-only) key.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import asyncpg

from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, Envelope, envelope_payload, sign_envelope
from ledger.core.entry import parse_entry
from ledger.core.keys import SignerKey, parse_signer_key

FIXTURE = Path(__file__).parent / "fixtures" / "pre_issue9"
OLD_SIZE = 30
REPEATED = (27, 28)  # one change statement, recorded twice before #9
UNDATED_APPROVAL = 29
OPEN_RELEASE = ("ivd-analyzer", "2.5-open")
_SERVICE_ROLE = """DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'evledger_app') THEN
        CREATE ROLE evledger_app NOLOGIN;
    END IF;
END $$"""


def ledger_key() -> SignerKey:
    return parse_signer_key((FIXTURE / "ledger.key").read_text(encoding="utf-8"))


async def restore(dsn: str) -> None:
    """The old database as that version left it (its grants name the service role: made if missing)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(_SERVICE_ROLE)
        await conn.execute(gzip.decompress((FIXTURE / "ledger.sql.gz").read_bytes()).decode())
    finally:
        await conn.close()


async def entry_envelope(dsn: str, index: int) -> Envelope:
    conn = await asyncpg.connect(dsn)
    try:
        data: bytes = await conn.fetchval("SELECT data FROM entries WHERE idx = $1", index)
    finally:
        await conn.close()
    return parse_entry(data).envelope


def resigned(envelope: Envelope, signer: SignerKey, **predicate: object) -> Envelope:
    """The envelope's statement with `predicate` fields changed, signed again by `signer`."""
    statement = json.loads(envelope_payload(envelope))
    statement["predicate"].update(predicate)
    return sign_envelope(INTOTO_PAYLOAD_TYPE, json.dumps(statement, sort_keys=True).encode(), [signer])
