"""Append: the one way entries reach the log.

Batch planning, the group-commit sequencer, receipts, bootstrap of a new
ledger, and the `Appender` that both the HTTP service and the direct (`--dsn`)
commands use. Writes through `ledger.storage.protocol`; knows no SQL and no HTTP.
"""
