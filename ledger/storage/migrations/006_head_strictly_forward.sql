-- The head moves strictly forward: every batch appends at least one entry, so an update
-- that keeps the size (rewriting the compact range or the last leaf hash in place) is refused.
CREATE OR REPLACE FUNCTION evledger_head_moves_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.tree_size <= OLD.tree_size OR NEW.origin <> OLD.origin THEN
        RAISE EXCEPTION 'evidence-ledger: the log head may only move forward'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
