"""The two sides of a failed comparison are named for what they are, in text and in JSON.

`VerificationError` carries `expected` and `calculated` (the keys scripts read in
`--json` output) and `labels` naming each side for people. Text output prints
each side after its label, the first side first.
"""

from __future__ import annotations

import json

import pytest
import typer

from cli.errors import command_errors
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, sign_envelope
from ledger.core.entry import GENESIS_PREV, encode_entry
from ledger.core.keys import SignerKey
from ledger.errors import ChainError, RootMismatchError, VerificationError
from ledger.rules.replay import LogReplayer

KEY = SignerKey.from_seed("labels.test/k", bytes(32))


def test_sides_default_to_expected_and_calculated() -> None:
    error = VerificationError("roots differ", expected="aa", calculated="bb")
    assert error.labels == ("expected", "calculated")
    assert str(error) == "roots differ (expected aa, calculated bb)"


def test_labelled_sides_read_as_their_labels() -> None:
    error = VerificationError("m", expected="k1", calculated="k2", labels=("trusted key", "signed by"))
    assert str(error) == "m (trusted key k1, signed by k2)"


def test_a_restated_error_keeps_its_type_sides_and_labels() -> None:
    error = RootMismatchError("m", expected="a", calculated="b", labels=("checkpoint root", "computed root"))
    restated = error.restated("entry 4: m")
    assert type(restated) is RootMismatchError
    assert (restated.args[0], restated.expected, restated.calculated) == ("entry 4: m", "a", "b")
    assert restated.labels == ("checkpoint root", "computed root")


def test_replay_keeps_the_labels_of_the_check_that_failed() -> None:
    envelope = sign_envelope(ADMIN_PAYLOAD_TYPE, b'{"kind":"key.revoked","keyid":"k","reason":"r"}', [KEY])
    data = encode_entry(5, GENESIS_PREV, "2026-01-02T03:04:05.000Z", envelope)
    with pytest.raises(ChainError) as caught:
        LogReplayer().check(data)
    assert caught.value.args[0] == "entry 0: entry names the wrong index"
    assert (caught.value.expected, caught.value.calculated) == ("0", "5")
    assert caught.value.labels == ("next index", "entry names")


def _reported(error: Exception, *, json_output: bool, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    with pytest.raises(typer.Exit), command_errors(json_output=json_output):
        raise error
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_text_output_prints_each_side_after_its_label_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    error = VerificationError("m", expected="k1", calculated="k2", labels=("trusted key", "signed by"))
    _, err = _reported(error, json_output=False, capsys=capsys)
    assert err.splitlines() == ["evledger: verification FAILED: m", "  trusted key: k1", "  signed by:   k2"]


def test_text_output_without_labels_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    _, err = _reported(VerificationError("m", expected="a", calculated="b"), json_output=False, capsys=capsys)
    assert err.splitlines() == ["evledger: verification FAILED: m", "  expected:   a", "  calculated: b"]


def test_json_keeps_expected_and_calculated_and_adds_the_labels(capsys: pytest.CaptureFixture[str]) -> None:
    error = VerificationError(
        "m", expected="claim", calculated="truth", labels=("dossier claims", "re-evaluated")
    )
    out, _ = _reported(error, json_output=True, capsys=capsys)
    report = json.loads(out)
    assert (report["expected"], report["calculated"]) == ("claim", "truth")
    assert report["labels"] == {"expected": "dossier claims", "calculated": "re-evaluated"}


def test_json_of_an_error_without_sides_has_no_labels(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = _reported(VerificationError("m"), json_output=True, capsys=capsys)
    report = json.loads(out)
    assert (report["expected"], report["calculated"], report["labels"]) == (None, None, None)
