"""A dossier's verifier checks the artifact back-links of the entries it holds (issue #13).

The entries are written with the ledger key by a forger (`forged_log.ForgedLog`), here one
that also gives artifact links, and can give wrong ones: the verifier must refuse an entry
without the links its subjects imply, and links that contradict the entries the dossier holds.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import msgspec
import pytest
from forged_log import ForgedLog, _admitted
from ledger_harness import register
from story_support import signed

from cli import story as s
from cli.demo import POLICY_FILE
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, Envelope, sign_envelope
from ledger.core.entry import ArtifactLink, ChainLink, encode_entry, parse_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey, VerifierKey
from ledger.errors import ChainError
from ledger.records import predicates as p
from ledger.records.admin import encode_policy_record
from ledger.records.policy import load_policy_toml
from ledger.verify.compliance_claim import recompute
from ledger.verify.dossier import Dossier, verify_dossier

LEDGER = SignerKey.from_seed("ledger.test/artifacts", bytes(range(9, 41)))
ALICE = SignerKey.from_seed("people.test/alice", bytes(range(32)))
VERSION = "linked"
ARTIFACT = "sha256:" + "a1" * 32
OTHER = "sha256:" + "b2" * 32
Links = list[ArtifactLink] | None


class LinkedLog(ForgedLog):
    """A forged log whose entries carry artifact links from `chained_from` on, `tamper`ed where asked."""

    def __init__(self, ledger: SignerKey, chained_from: int = 0) -> None:
        self.chained_from = chained_from
        self.tamper: dict[int, Callable[[Links], Links]] = {}
        super().__init__(ledger)

    def append(self, envelope: Envelope, signer: VerifierKey, *, back_link: ChainLink | None = None) -> int:
        """Append as `ForgedLog` does, then give the entry its artifact links (re-encoding it)."""
        index = super().append(envelope, signer, back_link=back_link)
        entry, item = parse_entry(self.entries[index]), _admitted(envelope, signer)
        links = self.chains.artifact_links(item) if index >= self.chained_from else None
        links = self.tamper.get(index, lambda given: given)(links)
        data = encode_entry(
            index, bytes.fromhex(entry.prev), entry.time, entry.envelope,
            release=entry.release, keys=entry.keys, artifacts=links,
        )  # fmt: skip
        self.entries[index] = data
        self.chains.advance(index, leaf_hash(data), entry.release, entry.keys, item.kind, links)
        return index


def _dossier(chained_from: int = 0, tamper: dict[int, Callable[[Links], Links]] | None = None) -> Dossier:
    """Policy, Alice's key, then four changes of the release: about ARTIFACT, OTHER, both, ARTIFACT."""
    log = LinkedLog(LEDGER, chained_from)
    log.tamper = tamper or {}
    log.admin(
        sign_envelope(
            ADMIN_PAYLOAD_TYPE, encode_policy_record(load_policy_toml(POLICY_FILE.read_text())), [LEDGER]
        )
    )
    log.admin(register(LEDGER, ALICE, ["developer"], [s.PRODUCT]))
    summary = p.ChangeSummary("Linked", "To test", "None", "None")
    release = p.Release(s.PRODUCT, VERSION)
    for n, digest in enumerate([ARTIFACT, OTHER, ARTIFACT, ARTIFACT]):
        predicate = p.Change(release, f"CHG-{n}", summary, "low", affects_intended_use=False,
                             patient_facing_output=False, components=["ui"], author="Ann Author")  # fmt: skip
        log.append(signed(ALICE, p.CHANGE, predicate, digest), ALICE.verifier())
    return log.dossier(s.PRODUCT, VERSION, "2026-03-02T10:00:00.000Z", recompute)


def _verify(dossier: Dossier, chained_from: int | None = None) -> list[str]:
    return verify_dossier(dossier, LEDGER.verifier(), recompute, chained_from=chained_from).checks


FIRST = 3  # the index of the first change: 0 the ledger key, 1 the policy, 2 Alice's key


def test_a_dossier_with_the_implied_artifact_links_verifies() -> None:
    dossier = _dossier()
    links = [parse_entry(base64.b64decode(e.entry)).artifacts for e in dossier.entries]
    assert [[(a.digest, a.seq) for a in each or ()] for each in links] == [
        [(ARTIFACT, 0)],
        [(OTHER, 0)],
        [(ARTIFACT, 1)],
        [(ARTIFACT, 2)],
    ]
    assert "artifact back-links of 4 entries: as their subjects imply, consistent" in _verify(dossier)
    _verify(dossier, 0)
    # An older dossier: its entries predate the ledger's first chained index and carry none.
    _verify(_dossier(chained_from=FIRST + 4), FIRST + 4)
    _verify(_dossier(chained_from=FIRST + 4))
    _verify(_dossier(chained_from=FIRST + 2), FIRST + 2)  # links begin in the middle of the release


def _replace(position: int, **changes: object) -> Callable[[Links], Links]:
    def tamper(links: Links) -> Links:
        assert links is not None
        return [
            msgspec.structs.replace(link, **changes) if n == position else link
            for n, link in enumerate(links)
        ]

    return tamper


@pytest.mark.parametrize(
    ("tampered", "forgery", "message"),
    [
        (FIRST + 2, lambda _: None, "does not carry the artifact back-links"),
        (FIRST + 3, lambda _: None, "does not carry the artifact back-links"),
        (FIRST + 2, lambda links: [*(links or []), ArtifactLink(OTHER, 1, ChainLink(FIRST + 1, "00" * 32))],
         "does not carry the artifact back-links"),
        (FIRST + 3, _replace(0, seq=1), f"does not follow entry {FIRST + 2}"),
        (FIRST + 3, _replace(0, seq=5), f"does not follow entry {FIRST + 2}"),
        (FIRST + 3, _replace(0, prev=ChainLink(FIRST + 2, "00" * 32)), f"does not follow entry {FIRST + 2}"),
        (FIRST + 3, _replace(0, prev=ChainLink(FIRST + 1, "00" * 32)), f"entry {FIRST + 1} on the chain"),
        (FIRST + 2, _replace(0, prev=ChainLink(FIRST + 1, "00" * 32)), f"entry {FIRST + 1} on the chain"),
    ],
)  # fmt: skip
def test_a_dossier_entry_with_wrong_artifact_links_is_refused(
    tampered: int, forgery: Callable[[Links], Links], message: str
) -> None:
    dossier = _dossier(tamper={tampered: forgery})
    with pytest.raises(ChainError, match=message):
        _verify(dossier)


def test_links_below_the_stated_first_chained_index_are_refused() -> None:
    with pytest.raises(ChainError, match=f"entry {FIRST} does not carry"):
        _verify(_dossier(), FIRST + 1)
    with pytest.raises(ChainError, match=f"entry {FIRST + 3} does not carry"):
        _verify(_dossier(chained_from=FIRST + 4), FIRST + 3)
