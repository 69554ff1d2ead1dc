//! Storage: the only module that speaks SQL.
//!
//! Two backends, one code path. [`Store`] holds a native sqlx pool for SQLite (the embedded
//! default) or PostgreSQL; every query is one SQL text with `$N` placeholders that both
//! dialects accept, run on whichever pool is open. Reads go through [`Store`], writes through a
//! [`Tx`] so that a whole import commits or leaves no trace. One module per table.

mod accounts;
mod admins;
mod audit;
mod bulk;
mod devices;
mod export;
mod imports;
mod manage;
mod mappings;
mod push;
mod secrets;
mod sign_in;
mod snapshot;
mod tokens;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Postgres, QueryBuilder, Sqlite, Transaction};

pub use accounts::{AccountWrite, SealedAccount, SealedRef, StoredAccount, UserAccounts};
pub use admins::{AdminSet, ListedAdmin, StoredAdmin, StoredSession};
use bulk::scan_postgres;
pub use bulk::{PgBulk, SqliteBulk, SqliteRead};
pub use devices::StoredDevice;
pub use export::{AccountSnapshots, ExportPage, ExportRow, UserMappings, UserRange};
pub use imports::{ImportRow, LineRecord, NewImport, StoredLine};
pub use manage::{Delivered, DevicePush, PushTarget, RecentJob};
pub use mappings::SavedMapping;
pub use push::{
    ClaimedJob, DeviceJobs, DueReminder, JobAnswer, JobDevice, JobResult, NewJob, OverdueJob,
    Pending, PushSource, Reminder, SourceAccount, StateCounts, TakenReminders, TargetDevice,
    TargetWrite,
};
pub use secrets::{Resealed, SealedCounts, SealedRow};
pub use sign_in::{AttemptCount, Counted, Counter};
pub use snapshot::{ImportSnapshot, ScanSink, ScannedAccount, StoreCounts};
pub use tokens::StoredToken;
pub use users::{StoredUser, UserSummary};

/// The largest number of rows one multi-row statement carries. Well under both databases'
/// bind-parameter limits for the widest table, and large enough that the per-statement
/// hand-off to sqlx's SQLite worker thread is amortised.
pub const BATCH: usize = 500;

/// Runs `$body` against the pool of whichever backend `$store` uses, binding it to `$pool`.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` inside transaction `$tx`, binding its connection to `$conn`.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match &mut $tx.inner {
            $crate::store::TxInner::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::store::TxInner::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}
pub(crate) use {on_pool, on_tx};

/// Appends `(v, v, …)`, the bound values of an `IN` list.
fn push_list<'a, DB, T>(q: &mut QueryBuilder<'a, DB>, values: impl IntoIterator<Item = T>)
where
    DB: sqlx::Database,
    T: 'a + sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push("(");
    let mut list = q.separated(", ");
    for value in values {
        list.push_bind(value);
    }
    q.push(")");
}

/// Appends `CASE id WHEN … THEN … END`, one bound arm per `(id, value)`: one statement that
/// gives each row of a batch its own value.
fn push_case_by_id<'a, DB, T>(
    q: &mut QueryBuilder<'a, DB>,
    arms: impl IntoIterator<Item = (i64, T)>,
) where
    DB: sqlx::Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    T: 'a + sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push("CASE id");
    for (id, value) in arms {
        q.push(" WHEN ")
            .push_bind(id)
            .push(" THEN ")
            .push_bind(value);
    }
    q.push(" END");
}

/// Rows SQLite aggregated into one JSON array (`json_group_array`, which sqlx hands over as
/// one value rather than row by row), decoded; none when the query matched nothing.
fn json_rows<T: serde::de::DeserializeOwned>(json: Option<&str>) -> Result<Vec<T>, StoreError> {
    match json {
        None | Some("") => Ok(Vec::new()),
        Some(json) => serde_json::from_str(json)
            .map_err(|e| StoreError::Query(sqlx::Error::Decode(Box::new(e)))),
    }
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Errors from the store, worded for the admin who has to fix them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no database mdm-mail can use.
    #[error(
        "{0:?} is not a database URL mdm-mail understands (use sqlite://FILE, a file path, or postgres://…)"
    )]
    Url(String),
    /// The database could not be opened or reached.
    #[error("cannot open the database {url}: {source}")]
    Connect {
        /// The URL, password removed.
        url: String,
        /// What the driver said.
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot update the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// A statement of a bulk import on SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The thread running an import's statements stopped.
    #[error("the import's database thread stopped: {0}")]
    Thread(String),
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// An open, migrated database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    url: String,
    /// The database file, on SQLite.
    file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.url).finish()
    }
}

/// A write transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    inner: TxInner,
    /// The one-connection pool of a bulk transaction, closed when the transaction ends.
    own_pool: Option<SqlitePool>,
}

pub(crate) enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Tables whose statistics [`Store::refresh_statistics`] refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `users`.
    Users,
    /// `devices`.
    Devices,
    /// `email_accounts`.
    Accounts,
}

/// What `/healthz` reports about the store.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Health {
    /// Which database.
    pub backend: Backend,
    /// The URL, password removed.
    pub url: String,
    /// The newest migration applied.
    pub schema_version: i64,
}

/// Classifies a database URL: `postgres://` and `postgresql://` are PostgreSQL; `sqlite:` URLs
/// and plain file paths are SQLite.
pub fn backend_of(url: &str) -> Result<Backend, StoreError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else if lower.starts_with("sqlite:") || (!url.is_empty() && !url.contains("://")) {
        Ok(Backend::Sqlite)
    } else {
        Err(StoreError::Url(redact(url)))
    }
}

/// The SQLite file a URL or path names, if it names one (not `sqlite::memory:`).
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    if !matches!(backend_of(url), Ok(Backend::Sqlite)) {
        return None;
    }
    let path = match url.strip_prefix("sqlite://") {
        Some(rest) => rest,
        None => url.strip_prefix("sqlite:").unwrap_or(url),
    };
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| path.into())
}

/// A URL with its password replaced, fit for logs and error messages.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((credentials, host)) => {
                let user = credentials.split(':').next().unwrap_or("");
                let hidden = if credentials.contains(':') {
                    ":***"
                } else {
                    ""
                };
                format!("{scheme}://{user}{hidden}@{host}")
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Milliseconds since the unix epoch: how the store records time.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// Statements slower than this are logged, at [`SLOW_STATEMENT_LOG`]: information for an
/// operator of `serve`, not a warning. Some statements are slow by nature (the first
/// `FETCH` of a million-row export sorts them all), and at sqlx's default level every such
/// command line run printed a warning.
const SLOW_STATEMENT: Duration = Duration::from_secs(1);
const SLOW_STATEMENT_LOG: log::LevelFilter = log::LevelFilter::Info;

impl Store {
    /// Opens the database at `url`, creating a SQLite file if it does not exist, and applies
    /// every migration not yet applied.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let connect_error = |source| StoreError::Connect {
            url: redact(url),
            source,
        };
        let pool = match backend_of(url)? {
            Backend::Sqlite => {
                let path = sqlite_path(url).ok_or_else(|| StoreError::Url(url.to_owned()))?;
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(30))
                    // 64 MiB of page cache per connection: the default 2 MiB halves the speed of
                    // index maintenance on a million-user table.
                    .pragma("cache_size", "-65536")
                    // Statement journals (one per multi-row upsert in a transaction) in memory
                    // rather than in temporary files: they hold a few pages each, and writing
                    // them out cost a fifth of a large import.
                    .pragma("temp_store", "memory")
                    .log_slow_statements(SLOW_STATEMENT_LOG, SLOW_STATEMENT);
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                sqlx::migrate!("migrations/sqlite").run(&pool).await?;
                Pool::Sqlite(pool)
            }
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(connect_error)?
                    .log_slow_statements(SLOW_STATEMENT_LOG, SLOW_STATEMENT);
                let pool = PgPoolOptions::new()
                    .max_connections(10)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                sqlx::migrate!("migrations/postgres").run(&pool).await?;
                Pool::Postgres(pool)
            }
        };
        Ok(Store {
            file: matches!(pool, Pool::Sqlite(_))
                .then(|| sqlite_path(url))
                .flatten(),
            pool,
            url: redact(url),
        })
    }

    /// The database file, when this is SQLite.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        self.file.clone()
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs `sql`, a DELETE by one text key `$1`, and records `actor` doing `action` to
    /// `key` in the audit log in the same transaction; true when it deleted anything.
    async fn delete_audited(
        &self,
        sql: &'static str,
        key: &str,
        actor: &str,
        action: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let deleted = on_tx!(tx, conn => {
            sqlx::query(sql).bind(key).execute(conn).await.map(|r| r.rows_affected())
        })?;
        if deleted > 0 {
            tx.audit(actor, action, key, &serde_json::json!({})).await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }

    /// Runs `sql`, a SELECT of rows named by `name` with `WHERE name > $1 ORDER BY name
    /// LIMIT $2`: one page of a listing after the row called `after`.
    async fn page_by_name<T>(
        &self,
        sql: &'static str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<T>, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(sql).bind(after.unwrap_or("")).bind(limit).fetch_all(pool).await
        })?)
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so it waits for another writer rather than failing half-way.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let inner = match &self.pool {
            Pool::Sqlite(pool) => TxInner::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(pool) => TxInner::Postgres(pool.begin().await?),
        };
        Ok(Tx {
            inner,
            own_pool: None,
        })
    }

    /// Starts a transaction that only reads, seeing one consistent state of the store
    /// without holding SQLite's write lock: what an import decides its lines against.
    pub async fn begin_read(&self) -> Result<Tx, StoreError> {
        let inner = match &self.pool {
            Pool::Sqlite(pool) => TxInner::Sqlite(pool.begin().await?),
            Pool::Postgres(pool) => {
                let mut tx = pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?;
                // The reads here are key lookups, made while the import's own transaction
                // fills the same tables. Planned from statistics taken before it (an empty
                // account table, say), PostgreSQL would scan the table, which grows with
                // every batch still invisible to this snapshot: a million-line import took
                // ten times as long. Index probes cost the same at any size.
                sqlx::query("SET LOCAL enable_seqscan = off")
                    .execute(&mut *tx)
                    .await?;
                TxInner::Postgres(tx)
            }
        };
        Ok(Tx {
            inner,
            own_pool: None,
        })
    }

    /// Checks the database answers and reports its schema version.
    pub async fn health(&self) -> Result<Health, StoreError> {
        const SQL: &str = "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success";
        let schema_version: i64 =
            on_pool!(self, pool => sqlx::query_scalar(SQL).fetch_one(pool).await)?;
        Ok(Health {
            backend: self.backend(),
            url: self.url.clone(),
            schema_version,
        })
    }

    /// Refreshes the query planner's statistics of tables a bulk load just changed. PostgreSQL
    /// plans from statistics its autovacuum gathers a minute or more later: a million users
    /// loaded and matched at once were otherwise looked up by scanning the whole table once
    /// per batch. SQLite plans from its indexes alone and needs nothing. A load that added no
    /// row (`added`) leaves the statistics as true as they were, and is spared the `ANALYZE`:
    /// of a million accounts, it took over half a second of a re-import that changed nothing.
    pub async fn refresh_statistics(&self, table: Table, added: u64) -> Result<(), StoreError> {
        if added == 0 {
            return Ok(());
        }
        if let Pool::Postgres(pool) = &self.pool {
            let sql = match table {
                Table::Users => "ANALYZE users",
                Table::Devices => "ANALYZE devices",
                Table::Accounts => "ANALYZE email_accounts",
            };
            sqlx::query(sql).execute(pool).await?;
        }
        Ok(())
    }

    /// Waits for open connections to finish and closes them.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await);
    }
}

impl Tx {
    /// Ends the transaction, undoing its writes. (Dropping it does the same, but only the
    /// next time its connection is used: a long-lived pool would hold its locks till then.)
    pub async fn rollback(self) -> Result<(), StoreError> {
        let result = match self.inner {
            TxInner::Sqlite(tx) => tx.rollback().await,
            TxInner::Postgres(tx) => tx.rollback().await,
        };
        if let Some(own) = self.own_pool {
            own.close().await;
        }
        Ok(result?)
    }

    /// Makes every write of the transaction durable.
    pub async fn commit(self) -> Result<(), StoreError> {
        let result = match self.inner {
            TxInner::Sqlite(tx) => tx.commit().await,
            TxInner::Postgres(tx) => tx.commit().await,
        };
        if let Some(own) = self.own_pool {
            own.close().await;
        }
        Ok(result?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_the_backend() {
        assert_eq!(backend_of("postgres://u@h/db").unwrap(), Backend::Postgres);
        assert_eq!(backend_of("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(backend_of("data/mdm-mail.db").unwrap(), Backend::Sqlite);
        assert!(backend_of("mysql://h/db").is_err());
    }

    #[test]
    fn sqlite_paths_come_out_of_urls_and_plain_paths() {
        assert_eq!(
            sqlite_path("sqlite://a/b.db?mode=rwc"),
            Some("a/b.db".into())
        );
        assert_eq!(sqlite_path("sqlite:b.db"), Some("b.db".into()));
        assert_eq!(sqlite_path("/var/lib/m.db"), Some("/var/lib/m.db".into()));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://mdm:s3cret@db:5432/mdm"),
            "postgres://mdm:***@db:5432/mdm"
        );
        assert_eq!(
            redact("postgres://postgres@h/test"),
            "postgres://postgres@h/test"
        );
    }
}
