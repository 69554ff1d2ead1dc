-- Push jobs that nothing could send yet, and the batch a reconcile queued a job in.
-- migrations/postgres/0007_push_followups.sql is the same change in PostgreSQL's dialect.

-- waiting_transport: the job was claimed by a worker with no transport for its device's
-- platform. It stays due: any worker that has such a transport claims it at once, and
-- workers without one leave it alone (instead of putting it off again and again).
ALTER TABLE push_jobs ADD COLUMN waiting_transport BOOLEAN NOT NULL DEFAULT FALSE;

-- batch: one id for every job one reconcile queued (an import, a devices load, an account
-- removal, `push sync`), so that what a change queued can be followed apart from the rest of
-- the queue. NULL for jobs queued before batches existed.
ALTER TABLE push_jobs ADD COLUMN batch BLOB;
CREATE INDEX push_jobs_batch ON push_jobs (batch);
