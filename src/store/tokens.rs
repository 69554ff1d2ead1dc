//! The `api_tokens` table: named API tokens, kept only as SHA-256 hashes.

use super::{Store, StoreError, now_ms, on_pool};

impl Store {
    /// Records a token called `name` by its hash; false when that name is taken.
    pub async fn insert_token(&self, name: &str, token_hash: &[u8]) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO api_tokens (name, token_hash, created_at) \
             VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";
        let inserted = on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(name)
                .bind(token_hash)
                .bind(now_ms())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(inserted > 0)
    }

    /// The name of the token that hashes to `token_hash`. A read only: a write per request
    /// would queue every API call behind a running import's SQLite write lock.
    pub async fn token_name(&self, token_hash: &[u8]) -> Result<Option<String>, StoreError> {
        const SQL: &str = "SELECT name FROM api_tokens WHERE token_hash = $1";
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar(SQL).bind(token_hash).fetch_optional(pool).await
        })?)
    }
}
