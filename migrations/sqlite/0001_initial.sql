-- The initial schema. migrations/postgres/0001_initial.sql is the same schema in PostgreSQL's
-- dialect; every change is a new numbered file in both folders.
-- Times are unix epoch milliseconds (UTC): one portable type that sorts and compares alike in
-- both databases.

-- Users the MDM already has. Accounts are matched to them by email, case-insensitively through
-- email_norm (trimmed and lower-cased by the application).
CREATE TABLE users (
    id           INTEGER PRIMARY KEY,
    email        TEXT    NOT NULL,
    email_norm   TEXT    NOT NULL UNIQUE,
    display_name TEXT    NOT NULL DEFAULT '',
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);

-- Enrolled devices. enrollment_id is where the MDM server addresses device-channel commands;
-- user_channel_id (macOS) is where user-channel commands go.
CREATE TABLE devices (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id       TEXT    NOT NULL UNIQUE,
    platform        TEXT    NOT NULL CHECK (platform IN ('ios', 'ipados', 'macos', 'windows', 'android')),
    enrollment_id   TEXT    NOT NULL,
    user_channel_id TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX devices_user ON devices (user_id);

-- Imported mail accounts, keyed by (user, kind, address). Kind-specific columns:
--   email:    display_name, username = incoming user name, password = incoming password,
--             outgoing_username, outgoing_password
--   exchange: username, domain, password
-- Passwords are AEAD ciphertexts; the *_mac columns are keyed MACs of the plaintext so an
-- import can tell "unchanged" without decrypting.
-- user_id refers to users (id) without a FOREIGN KEY: imports, the only writers, look every
-- user up while holding a lock no user deletion can pass (SQLite's write lock, a SHARE lock
-- on users in PostgreSQL), and deleting a user deletes their accounts in the same
-- transaction. Checking the parent row of every account was most of the time PostgreSQL
-- spent inserting a million of them.
CREATE TABLE email_accounts (
    id                    INTEGER PRIMARY KEY,
    user_id               INTEGER NOT NULL,
    kind                  TEXT    NOT NULL CHECK (kind IN ('email', 'exchange')),
    address               TEXT    NOT NULL,
    address_norm          TEXT    NOT NULL,
    display_name          TEXT,
    username              TEXT    NOT NULL,
    domain                TEXT,
    outgoing_username     TEXT,
    password              BLOB,
    password_mac          BLOB,
    outgoing_password     BLOB,
    outgoing_password_mac BLOB,
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL,
    UNIQUE (user_id, kind, address_norm)
);

-- One row per committed import: who, what, when, with which options, and the counts.
CREATE TABLE imports (
    id          BLOB    PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('email', 'exchange')),
    source      TEXT    NOT NULL,
    file_sha256 TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    options     TEXT    NOT NULL,
    encoding    TEXT    NOT NULL,
    delimiter   TEXT    NOT NULL,
    header      BOOLEAN NOT NULL,
    rows        BIGINT  NOT NULL,
    added       BIGINT  NOT NULL,
    updated     BIGINT  NOT NULL,
    unchanged   BIGINT  NOT NULL,
    discarded   BIGINT  NOT NULL,
    rejected    BIGINT  NOT NULL,
    duplicates  BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX imports_created ON imports (created_at);

-- The lines of an import that were not applied (discarded, rejected, duplicate): what its
-- summary lists.
CREATE TABLE import_lines (
    import_id       BLOB   NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    line            BIGINT NOT NULL,
    outcome         TEXT   NOT NULL CHECK (outcome IN ('discarded', 'rejected', 'duplicate')),
    field           TEXT,
    message         TEXT   NOT NULL,
    user_email      TEXT   NOT NULL,
    account_address TEXT   NOT NULL,
    PRIMARY KEY (import_id, line)
) WITHOUT ROWID;

-- The results file of an import (one CSV row per input line: line, user_email,
-- account_address, outcome, message), kept as deflated runs of consecutive rows. A million-line
-- import adds a few thousand rows here rather than a million.
CREATE TABLE import_results (
    import_id  BLOB   NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    first_line BIGINT NOT NULL,
    csv_deflated BLOB NOT NULL,
    PRIMARY KEY (import_id, first_line)
) WITHOUT ROWID;

-- Profile deliveries to devices: a durable queue with retries.
CREATE TABLE push_jobs (
    id                 INTEGER PRIMARY KEY,
    device_id          INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    profile_identifier TEXT    NOT NULL,
    kind               TEXT    NOT NULL CHECK (kind IN ('install', 'remove')),
    content_hash       TEXT,
    command_uuid       BLOB    NOT NULL,
    state              TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'acknowledged', 'failed')),
    attempts           BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at    BIGINT  NOT NULL,
    last_error         TEXT,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL
);
CREATE INDEX push_jobs_due ON push_jobs (state, next_attempt_at);
CREATE INDEX push_jobs_device ON push_jobs (device_id);

-- API tokens; only a SHA-256 of each token is kept.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    token_hash   BLOB    NOT NULL UNIQUE,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT
);

-- What was done, by whom. details is JSON.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      BIGINT  NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    details TEXT    NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
