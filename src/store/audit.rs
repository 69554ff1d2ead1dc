//! The `audit_log` table: who did what, when.

use super::{StoreError, Tx, now_ms, on_tx};

/// One entry of the audit log.
pub(super) const INSERT_AUDIT: &str =
    "INSERT INTO audit_log (at, actor, action, subject, details) VALUES ($1, $2, $3, $4, $5)";

impl Tx {
    /// Records that `actor` did `action` to `subject`, with JSON `details`.
    pub async fn audit(
        &mut self,
        actor: &str,
        action: &str,
        subject: &str,
        details: &serde_json::Value,
    ) -> Result<(), StoreError> {
        on_tx!(self, conn => {
            sqlx::query(INSERT_AUDIT)
                .bind(now_ms())
                .bind(actor)
                .bind(action)
                .bind(subject)
                .bind(details.to_string())
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}
