"""Storage, the only code that speaks SQL: the `protocol.LogStore` and `protocol.EvidenceIndex` interfaces.

One implementation a file: `postgres.PostgresStore` (the log) and
`postgres_index.PostgresEvidenceIndex` (the read model, on the store's pool).
"""
