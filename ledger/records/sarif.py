"""The part of SARIF 2.1.0 (OASIS) a scan predicate needs: tools, rules, results and their severity. Pure.

Only the properties read here are typed; everything else in a log is ignored,
so the logs of CodeQL, Semgrep, Trivy, Ruff and friends decode as they are. A
UTF-8 byte order mark before the log is allowed (§3.1: a SARIF file is UTF-8,
and Windows tools write one).

A result's severity is, in order: its `security-severity` property (a CVSS
score, as GitHub code scanning reads it), its rule's `security-severity`, else
its level (`result_level`, SARIF §3.27.10) through the level-to-severity table,
which `--severity-map` may change for one tool (`SeverityMapping`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import msgspec

from ledger.core.encoding import JSON_ERRORS
from ledger.errors import EncodingError, InputError
from ledger.records.formats import strip_bom
from ledger.records.predicates import Findings, SarifLevel, Severity, SeverityMapping

SARIF_VERSION = "2.1.0"
SECURITY_SEVERITY = "security-severity"
Level = SarifLevel
LEVELS: tuple[Level, ...] = get_args(SarifLevel)
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
LEVEL_SEVERITY: dict[Level, Severity] = {"error": "high", "warning": "medium", "note": "low", "none": "info"}
# CVSS v3 qualitative ratings (FIRST, CVSS v3.1 specification §5): lower bound of each band.
CVSS_BANDS: tuple[tuple[float, Severity], ...] = ((9.0, "critical"), (7.0, "high"), (4.0, "medium"))
NOT_FINDINGS = frozenset({"pass", "notApplicable"})  # result kinds that report no problem
SEVERITY_MAP_SYNTAX = "TOOL:LEVEL=SEVERITY, e.g. ruff:error=low"


class Configuration(msgspec.Struct, frozen=True):
    """reportingConfiguration (§3.50): the level a rule reports at; absent means "not said here"."""

    level: Level | None = None


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


class ConfigurationOverride(msgspec.Struct, frozen=True):
    """configurationOverride (§3.51): an invocation's configuration of one rule (`descriptor`)."""

    descriptor: RuleRef
    configuration: Configuration = Configuration()


class Invocation(msgspec.Struct, frozen=True, rename="camel"):
    """invocation (§3.20): how the tool was run, with rule configuration overrides (§3.20.5)."""

    rule_configuration_overrides: list[ConfigurationOverride] = msgspec.field(default_factory=list)


class Provenance(msgspec.Struct, frozen=True, rename="camel"):
    """resultProvenance (§3.48): `invocationIndex` names the invocation that detected the result."""

    invocation_index: int = -1


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
    provenance: Provenance | None = None
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
    invocations: list[Invocation] = msgspec.field(default_factory=list)


class Log(msgspec.Struct, frozen=True):
    """A SARIF log."""

    version: str
    runs: list[Run]


_decoder = msgspec.json.Decoder(Log)


def decode_sarif(data: bytes, what: str) -> Log:
    """A SARIF 2.1.0 log with at least one run, each with a results array; EncodingError naming `what`.

    A UTF-8 byte order mark before the log is ignored (SARIF §3.1 requires UTF-8; RFC 8259 §8.1).
    """
    try:
        log = _decoder.decode(strip_bom(data))
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


def _find_rule(run: Run, ref: RuleRef, index: int, rule_id: str | None, where: str) -> Rule | None:
    """The rule a reportingDescriptorReference (§3.52) names: by index in its component, else by id.

    The component is `tool.extensions[ref.toolComponent.index]`, else the driver (§3.52.5).
    """
    component = run.tool.driver
    if ref.tool_component is not None and ref.tool_component.index is not None:
        extensions = run.tool.extensions
        if not 0 <= ref.tool_component.index < len(extensions):
            raise EncodingError(
                f"{where}: rule.toolComponent.index {ref.tool_component.index} names no extension"
            )
        component = extensions[ref.tool_component.index]
    if index >= 0:
        if index >= len(component.rules):
            raise EncodingError(
                f"{where}: rule index {index}, but {component.name} has {len(component.rules)} rules"
            )
        return component.rules[index]
    if rule_id is None:
        return None
    every_rule = [*run.tool.driver.rules, *(rule for ext in run.tool.extensions for rule in ext.rules)]
    return next((rule for rule in every_rule if rule.id == rule_id), None)


def _rule(run: Run, result: Result, where: str) -> Rule | None:
    """The rule a result refers to (§3.27.5 to §3.27.7): `rule`, else `ruleIndex`, else `ruleId`."""
    ref = result.rule or RuleRef()
    index = ref.index if ref.index is not None else result.rule_index
    return _find_rule(run, ref, index, ref.id or result.rule_id, where)


def _invocation(run: Run, result: Result, where: str) -> Invocation | None:
    """The invocation that detected a result: `provenance.invocationIndex` (§3.48.6), else the run's only one.

    A run with a single invocation has every result from it, so its rule configuration
    overrides apply even when the tool does not write `invocationIndex`.
    """
    index = result.provenance.invocation_index if result.provenance is not None else -1
    if index >= 0:
        if index >= len(run.invocations):
            raise EncodingError(
                f"{where}: provenance.invocationIndex {index}, but the run has "
                f"{len(run.invocations)} invocations"
            )
        return run.invocations[index]
    return run.invocations[0] if len(run.invocations) == 1 else None


def result_level(run: Run, result: Result, rule: Rule | None, where: str) -> Level:
    """A result's level, as SARIF 2.1.0 §3.27.10 determines it.

    A result of any kind other than `fail` (present and not `fail`) has level
    `none` when it gives none. A failure (kind `fail` or absent) without a level
    takes, in order: the level its invocation's `ruleConfigurationOverrides`
    (§3.20.5, §3.51) give its rule, its rule's `defaultConfiguration.level`
    (§3.49.14, §3.50.3), and `warning`. A level the result gives is kept as
    given, even for a kind other than `fail` (which §3.27.10 says must then be
    `none`): a tool's own level is never lowered.
    """
    if result.level is not None:
        return result.level
    if result.kind != "fail":
        return "none"
    if rule is not None:
        invocation = _invocation(run, result, where)
        overrides = invocation.rule_configuration_overrides if invocation is not None else []
        for number, override in enumerate(overrides):
            ref = override.descriptor
            index = -1 if ref.index is None else ref.index
            spot = f"{where}: ruleConfigurationOverrides[{number}].descriptor"
            level = override.configuration.level
            if level is not None and _find_rule(run, ref, index, ref.id, spot) is rule:
                return level
        if rule.default_configuration is not None and rule.default_configuration.level is not None:
            return rule.default_configuration.level
    return "warning"


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


def severity(
    run: Run, result: Result, where: str, levels: Mapping[Level, Severity] = LEVEL_SEVERITY
) -> Severity:
    """A result's severity: a `security-severity` score (result's, then rule's), else `levels[level]`.

    The level is `result_level` (SARIF 2.1.0 §3.27.10); `levels` is LEVEL_SEVERITY
    with the run's tool's `--severity-map` entries applied.
    """
    rule = _rule(run, result, where)
    score = result.properties.get(SECURITY_SEVERITY)
    if score is None and rule is not None:
        score = rule.properties.get(SECURITY_SEVERITY)
    if score is not None:
        return cvss_severity(score, where)
    return levels[result_level(run, result, rule, where)]


def parse_severity_map(specs: Sequence[str]) -> list[SeverityMapping]:
    """Severity mappings from `TOOL:LEVEL=SEVERITY[,...]` texts (`--severity-map`, repeatable).

    LEVEL is a SARIF level (§3.27.10: error, warning, note, none) and SEVERITY one
    of the scan predicate's (critical, high, medium, low, info); both are read
    case-insensitively. The tool is matched against a run's `tool.driver.name`
    by `resolve_severity_map`. Precondition: none; a malformed entry, or two
    entries giving one tool's level different severities, is an InputError.
    """
    chosen: dict[tuple[str, str], SeverityMapping] = {}
    for spec in specs:
        for entry in spec.split(","):
            text = entry.strip()
            if not text:
                continue
            left, equals, right = text.rpartition("=")
            tool, colon, level = left.rpartition(":")
            tool, level, severity_name = tool.strip(), level.strip().lower(), right.strip().lower()
            if not (equals and colon and tool):
                raise InputError(f"--severity-map entry {text!r} is not {SEVERITY_MAP_SYNTAX}")
            if level not in LEVELS:
                raise InputError(
                    f"--severity-map entry {text!r}: the level must be one of {', '.join(LEVELS)}"
                )
            if severity_name not in SEVERITIES:
                raise InputError(
                    f"--severity-map entry {text!r}: the severity must be one of {', '.join(SEVERITIES)}"
                )
            mapping = msgspec.convert(
                {"tool": tool, "level": level, "severity": severity_name}, SeverityMapping
            )
            key = (tool.casefold(), level)
            earlier = chosen.setdefault(key, mapping)
            if earlier.severity != mapping.severity:
                raise InputError(
                    f"--severity-map maps {tool}'s {level} to both {earlier.severity} and {mapping.severity}"
                )
    return list(chosen.values())


def resolve_severity_map(log: Log, mappings: Sequence[SeverityMapping], what: str) -> list[SeverityMapping]:
    """`mappings` with tools named as in `log`, sorted; InputError for a tool that made no run of it.

    Tools match their `tool.driver.name` case-insensitively. A mapping for a tool
    that made no run of the log is refused: it would change nothing, and a typo
    must not pass for a decision about severities.
    """
    drivers = {run.tool.driver.name.casefold(): run.tool.driver.name for run in log.runs}
    resolved = []
    for mapping in mappings:
        name = drivers.get(mapping.tool.casefold())
        if name is None:
            raise InputError(
                f"--severity-map names tool {mapping.tool!r}, but no run of the {what} is by it "
                f"(runs by: {', '.join(sorted(set(drivers.values())))})"
            )
        resolved.append(SeverityMapping(name, mapping.level, mapping.severity))
    return sorted(resolved, key=lambda m: (m.tool, LEVELS.index(m.level)))


def level_severities(tool: str, mappings: Sequence[SeverityMapping]) -> dict[Level, Severity]:
    """LEVEL_SEVERITY with the mappings for `tool` (case-insensitive) applied."""
    levels = dict(LEVEL_SEVERITY)
    levels.update({m.level: m.severity for m in mappings if m.tool.casefold() == tool.casefold()})
    return levels


def count_open_findings(log: Log, what: str, mappings: Sequence[SeverityMapping] = ()) -> Findings:
    """Open findings of every run by severity: suppressed, fixed (`absent`) and passing results excluded.

    Precondition: `log` came from `decode_sarif` (every run has results).
    `mappings` change the severity of a tool's levels (`parse_severity_map`).
    """
    counts: dict[Severity, int] = dict.fromkeys(SEVERITIES, 0)
    for run_number, run in enumerate(log.runs):
        levels = level_severities(run.tool.driver.name, mappings)
        for number, result in enumerate(run.results or []):
            if result.is_open:
                counts[severity(run, result, f"{what} runs[{run_number}].results[{number}]", levels)] += 1
    return Findings(**counts)
