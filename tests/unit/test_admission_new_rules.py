"""Rules for what is appended from now on (admission `AS_OF_NOW`), which the log's older entries predate.

An unknown predicate type under the ledger's own namespace is a typo that would otherwise be
generic evidence forever (issue #12): refused when appended, still readable when replayed.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from sequencer_support import LEDGER_KEY, ORIGIN

from ledger.append.batch import plan_batch
from ledger.append.bootstrap import genesis_request
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.errors import EncodingError
from ledger.records.predicates import APPROVAL, BASE
from ledger.rules.admission import AS_OF_NOW, admit
from ledger.rules.registry import KeyRegistry
from ledger.storage.protocol import Head


def registry() -> KeyRegistry:
    head = Head(ORIGIN, 0, (), bytes(32), "", -1)
    genesis = plan_batch(head, [genesis_request(LEDGER_KEY, "ledger")], KeyRegistry(), LEDGER_KEY,
                         datetime.now(UTC), genesis=True)  # fmt: skip
    return genesis.registry


def statement_of(predicate_type: str) -> bytes:
    return msgspec.json.encode(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "app.tar", "digest": {"sha256": "ab" * 32}}],
            "predicateType": predicate_type,
            "predicate": {"anything": 1},
        }
    )


@pytest.mark.parametrize("typo", [f"{BASE}/aproval/v1", f"{BASE}/approval/v2", f"{BASE}/test-runs/v1"])
def test_attack_a_typo_in_one_of_our_predicate_types_is_refused_when_appended(typo: str) -> None:
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, statement_of(typo), [LEDGER_KEY])
    with pytest.raises(EncodingError, match="none of the ledger's predicates") as caught:
        admit(envelope, registry(), AS_OF_NOW)
    assert APPROVAL.removeprefix(f"{BASE}/") in str(caught.value)  # the message lists the real ones


def test_an_entry_of_such_a_type_recorded_before_the_rule_still_replays() -> None:
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, statement_of(f"{BASE}/aproval/v1"), [LEDGER_KEY])
    assert admit(envelope, registry(), 1).kind == f"{BASE}/aproval/v1"


def test_other_namespaces_stay_generic_evidence() -> None:
    envelope = sign_envelope(
        INTOTO_PAYLOAD_TYPE, statement_of("https://example.test/custom/v1"), [LEDGER_KEY]
    )
    assert admit(envelope, registry(), AS_OF_NOW).kind == "https://example.test/custom/v1"
