//! What the API and the wizard need beyond the importers: searching users, one user's
//! devices, and removing users and devices.

use super::{Store, StoreError, UserSummary, on_pool, on_tx};
use crate::model::Device;

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
