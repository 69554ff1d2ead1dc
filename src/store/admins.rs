//! The `admins` and `sessions` tables: who may sign in to the wizard, and who is signed in.

use super::{Store, StoreError, now_ms, on_pool, on_tx};

/// An admin as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredAdmin {
    /// Store id.
    pub id: i64,
    /// Sign-in name.
    pub name: String,
    /// argon2 PHC string.
    pub password_hash: String,
}

/// An admin as listed: never their password hash.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct ListedAdmin {
    /// Sign-in name.
    pub name: String,
    /// When added, unix milliseconds.
    pub created_at: i64,
    /// When their password was last set, unix milliseconds.
    pub updated_at: i64,
}

/// A live session, as a request finds it by its cookie.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredSession {
    /// The signed-in admin's name.
    pub admin: String,
    /// What state-changing requests of this session must carry.
    pub csrf_token: String,
    /// When it ends, unix milliseconds.
    pub expires_at: i64,
}

/// What [`Store::upsert_admin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminSet {
    /// A new admin.
    Added,
    /// An existing admin's new password; the sessions signed in with the old one ended.
    PasswordChanged {
        /// How many sessions ended.
        sessions_ended: u64,
    },
}

impl Store {
    /// Adds the admin `name`, or replaces their password hash if they exist and ends every
    /// session they have, recording `actor` in the audit log.
    pub async fn upsert_admin(
        &self,
        name: &str,
        password_hash: &str,
        actor: &str,
    ) -> Result<AdminSet, StoreError> {
        const UPDATE: &str =
            "UPDATE admins SET password_hash = $2, updated_at = $3 WHERE name = $1";
        const INSERT: &str = "INSERT INTO admins (name, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $3) ON CONFLICT (name) DO NOTHING";
        // A new password is for shutting out whoever knew the old one: their sessions end
        // in the same transaction, so no request sees the new password and an old session.
        const END_SESSIONS: &str =
            "DELETE FROM sessions WHERE admin_id = (SELECT id FROM admins WHERE name = $1)";
        let now = now_ms();
        let mut tx = self.begin().await?;
        // Insert first: a concurrent add of the same name makes this one wait, then conflict
        // and update the row it committed.
        let inserted = on_tx!(tx, conn => {
            sqlx::query(INSERT).bind(name).bind(password_hash).bind(now).execute(conn).await
                .map(|r| r.rows_affected())
        })?;
        let set = if inserted > 0 {
            AdminSet::Added
        } else {
            on_tx!(tx, conn => {
                sqlx::query(UPDATE).bind(name).bind(password_hash).bind(now).execute(conn).await
                    .map(|r| r.rows_affected())
            })?;
            let sessions_ended = on_tx!(tx, conn => {
                sqlx::query(END_SESSIONS).bind(name).execute(conn).await.map(|r| r.rows_affected())
            })?;
            AdminSet::PasswordChanged { sessions_ended }
        };
        let (action, details) = match set {
            AdminSet::Added => ("admin.add", serde_json::json!({})),
            AdminSet::PasswordChanged { sessions_ended } => (
                "admin.password",
                serde_json::json!({ "sessions_ended": sessions_ended }),
            ),
        };
        tx.audit(actor, action, name, &details).await?;
        tx.commit().await?;
        Ok(set)
    }

    /// The admin called `name`.
    pub async fn admin(&self, name: &str) -> Result<Option<StoredAdmin>, StoreError> {
        const SQL: &str = "SELECT id, name, password_hash FROM admins WHERE name = $1";
        Ok(on_pool!(self, pool => {
            sqlx::query_as(SQL).bind(name).fetch_optional(pool).await
        })?)
    }

    /// Up to `limit` admins after the one called `after`, in name order.
    pub async fn list_admins(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ListedAdmin>, StoreError> {
        const SQL: &str = "SELECT name, created_at, updated_at FROM admins \
             WHERE name > $1 ORDER BY name LIMIT $2";
        self.page_by_name(SQL, after, limit).await
    }

    /// Deletes the admin called `name` and with them (the foreign key cascades) every
    /// session they have, recording `actor` in the audit log; false when there is no such
    /// admin.
    pub async fn delete_admin(&self, name: &str, actor: &str) -> Result<bool, StoreError> {
        self.delete_audited(
            "DELETE FROM admins WHERE name = $1",
            name,
            actor,
            "admin.remove",
        )
        .await
    }

    /// How many admins there are.
    pub async fn count_admins(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM admins";
        Ok(on_pool!(self, pool => sqlx::query_scalar(SQL).fetch_one(pool).await)?)
    }

    /// Records a new session for `admin_id`, and forgets sessions that have ended.
    pub async fn insert_session(
        &self,
        token_hash: &[u8],
        admin_id: i64,
        csrf_token: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        const PURGE: &str = "DELETE FROM sessions WHERE expires_at <= $1";
        const INSERT: &str = "INSERT INTO sessions (token_hash, admin_id, csrf_token, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5)";
        let now = now_ms();
        on_pool!(self, pool => {
            sqlx::query(PURGE).bind(now).execute(pool).await.map(|r| r.rows_affected())
        })?;
        on_pool!(self, pool => {
            sqlx::query(INSERT)
                .bind(token_hash)
                .bind(admin_id)
                .bind(csrf_token)
                .bind(now)
                .bind(expires_at)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// The session whose cookie hashes to `token_hash`, if it has not ended.
    pub async fn session(&self, token_hash: &[u8]) -> Result<Option<StoredSession>, StoreError> {
        const SQL: &str = "SELECT a.name AS admin, s.csrf_token, s.expires_at FROM sessions s \
             JOIN admins a ON a.id = s.admin_id WHERE s.token_hash = $1 AND s.expires_at > $2";
        Ok(on_pool!(self, pool => {
            sqlx::query_as(SQL).bind(token_hash).bind(now_ms()).fetch_optional(pool).await
        })?)
    }

    /// Ends the session whose cookie hashes to `token_hash`.
    pub async fn delete_session(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM sessions WHERE token_hash = $1";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(token_hash).execute(pool).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}
