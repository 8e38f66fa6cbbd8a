"""The monitor's decisions (ledger/verify/monitor*.py) on synthetic logs: each test is one attack.

Trees are built from random leaf hashes with the RFC's own recursion (reference_tree), checkpoints
signed with `ledger.core` and cosigned with cosignature/v1 keys; no tile, no network, no database.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator

import msgspec
import pytest
from reference_tree import ReferenceTree
from tsa_authority import LocalTsa, needs_openssl

from ledger.core.checkpoint import Checkpoint, sign_checkpoint
from ledger.core.cosignature import add_cosignatures, cosign
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.entry import GENESIS_PREV, encode_entry, parse_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import ALG_COSIGNATURE_V1, SignerKey
from ledger.core.note import parse_note
from ledger.errors import InputError, UnavailableError, VerificationError
from ledger.records import predicates
from ledger.rules.admission import Admitted
from ledger.rules.replay import ReplayedEntry
from ledger.verify import monitor as m
from ledger.verify import monitor_history as h
from ledger.verify import monitor_watch as w
from ledger.verify.trusted_time import check_response, load_tsa_certificates, timestamp_request
from ledger.verify.witness_policy import Witness, WitnessPolicy

ORIGIN = "ledger.test/monitor"
LEDGER = SignerKey.generate(ORIGIN)
VERIFIER = LEDGER.verifier()
W1 = SignerKey.generate("w1.test/witness", ALG_COSIGNATURE_V1)
W2 = SignerKey.generate("w2.test/witness", ALG_COSIGNATURE_V1)
W3 = SignerKey.generate("w3.test/witness", ALG_COSIGNATURE_V1)
POLICY = WitnessPolicy(
    tuple(Witness(k.name, k.verifier(), f"https://{k.name}") for k in (W1, W2, W3)), quorum=2
)


class Log:
    """A log of random leaves, able to sign its checkpoints and prove consistency, and a fork of it."""

    def __init__(self, size: int, base: Log | None = None, keep: int = 0) -> None:
        kept = list(base.tree.leaves[:keep]) if base else []
        self.tree = ReferenceTree(kept + [os.urandom(32) for _ in range(size - len(kept))])

    def checkpoint(self, size: int) -> Checkpoint:
        return Checkpoint(ORIGIN, size, self.tree.root(size))

    def note(self, size: int, signer: SignerKey = LEDGER, *cosigners: SignerKey) -> str:
        note = sign_checkpoint(self.checkpoint(size), signer)
        body = parse_note(note).text
        return (
            add_cosignatures(note, [cosign(body, w, 1_700_000_000) for w in cosigners]) if cosigners else note
        )

    def proof(self, first: int, second: int) -> list[bytes]:
        return self.tree.consistency_proof(first, second)


def history_at(log: Log, *sizes: int) -> h.MonitorHistory:
    """A history that accepted `log`'s checkpoints of `sizes`, in order, each proven to extend the last."""
    history = h.MonitorHistory(VERIFIER)
    for size in sizes:
        seen = m.observe(history, log.note(size), VERIFIER, None, log.proof)
        assert seen.alerts == ()
        assert seen.accepted is not None
        history.accept(seen.accepted)
    return history


def kinds(observation: m.Observation) -> list[str]:
    return [alert.kind for alert in observation.alerts]


# --- honest logs ---


def test_first_checkpoint_is_accepted_on_first_use():
    log = Log(10)
    seen = m.observe(h.MonitorHistory(VERIFIER), log.note(10), VERIFIER)
    assert seen.alerts == ()
    assert seen.accepted is not None
    assert seen.accepted.checkpoint == log.checkpoint(10)


def test_growing_log_with_a_valid_consistency_proof_is_accepted():
    log = Log(40)
    history = history_at(log, 3, 17)
    asked: list[tuple[int, int]] = []

    def fetch(first: int, second: int) -> list[bytes]:
        asked.append((first, second))
        return log.proof(first, second)

    seen = m.observe(history, log.note(40), VERIFIER, None, fetch)
    assert seen.alerts == ()
    assert asked == [(17, 40)]
    assert seen.accepted is not None
    history.accept(seen.accepted)
    assert sorted(history.roots) == [3, 17, 40]


def test_same_checkpoint_again_is_unchanged_and_not_accepted_twice():
    log = Log(9)
    history = history_at(log, 9)
    seen = m.observe(history, log.note(9), VERIFIER, None, log.proof)
    assert seen.alerts == ()
    assert seen.unchanged
    assert seen.accepted is None


# --- attacks on the history ---


def test_rollback_to_a_smaller_tree_is_a_rollback():
    log = Log(20)
    history = history_at(log, 8, 20)
    seen = m.observe(history, log.note(12), VERIFIER, None, log.proof)
    assert kinds(seen) == [h.ROLLBACK]
    assert seen.accepted is None
    alert = seen.alerts[0]
    assert (alert.expected, alert.calculated) == ("20", "12")
    assert alert.evidence["earlier_note"] == log.note(20)


def test_rollback_to_a_size_seen_before_with_another_root_is_also_a_split_view():
    log = Log(20)
    fork = Log(20, base=log, keep=5)
    history = history_at(log, 8, 20)
    seen = m.observe(history, fork.note(8), VERIFIER, None, fork.proof)
    assert kinds(seen) == [h.SPLIT_VIEW, h.ROLLBACK]


def test_same_size_with_another_root_is_a_split_view():
    log = Log(16)
    fork = Log(16, base=log, keep=15)
    history = history_at(log, 16)
    seen = m.observe(history, fork.note(16), VERIFIER, None, fork.proof)
    assert kinds(seen) == [h.SPLIT_VIEW]
    alert = seen.alerts[0]
    assert alert.expected == log.tree.root(16).hex()
    assert alert.calculated == fork.tree.root(16).hex()
    assert alert.evidence["earlier_note"] == log.note(16)
    assert seen.accepted is None


def test_larger_fork_whose_honest_proof_cannot_link_to_the_accepted_tree_is_a_split_view():
    log = Log(30)
    fork = Log(30, base=log, keep=10)  # shares the first 10 leaves, not the first 16
    history = history_at(log, 16)
    seen = m.observe(history, fork.note(30), VERIFIER, None, fork.proof)
    assert kinds(seen) == [h.SPLIT_VIEW]
    assert "does not extend the tree of size 16" in seen.alerts[0].message


def test_tampered_consistency_proof_is_a_split_view():
    log = Log(30)
    history = history_at(log, 13)
    proof = log.proof(13, 30)
    proof[0] = bytes(32)
    seen = m.observe(history, log.note(30), VERIFIER, None, proof)
    assert kinds(seen) == [h.SPLIT_VIEW]


def test_missing_consistency_proof_is_a_split_view():
    log = Log(30)
    history = history_at(log, 13)
    assert kinds(m.observe(history, log.note(30), VERIFIER, None, [])) == [h.SPLIT_VIEW]


def test_malformed_proof_from_the_server_is_a_split_view_but_an_unreachable_one_is_no_verdict():
    log = Log(30)
    history = history_at(log, 13)

    def malformed(_first: int, _second: int) -> list[bytes]:
        raise VerificationError("the server's consistency proof is malformed")

    def unreachable(_first: int, _second: int) -> list[bytes]:
        raise UnavailableError("cannot reach the ledger")

    assert kinds(m.observe(history, log.note(30), VERIFIER, None, malformed)) == [h.SPLIT_VIEW]
    with pytest.raises(UnavailableError):
        m.observe(history, log.note(30), VERIFIER, None, unreachable)


# --- attacks on the signature ---


def test_checkpoint_signed_by_another_key_is_a_bad_signature():
    impostor = SignerKey.generate(ORIGIN)
    seen = m.observe(h.MonitorHistory(VERIFIER), Log(4).note(4, impostor), VERIFIER)
    assert kinds(seen) == [h.BAD_SIGNATURE]
    assert seen.accepted is None
    assert seen.checkpoint is None


def test_checkpoint_with_an_altered_size_is_a_bad_signature():
    note = Log(4).note(4).replace(f"{ORIGIN}\n4\n", f"{ORIGIN}\n5\n", 1)
    assert kinds(m.observe(h.MonitorHistory(VERIFIER), note, VERIFIER)) == [h.BAD_SIGNATURE]


def test_garbage_instead_of_a_checkpoint_is_a_bad_signature():
    assert kinds(m.observe(h.MonitorHistory(VERIFIER), b"<html>oops</html>", VERIFIER)) == [h.BAD_SIGNATURE]


def test_checkpoint_of_another_log_under_the_same_key_is_a_bad_signature():
    log = Log(5)
    history = history_at(log, 3)
    other = sign_checkpoint(Checkpoint("another.test/log", 5, log.tree.root(5)), LEDGER)
    seen = m.observe(history, other, VERIFIER, None, log.proof)
    assert kinds(seen) == [h.BAD_SIGNATURE]
    assert "another log" in seen.alerts[0].message


# --- witnesses ---


def test_quorum_met_is_accepted():
    log = Log(6)
    seen = m.observe(h.MonitorHistory(VERIFIER), log.note(6, LEDGER, W1, W3), VERIFIER, POLICY)
    assert seen.alerts == ()
    assert seen.accepted is not None


def test_one_cosignature_of_two_required_is_a_missing_quorum():
    log = Log(6)
    seen = m.observe(h.MonitorHistory(VERIFIER), log.note(6, LEDGER, W2), VERIFIER, POLICY)
    assert kinds(seen) == [h.MISSING_QUORUM]
    assert (seen.alerts[0].expected, seen.alerts[0].calculated) == ("2", "1")
    assert seen.accepted is None


def test_cosignatures_by_witnesses_outside_the_policy_do_not_count():
    stranger = SignerKey.generate("stranger.test/witness", ALG_COSIGNATURE_V1)
    log = Log(6)
    seen = m.observe(h.MonitorHistory(VERIFIER), log.note(6, LEDGER, W1, stranger), VERIFIER, POLICY)
    assert kinds(seen) == [h.MISSING_QUORUM]


def test_forged_witness_line_is_a_bad_signature():
    log = Log(6)
    other_body = Log(6).checkpoint(6).text()  # a cosignature W2 made for another tree of this size
    forged = log.note(6, LEDGER, W1) + cosign(other_body, W2, 1_700_000_000)
    seen = m.observe(h.MonitorHistory(VERIFIER), forged, VERIFIER, POLICY)
    assert kinds(seen) == [h.BAD_SIGNATURE]
    assert "does not verify" in seen.alerts[0].message
    assert seen.accepted is None


def test_missing_quorum_does_not_hide_a_split_view():
    log = Log(8)
    fork = Log(8, base=log, keep=7)
    history = history_at(log, 8)
    seen = m.observe(history, fork.note(8, LEDGER, W1), VERIFIER, POLICY)
    assert kinds(seen) == [h.MISSING_QUORUM, h.SPLIT_VIEW]


# --- the history file ---


def test_history_survives_a_save_and_load_and_still_catches_a_split_view():
    log = Log(20)
    history = history_at(log, 4, 11)
    text = history.header_line() + "".join(
        h.AcceptedCheckpoint(log.checkpoint(size), log.note(size)).to_json_line() for size in (4, 11)
    )
    loaded = h.MonitorHistory.loads(text, VERIFIER)
    assert loaded.roots == history.roots
    assert loaded.origin == ORIGIN
    assert loaded.latest is not None
    assert loaded.latest.checkpoint.size == 11
    fork = Log(20, base=log, keep=3)
    assert kinds(m.observe(loaded, fork.note(4), VERIFIER, None, fork.proof)) == [h.SPLIT_VIEW, h.ROLLBACK]
    assert h.MonitorHistory.loads(loaded.dumps(), VERIFIER).roots == history.roots


def test_history_with_a_line_cut_short_by_a_crash_drops_that_line():
    log = Log(20)
    line = h.AcceptedCheckpoint(log.checkpoint(11), log.note(11)).to_json_line()
    history = h.MonitorHistory(VERIFIER)
    text = history.header_line() + h.AcceptedCheckpoint(log.checkpoint(4), log.note(4)).to_json_line()
    loaded = h.MonitorHistory.loads(text + line[:40], VERIFIER)
    assert sorted(loaded.roots) == [4]


def test_history_kept_for_another_ledger_key_is_refused():
    text = h.MonitorHistory(SignerKey.generate("other.test/ledger").verifier()).header_line()
    with pytest.raises(InputError, match="was kept for ledger key"):
        h.MonitorHistory.loads(text, VERIFIER)


def test_history_line_whose_note_was_swapped_is_refused():
    log = Log(20)
    record = json.loads(h.AcceptedCheckpoint(log.checkpoint(11), log.note(11)).to_json_line())
    record["root"] = log.tree.root(10).hex()
    text = h.MonitorHistory(VERIFIER).header_line() + json.dumps(record) + "\n"
    with pytest.raises(InputError, match="not the checkpoint the line names"):
        h.MonitorHistory.loads(text, VERIFIER)


def test_history_going_backwards_is_refused():
    log = Log(20)
    lines = [h.AcceptedCheckpoint(log.checkpoint(s), log.note(s)).to_json_line() for s in (11, 4)]
    with pytest.raises(InputError, match="does not follow"):
        h.MonitorHistory.loads(h.MonitorHistory(VERIFIER).header_line() + "".join(lines), VERIFIER)


# --- anchors (RFC 3161 timestamps; the tokens are checked by ledger.verify.anchoring) ---


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTsa]:
    """An authority made with openssl, not served: its tokens come from `reply`."""
    authority = LocalTsa("Monitor Test TSA")
    try:
        yield authority
    finally:
        authority.close()


def stamp(tsa: LocalTsa, note: str) -> bytes:
    request = timestamp_request(parse_note(note).text)
    return check_response(tsa.reply(request), request)


def anchors(note: str, *tokens: bytes) -> bytes:
    return msgspec.json.encode(
        {"tree_size": 6, "checkpoint": note, "timestamps": [base64.b64encode(t).decode() for t in tokens]}
    )


def test_anchors_of_another_tree_of_the_same_size_are_a_split_view():
    log, fork = Log(6), Log(6)
    report = m.check_anchors(anchors(fork.note(6)), log.checkpoint(6), VERIFIER, [])
    assert [a.kind for a in report.alerts] == [h.SPLIT_VIEW]


def test_anchors_document_of_another_shape_is_a_bad_timestamp():
    log = Log(6)
    body = msgspec.json.encode({"tree_size": 6, "checkpoint": log.note(6)})  # no "timestamps"
    report = m.check_anchors(body, log.checkpoint(6), VERIFIER, [])
    assert [a.kind for a in report.alerts] == [h.BAD_TIMESTAMP]
    assert "malformed" in report.alerts[0].message


@needs_openssl
def test_timestamp_token_by_the_trusted_tsa_gives_its_time(tsa):
    log = Log(6)
    note = log.note(6, LEDGER, W1)
    trusted = load_tsa_certificates(tsa.ca_pem)
    report = m.check_anchors(anchors(note, stamp(tsa, note)), log.checkpoint(6), VERIFIER, trusted)
    assert report.alerts == ()
    [(authority, _)] = report.times
    assert tsa.name in authority


@needs_openssl
def test_timestamp_token_that_is_not_one_is_a_bad_timestamp(tsa):
    log = Log(6)
    trusted = load_tsa_certificates(tsa.ca_pem)
    report = m.check_anchors(
        anchors(log.note(6), b"not a TimeStampResp"), log.checkpoint(6), VERIFIER, trusted
    )
    assert [a.kind for a in report.alerts] == [h.BAD_TIMESTAMP]
    assert "timestamp token #1" in report.alerts[0].message
    assert "malformed" in report.alerts[0].message


@needs_openssl
def test_timestamp_token_of_another_checkpoint_is_a_bad_timestamp(tsa):
    log = Log(7)
    trusted = load_tsa_certificates(tsa.ca_pem)
    token = stamp(tsa, log.note(7))
    report = m.check_anchors(anchors(log.note(6), token), log.checkpoint(6), VERIFIER, trusted)
    assert [a.kind for a in report.alerts] == [h.BAD_TIMESTAMP]
    assert "timestamp token #1" in report.alerts[0].message


def test_anchors_without_timestamps_are_no_alert():
    # A ledger stamps a checkpoint after publishing it: no token yet is no misbehaviour.
    log = Log(6)
    report = m.check_anchors(anchors(log.note(6, LEDGER, W1)), log.checkpoint(6), VERIFIER, [])
    assert report == m.TimestampReport((), ())


# --- watched entries ---


def gate_decision_entry(decision: str) -> ReplayedEntry:
    signer = SignerKey.generate("gate.test/ledger")
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "artifact", "digest": {"sha256": "ab" * 32}}],
        "predicateType": predicates.GATE_DECISION,
        "predicate": {"decision": decision, "release": {"product": "prod", "version": "1.0"}},
    }
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, msgspec.json.encode(statement), [signer])
    data = encode_entry(7, GENESIS_PREV, "2026-03-02T09:00:00.000Z", envelope)
    admitted = Admitted(envelope, predicates.GATE_DECISION, "prod", "1.0", (), None, (signer.verifier(),))
    return ReplayedEntry(parse_entry(data), leaf_hash(data), admitted)


def test_watch_reports_a_denying_gate_decision_but_not_an_allowing_one():
    denied = w.watch_matches(gate_decision_entry("deny"), [w.GATE_DENY])
    assert [(w.index, w.kind) for w in denied] == [(7, w.GATE_DENY)]
    assert "prod 1.0" in denied[0].description
    assert w.watch_matches(gate_decision_entry("allow"), [w.GATE_DENY]) == []
    assert [w.kind for w in w.watch_matches(gate_decision_entry("allow"), ["gate-decision"])] == [
        "gate-decision"
    ]


def test_unknown_watch_kind_is_refused():
    assert w.check_watch_kinds(["key.revoked", "exception", "key.revoked"]) == ("key.revoked", "exception")
    with pytest.raises(InputError, match="unknown watch kind"):
        w.check_watch_kinds(["key-rotation"])
