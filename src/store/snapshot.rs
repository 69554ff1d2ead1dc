//! The state an import decides its lines against: one consistent snapshot, read by probing
//! the users a batch of lines names, or, for an import large against the store, by scanning
//! the users and accounts once.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::postgres::PgConnectOptions;

use super::{Pool, SqliteRead, Store, StoreError, Tx, TxInner, UserAccounts};
use crate::model::AccountKind;

/// How many users and accounts a store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Users.
    pub users: i64,
    /// Accounts of the kind asked for.
    pub accounts: i64,
}

impl StoreCounts {
    /// At most how many rows tables hold whose ids run between these ends (each `None` for
    /// an empty table): users first, then accounts.
    pub(crate) fn at_most(ends: [Option<i64>; 4]) -> StoreCounts {
        let span = |low: Option<i64>, high: Option<i64>| {
            low.zip(high).map_or(0, |(low, high)| {
                high.saturating_sub(low).saturating_add(1).max(0)
            })
        };
        StoreCounts {
            users: span(ends[0], ends[1]),
            accounts: span(ends[2], ends[3]),
        }
    }
}

/// The ends of the users' ids and of all accounts' ids. Each end is a query of its own,
/// which both engines answer from the end of the table's key; counting reads every row,
/// and `min(id), max(id)` in one query does on SQLite.
pub(crate) const ID_ENDS: &str = "SELECT (SELECT min(id) FROM users), \
     (SELECT max(id) FROM users), (SELECT min(id) FROM email_accounts), \
     (SELECT max(id) FROM email_accounts)";

/// A stored account as a scan hands it over: borrowed from the row being read. Text comes
/// as the bytes stored, unchecked: what a scan feeds only hashes it, and checking that a
/// million rows were UTF-8 took a tenth of the scanning thread's time.
#[derive(Debug, Clone, Copy)]
pub struct ScannedAccount<'a> {
    /// Owner's store id.
    pub user_id: i64,
    /// Address as last imported.
    pub address: &'a [u8],
    /// Lower-cased address.
    pub address_norm: &'a [u8],
    /// Email: name shown on sent mail.
    pub display_name: Option<&'a [u8]>,
    /// Email: incoming user name; Exchange: user name.
    pub username: &'a [u8],
    /// Exchange: domain.
    pub domain: Option<&'a [u8]>,
    /// Email: outgoing user name.
    pub outgoing_username: Option<&'a [u8]>,
    /// MAC of the (incoming or Exchange) password.
    pub password_mac: Option<&'a [u8]>,
    /// MAC of the outgoing password.
    pub outgoing_password_mac: Option<&'a [u8]>,
    /// The account's store id.
    pub id: i64,
}

/// Receives what a scan reads: users and accounts of one kind, in no order.
pub trait ScanSink: Send {
    /// One user, with the bytes of their normalised email.
    fn user(&mut self, id: i64, email_norm: &[u8]);
    /// One account.
    fn account(&mut self, account: &ScannedAccount<'_>);
}

/// An import's snapshot of the store.
pub enum ImportSnapshot {
    /// SQLite: a connection of its own, lent to a blocking thread for each read.
    Sqlite(Option<SqliteRead>),
    /// PostgreSQL: a repeatable-read, read-only transaction, and the connections' settings,
    /// for more connections that scan the same state side by side.
    Postgres(Tx, Arc<PgConnectOptions>),
}

impl Store {
    /// Takes the snapshot an import decides against. Taken after the import's write
    /// transaction has begun, it is the state that transaction will change.
    pub async fn import_snapshot(&self) -> Result<ImportSnapshot, StoreError> {
        match self.sqlite_file() {
            Some(path) => {
                let read = tokio::task::spawn_blocking(move || SqliteRead::begin(&path))
                    .await
                    .map_err(|e| joined(&e))??;
                Ok(ImportSnapshot::Sqlite(Some(read)))
            }
            None => {
                let Pool::Postgres(pool) = &self.pool else {
                    unreachable!("a store without a SQLite file is on PostgreSQL")
                };
                Ok(ImportSnapshot::Postgres(
                    self.begin_read().await?,
                    pool.connect_options(),
                ))
            }
        }
    }
}

fn joined(e: &tokio::task::JoinError) -> StoreError {
    StoreError::Thread(e.to_string())
}

impl ImportSnapshot {
    /// Runs `read` on the SQLite connection, on a blocking thread.
    async fn on_sqlite<T: Send + 'static>(
        &mut self,
        read: impl FnOnce(&mut SqliteRead) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let ImportSnapshot::Sqlite(slot) = self else {
            unreachable!("only called on SQLite snapshots")
        };
        let mut conn = slot
            .take()
            .ok_or_else(|| StoreError::Thread("an earlier read failed".to_owned()))?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = read(&mut conn);
            (conn, result)
        })
        .await
        .map_err(|e| joined(&e))?;
        *slot = Some(conn);
        result
    }

    /// How many users and accounts of `kind` the snapshot holds.
    pub async fn counts(&mut self, kind: AccountKind) -> Result<StoreCounts, StoreError> {
        match self {
            ImportSnapshot::Sqlite(_) => self.on_sqlite(move |read| read.counts(kind)).await,
            ImportSnapshot::Postgres(tx, _) => {
                let TxInner::Postgres(tx) = &mut tx.inner else {
                    unreachable!("a PostgreSQL snapshot")
                };
                let (users, accounts) = sqlx::query_as(
                    "SELECT (SELECT count(*) FROM users), \
                     (SELECT count(*) FROM email_accounts WHERE kind = $1)",
                )
                .bind(kind.as_str())
                .fetch_one(&mut **tx)
                .await?;
                Ok(StoreCounts { users, accounts })
            }
        }
    }

    /// At most how many users and accounts of any kind the snapshot holds, from the spans
    /// of their ids: read at once, where [`ImportSnapshot::counts`] reads every row.
    pub async fn counts_at_most(&mut self) -> Result<StoreCounts, StoreError> {
        let ends = match self {
            ImportSnapshot::Sqlite(_) => self.on_sqlite(SqliteRead::id_ends).await?,
            ImportSnapshot::Postgres(tx, _) => {
                let TxInner::Postgres(tx) = &mut tx.inner else {
                    unreachable!("a PostgreSQL snapshot")
                };
                let ends: (Option<i64>, Option<i64>, Option<i64>, Option<i64>) =
                    sqlx::query_as(ID_ENDS).fetch_one(&mut **tx).await?;
                [ends.0, ends.1, ends.2, ends.3]
            }
        };
        Ok(StoreCounts::at_most(ends))
    }

    /// Hands every user and every account of `kind` to `sink`, or on SQLite to clones of
    /// it, one for each part of the store read side by side.
    pub async fn scan<S: ScanSink + Clone + 'static>(
        &mut self,
        kind: AccountKind,
        sink: S,
    ) -> Result<(), StoreError> {
        match self {
            ImportSnapshot::Sqlite(_) => self.on_sqlite(move |read| read.scan(kind, sink)).await,
            ImportSnapshot::Postgres(tx, options) => {
                let TxInner::Postgres(tx) = &mut tx.inner else {
                    unreachable!("a PostgreSQL snapshot")
                };
                // The snapshot turns sequential scans off for its look-ups (see
                // `Store::begin_read`), but its scan reads whole tables, or whole ranges of
                // their pages: kept off, the accounts were read through their key index in
                // twice the time, and a table read in one part, priced at the cost that turns
                // them off, was compiled (JIT) first.
                sqlx::query("SET LOCAL enable_seqscan = on")
                    .execute(&mut **tx)
                    .await?;
                super::scan_postgres(tx, options, kind, sink).await?;
                sqlx::query("SET LOCAL enable_seqscan = off")
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }
        }
    }

    /// The users among `emails_norm`, keyed by normalised email, each with their stored
    /// accounts of `kind`.
    pub async fn users_with_accounts(
        &mut self,
        kind: AccountKind,
        emails_norm: Vec<String>,
    ) -> Result<HashMap<String, UserAccounts>, StoreError> {
        match self {
            ImportSnapshot::Sqlite(_) => {
                self.on_sqlite(move |read| read.users_with_accounts(kind, &emails_norm))
                    .await
            }
            ImportSnapshot::Postgres(tx, _) => {
                let mut users = HashMap::new();
                for batch in emails_norm.chunks(super::BATCH) {
                    let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
                    users.extend(tx.users_with_accounts(kind, &batch).await?);
                }
                Ok(users)
            }
        }
    }

    /// Ends the snapshot.
    pub async fn end(self) {
        match self {
            ImportSnapshot::Sqlite(read) => drop(read),
            ImportSnapshot::Postgres(tx, _) => {
                let _ = tx.rollback().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_from_id_ends_are_zero_for_an_empty_table_and_saturate_rather_than_overflow() {
        let at_most = StoreCounts::at_most;
        assert_eq!(at_most([None; 4]), StoreCounts::default());
        assert_eq!(
            at_most([Some(3), Some(3), Some(-5), Some(10)]),
            StoreCounts {
                users: 1,
                accounts: 16
            }
        );
        assert_eq!(
            at_most([Some(i64::MIN), Some(i64::MAX), None, None]).users,
            i64::MAX
        );
    }
}
