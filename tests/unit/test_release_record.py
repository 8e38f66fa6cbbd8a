"""How people read a signed decision and a release's completeness (21 CFR 11.50; issue #9).

A signature manifestation must give the signer's printed name, the date and
time, and the meaning of the signature. The decision (approved or rejected) is
a separate fact from the meaning (review, approval, responsibility,
authorship): the release record once printed "approved (rejected) as qa",
reading a rejection as an approval. Every decision and every meaning is
rendered here from real entries, in the HTML record and in the timeline table,
and checked word for word, so that swapping the two fails.
"""

from __future__ import annotations

import html
import itertools
import re

import msgspec
import pytest

from cli.timeline_cmd import facts
from ledger.core.checkpoint import Checkpoint
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.entry import ReleaseLink, encode_entry
from ledger.core.keys import SignerKey
from ledger.query.report import manifestation, render_report
from ledger.records import predicates as p
from ledger.records.admin import KeyRegistered
from ledger.rules.completeness import Completeness, LastEvent
from ledger.rules.events import Event, SignerNames, decode_event, event_from_entry
from ledger.rules.registry import KeyRegistry
from ledger.service.routes_releases import event_view
from ledger.verify.dossier import DOSSIER_FORMAT, Dossier, DossierReport

DANA = SignerKey.from_seed("people.test/dana", bytes(range(32)))
WHEN = "2026-03-02T10:11:12.345Z"
DIGEST = "sha256:" + "ab" * 32
REL = p.Release("ivd-analyzer", "2.4.0")
DECISIONS = ["approved", "rejected"]
MEANINGS = ["review", "approval", "responsibility", "authorship"]


def _registry() -> KeyRegistry:
    registry = KeyRegistry()
    registry.register(1, KeyRegistered(DANA.verifier().format(), "Dana Dev", ["qa"], []))
    return registry


def _entry(predicate_type: str, predicate: object, index: int = 7) -> bytes:
    statement = msgspec.json.encode(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "analyzer.tar", "digest": {"sha256": "ab" * 32}}],
            "predicateType": predicate_type,
            "predicate": msgspec.to_builtins(predicate),
        }
    )
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, statement, [DANA])
    link = ReleaseLink(REL.product, REL.version, 0)
    return encode_entry(index, bytes(32), WHEN, envelope, release=link)


def _approval(decision: str, meaning: str) -> bytes:
    signed_at = "2026-01-05T09:00:00Z"
    predicate = p.Approval(REL, "qa", meaning, decision, DIGEST, [3], signed_at, None)  # type: ignore[arg-type]
    return _entry(p.APPROVAL, predicate)


def _event(data: bytes) -> Event:
    event = event_from_entry(data, _registry())
    assert event is not None
    return event


def _record(events: list[Event], completeness: Completeness) -> str:
    dossier = Dossier(DOSSIER_FORMAT, REL.product, REL.version, "", [], [], None, WHEN, None, {})
    compliance = {"status": "compliant", "findings": [], "policy": {"entry": 2}}
    report = DossierReport(
        Checkpoint("ledger.test", 9, bytes(32)), events, 2, completeness, compliance, ["ok"]
    )
    return render_report(dossier, report, ledger_key="ledger.test+00000000+AQ==")


def _unwrapped(text: str) -> str:
    """`text` as the record prints it: escaped, each timestamp in a span that never wraps."""
    stamp = r"\d{4}-\d\d-\d\dT[\d:.]+Z"
    return re.sub(stamp, lambda m: f'<span class="nw">{m[0]}</span>', html.escape(text))


OPEN = Completeness(None, LastEvent(7, 0, WHEN), 1, 9)


@pytest.mark.parametrize(("decision", "meaning"), list(itertools.product(DECISIONS, MEANINGS)))
def test_an_approval_reads_decision_first_then_the_meaning_of_the_signature(
    decision: str, meaning: str
) -> None:
    expected = (
        f"{decision.upper()} by Dana Dev as qa (meaning of signature: {meaning}), "
        f"signed 2026-01-05T09:00:00Z, recorded {WHEN}"
    )
    data = _approval(decision, meaning)
    event = _event(data)
    assert manifestation(event) == expected

    page = _record([event], OPEN)
    cells = [
        _unwrapped(expected), f"Dana Dev<br>key <code>{html.escape(DANA.keyid)}</code>",
        f'<span class="ts">{WHEN}</span>', decision.upper(), meaning, "7",
    ]  # fmt: skip
    assert "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>" in page
    assert f"{meaning} ({decision})" not in page  # the old, misleading spelling

    record = decode_event(data, DANA.keyid, SignerNames(_registry())).event
    line = facts(msgspec.to_builtins(event_view(record)))
    assert line.startswith(expected + "; of sha256:abababab")


def test_a_rejection_never_reads_as_an_approval() -> None:
    text = manifestation(_event(_approval("rejected", "approval")))
    assert text is not None
    assert text.startswith("REJECTED by Dana Dev")
    assert "APPROVED" not in text
    assert "approved" not in text


def test_exceptions_and_seals_name_their_signer_and_time() -> None:
    exception = _event(_entry(p.EXCEPTION, p.PolicyException(REL, "scan-clean", "vendor fix", WHEN, WHEN)))
    seal = _event(_entry(p.RELEASE_SEAL, p.Seal(REL, 6, "cd" * 32)))
    build = _event(_entry(p.BUILD, p.Build(REL, "repo", "c0ffee", "b-1", "ci", [p.Artifact("a", DIGEST)])))
    assert manifestation(exception) == f"EXCEPTION to rule scan-clean GRANTED by Dana Dev, recorded {WHEN}"
    assert manifestation(seal) == f"RELEASE RECORD SEALED by Dana Dev, recorded {WHEN}"
    assert manifestation(build) is None


def test_the_record_of_an_open_release_says_how_far_it_is_proven() -> None:
    page = _record([], Completeness(None, LastEvent(41, 11, WHEN), 12, 57))
    statement = (
        "OPEN (not sealed): completeness is proven only up to the last event shown, entry 41 "
        f"(event 11 of the release, counted from 0, recorded {WHEN}). Later events of this release under the "
        "checkpoint of 57 entries may exist and are not proven absent."
    )
    shown = _unwrapped(statement)
    assert page.count(f'<p class="open"><b>Completeness:</b> {shown}</p>') == 2
    assert "complete." not in page


def test_the_record_of_a_sealed_release_says_it_is_complete() -> None:
    page = _record([], Completeness(42, LastEvent(42, 12, WHEN), 13, 57))
    statement = (
        "sealed at entry 42: complete. The seal commits to the 12 release events before it, "
        "and no event can join the release after it."
    )
    assert page.count(f'<p class="complete"><b>Completeness:</b> {html.escape(statement)}</p>') == 2
    assert "OPEN" not in page


def test_a_dossier_without_release_events_proves_nothing_about_completeness() -> None:
    statement = Completeness(None, None, 0, 57).statement()
    assert statement.startswith("OPEN (not sealed): the dossier shows no event of the release's chain")
    assert "not proven absent" in statement
