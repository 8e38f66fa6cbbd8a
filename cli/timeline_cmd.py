"""`evledger timeline PRODUCT VERSION`: a release's timeline as a readable table (docs/cli.md).

It reads `GET /v1/releases/{product}/{version}/timeline` with an auditor (or
any read) token and prints one row per event: index, time, kind, the signer's
registered owner and roles, and the facts an auditor reads for that kind; then
a footer with the chain's count and head, whether it is unbroken, and whether
a seal closes it (an open release may still get events).
`--json` prints the route's response as the command's JSON object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

import typer

from cli.client import LedgerClient
from cli.errors import JsonOption, command_errors, emit_success
from cli.settings import DEFAULT_SERVER, ServerOption, TokenOption
from ledger.query.report import approval_manifestation

_HEADERS = ("index", "time", "kind", "signer", "facts")
Facts = Callable[[dict[str, Any]], str]


def _short(digest: object, keep: int = 19) -> str:
    text = str(digest)
    return text if len(text) <= keep else text[:keep] + "…"


def _change(s: dict[str, Any]) -> str:
    flags = [
        name
        for name, on in (
            ("affects intended use", s["affects_intended_use"]),
            ("patient-facing output", s["patient_facing_output"]),
        )
        if on
    ]
    what = s["summary"]["what"]
    return f"{s['change_id']} risk {s['risk_class']}: {what} (author {s['author']})" + "".join(
        f"; {f}" for f in flags
    )


def _build(s: dict[str, Any]) -> str:
    artifacts = ", ".join(f"{a['name']} {_short(a['digest'])}" for a in s["artifacts"])
    return f"{s['build_id']} {s['repository']}@{str(s['commit'])[:12]} by {s['builder']}; {artifacts}"


def _test_run(s: dict[str, Any]) -> str:
    counts = f"{s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped"
    return f"{s['suite']} {s['result']} ({counts}) in {s['environment']}"


def _scan(s: dict[str, Any]) -> str:
    findings = ", ".join(f"{k} {v}" for k, v in s["findings"].items() if v)
    return f"{s['tool']} {s['tool_version']}: {findings or 'no findings'}"


def _validation(s: dict[str, Any]) -> str:
    dataset = s["dataset"]
    text = f"{s['objective']}: {s['result']} on {dataset['name']} {dataset['version']}"
    text += " (manual)" if s["manual"] else ""
    return text + (f"; defects {', '.join(s['defects'])}" if s["defects"] else "")


def _approval(s: dict[str, Any], time: str) -> str:
    text = approval_manifestation(
        decision=s["decision"], name=s["approver"], role=s["role"], meaning=s["meaning"],
        signed=s.get("signed_at"), time=time,
    )  # fmt: skip
    text += f"; of {_short(s['artifact_digest'])}"
    text += f", entries {s['entries']}" if s["entries"] else ""
    return text + (f": {s['comment']}" if s.get("comment") else "")


def _deployment(s: dict[str, Any]) -> str:
    digests = " → ".join(_short(d) for d in s["digests"])
    reason = f": {s['reason']}" if s.get("reason") else ""
    return f"{s['environment']} {s['result']} {digests} ({s['started']} to {s['finished']}){reason}"


def _generic(s: dict[str, Any]) -> str:
    values = ", ".join(f"{k}={v}" for k, v in s.get("values", {}).items())
    return values or "fields: " + ", ".join(s.get("predicate_keys", []))


_FACTS: dict[str, Facts] = {
    "change": _change,
    "build": _build,
    "test-run": _test_run,
    "scan": _scan,
    "validation": _validation,
    "exception": lambda s: f"rule {s['rule']}: {s['justification']} (expires {s['expires']})",
    "exception-review": lambda s: f"of entry {s['exception_entry']}: {s['outcome']}: {s['comment']}",
    "deployment": _deployment,
    "rollback": _deployment,
    "release-seal": lambda s: f"sealed after {s['count']} entries, head {_short(s['head'], 16)}",
    "gate-decision": lambda s: f"{s['environment']}: {s['decision']}",
}


def facts(event: dict[str, Any]) -> str:
    """One line of the facts an auditor reads for an event view (generic ones: its plain values).

    Precondition: `event` is an event view as the timeline route returns it.
    """
    render = _FACTS.get(event["kind"])
    summary = event["summary"]
    try:
        if event["kind"] == "approval":  # the one kind whose line needs the time: 21 CFR 11.50
            text = _approval(summary, event["time"])
        else:
            text = render(summary) if render is not None else _generic(summary)
    except (KeyError, TypeError, AttributeError):
        text = _generic(summary)  # a summary of another shape (a newer server): still show something
    if event["release_seq"] is None:
        return f"[{event['predicate_type']}, linked by subject] {text}"
    return text


def render_table(timeline: dict[str, Any]) -> list[str]:
    """The lines the command prints for a timeline response: header, one row per event, footer."""
    rows = [
        (
            str(e["index"]),
            e["time"],
            e["kind"],
            f"{e['signer']['owner']} ({', '.join(e['signer']['roles'])})",
            facts(e),
        )
        for e in timeline["events"]
    ]
    widths = [max(len(r[i]) for r in [_HEADERS, *rows]) for i in range(len(_HEADERS) - 1)]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()

    head = timeline["head"]
    # "complete" on the wire means the chain has no gap; only a seal closes it (issue #9).
    unbroken = "yes" if timeline["complete"] else "NO (it has a gap)"
    sealed = "yes (closed)" if timeline["sealed"] else "no (open: later events may be recorded)"
    footer = (
        f"{len(rows)} events; chain of {timeline['count']} entries, head {head['index']} "
        f"(leaf {head['leaf_hash'][:16]}…); unbroken: {unbroken}; sealed: {sealed}"
    )
    return [
        f"release {timeline['product']} {timeline['version']}",
        line(_HEADERS),
        line(tuple("-" * w for w in [*widths, len(_HEADERS[-1])])),
        *(line(r) for r in rows),
        "",
        footer,
    ]


def timeline(
    product: Annotated[str, typer.Argument(help="The product, as the evidence names it.")],
    version: Annotated[str, typer.Argument(help="The release's version.")],
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print a release's timeline: every event, who signed it in what role, and whether it is complete."""
    with command_errors(json_output=json_output):
        path = f"/v1/releases/{quote(product, safe='')}/{quote(version, safe='')}/timeline"
        with LedgerClient(server, token) as client:
            found: dict[str, Any] = client.get(path).json()
        emit_success(json_output=json_output, fields=found, lines=render_table(found))
