//! Who may use mdm-mail over HTTP: admins who sign in to the wizard (argon2 password hashes,
//! server-side sessions with a CSRF token each) and API tokens for automation, each with the
//! [`Scopes`] it was made with. Secrets are random, shown once, and stored only as hashes.

use std::net::{IpAddr, Ipv6Addr};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::crypto::{hash_token, to_hex};
use crate::model::Scopes;
use crate::store::{
    AdminSet, AttemptCount, Counted, Counter, Store, StoreError, StoredToken, now_ms,
};

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

/// Adds the admin `name` with `password`, or sets a new password if they exist and ends
/// every session they had, as `actor` (for the audit log).
pub async fn add_admin(
    store: &Store,
    actor: &str,
    name: &str,
    password: &str,
) -> Result<AdminSet, AuthError> {
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

/// How failed sign-ins slow the next ones (`[sign_in]` in the config file). Failures are
/// counted per admin name, from anywhere, and per client address, for any name: from the
/// last free failure on, each one makes the next attempt on that counter wait twice as long
/// as the one before (`first_wait_seconds`, then double, …), up to its longest wait. The
/// name's longest wait is short on purpose: it is what someone guessing at an admin's name
/// costs that admin, while the guesser's own address waits much longer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Throttle {
    /// Failures from one client address heard without waiting; the attempt after the last
    /// of them waits.
    pub free_failures_per_address: u32,
    /// Failures for one admin name, from anywhere, heard without waiting.
    pub free_failures_per_name: u32,
    /// The wait the first failure past the free ones sets, in seconds; each further one
    /// doubles it.
    pub first_wait_seconds: u64,
    /// The longest one address is made to wait, in seconds.
    pub max_wait_per_address_seconds: u64,
    /// The longest attempts on one name are made to wait, in seconds.
    pub max_wait_per_name_seconds: u64,
    /// Reverse proxies in front of `serve`: a request from one of them is counted by the
    /// client its `X-Forwarded-For` names, not by the proxy. Empty, the header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle {
            free_failures_per_address: 5,
            free_failures_per_name: 10,
            first_wait_seconds: 1,
            max_wait_per_address_seconds: 15 * 60,
            max_wait_per_name_seconds: 60,
            trusted_proxies: Vec::new(),
        }
    }
}

/// The wait a counter's `failures`-th failure in a row sets, in milliseconds: none before
/// the `free`-th, then `first_seconds` doubling per failure, at most `max_seconds`.
pub fn wait_ms(failures: i64, free: u32, first_seconds: u64, max_seconds: u64) -> i64 {
    let ms = |seconds: u64| i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let beyond = failures.saturating_sub(i64::from(free));
    if beyond < 0 {
        return 0;
    }
    // Past 2^62 every wait is over any cap; stop doubling there rather than overflow.
    ms(first_seconds)
        .saturating_mul(1 << beyond.min(62))
        .min(ms(max_seconds))
}

/// How long a counter's failures are remembered after its last one: an address or a name
/// that has not failed for an hour starts afresh.
pub const FORGET_FAILURES_MS: i64 = 60 * 60 * 1000;

/// What a sign-in attempt came to.
#[derive(Debug, Clone)]
pub enum SignIn {
    /// The password was right: a new session.
    Session(NewSession),
    /// The name or the password was wrong.
    Refused,
    /// Too many recent failures for this name or from this address: the password was not
    /// even checked. Try again after this many seconds.
    Throttled {
        /// Seconds until the next attempt is heard.
        retry_after_s: u64,
    },
}

/// The name a failure is counted and audited under. Names longer than any admin's are cut
/// there: they can only be wrong, and must not grow the table or the log.
fn counted_name(name: &str) -> String {
    name.chars().take(MAX_NAME_CHARS + 1).collect()
}

/// The address a failure from `client` is counted under. An IPv6 client is counted by its
/// /64, the block one site or household is given, so that the addresses it may pick from
/// do not each get their own free failures.
pub fn counted_address(client: IpAddr) -> String {
    match client.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
    }
}

/// Signs `name` in from `client` if `password` is theirs, starting a session, unless
/// `throttle` says recent failures for the name or from the address make this attempt
/// wait. A wrong name or password counts against both and is audited; a right one clears
/// the name's failures but only gives the address back this attempt (clearing it would let
/// one valid account buy an address fresh guesses at every other).
pub async fn sign_in(
    store: &Store,
    throttle: &Throttle,
    client: IpAddr,
    name: &str,
    password: &str,
) -> Result<SignIn, AuthError> {
    let counted_name = counted_name(name);
    let address = counted_address(client);
    let name_key = format!("name:{counted_name}");
    let address_key = format!("address:{address}");
    let name_wait = |failures| {
        wait_ms(
            failures,
            throttle.free_failures_per_name,
            throttle.first_wait_seconds,
            throttle.max_wait_per_name_seconds,
        )
    };
    let address_wait = |failures| {
        wait_ms(
            failures,
            throttle.free_failures_per_address,
            throttle.first_wait_seconds,
            throttle.max_wait_per_address_seconds,
        )
    };
    let counters: [Counter<'_>; 2] = [(&name_key, &name_wait), (&address_key, &address_wait)];
    let now = now_ms();
    // Counted before any argon2 work, so hammering a throttled name costs the server a
    // lookup and nothing more.
    let counted = match store
        .count_sign_in_attempt(&counters, now - FORGET_FAILURES_MS)
        .await?
    {
        AttemptCount::Counted(counted) => counted,
        AttemptCount::Waiting { until } => {
            let retry_after_s = u64::try_from((until - now + 999) / 1000).unwrap_or(1);
            return Ok(SignIn::Throttled { retry_after_s });
        }
    };
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
        store
            .audit_sign_in_failure(&format!("client:{address}"), &counted_name, &counted)
            .await?;
        return Ok(SignIn::Refused);
    };
    let address_count: Vec<&Counted> = counted.iter().filter(|c| c.key == address_key).collect();
    store.give_back_sign_in(&name_key, &address_count).await?;
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
    Ok(SignIn::Session(session))
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
    fn the_wait_doubles_past_the_free_failures_up_to_the_longest() {
        let waits: Vec<i64> = (1..=12).map(|n| wait_ms(n, 5, 1, 60)).collect();
        assert_eq!(
            waits,
            [
                0, 0, 0, 0, 1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000
            ]
        );
        assert_eq!(wait_ms(i64::MAX, 5, 1, 900), 900_000);
        assert_eq!(wait_ms(6, 5, u64::MAX, 900), 900_000);
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_and_a_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(counted_address(a), "2001:db8:1:2::/64");
        assert_eq!(counted_address(a), counted_address(b));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(counted_address(mapped), "192.0.2.7");
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
