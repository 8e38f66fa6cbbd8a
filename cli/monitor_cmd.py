"""`evledger monitor`: follow a ledger, keep a durable history of its checkpoints, alert on misbehaviour.

The decisions are `ledger.verify.monitor`'s, `ledger.verify.monitor_history`'s and
`ledger.verify.monitor_watch`'s (pure); one poll's I/O is `cli.monitor_poll`'s and the state
directory `cli.monitor_state`'s (docs/monitor.md). This module is the command: its options,
the polling loop, one log line per new checkpoint, alert and watched entry on stderr, the
alerts and watched entries POSTed as JSON to a webhook, and the exit status. With `--once`
it polls once and exits 0 (all well), 1 (misbehaviour, named), 2 (bad input) or 3 (server
unreachable).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.client import LedgerClient
from cli.errors import JsonOption, command_errors
from cli.files import load_verifier_key
from cli.monitor_poll import Monitor, Poll
from cli.monitor_state import StateDir, utc_stamp
from cli.offline import KeyOption
from cli.settings import OptionalServerOption, TokenOption
from cli.trust_options import TsaCertOption, WitnessPolicyOption, load_trust
from cli.verify_log import JobsOption
from ledger.errors import InputError, LedgerError, LogIntegrityError, UnavailableError
from ledger.verify.monitor_history import Alert
from ledger.verify.monitor_watch import WATCH_KINDS, check_watch_kinds

DEFAULT_INTERVAL = 30.0
WEBHOOK_TIMEOUT = 10.0

StateOption = Annotated[
    Path,
    typer.Option(
        "--state",
        metavar="DIR",
        help="The monitor's state: its history of checkpoints, alerts, tile mirror (created if missing).",
    ),
]
OnceOption = Annotated[
    bool,
    typer.Option("--once", help="Poll once; exit 0 when all is well, 1 on misbehaviour, 3 if unreachable."),
]
IntervalOption = Annotated[
    float, typer.Option("--interval", min=0.1, metavar="S", help="Seconds between polls (without --once).")
]
WebhookOption = Annotated[
    str | None,
    typer.Option("--webhook", metavar="URL", help="POST each alert and watched entry as JSON here."),
]
WatchOption = Annotated[
    list[str] | None,
    typer.Option(
        "--watch",
        metavar="KIND",
        help=f"Report new entries of this kind (repeatable): {', '.join(WATCH_KINDS)}.",
    ),
]


def log(line: str) -> None:
    """One log line on stderr, stamped with the UTC time, flushed at once (a service's journal reads it)."""
    print(f"{utc_stamp()} evledger monitor: {line}", file=sys.stderr, flush=True)


class Reporter:
    """Prints log lines, keeps the alert log, and delivers alerts and watched entries to the webhook."""

    def __init__(self, monitor: Monitor, webhook: str | None) -> None:
        """Report for `monitor`; POST to `webhook` when given."""
        self._monitor = monitor
        self._webhook = webhook
        self._reported: set[str] = set()

    def report(self, poll: Poll) -> list[Alert]:
        """Log a poll's news; return the alerts not reported before by this process (each is logged once)."""
        checkpoint = poll.checkpoint
        if poll.accepted and checkpoint is not None:
            index = ", completeness index recomputed: matches" if poll.index_matched else ""
            log(
                f"checkpoint {checkpoint.origin} size {checkpoint.size:,} root {checkpoint.root_hash.hex()}: "
                f"accepted ({poll.new_entries:,} new entries, {poll.fetched:,} tiles fetched, whole log "
                f"replayed in {poll.seconds:.1f} s{index})"
            )
        for tsa, stamped in poll.timestamps if poll.accepted else ():
            log(f"timestamp: size {checkpoint.size if checkpoint else '?'} stamped by {tsa} at {stamped}")
        for match in poll.watched:
            log(f"watch {match.kind}: entry {match.index}: {match.description}")
            self._post("watch", {"entry": match.to_json()})
        fresh = []
        for alert in poll.alerts:
            fingerprint = alert.fingerprint()
            if fingerprint in self._reported:
                continue
            self._reported.add(fingerprint)
            fresh.append(alert)
            log(f"ALERT {alert.kind}: {alert.message}")
            self._monitor.state.record_alert(self._monitor.server, alert)
            self._post("alert", {"alert": alert.to_json()})
        return fresh

    def _post(self, kind: str, body: dict[str, Any]) -> None:
        if not self._webhook:
            return
        import httpx  # noqa: PLC0415 - only a monitor with a webhook needs it at once

        message = {
            "type": kind,
            "time": utc_stamp(),
            "server": self._monitor.server,
            "origin": self._monitor.history.origin,
            **body,
        }
        try:
            response = httpx.post(self._webhook, json=message, timeout=WEBHOOK_TIMEOUT)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log(f"webhook: could not deliver the {kind} message to {self._webhook}: {exc}")


def _summary(monitor: Monitor, poll: Poll, alerts: Sequence[Alert]) -> dict[str, Any]:
    checkpoint = poll.checkpoint
    latest = monitor.history.latest
    return {
        "ok": not alerts,
        "server": monitor.server,
        "origin": monitor.history.origin or (checkpoint.origin if checkpoint else None),
        "tree_size": checkpoint.size if checkpoint else None,
        "root_hash": checkpoint.root_hash.hex() if checkpoint else None,
        "accepted": poll.accepted,
        "unchanged": poll.unchanged,
        "new_entries": poll.new_entries,
        "index_matched": poll.index_matched,
        "history": {
            "checkpoints": len(monitor.history),
            "latest_size": latest.checkpoint.size if latest else None,
        },
        "alerts": [a.to_json() for a in alerts],
        "watched": [w.to_json() for w in poll.watched],
        "timestamps": [{"tsa": tsa, "time": stamped} for tsa, stamped in poll.timestamps],
    }


def _run_once(monitor: Monitor, reporter: Reporter, *, json_output: bool) -> None:
    poll = monitor.poll()  # an unreachable server is UnavailableError: exit 3 (cli/errors.py)
    alerts = poll.alerts
    reporter.report(poll)
    summary = _summary(monitor, poll, alerts)
    if json_output:
        if alerts:
            summary |= {"error": "verification", "detail": f"{alerts[0].kind}: {alerts[0].message}"}
        print(json.dumps(summary))
    elif alerts:
        for alert in alerts:
            print(f"evledger: verification FAILED: {alert.kind}: {alert.message}", file=sys.stderr)
    else:
        checkpoint = poll.checkpoint
        assert checkpoint is not None  # noqa: S101 - no alert means the checkpoint opened
        print(
            f"ok: log {checkpoint.origin} at size {checkpoint.size:,}, root {checkpoint.root_hash.hex()}: "
            f"no misbehaviour ({len(monitor.history)} checkpoints in the history)"
        )
        if poll.index_matched:
            print(f"  completeness index recomputed: matches the checkpoint at size {checkpoint.size:,}")
    if alerts:
        raise typer.Exit(1)


def _run_forever(monitor: Monitor, reporter: Reporter, interval: float) -> None:
    log(f"following {monitor.server} every {interval:g} s, state in {monitor.state.root}")
    while True:
        started = time.monotonic()
        try:
            reporter.report(monitor.poll())
        except UnavailableError as exc:
            if isinstance(exc, LogIntegrityError):
                raise
            log(f"unreachable: {exc}")
        except LedgerError as exc:
            # The server refused a read (a bad token, say): say so and keep following.
            log(f"poll failed: {exc}")
        time.sleep(max(0.0, interval - (time.monotonic() - started)))


def monitor(
    key: KeyOption,
    state: StateOption,
    server: OptionalServerOption = None,
    token: TokenOption = None,
    witness_policy: WitnessPolicyOption = None,
    once: OnceOption = False,
    interval: IntervalOption = DEFAULT_INTERVAL,
    webhook: WebhookOption = None,
    watch: WatchOption = None,
    tsa_cert: TsaCertOption = None,
    jobs: JobsOption = None,
    json_output: JsonOption = False,
) -> None:
    """Follow a ledger: verify every checkpoint and entry it serves, keep a history, alert on misbehaviour.

    Each poll checks the checkpoint's signature (and witness quorum), compares it with
    every checkpoint this monitor accepted before (rollback, split view), replays the whole
    log over a local mirror of its tiles as verify-log does, and checks RFC 3161 timestamps
    with --tsa-cert. With --once: exit 0 when all is well, 1 naming the misbehaviour, 2 for
    bad input, 3 when the server is unreachable. Without it, poll every --interval seconds.
    """
    with command_errors(json_output=json_output), ExitStack() as stack:
        if not server:
            raise InputError("give --server URL (or EVLEDGER_SERVER)")
        verifier = load_verifier_key(key)
        trust = load_trust(witness_policy, tsa_cert)
        kinds = check_watch_kinds(watch or [])
        state_dir = stack.enter_context(StateDir(state).locked())
        history = state_dir.load_history(verifier)
        client = stack.enter_context(LedgerClient(server, token))
        follower = Monitor(
            server.rstrip("/"),
            client,
            verifier,
            state_dir,
            history,
            trust,
            kinds,
            jobs,
            progress=not json_output and sys.stderr.isatty(),
        )
        reporter = Reporter(follower, webhook)
        if once:
            _run_once(follower, reporter, json_output=json_output)
        else:
            _run_forever(follower, reporter, interval)
