//! The push tables: `push_targets` (what each device should hold), `push_delivered` (what it
//! was last sent) and `push_jobs` (the durable queue between them).

use std::collections::HashSet;

use sqlx::QueryBuilder;
use uuid::Uuid;

use super::{
    Pool, SealedAccount, Store, StoreError, StoredUser, Tx, json_rows, now_ms, on_pool, on_tx,
    push_case_by_id, push_list,
};

/// A user with devices, their accounts and their devices' targets: what a reconcile decides
/// from.
#[derive(Debug, Clone)]
pub struct PushSource {
    /// The user.
    pub user: StoredUser,
    /// Their accounts in kind and address order, with the MACs of their passwords.
    pub accounts: Vec<SourceAccount>,
    /// Their devices in id order.
    pub devices: Vec<TargetDevice>,
}

/// A stored account with the MACs of its passwords. The sealed passwords themselves are
/// not read here (`sealed.password` and `sealed.outgoing_password` are `None`): a
/// reconcile needs them only for the few users whose accounts changed.
#[derive(Debug, Clone)]
pub struct SourceAccount {
    /// The account's fields, without its sealed passwords.
    pub sealed: SealedAccount,
    /// MAC of the (incoming or Exchange) password.
    pub password_mac: Option<Vec<u8>>,
    /// MAC of the outgoing password.
    pub outgoing_password_mac: Option<Vec<u8>>,
}

/// A device and what the last reconcile decided for it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TargetDevice {
    /// Store id.
    pub id: i64,
    /// Owner's store id.
    pub user_id: i64,
    /// The MDM's device id.
    pub device_id: String,
    /// Platform name as stored.
    pub platform: String,
    /// Device-channel enrollment id.
    pub enrollment_id: String,
    /// macOS user-channel enrollment id.
    pub user_channel_id: Option<String>,
    /// The stored target's source fingerprint; `None` when never reconciled.
    pub fingerprint: Option<String>,
    /// The profile identifier the device should hold.
    pub identifier: Option<String>,
    /// Hash of that profile's content.
    pub content_hash: Option<String>,
    /// JSON list of the accounts in that profile.
    pub accounts: Option<String>,
    /// Why the device gets no profile, when it does not.
    pub status: Option<String>,
}

/// What a reconcile decided for one device.
#[derive(Debug, Clone)]
pub struct TargetWrite {
    /// Store id of the device.
    pub device_id: i64,
    /// Fingerprint of the sources the decision was made from.
    pub fingerprint: String,
    /// The profile the device should hold, if any.
    pub identifier: Option<String>,
    /// Hash of its content.
    pub content_hash: Option<String>,
    /// JSON list of its accounts.
    pub accounts: String,
    /// Why no profile, or which accounts were left out.
    pub status: Option<String>,
}

/// A job to add to the queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Store id of the device.
    pub device_id: i64,
    /// The profile's identifier.
    pub identifier: String,
    /// `install` or `remove`.
    pub kind: &'static str,
    /// Hash of the content to install.
    pub content_hash: Option<String>,
    /// JSON list of accounts (what a Windows removal deletes).
    pub accounts: String,
    /// Windows: update accounts in place rather than add them.
    pub windows_replace: bool,
}

/// A job a worker claimed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    /// Job id.
    pub id: i64,
    /// Store id of the device.
    pub device_id: i64,
    /// The profile's identifier.
    pub profile_identifier: String,
    /// `install` or `remove`.
    pub kind: String,
    /// Hash of the content reconciling decided on.
    pub content_hash: Option<String>,
    /// Attempts so far, this one included.
    pub attempts: i64,
    /// JSON list of accounts.
    pub accounts: String,
    /// Windows: Replace rather than Add.
    pub windows_replace: bool,
    /// The job's command UUID, the same for every attempt: a repeat is then the same
    /// command to the MDM (NanoMDM answers "command already exists"), never a second one.
    pub command_uuid: Uuid,
}

/// How one attempt at a job ended.
#[derive(Debug, Clone)]
pub enum JobResult {
    /// Handed to the MDM under `command_uuid`; `content_hash` is what was sent (installs).
    Sent {
        /// The command's UUID.
        command_uuid: Uuid,
        /// What was installed; `None` for removals.
        content_hash: Option<String>,
        /// A warning worth showing (a failed APNs push, say), if any.
        note: Option<String>,
        /// When the device's answer is overdue (unix ms), for an MDM that reports answers;
        /// `None` when no answer will come.
        answer_due: Option<i64>,
    },
    /// Try again at `at` (unix ms).
    Retry {
        /// When.
        at: i64,
        /// What went wrong.
        error: String,
    },
    /// Failed for good.
    Failed {
        /// Why.
        error: String,
    },
    /// Nothing this worker has can send it (no transport for its platform): it waits,
    /// due, for a worker that can, without counting the attempt.
    Deferred {
        /// Why.
        reason: String,
    },
}

/// A device and owner, as the worker needs them to send a job.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobDevice {
    /// Store id.
    pub id: i64,
    /// Owner's store id.
    pub user_id: i64,
    /// The MDM's device id.
    pub device_id: String,
    /// Platform name.
    pub platform: String,
    /// Device-channel enrollment id.
    pub enrollment_id: String,
    /// macOS user-channel enrollment id.
    pub user_channel_id: Option<String>,
    /// Owner's address.
    pub user_email: String,
}

/// Jobs per state.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct StateCounts {
    /// Waiting to be sent.
    pub queued: i64,
    /// Being sent.
    pub sending: i64,
    /// Handed to the MDM.
    pub sent: i64,
    /// Reported installed or removed by the device.
    pub acknowledged: i64,
    /// Given up on.
    pub failed: i64,
    /// Of the sent, those whose device's answer is overdue.
    pub overdue: i64,
}

/// One device's jobs per state, with the latest error.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct DeviceJobs {
    /// The MDM's device id.
    pub device_id: String,
    /// Platform name.
    pub platform: String,
    /// Waiting.
    pub queued: i64,
    /// Being sent.
    pub sending: i64,
    /// Sent.
    pub sent: i64,
    /// Acknowledged.
    pub acknowledged: i64,
    /// Failed.
    pub failed: i64,
    /// Sent, with the device's answer overdue.
    pub overdue: i64,
    /// The most recent error or status of any of its jobs.
    pub last_error: Option<String>,
    /// Why reconciling gives the device no profile, if it does not.
    pub status: Option<String>,
}

impl DeviceJobs {
    /// What to show beside the counts: why the device gets no profile, else its latest
    /// error, else nothing.
    pub fn note(&self) -> &str {
        self.status
            .as_deref()
            .or(self.last_error.as_deref())
            .unwrap_or("")
    }
}

/// What is left to do, for a worker deciding whether to wait or stop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    /// Queued jobs due now.
    pub due: i64,
    /// Jobs being retried (queued after a failed attempt) or held by a worker.
    pub in_flight: i64,
    /// When the earliest queued job falls due (unix ms).
    pub next_due_at: Option<i64>,
    /// Queued jobs waiting for a transport for their device's platform.
    pub waiting: i64,
}

/// A [`SourceRow`] as a SQLite JSON array, MACs in hex.
type SourceTuple = (
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl From<SourceTuple> for SourceRow {
    fn from(t: SourceTuple) -> Self {
        SourceRow {
            user_id: t.0,
            kind: t.1,
            address: t.2,
            address_norm: t.3,
            display_name: t.4,
            username: t.5,
            domain: t.6,
            outgoing_username: t.7,
            password_mac: super::accounts::unhex(t.8),
            outgoing_password_mac: super::accounts::unhex(t.9),
        }
    }
}

/// A [`TargetDevice`] as a SQLite JSON array.
type DeviceTuple = (
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl From<DeviceTuple> for TargetDevice {
    fn from(t: DeviceTuple) -> Self {
        TargetDevice {
            id: t.0,
            user_id: t.1,
            device_id: t.2,
            platform: t.3,
            enrollment_id: t.4,
            user_channel_id: t.5,
            fingerprint: t.6,
            identifier: t.7,
            content_hash: t.8,
            accounts: t.9,
            status: t.10,
        }
    }
}

/// SQLite: the rows of `sql` (which binds two integers) as `columns` in one JSON array of
/// arrays, in the query's order.
async fn sqlite_json<T: serde::de::DeserializeOwned>(
    pool: &sqlx::SqlitePool,
    columns: &str,
    sql: &str,
    a: i64,
    b: i64,
) -> Result<Vec<T>, StoreError> {
    let sql = format!("SELECT json_group_array(json_array({columns})) FROM ({sql})");
    let json: Option<String> = sqlx::query_scalar(&sql)
        .bind(a)
        .bind(b)
        .fetch_one(pool)
        .await?;
    json_rows(json.as_deref())
}

#[derive(sqlx::FromRow)]
struct SourceRow {
    user_id: i64,
    kind: String,
    address: String,
    address_norm: String,
    display_name: Option<String>,
    username: String,
    domain: Option<String>,
    outgoing_username: Option<String>,
    password_mac: Option<Vec<u8>>,
    outgoing_password_mac: Option<Vec<u8>>,
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    user_id: i64,
    kind: String,
    address: String,
    address_norm: String,
    display_name: Option<String>,
    username: String,
    domain: Option<String>,
    outgoing_username: Option<String>,
    password: Option<Vec<u8>>,
    outgoing_password: Option<Vec<u8>>,
}

/// What sending a profile again does to its `push_delivered` row: the device holds what it
/// acknowledged last, so once a version was acknowledged the row keeps that version's hash
/// until the new one is acknowledged too (a refused update must not erase it: a later
/// removal is only queued where such a row exists).
const KEEP_ACKNOWLEDGED: &str = "sent_at = excluded.sent_at, content_hash = CASE \
     WHEN push_delivered.acknowledged_at IS NULL THEN excluded.content_hash \
     ELSE push_delivered.content_hash END";

/// The jobs per state, as columns; overdue measured at `now`, a placeholder (`$1`, say).
fn states(now: &str) -> String {
    format!(
        "COALESCE(SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END), 0) AS queued, \
         COALESCE(SUM(CASE WHEN state = 'sending' THEN 1 ELSE 0 END), 0) AS sending, \
         COALESCE(SUM(CASE WHEN state = 'sent' THEN 1 ELSE 0 END), 0) AS sent, \
         COALESCE(SUM(CASE WHEN state = 'acknowledged' THEN 1 ELSE 0 END), 0) AS acknowledged, \
         COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0) AS failed, \
         COALESCE(SUM(CASE WHEN state = 'sent' AND {} THEN 1 ELSE 0 END), 0) AS overdue",
        overdue("", now)
    )
}

/// Whether a sent job (of table alias `alias`, with its dot, or none) has its device's answer
/// overdue at `now`, a placeholder: its first reminder fell due, or has been dealt with.
fn overdue(alias: &str, now: &str) -> String {
    format!("({alias}resent OR {alias}nudges > 0 OR {alias}remind_at <= {now})")
}

impl Store {
    /// One page of users that have devices, in id order after user id `after`, with their
    /// accounts and their devices' targets: three queries per page.
    pub async fn push_sources_page(
        &self,
        after: i64,
        users: i64,
    ) -> Result<Vec<PushSource>, StoreError> {
        // Driven from the devices, never by scanning users: a store without devices, or
        // with few, is reconciled in time proportional to its devices, not its users.
        const USERS: &str = "SELECT id, email, email_norm, display_name FROM users \
             WHERE id IN (SELECT DISTINCT user_id FROM devices WHERE user_id > $1 \
             ORDER BY user_id LIMIT $2) ORDER BY id";
        const ACCOUNTS: &str = "SELECT user_id, kind, address, address_norm, display_name, \
             username, domain, outgoing_username, password_mac, outgoing_password_mac \
             FROM email_accounts WHERE user_id BETWEEN $1 AND $2 \
             ORDER BY user_id, kind, address_norm";
        const DEVICES: &str = "SELECT d.id, d.user_id, d.device_id, d.platform, \
             d.enrollment_id, d.user_channel_id, t.fingerprint, t.identifier, t.content_hash, \
             t.accounts, t.status FROM devices d LEFT JOIN push_targets t ON t.device_id = d.id \
             WHERE d.user_id BETWEEN $1 AND $2 ORDER BY d.user_id, d.id";
        let sqlite = match &self.pool {
            Pool::Sqlite(pool) => Some(pool),
            Pool::Postgres(_) => None,
        };
        // On SQLite each query comes back as one JSON array: sqlx hands every SQLite row
        // from its worker thread separately, and for a reconcile that finds nothing to do
        // that hand-off, not the reads, would be most of the time.
        let found: Vec<StoredUser> = match sqlite {
            Some(pool) => sqlite_json::<(i64, String, String, String)>(
                pool,
                "id, email, email_norm, display_name",
                USERS,
                after,
                users,
            )
            .await?
            .into_iter()
            .map(|(id, email, email_norm, display_name)| StoredUser {
                id,
                email,
                email_norm,
                display_name,
            })
            .collect(),
            None => on_pool!(self, pool => {
                sqlx::query_as(USERS).bind(after).bind(users).fetch_all(pool).await
            })?,
        };
        let (Some(first), Some(last)) = (found.first(), found.last()) else {
            return Ok(Vec::new());
        };
        let (first, last) = (first.id, last.id);
        let accounts: Vec<SourceRow> = match sqlite {
            Some(pool) => sqlite_json::<SourceTuple>(
                pool,
                "user_id, kind, address, address_norm, display_name, username, domain, \
                 outgoing_username, CASE WHEN password_mac IS NULL THEN NULL \
                 ELSE hex(password_mac) END, CASE WHEN outgoing_password_mac IS NULL \
                 THEN NULL ELSE hex(outgoing_password_mac) END",
                ACCOUNTS,
                first,
                last,
            )
            .await?
            .into_iter()
            .map(SourceRow::from)
            .collect(),
            None => on_pool!(self, pool => {
                sqlx::query_as(ACCOUNTS).bind(first).bind(last).fetch_all(pool).await
            })?,
        };
        let devices: Vec<TargetDevice> = match sqlite {
            Some(pool) => sqlite_json::<DeviceTuple>(
                pool,
                "id, user_id, device_id, platform, enrollment_id, user_channel_id, \
                 fingerprint, identifier, content_hash, accounts, status",
                DEVICES,
                first,
                last,
            )
            .await?
            .into_iter()
            .map(TargetDevice::from)
            .collect(),
            None => on_pool!(self, pool => {
                sqlx::query_as(DEVICES).bind(first).bind(last).fetch_all(pool).await
            })?,
        };
        let mut accounts = accounts.into_iter().peekable();
        let mut devices = devices.into_iter().peekable();
        let mut page = Vec::with_capacity(found.len());
        for user in found {
            let mut source = PushSource {
                user,
                accounts: Vec::new(),
                devices: Vec::new(),
            };
            while let Some(a) = accounts.next_if(|a| a.user_id <= source.user.id) {
                if a.user_id == source.user.id {
                    source.accounts.push(SourceAccount {
                        sealed: SealedAccount {
                            kind: a.kind,
                            address: a.address,
                            address_norm: a.address_norm,
                            display_name: a.display_name,
                            username: a.username,
                            domain: a.domain,
                            outgoing_username: a.outgoing_username,
                            password: None,
                            outgoing_password: None,
                        },
                        password_mac: a.password_mac,
                        outgoing_password_mac: a.outgoing_password_mac,
                    });
                }
            }
            while let Some(d) = devices.next_if(|d| d.user_id <= source.user.id) {
                if d.user_id == source.user.id {
                    source.devices.push(d);
                }
            }
            page.push(source);
        }
        Ok(page)
    }

    /// Records what a reconcile decided: drops the queued and failed jobs the new ones
    /// supersede, adds the new jobs and stores the targets, all or nothing. A failed job for
    /// the same device and profile is stale once a newer decision exists: retried, it would
    /// put back the old profile, even an account that was removed since.
    ///
    /// A removal is only queued where the device may hold the profile: it was sent it, or
    /// a job for it is being sent. Otherwise (the install never went out, and is dropped
    /// here) the device would only answer that it has no such profile. Returns the indices
    /// in `jobs` of the removals left out. The check runs after the supersede in the same
    /// transaction: a worker cannot claim a job the supersede has locked or deleted, and a
    /// job it claimed first is seen as being sent. The jobs are queued in `batch`.
    pub async fn write_reconcile(
        &self,
        targets: &[TargetWrite],
        jobs: &[NewJob],
        batch: Uuid,
    ) -> Result<Vec<usize>, StoreError> {
        if targets.is_empty() && jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let now = now_ms();
        for chunk in jobs.chunks(super::BATCH / 2) {
            on_tx!(tx, conn => {
                let mut q = QueryBuilder::new(
                    "DELETE FROM push_jobs WHERE state IN ('queued', 'failed') \
                     AND (device_id, profile_identifier) IN ",
                );
                push_pairs(&mut q, chunk.iter());
                q.build().execute(&mut *conn).await.map(|r| r.rows_affected())
            })?;
        }
        let removals: Vec<&NewJob> = jobs.iter().filter(|j| j.kind == "remove").collect();
        let mut held: HashSet<(i64, String)> = HashSet::new();
        for chunk in removals.chunks(super::BATCH / 4) {
            let rows: Vec<(i64, String)> = on_tx!(tx, conn => {
                let mut q = QueryBuilder::new(
                    "SELECT device_id, identifier FROM push_delivered \
                     WHERE (device_id, identifier) IN ",
                );
                push_pairs(&mut q, chunk.iter().copied());
                q.push(
                    " UNION SELECT device_id, profile_identifier FROM push_jobs \
                     WHERE state = 'sending' AND (device_id, profile_identifier) IN ",
                );
                push_pairs(&mut q, chunk.iter().copied());
                q.build_query_as().fetch_all(&mut *conn).await
            })?;
            held.extend(rows);
        }
        let mut left_out = Vec::new();
        let mut queued = Vec::with_capacity(jobs.len());
        for (i, job) in jobs.iter().enumerate() {
            if job.kind == "remove" && !held.contains(&(job.device_id, job.identifier.clone())) {
                left_out.push(i);
            } else {
                queued.push(job);
            }
        }
        let jobs = queued;
        for chunk in jobs.chunks(super::BATCH / 10) {
            on_tx!(tx, conn => {
                let mut q = QueryBuilder::new(
                    "INSERT INTO push_jobs (device_id, profile_identifier, kind, content_hash, \
                     command_uuid, state, attempts, next_attempt_at, accounts, windows_replace, \
                     batch, created_at, updated_at) ",
                );
                q.push_values(chunk, |mut row, job| {
                    row.push_bind(job.device_id)
                        .push_bind(job.identifier.as_str())
                        .push_bind(job.kind)
                        .push_bind(job.content_hash.as_deref())
                        .push_bind(Uuid::new_v4())
                        .push_bind("queued")
                        .push_bind(0_i64)
                        .push_bind(now)
                        .push_bind(job.accounts.as_str())
                        .push_bind(job.windows_replace)
                        .push_bind(batch)
                        .push_bind(now)
                        .push_bind(now);
                });
                q.build().execute(&mut *conn).await.map(|r| r.rows_affected())
            })?;
        }
        for chunk in targets.chunks(super::BATCH / 8) {
            on_tx!(tx, conn => {
                let mut q = QueryBuilder::new(
                    "INSERT INTO push_targets (device_id, fingerprint, identifier, content_hash, \
                     accounts, status, updated_at) ",
                );
                q.push_values(chunk, |mut row, t| {
                    row.push_bind(t.device_id)
                        .push_bind(t.fingerprint.as_str())
                        .push_bind(t.identifier.as_deref())
                        .push_bind(t.content_hash.as_deref())
                        .push_bind(t.accounts.as_str())
                        .push_bind(t.status.as_deref())
                        .push_bind(now);
                });
                q.push(
                    " ON CONFLICT (device_id) DO UPDATE SET fingerprint = excluded.fingerprint, \
                     identifier = excluded.identifier, content_hash = excluded.content_hash, \
                     accounts = excluded.accounts, status = excluded.status, \
                     updated_at = excluded.updated_at",
                );
                q.build().execute(&mut *conn).await.map(|r| r.rows_affected())
            })?;
        }
        tx.commit().await?;
        Ok(left_out)
    }

    /// Claims up to `limit` jobs for worker `worker` until `lease_until`: queued jobs that are
    /// due, and jobs whose previous worker's lease ran out, never a job while an older job
    /// of the same device is still waiting or being sent. A job already found waiting for a
    /// transport is claimed only by a worker that can send to its device's platform (one of
    /// `sendable`), at once: it was never put off, so a worker that gained a transport sends
    /// it without delay, and one without leaves it alone. Each job keeps the command UUID it
    /// was queued with. Jobs come in due-index order, not sorted: sorting every due job on
    /// each claim cost more than sending, and the older-job check alone keeps a device's
    /// commands in order. On PostgreSQL concurrent workers skip each other's rows (`FOR
    /// UPDATE SKIP LOCKED`); on SQLite the one UPDATE runs under the write lock.
    pub async fn claim_push_jobs(
        &self,
        worker: &str,
        lease_until: i64,
        limit: i64,
        sendable: &[&str],
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let now = now_ms();
        let mut jobs: Vec<ClaimedJob> = on_pool!(self, pool => {
            let mut q = QueryBuilder::new(
                "UPDATE push_jobs SET state = 'sending', waiting_transport = FALSE, claimed_by = ",
            );
            q.push_bind(worker)
                .push(", claimed_until = ")
                .push_bind(lease_until)
                .push(", attempts = attempts + 1, updated_at = ")
                .push_bind(now)
                .push(
                    " WHERE id IN (SELECT j.id FROM push_jobs j WHERE ((j.state = 'queued' \
                     AND j.next_attempt_at <= ",
                )
                .push_bind(now)
                .push(" AND (NOT j.waiting_transport");
            if !sendable.is_empty() {
                q.push(
                    " OR EXISTS (SELECT 1 FROM devices d WHERE d.id = j.device_id \
                     AND d.platform IN ",
                );
                push_list(&mut q, sendable.iter().copied());
                q.push(")");
            }
            q.push(")) OR (j.state = 'sending' AND j.claimed_until < ")
                .push_bind(now)
                .push(
                    ")) AND NOT EXISTS (SELECT 1 FROM push_jobs e \
                     WHERE e.device_id = j.device_id AND e.id < j.id \
                     AND e.state IN ('queued', 'sending')) LIMIT ",
                )
                .push_bind(limit);
            if matches!(self.pool, Pool::Postgres(_)) {
                q.push(" FOR UPDATE SKIP LOCKED");
            }
            q.push(
                ") RETURNING id, device_id, profile_identifier, kind, content_hash, attempts, \
                 accounts, windows_replace, command_uuid",
            );
            q.build_query_as::<ClaimedJob>().fetch_all(pool).await
        })?;
        jobs.sort_by_key(|j| j.id);
        Ok(jobs)
    }

    /// Records how attempts ended, for jobs `worker` still holds, and what devices were sent.
    pub async fn finish_push_jobs(
        &self,
        worker: &str,
        results: &[(ClaimedJob, JobResult)],
    ) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        const SENT: &str = "UPDATE push_jobs SET state = 'sent', command_uuid = $1, \
             content_hash = COALESCE($2, content_hash), last_error = $3, claimed_by = NULL, \
             claimed_until = NULL, updated_at = $4, sent_at = COALESCE(sent_at, $4), \
             remind_at = $7 WHERE id = $5 AND claimed_by = $6";
        const RETRY: &str = "UPDATE push_jobs SET state = 'queued', next_attempt_at = $1, \
             last_error = $2, claimed_by = NULL, claimed_until = NULL, updated_at = $3 \
             WHERE id = $4 AND claimed_by = $5";
        const DEFER: &str = "UPDATE push_jobs SET state = 'queued', next_attempt_at = $1, \
             last_error = $2, attempts = attempts - 1, waiting_transport = TRUE, \
             claimed_by = NULL, claimed_until = NULL, updated_at = $1 \
             WHERE id = $3 AND claimed_by = $4";
        const FAILED: &str = "UPDATE push_jobs SET state = 'failed', last_error = $1, \
             claimed_by = NULL, claimed_until = NULL, updated_at = $2 \
             WHERE id = $3 AND claimed_by = $4";
        let delivered = format!(
            "INSERT INTO push_delivered (device_id, identifier, content_hash, sent_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (device_id, identifier) \
             DO UPDATE SET {KEEP_ACKNOWLEDGED}"
        );
        const REMOVED: &str = "DELETE FROM push_delivered WHERE device_id = $1 AND identifier = $2";
        let now = now_ms();
        let mut tx = self.begin().await?;
        // Plain installs, nearly every result, are recorded a hundred at a time; the rest one
        // by one. A batch never holds two jobs of one device (claims skip a device's younger
        // jobs), so no row below is written twice by one statement.
        let plain: Vec<(&ClaimedJob, Uuid, &str, Option<i64>)> = results
            .iter()
            .filter_map(|(job, result)| match result {
                JobResult::Sent {
                    command_uuid,
                    content_hash: Some(hash),
                    note: None,
                    answer_due,
                } => Some((job, *command_uuid, hash.as_str(), *answer_due)),
                _ => None,
            })
            .collect();
        for chunk in plain.chunks(100) {
            let held: Vec<i64> = on_tx!(tx, conn => {
                let mut q = QueryBuilder::new(
                    "UPDATE push_jobs SET state = 'sent', last_error = NULL, claimed_by = NULL, \
                     claimed_until = NULL, updated_at = ",
                );
                q.push_bind(now).push(", sent_at = COALESCE(sent_at, ").push_bind(now);
                q.push("), command_uuid = ");
                push_case_by_id(&mut q, chunk.iter().map(|(job, uuid, _, _)| (job.id, *uuid)));
                q.push(", content_hash = ");
                push_case_by_id(&mut q, chunk.iter().map(|(job, _, hash, _)| (job.id, *hash)));
                q.push(", remind_at = ");
                push_case_by_id(&mut q, chunk.iter().map(|(job, _, _, due)| (job.id, *due)));
                q.push(" WHERE claimed_by = ").push_bind(worker).push(" AND id IN ");
                push_list(&mut q, chunk.iter().map(|(job, _, _, _)| job.id));
                q.push(" RETURNING id");
                q.build_query_scalar::<i64>().fetch_all(&mut *conn).await
            })?;
            let delivered: Vec<&(&ClaimedJob, Uuid, &str, Option<i64>)> = chunk
                .iter()
                .filter(|(job, _, _, _)| held.contains(&job.id))
                .collect();
            if delivered.is_empty() {
                continue;
            }
            on_tx!(tx, conn => {
                let mut q = QueryBuilder::new(
                    "INSERT INTO push_delivered (device_id, identifier, content_hash, sent_at) ",
                );
                q.push_values(&delivered, |mut row, (job, _, hash, _)| {
                    row.push_bind(job.device_id)
                        .push_bind(job.profile_identifier.as_str())
                        .push_bind(*hash)
                        .push_bind(now);
                });
                q.push(" ON CONFLICT (device_id, identifier) DO UPDATE SET ")
                    .push(KEEP_ACKNOWLEDGED);
                q.build().execute(&mut *conn).await.map(|r| r.rows_affected())
            })?;
        }
        for (job, result) in results {
            if plain.iter().any(|(p, _, _, _)| p.id == job.id) {
                continue;
            }
            on_tx!(tx, conn => {
                match result {
                    JobResult::Sent { command_uuid, content_hash, note, answer_due } => {
                        let held = sqlx::query(SENT)
                            .bind(*command_uuid)
                            .bind(content_hash.as_deref())
                            .bind(note.as_deref())
                            .bind(now)
                            .bind(job.id)
                            .bind(worker)
                            .bind(*answer_due)
                            .execute(&mut *conn)
                            .await?
                            .rows_affected();
                        match content_hash {
                            Some(hash) if held > 0 => {
                                sqlx::query(&delivered)
                                    .bind(job.device_id)
                                    .bind(job.profile_identifier.as_str())
                                    .bind(hash.as_str())
                                    .bind(now)
                                    .execute(&mut *conn)
                                    .await?;
                            }
                            None if held > 0 => {
                                sqlx::query(REMOVED)
                                    .bind(job.device_id)
                                    .bind(job.profile_identifier.as_str())
                                    .execute(&mut *conn)
                                    .await?;
                            }
                            _ => {}
                        }
                    }
                    JobResult::Retry { at, error } => {
                        sqlx::query(RETRY)
                            .bind(*at)
                            .bind(error.as_str())
                            .bind(now)
                            .bind(job.id)
                            .bind(worker)
                            .execute(&mut *conn)
                            .await?;
                    }
                    JobResult::Deferred { reason } => {
                        sqlx::query(DEFER)
                            .bind(now)
                            .bind(reason.as_str())
                            .bind(job.id)
                            .bind(worker)
                            .execute(&mut *conn)
                            .await?;
                    }
                    JobResult::Failed { error } => {
                        sqlx::query(FAILED)
                            .bind(error.as_str())
                            .bind(now)
                            .bind(job.id)
                            .bind(worker)
                            .execute(&mut *conn)
                            .await?;
                    }
                }
                Ok::<(), sqlx::Error>(())
            })?;
        }
        tx.commit().await
    }

    /// The devices (with their owners) of `device_ids`.
    pub async fn job_devices(&self, device_ids: &[i64]) -> Result<Vec<JobDevice>, StoreError> {
        if device_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_pool!(self, pool => {
            let mut q = QueryBuilder::new(
                "SELECT d.id, d.user_id, d.device_id, d.platform, d.enrollment_id, \
                 d.user_channel_id, u.email AS user_email FROM devices d JOIN users u ON u.id = d.user_id \
                 WHERE d.id IN ",
            );
            push_list(&mut q, device_ids.iter().copied());
            q.build_query_as::<JobDevice>().fetch_all(pool).await
        })?)
    }

    /// The users of `user_ids` with all their accounts (kind and address order): what the
    /// installs of one claimed batch render from, in two queries.
    pub async fn users_with_accounts_by_id(
        &self,
        user_ids: &[i64],
    ) -> Result<Vec<(StoredUser, Vec<SealedAccount>)>, StoreError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let users: Vec<StoredUser> = on_pool!(self, pool => {
            let mut q = QueryBuilder::new(
                "SELECT id, email, email_norm, display_name FROM users WHERE id IN ",
            );
            push_list(&mut q, user_ids.iter().copied());
            q.build_query_as::<StoredUser>().fetch_all(pool).await
        })?;
        let rows: Vec<AccountRow> = on_pool!(self, pool => {
            let mut q = QueryBuilder::new(
                "SELECT user_id, kind, address, address_norm, display_name, username, domain, \
                 outgoing_username, password, outgoing_password \
                 FROM email_accounts WHERE user_id IN ",
            );
            push_list(&mut q, user_ids.iter().copied());
            q.push(" ORDER BY user_id, kind, address_norm");
            q.build_query_as::<AccountRow>().fetch_all(pool).await
        })?;
        let mut by_user: std::collections::HashMap<i64, Vec<SealedAccount>> =
            std::collections::HashMap::new();
        for a in rows {
            by_user.entry(a.user_id).or_default().push(SealedAccount {
                kind: a.kind,
                address: a.address,
                address_norm: a.address_norm,
                display_name: a.display_name,
                username: a.username,
                domain: a.domain,
                outgoing_username: a.outgoing_username,
                password: a.password,
                outgoing_password: a.outgoing_password,
            });
        }
        Ok(users
            .into_iter()
            .map(|u| {
                let accounts = by_user.remove(&u.id).unwrap_or_default();
                (u, accounts)
            })
            .collect())
    }

    /// Whether any device is stored: with none, there is nothing to push.
    pub async fn has_devices(&self) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM devices LIMIT 1) d";
        let found: i64 = on_pool!(self, pool => sqlx::query_scalar(SQL).fetch_one(pool).await)?;
        Ok(found > 0)
    }

    /// What is left in the queue. Jobs waiting for a transport are counted apart: a worker
    /// that could send them has claimed them already.
    pub async fn push_pending(&self) -> Result<Pending, StoreError> {
        const SQL: &str = "SELECT \
             COALESCE(SUM(CASE WHEN state = 'queued' AND NOT waiting_transport \
                AND next_attempt_at <= $1 THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN state = 'sending' \
                OR (attempts > 0 AND NOT waiting_transport) THEN 1 ELSE 0 END), 0), \
             MIN(CASE WHEN waiting_transport THEN NULL ELSE next_attempt_at END), \
             COALESCE(SUM(CASE WHEN state = 'queued' AND waiting_transport \
                THEN 1 ELSE 0 END), 0) \
             FROM push_jobs WHERE state IN ('queued', 'sending')";
        let (due, in_flight, next_due_at, waiting): (i64, i64, Option<i64>, i64) = on_pool!(self, pool => {
            sqlx::query_as(SQL).bind(now_ms()).fetch_one(pool).await
        })?;
        Ok(Pending {
            due,
            in_flight,
            next_due_at,
            waiting,
        })
    }

    /// Jobs per state: all of them, or those of `batch`.
    pub async fn push_state_counts(&self, batch: Option<Uuid>) -> Result<StateCounts, StoreError> {
        // Two statements rather than `$2 IS NULL OR batch = $2`, which no index serves.
        let states = states("$1");
        let sql = match batch {
            Some(_) => format!("SELECT {states} FROM push_jobs WHERE batch = $2"),
            None => format!("SELECT {states} FROM push_jobs"),
        };
        Ok(on_pool!(self, pool => {
            let query = sqlx::query_as(&sql).bind(now_ms());
            match batch {
                Some(batch) => query.bind(batch),
                None => query,
            }
            .fetch_one(pool)
            .await
        })?)
    }

    /// Per device with jobs or a status: jobs per state and the latest error, in device-id
    /// order after `after`. With `batch`, only the devices with jobs in it, and only those
    /// jobs.
    pub async fn push_device_jobs(
        &self,
        after: Option<&str>,
        limit: i64,
        batch: Option<Uuid>,
    ) -> Result<Vec<DeviceJobs>, StoreError> {
        // A batch's jobs are found by its index; the whole queue is every device with jobs
        // or with a status.
        let (jobs, listed) = match batch {
            Some(_) => ("AND batch = $4", "s.device_id IS NOT NULL"),
            None => ("", "(s.device_id IS NOT NULL OR t.status IS NOT NULL)"),
        };
        let states = states("$3");
        let sql = format!(
            "SELECT d.device_id, d.platform, \
             COALESCE(s.queued, 0) AS queued, COALESCE(s.sending, 0) AS sending, \
             COALESCE(s.sent, 0) AS sent, COALESCE(s.acknowledged, 0) AS acknowledged, \
             COALESCE(s.failed, 0) AS failed, COALESCE(s.overdue, 0) AS overdue, \
             (SELECT j.last_error FROM push_jobs j WHERE j.device_id = d.id \
              AND j.last_error IS NOT NULL {jobs} \
              ORDER BY j.updated_at DESC, j.id DESC LIMIT 1) AS last_error, t.status \
             FROM devices d \
             LEFT JOIN (SELECT device_id, {states} FROM push_jobs WHERE TRUE {jobs} \
               GROUP BY device_id) s ON s.device_id = d.id \
             LEFT JOIN push_targets t ON t.device_id = d.id \
             WHERE d.device_id > $1 AND {listed} \
             ORDER BY d.device_id LIMIT $2"
        );
        Ok(on_pool!(self, pool => {
            let query = sqlx::query_as(&sql)
                .bind(after.unwrap_or(""))
                .bind(limit)
                .bind(now_ms());
            match batch {
                Some(batch) => query.bind(batch),
                None => query,
            }
            .fetch_all(pool)
            .await
        })?)
    }

    /// The first `limit` sent jobs whose device's answer is overdue at `now` (of all, or of
    /// `batch`), the longest waiting first; [`StateCounts::overdue`] counts them all.
    pub async fn push_overdue_jobs(
        &self,
        batch: Option<Uuid>,
        now: i64,
        limit: i64,
    ) -> Result<Vec<OverdueJob>, StoreError> {
        let late = overdue("j.", "$1");
        let filter = match batch {
            Some(_) => "AND j.batch = $3",
            None => "",
        };
        let sql = format!(
            "SELECT d.device_id, d.platform, j.kind, j.profile_identifier AS identifier, \
             COALESCE(j.sent_at, j.updated_at) AS sent_at, \
             ($1 - COALESCE(j.sent_at, j.updated_at)) / 1000 AS waiting_seconds, \
             j.nudges, j.resent \
             FROM push_jobs j JOIN devices d ON d.id = j.device_id \
             WHERE j.state = 'sent' AND {late} {filter} \
             ORDER BY COALESCE(j.sent_at, j.updated_at), j.id LIMIT $2"
        );
        Ok(on_pool!(self, pool => {
            let query = sqlx::query_as(&sql).bind(now).bind(limit);
            match batch {
                Some(batch) => query.bind(batch),
                None => query,
            }
            .fetch_all(pool)
            .await
        })?)
    }

    /// Takes up to `limit` sent jobs whose reminder fell due by `now`, lets `decide` say
    /// what to do about each, and records it in the same transaction, so that two workers
    /// never remind about one job at once (PostgreSQL skips the rows another holds; SQLite
    /// writes one transaction at a time). A nudge counts and moves the next reminder; a
    /// job sent again is queued, due now, under a new command UUID, with `note` as its last
    /// error; a stop leaves it sent and overdue.
    pub async fn take_push_reminders(
        &self,
        now: i64,
        limit: i64,
        note: &str,
        decide: impl Fn(&DueReminder) -> Reminder,
    ) -> Result<TakenReminders, StoreError> {
        const ANY: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM push_jobs \
             WHERE remind_at <= $1 AND state = 'sent' LIMIT 1) due";
        let due: i64 =
            on_pool!(self, pool => sqlx::query_scalar(ANY).bind(now).fetch_one(pool).await)?;
        if due == 0 {
            return Ok(TakenReminders::default());
        }
        let lock = match &self.pool {
            Pool::Sqlite(_) => "",
            Pool::Postgres(_) => " FOR UPDATE OF j SKIP LOCKED",
        };
        let pick = format!(
            "SELECT j.id, j.device_id, j.kind, j.nudges, j.resent, \
             EXISTS (SELECT 1 FROM push_jobs n WHERE n.device_id = j.device_id \
                AND n.profile_identifier = j.profile_identifier AND n.id > j.id) AS superseded \
             FROM push_jobs j WHERE j.remind_at <= $1 AND j.state = 'sent' \
             ORDER BY j.remind_at LIMIT $2{lock}"
        );
        const NUDGED: &str = "UPDATE push_jobs SET nudges = nudges + 1, remind_at = $1 \
             WHERE id = $2";
        const AGAIN: &str = "UPDATE push_jobs SET state = 'queued', command_uuid = $1, \
             attempts = 0, next_attempt_at = $2, updated_at = $2, last_error = $3, \
             remind_at = NULL, nudges = 0, resent = TRUE WHERE id = $4";
        const STOPPED: &str = "UPDATE push_jobs SET remind_at = NULL WHERE id = $1";
        let mut tx = self.begin().await?;
        let taken: Vec<DueReminder> = on_tx!(tx, conn => {
            sqlx::query_as(&pick).bind(now).bind(limit).fetch_all(&mut *conn).await
        })?;
        let mut done = TakenReminders {
            taken: taken.len(),
            ..TakenReminders::default()
        };
        for job in taken {
            let reminder = decide(&job);
            on_tx!(tx, conn => {
                match reminder {
                    Reminder::Nudge { next } => sqlx::query(NUDGED).bind(next).bind(job.id)
                        .execute(&mut *conn).await,
                    Reminder::SendAgain => sqlx::query(AGAIN).bind(Uuid::new_v4()).bind(now)
                        .bind(note).bind(job.id).execute(&mut *conn).await,
                    Reminder::Stop => sqlx::query(STOPPED).bind(job.id).execute(&mut *conn).await,
                }
                .map(|r| r.rows_affected())
            })?;
            match reminder {
                Reminder::Nudge { .. } => done.nudge.push(job),
                Reminder::SendAgain => done.sent_again += 1,
                Reminder::Stop => {}
            }
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Keeps `note` as the last error of each of `jobs` still sent (job id, note), as a
    /// failed nudge is told.
    pub async fn note_push_jobs(&self, jobs: &[(i64, String)]) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE push_jobs SET last_error = $1, updated_at = $2 \
             WHERE id = $3 AND state = 'sent'";
        let now = now_ms();
        for (id, note) in jobs {
            on_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(note.as_str())
                    .bind(now)
                    .bind(*id)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }

    /// Puts every failed job back in the queue, due now, each under a new command UUID (the
    /// MDM refused or never took the old command, and would answer a repeat of its UUID
    /// with "command already exists"); returns how many.
    pub async fn retry_failed_push_jobs(&self) -> Result<u64, StoreError> {
        let fresh = match &self.pool {
            Pool::Sqlite(_) => "randomblob(16)",
            Pool::Postgres(_) => "gen_random_uuid()",
        };
        let sql = format!(
            "UPDATE push_jobs SET state = 'queued', attempts = 0, command_uuid = {fresh}, \
             sent_at = NULL, remind_at = NULL, nudges = 0, resent = FALSE, \
             next_attempt_at = $1, updated_at = $1 WHERE state = 'failed'"
        );
        let now = now_ms();
        Ok(on_pool!(self, pool => {
            sqlx::query(&sql).bind(now).execute(pool).await.map(|r| r.rows_affected())
        })?)
    }

    /// Applies an MDM's report on command `command_uuid`: acknowledged, or failed with
    /// `error`. A job waiting for its command's end moves, once: sent, but also still being
    /// sent or queued for another try, since a device may answer before the worker has
    /// recorded the request that stored the command (the worker's record then finds the job
    /// no longer claimed and leaves it). A job's state never goes back, so a replayed
    /// report, or one that contradicts how the job already ended, changes nothing.
    ///
    /// What the device holds is what it acknowledged last: an acknowledged install records
    /// its version, a refused one leaves the version acknowledged before (and drops the
    /// record only where none ever was).
    pub async fn acknowledge_push_job(
        &self,
        command_uuid: Uuid,
        error: Option<&str>,
    ) -> Result<JobAnswer, StoreError> {
        const WAITING: &str = "command_uuid = $3 AND state IN ('queued', 'sending', 'sent') \
             RETURNING device_id, profile_identifier, kind, content_hash";
        const STATE: &str = "SELECT state FROM push_jobs WHERE command_uuid = $1";
        const ACKNOWLEDGED: &str = "INSERT INTO push_delivered (device_id, identifier, \
             content_hash, sent_at, acknowledged_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (device_id, identifier) DO UPDATE SET \
             content_hash = excluded.content_hash, acknowledged_at = excluded.acknowledged_at";
        const REMOVED: &str = "DELETE FROM push_delivered WHERE device_id = $1 \
             AND identifier = $2";
        const NEVER_ACKNOWLEDGED: &str = "DELETE FROM push_delivered WHERE device_id = $1 \
             AND identifier = $2 AND acknowledged_at IS NULL";
        let (state, message) = match error {
            None => ("acknowledged", None),
            Some(error) => ("failed", Some(error)),
        };
        let sql = format!(
            "UPDATE push_jobs SET state = $1, last_error = COALESCE($2, last_error), \
             claimed_by = NULL, claimed_until = NULL, updated_at = $4 WHERE {WAITING}"
        );
        let now = now_ms();
        let mut tx = self.begin().await?;
        let answer = on_tx!(tx, conn => {
            let row: Option<(i64, String, String, Option<String>)> = sqlx::query_as(&sql)
                .bind(state)
                .bind(message)
                .bind(command_uuid)
                .bind(now)
                .fetch_optional(&mut *conn)
                .await?;
            match row {
                Some((device, identifier, kind, hash)) => {
                    match (error, kind.as_str(), hash) {
                        (None, "install", Some(hash)) => sqlx::query(ACKNOWLEDGED)
                            .bind(device).bind(identifier.as_str()).bind(hash).bind(now)
                            .execute(&mut *conn).await?,
                        (None, _, _) => sqlx::query(REMOVED).bind(device)
                            .bind(identifier.as_str()).execute(&mut *conn).await?,
                        (Some(_), _, _) => sqlx::query(NEVER_ACKNOWLEDGED).bind(device)
                            .bind(identifier.as_str()).execute(&mut *conn).await?,
                    };
                    Ok::<JobAnswer, sqlx::Error>(JobAnswer::Applied)
                }
                None => {
                    let found: Option<String> = sqlx::query_scalar(STATE).bind(command_uuid)
                        .fetch_optional(&mut *conn).await?;
                    Ok(match found {
                        None => JobAnswer::Unknown,
                        Some(found) if found == state => JobAnswer::Repeated,
                        Some(found) => JobAnswer::Contradicted { state: found },
                    })
                }
            }
        })?;
        tx.commit().await?;
        Ok(answer)
    }
}

/// A sent job whose device's answer is overdue, as `push status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct OverdueJob {
    /// The MDM's device id.
    pub device_id: String,
    /// Platform name.
    pub platform: String,
    /// `install` or `remove`.
    pub kind: String,
    /// The profile's identifier.
    pub identifier: String,
    /// When the MDM first took the job's command (unix ms).
    pub sent_at: i64,
    /// How long the device has been silent since, in whole seconds.
    pub waiting_seconds: i64,
    /// APNs pushes sent to wake the device since its current command was taken.
    pub nudges: i64,
    /// Whether the job was sent again under a new command for want of an answer.
    pub resent: bool,
}

/// A sent job whose reminder fell due, as the worker decides about it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DueReminder {
    /// Job id.
    pub id: i64,
    /// Store id of the device.
    pub device_id: i64,
    /// `install` or `remove`.
    pub kind: String,
    /// APNs pushes sent since its current command was taken.
    pub nudges: i64,
    /// Whether it was sent again under a new command already.
    pub resent: bool,
    /// Whether a newer job for the same device and profile exists, which makes this one's
    /// answer moot.
    pub superseded: bool,
}

/// The reminders one call took: the jobs to nudge, how many were queued again, how many
/// were taken in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TakenReminders {
    /// The jobs whose devices the caller is to nudge.
    pub nudge: Vec<DueReminder>,
    /// Jobs queued again under a new command.
    pub sent_again: u64,
    /// Jobs taken, whatever was decided.
    pub taken: usize,
}

/// What to do about a job whose device has not answered in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reminder {
    /// Wake the device (the caller sends the APNs push), and look again at `next` (unix ms),
    /// or never.
    Nudge {
        /// The next reminder, if any.
        next: Option<i64>,
    },
    /// Queue the job again, due now, under a new command UUID, its answer still awaited.
    SendAgain,
    /// Nothing more: the job stays sent, listed as overdue until its device answers.
    Stop,
}

/// What an MDM's report on a command did to the job that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobAnswer {
    /// No job has that command (it was never ours, or a newer decision replaced the job).
    Unknown,
    /// The sent job moved to acknowledged or failed.
    Applied,
    /// The job had already ended as the report says: a replay, changing nothing.
    Repeated,
    /// The job is not waiting for this report (it ended the other way, or was queued
    /// again): nothing changed.
    Contradicted {
        /// The job's state, which stays.
        state: String,
    },
}

impl Tx {
    /// Deletes the account of the user with normalised address `user_norm` of `kind` at
    /// normalised address `address_norm`; returns whether there was one.
    pub async fn delete_account(
        &mut self,
        user_norm: &str,
        kind: &str,
        address_norm: &str,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM email_accounts WHERE kind = $1 AND address_norm = $2 \
             AND user_id = (SELECT id FROM users WHERE email_norm = $3)";
        let deleted = on_tx!(self, conn => {
            sqlx::query(SQL)
                .bind(kind)
                .bind(address_norm)
                .bind(user_norm)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(deleted > 0)
    }
}

/// Appends `((device, identifier), …)`, the row-value list of `jobs`, to `q`.
fn push_pairs<'a, DB>(q: &mut QueryBuilder<'a, DB>, jobs: impl Iterator<Item = &'a NewJob>)
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push("(");
    let mut list = q.separated(", ");
    for job in jobs {
        list.push("(")
            .push_bind_unseparated(job.device_id)
            .push_unseparated(", ")
            .push_bind_unseparated(job.identifier.as_str())
            .push_unseparated(")");
    }
    q.push(")");
}
