"""A printable release record for the quality system: one self-contained HTML page. Pure (issue #12).

It is rendered from a dossier that has just been verified offline, so
everything it shows was checked against the ledger key: the policy in force by
name, version and the tier applied, with every rule's result; the change
summary; every signature's printed name, date/time and meaning (21 CFR 11.50);
what was deployed where; the reports and digests the evidence names; the
timeline; the verification status; and how far the release is proven complete
(sealed, or only up to the last event shown).

The page is written for paper as well as for screens: CSS paged media give
every page a header (the release and the document id) and a footer ("Page N of
M"), tables have a fixed layout and break long digests, and timestamps never
wrap. `ledger.query.report_pdf` turns it into a PDF. Values are always written
as text for people (yes/no, lists, "key: value"), never as Python data.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, Literal

from ledger.compliance.facts import collect
from ledger.compliance.gate import entry_uri
from ledger.compliance.traceability import release_matrix
from ledger.core.dsse import envelope_payload
from ledger.core.encoding import b64decode_strict
from ledger.core.entry import parse_entry
from ledger.query.traceability import release_sbom, soup_view
from ledger.records import predicates as p
from ledger.records.admin import PolicyPublished, decode_admin_record, policy_from_record
from ledger.records.attachments import referenced_files
from ledger.records.policy import RULES, Policy
from ledger.records.predicates import RiskClass
from ledger.records.requirements import decode_baseline
from ledger.rules.events import Event
from ledger.verify.dossier import Dossier, DossierReport

FileReader = Callable[[str], bytes | None]  # an evidence file by digest (sha256:<hex>), or None

Paper = Literal["A4", "Letter"]
PAPERS: tuple[Paper, ...] = ("A4", "Letter")
RuleResult = Literal["met", "fail", "missing", "waived", "off in this policy"]
DOCUMENT_ID_PREFIX = "RR-"
_DOCUMENT_ID_DOMAIN = "evledger release record v1"

# Fonts: DejaVu is what the Docker image installs (fonts-dejavu-core); the rest are fallbacks.
_SANS = '"DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif'
_MONO = '"DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace'
_STYLE = f"""
body {{ font: 10pt/1.4 {_SANS}; margin: 2em auto; max-width: 62em; color: #111; }}
h1 {{ font-size: 1.5em; margin: 0 0 0.2em; }}
h2 {{ font-size: 1.2em; border-bottom: 1px solid #999; margin: 1.4em 0 0.5em; break-after: avoid; }}
h3 {{ font-size: 1em; margin: 1em 0 0.4em; break-after: avoid; }}
p {{ margin: 0.4em 0; }}
table {{ border-collapse: collapse; width: 100%; table-layout: fixed; margin: 0.3em 0 0.6em; }}
th, td {{ border: 1px solid #bbb; padding: 0.25em 0.4em; vertical-align: top; text-align: left;
  font-size: 8.5pt; overflow-wrap: anywhere; word-break: break-word; }}
th {{ background: #eee; }}
thead {{ display: table-header-group; }}
tr {{ break-inside: avoid; }}
table.facts th {{ width: 27%; }}
code, .digest {{ font-family: {_MONO}; font-size: 0.92em; word-break: break-all; overflow-wrap: anywhere; }}
.ts {{ font-family: {_MONO}; font-size: 0.92em; white-space: nowrap; }}
.ok {{ color: #0a6b2a; font-weight: bold; }} .bad {{ color: #a40000; font-weight: bold; }}
.warn {{ color: #8a5a00; font-weight: bold; }} .muted {{ color: #555; }}
.nw {{ white-space: nowrap; }}
.docid {{ font-family: {_MONO}; font-weight: bold; white-space: nowrap; }}
.complete {{ border: 2px solid #0a6b2a; padding: 0.5em; }}
.open {{ border: 3px solid #a40000; padding: 0.5em; }}
ul {{ margin: 0.3em 0; padding-left: 1.4em; }}
@media print {{ body {{ margin: 0; max-width: none; }} }}
"""


def approval_manifestation(  # noqa: PLR0913 - the parts of 21 CFR 11.50's manifestation, one each
    *, decision: str, name: str, role: str, meaning: str, signed: str | None, time: str
) -> str:
    """How a signed approval reads for people (21 CFR 11.50): decision, printed name, role, meaning, times.

    The decision comes first, in capitals, so that a rejection can never read as an
    approval; the meaning of the signature (review, approval, responsibility,
    authorship) is named as such; the time of signing (11.50(a)(2)) and the time the
    ledger recorded it follow (an approval recorded before `signed_at` was required has
    only the latter). Every place that shows an approval to people (the release record,
    `evledger timeline`, `evledger verify`) prints this.
    """
    when = f"signed {signed}, recorded {time}" if signed is not None else f"recorded {time}"
    return f"{decision.upper()} by {name} as {role} (meaning of signature: {meaning}), {when}"


def manifestation(event: Event) -> str | None:
    """The printed manifestation of a signed decision (approval, exception, seal); None for other events.

    The printed name is the signing key's registered owner, the time the one the ledger recorded.
    """
    pred, name, time = event.predicate, event.signer.owner, event.time
    if isinstance(pred, p.Approval):
        return approval_manifestation(
            decision=pred.decision,
            name=name,
            role=pred.role,
            meaning=pred.meaning,
            signed=pred.signed_at,
            time=time,
        )
    if isinstance(pred, p.PolicyException):
        return f"EXCEPTION to rule {pred.rule} GRANTED by {name}, recorded {time}"
    if isinstance(pred, p.Seal):
        return f"RELEASE RECORD SEALED by {name}, recorded {time}"
    return None


# --- identity and policy ---------------------------------------------------------------------------------


def chain_head(events: Iterable[Event]) -> Event | None:
    """The newest event of the release's chain (the highest `release_seq`); None when there is none."""
    chained = [e for e in events if e.release_seq is not None]
    return max(chained, key=lambda e: e.release_seq or 0) if chained else None


def document_id(dossier: Dossier, report: DossierReport) -> str:
    """The record's document id: `RR-` and 16 hex digits in groups of four (docs/cli.md#report).

    It is the start of SHA-256 over, one per line: the label `evledger release record v1`,
    the checkpoint's origin, size and root hash (hex), the product, the version, the release
    chain head's log index and leaf hash (hex; `-` and `-` without one), the evaluation time
    and the environment evaluated for (`-` for the release as a whole). The same verified
    dossier always gives the same id; a later checkpoint, a new event on the chain or
    another evaluation gives another.
    """
    head = chain_head(report.events)
    lines = [
        _DOCUMENT_ID_DOMAIN,
        report.checkpoint.origin,
        str(report.checkpoint.size),
        report.checkpoint.root_hash.hex(),
        dossier.product,
        dossier.version,
        "-" if head is None else str(head.index),
        "-" if head is None else head.leaf_hash.hex(),
        dossier.evaluated_at,
        dossier.environment or "-",
    ]
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16].upper()
    return DOCUMENT_ID_PREFIX + "-".join(digest[i : i + 4] for i in range(0, 16, 4))


def policy_of(dossier: Dossier) -> Policy | None:
    """The policy the dossier's policy entry publishes; None without one.

    Precondition: the dossier was verified (`verify_dossier` proved and admitted its policy entry).
    """
    if dossier.policy is None:
        return None
    entry = parse_entry(b64decode_strict(dossier.policy.entry, "policy entry"))
    record = decode_admin_record(envelope_payload(entry.envelope))
    return policy_from_record(record) if isinstance(record, PolicyPublished) else None


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """One rule of the policy with its result for the release and the findings behind it."""

    rule: str
    description: str
    result: RuleResult
    findings: tuple[Mapping[str, Any], ...]


_WORST_FIRST: tuple[RuleResult, ...] = ("fail", "missing", "waived")


def rule_outcomes(policy: Policy | None, findings: Sequence[Mapping[str, Any]]) -> list[RuleOutcome]:
    """Every rule's result: met, fail, missing or waived for a rule in force, else "off in this policy".

    The rules are `RULES` in order; a rule in force (`Policy.rules_in_force`) is `met` when no
    finding names it, else the worst of its findings (fail, then missing, then waived). A rule in
    force or a finding's rule that `RULES` does not describe is listed after them. Without a policy
    (an unverified dossier) every rule counts as in force.
    """
    in_force = list(policy.rules_in_force()) if policy is not None else list(RULES)
    by_rule: dict[str, list[Mapping[str, Any]]] = {}
    for finding in findings:
        by_rule.setdefault(str(finding.get("rule", "")), []).append(finding)
    outcomes = []
    for rule in dict.fromkeys([*RULES, *in_force, *by_rule]):
        found = tuple(by_rule.get(rule, ()))
        statuses = {str(f.get("status")) for f in found}
        result: RuleResult
        if rule not in in_force and not found:
            result = "off in this policy"
        else:
            result = next((s for s in _WORST_FIRST if s in statuses), "met")
        described = RULES.get(rule, "(a rule this version does not describe)")
        outcomes.append(RuleOutcome(rule, described, result, found))
    return outcomes


# --- text for people ---------------------------------------------------------------------------------------

_DIGEST = re.compile(r"^(sha256|sha384|sha512|sha1|gitCommit):[0-9a-fA-F]{16,}$|^[0-9a-fA-F]{32,}$")
_TIME_TEXT = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)"
_TIME = re.compile(f"^{_TIME_TEXT}$")
_TIME_IN_TEXT = re.compile(f"(?<![\\w:.-]){_TIME_TEXT}(?![\\w:.-])")


def plain(value: object) -> str:
    """Any JSON value as text for people: yes/no, `-` for nothing, lists joined, mappings as `key: value`."""
    if isinstance(value, Mapping):
        return "; ".join(f"{_label(k)}: {plain(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        sep = " | " if all(isinstance(v, Mapping) for v in value) else ", "
        return sep.join(plain(v) for v in value) or "none"
    return _scalar(value)


def _scalar(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value if isinstance(value, str) else str(value) if isinstance(value, int | float) else "(a value)"


def _label(key: object) -> str:
    return str(key).replace("_", " ")


def _value_html(value: object) -> str:
    """A value as HTML: digests in a breakable code style, timestamps unwrapped, the rest as `plain`."""
    if isinstance(value, Mapping):
        return "; ".join(f"{escape(_label(k))}: {_value_html(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        sep = " | " if all(isinstance(v, Mapping) for v in value) else ", "
        return sep.join(_value_html(v) for v in value) or "none"
    if isinstance(value, str) and _TIME.match(value):
        return _ts(value)
    if isinstance(value, str) and _DIGEST.match(value):
        return _code(value)
    return text(_scalar(value))


def _ts(time: str | None) -> str:
    return "-" if time is None else f'<span class="ts">{escape(time)}</span>'


def _code(value: str) -> str:
    return f"<code>{escape(value)}</code>"


def text(value: object) -> str:
    """`plain(value)` as HTML, each timestamp in it kept on one line (a `nw` span)."""
    return _TIME_IN_TEXT.sub(lambda m: f'<span class="nw">{m[0]}</span>', escape(plain(value)))


def _cell(value: object) -> str:
    return f"<td>{text(value)}</td>"


def _td(html: str) -> str:
    return f"<td>{html}</td>"


def _table(widths: Sequence[int], headers: Sequence[str], rows: Sequence[str], empty: str) -> str:
    """A fixed-layout table: column widths in percent, a header repeated on every page, the rows."""
    cols = "".join(f'<col style="width: {w}%">' for w in widths)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "\n".join(rows) or f'<tr><td colspan="{len(headers)}" class="muted">{escape(empty)}</td></tr>'
    head_html = f"<colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead>"
    return f"<table>{head_html}<tbody>\n{body}\n</tbody></table>"


def _facts_table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="facts"><tbody>{body}</tbody></table>'


def _css_string(text: str) -> str:
    """`text` as a CSS string literal: anything but plain characters is a hex escape (no `</style>`)."""
    safe = " .-_:+/()"
    quoted = "".join(c if (c.isalnum() and c.isascii()) or c in safe else f"\\{ord(c):x} " for c in text)
    return f'"{quoted}"'


# --- sections ---------------------------------------------------------------------------------------------


def _facts(summary: Mapping[str, Any]) -> str:
    parts = [
        f"<b>{escape(_label(key))}</b>: {_value_html(value)}"
        for key, value in summary.items()
        if value not in (None, "", [], {})
    ]
    return "<br>".join(parts)


def _timeline(events: Iterable[Event]) -> str:
    rows = [
        "<tr>" + _cell(event.index) + _td(_ts(event.time)) + _cell(event.kind)
        + _cell(f"{event.signer.owner} ({', '.join(event.signer.roles) or 'no role'})")
        + _td(_facts(event.summary)) + "</tr>"
        for event in events
    ]  # fmt: skip
    headers = ["Entry", "Time (UTC)", "Kind", "Signed by", "Facts"]
    return _table([7, 25, 12, 17, 39], headers, rows, "no events")


def _signatures(events: Iterable[Event]) -> str:
    rows = []
    for event in events:
        text = manifestation(event)
        if text is None:
            continue
        pred = event.predicate
        decision = pred.decision.upper() if isinstance(pred, p.Approval) else "-"
        meaning = pred.meaning if isinstance(pred, p.Approval) else "-"
        signer = f"{escape(event.signer.owner)}<br>key {_code(event.signer.keyid)}"
        rows.append(
            "<tr>" + _cell(text) + _td(signer) + _td(_ts(event.time)) + _cell(decision) + _cell(meaning)
            + _cell(event.index) + "</tr>"
        )  # fmt: skip
    headers = ["Signed decision", "Printed name and key", "Date and time (UTC)", "Decision", "Meaning"]
    headers.append("Entry")
    return _table([25, 19, 24, 12, 13, 7], headers, rows, "no signed decisions")


def _change(events: Iterable[Event]) -> str:
    parts = []
    for event in events:
        pred = event.predicate
        if isinstance(pred, p.Change):
            s = pred.summary
            parts.append(
                f"<p><b>{escape(pred.change_id)}</b>, risk class <b>{escape(pred.risk_class)}</b>; "
                f"author {escape(pred.author)}; "
                f"affects intended use: {plain(pred.affects_intended_use)}; "
                f"patient-facing output: {plain(pred.patient_facing_output)}; "
                f"components: {escape(plain(pred.components))} (entry {event.index}).</p>"
                + _facts_table([("What changed", escape(s.what)), ("Why", escape(s.why)),
                                ("Risk", escape(s.risk)), ("Mitigation", escape(s.mitigation))])
            )  # fmt: skip
    return "\n".join(parts) or '<p class="muted">No change classification was recorded.</p>'


_RESULT_CLASS = {"met": "ok", "fail": "bad", "missing": "bad", "waived": "warn"}  # else "muted"


def _finding_text(found: Mapping[str, Any]) -> str:
    entries = ", ".join(str(i) for i in found.get("entries", [])) or "none"
    waived = found.get("waived_by")
    status, message = text(found.get("status", "")), text(found.get("message", ""))
    said = f"{status}: {message} (entries {entries}"
    return said + (f"; waived by the exception at entry {waived})" if waived is not None else ")")


def _tier(policy: Policy | None, risk: RiskClass | None) -> str:
    if policy is None:
        return '<p class="bad">The dossier carries no policy entry.</p>'
    if risk is None:
        return '<p class="bad">No tier applies: the release records no change with a risk class.</p>'
    tier = policy.tier(risk)
    limits = tier.max_open_findings
    scans = (
        "no scan required"
        if limits is None
        else f"critical {limits.critical}, high {limits.high}, medium {limits.medium}, low {limits.low}"
    )
    return f"<h3>Tier applied: {escape(risk)}</h3>" + _facts_table([
        ("Required test suites", escape(", ".join(tier.required_suites) or "none")),
        ("Required approval roles", escape(", ".join(tier.required_approval_roles) or "none")),
        ("Validation", "required" if tier.require_validation else "not required"),
        ("Most open scan findings", escape(scans)),
    ])  # fmt: skip


def _rules(policy: Policy | None, findings: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for outcome in rule_outcomes(policy, findings):
        detail = "<br>".join(_finding_text(f) for f in outcome.findings) or (
            "no finding" if outcome.result == "met" else "-"
        )
        css = _RESULT_CLASS.get(outcome.result, "muted")
        rows.append(
            "<tr>" + _td(_code(outcome.rule)) + _cell(outcome.description)
            + f'<td class="{css}">{escape(outcome.result)}</td>' + _td(detail) + "</tr>"
        )  # fmt: skip
    headers = ["Rule", "Requirement", "Result", "Findings (entries)"]
    table = _table([22, 35, 11, 32], headers, rows, "no rules")
    return f"<h3>Every rule and its result</h3>{table}"


def _deployments(events: Iterable[Event]) -> str:
    rows = []
    for event in events:
        pred = event.predicate
        if isinstance(pred, p.Deployment):
            what, digest = f"deployment: {pred.result}", _code(pred.artifact_digest)
            when = f"{_ts(pred.started)} to<br>{_ts(pred.finished)}"
            if pred.infrastructure_revision:
                what += f" (infrastructure {pred.infrastructure_revision})"
        elif isinstance(pred, p.Rollback):
            what = f"rollback: {pred.result}; {pred.reason}"
            digest = f"from {_code(pred.from_digest)}<br>to {_code(pred.to_digest)}"
            when = f"{_ts(pred.started)} to<br>{_ts(pred.finished)}"
        elif isinstance(pred, p.GateDecision):
            what = f"gate decision: {pred.decision} (verification {pred.verification_result.lower()})"
            digest, when = "-", _ts(pred.time_verified)
        else:
            continue
        rows.append(
            "<tr>" + _cell(pred.environment) + _cell(what) + _td(digest) + _td(when)
            + _td(f"entry {event.index}<br>{_ts(event.time)}") + "</tr>"
        )  # fmt: skip
    headers = ["Environment", "What", "Artifact digest", "Time (UTC)", "Recorded (UTC)"]
    return _table([14, 17, 21, 24, 24], headers, rows, "nothing was deployed")


def _digest_text(digest: Mapping[str, str]) -> str:
    return ", ".join(f"{k}:{v}" for k, v in sorted(digest.items()))


# Keys (lower case, `_` and `-` dropped) under which generic evidence names where a report or file lies.
_LOCATION_KEYS = frozenset(
    {"uri", "url", "location", "downloadlocation", "reportlocation", "reporturi", "reporturl"}
)


def _locations(raw: object, path: str = "") -> Iterable[tuple[str, str]]:
    """(key path, value) of every string under a location-like key in generic evidence."""
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(value, str) and re.sub(r"[_-]", "", str(key).lower()) in _LOCATION_KEYS:
                yield where, value
            else:
                yield from _locations(value, where)
    elif isinstance(raw, list):
        for number, value in enumerate(raw):
            yield from _locations(value, f"{path}[{number}]")


_ENTRY_URN = entry_uri(0).removesuffix("0")  # the gate's URI for an entry of this ledger


Reference = tuple[str, str | None, str | None]  # (what, location, digest)


def _build_refs(pred: p.Build) -> Iterable[Reference]:
    yield from ((f"built artifact {a.name}", None, a.digest) for a in pred.artifacts)
    if pred.dependency_lock_digest:
        yield "dependency lock", None, pred.dependency_lock_digest


def _gate_refs(pred: p.GateDecision) -> Iterable[Reference]:
    yield f"policy of the {pred.decision} gate decision", pred.policy.uri, _digest_text(pred.policy.digest)
    inputs = pred.input_attestations
    ours = [a.uri.removeprefix(_ENTRY_URN) for a in inputs if a.uri.startswith(_ENTRY_URN)]
    if ours:  # entries of this ledger, each named by its leaf hash: verified above, listed once
        yield f"gate decision inputs: {len(ours)} entries of this ledger", f"entries {', '.join(ours)}", None
    for attestation in inputs:
        if not attestation.uri.startswith(_ENTRY_URN):
            yield "gate decision input", attestation.uri, _digest_text(attestation.digest)


def _generic_refs(event: Event) -> Iterable[Reference]:
    if event.statement is None:
        return
    for subject in event.statement.subject:
        location = subject.download_location or subject.uri or None
        yield f"subject {subject.name or '-'}", location, _digest_text(subject.digest) or None
    for where, location in _locations(event.statement.predicate):
        yield f"{event.predicate_type} {where}", location, None


def _references(event: Event) -> Iterable[Reference]:
    """(what, location, digest) of each report, artifact or input the event names."""
    pred = event.predicate
    if isinstance(pred, p.Build):
        return _build_refs(pred)
    if isinstance(pred, p.TestRun):
        report = (f"{pred.suite} test report", pred.report_location, pred.report_digest)
        return [report, *_file_refs(pred, skip={pred.report_digest or ""})]
    if isinstance(pred, p.Scan):
        report = (f"{pred.tool} {pred.tool_version} scan report", None, pred.report_digest)
        return [report, *_file_refs(pred, skip={pred.report_digest or ""})]
    if isinstance(pred, p.Validation):
        dataset = pred.dataset
        refs = [(f"validation dataset {dataset.name} {dataset.version}", None, dataset.digest)]
        return [*refs, *_file_refs(pred, skip={dataset.digest})]
    if isinstance(pred, p.GateDecision):
        return _gate_refs(pred)
    return _generic_refs(event) if pred is None else _file_refs(pred, skip=set())


def _file_refs(pred: p.Predicate, skip: set[str]) -> list[Reference]:
    """The evidence files a predicate names (its report, SBOM, SOUP list, baseline, attachments)."""
    return [
        (ref.what, "stored in the ledger", ref.digest)
        for ref in referenced_files(pred)
        if ref.digest not in skip
    ]


def _reports(events: Iterable[Event]) -> str:
    rows = [
        "<tr>" + _cell(event.index) + _cell(what)
        + _td(_code(location) if location else '<span class="muted">not recorded</span>')
        + _td(_code(digest) if digest else '<span class="muted">not recorded</span>') + "</tr>"
        for event in events
        for what, location, digest in _references(event)
    ]  # fmt: skip
    headers = ["Entry", "Report or artifact", "Location", "Digest"]
    return _table([8, 28, 30, 34], headers, rows, "none recorded")


def _summary(dossier: Dossier, report: DossierReport, policy: Policy | None, ident: str, key: str) -> str:
    compliance = report.compliance
    status = str(compliance.get("status", "unknown"))
    named = compliance.get("policy") or {}
    risk = compliance.get("risk_class")
    if policy is not None:
        policy_text = (
            f"<b>{escape(policy.name)}</b> version <b>{escape(policy.version)}</b>, published at entry "
            f"{escape(plain(named.get('entry')))}; digest {_code(str(named.get('digest', '-')))}"
        )
    else:
        policy_text = '<span class="bad">none in the dossier</span>'
    candidates = compliance.get("candidates") or []
    checkpoint = report.checkpoint
    anchor = f"{escape(checkpoint.origin)}, size {checkpoint.size}, root {_code(checkpoint.root_hash.hex())}"
    tier = f"{escape(str(risk))} (the change's risk class)" if risk else "none (no change class)"
    return _facts_table([
        ("Document ID", f'<span class="docid">{escape(ident)}</span>'),
        ("Release", f"{escape(dossier.product)} {escape(dossier.version)}"),
        ("Compliance", f'<span class="{"ok" if status == "compliant" else "bad"}">{escape(status)}</span>'),
        ("Policy", policy_text),
        ("Tier applied", tier),
        ("Evaluated at", _ts(dossier.evaluated_at)),
        ("Evaluated for", escape(dossier.environment) if dossier.environment else "the release as a whole"),
        ("Candidate artifacts", "<br>".join(
            f"{escape(str(c.get('name')))}: {_code(str(c.get('digest')))}" for c in candidates) or "none"),
        ("Checkpoint", anchor),
        ("Ledger key", _code(key)),
        ("Release chain", f"{report.completeness.chain_length} events"),
    ])  # fmt: skip


def _page_css(paper: Paper, running: str, ident: str, footer: str) -> str:
    return f"""
@page {{ size: {paper}; margin: 20mm 15mm 18mm 15mm;
  @top-left {{ content: {_css_string(running)}; font: 8pt {_SANS}; color: #333; }}
  @top-right {{ content: {_css_string("Document ID " + ident)}; font: bold 8pt {_MONO}; color: #333; }}
  @bottom-left {{ content: {_css_string(footer)}; font: 7.5pt {_SANS}; color: #555; }}
  @bottom-right {{ content: "Page " counter(page) " of " counter(pages); font: 8pt {_SANS}; color: #333; }}
}}
"""


def _no_files(_: str) -> bytes | None:
    return None


def _traceability(
    events: Sequence[Event], policy: Policy | None, environment: str | None, files: FileReader
) -> str:
    """The traceability matrix (IEC 62304 §5.7, §7.3.3), with titles when the baseline file is at hand."""
    if policy is None:
        return '<p class="muted">No policy in the dossier: the candidates are unknown.</p>'
    in_force = collect(events).baseline
    if in_force is None:
        return '<p class="muted">No requirements baseline is recorded for this release.</p>'
    data = files(in_force.pred.baseline_digest)
    baseline = decode_baseline(data) if data is not None else None
    matrix = release_matrix(events, policy, environment=environment, baseline=baseline)
    note = (
        ""
        if baseline is not None
        else (
            '<p class="muted">The baseline file is not in this dossier (an audit package carries it): '
            "titles and risk-control links are not shown.</p>"
        )
    )
    rows = []
    for row in matrix.rows:
        links = ", ".join(row.implements or row.implemented_by)
        tests = "; ".join(
            f"entry {t.entry} ({t.suite}): {t.passed}/{t.failed}/{t.skipped}" for t in row.tests
        )
        anomalies = ", ".join(f"entry {a}" for a in row.anomalies)
        state = row.status + ("" if row.dispositioned else ", not dispositioned")
        # A gap stands out: red for a failed or skipped case no anomaly record dispositions, amber
        # for a requirement not verified or verified only with dispositioned anomalies.
        mark = "ok" if row.status == "verified" else ("warn" if row.dispositioned else "bad")
        rows.append(
            "<tr>" + _td(f"{_code(row.id)}<br>{text(row.title or '')}")
            + _cell(f"{row.type}, {row.risk_class or 'no class'}") + _cell(links) + _cell(tests)
            + _cell(anomalies) + f'<td class="{mark}">{text(state)}</td>' + "</tr>"
        )  # fmt: skip
    summary = matrix.summary
    document = (
        f"{matrix.baseline.document_id} version {matrix.baseline.document_version}" if matrix.baseline else ""
    )
    counts = (
        f"Baseline {document}: {summary.requirements} requirements, {summary.verified} verified, "
        f"{summary.failed} failed, {summary.incomplete} incomplete, {summary.not_verified} not verified; "
        f"{summary.undispositioned} not dispositioned."
    )
    table = _table(
        [22, 12, 14, 26, 12, 14],
        ["Requirement", "Type, risk", "Risk controls", "Tests on the candidate (passed/failed/skipped)",
         "Anomalies", "Status"],
        rows,
        "The baseline lists no requirement.",
    )  # fmt: skip
    unknown = "".join(
        f"<li>{_code(u.id)}: entries {', '.join(str(e) for e in u.entries)}</li>" for u in matrix.unknown
    )
    extra = f"<p>Reported by tests, not in the baseline:</p><ul>{unknown}</ul>" if unknown else ""
    return f"<p>{text(counts)}</p>{note}{table}{extra}"


def _soup(events: Sequence[Event], policy: Policy | None, environment: str | None, files: FileReader) -> str:
    """The SOUP list of the release's SBOM (IEC 62304 §8.1.2), when its file is at hand."""
    item = release_sbom(events, policy, environment) if policy is not None else None
    if item is None:
        return '<p class="muted">No SBOM is recorded for this release.</p>'
    sbom = item.pred
    gaps = sbom.gaps
    tools = ", ".join(sbom.tools) or "an unnamed tool"
    head = (
        f"SBOM of entry {item.index} ({sbom.format} {sbom.spec_version}, by {tools}): {sbom.components} "
        f"components; {gaps.version} without a version, {gaps.supplier} without a supplier, "
        f"{gaps.licence} without a licence."
    )
    data = files(sbom.soup_list_digest)
    if data is None:
        return (
            f'<p>{text(head)}</p><p class="muted">The SOUP list file {_code(sbom.soup_list_digest)} '
            "is not in this dossier (an audit package carries it).</p>"
        )
    rows = [
        "<tr>" + _cell(c.name) + _cell(c.version or "") + _cell(c.supplier or "") + _cell(c.licence or "")
        + _cell(c.purl or "") + "</tr>"
        for c in soup_view(item, data).components
    ]  # fmt: skip
    table = _table(
        [20, 12, 20, 20, 28], ["Name", "Version", "Supplier", "Licence", "Package URL"], rows, "none"
    )
    return f"<p>{text(head)}</p>{table}"


def render_report(
    dossier: Dossier,
    report: DossierReport,
    *,
    ledger_key: str,
    paper: Paper = "A4",
    files: FileReader = _no_files,
) -> str:
    """The release record as one HTML page; `report` is the result of verifying `dossier`.

    `paper` (A4 or Letter) sets the printed page size; every page's header names the release
    and the document id (`document_id`), its footer the checkpoint and "Page N of M". `files`
    gives the evidence files an audit package carries (checked against their digests), for the
    traceability matrix's titles and the SOUP list; a plain dossier has none.
    """
    ident = document_id(dossier, report)
    policy = policy_of(dossier)
    completeness = report.completeness
    box = "complete" if completeness.complete else "open"
    checks = "".join(f"<li>{text(c)}</li>" for c in report.checks)
    title = f"Release record: {dossier.product} {dossier.version}"
    footer = f"Verified offline at checkpoint size {report.checkpoint.size}; {completeness.headline()}"
    findings = report.compliance.get("findings") or []
    risk = report.compliance.get("risk_class")
    style = _STYLE + _page_css(paper, title, ident, footer)
    sections: list[tuple[str, Callable[[], str]]] = [
        ("Policy and rule results", lambda: _tier(policy, risk) + _rules(policy, findings)),
        ("Change", lambda: _change(report.events)),
        ("Signatures (printed name, date and time, meaning)", lambda: _signatures(report.events)),
        ("Deployments and gate decisions", lambda: _deployments(report.events)),
        ("Traceability (IEC 62304 §5.7, §7.3.3)",
         lambda: _traceability(report.events, policy, dossier.environment, files)),
        ("SOUP list (IEC 62304 §8.1.2)", lambda: _soup(report.events, policy, dossier.environment, files)),
        ("Reports, artifacts and digests", lambda: _reports(report.events)),
        ("Timeline", lambda: _timeline(report.events)),
    ]  # fmt: skip
    body = "\n".join(f"<h2>{escape(name)}</h2>\n{render()}" for name, render in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="document-id" content="{escape(ident)}"><style>{style}</style></head>
<body>
<h1>{escape(title)}</h1>
<p>Document ID <span class="docid">{escape(ident)}</span>. Generated from a dossier verified offline
with the ledger key; everything below was checked against it.</p>
{_summary(dossier, report, policy, ident, ledger_key)}
<p class="{box}"><b>Completeness:</b> {text(completeness.statement())}</p>
{body}
<h2>Verification</h2>
<p class="ok">Verified offline: every check below passed.</p>
<ul>{checks}</ul>
<p class="{box}"><b>Completeness:</b> {text(completeness.statement())}</p>
</body></html>
"""
