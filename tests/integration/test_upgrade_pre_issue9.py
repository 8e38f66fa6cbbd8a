"""A ledger begun before issue #9 upgrades in place, and everything it recorded still verifies.

The fixture `fixtures/pre_issue9` was made with commit 5b774b4 (the last before #9):
`evledger demo` on a database, then, through that version's sequencer, one change
statement appended twice (entries 27 and 28: it refused no repeats) and an approval
without `signed_at` (entry 29), both to the open release 2.5-open. `ledger.sql.gz` is
`pg_dump --no-owner --inserts` of that database; the dossier is the one the demo exported
of the sealed release; `ledger.key` is that ledger's (test-only) key.

Its policy has no `[sealing]` section and its approvals no `signed_at`: both came with #9,
and a record signed before them must read exactly as it was signed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pre_issue9_support import (
    FIXTURE,
    OLD_SIZE,
    OPEN_RELEASE,
    REPEATED,
    UNDATED_APPROVAL,
    entry_envelope,
    ledger_key,
    resigned,
    restore,
)

from cli.dossier_cmd import load_and_verify
from ledger.append.appender import append_direct
from ledger.append.bootstrap import check_ledger_key, load_registry
from ledger.core.encoding import format_time
from ledger.core.keys import VerifierKey
from ledger.errors import EncodingError
from ledger.query.release_record import evaluate_release
from ledger.query.report import manifestation
from ledger.rules.registry import KeyRegistry
from ledger.storage.migrate import migrate
from ledger.storage.postgres import PostgresStore
from ledger.storage.postgres_index import PostgresEvidenceIndex
from ledger.verify.audit import audit_store


class Holder:
    """What `evaluate_release` needs of the service: the registry the log proves, and its key."""

    def __init__(self, registry: KeyRegistry, ledger_key: VerifierKey, origin: str) -> None:
        self.registry, self.ledger_key, self.origin = registry, ledger_key, origin


@pytest.fixture
def upgraded(fresh_dsn: str) -> str:
    asyncio.run(restore(fresh_dsn))
    applied = asyncio.run(migrate(fresh_dsn))
    assert applied[0] == "007_log_integrity.sql"  # the fixture stops before #9's migrations
    return fresh_dsn


def test_a_dossier_exported_before_issue9_still_verifies() -> None:
    _, report = load_and_verify(FIXTURE / "sealed-release.dossier.json", FIXTURE / "ledger.pub")
    assert report.completeness.sealed_at == 26
    assert report.compliance["status"] == "compliant"
    approvals = [text for e in report.events if e.kind == "approval" and (text := manifestation(e))]
    assert len(approvals) == 4
    assert all(", recorded 20" in text and "signed " not in text for text in approvals)


def test_an_old_ledger_migrates_and_its_whole_log_audits(upgraded: str) -> None:
    signer = ledger_key()

    async def scenario() -> None:
        await check_ledger_key(upgraded, signer)  # what `serve` and `init` check before starting
        store = await PostgresStore.connect(upgraded, min_size=1, max_size=2)
        try:
            head = await store.head()
            assert head is not None
            assert (head.tree_size, head.last_key_event, head.last_admin_entry) == (OLD_SIZE, 6, 7)
            report = await audit_store(store, signer.verifier(), progress=False)
            assert (report.tree_size, report.key_events) == (OLD_SIZE, 7)
            registry = await load_registry(store, signer.verifier())
            assert registry.applied_through == 7
            result, _ = await evaluate_release(
                store, PostgresEvidenceIndex(store.pool),
                Holder(registry, signer.verifier(), head.origin), *OPEN_RELEASE,
                environment=None, now=format_time(datetime.now(UTC)), before=OLD_SIZE,
            )  # fmt: skip
            assert UNDATED_APPROVAL in result.entries  # it counts, as made when it was recorded
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_statement_recorded_twice_before_the_upgrade_is_answered_with_its_first_entry(
    upgraded: str,
) -> None:
    signer = ledger_key()
    repeated = asyncio.run(entry_envelope(upgraded, REPEATED[1]))
    receipts = asyncio.run(append_direct(upgraded, signer, [repeated]))
    assert [r.index for r in receipts] == [REPEATED[0]]
    fresh = resigned(repeated, signer, change_id="CHG-after-upgrade")
    receipts = asyncio.run(append_direct(upgraded, signer, [fresh]))
    assert [r.index for r in receipts] == [OLD_SIZE]
    assert [r.index for r in asyncio.run(append_direct(upgraded, signer, [fresh]))] == [OLD_SIZE]


def test_a_new_approval_must_state_when_it_was_signed(upgraded: str) -> None:
    signer = ledger_key()
    old = asyncio.run(entry_envelope(upgraded, UNDATED_APPROVAL))
    undated = resigned(old, signer, comment="re-approved after the upgrade")
    with pytest.raises(EncodingError, match=r"must state when it was signed \(predicate.signed_at"):
        asyncio.run(append_direct(upgraded, signer, [undated]))
    dated = resigned(
        old, signer, comment="re-approved after the upgrade", signed_at=format_time(datetime.now(UTC))
    )
    assert [r.index for r in asyncio.run(append_direct(upgraded, signer, [dated]))] == [OLD_SIZE]

    async def audited() -> int:
        store = await PostgresStore.connect(upgraded, min_size=1, max_size=2)
        try:
            return (await audit_store(store, signer.verifier(), progress=False)).tree_size
        finally:
            await store.close()

    assert asyncio.run(audited()) == OLD_SIZE + 1
