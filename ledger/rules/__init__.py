"""Log rules: what the log makes of its records (pure, shared by the writer and every verifier).

The key registry and how each admin record changes it, admission of an envelope,
replay of a log prefix, release and key chains, and the one event model every
reader decodes entries into. Imports `ledger.records`, `ledger.core` and the
row shapes of `ledger.storage.protocol`; never I/O.
"""
