"""Query: what the service answers from the stored log.

Inclusion and consistency proofs, release timelines and search, the release
record, and the one owner of the cached key registry. Reads through the
`ledger.storage.protocol` interfaces; knows no SQL and no HTTP.
"""
