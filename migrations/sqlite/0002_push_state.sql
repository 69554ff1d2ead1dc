-- Push: what each device should hold, what it was last sent, and leases on jobs being sent.
-- migrations/postgres/0002_push_state.sql is the same change in PostgreSQL's dialect.

-- The profile reconciling decided a device should hold. fingerprint is a hash of everything
-- the profile is rendered from (the user, their stored accounts with password MACs, the
-- definitions, the device's platform and channel), so a reconcile that finds it unchanged
-- skips the device without decrypting or rendering anything. identifier and content_hash
-- are NULL when the device should hold no profile; status says why, when that is not simply
-- "no accounts". accounts is the JSON list of accounts in the profile (their GUIDs remove
-- them from Windows devices).
CREATE TABLE push_targets (
    device_id    INTEGER PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    fingerprint  TEXT    NOT NULL,
    identifier   TEXT,
    content_hash TEXT,
    accounts     TEXT    NOT NULL DEFAULT '[]',
    status       TEXT,
    updated_at   BIGINT  NOT NULL
);

-- What a device was last sent, per profile identifier, and when the MDM reported it
-- installed.
CREATE TABLE push_delivered (
    device_id       INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    identifier      TEXT    NOT NULL,
    content_hash    TEXT    NOT NULL,
    sent_at         BIGINT  NOT NULL,
    acknowledged_at BIGINT,
    PRIMARY KEY (device_id, identifier)
);

-- A job in state 'sending' belongs to the worker named in claimed_by until claimed_until;
-- after that (the worker crashed or was killed) any worker may claim it again.
-- accounts: the JSON account list a Windows removal deletes; windows_replace: a Windows install
-- that updates accounts the device already has (SyncML Replace rather than Add).
ALTER TABLE push_jobs ADD COLUMN claimed_by TEXT;
ALTER TABLE push_jobs ADD COLUMN claimed_until BIGINT;
ALTER TABLE push_jobs ADD COLUMN accounts TEXT NOT NULL DEFAULT '[]';
ALTER TABLE push_jobs ADD COLUMN windows_replace BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX push_jobs_command ON push_jobs (command_uuid);
