//! The `secret_key_check` table, which key the stored passwords are sealed with, and the
//! sealed columns of `email_accounts` as a key rotation reads and rewrites them.

use sqlx::QueryBuilder;

use super::{Store, StoreError, Tx, TxInner, now_ms, on_pool, on_tx};

/// One stored account's sealed passwords and what binds them to it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SealedRow {
    /// The account's store id.
    pub id: i64,
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

/// An account's passwords sealed afresh, each with its MAC; `None` where none is stored.
#[derive(Debug, Clone)]
pub struct Resealed {
    /// The account's store id.
    pub id: i64,
    /// The primary password's ciphertext and MAC.
    pub password: Option<(Vec<u8>, Vec<u8>)>,
    /// The outgoing password's ciphertext and MAC.
    pub outgoing_password: Option<(Vec<u8>, Vec<u8>)>,
}

/// What a store holds of sealed passwords.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct SealedCounts {
    /// Accounts with at least one sealed password.
    pub accounts: i64,
    /// Sealed passwords, both columns counted.
    pub passwords: i64,
}

macro_rules! check {
    ($tail:literal) => {
        concat!(
            "SELECT key_id FROM secret_key_check WHERE singleton = 1",
            $tail
        )
    };
}
/// The key the store's passwords are sealed with, by its identifier.
pub(super) const CHECK: &str = check!("");

/// The accounts holding a sealed password, with what binds each password, then `$tail`.
macro_rules! sealed {
    ($tail:literal) => {
        concat!(
            "SELECT a.id, a.kind, u.email_norm AS user_email_norm, a.address_norm, ",
            "a.password, a.outgoing_password ",
            "FROM email_accounts a JOIN users u ON u.id = a.user_id ",
            "WHERE (a.password IS NOT NULL OR a.outgoing_password IS NOT NULL)",
            $tail
        )
    };
}

impl Store {
    /// The identifier of the key the store's passwords are sealed with, once recorded.
    pub async fn key_check(&self) -> Result<Option<String>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_scalar(CHECK).fetch_optional(pool).await)?)
    }

    /// Some account holding a sealed password, if any does.
    pub async fn sealed_sample(&self) -> Result<Option<SealedRow>, StoreError> {
        const SQL: &str = sealed!(" LIMIT 1");
        Ok(on_pool!(self, pool => sqlx::query_as(SQL).fetch_optional(pool).await)?)
    }

    /// How many accounts and passwords are sealed.
    pub async fn sealed_counts(&self) -> Result<SealedCounts, StoreError> {
        const SQL: &str = "SELECT COUNT(*) AS accounts, \
             COALESCE(SUM(CASE WHEN password IS NULL THEN 0 ELSE 1 END \
                        + CASE WHEN outgoing_password IS NULL THEN 0 ELSE 1 END), 0) AS passwords \
             FROM email_accounts WHERE password IS NOT NULL OR outgoing_password IS NOT NULL";
        Ok(on_pool!(self, pool => sqlx::query_as(SQL).fetch_one(pool).await)?)
    }
}

impl Tx {
    /// [`Store::key_check`] as this transaction sees it.
    pub async fn key_check(&mut self) -> Result<Option<String>, StoreError> {
        Ok(on_tx!(self, conn => sqlx::query_scalar(CHECK).fetch_optional(conn).await)?)
    }

    /// The recorded key, held until this transaction ends: a writer that seals passwords
    /// takes it shared, a rotation exclusively, so no password is sealed under a key the
    /// store is being moved away from. (SQLite's write lock, which every write transaction
    /// holds from its start, already does this.)
    pub async fn hold_key_check(&mut self, exclusive: bool) -> Result<Option<String>, StoreError> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => Ok(sqlx::query_scalar(CHECK).fetch_optional(&mut **tx).await?),
            TxInner::Postgres(tx) => {
                let sql = if exclusive {
                    check!(" FOR UPDATE")
                } else {
                    check!(" FOR SHARE")
                };
                Ok(sqlx::query_scalar(sql).fetch_optional(&mut **tx).await?)
            }
        }
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

    /// Records `key_id` as the store's key in place of whatever was recorded.
    pub async fn replace_key_check(&mut self, key_id: &str) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO secret_key_check (singleton, key_id, recorded_at) \
             VALUES (1, $1, $2) \
             ON CONFLICT (singleton) DO UPDATE SET key_id = excluded.key_id, \
             recorded_at = excluded.recorded_at";
        on_tx!(self, conn => {
            sqlx::query(SQL).bind(key_id).bind(now_ms()).execute(conn).await.map(|_| ())
        })?;
        Ok(())
    }

    /// Up to `limit` accounts holding a sealed password, in id order after id `after`.
    pub async fn sealed_page(
        &mut self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<SealedRow>, StoreError> {
        const SQL: &str = sealed!(" AND a.id > $1 ORDER BY a.id LIMIT $2");
        Ok(on_tx!(self, conn => {
            sqlx::query_as(SQL).bind(after).bind(limit).fetch_all(conn).await
        })?)
    }

    /// Writes each account's resealed passwords and MACs, one statement per batch.
    pub async fn write_resealed(&mut self, rows: &[Resealed]) -> Result<(), StoreError> {
        for batch in rows.chunks(super::BATCH) {
            on_tx!(self, conn => {
                let mut q = QueryBuilder::new("WITH v (id, p, pm, o, om) AS (");
                q.push_values(batch, |mut row, r| {
                    let (p, pm) = r.password.clone().unzip();
                    let (o, om) = r.outgoing_password.clone().unzip();
                    row.push_bind(r.id).push_bind(p).push_bind(pm).push_bind(o).push_bind(om);
                });
                q.push(
                    ") UPDATE email_accounts SET password = v.p, password_mac = v.pm, \
                     outgoing_password = v.o, outgoing_password_mac = v.om \
                     FROM v WHERE email_accounts.id = v.id",
                );
                q.build().execute(conn).await.map(|_| ())
            })?;
        }
        Ok(())
    }
}
