-- What anchors a checkpoint outside the operator (docs/trust-model.md): the cosignatures its
-- witnesses returned (C2SP tlog-cosignature) and the RFC 3161 tokens time-stamping authorities
-- issued over its note text. Both are gathered after the checkpoint committed, by the service's
-- witnessing task, and only ever added: like the log, these rows are never changed or removed.
-- No foreign key to checkpoints: the writer adds rows only for stored checkpoints, and a key
-- would make a plain TRUNCATE of checkpoints stop at PostgreSQL's check instead of its trigger.

CREATE TABLE checkpoint_cosignatures (
    tree_size   bigint      NOT NULL CHECK (tree_size >= 1),
    witness     text        NOT NULL,   -- the witness key's keyid string, <name>+<keyid hex>
    line        text        NOT NULL CHECK (line LIKE '— %' AND position(E'\n' IN line) = 0),
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tree_size, witness)
);

CREATE TABLE checkpoint_timestamps (
    tree_size   bigint      NOT NULL CHECK (tree_size >= 1),
    tsa         text        NOT NULL,   -- the configured authority's URL
    token       bytea       NOT NULL CHECK (length(token) BETWEEN 1 AND 65536),
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tree_size, tsa)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['checkpoint_cosignatures', 'checkpoint_timestamps'] LOOP
        EXECUTE format('CREATE TRIGGER %I_no_update_delete BEFORE UPDATE OR DELETE ON %I
                        FOR EACH ROW EXECUTE FUNCTION evledger_refuse_change()', t, t);
        EXECUTE format('CREATE TRIGGER %I_no_truncate BEFORE TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION evledger_refuse_change()', t, t);
    END LOOP;
END;
$$;

GRANT SELECT, INSERT ON checkpoint_cosignatures, checkpoint_timestamps TO evledger_app;
