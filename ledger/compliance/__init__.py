"""Compliance: a release's events judged against the policy (pure).

Facts gathered from the events, the policy's checks, waivers, the verdict and
the gate's decision. Imports `ledger.rules`, `ledger.records` and `ledger.core`.
"""
