-- The key check: which key the store's passwords are sealed with, as an identifier derived
-- from the key (never the key). One row at most, written when the store first has a key.
CREATE TABLE secret_key_check (
    singleton   INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    key_id      TEXT    NOT NULL,
    recorded_at BIGINT  NOT NULL
);
