"""The `evledger` Typer app and the console-script entry point (DESIGN.md §5).

This module only assembles the app: each command lives in the module of its
kind (`cli.offline` for checks that need no database or network; service,
database and HTTP commands in their own modules) and is registered below, so
the whole command list reads in one place.
"""

from __future__ import annotations

import typer

from cli import append_cmds, demo, offline, server

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
app.add_typer(server.token_app, name="token")
app.add_typer(append_cmds.key_app, name="key")
app.command("submit")(append_cmds.submit)
app.command("demo")(demo.demo)


def main() -> None:
    """Run the command line with `sys.argv`; exits the process with the command's status."""
    app()


if __name__ == "__main__":
    main()
