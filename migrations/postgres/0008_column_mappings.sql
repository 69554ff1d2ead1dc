-- Saved column mappings: which column (or template over columns) of a file each field of an
-- account type is read from, under a name an admin reuses (import --mapping NAME, the
-- wizard's Columns step). fields is a JSON object, field name → source as written
-- ("incoming_username": "{username}@{domain}"). MXroute's export ships as an example.
-- migrations/sqlite/0008_column_mappings.sql is the same schema in the other dialect.
CREATE TABLE column_mappings (
    name        TEXT   PRIMARY KEY,
    kind        TEXT   NOT NULL,
    fields      TEXT   NOT NULL,
    created_by  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
INSERT INTO column_mappings (name, kind, fields, created_by, created_at) VALUES (
    'mxroute', 'email',
    '{"user_email":"{username}@{domain}","email_address":"{username}@{domain}","incoming_username":"{username}@{domain}","outgoing_username":"{username}@{domain}","incoming_password":"password","outgoing_password":"password"}',
    'example', 0
);
