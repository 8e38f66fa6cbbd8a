-- evidence-ledger schema (docs/architecture.md#storage). Runs as the database owner.
-- Every table the log is made of is append-only; see 002_append_only.sql.

-- The head of the log: one row, locked FOR UPDATE by whoever integrates a batch,
-- so several service processes never fork the log or leave a gap.
CREATE TABLE log_head (
    id              smallint PRIMARY KEY CHECK (id = 1),
    origin          text     NOT NULL,
    tree_size       bigint   NOT NULL CHECK (tree_size >= 0),
    compact_range   bytea[]  NOT NULL,           -- roots of the perfect subtrees of [0, tree_size)
    last_time       text     NOT NULL DEFAULT '',  -- integrated time of the newest entry (times never go back)
    last_leaf_hash  bytea    NOT NULL CHECK (length(last_leaf_hash) = 32),
    last_key_event  bigint   NOT NULL DEFAULT -1 -- index of the newest key registration/revocation
);

-- The leaves: exact entry bytes plus the columns the query API filters on.
CREATE TABLE entries (
    idx             bigint      PRIMARY KEY CHECK (idx >= 0),
    leaf_hash       bytea       NOT NULL CHECK (length(leaf_hash) = 32),
    data            bytea       NOT NULL CHECK (length(data) <= 65535),
    integrated_at   timestamptz NOT NULL,
    signer_keyid    text        NOT NULL,
    payload_type    text        NOT NULL,
    kind            text        NOT NULL,       -- predicate type, or the admin record's kind
    product         text,
    version         text,
    subjects        text[]      NOT NULL DEFAULT '{}'  -- 'sha256:<hex>' digests
);
CREATE UNIQUE INDEX entries_leaf_hash ON entries (leaf_hash);
CREATE INDEX entries_release ON entries (product, version, idx);
CREATE INDEX entries_kind ON entries (kind, idx);
CREATE INDEX entries_signer ON entries (signer_keyid, idx);
CREATE INDEX entries_time ON entries (integrated_at);
CREATE INDEX entries_subjects ON entries USING gin (subjects);

-- C2SP tlog-tiles hash tiles: up to 256 hashes of tree level 8*level. A partial
-- tile only ever grows by appending (its old bytes stay a prefix); a full one never changes.
CREATE TABLE tiles (
    level   smallint NOT NULL CHECK (level >= 0),
    idx     bigint   NOT NULL CHECK (idx >= 0),
    width   smallint NOT NULL CHECK (width BETWEEN 1 AND 256),
    hashes  bytea    NOT NULL,
    PRIMARY KEY (level, idx),
    CHECK (length(hashes) = 32 * width)
);

-- Every checkpoint ever issued.
CREATE TABLE checkpoints (
    tree_size   bigint      PRIMARY KEY CHECK (tree_size >= 0),
    root_hash   bytea       NOT NULL CHECK (length(root_hash) = 32),
    note        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The key registry, derived from the log: one row per key.registered / key.revoked entry.
CREATE TABLE key_events (
    idx         bigint  PRIMARY KEY REFERENCES entries (idx),
    kind        text    NOT NULL CHECK (kind IN ('key.registered', 'key.revoked')),
    keyid       text    NOT NULL,
    verifier    text,                     -- the verifier key string, for registrations
    owner       text,
    roles       text[]  NOT NULL DEFAULT '{}',
    products    text[]  NOT NULL DEFAULT '{}',
    reason      text
);
CREATE INDEX key_events_keyid ON key_events (keyid, idx);

-- API tokens, stored as SHA-256 of the token; the token itself is shown once.
CREATE TABLE api_tokens (
    id          bigserial   PRIMARY KEY,
    token_hash  bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    role        text        NOT NULL CHECK (role IN ('appender', 'auditor', 'admin')),
    products    text[]      NOT NULL DEFAULT '{}',  -- empty: every product
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Idempotency keys: a retried request with the same key and body gets the original receipts.
CREATE TABLE idempotency_keys (
    token_id        bigint  NOT NULL REFERENCES api_tokens (id),
    key             text    NOT NULL,
    body_hash       bytea   NOT NULL CHECK (length(body_hash) = 32),
    first_idx       bigint  NOT NULL,
    count           integer NOT NULL CHECK (count >= 1),
    checkpoint_size bigint  NOT NULL,
    PRIMARY KEY (token_id, key)
);
