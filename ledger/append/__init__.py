"""Append: the one way entries reach the log.

Batch planning, the group-commit sequencer, receipts, bootstrap of a new
ledger, the `Appender` that both the HTTP service and the direct (`--dsn`)
commands use (appender.py), and gate decisions appended through it
(decisions.py). Writes through `ledger.storage.protocol`; knows no SQL and no HTTP.
"""
