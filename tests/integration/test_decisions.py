"""Decisions rest on everything acknowledged, and a person's decision is recorded once (issue #9).

Against a live `evledger serve` with two workers, on real PostgreSQL:
- a gate asked right after a rejection was acknowledged (on any worker) denies, and its
  ledger-signed decision never lands after evidence it did not consider;
- a signed statement sent again is answered with the entry that records it, never recorded
  twice, so a replayed approval cannot undo a rejection; nor can an older approval that
  reaches the log late; only a decision signed later can.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import msgspec
import pytest
from ledger_harness import Ledger, evidence, init_ledger, live_server, to_json, token
from release_support import ARTIFACT, PRODUCT, append, decision, gate, post, set_up
from service_support import scratch_database
from story_support import signed

from ledger.records import predicates as p

ROUNDS = 30


@dataclass(frozen=True)
class Live:
    url: str
    ledger: Ledger
    admin: str
    appender: str


@pytest.fixture(scope="module")
def live(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with scratch_database(pg_server_dsn) as dsn:
        ledger = init_ledger(dsn, tmp_path_factory.mktemp("decisions"))
        admin, appender = token(dsn, "admin"), token(dsn, "appender", [PRODUCT])
        with live_server(ledger, workers=2) as url:
            yield Live(url, ledger, admin, appender)


def test_a_gate_asked_right_after_a_rejection_denies_on_any_worker(live: Live) -> None:
    people = set_up(live.url, live.ledger, live.admin, live.appender, "1.0")
    append(live.url, live.appender, decision(people, "1.0", "approved", "first look"))
    assert gate(live.url, live.appender, "1.0")["decision"] == "allow"
    for round_number in range(ROUNDS):
        rejected = append(
            live.url, live.appender, decision(people, "1.0", "rejected", f"round {round_number}")
        )
        answer = gate(live.url, live.appender, "1.0")
        assert answer["decision"] == "deny", (round_number, answer["compliance"])
        receipt = answer["receipt"]
        assert isinstance(receipt, dict)
        assert receipt["index"] > rejected["index"]
        approved = append(
            live.url, live.appender, decision(people, "1.0", "approved", f"round {round_number}")
        )
        answer = gate(live.url, live.appender, "1.0")
        assert answer["decision"] == "allow", (round_number, answer["compliance"])
        assert answer["receipt"]["index"] > approved["index"]  # type: ignore[index]


def test_a_replayed_approval_is_answered_with_its_entry_and_undoes_no_rejection(live: Live) -> None:
    people = set_up(live.url, live.ledger, live.admin, live.appender, "2.0")
    approval = decision(people, "2.0", "approved", "looks fine")
    original = append(live.url, live.appender, approval)
    append(live.url, live.appender, decision(people, "2.0", "rejected", "found a defect"))
    size = _size(live)
    again = post(live.url, live.appender, "/v1/entries", to_json(approval))
    assert again.status_code == 200, again.text
    assert again.json() == original  # the original receipt, byte for byte: same entry, checkpoint, proof
    assert _size(live) == size
    assert gate(live.url, live.appender, "2.0")["decision"] == "deny"


def test_an_approval_signed_before_a_rejection_and_recorded_after_it_does_not_undo_it(live: Live) -> None:
    people = set_up(live.url, live.ledger, live.admin, live.appender, "3.0")
    held_back = decision(people, "3.0", "approved", "signed first, sent last")
    time.sleep(0.01)  # signing times have millisecond precision; equal ones fall back to log order
    append(live.url, live.appender, decision(people, "3.0", "rejected", "signed second"))
    append(live.url, live.appender, held_back)  # a new statement: recorded, but made before the rejection
    assert gate(live.url, live.appender, "3.0")["decision"] == "deny"
    append(live.url, live.appender, decision(people, "3.0", "approved", "signed third"))
    assert gate(live.url, live.appender, "3.0")["decision"] == "allow"


def test_a_batch_of_copies_of_one_envelope_is_refused_whole(live: Live) -> None:
    envelope = msgspec.to_builtins(evidence(live.ledger.signer, product=PRODUCT, n=4242))
    size = _size(live)
    body = msgspec.json.encode({"envelopes": [envelope] * 1000})
    response = post(live.url, live.admin, "/v1/entries/batch", body)
    assert response.status_code == 422, response.text
    assert "the same signed statement twice" in response.json()["detail"]
    assert _size(live) == size


def test_a_batch_of_recorded_statements_gets_their_receipts_and_a_mixed_one_is_refused(live: Live) -> None:
    first, second, fresh = (evidence(live.ledger.signer, product=PRODUCT, n=n) for n in (5151, 5152, 5153))
    recorded = post(live.url, live.admin, "/v1/entries/batch", _batch(first, second))
    assert recorded.status_code == 201, recorded.text
    size = _size(live)
    again = post(live.url, live.admin, "/v1/entries/batch", _batch(first, second))
    assert again.status_code == 200, again.text
    assert again.json() == recorded.json()
    mixed = post(live.url, live.admin, "/v1/entries/batch", _batch(fresh, first))
    assert mixed.status_code == 409, mixed.text
    assert "envelopes[1] as entry" in mixed.json()["detail"]
    assert _size(live) == size


def test_the_same_envelope_sent_concurrently_is_recorded_once(live: Live) -> None:
    envelope = to_json(evidence(live.ledger.signer, product=PRODUCT, n=6161))
    size = _size(live)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(live.url, live.admin, "/v1/entries", envelope), range(16)))
    assert sorted(a.status_code for a in answers) == [200] * 15 + [201], [a.text for a in answers]
    assert len({a.json()["index"] for a in answers}) == 1
    assert len({a.content for a in answers}) == 1  # every answer is the one receipt
    assert _size(live) == size + 1


def _batch(*envelopes: object) -> bytes:
    return msgspec.json.encode({"envelopes": [msgspec.to_builtins(e) for e in envelopes]})


def _size(live: Live) -> int:
    response = httpx.get(
        f"{live.url}/checkpoint", headers={"Authorization": f"Bearer {live.admin}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return int(response.text.split("\n")[1])


def test_only_a_key_with_a_sealing_role_may_seal_a_release(live: Live) -> None:
    people = set_up(live.url, live.ledger, live.admin, live.appender, "4.0")
    timeline = httpx.get(
        f"{live.url}/v1/releases/{PRODUCT}/4.0/timeline",
        headers={"Authorization": f"Bearer {live.appender}"},
        timeout=30,
    ).json()
    head = timeline["head"]
    sealing = p.Seal(p.Release(PRODUCT, "4.0"), timeline["count"], head["leaf_hash"])
    refused = post(
        live.url,
        live.appender,
        "/v1/entries",
        to_json(signed(people.pipeline, p.RELEASE_SEAL, sealing, ARTIFACT)),
    )
    assert refused.status_code == 403, refused.text
    assert "role release-manager" in refused.json()["detail"]
    sealed = append(live.url, live.appender, signed(people.manager, p.RELEASE_SEAL, sealing, ARTIFACT))
    assert sealed["index"] == head["index"] + 1
