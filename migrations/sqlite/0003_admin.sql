-- Admin sign-in for the web wizard. migrations/postgres/0003_admin.sql is the same schema in
-- PostgreSQL's dialect. (0002 is reserved for push.)

-- People who may sign in to the wizard. password_hash is an argon2id PHC string.
CREATE TABLE admins (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

-- Signed-in browser sessions. Only a SHA-256 of the session cookie is kept; csrf_token is the
-- value every state-changing form and request of that session must carry back.
CREATE TABLE sessions (
    token_hash BLOB    PRIMARY KEY,
    admin_id   INTEGER NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    csrf_token TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
