//! Who may use mdm-mail over HTTP: admins who sign in to the wizard (argon2 password hashes,
//! server-side sessions with a CSRF token each) and API tokens for automation, each with the
//! [`Scopes`] it was made with. Secrets are random, shown once, and stored only as hashes.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::crypto::{hash_token, to_hex};
use crate::model::Scopes;
use crate::store::{Store, StoreError, StoredToken, now_ms};

/// How long a wizard session lasts: a working day.
pub const SESSION_LIFETIME_MS: i64 = 12 * 60 * 60 * 1000;
/// Shortest admin password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest admin or token name accepted.
pub const MAX_NAME_CHARS: usize = 64;
/// What every API token starts with, so that a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "mdmm_";

/// Why an admin, token or session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The name is empty, too long or holds control characters.
    #[error("{what} name {name:?} is not usable: use 1 to {MAX_NAME_CHARS} printable characters")]
    Name {
        /// Admin or token.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// The password is too short.
    #[error("the password is too short: use at least {MIN_PASSWORD_CHARS} characters")]
    WeakPassword,
    /// A token of that name exists.
    #[error("a token called {0:?} already exists; choose another name")]
    TokenExists(String),
    /// Hashing failed (it does not, for valid parameters).
    #[error("cannot hash the password: {0}")]
    Hash(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The hashing thread stopped.
    #[error("the password hashing task stopped")]
    Stopped,
}

/// A new session: the cookie value (shown to the browser only) and its CSRF token.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The cookie value.
    pub token: String,
    /// The CSRF token of the session.
    pub csrf_token: String,
}

/// A signed-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The admin's name.
    pub admin: String,
    /// The CSRF token state-changing requests must carry.
    pub csrf_token: String,
}

/// A fresh random secret, hex.
pub fn random_secret() -> String {
    use rand::RngExt;
    let bytes: [u8; 32] = rand::rng().random();
    to_hex(&bytes)
}

fn check_name(what: &'static str, name: &str) -> Result<(), AuthError> {
    let chars = name.chars().count();
    if chars == 0
        || chars > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
        || name.trim() != name
    {
        return Err(AuthError::Name {
            what,
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Hashes an admin password with argon2id and a random salt (a PHC string).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`; a malformed hash matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Adds the admin `name` with `password`, or sets a new password if they exist, as
/// `actor` (for the audit log); true when added.
pub async fn add_admin(
    store: &Store,
    actor: &str,
    name: &str,
    password: &str,
) -> Result<bool, AuthError> {
    check_name("admin", name)?;
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::WeakPassword);
    }
    let password = password.to_owned();
    // argon2 takes tens of milliseconds of CPU on purpose: off the async threads.
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| AuthError::Stopped)??;
    Ok(store.upsert_admin(name, &hash, actor).await?)
}

/// Signs `name` in if `password` is theirs, starting a session.
pub async fn sign_in(
    store: &Store,
    name: &str,
    password: &str,
) -> Result<Option<NewSession>, AuthError> {
    let admin = store.admin(name).await?;
    let (id, hash) = match &admin {
        Some(admin) => (Some(admin.id), admin.password_hash.clone()),
        // Unknown names cost as much as known ones, so timing tells nothing.
        None => (None, DUMMY_HASH.to_owned()),
    };
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|_| AuthError::Stopped)?;
    let (Some(id), true) = (id, matches) else {
        return Ok(None);
    };
    let session = NewSession {
        token: random_secret(),
        csrf_token: random_secret(),
    };
    let expires_at = now_ms() + SESSION_LIFETIME_MS;
    store
        .insert_session(
            &hash_token(&session.token),
            id,
            &session.csrf_token,
            expires_at,
        )
        .await?;
    Ok(Some(session))
}

/// An argon2id hash of a random string nobody knows, checked for unknown admin names.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$S1Hw2m0m8X0o4u8Kx7j1m3lQ0mOq3mD5Yh0b1oQd8xk";

/// The live session whose cookie is `token`.
pub async fn session(store: &Store, token: &str) -> Result<Option<Session>, AuthError> {
    Ok(store.session(&hash_token(token)).await?.map(|s| Session {
        admin: s.admin,
        csrf_token: s.csrf_token,
    }))
}

/// Ends the session whose cookie is `token`.
pub async fn sign_out(store: &Store, token: &str) -> Result<(), AuthError> {
    Ok(store.delete_session(&hash_token(token)).await?)
}

/// Mints an API token called `name` that may do `scopes`, as `actor`, and returns it; only
/// its hash is stored.
pub async fn create_token(
    store: &Store,
    actor: &str,
    name: &str,
    scopes: Scopes,
) -> Result<String, AuthError> {
    check_name("token", name)?;
    let token = format!("{TOKEN_PREFIX}{}", random_secret());
    if !store
        .insert_token(name, scopes, &hash_token(&token), actor)
        .await?
    {
        return Err(AuthError::TokenExists(name.to_owned()));
    }
    Ok(token)
}

/// How stale a token's recorded last use may get before a request records it again: at
/// most one write per token per minute, however busy the API.
const TOKEN_USE_RESOLUTION_MS: i64 = 60_000;

/// The API token `token`, if it is one, recording when it was used.
pub async fn token(store: &Store, token: &str) -> Result<Option<StoredToken>, AuthError> {
    let hash = hash_token(token);
    let Some(found) = store.token_by_hash(&hash).await? else {
        return Ok(None);
    };
    let now = now_ms();
    if found
        .last_used_at
        .is_none_or(|at| now - at >= TOKEN_USE_RESOLUTION_MS)
    {
        // Off the request's path: on SQLite the write may wait behind an import's write lock,
        // and the request need not.
        let store = store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_token(&hash, now).await {
                tracing::debug!(error = %e, "cannot record an API token's use");
            }
        });
    }
    Ok(Some(found))
}

/// Deletes the API token called `name`, as `actor`: requests bearing it are refused from
/// now on. False when there is no such token.
pub async fn revoke_token(store: &Store, actor: &str, name: &str) -> Result<bool, AuthError> {
    Ok(store.delete_token(name, actor).await?)
}

/// Deletes the admin called `name`, as `actor`, and ends their sessions. False when there
/// is none.
pub async fn remove_admin(store: &Store, actor: &str, name: &str) -> Result<bool, AuthError> {
    Ok(store.delete_admin(name, actor).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_another_does_not() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn the_dummy_hash_parses_so_unknown_names_cost_a_real_verification() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn names_must_be_printable_and_short() {
        assert!(check_name("admin", "ops").is_ok());
        assert!(check_name("admin", "").is_err());
        assert!(check_name("admin", " ops").is_err());
        assert!(check_name("admin", "a\nb").is_err());
        assert!(check_name("admin", &"x".repeat(65)).is_err());
    }
}
