"""The `evledger` command-line tool (docs/cli.md).

`cli.main` builds the Typer app from the command modules; `cli.errors` is the
one place where ledger errors become exit codes and messages. Offline commands
(`cli.offline`) import only the pure packages: no database, no network.
"""
