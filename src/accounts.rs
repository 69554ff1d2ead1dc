//! A user's mail accounts with their passwords opened: what profiles are rendered from. The
//! only place stored passwords are decrypted.

use crate::crypto::{self, CryptoError, Keys, PasswordColumn};
use crate::model::{Account, AccountDetails, AccountKind, User, normalize_email};
use crate::store::{SealedAccount, Store, StoreError};

/// Why a user's accounts could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// No user has that address.
    #[error("no user with email {0}")]
    NoUser(String),
    /// A stored password would not open.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The user with address `email` and all their accounts, passwords in plain text.
pub async fn of_user(
    store: &Store,
    keys: &Keys,
    email: &str,
) -> Result<(User, Vec<Account>), AccountsError> {
    let email_norm = normalize_email(email);
    let (user, sealed) = store
        .user_with_accounts(&email_norm)
        .await?
        .ok_or_else(|| AccountsError::NoUser(email.trim().to_owned()))?;
    let accounts = sealed
        .into_iter()
        .map(|a| open(keys, &email_norm, &user.email, &user.display_name, a))
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
    let open = |sealed: Option<Vec<u8>>, column| {
        sealed
            .map(|s| {
                let aad = crypto::account_aad(kind, user_norm, &a.address_norm, column);
                keys.open(&aad, &s)
            })
            .transpose()
    };
    let details = match kind {
        AccountKind::Email => AccountDetails::Email {
            display_name: a.display_name.clone().unwrap_or_default(),
            incoming_username: a.username.clone(),
            incoming_password: open(a.password.clone(), PasswordColumn::Primary)?,
            outgoing_username: a.outgoing_username.clone().unwrap_or_default(),
            outgoing_password: open(a.outgoing_password.clone(), PasswordColumn::Outgoing)?,
        },
        AccountKind::Exchange => AccountDetails::Exchange {
            username: a.username.clone(),
            domain: a.domain.clone(),
            password: open(a.password.clone(), PasswordColumn::Primary)?,
        },
    };
    Ok(Account {
        user_email: user_email.to_owned(),
        user_display_name: user_display_name.to_owned(),
        address: a.address,
        details,
    })
}
