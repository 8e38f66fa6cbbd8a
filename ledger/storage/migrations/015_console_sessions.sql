-- Sessions of the web console (issue #15): a person signs in with an API token once, and the
-- browser then holds only a random session id in an HttpOnly cookie. The table keeps the SHA-256
-- of that id (never the id itself), the token it stands for, the session's CSRF secret, and when
-- it ends: at its expiry, at sign-out (ended_at), or as soon as its token is revoked or expires.
-- Unlike the log, sessions are working state: ended_at is set, and ended sessions may be purged.

CREATE TABLE console_sessions (
    session_hash bytea       PRIMARY KEY CHECK (length(session_hash) = 32),
    token_id     bigint      NOT NULL REFERENCES api_tokens (id),
    csrf         text        NOT NULL CHECK (length(csrf) BETWEEN 16 AND 128),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    CHECK (expires_at > created_at)
);

GRANT SELECT, INSERT, UPDATE ON console_sessions TO evledger_app;
