//! The `api_tokens` table: named API tokens, kept only as SHA-256 hashes, with their scopes.

use super::{Store, StoreError, now_ms, on_pool, on_tx};
use crate::model::Scopes;

/// An API token as listed: its name, what it may do, when it was made and last used, never
/// its hash.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct StoredToken {
    /// What the token is for.
    pub name: String,
    /// What it may do.
    #[sqlx(try_from = "String")]
    pub scopes: Scopes,
    /// Made before tokens had scopes: it has all of them, and is best replaced by a token
    /// with only those it needs.
    pub before_scopes: bool,
    /// When it was minted, unix milliseconds.
    pub created_at: i64,
    /// When a request last used it (to the minute), unix milliseconds; `None` if never.
    pub last_used_at: Option<i64>,
}

/// The [`StoredToken`] columns, then `$rest`; a token made before scopes (NULL) has all
/// of them.
macro_rules! tokens {
    ($rest:literal) => {
        concat!(
            "SELECT name, COALESCE(scopes, 'read,write,secrets') AS scopes, \
             scopes IS NULL AS before_scopes, created_at, last_used_at FROM api_tokens",
            $rest
        )
    };
}

impl Store {
    /// Records a token called `name` with `scopes` by its hash, and `actor` making it in the
    /// audit log; false when that name is taken.
    pub async fn insert_token(
        &self,
        name: &str,
        scopes: Scopes,
        token_hash: &[u8],
        actor: &str,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO api_tokens (name, scopes, token_hash, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING";
        let mut tx = self.begin().await?;
        let inserted = on_tx!(tx, conn => {
            sqlx::query(SQL)
                .bind(name)
                .bind(scopes.to_string())
                .bind(token_hash)
                .bind(now_ms())
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        if inserted > 0 {
            tx.audit(
                actor,
                "token.create",
                name,
                &serde_json::json!({ "scopes": scopes }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(inserted > 0)
    }

    /// The token that hashes to `token_hash`.
    pub async fn token_by_hash(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<StoredToken>, StoreError> {
        const SQL: &str = tokens!(" WHERE token_hash = $1");
        Ok(on_pool!(self, pool => {
            sqlx::query_as(SQL).bind(token_hash).fetch_optional(pool).await
        })?)
    }

    /// Up to `limit` tokens after the one called `after`, in name order.
    pub async fn list_tokens(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<StoredToken>, StoreError> {
        const SQL: &str = tokens!(" WHERE name > $1 ORDER BY name LIMIT $2");
        self.page_by_name(SQL, after, limit).await
    }

    /// Records that the token hashing to `token_hash` was used at `at` (unix ms).
    pub async fn touch_token(&self, token_hash: &[u8], at: i64) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(at).bind(token_hash).execute(pool).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Deletes the token called `name`, recording `actor` in the audit log; false when
    /// there is none.
    pub async fn delete_token(&self, name: &str, actor: &str) -> Result<bool, StoreError> {
        self.delete_audited(
            "DELETE FROM api_tokens WHERE name = $1",
            name,
            actor,
            "token.revoke",
        )
        .await
    }
}
