"""evidence-ledger: an append-only, signed, Merkle-anchored evidence ledger."""
