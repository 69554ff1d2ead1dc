-- Push jobs that nothing could send yet, the batch a reconcile queued a job in, and the
-- wait for a device's answer.
-- migrations/sqlite/0007_push_followups.sql is the same change in SQLite's dialect.

-- waiting_transport: the job was claimed by a worker with no transport for its device's
-- platform. It stays due: any worker that has such a transport claims it at once, and
-- workers without one leave it alone (instead of putting it off again and again).
ALTER TABLE push_jobs ADD COLUMN waiting_transport BOOLEAN NOT NULL DEFAULT FALSE;

-- batch: one id for every job one reconcile queued (an import, a devices load, an account
-- removal, `push sync`), so that what a change queued can be followed apart from the rest of
-- the queue. NULL for jobs queued before batches existed.
ALTER TABLE push_jobs ADD COLUMN batch UUID;
CREATE INDEX push_jobs_batch ON push_jobs (batch);

-- The wait for a device's answer, for jobs sent through an MDM that reports answers
-- (NanoMDM with its webhook): sent_at is when the MDM first took the job's command (kept
-- when it is sent again for want of an answer); remind_at when the worker next does
-- something about a missing answer (nudge the device, or send the command again), NULL when
-- no answer will come (webhook, folder) or nothing more will be done; nudges counts the
-- APNs pushes sent since the current command was taken; resent says the job was sent again
-- under a new command. A sent job is overdue once its first reminder fell due. Jobs sent
-- before this change have no remind_at and are left as they were.
ALTER TABLE push_jobs ADD COLUMN sent_at BIGINT;
ALTER TABLE push_jobs ADD COLUMN remind_at BIGINT;
ALTER TABLE push_jobs ADD COLUMN nudges BIGINT NOT NULL DEFAULT 0;
ALTER TABLE push_jobs ADD COLUMN resent BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX push_jobs_remind ON push_jobs (remind_at);
