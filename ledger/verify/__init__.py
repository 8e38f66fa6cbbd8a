"""Verify: the checks an inspector, a monitor or a witness runs (public API).

Dossiers, receipts and tlog-proofs, a walk over the whole log through its
tiles, and the audit of a database against its own log. Pure apart from the
tile and row sources the caller passes in.
"""
