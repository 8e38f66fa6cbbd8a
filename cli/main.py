"""The `evledger` Typer app and the console-script entry point (docs/cli.md).

This module only assembles the app: each command lives in the module of its
kind (`cli.offline` for checks that need no database or network; service,
database and HTTP commands in their own modules) and is registered below, so
the whole command list reads in one place.
"""

from __future__ import annotations

import typer

from cli import (
    append_cmds,
    artifact_cmd,
    attest,
    audit,
    blob_cmd,
    demo,
    dossier_cmd,
    monitor_cmd,
    offline,
    policy_cmd,
    record_cmd,
    server,
    timeline_cmd,
    token_cmd,
    verify_log,
    witness_cmd,
)

app = typer.Typer(
    name="evledger",
    help=(
        "Append-only, signed, Merkle-anchored evidence ledger. "
        "Exit status: 0 success, 1 a verification failed, 2 usage or input error."
    ),
    no_args_is_help=True,
    # Tracebacks must never print local variables: a command may hold a private key.
    pretty_exceptions_show_locals=False,
)

app.command("keygen")(offline.keygen)
app.command("verify-note")(offline.verify_note)
app.add_typer(offline.verify_proof_app, name="verify-proof")
app.command("init")(server.init)
app.command("serve")(server.serve)
app.add_typer(token_cmd.token_app, name="token")
app.add_typer(append_cmds.key_app, name="key")
app.add_typer(policy_cmd.policy_app, name="policy")
app.command("submit")(append_cmds.submit)
app.add_typer(attest.attest_app, name="attest")
app.add_typer(blob_cmd.blob_app, name="blob")
app.add_typer(record_cmd.record_app, name="record")
app.command("demo")(demo.demo)
app.command("verify-log")(verify_log.verify_log)
app.command("verify-consistency")(verify_log.verify_consistency_command)
app.command("audit")(audit.audit)
app.command("dossier")(dossier_cmd.dossier)
app.command("verify")(dossier_cmd.verify)
app.command("report")(dossier_cmd.report)
app.command("gate")(dossier_cmd.gate)
app.command("timeline")(timeline_cmd.timeline)
app.command("artifact")(artifact_cmd.artifact)
app.command("monitor")(monitor_cmd.monitor)
app.add_typer(witness_cmd.witness_app, name="witness")


def main() -> None:
    """Run the command line with `sys.argv`; exits the process with the command's status."""
    app()


if __name__ == "__main__":
    main()
