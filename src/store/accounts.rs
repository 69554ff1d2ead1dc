//! The `email_accounts` table.

use std::collections::HashMap;

use super::{StoreError, Tx};
use crate::model::AccountKind;

/// A stored account as an import compares it: every field, and MACs in place of passwords.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredAccount {
    /// The account's store id.
    pub id: i64,
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

/// An account to insert, or to update in place (matched by its id on SQLite, by user, kind
/// and address on PostgreSQL). A `None` password keeps the stored one.
#[derive(Debug, Clone, Copy)]
pub struct AccountWrite<'a> {
    /// The stored account's id, for an update.
    pub id: Option<i64>,
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
    id: Option<i64>,
    address: Option<String>,
    address_norm: Option<String>,
    display_name: Option<String>,
    username: Option<String>,
    domain: Option<String>,
    outgoing_username: Option<String>,
    password_mac: Option<Vec<u8>>,
    outgoing_password_mac: Option<Vec<u8>>,
}

/// Bytes from the hex SQLite's `hex()` writes into JSON.
pub(super) fn unhex(text: Option<String>) -> Option<Vec<u8>> {
    let text = text?;
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

impl Tx {
    /// On PostgreSQL, the users among `emails_norm` (at most [`super::BATCH`]), keyed by
    /// normalised email, each with their stored accounts of `kind`. One statement per batch
    /// of lines. (SQLite imports read through [`super::SqliteRead`].)
    pub(super) async fn users_with_accounts(
        &mut self,
        kind: AccountKind,
        emails_norm: &[&str],
    ) -> Result<HashMap<String, UserAccounts>, StoreError> {
        let mut users: HashMap<String, UserAccounts> = HashMap::new();
        let super::TxInner::Postgres(tx) = &mut self.inner else {
            return Err(StoreError::Thread(
                "a PostgreSQL look-up on another database".to_owned(),
            ));
        };
        if emails_norm.is_empty() {
            return Ok(users);
        }
        // A user's accounts are found by probing the account key from the user's id, never by
        // a join: a join would let PostgreSQL, planning from statistics older than the import,
        // scan an account table that the import is filling. `OFFSET 0` keeps the accounts a
        // per-user probe rather than something the planner may turn into a scan.
        const SQL: &str = "SELECT u.email_norm, u.id AS user_id, a.id, a.address, \
             a.address_norm, a.display_name, a.username, a.domain, a.outgoing_username, \
             a.password_mac, a.outgoing_password_mac \
             FROM users u LEFT JOIN LATERAL (SELECT * FROM email_accounts a \
             WHERE a.user_id = u.id AND a.kind = $1 OFFSET 0) a ON true \
             WHERE u.email_norm = ANY($2)";
        let rows: Vec<MatchRow> = sqlx::query_as(SQL)
            .bind(kind.as_str())
            .bind(emails_norm)
            .fetch_all(&mut **tx)
            .await?;
        for row in rows {
            let user = users.entry(row.email_norm).or_insert_with(|| UserAccounts {
                user_id: row.user_id,
                accounts: Vec::new(),
            });
            if let (Some(id), Some(address), Some(address_norm), Some(username)) =
                (row.id, row.address, row.address_norm, row.username)
            {
                user.accounts.push(StoredAccount {
                    id,
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
