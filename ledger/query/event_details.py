"""What an event page shows of the files an event names: test cases, SARIF results, SOUP (issue #15).

An entry carries its evidence's summary; the files it names by digest hold the rest. For a test
run, its stored report read into its failed and skipped test cases (with the failure's
message), by `ledger.records.test_reports`, the one reader of test reports; for a scan, its
stored SARIF log as a table of results with their severity, by `ledger.records.sarif`; for an
SBOM, its stored SOUP list (`ledger.query.traceability.soup_view`). Files are read through the
blob store, which checks them against their digests as they are read (`read_file`). A file
that is not stored, or not among those the caller may read, or that does not read as its
format, leaves its part out with the reason: the entry itself still shows.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ledger.compliance.facts import Item
from ledger.core.encoding import JSON_ERRORS
from ledger.errors import LedgerError
from ledger.query.traceability import SoupView, read_file, soup_view
from ledger.records import predicates as p
from ledger.records.formats import strip_bom
from ledger.records.sarif import decode_sarif, level_severities, severity
from ledger.records.test_reports import FAILED, PASSED, report_cases
from ledger.rules.events import Event
from ledger.storage.protocol import BlobStore

MAX_ROWS = 500  # failed tests or findings shown on one page; the rest are counted
MAX_MESSAGE = 300  # characters of a failure message (its first line) shown
_MESSAGE_TAGS = ("failure", "error", "skipped", "disabled", "reason")  # JUnit, and NUnit's <reason>


@dataclass(frozen=True, slots=True)
class FailingTest:
    """A test case of a stored report that did not pass: its name, `failed` or `skipped`, and why."""

    name: str
    outcome: str
    message: str


@dataclass(frozen=True, slots=True)
class ReportView:
    """A test run's stored report: its format, the failed then skipped cases (at most MAX_ROWS)."""

    format: str
    cases: int
    failing: list[FailingTest]
    more: int  # failed or skipped cases not shown


@dataclass(frozen=True, slots=True)
class FindingRow:
    """A result of a SARIF log: its tool, rule, severity (as the scan counted it), place, and if open."""

    tool: str
    rule: str
    severity: str
    open: bool
    message: str
    location: str


@dataclass(frozen=True, slots=True)
class SarifView:
    """A scan's stored SARIF log: every result, open ones first (at most MAX_ROWS shown)."""

    results: int
    open: int
    rows: list[FindingRow]
    more: int


@dataclass(slots=True)
class FileContents:
    """What the event page shows from the files an event names, and why a part is missing."""

    report: ReportView | None = None
    sarif: SarifView | None = None
    soup: SoupView | None = None
    problems: list[str] = field(default_factory=list)


def _first_line(text: str) -> str:
    line = next((part.strip() for part in text.strip().splitlines() if part.strip()), "")
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 1] + "…"


def case_message(source: object) -> str:
    """The first line of why an XML test case failed or was skipped (`message`, else the text); else ""."""
    if not isinstance(source, ET.Element):
        return ""  # a CTRF test: only its name and status are read
    for child in source:
        if child.tag.rpartition("}")[2] not in _MESSAGE_TAGS:
            continue
        text = child.get("message") or ""
        if not text:  # NUnit writes <failure><message>…</message></failure>
            inner = next((c for c in child if c.tag.rpartition("}")[2] == "message"), None)
            text = (inner.text if inner is not None else child.text) or ""
        return _first_line(text)
    return ""


def report_view(data: bytes) -> ReportView:
    """The failed, then skipped, test cases of a stored report, read as `report_counts` reads it."""
    kind, cases = report_cases(data)
    failing = [c for c in cases if c.outcome == FAILED] + [
        c for c in cases if c.outcome not in {FAILED, PASSED}
    ]
    shown = [
        FailingTest(c.name, "failed" if c.outcome == FAILED else "skipped", case_message(c.source))
        for c in failing[:MAX_ROWS]
    ]
    return ReportView(kind, len(cases), shown, max(0, len(failing) - MAX_ROWS))


# What a result says for people (SARIF 2.1.0 §3.27.11 message, §3.28 location); ledger.records.sarif
# reads what decides a severity, and ignores these.
class _Text(msgspec.Struct, frozen=True):
    text: str | None = None


class _Region(msgspec.Struct, frozen=True, rename="camel"):
    start_line: int | None = None


class _Artifact(msgspec.Struct, frozen=True):
    uri: str | None = None


class _Physical(msgspec.Struct, frozen=True, rename="camel"):
    artifact_location: _Artifact | None = None
    region: _Region | None = None


class _Location(msgspec.Struct, frozen=True, rename="camel"):
    physical_location: _Physical | None = None


class _Shown(msgspec.Struct, frozen=True):
    message: _Text | None = None
    locations: list[_Location] = msgspec.field(default_factory=list)


class _ShownRun(msgspec.Struct, frozen=True):
    results: list[_Shown] | None = None


class _ShownLog(msgspec.Struct, frozen=True):
    runs: list[_ShownRun]


_shown_decoder = msgspec.json.Decoder(_ShownLog)


def _where(shown: _Shown | None) -> str:
    physical = shown.locations[0].physical_location if shown and shown.locations else None
    if physical is None or physical.artifact_location is None or not physical.artifact_location.uri:
        return ""
    line = physical.region.start_line if physical.region is not None else None
    return physical.artifact_location.uri + (f":{line}" if line is not None else "")


def _shown_results(data: bytes) -> list[list[_Shown]]:
    """Each run's results as people read them; empty when the log gives them in another shape."""
    try:
        log = _shown_decoder.decode(strip_bom(data))
    except (*JSON_ERRORS, msgspec.ValidationError):
        return []
    return [run.results or [] for run in log.runs]


def sarif_view(data: bytes, scan: p.Scan) -> SarifView:
    """Every result of a stored SARIF log with its severity as the scan counted it (its severity map)."""
    log = decode_sarif(data, "the scan's SARIF log")
    shown = _shown_results(data)
    rows: list[FindingRow] = []
    for r, run in enumerate(log.runs):
        tool = run.tool.driver.name
        levels = level_severities(tool, scan.severity_map or [])
        texts = shown[r] if r < len(shown) else []
        for n, result in enumerate(run.results or []):
            where = f"runs[{r}].results[{n}]"
            said = texts[n] if n < len(texts) and len(texts) == len(run.results or []) else None
            rule = result.rule_id or (result.rule.id if result.rule is not None else None) or ""
            rows.append(
                FindingRow(
                    tool=tool,
                    rule=rule,
                    severity=severity(run, result, where, levels),
                    open=result.is_open,
                    message=_first_line(said.message.text or "") if said and said.message else "",
                    location=_where(said),
                )
            )
    order = {s: i for i, s in enumerate(("critical", "high", "medium", "low", "info"))}
    rows.sort(key=lambda row: (not row.open, order.get(row.severity, 9)))
    return SarifView(len(rows), sum(row.open for row in rows), rows[:MAX_ROWS], max(0, len(rows) - MAX_ROWS))


async def file_contents(blobs: BlobStore, event: Event, readable: Collection[str]) -> FileContents:
    """What the event's report, SARIF log or SOUP list says, read from `blobs` if its digest is `readable`.

    Precondition: `readable` holds the digests (`sha256:<hex>`) the reader may read, as the
    blob route's product-scope rule allows them. A file that is not stored or not readable, or
    does not read as its format, leaves its part out and `problems` says why; LogIntegrityError
    when a stored file was altered (the blob store's checked read).
    """
    found = FileContents()
    predicate = event.predicate
    wanted: str | None = None
    if isinstance(predicate, p.TestRun | p.Scan):
        wanted = predicate.report_digest
    elif isinstance(predicate, p.Sbom):
        wanted = predicate.soup_list_digest
    if wanted is None:
        return found
    data = await read_file(blobs, wanted) if wanted in readable else None
    if data is None:
        found.problems.append(f"the file {wanted} is not stored in the ledger, so only its counts show")
        return found
    try:
        if isinstance(predicate, p.TestRun):
            found.report = report_view(data)
        elif isinstance(predicate, p.Scan):
            found.sarif = sarif_view(data, predicate)
        elif isinstance(predicate, p.Sbom):
            found.soup = soup_view(Item(event, predicate), data)
    except LedgerError as exc:
        found.problems.append(f"the file {wanted} could not be read: {exc}")
    return found


def _findings_text(findings: p.Findings) -> str:
    counts = [f"{n} {name}" for name, n in msgspec.structs.asdict(findings).items() if n]
    return ", ".join(counts) + " open" if counts else "no open finding"


_HEADLINES: dict[type[Any], Callable[[Any], str]] = {
    p.Change: lambda v: f"{v.change_id}, risk class {v.risk_class}",
    p.Build: lambda v: f"build {v.build_id} of {v.commit}",
    p.TestRun: lambda v: f"{v.suite}: {v.result} ({v.passed} passed, {v.failed} failed, {v.skipped} skipped)",
    p.Scan: lambda v: f"{v.tool} {v.tool_version}: {_findings_text(v.findings)}",
    p.Validation: lambda v: f"{v.dataset.name} {v.dataset.version}: {v.result}",
    p.Approval: lambda v: f"{v.role}: {v.decision} ({v.meaning})",
    p.PolicyException: lambda v: f"waives {v.rule} until {v.expires}",
    p.ExceptionReview: lambda v: f"review of entry {v.exception_entry}: {v.outcome}",
    p.Deployment: lambda v: f"{v.environment}: {v.result}",
    p.Rollback: lambda v: f"{v.environment}: {v.result}, back to {v.to_digest}",
    p.Sbom: lambda v: f"{v.format} {v.spec_version}, {v.components} components",
    p.Vex: lambda v: f"{v.format}, {len(v.statements)} statements",
    p.Requirements: lambda v: f"{v.document_id} version {v.document_version}",
    p.Anomaly: lambda v: f"{v.anomaly_id}: {v.description}",
    p.Seal: lambda v: f"sealed after {v.count} events",
    p.GateDecision: lambda v: f"{v.environment}: {v.decision}",
}


def headline(event: Event) -> str:
    """One line saying what an event records, for a timeline row (generic evidence: its predicate type)."""
    said = _HEADLINES.get(type(event.predicate))
    return event.predicate_type if said is None else said(event.predicate)
