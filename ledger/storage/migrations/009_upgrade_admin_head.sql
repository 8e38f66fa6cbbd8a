-- A log begun before 007_log_integrity.sql got `log_head.last_admin_entry` at its default, -1,
-- whatever admin records its entries hold; the head must name the newest one (the sequencer
-- replays admin records another process appended from it, and `evledger audit` checks it).
-- Set it from the entries, the kinds of ledger.admin.ADMIN_KINDS. The head keeps its size, which
-- its trigger refuses to the service; the wholeness check runs before the trigger is back.
ALTER TABLE log_head DISABLE TRIGGER log_head_forward;
UPDATE log_head
SET last_admin_entry = newest.idx
FROM (SELECT coalesce(max(idx), -1) AS idx FROM entries
      WHERE kind IN ('key.registered', 'key.revoked', 'policy.published')) AS newest
WHERE log_head.id = 1 AND log_head.last_admin_entry <> newest.idx;
SET CONSTRAINTS log_head_is_whole IMMEDIATE;
ALTER TABLE log_head ENABLE TRIGGER log_head_forward;
