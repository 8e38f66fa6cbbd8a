-- The completeness index's stored heads (docs/completeness-index.md, issue #13): for every chain
-- inside the log (a release's events, an artifact's history, the key events) its head, keyed by the
-- chain's index key. A derived index, written by the sequencer in the transaction of each batch that
-- extends a chain (ledger/storage/postgres.py); unlike the log it is updated in place, but a head
-- only ever moves forward, and no head is ever removed.

-- The head row stays locked until this migration commits: no batch moves the log meanwhile.
SELECT id FROM log_head FOR UPDATE;

-- The index key, SHA-256 of the key text: 'evledger-index-key/v1', then each field after one NUL byte,
-- in UTF-8 (ledger/core/sparse_merkle.py `release_key`, `artifact_key`, `KEY_EVENTS_KEY`). A NUL
-- cannot be held in a PostgreSQL text value, so the bytes are joined as bytea.
CREATE FUNCTION evledger_index_key(VARIADIC fields text[]) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT sha256(convert_to('evledger-index-key/v1', 'UTF8') || coalesce(
        (SELECT string_agg('\x00'::bytea || convert_to(f, 'UTF8'), ''::bytea ORDER BY n)
         FROM unnest(fields) WITH ORDINALITY AS t(f, n)), ''::bytea))
$$;

CREATE TABLE index_heads (
    key_hash     bytea   PRIMARY KEY CHECK (length(key_hash) = 32),
    bucket       integer NOT NULL CHECK (bucket BETWEEN 0 AND 65535),  -- the key's first 16 bits
    kind         text    NOT NULL CHECK (kind IN ('release', 'artifact', 'keys')),
    product      text,                                -- a release's
    version      text,                                -- a release's
    digest       text,                                -- an artifact's, 'sha256:<hex>' as stored
    count        bigint  NOT NULL CHECK (count >= 1), -- entries in the chain
    last_idx     bigint  NOT NULL CHECK (last_idx >= 0),  -- the newest entry's log index
    last_leaf    bytea   NOT NULL CHECK (length(last_leaf) = 32),  -- and its leaf hash
    updated_size bigint  NOT NULL,                    -- the log's size after the batch that wrote it
    CHECK (bucket = (get_byte(key_hash, 0) << 8) | get_byte(key_hash, 1)),
    CHECK (CASE kind WHEN 'release' THEN product IS NOT NULL AND version IS NOT NULL AND digest IS NULL
                     WHEN 'artifact' THEN digest IS NOT NULL AND product IS NULL AND version IS NULL
                     ELSE product IS NULL AND version IS NULL AND digest IS NULL END)
);
CREATE INDEX index_heads_bucket ON index_heads (bucket);
CREATE INDEX index_heads_updated ON index_heads (updated_size);

-- A head only moves forward: an update may not lower its count, its newest entry or the size it was
-- written at, nor rename its chain; a head is never deleted (nor the table truncated).
CREATE FUNCTION evledger_index_head_moves_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'evidence-ledger: DELETE on index_heads is refused: a chain''s head is never removed'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.count < OLD.count OR NEW.last_idx < OLD.last_idx OR NEW.updated_size < OLD.updated_size
       OR NEW.key_hash <> OLD.key_hash OR NEW.kind <> OLD.kind
       OR NEW.product IS DISTINCT FROM OLD.product OR NEW.version IS DISTINCT FROM OLD.version
       OR NEW.digest IS DISTINCT FROM OLD.digest THEN
        RAISE EXCEPTION 'evidence-ledger: the head of a chain may only move forward (index_heads %)',
                        encode(OLD.key_hash, 'hex')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER index_heads_forward BEFORE UPDATE OR DELETE ON index_heads
    FOR EACH ROW EXECUTE FUNCTION evledger_index_head_moves_forward();
CREATE TRIGGER index_heads_no_truncate BEFORE TRUNCATE ON index_heads
    FOR EACH STATEMENT EXECUTE FUNCTION evledger_refuse_change();

-- The ledger's first chained index (S0, docs/completeness-index.md#checkpoints): entries from it on
-- carry artifact back-links. 0 for a ledger created with the index; for one upgraded to it, the
-- log's size now. Set once, here; never changed.
CREATE TABLE index_state (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    chained_from bigint  NOT NULL CHECK (chained_from >= 0)
);
INSERT INTO index_state (chained_from)
SELECT coalesce((SELECT tree_size FROM log_head WHERE id = 1), 0);
CREATE TRIGGER index_state_no_update_delete BEFORE UPDATE OR DELETE ON index_state
    FOR EACH ROW EXECUTE FUNCTION evledger_refuse_change();
CREATE TRIGGER index_state_no_truncate BEFORE TRUNCATE ON index_state
    FOR EACH STATEMENT EXECUTE FUNCTION evledger_refuse_change();

-- An existing ledger's heads: its release chains (release_seq, 004_chains.sql) and its key-event
-- chain (the newest entry carrying a key-event link). It has no artifact chains yet: they begin at
-- the first chained index. Every head is stamped with the log's size now.
INSERT INTO index_heads (key_hash, bucket, kind, product, version, digest, count, last_idx, last_leaf,
                         updated_size)
SELECT k.key_hash, (get_byte(k.key_hash, 0) << 8) | get_byte(k.key_hash, 1), 'release',
       e.product, e.version, NULL, e.release_seq + 1, e.idx, e.leaf_hash, s.chained_from
FROM (SELECT DISTINCT ON (product, version) product, version, release_seq, idx, leaf_hash
      FROM entries WHERE release_seq IS NOT NULL
      ORDER BY product, version, release_seq DESC) AS e
CROSS JOIN LATERAL (SELECT evledger_index_key('release', e.product, e.version) AS key_hash) AS k
CROSS JOIN index_state AS s;

INSERT INTO index_heads (key_hash, bucket, kind, product, version, digest, count, last_idx, last_leaf,
                         updated_size)
SELECT k.key_hash, (get_byte(k.key_hash, 0) << 8) | get_byte(k.key_hash, 1), 'keys',
       NULL, NULL, NULL, ((convert_from(e.data, 'UTF8')::jsonb -> 'keys' ->> 'seq')::bigint) + 1,
       e.idx, e.leaf_hash, s.chained_from
FROM (SELECT idx, leaf_hash, data FROM entries
      WHERE kind IN ('key.registered', 'key.revoked') AND convert_from(data, 'UTF8')::jsonb ? 'keys'
      ORDER BY idx DESC LIMIT 1) AS e
CROSS JOIN LATERAL (SELECT evledger_index_key('keys') AS key_hash) AS k
CROSS JOIN index_state AS s;

GRANT SELECT, INSERT, UPDATE ON index_heads TO evledger_app;
GRANT SELECT ON index_state TO evledger_app;
