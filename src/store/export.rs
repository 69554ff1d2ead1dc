//! Reads for the export: accounts page by page in (user, address) order, and users with
//! their devices and accounts for the mappings report. Pages throughout (keyset pagination,
//! or a server-side cursor for PostgreSQL's accounts), so an export of any size reads in
//! constant memory; passwords are never selected for the account export, which writes them
//! blank.

use sqlx::FromRow;
use sqlx::sqlite::SqlitePoolOptions;

use super::{Pool, SealedAccount, Store, StoreError, StoredUser, Tx, TxInner};
use crate::model::AccountKind;

/// One account as the export writes it: every field but the passwords.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Deserialize)]
pub struct ExportRow {
    /// The owner's address as last imported.
    pub user_email: String,
    /// The owner's normalised address: the first half of the page key.
    pub user_email_norm: String,
    /// The account's address as last imported.
    pub address: String,
    /// Lower-cased address: the second half of the page key.
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

/// Where the next SQLite page starts: after the account with this user and address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ExportKey {
    user_email_norm: String,
    address_norm: String,
}

/// Where an account export has got to: the last key read (SQLite, keyset pagination) or
/// whether the server-side cursor is open (PostgreSQL).
#[derive(Debug, Clone)]
pub struct ExportCursor {
    kind: AccountKind,
    after: Option<ExportKey>,
    declared: bool,
}

impl ExportCursor {
    /// A cursor before the first account of `kind`.
    pub fn new(kind: AccountKind) -> ExportCursor {
        ExportCursor {
            kind,
            after: None,
            declared: false,
        }
    }
}

/// The rows and order of a SQLite export page. Users are walked in `email_norm` order through
/// their unique index and each user's accounts probed through the account key, which yields
/// them in address order, so neither database sorts more than one user's accounts.
/// One page of an account export, decoded by [`ExportPage::rows`].
#[derive(Debug)]
pub struct ExportPage {
    len: usize,
    body: PageBody,
}

#[derive(Debug)]
enum PageBody {
    Rows(Vec<ExportRow>),
    /// SQLite's JSON array of rows and the key its last row should have.
    Json(String, Option<String>),
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
        let (json, last) = match self.body {
            PageBody::Rows(rows) => return Ok(rows),
            PageBody::Json(json, last) => (json, last),
        };
        let rows: Vec<ExportRow> = if json.is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(&json)
                .map_err(|e| StoreError::Query(sqlx::Error::Decode(Box::new(e))))?
        };
        // The aggregate keeps the inner query's order and the next page started after the
        // largest key; a page out of order would skip or repeat accounts, so it is
        // checked, not assumed.
        let ordered = rows.windows(2).all(|w| {
            (&w[0].user_email_norm, &w[0].address_norm)
                < (&w[1].user_email_norm, &w[1].address_norm)
        });
        let ends_at_last = rows
            .last()
            .map(|r| format!("{}\u{1}{}", r.user_email_norm, r.address_norm))
            == last;
        if !ordered || !ends_at_last || rows.len() != self.len {
            return Err(StoreError::Query(sqlx::Error::Protocol(
                "the export page came back out of order".into(),
            )));
        }
        Ok(rows)
    }
}

const PAGE_FROM: &str = "FROM users u JOIN email_accounts a ON a.user_id = u.id AND a.kind = $1 \
     WHERE u.email_norm >= $2 AND (u.email_norm > $2 OR a.address_norm > $3) \
     ORDER BY u.email_norm, a.address_norm LIMIT $4";

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
    /// store however long the export takes. On SQLite it runs on a connection
    /// of its own that maps the database file into memory: an export probes every account
    /// in user order, which is no order on disk, and reading each page with a system call
    /// cost as much as the rest of the export together.
    pub async fn begin_export(&self) -> Result<Tx, StoreError> {
        let pool = match &self.pool {
            Pool::Sqlite(pool) => pool,
            Pool::Postgres(pool) => {
                let tx = pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?;
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
        let tx = own.begin().await?;
        Ok(Tx {
            inner: TxInner::Sqlite(tx),
            own_pool: Some(own),
        })
    }
}

impl Tx {
    /// The next `limit` accounts of the cursor's kind (fewer at the end), in (normalised
    /// user address, normalised account address) order. On SQLite the page comes as its
    /// JSON text with the key of its last row, so the next page can be read while this one
    /// is decoded (by [`ExportPage::rows`], wherever the caller likes).
    pub async fn export_page(
        &mut self,
        cursor: &mut ExportCursor,
        limit: i64,
    ) -> Result<ExportPage, StoreError> {
        let kind = cursor.kind;
        match &mut self.inner {
            TxInner::Sqlite(tx) => {
                let empty = ExportKey::default();
                let after = cursor.after.as_ref().unwrap_or(&empty);
                // The page as one JSON array rather than one row per account: sqlx hands
                // each SQLite row from its worker thread separately, and for an export that
                // hand-off, not the reads, would be most of the time. The last row's key is
                // the largest of user and account address joined by U+0001, which sorts
                // below every character an address may hold.
                let sql = format!(
                    "SELECT json_group_array(json_array(email, email_norm, address, \
                     address_norm, display_name, username, domain, outgoing_username)), \
                     count(*), max(email_norm || char(1) || address_norm) \
                     FROM (SELECT u.email, u.email_norm, a.address, a.address_norm, \
                     a.display_name, a.username, a.domain, a.outgoing_username {PAGE_FROM})"
                );
                let (json, count, last): (Option<String>, i64, Option<String>) =
                    sqlx::query_as(&sql)
                        .bind(kind.as_str())
                        .bind(&after.user_email_norm)
                        .bind(&after.address_norm)
                        .bind(limit)
                        .fetch_one(&mut **tx)
                        .await?;
                if let Some((user_email_norm, address_norm)) =
                    last.as_deref().and_then(|last| last.split_once('\u{1}'))
                {
                    cursor.after = Some(ExportKey {
                        user_email_norm: user_email_norm.to_owned(),
                        address_norm: address_norm.to_owned(),
                    });
                }
                Ok(ExportPage {
                    len: usize::try_from(count).unwrap_or(0),
                    body: PageBody::Json(json.unwrap_or_default(), last),
                })
            }
            TxInner::Postgres(tx) => {
                // One sorted pass in a server-side cursor rather than keyset pages: PostgreSQL
                // joins and sorts the two tables whole in a few seconds, where probing every
                // account in user order (no order on disk) took ten times as long.
                if !cursor.declared {
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
                    cursor.declared = true;
                }
                let fetch = format!("FETCH {limit} FROM mdm_mail_export");
                let rows: Vec<ExportRow> = sqlx::query_as(&fetch).fetch_all(&mut **tx).await?;
                Ok(ExportPage {
                    len: rows.len(),
                    body: PageBody::Rows(rows),
                })
            }
        }
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
