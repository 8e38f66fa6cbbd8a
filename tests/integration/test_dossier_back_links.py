"""Forged back-links (issue #9): a dossier whose only flaw is an event linking to the wrong predecessor.

Each event of a release names its place (`seq`) and its predecessor (index and
leaf hash); each key event does the same in the key chain. A forger holding the
ledger key can rewrite the log around an event: here, a failed test run is
swapped for a passing one at the same index and with the same `seq`, and the
entry after it is left with a back-link that does not name the event before it.
The forger re-signs the checkpoint over the rewritten log and recomputes every
inclusion proof and the compliance result (forged_log.py), so the sequence
numbers, proofs, signatures and compliance all hold: only the back-link check of
`verify_dossier` can refuse these dossiers. The untouched histories are the controls.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
from forged_log import ForgedLog
from ledger_harness import register
from story_support import evledger, signed

from cli.demo import POLICY_FILE
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, sign_envelope
from ledger.core.entry import ChainLink, KeyLink, ReleaseLink, parse_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.errors import ChainError
from ledger.records import predicates as p
from ledger.records.admin import encode_policy_record
from ledger.records.policy import load_policy_toml
from ledger.verify.compliance_claim import recompute
from ledger.verify.dossier import Dossier, verify_dossier

PRODUCT, VERSION = "ivd-analyzer", "9.9.9"
RELEASE = p.Release(PRODUCT, VERSION)
ARTIFACT = "sha256:" + "9d" * 32
EVALUATED_AT = "2026-03-02T10:00:00.000Z"
LEDGER = SignerKey.generate("ledger.test/back-links")
ALICE = SignerKey.generate("people.test/alice")
BOB = SignerKey.generate("people.test/bob")


@dataclass(frozen=True)
class History:
    """A forged log and where its entries went."""

    log: ForgedLog
    at: dict[str, int]

    def link_to(self, name: str) -> ChainLink:
        """A back-link naming entry `name` truthfully: its index and its leaf hash."""
        index = self.at[name]
        return ChainLink(index, leaf_hash(self.log.entries[index]).hex())

    def dossier(self) -> Dossier:
        return self.log.dossier(PRODUCT, VERSION, EVALUATED_AT, recompute)


def _change() -> p.Change:
    summary = p.ChangeSummary("Rounding", "Borderline results", "Result values", "Golden datasets")
    return p.Change(RELEASE, "CHG-B1", summary, "low", affects_intended_use=False,
                    patient_facing_output=False, components=["calc"], author="Alice Author")  # fmt: skip


def _run(result: str) -> p.TestRun:
    failed = 0 if result == "passed" else 3
    return p.TestRun(RELEASE, "unit", "make unit", "c0ffee" * 6 + "0000", "ci", 10, failed, 0, result)


def history(
    run_result: str, *, scan_link: ChainLink | None = None, bob_link: ChainLink | None = None
) -> History:
    """Policy, Alice's registration, her change, test run and scan; then Bob's registration.

    `scan_link` and `bob_link` are the forger's back-links for the scan (release chain)
    and Bob's registration (key chain); None leaves the link the chain gives.
    """
    log = ForgedLog(LEDGER)
    policy = encode_policy_record(load_policy_toml(POLICY_FILE.read_text(encoding="utf-8")))
    alice = ALICE.verifier()
    at = {"genesis": 0, "policy": log.admin(sign_envelope(ADMIN_PAYLOAD_TYPE, policy, [LEDGER]))}
    at["alice"] = log.admin(register(LEDGER, ALICE, ["developer"], [PRODUCT]))
    at["change"] = log.append(signed(ALICE, p.CHANGE, _change(), ARTIFACT), alice)
    at["run"] = log.append(signed(ALICE, p.TEST_RUN, _run(run_result), ARTIFACT), alice)
    scan = p.Scan(RELEASE, "trivy", "0.50", p.Findings(low=1))
    at["scan"] = log.append(signed(ALICE, p.SCAN, scan, ARTIFACT), alice, back_link=scan_link)
    at["bob"] = log.append(
        register(LEDGER, BOB, ["developer"], [PRODUCT]), LEDGER.verifier(), back_link=bob_link
    )
    return History(log, at)


HONEST = history("failed")
REWRITTEN = history("passed")  # the failed run swapped for a passing one, at the same index

# which entry carries the forged link, the forged link, and what `verify` must say
FORGERIES: dict[str, tuple[str, ChainLink, str]] = {
    # The run is swapped; the scan still names the failed run it followed (right index, its old hash).
    "release: the swapped-out event's leaf hash": (
        "scan", HONEST.link_to("run"), "does not link to the release event before it"
    ),
    # The right leaf hash under another index.
    "release: its predecessor's hash under another index": (
        "scan", ChainLink(REWRITTEN.at["change"], REWRITTEN.link_to("run").leaf_hash),
        "does not link to the release event before it",
    ),
    # A true link to an earlier event of the release, skipping the one before it.
    "release: an earlier event, skipping its predecessor": (
        "scan", REWRITTEN.link_to("change"), "does not link to the release event before it"
    ),
    # A true link to an entry outside the release.
    "release: an entry outside the release": (
        "scan", REWRITTEN.link_to("policy"), "does not link to the release event before it"
    ),
    # Bob's registration links past Alice's, as if the key chain never held it.
    "keys: an earlier key event, skipping its predecessor": (
        "bob", REWRITTEN.link_to("genesis"), "does not follow the key event before it"
    ),
    "keys: the predecessor's hash under another index": (
        "bob", ChainLink(REWRITTEN.at["policy"], REWRITTEN.link_to("alice").leaf_hash),
        "does not follow the key event before it",
    ),
}  # fmt: skip


def _parsed_link(built: History, index: int) -> ReleaseLink | KeyLink:
    entry = parse_entry(built.log.entries[index])
    link = entry.release or entry.keys
    assert link is not None
    return link


def _seq(built: History, index: int) -> int:
    return _parsed_link(built, index).seq


def _links(built: History, index: int) -> tuple[int, ChainLink | None]:
    """(seq, prev) of the chain link entry `index` carries."""
    link = _parsed_link(built, index)
    return link.seq, link.prev


def _cli_verify(tmp_path: Path, dossier: Dossier) -> tuple[int, str]:
    path, key = tmp_path / "forged.dossier.json", tmp_path / "ledger.pub"
    path.write_bytes(msgspec.json.encode(dossier))
    key.write_text(LEDGER.verifier().format() + "\n")
    result = evledger("verify", str(path), "--key", str(key))
    return result.exit_code, result.output


@pytest.mark.parametrize("which", [HONEST, REWRITTEN], ids=["honest", "rewritten"])
def test_the_histories_without_a_forged_link_verify(tmp_path: Path, which: History) -> None:
    assert which.at == HONEST.at  # the swap keeps every index
    report = verify_dossier(which.dossier(), LEDGER.verifier(), recompute)
    assert [e.index for e in report.events] == [which.at[n] for n in ("change", "run", "scan")]
    assert (report.completeness.chain_length, report.keys) == (3, 3)
    assert _cli_verify(tmp_path, which.dossier())[0] == 0


@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_forged_back_link_with_the_right_sequence_numbers_is_refused(tmp_path: Path, forgery: str) -> None:
    carrier, link, message = FORGERIES[forgery]
    forged = history("passed", **{f"{carrier}_link": link})
    index = forged.at[carrier]
    true_link = REWRITTEN.link_to("run" if carrier == "scan" else "alice")
    # Only the link differs from what the chain gives: the same indices, the same seq numbers.
    assert forged.at == REWRITTEN.at
    assert _links(forged, index) == (_seq(REWRITTEN, index), link)
    assert _links(REWRITTEN, index) == (_seq(REWRITTEN, index), true_link)
    with pytest.raises(ChainError) as caught:
        verify_dossier(forged.dossier(), LEDGER.verifier(), recompute)
    assert f"{index} {message}" in str(caught.value)
    assert caught.value.expected == str((true_link.index, true_link.leaf_hash))
    assert caught.value.calculated == str((link.index, link.leaf_hash))
    exit_code, output = _cli_verify(tmp_path, forged.dossier())
    assert exit_code == 1, output
    assert "verification FAILED" in output
