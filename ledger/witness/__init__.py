"""The witness service (c2sp.org/tlog-witness): cosigns the checkpoints of the logs it trusts.

`ledger.core.witness_protocol` holds the wire formats and the decision; this package adds
the durable per-origin state (`state`) and the HTTP edge (`app`). It sits above
`ledger.service` (whose error bodies and body limits it reuses) and below `cli`
(`evledger witness serve`). See docs/witness.md.
"""
