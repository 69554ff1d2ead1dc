//! The `users` table.

use sqlx::QueryBuilder;

use super::{Store, StoreError, Tx, now_ms, on_pool, on_tx, push_list};
use crate::model::{NewUser, normalize_email};

/// A user as stored, with the key it is matched by.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredUser {
    /// Store id.
    pub id: i64,
    /// Address as last imported.
    pub email: String,
    /// Trimmed, lower-cased address.
    pub email_norm: String,
    /// Display name.
    pub display_name: String,
}

/// A user with how many devices and accounts they have, for listings.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct UserSummary {
    /// Address as last imported.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Enrolled devices.
    pub devices: i64,
    /// Imported mail accounts.
    pub accounts: i64,
}

impl Tx {
    /// The stored users among `emails_norm` (normalised addresses, at most [`super::BATCH`]).
    pub async fn users_by_email(
        &mut self,
        emails_norm: &[&str],
    ) -> Result<Vec<StoredUser>, StoreError> {
        if emails_norm.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_tx!(self, conn => {
            let mut q = QueryBuilder::new(
                "SELECT id, email, email_norm, display_name FROM users WHERE email_norm IN ",
            );
            push_list(&mut q, emails_norm.iter().copied());
            q.build_query_as::<StoredUser>().fetch_all(conn).await
        })?)
    }

    /// Inserts new users and updates changed ones in one statement (at most
    /// [`super::BATCH`] users, no two with the same normalised address).
    pub async fn upsert_users(&mut self, users: &[&NewUser]) -> Result<(), StoreError> {
        if users.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        on_tx!(self, conn => {
            let mut q = QueryBuilder::new(
                "INSERT INTO users (email, email_norm, display_name, created_at, updated_at) ",
            );
            q.push_values(users, |mut row, user| {
                row.push_bind(user.email.as_str())
                    .push_bind(normalize_email(&user.email))
                    .push_bind(user.display_name.as_str())
                    .push_bind(now)
                    .push_bind(now);
            });
            q.push(
                " ON CONFLICT (email_norm) DO UPDATE SET email = excluded.email, \
                 display_name = excluded.display_name, updated_at = excluded.updated_at",
            );
            q.build().execute(conn).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}

/// The [`UserSummary`] columns of the users after the normalised address `$1`, then `$rest`
/// (more conditions, the order and the limit): what the users list and search share.
macro_rules! user_summaries {
    ($rest:literal) => {
        concat!(
            "SELECT u.email, u.display_name, \
             (SELECT COUNT(*) FROM devices d WHERE d.user_id = u.id) AS devices, \
             (SELECT COUNT(*) FROM email_accounts a WHERE a.user_id = u.id) AS accounts \
             FROM users u WHERE u.email_norm > $1",
            $rest
        )
    };
}
pub(super) use user_summaries;

impl Store {
    /// One page of users in address order, starting after the normalised address `after`
    /// (the last page's final `normalize_email(email)`).
    pub async fn list_users(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UserSummary>, StoreError> {
        const SQL: &str = user_summaries!(" ORDER BY u.email_norm LIMIT $2");
        Ok(on_pool!(self, pool => {
            sqlx::query_as(SQL)
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await
        })?)
    }

    /// How many users there are.
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM users";
        Ok(on_pool!(self, pool => sqlx::query_scalar(SQL).fetch_one(pool).await)?)
    }
}
