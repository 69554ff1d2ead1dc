//! The `secret_key_check` table: which key the stored passwords are sealed with.

use super::{Store, StoreError, Tx, now_ms, on_pool, on_tx};

/// One stored account's sealed passwords and what binds them: enough to tell whether a key
/// opens what the store holds.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SealedSample {
    /// `email` or `exchange`.
    pub kind: String,
    /// The owner's normalised email.
    pub user_email_norm: String,
    /// The account's normalised address.
    pub address_norm: String,
    /// The sealed primary password.
    pub password: Option<Vec<u8>>,
    /// The sealed outgoing password.
    pub outgoing_password: Option<Vec<u8>>,
}

const CHECK: &str = "SELECT key_id FROM secret_key_check WHERE singleton = 1";

impl Store {
    /// The identifier of the key the store's passwords are sealed with, once recorded.
    pub async fn key_check(&self) -> Result<Option<String>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_scalar(CHECK).fetch_optional(pool).await)?)
    }

    /// Some account holding a sealed password, if any does.
    pub async fn sealed_sample(&self) -> Result<Option<SealedSample>, StoreError> {
        const SQL: &str = "SELECT a.kind, u.email_norm AS user_email_norm, a.address_norm, \
             a.password, a.outgoing_password \
             FROM email_accounts a JOIN users u ON u.id = a.user_id \
             WHERE a.password IS NOT NULL OR a.outgoing_password IS NOT NULL LIMIT 1";
        Ok(on_pool!(self, pool => sqlx::query_as(SQL).fetch_optional(pool).await)?)
    }
}

impl Tx {
    /// [`Store::key_check`] as this transaction sees it.
    pub async fn key_check(&mut self) -> Result<Option<String>, StoreError> {
        Ok(on_tx!(self, conn => sqlx::query_scalar(CHECK).fetch_optional(conn).await)?)
    }

    /// Records `key_id` as the store's key unless one is recorded already; returns the one
    /// recorded, which differs from `key_id` when another process recorded its key first.
    pub async fn record_key_check(&mut self, key_id: &str) -> Result<String, StoreError> {
        const SQL: &str = "INSERT INTO secret_key_check (singleton, key_id, recorded_at) \
             VALUES (1, $1, $2) ON CONFLICT (singleton) DO NOTHING";
        on_tx!(self, conn => {
            sqlx::query(SQL).bind(key_id).bind(now_ms()).execute(conn).await.map(|_| ())
        })?;
        let recorded = self.key_check().await?;
        recorded.ok_or(StoreError::Query(sqlx::Error::RowNotFound))
    }
}
