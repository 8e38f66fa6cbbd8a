-- Append-only, enforced by PostgreSQL itself (docs/architecture.md#storage): no UPDATE, DELETE or
-- TRUNCATE of what the log is made of, whoever connects. Tampering needs the owner
-- to disable these triggers, which `evledger audit` then catches.

CREATE FUNCTION evledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'evidence-ledger: % on % is refused: the log is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['entries', 'checkpoints', 'key_events'] LOOP
        EXECUTE format('CREATE TRIGGER %I_no_update_delete BEFORE UPDATE OR DELETE ON %I
                        FOR EACH ROW EXECUTE FUNCTION evledger_refuse_change()', t, t);
        EXECUTE format('CREATE TRIGGER %I_no_truncate BEFORE TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION evledger_refuse_change()', t, t);
    END LOOP;
END;
$$;

-- Tiles: a full tile never changes; a partial tile may only grow, keeping its bytes as a prefix.
CREATE FUNCTION evledger_tile_grows_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.width = 256 THEN
        RAISE EXCEPTION 'evidence-ledger: % of full tile %/% is refused', TG_OP, OLD.level, OLD.idx
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.level <> OLD.level OR NEW.idx <> OLD.idx OR NEW.width <= OLD.width
       OR substring(NEW.hashes FROM 1 FOR length(OLD.hashes)) <> OLD.hashes THEN
        RAISE EXCEPTION 'evidence-ledger: tile %/% may only grow by appending', OLD.level, OLD.idx
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER tiles_grow_only BEFORE UPDATE OR DELETE ON tiles
    FOR EACH ROW EXECUTE FUNCTION evledger_tile_grows_only();
CREATE TRIGGER tiles_no_truncate BEFORE TRUNCATE ON tiles
    FOR EACH STATEMENT EXECUTE FUNCTION evledger_refuse_change();

-- The head only moves forward.
CREATE FUNCTION evledger_head_moves_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.tree_size < OLD.tree_size OR NEW.origin <> OLD.origin THEN
        RAISE EXCEPTION 'evidence-ledger: the log head may only move forward'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER log_head_forward BEFORE UPDATE OR DELETE ON log_head
    FOR EACH ROW EXECUTE FUNCTION evledger_head_moves_forward();
CREATE TRIGGER log_head_no_truncate BEFORE TRUNCATE ON log_head
    FOR EACH STATEMENT EXECUTE FUNCTION evledger_refuse_change();
