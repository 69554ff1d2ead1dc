-- Push jobs that nothing could send yet.
-- migrations/postgres/0007_push_followups.sql is the same change in PostgreSQL's dialect.

-- waiting_transport: the job was claimed by a worker with no transport for its device's
-- platform. It stays due: any worker that has such a transport claims it at once, and
-- workers without one leave it alone (instead of putting it off again and again).
ALTER TABLE push_jobs ADD COLUMN waiting_transport BOOLEAN NOT NULL DEFAULT FALSE;
