"""What the release record must say to an auditor (issue #12): text, never Python values; every rule's result.

The record is rendered from a real dossier (the sealed release of the demo story, verified
offline here with its ledger key): the policy by name, version and tier with every rule's
result, what was deployed where, report locations and digests, and a document id.
"""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path

import msgspec
import pytest

from cli.dossier_cmd import load_and_verify
from ledger.query.report import document_id, policy_of, render_report, rule_outcomes
from ledger.records import predicates as p
from ledger.records.policy import RULES, SOD_NOT_AUTHOR, SOD_ONE_ROLE, SeparationOfDuties
from ledger.verify.dossier import Dossier, DossierReport

FIXTURE = Path(__file__).resolve().parents[1] / "integration" / "fixtures" / "pre_issue9"
KEY = "evledger.demo/ledger+a6376cb5+AQ=="


@pytest.fixture(scope="module")
def verified() -> tuple[Dossier, DossierReport]:
    """The fixture's sealed release, verified offline."""
    return load_and_verify(FIXTURE / "sealed-release.dossier.json", FIXTURE / "ledger.pub")


def _text(page: str) -> str:
    """What a reader sees: the body without tags, entities decoded."""
    body = page.split("<body>", 1)[1]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def test_the_record_prints_no_python_values(verified: tuple[Dossier, DossierReport]) -> None:
    # The events carry booleans (affects_intended_use), None (signed_at), lists of dicts (artifacts).
    text = _text(render_report(*verified, ledger_key=KEY))
    for python in ("{'", "['", "True", "False", "None"):
        assert python not in text, python
    assert "affects intended use: no" in text
    assert "name: analyzer.tar; digest: sha256:4f2a" in text


def test_the_policy_is_named_with_its_tier_and_every_rule_has_a_result(
    verified: tuple[Dossier, DossierReport],
) -> None:
    dossier, report = verified
    page = render_report(dossier, report, ledger_key=KEY)
    policy = policy_of(dossier)
    assert policy is not None
    assert f"<b>{policy.name}</b> version <b>{policy.version}</b>, published at entry 7" in page
    assert "<h3>Tier applied: high</h3>" in page
    for rule in RULES:  # one row per rule, whatever its result
        assert page.count(f"<tr><td><code>{rule}</code></td>") == 1, rule
    assert '<td class="warn">waived</td>' in page  # findings.max-open, waived by the exception at entry 23
    assert "waived by the exception at entry 23" in page
    off = [rule for rule in RULES if rule not in policy.rules_in_force()]
    assert page.count('<td class="muted">off in this policy</td>') == len(off)


def test_each_rule_reads_its_worst_finding_and_rules_switched_off_read_off(
    verified: tuple[Dossier, DossierReport],
) -> None:
    policy = policy_of(verified[0])
    assert policy is not None
    lenient = msgspec.structs.replace(
        policy, separation_of_duties=SeparationOfDuties(approver_not_author=False, one_person_one_role=False)
    )
    findings = [
        {"rule": "tests.passed", "status": "fail", "message": "m", "entries": [3]},
        {"rule": "tests.required-suites", "status": "missing", "message": "m", "entries": []},
        {"rule": "findings.max-open", "status": "waived", "message": "m", "entries": [4], "waived_by": 9},
        {"rule": "approvals.required-roles", "status": "waived", "message": "m", "entries": [5]},
        {"rule": "approvals.required-roles", "status": "fail", "message": "m", "entries": [6]},
    ]
    results = {o.rule: o.result for o in rule_outcomes(lenient, findings)}
    assert list(results)[: len(RULES)] == list(RULES)
    assert results["tests.passed"] == "fail"
    assert results["tests.required-suites"] == "missing"
    assert results["findings.max-open"] == "waived"
    assert results["approvals.required-roles"] == "fail"  # the worst of its findings
    assert results["change.classified"] == "met"
    assert results[SOD_NOT_AUTHOR] == results[SOD_ONE_ROLE] == "off in this policy"
    assert {o.rule: o.result for o in rule_outcomes(policy, [])}[SOD_NOT_AUTHOR] == "met"


def test_the_document_id_is_derived_from_checkpoint_chain_head_and_evaluation(
    verified: tuple[Dossier, DossierReport],
) -> None:
    dossier, report = verified
    ident = document_id(dossier, report)
    assert re.fullmatch(r"RR-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}", ident)
    assert document_id(dossier, report) == ident  # deterministic
    later = dataclasses.replace(report, checkpoint=dataclasses.replace(report.checkpoint, size=28))
    assert document_id(dossier, later) != ident
    shorter = dataclasses.replace(report, events=report.events[:-1])  # another chain head
    assert document_id(dossier, shorter) != ident
    assert document_id(msgspec.structs.replace(dossier, environment="production"), report) != ident
    page = render_report(dossier, report, ledger_key=KEY)
    assert f'<span class="docid">{ident}</span>' in page
    assert '@top-right { content: "Document ID ' in page  # on every printed page


def test_what_was_deployed_where_and_report_locations_with_digests(
    verified: tuple[Dossier, DossierReport],
) -> None:
    dossier, report = verified
    page = render_report(dossier, report, ledger_key=KEY)
    digest = "sha256:" + "4f2a" * 16
    deployment = (
        f"<tr><td>production</td><td>deployment: succeeded (infrastructure infra@5d1e)</td>"
        f"<td><code>{digest}</code></td>"
    )
    assert deployment in page
    assert 'entry 25<br><span class="ts">2026-12-04T20:18:41.111Z</span>' in page
    # A test run naming its report: the location and digest are printed beside the suite.
    events = list(report.events)
    at = next(i for i, e in enumerate(events) if isinstance(e.predicate, p.TestRun))
    run = events[at].predicate
    assert isinstance(run, p.TestRun)
    located = msgspec.structs.replace(
        run, report_location="https://ci.example/reports/unit.xml", report_digest="sha256:" + "77" * 32
    )
    events[at] = msgspec.structs.replace(events[at], predicate=located)
    page = render_report(dossier, dataclasses.replace(report, events=events), ledger_key=KEY)
    assert (
        f"<td>unit test report</td><td><code>https://ci.example/reports/unit.xml</code></td>"
        f"<td><code>sha256:{'77' * 32}</code></td>"
    ) in page


def test_every_timestamp_is_kept_on_one_line(verified: tuple[Dossier, DossierReport]) -> None:
    page = render_report(*verified, ledger_key=KEY)
    body = page.split("<body>", 1)[1]
    stamps = re.findall(r"(<span class=\"(?:ts|nw)\">)?\d{4}-\d\d-\d\dT[\d:.]+Z", body)
    assert len(stamps) > 40
    assert all(stamps), "a timestamp outside a no-wrap span"
    assert re.search(r"\.ts \{[^}]*white-space: nowrap", page)
