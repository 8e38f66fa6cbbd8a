"""`evledger record KIND PRODUCT VERSION [options]`: every kind of evidence from options (docs/cli.md).

One command per predicate of schemas/PREDICATES.md that a pipeline or a
person records, so that nobody writes statement JSON by hand: change, build,
validation, approval, exception, exception-review, deployment, rollback, seal,
requirements (from a baseline file) and anomaly (test runs, scans, SBOMs and VEX
come from their reports: `evledger attest`). Each
checks its options as the ledger would, signs the statement with `--key`,
appends it with an idempotency key and prints the receipt. The commands live
in `cli.record_evidence`, `cli.record_exception`, `cli.record_approval`,
`cli.record_release` and `cli.record_traceability`; this module assembles them.
"""

from __future__ import annotations

import typer

from cli import record_approval, record_evidence, record_exception, record_release, record_traceability

record_app = typer.Typer(
    help="Record one piece of evidence from options: sign it with --key and append it over HTTP.",
    no_args_is_help=True,
)
record_app.command("change")(record_evidence.change)
record_app.command("build")(record_evidence.build)
record_app.command("validation")(record_evidence.validation)
record_app.command("approval")(record_approval.approval)
record_app.command("exception")(record_exception.exception)
record_app.command("exception-review")(record_exception.exception_review)
record_app.command("deployment")(record_release.deployment)
record_app.command("rollback")(record_release.rollback)
record_app.command("seal")(record_release.seal)
record_app.command("requirements")(record_traceability.requirements)
record_app.command("anomaly")(record_traceability.anomaly)
