"""The part of SARIF 2.1.0 (OASIS) a scan predicate needs: tools, rules, results and their severity. Pure.

Only the properties read here are typed; everything else in a log is ignored,
so the logs of CodeQL, Semgrep, Trivy and friends decode as they are. A
result's severity is, in order: its `security-severity` property (a CVSS score,
as GitHub code scanning reads it), its rule's `security-severity`, its `level`,
its rule's `defaultConfiguration.level`, and SARIF's default (`warning` for a
failure, `none` for other kinds).
"""

from __future__ import annotations

import math
from typing import Any, Literal, get_args

import msgspec

from ledger.core.encoding import JSON_ERRORS
from ledger.errors import EncodingError
from ledger.records.predicates import Findings

SARIF_VERSION = "2.1.0"
SECURITY_SEVERITY = "security-severity"
Level = Literal["none", "note", "warning", "error"]
Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
LEVEL_SEVERITY: dict[str, Severity] = {"error": "high", "warning": "medium", "note": "low", "none": "info"}
# CVSS v3 qualitative ratings (FIRST, CVSS v3.1 specification §5): lower bound of each band.
CVSS_BANDS: tuple[tuple[float, Severity], ...] = ((9.0, "critical"), (7.0, "high"), (4.0, "medium"))
NOT_FINDINGS = frozenset({"pass", "notApplicable"})  # result kinds that report no problem


class Configuration(msgspec.Struct, frozen=True):
    """reportingConfiguration: the level a rule reports at unless a result says otherwise."""

    level: Level = "warning"


class Rule(msgspec.Struct, frozen=True, rename="camel"):
    """reportingDescriptor (a rule)."""

    id: str | None = None
    default_configuration: Configuration | None = None
    properties: dict[str, Any] = msgspec.field(default_factory=dict)


class Component(msgspec.Struct, frozen=True, rename="camel"):
    """toolComponent: the driver or an extension (a CodeQL query pack), with its rules."""

    name: str
    version: str | None = None
    semantic_version: str | None = None
    rules: list[Rule] = msgspec.field(default_factory=list)


class Tool(msgspec.Struct, frozen=True):
    """The tool of a run."""

    driver: Component
    extensions: list[Component] = msgspec.field(default_factory=list)


class ComponentRef(msgspec.Struct, frozen=True):
    """toolComponentReference: which component (index into `tool.extensions`) holds a rule."""

    index: int | None = None


class RuleRef(msgspec.Struct, frozen=True, rename="camel"):
    """reportingDescriptorReference: a result's rule by id and/or index."""

    id: str | None = None
    index: int | None = None
    tool_component: ComponentRef | None = None


class Suppression(msgspec.Struct, frozen=True):
    """A suppression; it suppresses unless its status is `underReview` or `rejected`."""

    status: Literal["accepted", "underReview", "rejected"] | None = None


class Result(msgspec.Struct, frozen=True, rename="camel"):
    """One result of a run."""

    rule_id: str | None = None
    rule_index: int = -1
    rule: RuleRef | None = None
    kind: str = "fail"
    level: Level | None = None
    suppressions: list[Suppression] = msgspec.field(default_factory=list)
    baseline_state: str | None = None
    properties: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        """A problem still present and not suppressed (an accepted suppression, or one without status)."""
        suppressed = any(s.status in {None, "accepted"} for s in self.suppressions)
        return self.kind not in NOT_FINDINGS and self.baseline_state != "absent" and not suppressed


class Run(msgspec.Struct, frozen=True):
    """One run of one tool; `results` is absent when the tool did not complete."""

    tool: Tool
    results: list[Result] | None = None


class Log(msgspec.Struct, frozen=True):
    """A SARIF log."""

    version: str
    runs: list[Run]


_decoder = msgspec.json.Decoder(Log)


def decode_sarif(data: bytes, what: str) -> Log:
    """A SARIF 2.1.0 log with at least one run, each with a results array; EncodingError naming `what`."""
    try:
        log = _decoder.decode(data)
    except JSON_ERRORS as exc:
        raise EncodingError(f"{what} is not a SARIF log: {exc}") from None
    if log.version != SARIF_VERSION:
        raise EncodingError(f"{what} is SARIF version {log.version!r}; only {SARIF_VERSION} is read")
    if not log.runs:
        raise EncodingError(f"{what} has no runs")
    for number, run in enumerate(log.runs):
        if run.results is None:
            raise EncodingError(
                f"{what}: run {number} ({run.tool.driver.name}) has no results array, so the tool did "
                "not complete; refusing to record it as a scan without findings"
            )
    return log


def _rule(run: Run, result: Result, where: str) -> Rule | None:
    """The rule a result refers to, by index (in the driver or the referenced extension) or by id."""
    ref = result.rule or RuleRef()
    component = run.tool.driver
    if ref.tool_component is not None and ref.tool_component.index is not None:
        extensions = run.tool.extensions
        if not 0 <= ref.tool_component.index < len(extensions):
            raise EncodingError(
                f"{where}: rule.toolComponent.index {ref.tool_component.index} names no extension"
            )
        component = extensions[ref.tool_component.index]
    index = ref.index if ref.index is not None else result.rule_index
    if index >= 0:
        if index >= len(component.rules):
            raise EncodingError(
                f"{where}: rule index {index}, but {component.name} has {len(component.rules)} rules"
            )
        return component.rules[index]
    rule_id = ref.id or result.rule_id
    if rule_id is None:
        return None
    every_rule = [*run.tool.driver.rules, *(rule for ext in run.tool.extensions for rule in ext.rules)]
    return next((rule for rule in every_rule if rule.id == rule_id), None)


def cvss_severity(score: object, where: str) -> Severity:
    """The qualitative rating of a CVSS score (number or numeric string, 0.0 to 10.0); 0.0 is `info`."""
    value = math.nan
    if isinstance(score, (int, float, str)) and not isinstance(score, bool):
        try:
            value = float(score)
        except ValueError:
            value = math.nan
    if not 0.0 <= value <= 10.0:  # also refuses NaN
        raise EncodingError(
            f"{where}: {SECURITY_SEVERITY} must be a CVSS score from 0.0 to 10.0, got {score!r}"
        )
    for bound, severity in CVSS_BANDS:
        if value >= bound:
            return severity
    return "low" if value > 0 else "info"


def severity(run: Run, result: Result, where: str) -> Severity:
    """A result's severity (see the module docstring for the order of sources)."""
    rule = _rule(run, result, where)
    score = result.properties.get(SECURITY_SEVERITY)
    if score is None and rule is not None:
        score = rule.properties.get(SECURITY_SEVERITY)
    if score is not None:
        return cvss_severity(score, where)
    level = result.level
    if level is None and rule is not None and rule.default_configuration is not None:
        level = rule.default_configuration.level
    if level is None:
        level = "warning" if result.kind == "fail" else "none"
    return LEVEL_SEVERITY[level]


def count_open_findings(log: Log, what: str) -> Findings:
    """Open findings of every run by severity: suppressed, fixed (`absent`) and passing results excluded.

    Precondition: `log` came from `decode_sarif` (every run has results).
    """
    counts: dict[Severity, int] = dict.fromkeys(SEVERITIES, 0)
    for run_number, run in enumerate(log.runs):
        for number, result in enumerate(run.results or []):
            if result.is_open:
                counts[severity(run, result, f"{what} runs[{run_number}].results[{number}]")] += 1
    return Findings(**counts)
