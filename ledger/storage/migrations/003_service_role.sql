-- The service's own role: it may read and append, and move the head and partial
-- tiles forward (guarded by triggers); it can never UPDATE, DELETE or TRUNCATE the log.
-- Roles are cluster-wide, so the role is shared by every ledger database on a server.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'evledger_app') THEN
        CREATE ROLE evledger_app NOLOGIN;
    END IF;
END;
$$;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM evledger_app;
GRANT SELECT, INSERT ON entries, checkpoints, key_events, idempotency_keys TO evledger_app;
GRANT SELECT, INSERT, UPDATE ON tiles TO evledger_app;
GRANT SELECT, UPDATE ON log_head TO evledger_app;
GRANT SELECT ON api_tokens TO evledger_app;
GRANT evledger_app TO CURRENT_USER;
