-- The evidence files themselves (issue #14): content-addressed blobs, stored in chunks, immutable.
-- A blob is named by the SHA-256 of its bytes and written only by a transaction that read every
-- byte and found that digest (ledger/storage/postgres_blobs.py), so a stored blob is always the
-- content its digest names. Each upload also records the product it was uploaded for: a reader
-- sees a blob only through a product its token may read. Nothing here is ever updated or deleted.

CREATE TABLE blobs (
    digest     bytea       PRIMARY KEY CHECK (length(digest) = 32),  -- SHA-256 of the content
    size       bigint      NOT NULL CHECK (size >= 0),
    chunks     integer     NOT NULL CHECK (chunks >= 0),             -- rows in blob_chunks
    stored_at  timestamptz NOT NULL DEFAULT now()
);

-- The content, in order; every chunk but the last holds exactly the store's chunk size. The blob's
-- row comes last in the transaction, once the digest was checked, hence the deferred reference.
CREATE TABLE blob_chunks (
    digest bytea   NOT NULL REFERENCES blobs (digest) DEFERRABLE INITIALLY DEFERRED,
    seq    integer NOT NULL CHECK (seq >= 0),
    data   bytea   NOT NULL,
    PRIMARY KEY (digest, seq)
);

CREATE TABLE blob_products (
    digest  bytea       NOT NULL REFERENCES blobs (digest) DEFERRABLE INITIALLY DEFERRED,
    product text        NOT NULL CHECK (length(product) BETWEEN 1 AND 256),
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (digest, product)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['blobs', 'blob_chunks', 'blob_products'] LOOP
        EXECUTE format('CREATE TRIGGER %I_no_update_delete BEFORE UPDATE OR DELETE ON %I
                        FOR EACH ROW EXECUTE FUNCTION evledger_refuse_change()', t, t);
        EXECUTE format('CREATE TRIGGER %I_no_truncate BEFORE TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION evledger_refuse_change()', t, t);
    END LOOP;
END;
$$;

GRANT SELECT, INSERT ON blobs, blob_chunks, blob_products TO evledger_app;
