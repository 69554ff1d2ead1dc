-- Failed wizard sign-ins, counted per admin name ('name:…') and per client address
-- ('address:…'), so that every server sharing the database slows the same guesser down.
-- failures restarts from 1 after a quiet spell (auth::FORGET_FAILURES_MS); wait_until is
-- when the next attempt on the key is heard again (unix ms).
-- migrations/sqlite/0006_sign_in_failures.sql is the same schema in the other dialect.
CREATE TABLE sign_in_failures (
    key             TEXT   PRIMARY KEY,
    failures        BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    wait_until      BIGINT NOT NULL
);
CREATE INDEX sign_in_failures_last ON sign_in_failures (last_failure_at);
