"""The SARIF converter of `evledger attest`: open findings by severity, as the ledger will admit them.

Fixtures are logs as real tools write them (tests/unit/fixtures): CodeQL (rules
in a query-pack extension, security-severity on the rules, a result suppressed
in source) and Semgrep (rules by id, levels only, a `nosemgrep` suppression),
and under attest/ Ruff (every finding at level `error`).
"""

from __future__ import annotations

import hashlib
import json

import pytest
from attest_support import FIXTURES, RUN, admitted, findings, sarif, scan

from ledger.errors import EncodingError, InputError
from ledger.records.attest import idempotency_key, statement_from_sarif
from ledger.records.predicates import SCAN, Scan, SeverityMapping
from ledger.records.sarif import parse_severity_map


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


@pytest.mark.parametrize("kind", ["review", "open", "informational"])
def test_kind_other_than_fail_without_level_is_none_whatever_the_rule_says(kind):
    # SARIF 2.1.0 §3.27.10: level defaults to none for any kind but fail; the rule default is not used
    rules = [{"id": "r", "defaultConfiguration": {"level": "error"}}]
    assert findings(sarif([{"ruleId": "r", "kind": kind}], rules)) == (0, 0, 0, 0, 1)
    assert findings(sarif([{"ruleId": "r", "kind": kind, "level": "warning"}], rules)) == (0, 0, 1, 0, 0)


def with_invocations(data: bytes, *invocations: list[dict[str, object]]) -> bytes:
    log = json.loads(data)
    log["runs"][0]["invocations"] = [
        {"executionSuccessful": True, "ruleConfigurationOverrides": overrides} for overrides in invocations
    ]
    return json.dumps(log).encode()


RULES = [{"id": "r0", "defaultConfiguration": {"level": "warning"}}, {"id": "r1"}]


def override(descriptor: dict[str, object], **configuration: object) -> list[dict[str, object]]:
    return [{"descriptor": descriptor, "configuration": configuration}]


def test_rule_configuration_overrides_of_the_invocation_set_the_level():
    rules = [*RULES, {"id": "r2", "defaultConfiguration": {"level": "note"}}]
    overrides = [
        *override({"id": "r0"}, level="error"),
        *override({"index": 1}, level="none"),
        *override({"id": "r2"}, enabled=True),  # no level: the rule's default stays
    ]
    results = [
        {"ruleId": "r0"},  # high: overridden to error
        {"ruleIndex": 0},  # high: the same rule by index
        {"ruleId": "r0", "level": "note"},  # low: the result's own level wins (§3.27.10)
        {"ruleId": "r1"},  # info: overridden to none
        {"ruleId": "r2"},  # low: its default, note
        {},  # medium: no rule, warning
    ]
    assert findings(with_invocations(sarif(results, rules), overrides)) == (0, 2, 1, 2, 1)


def test_provenance_invocation_index_chooses_the_invocation_whose_overrides_apply():
    quiet, loud = override({"id": "r0"}, level="note"), override({"id": "r0"}, level="error")
    results = [
        {"ruleId": "r0", "provenance": {"invocationIndex": 1}},
        {"ruleId": "r0", "provenance": {"invocationIndex": 0}},
        {"ruleId": "r0"},  # two invocations and no index: no override applies, the default does
    ]
    assert findings(with_invocations(sarif(results, RULES), quiet, loud)) == (0, 1, 1, 1, 0)
    with pytest.raises(EncodingError, match=r"provenance\.invocationIndex 2, but the run has 2 invocations"):
        findings(
            with_invocations(sarif([{"ruleId": "r0", "provenance": {"invocationIndex": 2}}], RULES), [], [])
        )


def test_sarif_log_with_a_utf8_byte_order_mark_is_read():
    data = (FIXTURES / "semgrep.sarif").read_bytes()
    with_bom = b"\xef\xbb\xbf" + data
    assert findings(with_bom) == findings(data) == (0, 1, 2, 1, 0)
    assert scan(with_bom).report_digest == "sha256:" + hashlib.sha256(with_bom).hexdigest()


# --severity-map


def mapped(data: bytes, *specs: str) -> Scan:
    value = admitted(statement_from_sarif(data, **RUN, severity_map=parse_severity_map(specs)), SCAN)
    assert isinstance(value, Scan)
    return value


def test_ruff_errors_mapped_to_low_are_recorded_as_low_with_the_mapping():
    data = (FIXTURES / "attest" / "ruff.sarif").read_bytes()
    assert findings(data) == (0, 3, 0, 0, 0)  # Ruff marks every finding `error`: three blocking "high"
    assert scan(data).severity_map is None
    value = mapped(data, "Ruff:error=low")
    f = value.findings
    assert (f.critical, f.high, f.medium, f.low, f.info) == (0, 0, 0, 3, 0)
    assert value.severity_map == [SeverityMapping("ruff", "error", "low")]  # named as the log names it


def test_severity_map_changes_only_levels_not_security_severity_scores():
    data = (FIXTURES / "codeql.sarif").read_bytes()
    value = mapped(data, "codeql:note=info,codeql:error=low", "codeql:warning=medium")
    f = value.findings
    assert (f.critical, f.high, f.medium, f.low, f.info) == (1, 3, 1, 0, 2)  # only the two notes moved
    assert [(m.tool, m.level, m.severity) for m in value.severity_map or []] == [
        ("CodeQL", "note", "info"),
        ("CodeQL", "warning", "medium"),
        ("CodeQL", "error", "low"),
    ]


def test_severity_map_applies_to_the_runs_of_its_tool_only():
    log = json.loads(sarif([{"level": "error"}]))
    log["runs"] += json.loads(sarif([{"level": "error"}], name="ruff"))["runs"]
    value = mapped(json.dumps(log).encode(), "ruff:error=info")
    assert (value.findings.high, value.findings.info) == (1, 1)


def test_severity_map_changes_the_idempotency_key():
    data = (FIXTURES / "attest" / "ruff.sarif").read_bytes()
    plain = statement_from_sarif(data, **RUN)
    lowered = statement_from_sarif(data, **RUN, severity_map=parse_severity_map(["ruff:error=low"]))
    assert idempotency_key(plain, data) != idempotency_key(lowered, data)


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["ruff"], "is not TOOL:LEVEL=SEVERITY"),
        (["ruff=low"], "is not TOOL:LEVEL=SEVERITY"),
        ([":error=low"], "is not TOOL:LEVEL=SEVERITY"),
        (["ruff:fatal=low"], "the level must be one of none, note, warning, error"),
        (["ruff:error=blocker"], "the severity must be one of critical, high, medium, low, info"),
        (["ruff:error=low", "RUFF:error=info"], "maps RUFF's error to both low and info"),
    ],
)
def test_malformed_severity_map_is_refused(specs, message):
    with pytest.raises(InputError, match=message):
        parse_severity_map(specs)


def test_severity_map_for_a_tool_without_a_run_is_refused():
    data = (FIXTURES / "attest" / "ruff.sarif").read_bytes()
    with pytest.raises(
        InputError, match=r"names tool 'ruf', but no run of the SARIF report is by it \(runs by: ruff\)"
    ):
        statement_from_sarif(data, **RUN, severity_map=parse_severity_map(["ruf:error=low"]))


def test_severity_map_repeats_and_spaces_are_tolerated():
    assert parse_severity_map([" ruff : error = LOW ,", "ruff:error=low", "Semgrep OSS:warning=low"]) == [
        SeverityMapping("ruff", "error", "low"),
        SeverityMapping("Semgrep OSS", "warning", "low"),
    ]


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
