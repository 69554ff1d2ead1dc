//! A user's mail accounts with their passwords opened: what profiles are rendered from. The
//! only place stored passwords are decrypted.

use crate::crypto::{self, CryptoError, Keys, PasswordColumn};
use crate::model::{Account, AccountDetails, AccountKind, User, normalize_email};
use crate::store::{SealedAccount, Store, StoreError, StoredUser};

/// Why a user's accounts could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// No user has that address.
    #[error("no user with email {0}")]
    NoUser(String),
    /// A stored password would not open.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The key for stored passwords cannot be had.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A user and their accounts, passwords in plain text.
pub type UserAccounts = (User, Vec<Account>);

/// The user with address `email` and all their accounts.
pub async fn of_user(
    store: &Store,
    keys: &Keys,
    email: &str,
) -> Result<UserAccounts, AccountsError> {
    let (user, sealed) = store
        .user_with_accounts(&normalize_email(email))
        .await?
        .ok_or_else(|| AccountsError::NoUser(email.trim().to_owned()))?;
    Ok(open_user(keys, user, sealed)?)
}

/// One page of the users that have accounts, in address order after the user whose
/// address is `after`, with their accounts; an empty page is the end.
pub async fn page(
    store: &Store,
    keys: &Keys,
    after: Option<&str>,
    users: i64,
) -> Result<Vec<UserAccounts>, AccountsError> {
    let after = after.map(normalize_email);
    store
        .users_with_accounts_page(after.as_deref(), users)
        .await?
        .into_iter()
        .map(|(user, sealed)| Ok(open_user(keys, user, sealed)?))
        .collect()
}

/// A stored user and their sealed accounts, passwords opened.
pub fn open_user(
    keys: &Keys,
    user: StoredUser,
    sealed: Vec<SealedAccount>,
) -> Result<UserAccounts, CryptoError> {
    let accounts = sealed
        .into_iter()
        .map(|a| open(keys, &user.email_norm, &user.email, &user.display_name, a))
        .collect::<Result<_, _>>()?;
    Ok((
        User {
            id: user.id,
            email: user.email,
            display_name: user.display_name,
        },
        accounts,
    ))
}

fn open(
    keys: &Keys,
    user_norm: &str,
    user_email: &str,
    user_display_name: &str,
    a: SealedAccount,
) -> Result<Account, CryptoError> {
    let kind = if a.kind == AccountKind::Exchange.as_str() {
        AccountKind::Exchange
    } else {
        AccountKind::Email
    };
    let address_norm = &a.address_norm;
    let open = |sealed: Option<Vec<u8>>, column| {
        sealed
            .map(|s| {
                keys.open(
                    &crypto::account_aad(kind, user_norm, address_norm, column),
                    &s,
                )
            })
            .transpose()
    };
    let details = match kind {
        AccountKind::Email => AccountDetails::Email {
            display_name: a.display_name.unwrap_or_default(),
            incoming_username: a.username,
            incoming_password: open(a.password, PasswordColumn::Primary)?,
            outgoing_username: a.outgoing_username.unwrap_or_default(),
            outgoing_password: open(a.outgoing_password, PasswordColumn::Outgoing)?,
        },
        AccountKind::Exchange => AccountDetails::Exchange {
            username: a.username,
            domain: a.domain,
            password: open(a.password, PasswordColumn::Primary)?,
        },
    };
    Ok(Account {
        user_email: user_email.to_owned(),
        user_display_name: user_display_name.to_owned(),
        address: a.address,
        details,
    })
}

/// Removes the `kind` account at `address` of the user with address `user_email`, recording
/// `actor` in the audit log; returns whether there was one. The user's profile content
/// changes, so a push reconcile should follow: it removes the profile from devices where
/// no account is left, and re-installs it without this account elsewhere.
pub async fn delete(
    store: &Store,
    actor: &str,
    user_email: &str,
    kind: AccountKind,
    address: &str,
) -> Result<bool, AccountsError> {
    let user_norm = normalize_email(user_email);
    let address_norm = normalize_email(address);
    let mut tx = store.begin().await?;
    let deleted = tx
        .delete_account(&user_norm, kind.as_str(), &address_norm)
        .await?;
    if deleted {
        tx.audit(
            actor,
            "account.remove",
            &user_norm,
            &serde_json::json!({ "type": kind, "address": address_norm }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(deleted)
}
