-- Where a blob's bytes are held (issue #14): in blob_chunks ('postgres', as 013_blobs.sql stored
-- every blob) or as one object in S3-compatible storage ('s3'), named sha256/<hex> under the
-- configured bucket and prefix (ledger/storage/s3_blobs.py). The catalog (blobs, blob_products)
-- stays in PostgreSQL either way: a blob exists for the ledger only once its row is here, and
-- that row is written only after its bytes hashed to its name. A constant default adds the
-- column without rewriting or updating a row, so the append-only triggers are not involved.

ALTER TABLE blobs ADD COLUMN held_in text NOT NULL DEFAULT 'postgres'
    CHECK (held_in IN ('postgres', 's3'));
ALTER TABLE blobs ADD CONSTRAINT blobs_s3_holds_no_chunks CHECK (held_in = 'postgres' OR chunks = 0);
