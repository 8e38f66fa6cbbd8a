"""The SARIF converter of `evledger attest`: open findings by severity, as the ledger will admit them.

Fixtures are logs as real tools write them (tests/unit/fixtures): CodeQL (rules
in a query-pack extension, security-severity on the rules, a result suppressed
in source) and Semgrep (rules by id, levels only, a `nosemgrep` suppression).
"""

from __future__ import annotations

import hashlib
import json

import pytest
from attest_support import FIXTURES, RUN, findings, sarif, scan

from ledger.errors import EncodingError
from ledger.records.attest import statement_from_sarif


def test_codeql_log():
    data = (FIXTURES / "codeql.sarif").read_bytes()
    value = scan(data)
    assert (value.tool, value.tool_version) == ("CodeQL", "2.16.3")
    # 9.8 critical; 8.8 twice and 7.8 high; 5.4 medium; two notes low; the 7.5 result is suppressed in source
    assert findings(data) == (1, 3, 1, 2, 0)
    assert value.report_digest == "sha256:" + hashlib.sha256(data).hexdigest()


def test_semgrep_log():
    data = (FIXTURES / "semgrep.sarif").read_bytes()
    value = scan(data)
    assert (value.tool, value.tool_version) == ("Semgrep OSS", "1.56.0")
    # rule levels by ruleId: error high, two warnings medium, a note low; the nosemgrep secret is suppressed
    assert findings(data) == (0, 1, 2, 1, 0)


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (10.0, 0), ("9.0", 0), (8.9, 1), ("7.0", 1), (6.9, 2),
        (4, 2), ("3.9", 3), (0.1, 3), ("0.0", 4), (0, 4),
    ],
)  # fmt: skip
def test_security_severity_uses_the_cvss_bands(score, band):
    expected = [0] * 5
    expected[band] = 1
    assert findings(
        sarif([{"ruleId": "r", "level": "note", "properties": {"security-severity": score}}])
    ) == (tuple(expected))


def test_result_security_severity_wins_over_its_rules_and_levels():
    rules = [
        {"id": "r", "defaultConfiguration": {"level": "note"}, "properties": {"security-severity": "2.0"}}
    ]
    results = [
        {"ruleId": "r", "properties": {"security-severity": "9.1"}},
        {"ruleId": "r", "level": "error"},  # the rule's score still outranks the level
        {"ruleIndex": 0},
    ]
    assert findings(sarif(results, rules)) == (1, 0, 0, 2, 0)


@pytest.mark.parametrize(
    ("result", "rules", "expected"),
    [
        ({"level": "error"}, None, (0, 1, 0, 0, 0)),
        ({"level": "warning"}, None, (0, 0, 1, 0, 0)),
        ({"level": "note"}, None, (0, 0, 0, 1, 0)),
        ({"level": "none"}, None, (0, 0, 0, 0, 1)),
        ({}, None, (0, 0, 1, 0, 0)),  # SARIF's default level is warning
        ({"kind": "informational"}, None, (0, 0, 0, 0, 1)),
        ({"ruleId": "r"}, [{"id": "r", "defaultConfiguration": {"level": "error"}}], (0, 1, 0, 0, 0)),
        (
            {"ruleId": "r", "level": "note"},
            [{"id": "r", "defaultConfiguration": {"level": "error"}}],
            (0, 0, 0, 1, 0),
        ),
        ({"ruleIndex": 0}, [{"id": "r", "defaultConfiguration": {}}], (0, 0, 1, 0, 0)),
        ({"ruleId": "unknown-rule"}, [{"id": "r"}], (0, 0, 1, 0, 0)),
    ],
)
def test_levels_map_to_severities(result, rules, expected):
    assert findings(sarif([result], rules)) == expected


@pytest.mark.parametrize(
    ("extra", "is_open"),
    [
        ({"suppressions": [{"kind": "inSource"}]}, False),
        ({"suppressions": [{"kind": "external", "status": "accepted"}]}, False),
        ({"suppressions": [{"kind": "external", "status": "underReview"}]}, True),
        ({"suppressions": [{"kind": "external", "status": "rejected"}]}, True),
        ({"suppressions": [{"kind": "external", "status": "rejected"}, {"kind": "inSource"}]}, False),
        ({"suppressions": []}, True),
        ({"baselineState": "absent"}, False),
        ({"baselineState": "unchanged"}, True),
        ({"kind": "pass"}, False),
        ({"kind": "notApplicable"}, False),
    ],
)
def test_only_open_results_are_findings(extra, is_open):
    assert findings(sarif([{"level": "error", **extra}])) == ((0, 1, 0, 0, 0) if is_open else (0,) * 5)


def test_every_run_is_counted_and_the_first_names_the_tool():
    first = json.loads(sarif([{"level": "error"}], version="1.2.0"))
    second = json.loads(sarif([{"level": "note"}, {"level": "note"}]))
    first["runs"] += second["runs"]
    value = scan(json.dumps(first).encode())
    assert (value.tool, value.tool_version) == ("scanner", "1.2.0")
    assert findings(json.dumps(first).encode()) == (0, 1, 0, 2, 0)


@pytest.mark.parametrize(
    ("driver", "version"),
    [
        ({"version": "4.1", "semanticVersion": "4.1.0"}, "4.1"),
        ({"semanticVersion": "4.1.0"}, "4.1.0"),
        ({}, "unknown"),
    ],
)
def test_tool_version_falls_back_to_semantic_version_then_unknown(driver, version):
    assert scan(sarif([], **driver)).tool_version == version
    assert findings(sarif([], **driver)) == (0,) * 5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "SARIF report is not a SARIF log"),
        (b'{"version": "2.1.0"}', "missing required field `runs`"),
        (b'{"version": "2.0.0", "runs": []}', "only 2.1.0 is read"),
        (b'{"version": "2.1.0", "runs": []}', "has no runs"),
        (b'{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}}]}', "no results array"),
        (sarif([{"level": "critical"}]), "Invalid enum value 'critical'"),
        (
            sarif([{"properties": {"security-severity": "high"}}]),
            r"runs\[0\].results\[0\]: security-severity",
        ),
        (sarif([{"properties": {"security-severity": 11}}]), "CVSS score from 0.0 to 10.0"),
        (sarif([{"properties": {"security-severity": "nan"}}]), "CVSS score"),
        (sarif([{"ruleIndex": 3}], [{"id": "r"}]), "rule index 3, but scanner has 1 rules"),
        (sarif([{"rule": {"index": 0, "toolComponent": {"index": 2}}}]), "names no extension"),
    ],
)
def test_malformed_sarif_is_refused(data, message):
    with pytest.raises(EncodingError, match=message):
        statement_from_sarif(data, **RUN)
