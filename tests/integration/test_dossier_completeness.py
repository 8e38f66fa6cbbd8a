"""What a verified dossier proves about its release being complete (issue #9, item 7).

A release's chain links each event back to the one before it, so no event can
be left out of the middle of a dossier. Nothing links forward, though: without
more, its newest events could be dropped. The checkpoint's completeness index
(issue #13) names the chain's head, so a dossier of an open release is proven
complete at its checkpoint, and one that drops its newest event, or a sealed
release's dossier that drops its seal, fails. A dossier under a checkpoint
signed before the index still verifies as before: complete only up to the last
event shown, which `evledger verify` and the printed record say.

The story is played once against a live server; its dossier before the
exception (open) and at the end (sealed) are edited in memory. Forged seals
(which the sequencer refuses to write) come from ForgedLog, with the ledger key.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from forged_log import ForgedLog
from ledger_harness import register
from story_support import LiveLedger, Played, evledger, live_ledger, play_story, signed

from cli import story as s
from cli.demo import POLICY_FILE
from ledger.core.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, sign_envelope
from ledger.core.entry import ChainLink, ReleaseLink, parse_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.errors import ChainError, VerificationError
from ledger.records import predicates as p
from ledger.records.admin import encode_policy_record
from ledger.records.policy import load_policy_toml
from ledger.rules.admission import Admitted
from ledger.rules.chains import Chains
from ledger.verify.compliance_claim import recompute
from ledger.verify.dossier import Dossier, verify_dossier

VERSION = "3.2.0"
Data = dict[str, Any]


@dataclass(frozen=True)
class Story:
    live: LiveLedger
    played: Played
    sealed: bytes  # the dossier at the end: sealed, compliant
    open: bytes  # the dossier before the exception: open

    @property
    def pub(self) -> str:
        return str(self.live.ledger.pub_path)


@pytest.fixture(scope="module")
def story(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    with live_ledger(pg_server_dsn, tmp_path_factory.mktemp("completeness")) as live:
        played = play_story(live, VERSION)
        with live.admin() as client:
            sealed = client.get(f"/v1/releases/{s.PRODUCT}/{VERSION}/dossier").content
        yield Story(live, played, sealed, played.early_dossier)


def _chained(item: Data) -> ReleaseLink | None:
    return parse_entry(base64.b64decode(item["entry"])).release


def _last_event(data: Data) -> tuple[int, int, str]:
    """(index, seq, time) of the newest release-chain event in a dossier."""
    item = [i for i in data["entries"] if _chained(i) is not None][-1]
    entry = parse_entry(base64.b64decode(item["entry"]))
    assert entry.release is not None
    return entry.index, entry.release.seq, entry.time


def _drop_newest_event(raw: bytes) -> Data:
    data: Data = json.loads(raw)
    newest = max(i for i, item in enumerate(data["entries"]) if _chained(item) is not None)
    del data["entries"][newest]
    return data


def _verify(tmp_path: Path, story: Story, data: Data | bytes, *extra: str) -> Any:
    path = tmp_path / "release.dossier.json"
    path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    return evledger("verify", str(path), "--key", story.pub, *extra)


def _open_statement(index: int, seq: int, time: str, size: int) -> str:
    return (
        f"OPEN (not sealed): completeness is proven only up to the last event shown, entry {index} "
        f"(event {seq} of the release, counted from 0, recorded {time}). "
        f"Later events of this release under the checkpoint of {size:,} entries may exist "
        "and are not proven absent."
    )


def _tree_size(data: Data) -> int:
    return int(data["checkpoint"].split("\n")[1])


def _indexed_statement(data: Data) -> str:
    index, seq, _ = _last_event(data)
    size = _tree_size(data)
    return (
        f"complete at checkpoint {size}: {seq + 1} of {seq + 1} events. The completeness index committed "
        f"by the checkpoint of {size:,} entries counts {seq + 1} events of the release, entry {index} the "
        "newest, and the dossier holds every one of them. The release is not sealed: events recorded "
        "after that checkpoint may join it."
    )


def _resigned_checkpoint(story: Story, data: Data, extensions: tuple[str, ...]) -> Data:
    """The dossier with its checkpoint signed again by the ledger key, carrying `extensions` instead."""
    genuine = open_checkpoint(data["checkpoint"], story.live.ledger.signer.verifier())
    forged = Checkpoint(genuine.origin, genuine.size, genuine.root_hash, extensions)
    return {**data, "checkpoint": sign_checkpoint(forged, story.live.ledger.signer)}


def test_an_open_release_is_proven_complete_at_its_checkpoint(story: Story, tmp_path: Path) -> None:
    data = json.loads(story.open)
    result = _verify(tmp_path, story, story.open)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    _, seq, _ = _last_event(data)
    headline = f"complete at checkpoint {_tree_size(data)}: {seq + 1} of {seq + 1} events (not sealed)"
    assert lines[0] == f"dossier of {s.PRODUCT} {VERSION}: VERIFIED, {headline}"
    assert lines[-1] == _indexed_statement(data)
    report = json.loads(_verify(tmp_path, story, story.open, "--json").output)
    assert (report["completeness"]["complete"], report["completeness"]["indexed"]) == (True, True)
    assert report["sealed"] is False  # complete at the checkpoint, yet still open to new events
    assert _verify(tmp_path, story, story.open, "--require-sealed").exit_code == 1


def test_attack_an_open_release_with_its_newest_event_removed_fails(story: Story, tmp_path: Path) -> None:
    original = json.loads(story.open)
    data = _drop_newest_event(story.open)
    removed, now_last = _last_event(original), _last_event(data)
    result = _verify(tmp_path, story, data)
    assert result.exit_code == 1, result.output
    assert (
        f"the completeness index of checkpoint {_tree_size(data)} counts {removed[1] + 1} events ending "
        f"at entry {removed[0]}, the dossier holds {now_last[1] + 1} ending at entry {now_last[0]}"
    ) in result.output


def test_the_intact_sealed_release_is_complete_and_passes_require_sealed(
    story: Story, tmp_path: Path
) -> None:
    seal_index, seal_seq, _ = _last_event(json.loads(story.sealed))
    result = _verify(tmp_path, story, story.sealed, "--require-sealed")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"dossier of {s.PRODUCT} {VERSION}: VERIFIED, sealed at entry {seal_index}: complete"
    assert f"  ok  release seal at entry {seal_index} commits to the chain before it" in lines
    assert lines[-1] == (
        f"sealed at entry {seal_index}: complete. The seal commits to the {seal_seq} release events "
        "before it, and no event can join the release after it."
    )
    report = json.loads(_verify(tmp_path, story, story.sealed, "--require-sealed", "--json").output)
    assert (report["ok"], report["sealed"]) == (True, True)
    assert (report["completeness"]["complete"], report["completeness"]["sealed_at"]) == (True, seal_index)


def test_attack_a_sealed_release_with_its_seal_removed_fails(story: Story, tmp_path: Path) -> None:
    data = _drop_newest_event(story.sealed)
    result = _verify(tmp_path, story, data)
    assert result.exit_code == 1, result.output
    assert "the release's events in the dossier are not all of them" in result.output


def test_attack_a_dossier_without_its_index_proof_fails(story: Story, tmp_path: Path) -> None:
    data = {**json.loads(story.open), "index_proof": None}
    result = _verify(tmp_path, story, data)
    assert result.exit_code == 1, result.output
    assert "commits to a completeness index, but the dossier carries no index proof" in result.output


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda proof: proof[:-2] + ("A" if proof[-2] != "A" else "B") + proof[-1:], "is malformed"),
        (lambda proof: proof[:8], "is malformed"),  # not a whole proof
        (lambda proof: "!" + proof[1:], "is malformed"),  # not base64
    ],
)
def test_attack_a_dossier_with_a_mangled_index_proof_fails_with_exit_1(
    story: Story, tmp_path: Path, damage: Callable[[str], str], message: str
) -> None:
    opened = json.loads(story.open)
    result = _verify(tmp_path, story, {**opened, "index_proof": damage(opened["index_proof"])})
    assert result.exit_code == 1, result.output
    assert (
        f"the dossier's index proof {message}" in result.output
        or "does not lead to the index root" in result.output
    )


def test_attack_a_stale_index_root_is_caught(story: Story, tmp_path: Path) -> None:
    """The sealed dossier under a checkpoint whose index line is the earlier, open one's (ledger-signed)."""
    early, late = json.loads(story.open), json.loads(story.sealed)
    stale_line = open_checkpoint(early["checkpoint"], story.live.ledger.signer.verifier()).extensions
    forged = _resigned_checkpoint(story, late, stale_line)
    for proof in (early["index_proof"], late["index_proof"]):  # the old head's proof, or the new one
        result = _verify(tmp_path, story, {**forged, "index_proof": proof})
        assert result.exit_code == 1, result.output
        assert "verification FAILED" in result.output


def test_a_dossier_under_a_checkpoint_without_the_index_verifies_as_before(
    story: Story, tmp_path: Path
) -> None:
    """A checkpoint signed before a ledger had the index (no evledger-index line): completeness is
    proven only up to the last event shown, and a dropped newest event cannot be told."""
    genuine = open_checkpoint(json.loads(story.open)["checkpoint"], story.live.ledger.signer.verifier())
    old = {**_resigned_checkpoint(story, json.loads(story.open), genuine.extensions[:1]), "index_proof": None}
    statement = _open_statement(*_last_event(old), _tree_size(old))
    result = _verify(tmp_path, story, old)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    headline = "OPEN (not sealed): completeness proven only up to the last event shown"
    assert lines[0] == f"dossier of {s.PRODUCT} {VERSION}: VERIFIED, {headline}"
    assert lines[-1] == statement
    dropped = _drop_newest_event(json.dumps(old).encode())
    assert _verify(tmp_path, story, dropped).exit_code == 0  # what the index now prevents
    required = _verify(tmp_path, story, old, "--require-sealed")
    assert required.exit_code == 1, required.output
    refusal = "--require-sealed: the dossier proves no seal that closes the release."
    assert required.output.splitlines() == [f"evledger: verification FAILED: {refusal} {statement}"]
    # The printed record of the same dossier says it too, prominently.
    out = tmp_path / "release.html"
    made = evledger("report", s.PRODUCT, VERSION, "-o", str(out), "--key", story.pub,
                    "--dossier", str(tmp_path / "release.dossier.json"))  # fmt: skip
    assert made.exit_code == 0, made.output
    html = out.read_text(encoding="utf-8")
    boxes = re.findall(r'<p class="open"><b>Completeness:</b> .*?</p>', html)  # at the top and the end
    assert boxes
    assert {re.sub(r"<[^>]+>", "", box) for box in boxes} == {f"Completeness: {statement}"}


def test_verify_prints_each_signed_decision_with_its_decision_and_meaning(
    story: Story, tmp_path: Path
) -> None:
    report = json.loads(_verify(tmp_path, story, story.sealed, "--json").output)
    approvals = [sig for sig in report["signatures"] if sig["kind"] == "approval"]
    assert {a["role"] for a in approvals} == {"qa", "clinical", "security", "release-manager"}
    text = _verify(tmp_path, story, story.sealed).output.splitlines()
    for approval in approvals:
        expected = (
            f"APPROVED by {approval['signer']} as {approval['role']} (meaning of signature: "
            f"{approval['meaning']}), signed {approval['signed_at']}, recorded {approval['time']}"
        )
        assert approval["text"] == expected
        assert f"  entry {approval['index']}: {expected}" in text


# --- forged seals: what the sequencer refuses, written with the ledger key --------------------------


class LaxChains(Chains):
    """A forger's chains: release links without the seal rules (a seal must match; nothing follows it)."""

    def release_link(self, item: Admitted) -> ReleaseLink | None:
        if item.release is None:
            return None
        head = self.releases.get(item.release)
        if head is None:
            return ReleaseLink(*item.release, 0)
        return ReleaseLink(*item.release, head.seq + 1, ChainLink(head.index, head.leaf_hash.hex()))


def _forged(
    story: Story, seal: tuple[int, str] | None, *, after_seal: bool, may_seal: bool = True
) -> tuple[Dossier, int, tuple[int, str]]:
    """A release of two changes, then a seal claiming `seal` (None: the truth), and a third change if asked.

    Returns the dossier, the seal's index and the true (count, head) before the seal.
    """
    ledger = story.live.ledger.signer
    log = ForgedLog(ledger)
    policy = encode_policy_record(load_policy_toml(POLICY_FILE.read_text(encoding="utf-8")))
    log.admin(sign_envelope(ADMIN_PAYLOAD_TYPE, policy, [ledger]))
    alice = SignerKey.from_seed("people.test/alice", bytes(range(32)))  # the same log each time
    roles = ["developer", "release-manager"] if may_seal else ["developer"]
    log.admin(register(ledger, alice, roles, [s.PRODUCT]))
    log.chains = LaxChains(dict(log.chains.releases), log.chains.keys)
    release = p.Release(s.PRODUCT, "forged")
    summary = p.ChangeSummary("Forged", "To test", "None", "None")

    def change(n: int) -> int:
        predicate = p.Change(release, f"CHG-{n}", summary, "low", affects_intended_use=False,
                             patient_facing_output=False, components=["ui"], author="Ann Author")  # fmt: skip
        return log.append(signed(alice, p.CHANGE, predicate, "sha256:" + f"{n:x}" * 64), alice.verifier())

    change(1)
    truth = (2, leaf_hash(log.entries[change(2)]).hex())
    count, head = seal or truth
    envelope = signed(alice, p.RELEASE_SEAL, p.Seal(release, count, head), "sha256:" + "5e" * 32)
    sealed_at = log.append(envelope, alice.verifier())
    if after_seal:
        change(3)
    return log.dossier(s.PRODUCT, "forged", "2026-03-02T10:00:00.000Z", recompute), sealed_at, truth


def test_a_seal_signed_without_a_sealing_role_is_refused(story: Story) -> None:
    # The policy (published before the seal, so in force at it) lets only release-manager seal.
    dossier, sealed_at, _ = _forged(story, None, after_seal=False, may_seal=False)
    with pytest.raises(VerificationError, match=f"entry {sealed_at}: .*role release-manager"):
        verify_dossier(dossier, story.live.ledger.signer.verifier(), recompute)


def test_the_forger_writes_a_seal_that_verifies(story: Story) -> None:
    dossier, sealed_at, _ = _forged(story, None, after_seal=False)
    report = verify_dossier(dossier, story.live.ledger.signer.verifier(), recompute)
    assert report.completeness.sealed_at == sealed_at
    assert report.sealed is True


@pytest.mark.parametrize("claim", ["count", "head"])
def test_a_seal_that_does_not_commit_to_the_chain_before_it_is_refused(story: Story, claim: str) -> None:
    _, _, truth = _forged(story, None, after_seal=False)
    seal = (5, truth[1]) if claim == "count" else (2, "ab" * 32)
    dossier, sealed_at, _ = _forged(story, seal, after_seal=False)
    with pytest.raises(ChainError) as caught:
        verify_dossier(dossier, story.live.ledger.signer.verifier(), recompute)
    error = caught.value
    assert (
        error.args[0]
        == f"the release seal at entry {sealed_at} does not commit to the release chain before it"
    )
    assert error.labels == ("the chain holds", "the seal says")
    assert (error.expected, error.calculated) == (
        f"count 2, head {truth[1]}",
        f"count {seal[0]}, head {seal[1]}",
    )


def test_a_seal_followed_by_more_release_events_is_refused(story: Story) -> None:
    dossier, sealed_at, _ = _forged(story, None, after_seal=True)
    with pytest.raises(
        ChainError, match=f"the release seal at entry {sealed_at} is followed by more release"
    ):
        verify_dossier(dossier, story.live.ledger.signer.verifier(), recompute)
