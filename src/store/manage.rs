//! What the API and the wizard need beyond the importers: searching users, one user's
//! devices, and removing users and devices.

use std::collections::HashMap;

use super::{Store, StoreError, UserSummary, on_pool, on_tx};
use crate::model::Device;

/// How many of a device's jobs, the newest, a user's page shows.
pub const RECENT_JOBS: i64 = 5;

/// What push knows of one device: the profile it should hold, what it was sent and
/// acknowledged, and its newest jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DevicePush {
    /// The MDM's device id.
    pub device_id: String,
    /// What the last reconcile decided for the device; `None` before the first.
    pub target: Option<PushTarget>,
    /// The profiles it was sent, in identifier order.
    pub delivered: Vec<Delivered>,
    /// Its newest jobs ([`RECENT_JOBS`] at most), newest first.
    pub jobs: Vec<RecentJob>,
}

/// The profile reconciling decided a device should hold.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PushTarget {
    /// The profile's identifier; `None` when the device should hold none.
    pub identifier: Option<String>,
    /// Hash of its content.
    pub content_hash: Option<String>,
    /// Why it gets no profile, or which accounts were left out.
    pub status: Option<String>,
}

/// A profile a device was sent.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Delivered {
    /// The profile's identifier.
    pub identifier: String,
    /// Hash of the version the device holds: the one it acknowledged last, else the one
    /// last sent.
    pub content_hash: String,
    /// When it was last sent (unix ms).
    pub sent_at: i64,
    /// When the device acknowledged it (unix ms), if it has.
    pub acknowledged_at: Option<i64>,
}

/// One of a device's jobs.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RecentJob {
    /// `install` or `remove`.
    pub kind: String,
    /// `queued`, `sending`, `sent`, `acknowledged` or `failed`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i64,
    /// When a queued job is next due (unix ms).
    pub next_attempt_at: i64,
    /// The latest error or note.
    pub last_error: Option<String>,
    /// When its state last changed (unix ms).
    pub updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct TargetRow {
    device_id: String,
    reconciled: bool,
    #[sqlx(flatten)]
    target: PushTarget,
}

#[derive(sqlx::FromRow)]
struct DeliveredRow {
    device_id: String,
    #[sqlx(flatten)]
    delivered: Delivered,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    device_id: String,
    #[sqlx(flatten)]
    job: RecentJob,
}

/// `text` as a LIKE pattern matching it anywhere, its own `%`, `_` and `\` taken literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// One page of the users whose address or display name contains `query`
    /// (case-insensitively), in address order after the normalised address `after`.
    pub async fn search_users(
        &self,
        query: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UserSummary>, StoreError> {
        const SQL: &str = super::users::user_summaries!(
            " AND (u.email_norm LIKE $2 ESCAPE '\\' OR LOWER(u.display_name) LIKE $2 ESCAPE '\\') \
             ORDER BY u.email_norm LIMIT $3"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(SQL)
                .bind(after.unwrap_or(""))
                .bind(contains_pattern(query))
                .bind(limit)
                .fetch_all(pool)
                .await
        })?)
    }

    /// The devices of the user with normalised address `email_norm`, in device-id order.
    pub async fn devices_of_user(&self, email_norm: &str) -> Result<Vec<Device>, StoreError> {
        const SQL: &str = "SELECT d.id, u.email AS user_email, d.device_id, d.platform, \
             d.enrollment_id, d.user_channel_id \
             FROM devices d JOIN users u ON u.id = d.user_id \
             WHERE u.email_norm = $1 ORDER BY d.device_id";
        let rows: Vec<super::devices::DeviceRow> = on_pool!(self, pool => {
            sqlx::query_as(SQL).bind(email_norm).fetch_all(pool).await
        })?;
        rows.into_iter()
            .map(super::devices::DeviceRow::into_device)
            .collect()
    }

    /// What push knows of each device of the user with normalised address `email_norm`, in
    /// device-id order.
    pub async fn device_push_states(
        &self,
        email_norm: &str,
    ) -> Result<Vec<DevicePush>, StoreError> {
        const TARGETS: &str = "SELECT d.device_id, t.device_id IS NOT NULL AS reconciled, \
             t.identifier, t.content_hash, t.status \
             FROM devices d JOIN users u ON u.id = d.user_id \
             LEFT JOIN push_targets t ON t.device_id = d.id \
             WHERE u.email_norm = $1 ORDER BY d.device_id";
        const DELIVERED: &str = "SELECT d.device_id, p.identifier, p.content_hash, p.sent_at, \
             p.acknowledged_at FROM push_delivered p JOIN devices d ON d.id = p.device_id \
             JOIN users u ON u.id = d.user_id WHERE u.email_norm = $1 \
             ORDER BY d.device_id, p.identifier";
        const JOBS: &str = "SELECT device_id, kind, state, attempts, next_attempt_at, \
             last_error, updated_at FROM (SELECT d.device_id, j.id, j.kind, j.state, \
             j.attempts, j.next_attempt_at, j.last_error, j.updated_at, \
             ROW_NUMBER() OVER (PARTITION BY j.device_id ORDER BY j.id DESC) AS newest \
             FROM push_jobs j JOIN devices d ON d.id = j.device_id \
             JOIN users u ON u.id = d.user_id WHERE u.email_norm = $1) recent \
             WHERE newest <= $2 ORDER BY device_id, id DESC";
        let (targets, delivered, jobs) = on_pool!(self, pool => {
            let targets: Vec<TargetRow> =
                sqlx::query_as(TARGETS).bind(email_norm).fetch_all(pool).await?;
            let delivered: Vec<DeliveredRow> =
                sqlx::query_as(DELIVERED).bind(email_norm).fetch_all(pool).await?;
            let jobs: Vec<JobRow> = sqlx::query_as(JOBS)
                .bind(email_norm)
                .bind(RECENT_JOBS)
                .fetch_all(pool)
                .await?;
            Ok::<_, sqlx::Error>((targets, delivered, jobs))
        })?;
        let mut devices: Vec<DevicePush> = targets
            .into_iter()
            .map(|row| DevicePush {
                target: row.reconciled.then_some(row.target),
                device_id: row.device_id,
                ..DevicePush::default()
            })
            .collect();
        // Matched by id, not by position: the database's collation orders the ids, and
        // need not order them as Rust compares strings.
        let index: HashMap<String, usize> = devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.device_id.clone(), i))
            .collect();
        for row in delivered {
            if let Some(&i) = index.get(&row.device_id) {
                devices[i].delivered.push(row.delivered);
            }
        }
        for row in jobs {
            if let Some(&i) = index.get(&row.device_id) {
                devices[i].jobs.push(row.job);
            }
        }
        Ok(devices)
    }

    /// Removes the user with normalised address `email_norm`, their accounts and devices,
    /// recording `actor` in the audit log; false when there is no such user.
    pub async fn delete_user(&self, email_norm: &str, actor: &str) -> Result<bool, StoreError> {
        // Accounts refer to users without a foreign key (see 0001), so they go first, in the
        // same transaction; devices follow by ON DELETE CASCADE.
        const ACCOUNTS: &str = "DELETE FROM email_accounts WHERE user_id IN \
             (SELECT id FROM users WHERE email_norm = $1)";
        const USER: &str = "DELETE FROM users WHERE email_norm = $1";
        let mut tx = self.begin().await?;
        on_tx!(tx, conn => {
            sqlx::query(ACCOUNTS).bind(email_norm).execute(conn).await.map(|r| r.rows_affected())
        })?;
        let removed = on_tx!(tx, conn => {
            sqlx::query(USER).bind(email_norm).execute(conn).await.map(|r| r.rows_affected())
        })?;
        if removed > 0 {
            tx.audit(actor, "user.remove", email_norm, &serde_json::json!({}))
                .await?;
        }
        tx.commit().await?;
        Ok(removed > 0)
    }

    /// Removes the device with the MDM device id `device_id`, recording `actor` in the
    /// audit log; false when there is none.
    pub async fn delete_device(&self, device_id: &str, actor: &str) -> Result<bool, StoreError> {
        self.delete_audited(
            "DELETE FROM devices WHERE device_id = $1",
            device_id,
            actor,
            "device.remove",
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn search_text_is_matched_literally_and_without_case() {
        assert_eq!(contains_pattern("Ann"), "%ann%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
