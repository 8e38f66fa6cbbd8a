"""Witness policies and the quorum rule (ledger/verify/witness_policy.py, ledger/verify/anchoring.py)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from ledger.core.checkpoint import Checkpoint, sign_checkpoint
from ledger.core.cosignature import add_cosignatures, cosign
from ledger.core.keys import ALG_COSIGNATURE_V1, SignerKey
from ledger.errors import InputError, SignatureError, VerificationError
from ledger.verify.anchoring import LEDGER_KEY_ONLY, Trust, check_anchoring
from ledger.verify.witness_policy import check_quorum, cosigners, parse_witness_policy

LEDGER = SignerKey.from_seed("ledger.example/log", hashlib.sha256(b"ledger").digest())
W1 = SignerKey.from_seed("w1.example/witness", hashlib.sha256(b"w1").digest(), ALG_COSIGNATURE_V1)
W2 = SignerKey.from_seed("w2.example/witness", hashlib.sha256(b"w2").digest(), ALG_COSIGNATURE_V1)
W3 = SignerKey.from_seed("w3.example/witness", hashlib.sha256(b"w3").digest(), ALG_COSIGNATURE_V1)
CHECKPOINT = Checkpoint("ledger.example/log", 42, hashlib.sha256(b"root 42").digest())
NOTE = sign_checkpoint(CHECKPOINT, LEDGER)
NOW = int(time.time())


def policy_text(quorum: int = 2, *witnesses: SignerKey) -> str:
    chosen = witnesses or (W1, W2, W3)
    lines = [
        f"witness {w.name} {w.verifier().format()} http://127.0.0.1:{9000 + i}" for i, w in enumerate(chosen)
    ]
    return "# test policy\n\n" + "\n".join(lines) + f"\nquorum {quorum}\n"


def cosigned(note: str, *witnesses: SignerKey) -> str:
    body = CHECKPOINT.text()
    return add_cosignatures(note, [cosign(body, w, NOW) for w in witnesses])


def test_a_policy_file_parses_with_comments_and_blank_lines() -> None:
    policy = parse_witness_policy(policy_text(2))
    assert [w.name for w in policy.witnesses] == [W1.name, W2.name, W3.name]
    assert policy.quorum == 2
    assert policy.witnesses[0].url == "http://127.0.0.1:9000"
    assert policy.describe().startswith("2 of 3 witnesses")


W1_LINE = f"witness a {W1.verifier().format()} http://x\n"
W2_LINE = f"witness b {W2.verifier().format()} http://y\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("quorum 1\n", "names no witness"),
        (W1_LINE, "no `quorum"),
        (W1_LINE + "quorum 2\n", "not between 1 and"),
        (W1_LINE + "quorum 0\n", "not between 1 and"),
        (W1_LINE + "quorum 1\nquorum 1\n", "second quorum"),
        (W1_LINE + "quorum one\n", "whole number"),
        (f"witness a {W1.verifier().format()}\nquorum 1\n", "expected `witness"),
        (f"witness a {W1.verifier().format()} ftp://x\nquorum 1\n", "not an http"),
        (f"witness a {LEDGER.verifier().format()} http://x\nquorum 1\n", "cosignature/v1 key"),
        (W1_LINE + W2_LINE.replace("witness b", "witness a") + "quorum 1\n", "named twice"),
        (W1_LINE + W1_LINE.replace("witness a", "witness b") + "quorum 1\n", "listed twice"),
        ("witnesses a b c\nquorum 1\n", "unknown directive"),
        ("witness a not-a-key http://x\nquorum 1\n", "line 1"),
    ],
)
def test_a_malformed_policy_is_refused_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_witness_policy(text)


def test_quorum_met_names_the_cosigners_in_policy_order() -> None:
    policy = parse_witness_policy(policy_text(2))
    quorum = check_quorum(cosigned(NOTE, W3, W1), policy)
    assert [w.name for w, _ in quorum.cosigned] == [W1.name, W3.name]
    assert all(t == NOW for _, t in quorum.cosigned)
    assert "2 of 2 required" in quorum.statement()


def test_attack_a_checkpoint_signed_by_the_ledger_alone_lacks_the_quorum() -> None:
    policy = parse_witness_policy(policy_text(1))
    with pytest.raises(VerificationError, match="lacks its witness quorum") as caught:
        check_quorum(NOTE, policy)
    assert (caught.value.expected, caught.value.calculated) == ("1", "0")


def test_attack_one_cosignature_short_of_the_quorum_is_refused() -> None:
    policy = parse_witness_policy(policy_text(2))
    with pytest.raises(VerificationError, match="1 of 2 required"):
        check_quorum(cosigned(NOTE, W2), policy)


def test_attack_the_same_witness_twice_counts_once() -> None:
    policy = parse_witness_policy(policy_text(2))
    body = CHECKPOINT.text()
    note = add_cosignatures(NOTE, [cosign(body, W1, NOW), cosign(body, W1, NOW + 1)])
    with pytest.raises(VerificationError, match="lacks its witness quorum"):
        check_quorum(note, policy)


def test_attack_cosignatures_by_witnesses_outside_the_policy_do_not_count() -> None:
    policy = parse_witness_policy(policy_text(2, W1, W2))
    with pytest.raises(VerificationError, match="1 of 2 required"):
        check_quorum(cosigned(NOTE, W1, W3), policy)


def test_attack_a_lying_witness_cosignature_for_another_root_fails_the_note() -> None:
    """A policy witness's line that does not verify over this checkpoint fails the whole note."""
    policy = parse_witness_policy(policy_text(2))
    other = Checkpoint(CHECKPOINT.origin, CHECKPOINT.size, hashlib.sha256(b"fork").digest())
    lie = cosign(other.text(), W2, NOW)
    note = add_cosignatures(NOTE, [cosign(CHECKPOINT.text(), W1, NOW), lie])
    with pytest.raises(SignatureError):
        check_quorum(note, policy)
    assert [w.name for w, _ in cosigners(cosigned(NOTE, W1), policy)] == [W1.name]


def test_attack_the_ledger_key_posing_as_a_witness_is_not_a_cosigner() -> None:
    """A note-signing (0x01) key of a witness's name is another key: its signature is not a cosignature."""
    impostor = SignerKey.from_seed(W1.name, hashlib.sha256(b"w1").digest())
    note = sign_checkpoint(CHECKPOINT, LEDGER)
    forged = add_cosignatures(note, [sign_checkpoint(CHECKPOINT, impostor).rsplit("\n\n", 1)[1].strip()])
    with pytest.raises(VerificationError, match="lacks its witness quorum"):
        check_quorum(forged, parse_witness_policy(policy_text(1, W1)))


def test_check_anchoring_applies_the_policy_only_when_trusted() -> None:
    assert check_anchoring(NOTE, [], LEDGER_KEY_ONLY).quorum is None
    trust = Trust(parse_witness_policy(policy_text(2)))
    with pytest.raises(VerificationError, match="lacks its witness quorum"):
        check_anchoring(NOTE, [], trust)
    anchoring = check_anchoring(cosigned(NOTE, W1, W2), [], trust)
    assert anchoring.quorum is not None
    assert anchoring.statements() == [
        f"checkpoint cosigned by 2 of 2 required witnesses: {W1.name}, {W2.name}"
    ]


# --- every verifier takes the same file, and refuses a malformed one before anything else (exit 2)

VERIFIER_COMMANDS = {
    "verify": ["verify", "dossier.json"],
    "report": ["report", "prod", "1.0", "-o", "r.html", "--dossier", "dossier.json"],
    "verify-log": ["verify-log", "--tiles", "."],
    "verify-consistency": ["verify-consistency", "a", "b", "--proof", "p.json"],
    "verify-proof inclusion": ["verify-proof", "inclusion", "--receipt", "r.json"],
    "verify-proof consistency": ["verify-proof", "consistency", "--old", "a", "--new", "b", "--hash", "00"],
    "monitor": ["monitor", "--server", "http://127.0.0.1:9", "--state", "state", "--once"],
}


@pytest.mark.parametrize("command", VERIFIER_COMMANDS.values(), ids=VERIFIER_COMMANDS.keys())
@pytest.mark.parametrize(
    ("policy", "message"),
    [(None, "cannot read"), ("quorum 1\n", "names no witness"), ("witness a b\n", "expected `witness")],
)
def test_every_verifier_refuses_a_malformed_witness_policy_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], policy: str | None, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ledger.pub").write_text(LEDGER.verifier().format() + "\n")
    if policy is not None:
        (tmp_path / "w.policy").write_text(policy)
    result = CliRunner().invoke(app, [*command, "--key", "ledger.pub", "--witness-policy", "w.policy"])
    assert result.exit_code == 2, result.output
    assert message in result.output


@pytest.mark.parametrize("command", VERIFIER_COMMANDS.values(), ids=VERIFIER_COMMANDS.keys())
def test_every_verifier_refuses_a_tsa_certificate_that_is_not_one_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ledger.pub").write_text(LEDGER.verifier().format() + "\n")
    (tmp_path / "tsa.pem").write_text("not a certificate\n")
    result = CliRunner().invoke(app, [*command, "--key", "ledger.pub", "--tsa-cert", "tsa.pem"])
    assert result.exit_code == 2, result.output
    assert "certificate" in result.output
