"""A printable release record for the quality system: one self-contained HTML page. Pure.

It is rendered from a dossier that has just been verified offline, so
everything it shows was checked against the ledger key: the change summary,
the timeline, every signature's printed name, date/time and meaning (21 CFR
11.50), the compliance findings, the verification status, and how far the
release is proven complete (sealed, or only up to the last event shown).
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

from ledger.records import predicates as p
from ledger.rules.events import Event
from ledger.verify.dossier import Dossier, DossierReport

_STYLE = """
body { font: 11pt/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #111; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; } h2 { border-bottom: 1px solid #999; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; } th, td { border: 1px solid #bbb; padding: 0.3em 0.5em;
vertical-align: top; text-align: left; font-size: 0.95em; } th { background: #eee; }
.ok { color: #0a6b2a; font-weight: bold; } .bad { color: #a40000; font-weight: bold; }
.muted { color: #555; } code { font-size: 0.9em; word-break: break-all; }
.complete { border: 2px solid #0a6b2a; padding: 0.5em; } .open { border: 3px solid #a40000; padding: 0.5em; }
@media print { body { margin: 0; max-width: none; } h2 { page-break-after: avoid; }
  tr { page-break-inside: avoid; } }
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


def _cell(value: object) -> str:
    return f"<td>{escape(str(value))}</td>"


def _facts(summary: dict[str, Any]) -> str:
    parts = []
    for key, value in summary.items():
        if value in (None, "", [], {}):
            continue
        text = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else value
        parts.append(f"<b>{escape(key)}</b>: {escape(str(text))}")
    return "<br>".join(parts)


def _rows(events: Iterable[Event]) -> str:
    rows = []
    for event in events:
        signer = f"{event.signer.owner} ({', '.join(event.signer.roles)})"
        rows.append(
            "<tr>" + _cell(event.index) + _cell(event.time) + _cell(event.kind) + _cell(signer)
            + f"<td>{_facts(event.summary)}</td></tr>"
        )  # fmt: skip
    return "\n".join(rows)


def _signatures(events: Iterable[Event]) -> str:
    rows = []
    for event in events:
        text = manifestation(event)
        if text is None:
            continue
        pred = event.predicate
        decision = pred.decision.upper() if isinstance(pred, p.Approval) else "-"
        meaning = pred.meaning if isinstance(pred, p.Approval) else "-"
        rows.append(
            "<tr>" + _cell(text) + _cell(event.signer.owner) + _cell(event.time) + _cell(decision)
            + _cell(meaning) + _cell(event.signer.keyid) + _cell(f"entry {event.index}") + "</tr>"
        )  # fmt: skip
    return "\n".join(rows) or '<tr><td colspan="7" class="muted">no signed decisions</td></tr>'


def _change(events: Iterable[Event]) -> str:
    parts = []
    for event in events:
        pred = event.predicate
        if isinstance(pred, p.Change):
            s = pred.summary
            parts.append(
                f"<p><b>{escape(pred.change_id)}</b>, risk class <b>{escape(pred.risk_class)}</b>; "
                f"author {escape(pred.author)}; "
                f"affects intended use: {'yes' if pred.affects_intended_use else 'no'}; "
                f"patient-facing output: {'yes' if pred.patient_facing_output else 'no'}.</p>"
                f"<table><tr><th>What changed</th>{_cell(s.what)}</tr><tr><th>Why</th>{_cell(s.why)}</tr>"
                f"<tr><th>Risk</th>{_cell(s.risk)}</tr><tr><th>Mitigation</th>{_cell(s.mitigation)}</tr></table>"
            )
    return "\n".join(parts) or '<p class="muted">No change classification was recorded.</p>'


def _findings(compliance: dict[str, Any]) -> str:
    findings = compliance.get("findings", [])
    if not findings:
        return '<p class="ok">No findings.</p>'
    rows = [
        "<tr>" + _cell(f["rule"]) + _cell(f["status"]) + _cell(f["message"])
        + _cell(", ".join(str(i) for i in f.get("entries", []))) + "</tr>"
        for f in findings
    ]  # fmt: skip
    return (
        "<table><tr><th>Rule</th><th>Status</th><th>Finding</th><th>Entries</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def render_report(dossier: Dossier, report: DossierReport, *, ledger_key: str) -> str:
    """The release record as one HTML page; `report` is the result of verifying `dossier`."""
    status = str(report.compliance.get("status", "unknown"))
    status_class = "ok" if status == "compliant" else "bad"
    completeness = report.completeness
    box = "complete" if completeness.complete else "open"
    checks = "".join(f"<li>{escape(c)}</li>" for c in report.checks)
    title = f"Release record: {dossier.product} {dossier.version}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="muted">Generated from a dossier verified offline with the ledger key
<code>{escape(ledger_key)}</code>,
at checkpoint size {report.checkpoint.size} (root <code>{report.checkpoint.root_hash.hex()}</code>).</p>
<p>Compliance: <span class="{status_class}">{escape(status)}</span>
(policy entry {escape(str(report.compliance.get("policy", {}).get("entry", "-")))},
evaluated at {escape(dossier.evaluated_at)}).
Release chain: {completeness.chain_length} events.</p>
<p class="{box}"><b>Completeness:</b> {escape(completeness.statement())}</p>
<h2>Change</h2>
{_change(report.events)}
<h2>Signatures (printed name, date and time, meaning)</h2>
<table><tr><th>Signed decision</th><th>Printed name</th><th>Date and time (UTC)</th><th>Decision</th>
<th>Meaning of signature</th><th>Key</th><th>Record</th></tr>
{_signatures(report.events)}
</table>
<h2>Timeline</h2>
<table><tr><th>Entry</th><th>Time (UTC)</th><th>Kind</th><th>Signed by</th><th>Facts</th></tr>
{_rows(report.events)}
</table>
<h2>Compliance findings</h2>
{_findings(report.compliance)}
<h2>Verification</h2>
<p class="ok">Verified offline: every check below passed.</p>
<ul>{checks}</ul>
<p class="{box}"><b>Completeness:</b> {escape(completeness.statement())}</p>
</body></html>
"""
