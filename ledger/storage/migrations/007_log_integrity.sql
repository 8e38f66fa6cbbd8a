-- The database refuses rows that are not the next of the log (issue #9), and the derived key
-- registry table goes: the service replays the registry from the entries themselves, which the
-- signed checkpoints commit to (ledger/log_state.py), so no table but `entries` can grant a key.
--
-- Rows of the log may only be added in a transaction that moves the head past them:
--   * the head moves first (ledger/storage/postgres.py writes it before the entries);
--   * entries must be a contiguous run right after the entries already stored, and below the
--     head (a statement-level check: one aggregate per COPY, not a trigger per row);
--   * at commit, the head's last entry exists, nothing lies beyond it, and its checkpoint exists;
--   * checkpoints, tiles and idempotency keys are written only in the transaction that moves the
--     head, and are checked against it at commit.
-- So a row written beside the sequencer (by the service's own role, say) is refused instead of
-- wedging every later batch, and a head moved without its entries and checkpoint cannot commit.
-- What the database cannot check is a signature: a head moved together with forged entries and a
-- forged checkpoint row commits, and the sequencer then refuses to extend it (it verifies the
-- head's checkpoint with the ledger key) and `evledger audit` names it.

-- Each check reads what it needs in one query: these run inside every batch's transaction, and
-- max() over a primary key is one backward index probe, where an EXISTS over a range would be planned
-- (generically, for any size) as a scan of the whole table.

CREATE FUNCTION evledger_entries_follow_head() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    low bigint;
    high bigint;
    added_count bigint;
    size bigint;
    predecessor bigint;
BEGIN
    SELECT min(idx), max(idx), count(*) INTO low, high, added_count FROM added;
    IF added_count = 0 THEN
        RETURN NULL;
    END IF;
    SELECT h.tree_size, (SELECT max(idx) FROM entries WHERE idx < low) INTO size, predecessor
    FROM log_head h WHERE h.id = 1;
    IF size IS NULL OR high >= size THEN
        RAISE EXCEPTION 'evidence-ledger: entries % to % lie at or beyond the log head (size %): '
                        'entries are added only with the head moved past them', low, high, size
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF high - low + 1 <> added_count OR predecessor IS DISTINCT FROM (CASE WHEN low > 0 THEN low - 1 END) THEN
        RAISE EXCEPTION 'evidence-ledger: entries % to % are not the next in sequence', low, high
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER entries_follow_head AFTER INSERT ON entries
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION evledger_entries_follow_head();

-- At commit of a transaction that moved the head: its entries and checkpoint are all there.
CREATE FUNCTION evledger_head_is_whole() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    size bigint;
    last_entry bigint;
    last_checkpoint bigint;
BEGIN
    SELECT h.tree_size, (SELECT max(idx) FROM entries), (SELECT max(tree_size) FROM checkpoints)
    INTO size, last_entry, last_checkpoint FROM log_head h WHERE h.id = 1;
    IF last_entry IS DISTINCT FROM size - 1 THEN
        RAISE EXCEPTION 'evidence-ledger: the log head (size %) does not end at the last entry', size
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF last_checkpoint IS DISTINCT FROM size THEN
        RAISE EXCEPTION 'evidence-ledger: the log head (size %) has no checkpoint of its own size', size
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER log_head_is_whole AFTER UPDATE ON log_head
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION evledger_head_is_whole();

-- The head's size, and whether this transaction moved it (the head row's version is this
-- transaction's: the sequencer writes in one top-level transaction, without savepoints).
CREATE FUNCTION evledger_head_here(OUT size bigint, OUT moved boolean) LANGUAGE sql STABLE AS $$
    SELECT tree_size, xmin = pg_current_xact_id()::xid FROM log_head WHERE id = 1
$$;

-- A checkpoint is issued only at the head it signs, in the transaction that moves the head there.
CREATE FUNCTION evledger_checkpoint_at_head() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head record := evledger_head_here();
BEGIN
    IF NEW.tree_size <> head.size OR NOT head.moved THEN
        RAISE EXCEPTION 'evidence-ledger: a checkpoint at size % is not issued with the log head', NEW.tree_size
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER checkpoints_at_head AFTER INSERT ON checkpoints
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION evledger_checkpoint_at_head();

-- A hash tile holds nodes of the tree the head describes, and no more: tile (level L, index i) of
-- width w holds nodes [256·i, 256·i + w) of tree level 8·L, of which there are size >> 8·L. It grows
-- only with the head.
CREATE FUNCTION evledger_tile_within_head() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head record := evledger_head_here();
BEGIN
    IF NEW.idx * 256 + NEW.width > (head.size >> (8 * NEW.level)) OR NOT head.moved THEN
        RAISE EXCEPTION 'evidence-ledger: tile %/% of width % is not written with the log head',
                        NEW.level, NEW.idx, NEW.width
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER tiles_within_head AFTER INSERT OR UPDATE ON tiles
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION evledger_tile_within_head();

-- An idempotency key is recorded with the batch that appended its entries, under that batch's head.
CREATE FUNCTION evledger_idempotency_at_head() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head record := evledger_head_here();
BEGIN
    IF NEW.checkpoint_size <> head.size OR NOT head.moved
       OR NEW.first_idx < 0 OR NEW.first_idx + NEW.count > NEW.checkpoint_size THEN
        RAISE EXCEPTION 'evidence-ledger: idempotency key % does not name entries of this batch', NEW.key
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER idempotency_at_head AFTER INSERT ON idempotency_keys
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION evledger_idempotency_at_head();

-- The checkpoint stored at a size, read with a snapshot of its own (a volatile function takes one
-- per query): the sequencer calls it in the statement that locks the head, whose own snapshot
-- predates a wait for the lock and would miss the checkpoint of the very commit it waited for.
CREATE FUNCTION evledger_checkpoint_at(at_size bigint, OUT root_hash bytea, OUT note text)
LANGUAGE plpgsql VOLATILE AS $$  -- plpgsql: an SQL function could be inlined into the caller's snapshot
BEGIN
    SELECT c.root_hash, c.note INTO root_hash, note FROM checkpoints c WHERE c.tree_size = at_size;
END;
$$;

-- The newest admin record (key registration, revocation or policy) under the head, so a sequencer
-- knows in one read whether another process changed who may sign what (ledger/log_state.py).
ALTER TABLE log_head ADD COLUMN last_admin_entry bigint NOT NULL DEFAULT -1;

-- The derived key table: gone (see above). The registry is replayed from the entries' kind index.
DROP TABLE key_events;

-- The same signed statement is recorded once (issue #9): the SHA-256 of its DSSE pre-authentication
-- encoding, PAE(payloadType, payload), the bytes its signatures sign (ledger/core/dsse.py).
ALTER TABLE entries ADD COLUMN statement_hash bytea CHECK (length(statement_hash) = 32);

-- For entries written before this migration only: their statement hash, from the entry bytes (the
-- payload in standard or URL-safe base64, as DSSE allows). New entries get it from the sequencer.
CREATE FUNCTION pg_temp.evledger_statement_hash(data bytea) RETURNS bytea LANGUAGE plpgsql AS $$
DECLARE
    envelope jsonb := convert_from(data, 'UTF8')::jsonb -> 'envelope';
    payload_type bytea := convert_to(envelope ->> 'payloadType', 'UTF8');
    payload text := rtrim(translate(envelope ->> 'payload', '-_', '+/'), '=');
    body bytea;
BEGIN
    body := decode(rpad(payload, ((length(payload) + 3) / 4) * 4, '='), 'base64');
    RETURN sha256(convert_to('DSSEv1 ' || length(payload_type) || ' ', 'UTF8') || payload_type
                  || convert_to(' ' || length(body) || ' ', 'UTF8') || body);
END;
$$;
ALTER TABLE entries DISABLE TRIGGER entries_no_update_delete;
UPDATE entries SET statement_hash = pg_temp.evledger_statement_hash(data);
ALTER TABLE entries ENABLE TRIGGER entries_no_update_delete;
ALTER TABLE entries ALTER COLUMN statement_hash SET NOT NULL;

-- A log begun before this migration may record one statement more than once (a retried append,
-- or the replays issue #9 stops). Those entries stay, as every entry does; the uniqueness holds
-- among the rest: the first entry of each statement and everything appended from now on (whose
-- index is past the last repeat, so the predicate costs a new row one comparison). A replay of
-- such a statement collides with its first entry and is answered with it (ledger/storage/postgres.py
-- looks up the smallest index). Without repeats, which is every log begun since, the index is plain.
DO $$
DECLARE
    repeats bigint[];
BEGIN
    SELECT coalesce(array_agg(idx ORDER BY idx), '{}') INTO repeats
    FROM (SELECT idx, row_number() OVER (PARTITION BY statement_hash ORDER BY idx) AS n FROM entries) s
    WHERE n > 1;
    IF cardinality(repeats) = 0 THEN
        CREATE UNIQUE INDEX entries_statement ON entries (statement_hash);
    ELSE
        EXECUTE format('CREATE UNIQUE INDEX entries_statement ON entries (statement_hash) '
                       'WHERE idx > %s OR idx <> ALL (%L::bigint[])', repeats[cardinality(repeats)], repeats);
        CREATE INDEX entries_statement_lookup ON entries (statement_hash);  -- the partial one cannot serve
        RAISE NOTICE 'evidence-ledger: % entries repeat a statement recorded before them (first: %)',
                     cardinality(repeats), repeats[1:10];
    END IF;
END;
$$;
