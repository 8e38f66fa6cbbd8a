-- API tokens get a life cycle: a name for people, an optional expiry, and revocation.
-- A token is revoked by marking it, never deleted: idempotency keys keep referring to it,
-- and the table stays a record of who could reach the ledger, and until when.
-- The service role keeps SELECT only (003_service_role.sql); `evledger token` runs as the owner.
ALTER TABLE api_tokens
    ADD COLUMN name           text        CHECK (name IS NULL OR length(name) BETWEEN 1 AND 200),
    ADD COLUMN expires_at     timestamptz,
    ADD COLUMN revoked_at     timestamptz,
    ADD COLUMN revoked_reason text        CHECK (revoked_reason IS NULL OR length(revoked_reason) BETWEEN 1 AND 500),
    ADD CONSTRAINT api_tokens_revoked_with_reason CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL));

-- Refuse what would rewrite that record: deleting tokens, changing what one grants, and
-- taking back a revocation. Naming a token and setting its expiry stay possible.
CREATE FUNCTION evledger_token_keeps_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'evidence-ledger: api tokens are revoked, never deleted (evledger token revoke)'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'evidence-ledger: api tokens are revoked, never deleted: evledger token revoke %', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.id <> OLD.id OR NEW.token_hash <> OLD.token_hash OR NEW.role <> OLD.role
       OR NEW.products <> OLD.products OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'evidence-ledger: api token %: what a token grants never changes; create a new one', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.revoked_at IS NOT NULL AND (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
                                       OR NEW.revoked_reason IS DISTINCT FROM OLD.revoked_reason) THEN
        RAISE EXCEPTION 'evidence-ledger: api token %: a revocation is final', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$;

CREATE TRIGGER api_tokens_keep_record
    BEFORE UPDATE OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION evledger_token_keeps_record();
CREATE TRIGGER api_tokens_no_truncate
    BEFORE TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION evledger_token_keeps_record();
