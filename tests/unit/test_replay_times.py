"""Verifiers refuse entry times from the future (issue #9): a ledger whose clock leapt ahead.

The log is written by the real planner (`ledger.append.batch.plan_batch`), so every other
check passes: only the time tells.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sequencer_support import LEDGER_KEY, ORIGIN, evidence

from ledger.append.batch import PendingRequest, plan_batch
from ledger.append.bootstrap import genesis_request
from ledger.errors import VerificationError
from ledger.rules.admission import AS_OF_NOW, admit
from ledger.rules.registry import KeyRegistry
from ledger.rules.replay import FUTURE_TOLERANCE, LogReplayer, latest_plausible_time
from ledger.storage.protocol import Head


def two_entries(second_at: datetime) -> list[bytes]:
    """Entry 0 (the ledger key's registration) now, and evidence signed by the ledger key at `second_at`."""
    head = Head(ORIGIN, 0, (), bytes(32), "", -1)
    genesis = plan_batch(head, [genesis_request(LEDGER_KEY, "ledger")], KeyRegistry(), LEDGER_KEY,
                         datetime.now(UTC), genesis=True)  # fmt: skip
    assert genesis.write is not None
    item = admit(evidence(LEDGER_KEY, 1), genesis.registry, AS_OF_NOW)
    later = plan_batch(genesis.write.head, [PendingRequest([item])], genesis.registry, LEDGER_KEY, second_at)
    assert later.write is not None
    return [e.data for e in genesis.write.entries + later.write.entries]


def test_an_entry_stamped_within_the_tolerance_ahead_is_accepted() -> None:
    replayer = LogReplayer(not_after=latest_plausible_time())
    for data in two_entries(datetime.now(UTC) + FUTURE_TOLERANCE - timedelta(seconds=5)):
        replayer.check(data)


def test_an_entry_stamped_years_ahead_is_refused_naming_it() -> None:
    replayer = LogReplayer(not_after=latest_plausible_time())
    first, second = two_entries(datetime.now(UTC) + timedelta(days=3652))
    replayer.check(first)
    with pytest.raises(VerificationError, match="entry 1: it is stamped in the future") as caught:
        replayer.check(second)
    assert caught.value.calculated > latest_plausible_time()


def test_without_a_bound_the_replayer_checks_no_clock() -> None:
    # The callers choose: verify-log and audit pass a bound from the verifier's own clock.
    replayer = LogReplayer()
    for data in two_entries(datetime.now(UTC) + timedelta(days=3652)):
        replayer.check(data)
