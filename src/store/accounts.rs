//! The `email_accounts` table.

use std::collections::HashMap;

use sqlx::QueryBuilder;

use super::{StoreError, Tx, json_rows, now_ms, push_list};
use crate::model::AccountKind;

/// A stored account as an import compares it: every field, and MACs in place of passwords.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredAccount {
    /// Address as last imported.
    pub address: String,
    /// Lower-cased address: with the user and kind, the account's key.
    pub address_norm: String,
    /// Email: name shown on sent mail.
    pub display_name: Option<String>,
    /// Email: incoming user name; Exchange: user name.
    pub username: String,
    /// Exchange: domain.
    pub domain: Option<String>,
    /// Email: outgoing user name.
    pub outgoing_username: Option<String>,
    /// MAC of the (incoming or Exchange) password, if one is stored.
    pub password_mac: Option<Vec<u8>>,
    /// MAC of the outgoing password, if one is stored.
    pub outgoing_password_mac: Option<Vec<u8>>,
}

/// A user matched by email, with their stored accounts of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserAccounts {
    /// The user's store id.
    pub user_id: i64,
    /// Their accounts of the kind asked for.
    pub accounts: Vec<StoredAccount>,
}

/// A sealed password and its MAC.
#[derive(Debug, Clone, Copy)]
pub struct SealedRef<'a> {
    /// The AEAD ciphertext.
    pub ciphertext: &'a [u8],
    /// The keyed MAC of the plain text.
    pub mac: &'a [u8],
}

/// An account to insert, or to update in place (matched by user, kind and address).
/// A `None` password keeps the stored one.
#[derive(Debug, Clone, Copy)]
pub struct AccountWrite<'a> {
    /// Owner's store id.
    pub user_id: i64,
    /// Address as written in the file.
    pub address: &'a str,
    /// Lower-cased address.
    pub address_norm: &'a str,
    /// Email: name shown on sent mail.
    pub display_name: Option<&'a str>,
    /// Email: incoming user name; Exchange: user name.
    pub username: &'a str,
    /// Exchange: domain.
    pub domain: Option<&'a str>,
    /// Email: outgoing user name.
    pub outgoing_username: Option<&'a str>,
    /// (Incoming or Exchange) password.
    pub password: Option<SealedRef<'a>>,
    /// Outgoing password.
    pub outgoing_password: Option<SealedRef<'a>>,
}

/// A user/account pair of a match: the user's normalised email and id, then the account's
/// columns, all `None` for a user without accounts of the kind.
#[derive(sqlx::FromRow)]
struct MatchRow {
    email_norm: String,
    user_id: i64,
    address: Option<String>,
    address_norm: Option<String>,
    display_name: Option<String>,
    username: Option<String>,
    domain: Option<String>,
    outgoing_username: Option<String>,
    password_mac: Option<Vec<u8>>,
    outgoing_password_mac: Option<Vec<u8>>,
}

/// A [`MatchRow`] as SQLite's JSON carries it, MACs in hex.
type MatchTuple = (
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl From<MatchTuple> for MatchRow {
    fn from(t: MatchTuple) -> Self {
        MatchRow {
            email_norm: t.0,
            user_id: t.1,
            address: t.2,
            address_norm: t.3,
            display_name: t.4,
            username: t.5,
            domain: t.6,
            outgoing_username: t.7,
            password_mac: unhex(t.8),
            outgoing_password_mac: unhex(t.9),
        }
    }
}

/// Bytes from the hex SQLite's `hex()` writes into JSON.
pub(super) fn unhex(text: Option<String>) -> Option<Vec<u8>> {
    let text = text?;
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

impl Tx {
    /// The users among `emails_norm` (at most [`super::BATCH`]), keyed by normalised email,
    /// each with their stored accounts of `kind`. One statement per batch of lines.
    pub async fn users_with_accounts(
        &mut self,
        kind: AccountKind,
        emails_norm: &[&str],
    ) -> Result<HashMap<String, UserAccounts>, StoreError> {
        let mut users: HashMap<String, UserAccounts> = HashMap::new();
        if emails_norm.is_empty() {
            return Ok(users);
        }
        // A user's accounts are found by probing the account key from the user's id, never by
        // a join: a join would let PostgreSQL, planning from statistics older than the import,
        // scan an account table that the import is filling.
        let rows: Vec<MatchRow> = match &mut self.inner {
            super::TxInner::Sqlite(tx) => {
                // One JSON array per batch rather than one row per match: sqlx hands every
                // SQLite row from its worker thread to the caller one by one, and on a
                // million-line import that hand-off, not the lookups, would be most of the time.
                let mut q = QueryBuilder::new(
                    "SELECT json_group_array(json_array(u.email_norm, u.id, a.address, \
                     a.address_norm, a.display_name, a.username, a.domain, a.outgoing_username, \
                     CASE WHEN a.password_mac IS NULL THEN NULL ELSE hex(a.password_mac) END, \
                     CASE WHEN a.outgoing_password_mac IS NULL THEN NULL \
                     ELSE hex(a.outgoing_password_mac) END)) \
                     FROM users u LEFT JOIN email_accounts a ON a.user_id = u.id AND a.kind = ",
                );
                q.push_bind(kind.as_str()).push(" WHERE u.email_norm IN ");
                push_list(&mut q, emails_norm.iter().copied());
                let json: Option<String> = q.build_query_scalar().fetch_one(&mut **tx).await?;
                let tuples: Vec<MatchTuple> = json_rows(json.as_deref())?;
                tuples.into_iter().map(MatchRow::from).collect()
            }
            super::TxInner::Postgres(tx) => {
                // Rows, which PostgreSQL sends cheaply; `OFFSET 0` keeps the accounts a
                // per-user probe rather than something the planner may turn into a scan.
                const SQL: &str = "SELECT u.email_norm, u.id AS user_id, a.address, \
                     a.address_norm, a.display_name, a.username, a.domain, a.outgoing_username, \
                     a.password_mac, a.outgoing_password_mac \
                     FROM users u LEFT JOIN LATERAL (SELECT * FROM email_accounts a \
                     WHERE a.user_id = u.id AND a.kind = $1 OFFSET 0) a ON true \
                     WHERE u.email_norm = ANY($2)";
                sqlx::query_as(SQL)
                    .bind(kind.as_str())
                    .bind(emails_norm)
                    .fetch_all(&mut **tx)
                    .await?
            }
        };
        for row in rows {
            let user = users.entry(row.email_norm).or_insert_with(|| UserAccounts {
                user_id: row.user_id,
                accounts: Vec::new(),
            });
            if let (Some(address), Some(address_norm), Some(username)) =
                (row.address, row.address_norm, row.username)
            {
                user.accounts.push(StoredAccount {
                    address,
                    address_norm,
                    display_name: row.display_name,
                    username,
                    domain: row.domain,
                    outgoing_username: row.outgoing_username,
                    password_mac: row.password_mac,
                    outgoing_password_mac: row.outgoing_password_mac,
                });
            }
        }
        Ok(users)
    }

    /// Inserts new accounts of `kind` (at most [`super::BATCH`], keys not yet stored).
    pub async fn insert_accounts(
        &mut self,
        kind: AccountKind,
        accounts: &[AccountWrite<'_>],
    ) -> Result<(), StoreError> {
        self.write_accounts(kind, accounts, "").await
    }

    /// Updates stored accounts of `kind` in place (at most [`super::BATCH`], distinct keys).
    /// A `None` password keeps the stored one.
    pub async fn update_accounts(
        &mut self,
        kind: AccountKind,
        accounts: &[AccountWrite<'_>],
    ) -> Result<(), StoreError> {
        // An upsert rather than an UPDATE: one multi-row statement, the same in both dialects.
        self.write_accounts(
            kind,
            accounts,
            " ON CONFLICT (user_id, kind, address_norm) DO UPDATE SET \
             address = excluded.address, display_name = excluded.display_name, \
             username = excluded.username, domain = excluded.domain, \
             outgoing_username = excluded.outgoing_username, \
             password = COALESCE(excluded.password, email_accounts.password), \
             password_mac = COALESCE(excluded.password_mac, email_accounts.password_mac), \
             outgoing_password = COALESCE(excluded.outgoing_password, email_accounts.outgoing_password), \
             outgoing_password_mac = COALESCE(excluded.outgoing_password_mac, email_accounts.outgoing_password_mac), \
             updated_at = excluded.updated_at",
        )
        .await
    }

    async fn write_accounts(
        &mut self,
        kind: AccountKind,
        accounts: &[AccountWrite<'_>],
        on_conflict: &'static str,
    ) -> Result<(), StoreError> {
        if accounts.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        const COLUMNS: &str = " email_accounts (user_id, kind, address, address_norm, \
             display_name, username, domain, outgoing_username, password, password_mac, \
             outgoing_password, outgoing_password_mac, created_at, updated_at) ";
        match &mut self.inner {
            super::TxInner::Sqlite(tx) => {
                // OR FAIL: a failing row ends the statement without undoing its earlier rows,
                // so SQLite keeps no statement journal for it (a fifth of the cost of a large
                // import); any failure ends the whole import's transaction anyway.
                let mut q = QueryBuilder::new("INSERT OR FAIL INTO");
                q.push(COLUMNS);
                q.push_values(accounts, |mut row, a| {
                    row.push_bind(a.user_id)
                        .push_bind(kind.as_str())
                        .push_bind(a.address)
                        .push_bind(a.address_norm)
                        .push_bind(a.display_name)
                        .push_bind(a.username)
                        .push_bind(a.domain)
                        .push_bind(a.outgoing_username)
                        .push_bind(a.password.map(|p| p.ciphertext))
                        .push_bind(a.password.map(|p| p.mac))
                        .push_bind(a.outgoing_password.map(|p| p.ciphertext))
                        .push_bind(a.outgoing_password.map(|p| p.mac))
                        .push_bind(now)
                        .push_bind(now);
                });
                q.push(on_conflict);
                q.build().execute(&mut **tx).await?;
            }
            super::TxInner::Postgres(tx) => {
                // One array per column rather than a parameter per value: PostgreSQL binds
                // and plans eleven arrays far faster than five thousand scalars.
                let sql = format!(
                    "INSERT INTO{COLUMNS}SELECT u, $1, a, an, dn, un, d, ou, p, pm, op, opm, $2, $2 \
                     FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], \
                     $8::text[], $9::text[], $10::bytea[], $11::bytea[], $12::bytea[], \
                     $13::bytea[]) AS v(u, a, an, dn, un, d, ou, p, pm, op, opm){on_conflict}"
                );
                sqlx::query(&sql)
                    .bind(kind.as_str())
                    .bind(now)
                    .bind(column(accounts, |a| a.user_id))
                    .bind(column(accounts, |a| a.address))
                    .bind(column(accounts, |a| a.address_norm))
                    .bind(column(accounts, |a| a.display_name))
                    .bind(column(accounts, |a| a.username))
                    .bind(column(accounts, |a| a.domain))
                    .bind(column(accounts, |a| a.outgoing_username))
                    .bind(column(accounts, |a| a.password.map(|p| p.ciphertext)))
                    .bind(column(accounts, |a| a.password.map(|p| p.mac)))
                    .bind(column(accounts, |a| {
                        a.outgoing_password.map(|p| p.ciphertext)
                    }))
                    .bind(column(accounts, |a| a.outgoing_password.map(|p| p.mac)))
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }
}

/// One field of every account, as an array parameter.
fn column<'a, T>(accounts: &[AccountWrite<'a>], field: impl Fn(&AccountWrite<'a>) -> T) -> Vec<T> {
    accounts.iter().map(field).collect()
}

/// A stored account with its sealed passwords, as profiles need it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SealedAccount {
    /// `email` or `exchange`.
    pub kind: String,
    /// Address as last imported.
    pub address: String,
    /// Lower-cased address.
    pub address_norm: String,
    /// Email: name shown on sent mail.
    pub display_name: Option<String>,
    /// Email: incoming user name; Exchange: user name.
    pub username: String,
    /// Exchange: domain.
    pub domain: Option<String>,
    /// Email: outgoing user name.
    pub outgoing_username: Option<String>,
    /// Sealed (incoming or Exchange) password.
    pub password: Option<Vec<u8>>,
    /// Sealed outgoing password.
    pub outgoing_password: Option<Vec<u8>>,
}

impl super::Store {
    /// The user with normalised address `email_norm`, and all their accounts in kind and
    /// address order.
    pub async fn user_with_accounts(
        &self,
        email_norm: &str,
    ) -> Result<Option<(super::StoredUser, Vec<SealedAccount>)>, StoreError> {
        const USER: &str =
            "SELECT id, email, email_norm, display_name FROM users WHERE email_norm = $1";
        const ACCOUNTS: &str = "SELECT kind, address, address_norm, display_name, username, \
             domain, outgoing_username, password, outgoing_password FROM email_accounts \
             WHERE user_id = $1 ORDER BY kind, address_norm";
        let user: Option<super::StoredUser> = super::on_pool!(self, pool => {
            sqlx::query_as(USER).bind(email_norm).fetch_optional(pool).await
        })?;
        let Some(user) = user else {
            return Ok(None);
        };
        let accounts = super::on_pool!(self, pool => {
            sqlx::query_as(ACCOUNTS).bind(user.id).fetch_all(pool).await
        })?;
        Ok(Some((user, accounts)))
    }
}

#[derive(sqlx::FromRow)]
struct PageRow {
    id: i64,
    email: String,
    email_norm: String,
    user_display_name: String,
    kind: String,
    address: String,
    address_norm: String,
    display_name: Option<String>,
    username: String,
    domain: Option<String>,
    outgoing_username: Option<String>,
    password: Option<Vec<u8>>,
    outgoing_password: Option<Vec<u8>>,
}

impl super::Store {
    /// One page of the users that have accounts, in address order after the normalised
    /// address `after`, each with all their accounts: one query per page, for rendering
    /// every user's profile.
    pub async fn users_with_accounts_page(
        &self,
        after: Option<&str>,
        users: i64,
    ) -> Result<Vec<(super::StoredUser, Vec<SealedAccount>)>, StoreError> {
        const SQL: &str = "WITH page AS (SELECT id, email, email_norm, display_name FROM users u \
             WHERE email_norm > $1 AND EXISTS (SELECT 1 FROM email_accounts a WHERE a.user_id = u.id) \
             ORDER BY email_norm LIMIT $2) \
             SELECT page.id, page.email, page.email_norm, page.display_name AS user_display_name, \
             a.kind, a.address, a.address_norm, a.display_name, a.username, a.domain, \
             a.outgoing_username, a.password, a.outgoing_password \
             FROM page JOIN email_accounts a ON a.user_id = page.id \
             ORDER BY page.email_norm, a.kind, a.address_norm";
        let rows: Vec<PageRow> = super::on_pool!(self, pool => {
            sqlx::query_as(SQL)
                .bind(after.unwrap_or(""))
                .bind(users)
                .fetch_all(pool)
                .await
        })?;
        let mut page: Vec<(super::StoredUser, Vec<SealedAccount>)> = Vec::new();
        for row in rows {
            if page.last().is_none_or(|(u, _)| u.id != row.id) {
                page.push((
                    super::StoredUser {
                        id: row.id,
                        email: row.email,
                        email_norm: row.email_norm,
                        display_name: row.user_display_name,
                    },
                    Vec::new(),
                ));
            }
            if let Some((_, accounts)) = page.last_mut() {
                accounts.push(SealedAccount {
                    kind: row.kind,
                    address: row.address,
                    address_norm: row.address_norm,
                    display_name: row.display_name,
                    username: row.username,
                    domain: row.domain,
                    outgoing_username: row.outgoing_username,
                    password: row.password,
                    outgoing_password: row.outgoing_password,
                });
            }
        }
        Ok(page)
    }
}
