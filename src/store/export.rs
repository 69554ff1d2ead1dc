//! Reads for the export: accounts page by page in (user, address) order, and users with
//! their devices and accounts for the mappings report. Pages throughout (ranges of users
//! read by several snapshots of one state on SQLite, a server-side cursor on PostgreSQL,
//! keyset pages for the mappings), so an export of any size reads in constant memory;
//! passwords are never selected for the account export, which writes them blank.

use sqlx::FromRow;
use sqlx::sqlite::SqlitePoolOptions;

use super::{Pool, SealedAccount, Store, StoreError, StoredUser, Tx, TxInner, on_pool};
use crate::model::AccountKind;

/// One account as the export writes it: every field but the passwords.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Deserialize)]
pub struct ExportRow {
    /// The owner's address as last imported.
    pub user_email: String,
    /// The owner's normalised address: the first half of the sort key.
    pub user_email_norm: String,
    /// The account's address as last imported.
    pub address: String,
    /// Lower-cased address: the second half of the sort key.
    pub address_norm: String,
    /// Email: name shown on sent mail.
    pub display_name: Option<String>,
    /// Email: incoming user name; Exchange: user name.
    pub username: String,
    /// Exchange: domain.
    pub domain: Option<String>,
    /// Email: outgoing user name.
    pub outgoing_username: Option<String>,
}

/// The snapshots an account export reads from, each one transaction on the same state of
/// the store.
pub enum AccountSnapshots {
    /// SQLite: readers of user ranges, to be read side by side (see
    /// [`Store::begin_account_export`]).
    Ranges(Vec<Tx>),
    /// PostgreSQL: one transaction read through a server-side cursor by
    /// [`Tx::export_cursor_page`].
    Cursor(Tx),
}

/// The users of one page of a SQLite account export: normalised addresses after `after`
/// and up to and including `through` (to the last user when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRange {
    /// The page starts after this user (`""`: at the first).
    pub after: String,
    /// The page ends with this user; `None`: with the last one.
    pub through: Option<String>,
}

impl UserRange {
    fn holds(&self, user: &str) -> bool {
        user > self.after.as_str() && self.through.as_deref().is_none_or(|t| user <= t)
    }
}

/// One page of an account export, decoded by [`ExportPage::rows`].
#[derive(Debug)]
pub struct ExportPage {
    len: usize,
    body: PageBody,
}

#[derive(Debug)]
enum PageBody {
    Rows(Vec<ExportRow>),
    /// SQLite's JSON array of the rows of a user range.
    Json(String, UserRange),
}

impl ExportPage {
    /// How many accounts the page holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the page is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The page's rows, in order.
    pub fn rows(self) -> Result<Vec<ExportRow>, StoreError> {
        let (json, range) = match self.body {
            PageBody::Rows(rows) => return Ok(rows),
            PageBody::Json(json, range) => (json, range),
        };
        let rows: Vec<ExportRow> = super::json_rows(Some(&json))?;
        // The aggregate keeps the inner query's order, and pages are put together by their
        // ranges; a page out of order or outside its range would misplace accounts, so that
        // is checked, not assumed.
        let ordered = rows.windows(2).all(|w| {
            (&w[0].user_email_norm, &w[0].address_norm)
                < (&w[1].user_email_norm, &w[1].address_norm)
        });
        let inside = rows.iter().all(|r| range.holds(&r.user_email_norm));
        if !ordered || !inside || rows.len() != self.len {
            return Err(StoreError::Query(sqlx::Error::Protocol(
                "the export page came back out of order".into(),
            )));
        }
        Ok(rows)
    }
}

/// A user with their devices and all their accounts, as the mappings report reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMappings {
    /// The user.
    pub user: StoredUser,
    /// Their devices in device-id order: (device id, platform, enrollment id).
    pub devices: Vec<(String, String, String)>,
    /// Their accounts, passwords sealed, in kind and address order.
    pub accounts: Vec<SealedAccount>,
}

#[derive(FromRow)]
struct DeviceRow {
    user_id: i64,
    device_id: String,
    platform: String,
    enrollment_id: String,
}

#[derive(FromRow)]
struct AccountRow {
    user_id: i64,
    #[sqlx(flatten)]
    account: SealedAccount,
}

impl Store {
    /// Starts the read-only snapshot an export reads from, one consistent state of the
    /// store however long the export takes. On SQLite it runs on a connection of its own
    /// that maps the database file into memory: an export probes every account in user
    /// order, which is no order on disk, and reading each page with a system call cost as
    /// much as the rest of the export together.
    pub async fn begin_export(&self) -> Result<Tx, StoreError> {
        // Both databases take the snapshot at a transaction's first read, not at BEGIN.
        const FIRST_READ: &str = "SELECT 1 FROM users LIMIT 1";
        let pool = match &self.pool {
            Pool::Sqlite(pool) => pool,
            Pool::Postgres(pool) => {
                let mut tx = pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?;
                sqlx::query(FIRST_READ).fetch_optional(&mut *tx).await?;
                return Ok(Tx {
                    inner: TxInner::Postgres(tx),
                    own_pool: None,
                });
            }
        };
        let options = (*pool.connect_options())
            .clone()
            .pragma("mmap_size", "17179869184");
        let own = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let mut tx = own.begin().await?;
        sqlx::query(FIRST_READ).fetch_optional(&mut *tx).await?;
        Ok(Tx {
            inner: TxInner::Sqlite(tx),
            own_pool: Some(own),
        })
    }

    /// Starts an account export. On SQLite: up to `readers` snapshots of one and the same
    /// state, so that user ranges can be read side by side: the ordered walk over users
    /// and their accounts is nearly all an export's time, and one connection runs it on
    /// one core. They are the same state when no commit landed while they were being
    /// started, which `PRAGMA data_version` (it changes on every commit by another
    /// connection) tells; when commits keep landing, the export reads with one.
    pub async fn begin_account_export(
        &self,
        readers: usize,
    ) -> Result<AccountSnapshots, StoreError> {
        const ATTEMPTS: usize = 3;
        let Pool::Sqlite(pool) = &self.pool else {
            return Ok(AccountSnapshots::Cursor(self.begin_export().await?));
        };
        let mut watch = pool.acquire().await?;
        for _ in 0..ATTEMPTS {
            let before: i64 = sqlx::query_scalar("PRAGMA data_version")
                .fetch_one(&mut *watch)
                .await?;
            let mut snapshots = Vec::with_capacity(readers);
            for _ in 0..readers.max(1) {
                snapshots.push(self.begin_export().await?);
            }
            let after: i64 = sqlx::query_scalar("PRAGMA data_version")
                .fetch_one(&mut *watch)
                .await?;
            if before == after {
                return Ok(AccountSnapshots::Ranges(snapshots));
            }
            for tx in snapshots {
                tx.rollback().await?;
            }
        }
        Ok(AccountSnapshots::Ranges(vec![self.begin_export().await?]))
    }

    /// The normalised address of the user `users` places after `after` in address order
    /// (`""`: from the first): where the SQLite export page that starts after `after`
    /// ends. `None` when fewer users than that remain. Pages only need to partition the
    /// users, so this reads the current state, not an export's snapshot.
    pub async fn user_range_end(
        &self,
        after: &str,
        users: i64,
    ) -> Result<Option<String>, StoreError> {
        const SQL: &str = "SELECT email_norm FROM users WHERE email_norm > $1 ORDER BY email_norm LIMIT 1 OFFSET $2";
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar(SQL).bind(after).bind(users - 1).fetch_optional(pool).await
        })?)
    }
}

impl Tx {
    /// The accounts of `kind` of the users in `range`, in (normalised user address,
    /// normalised account address) order, from a SQLite export snapshot. The page comes as
    /// one JSON array, decoded by [`ExportPage::rows`] wherever the caller likes: sqlx hands
    /// each SQLite row over from its worker thread separately, and for an export that
    /// hand-off, not the reads, would be most of the time.
    pub async fn export_range(
        &mut self,
        kind: AccountKind,
        range: UserRange,
    ) -> Result<ExportPage, StoreError> {
        // Two statements rather than an optional bound: with `(? IS NULL OR …)` SQLite
        // would walk the users index to its end for every page.
        macro_rules! page_sql {
            ($bound:literal) => {
                concat!(
                    "SELECT json_group_array(json_array(email, email_norm, address, \
                     address_norm, display_name, username, domain, outgoing_username)), \
                     count(*) FROM (SELECT u.email, u.email_norm, a.address, a.address_norm, \
                     a.display_name, a.username, a.domain, a.outgoing_username \
                     FROM users u JOIN email_accounts a ON a.user_id = u.id AND a.kind = $1 \
                     WHERE u.email_norm > $2",
                    $bound,
                    " ORDER BY u.email_norm, a.address_norm)"
                )
            };
        }
        const BOUNDED: &str = page_sql!(" AND u.email_norm <= $3");
        const TO_THE_END: &str = page_sql!("");
        let TxInner::Sqlite(tx) = &mut self.inner else {
            return Err(StoreError::Query(sqlx::Error::Protocol(
                "user-range export pages are read from SQLite".into(),
            )));
        };
        let query = match &range.through {
            Some(through) => sqlx::query_as(BOUNDED)
                .bind(kind.as_str())
                .bind(&range.after)
                .bind(through),
            None => sqlx::query_as(TO_THE_END)
                .bind(kind.as_str())
                .bind(&range.after),
        };
        let (json, count): (Option<String>, i64) = query.fetch_one(&mut **tx).await?;
        Ok(ExportPage {
            len: usize::try_from(count).unwrap_or(0),
            body: PageBody::Json(json.unwrap_or_default(), range),
        })
    }

    /// The next `limit` accounts of `kind` (fewer at the end) from a PostgreSQL export
    /// snapshot, through a server-side cursor declared on the first call.
    pub async fn export_cursor_page(
        &mut self,
        kind: AccountKind,
        first: bool,
        limit: i64,
    ) -> Result<ExportPage, StoreError> {
        let TxInner::Postgres(tx) = &mut self.inner else {
            return Err(StoreError::Query(sqlx::Error::Protocol(
                "cursor export pages are read from PostgreSQL".into(),
            )));
        };
        // One sorted pass in a server-side cursor rather than keyset pages: PostgreSQL joins
        // and sorts the two tables whole in a few seconds, where probing every account in
        // user order (no order on disk) took ten times as long.
        if first {
            sqlx::query("SET LOCAL cursor_tuple_fraction = 1.0")
                .execute(&mut **tx)
                .await?;
            let declare = format!(
                "DECLARE mdm_mail_export NO SCROLL CURSOR FOR \
                 SELECT u.email AS user_email, u.email_norm AS user_email_norm, \
                 a.address, a.address_norm, a.display_name, a.username, a.domain, \
                 a.outgoing_username FROM users u JOIN email_accounts a \
                 ON a.user_id = u.id AND a.kind = '{kind}' \
                 ORDER BY u.email_norm, a.address_norm"
            );
            sqlx::query(&declare).execute(&mut **tx).await?;
        }
        let fetch = format!("FETCH {limit} FROM mdm_mail_export");
        let rows: Vec<ExportRow> = sqlx::query_as(&fetch).fetch_all(&mut **tx).await?;
        Ok(ExportPage {
            len: rows.len(),
            body: PageBody::Rows(rows),
        })
    }

    /// Up to `limit` users after the normalised address `after` (from the first when
    /// `None`), in address order, each with their devices and accounts.
    pub async fn mappings_page(
        &mut self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UserMappings>, StoreError> {
        const USERS: &str = "SELECT id, email, email_norm, display_name FROM users \
             WHERE email_norm > $1 ORDER BY email_norm LIMIT $2";
        const DEVICES: &str = "SELECT d.user_id, d.device_id, d.platform, d.enrollment_id \
             FROM devices d JOIN users u ON u.id = d.user_id \
             WHERE u.email_norm > $1 AND u.email_norm <= $2 ORDER BY d.user_id, d.device_id";
        const ACCOUNTS: &str = "SELECT a.user_id, a.kind, a.address, a.address_norm, \
             a.display_name, a.username, a.domain, a.outgoing_username, a.password, \
             a.outgoing_password FROM email_accounts a JOIN users u ON u.id = a.user_id \
             WHERE u.email_norm > $1 AND u.email_norm <= $2 \
             ORDER BY a.user_id, a.kind, a.address_norm";
        let after = after.unwrap_or("");
        let users: Vec<StoredUser> = super::on_tx!(self, conn => {
            sqlx::query_as(USERS).bind(after).bind(limit).fetch_all(conn).await
        })?;
        let Some(last) = users.last().map(|u| u.email_norm.clone()) else {
            return Ok(Vec::new());
        };
        let devices: Vec<DeviceRow> = super::on_tx!(self, conn => {
            sqlx::query_as(DEVICES).bind(after).bind(&last).fetch_all(conn).await
        })?;
        let accounts: Vec<AccountRow> = super::on_tx!(self, conn => {
            sqlx::query_as(ACCOUNTS).bind(after).bind(&last).fetch_all(conn).await
        })?;
        let mut page: Vec<UserMappings> = users
            .into_iter()
            .map(|user| UserMappings {
                user,
                devices: Vec::new(),
                accounts: Vec::new(),
            })
            .collect();
        let index: std::collections::HashMap<i64, usize> = page
            .iter()
            .enumerate()
            .map(|(i, m)| (m.user.id, i))
            .collect();
        for d in devices {
            if let Some(&i) = index.get(&d.user_id) {
                page[i]
                    .devices
                    .push((d.device_id, d.platform, d.enrollment_id));
            }
        }
        for a in accounts {
            if let Some(&i) = index.get(&a.user_id) {
                page[i].accounts.push(a.account);
            }
        }
        Ok(page)
    }
}
