//! The `audit_log` table: who did what, when.

use super::{StoreError, Tx, now_ms, on_tx};

impl Tx {
    /// Records that `actor` did `action` to `subject`, with JSON `details`.
    pub async fn audit(
        &mut self,
        actor: &str,
        action: &str,
        subject: &str,
        details: &serde_json::Value,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO audit_log (at, actor, action, subject, details) VALUES ($1, $2, $3, $4, $5)";
        on_tx!(self, conn => {
            sqlx::query(SQL)
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
