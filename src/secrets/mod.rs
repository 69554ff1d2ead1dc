//! The key that seals stored passwords: where it is looked for, how it is created, and the key
//! check that lets a store open only with the key its passwords were sealed with.
//!
//! The 32-byte master key comes from `MDM_MAIL_SECRET_KEY` (base64 or hex), else from the file
//! `MDM_MAIL_SECRET_KEY_FILE` (or `secret_key_file` in the config) names, else, with SQLite,
//! from the key file beside the database, which is created the first time a password is to be
//! sealed. PostgreSQL deployments must supply the key: several servers share the database, so
//! no one of them may invent it.
//!
//! The store records the key's identifier (never the key) the first time it has a key. From
//! then on every process checks its key against that record before it reads or writes a
//! sealed password, and refuses a missing or different key rather than sealing new passwords
//! under it. Keys are looked up afresh on every use, so a server started before any key
//! existed uses the one the first import creates.

mod rotate;

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::crypto::{self, CryptoError, Keys, PasswordColumn};
use crate::model::{AccountKind, Secret};
use crate::store::{SealedCounts, SealedRow, Store, StoreError};

pub use rotate::{NEW_KEY_ENV, NewKey, Rotated, rotate};

/// Where the master key is to be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The text of `MDM_MAIL_SECRET_KEY`.
    Env(String),
    /// A key file that must exist (`MDM_MAIL_SECRET_KEY_FILE` or `secret_key_file`).
    File(PathBuf),
    /// The key file beside a SQLite database, created when the first password is sealed.
    CreateBeside(PathBuf),
    /// Nothing configured and nowhere to create a key (PostgreSQL).
    Missing,
}

/// Why the key for stored passwords cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The store has sealed passwords, and no key was found.
    #[error("{expected}, but no key was found: {looked}")]
    NotFound {
        /// Which key the store expects.
        expected: Expected,
        /// Every place looked, and what was there.
        looked: String,
    },
    /// The configured key is not the one the store's passwords are sealed with.
    #[error(
        "{expected}, but {found_in} holds key {found}: configure the key the store was sealed with (looked at {looked}), or move the store to a new key with `mdm-mail secrets rotate`"
    )]
    Wrong {
        /// Which key the store expects.
        expected: Expected,
        /// The identifier of the key found.
        found: String,
        /// Where it was found.
        found_in: String,
        /// Every place looked.
        looked: String,
    },
    /// No key is configured and none may be created (PostgreSQL).
    #[error(
        "no secret key: set MDM_MAIL_SECRET_KEY to 32 random bytes in base64 (for example the output of `openssl rand -base64 32`), or MDM_MAIL_SECRET_KEY_FILE (secret_key_file in the config) to a file holding them; every server sharing the database needs the same key"
    )]
    Missing,
    /// A key file others may read.
    #[error(
        "key file {path} is readable by group or others (mode {mode:04o}); it guards every stored password: run `chmod 600 {path}`"
    )]
    Unprotected {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file could not be read or written.
    #[error("key file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An interrupted rotation committed, but its new key file was not put in place.
    #[error(
        "{expected}, which an interrupted `mdm-mail secrets rotate` left in {pending}: run `mdm-mail secrets rotate` again to put it in place"
    )]
    Interrupted {
        /// Which key the store expects.
        expected: Expected,
        /// The file holding it.
        pending: String,
    },
    /// A rotation on a store that has nothing sealed and no key recorded.
    #[error(
        "this store holds no sealed password and records no key yet, so there is nothing to rotate: configure the key it is to use (MDM_MAIL_SECRET_KEY or MDM_MAIL_SECRET_KEY_FILE) and the first import records it"
    )]
    NothingSealed,
    /// A rotation with no new key where mdm-mail may not create one.
    #[error(
        "no new key: the store's key comes from {current}, which mdm-mail does not manage; give the new key with --new-key-file FILE or MDM_MAIL_NEW_SECRET_KEY (for example `openssl rand -base64 32`)"
    )]
    NoNewKey {
        /// Where the current key comes from.
        current: String,
    },
    /// A rotation to the key the store already has.
    #[error(
        "the new key ({origin}) is key {key}, the one the store already uses: give a different key"
    )]
    SameKey {
        /// The key's identifier.
        key: String,
        /// Where the new key came from.
        origin: String,
    },
    /// A stored password that the store's own key does not open.
    #[error(
        "the stored password of account {account} (user {user}) does not open with key {key}, which the store records: it was altered or copied from another row; nothing was changed"
    )]
    Unopenable {
        /// The owner's normalised email.
        user: String,
        /// The account's normalised address.
        account: String,
        /// The key tried.
        key: String,
    },
    /// The key moved while this process was using it.
    #[error(
        "the store was moved to another key (`mdm-mail secrets rotate`) while this ran; nothing was written: run it again with the store's new key"
    )]
    Rotated,
    /// The key text is not a key.
    #[error(transparent)]
    Key(#[from] CryptoError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which key a store expects, as its messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// The key whose identifier the store recorded.
    Recorded(String),
    /// A store sealed before key checks were recorded: the key that opens its passwords.
    Unrecorded,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Recorded(id) => write!(f, "this store's passwords are sealed with key {id}"),
            Expected::Unrecorded => f.write_str(
                "this store holds passwords sealed before key checks were recorded, with a key that must open them",
            ),
        }
    }
}

impl KeySource {
    /// The key file that goes with a SQLite database file: same folder and name, `.key`.
    pub fn beside(database: &Path) -> PathBuf {
        database.with_extension("key")
    }

    /// Where the key was taken from, for messages.
    pub fn origin(&self) -> String {
        match self {
            KeySource::Env(_) => "MDM_MAIL_SECRET_KEY".to_owned(),
            KeySource::File(path) | KeySource::CreateBeside(path) => {
                format!("key file {}", path.display())
            }
            KeySource::Missing => "nothing".to_owned(),
        }
    }

    /// Every place looked for a key, in the order they win, with what was there.
    fn looked(&self) -> String {
        match self {
            KeySource::Env(_) => "MDM_MAIL_SECRET_KEY (set; it wins over MDM_MAIL_SECRET_KEY_FILE and the key file beside the database)".to_owned(),
            KeySource::File(path) => format!(
                "MDM_MAIL_SECRET_KEY (not set), MDM_MAIL_SECRET_KEY_FILE or secret_key_file ({})",
                path.display()
            ),
            KeySource::CreateBeside(path) => format!(
                "MDM_MAIL_SECRET_KEY (not set), MDM_MAIL_SECRET_KEY_FILE and secret_key_file (not set), the key file beside the database ({}{})",
                path.display(),
                if path.exists() { "" } else { ": no such file" }
            ),
            KeySource::Missing => {
                "MDM_MAIL_SECRET_KEY and MDM_MAIL_SECRET_KEY_FILE (neither set; PostgreSQL has no key file of its own)".to_owned()
            }
        }
    }

    /// The configured key, if there is one; creates nothing.
    pub fn read(&self) -> Result<Option<Keys>, SecretsError> {
        let master = match self {
            KeySource::Env(text) => crypto::parse_key(text, "MDM_MAIL_SECRET_KEY")?,
            KeySource::File(path) => match read_key_file(path)? {
                Some(master) => master,
                None => {
                    return Err(file_error(path)(std::io::Error::from(
                        std::io::ErrorKind::NotFound,
                    )));
                }
            },
            KeySource::CreateBeside(path) => match read_key_file(path)? {
                Some(master) => master,
                None => return Ok(None),
            },
            KeySource::Missing => return Ok(None),
        };
        Ok(Some(Keys::from_master(&master)))
    }

    /// The configured key; a missing key file beside a SQLite database is created, and a
    /// file another process created meanwhile is read instead.
    fn read_or_create(&self) -> Result<Keys, SecretsError> {
        match (self.read()?, self) {
            (Some(keys), _) => Ok(keys),
            (None, KeySource::CreateBeside(path)) => {
                let (master, keys) = Keys::generate();
                if write_key_file(path, &master)? {
                    tracing::info!(path = %path.display(), key = keys.id(), "created a new secret key file; back it up with the database");
                    Ok(keys)
                } else {
                    self.read()?.ok_or(SecretsError::Missing)
                }
            }
            (None, _) => Err(SecretsError::Missing),
        }
    }
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> SecretsError {
    let path = path.display().to_string();
    move |source| SecretsError::File { path, source }
}

/// The key in `path`, or `None` when there is no such file. A file that group or others can
/// read is refused: whoever can read it can read every stored password.
fn read_key_file(path: &Path) -> Result<Option<[u8; 32]>, SecretsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_error(path)(e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(file_error(path))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(SecretsError::Unprotected {
                path: path.display().to_string(),
                mode: mode & 0o7777,
            });
        }
    }
    Ok(Some(crypto::parse_key(&text, &path.display().to_string())?))
}

/// Writes `master` to a new file at `path`, readable and writable by its owner only whatever
/// the umask. The key is written in full to a file of its own first and then linked into
/// place, which fails if `path` exists: a racing process never sees half a key, and never
/// replaces one. False when another process's key file was there first.
pub fn write_key_file(path: &Path, master: &[u8; 32]) -> Result<bool, SecretsError> {
    let text = format!(
        "{}\n",
        base64::engine::general_purpose::STANDARD.encode(master)
    );
    let partial = path.with_extension(format!("key.{}.partial", std::process::id()));
    let written =
        write_private(&partial, text.as_bytes()).and_then(|()| std::fs::hard_link(&partial, path));
    let _ = std::fs::remove_file(&partial);
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(file_error(path)(e)),
    }
}

/// Creates `path` (which must not exist) holding `bytes`, mode 0600 whatever the umask, and
/// makes it durable.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()
}

/// Writes `bytes` to `path`, replacing it, as a file only its owner may read whatever the
/// umask: for anything that holds passwords. Written in full beside it first, so `path`
/// is never seen half-written.
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().map_or_else(
        || std::ffi::OsString::from("file"),
        std::ffi::OsStr::to_os_string,
    );
    let mut partial_name = std::ffi::OsString::from(".");
    partial_name.push(&name);
    partial_name.push(".partial");
    let partial = path.with_file_name(partial_name);
    let _ = std::fs::remove_file(&partial);
    let written = write_private(&partial, bytes).and_then(|()| std::fs::rename(&partial, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

/// The key to open the store's passwords with, checked against the store's key check. A
/// store with no key and no sealed password gets a throwaway key: there is nothing to open,
/// and looking must create nothing (a preview writes nothing, not even a key file).
pub async fn for_reading(store: &Store, source: &KeySource) -> Result<Keys, SecretsError> {
    let recorded = store.key_check().await?;
    match (recorded, source.read()?) {
        (Some(id), keys) => verify(source, &id, keys),
        (None, Some(keys)) => {
            opens_what_is_stored(store, source, &keys).await?;
            Ok(keys)
        }
        (None, None) if store.sealed_sample().await?.is_some() => Err(SecretsError::NotFound {
            expected: Expected::Unrecorded,
            looked: source.looked(),
        }),
        (None, None) => Ok(Keys::ephemeral()),
    }
}

/// What `secrets status` reports: the store's key, the configured one, and whether the
/// configured key opens the store.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    /// The key the store records, once it has one.
    pub recorded: Option<String>,
    /// The configured key, when one was found.
    pub configured: Option<String>,
    /// Where the configured key was looked for, and what was there.
    pub looked: String,
    /// What the store holds sealed.
    pub sealed: SealedCounts,
    /// Why the configured key cannot open the store's passwords, when it cannot.
    pub problem: Option<String>,
}

/// The store's key check against the configured key.
pub async fn status(store: &Store, source: &KeySource) -> Result<Status, SecretsError> {
    let problem = match for_reading(store, source).await {
        Ok(_) => None,
        Err(SecretsError::Store(e)) => return Err(e.into()),
        Err(e) => Some(e.to_string()),
    };
    Ok(Status {
        recorded: store.key_check().await?,
        configured: source.read().ok().flatten().map(|k| k.id().to_owned()),
        looked: source.looked(),
        sealed: store.sealed_counts().await?,
        problem,
    })
}

/// The key to seal new passwords with. A store without a key check gets one now, recording
/// the configured key, or (SQLite) a key file created for it; all under one transaction,
/// which on SQLite holds the write lock, so concurrent first imports agree on one key.
pub async fn for_sealing(store: &Store, source: &KeySource) -> Result<Keys, SecretsError> {
    // Checked first without the write lock, which a running import may hold for minutes.
    if let Some(id) = store.key_check().await? {
        return verify(source, &id, source.read()?);
    }
    let mut tx = store.begin().await?;
    if let Some(id) = tx.key_check().await? {
        tx.rollback().await?;
        return verify(source, &id, source.read()?);
    }
    let keys = source.read_or_create()?;
    opens_what_is_stored(store, source, &keys).await?;
    let recorded = tx.record_key_check(keys.id()).await?;
    tx.commit().await?;
    verify(source, &recorded, Some(keys))
}

/// `keys` when they are the key `recorded` names.
fn verify(source: &KeySource, recorded: &str, keys: Option<Keys>) -> Result<Keys, SecretsError> {
    let expected = Expected::Recorded(recorded.to_owned());
    if keys.as_ref().is_none_or(|k| k.id() != recorded)
        && let KeySource::CreateBeside(path) = source
    {
        let pending = rotate::pending_file(path);
        if let Ok(Some(master)) = read_key_file(&pending)
            && Keys::from_master(&master).id() == recorded
        {
            return Err(SecretsError::Interrupted {
                expected,
                pending: pending.display().to_string(),
            });
        }
    }
    match keys {
        Some(keys) if keys.id() == recorded => Ok(keys),
        Some(keys) => Err(SecretsError::Wrong {
            expected,
            found: keys.id().to_owned(),
            found_in: source.origin(),
            looked: source.looked(),
        }),
        None => Err(SecretsError::NotFound {
            expected,
            looked: source.looked(),
        }),
    }
}

/// For a store whose key was never recorded: `keys` must open a password it holds.
async fn opens_what_is_stored(
    store: &Store,
    source: &KeySource,
    keys: &Keys,
) -> Result<(), SecretsError> {
    let Some(sample) = store.sealed_sample().await? else {
        return Ok(());
    };
    match open_row(keys, &sample) {
        Ok(_) => Ok(()),
        Err(_) => Err(SecretsError::Wrong {
            expected: Expected::Unrecorded,
            found: keys.id().to_owned(),
            found_in: source.origin(),
            looked: source.looked(),
        }),
    }
}

/// The kind of a stored account, as the store names it.
fn stored_kind(kind: &str) -> AccountKind {
    if kind == AccountKind::Exchange.as_str() {
        AccountKind::Exchange
    } else {
        AccountKind::Email
    }
}

/// A stored password opened: the binding it was sealed with (its account and column), and
/// its plain text.
type Opened = (Vec<u8>, Secret);

/// The plain passwords of `row`, primary then outgoing, each opened with `keys`.
fn open_row(keys: &Keys, row: &SealedRow) -> Result<[Option<Opened>; 2], CryptoError> {
    let kind = stored_kind(&row.kind);
    let open = |column, sealed: &Option<Vec<u8>>| -> Result<_, CryptoError> {
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let aad = crypto::account_aad(kind, &row.user_email_norm, &row.address_norm, column);
        let secret = keys.open(&aad, sealed)?;
        Ok(Some((aad, secret)))
    };
    Ok([
        open(PasswordColumn::Primary, &row.password)?,
        open(PasswordColumn::Outgoing, &row.outgoing_password)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_created_key_file_is_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mdm-mail.key");
        let source = KeySource::CreateBeside(path.clone());
        assert!(source.read().unwrap().is_none());

        let first = source.read_or_create().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = source.read_or_create().unwrap();
        assert_eq!(first.id(), second.id());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_key_file(&path, &[1; 32]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = KeySource::File(path.clone())
            .read()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("chmod 600 {}", path.display())),
            "{err}"
        );
    }

    #[test]
    fn a_second_key_file_never_replaces_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        assert!(write_key_file(&path, &[1; 32]).unwrap());
        assert!(!write_key_file(&path, &[2; 32]).unwrap());
        let kept = KeySource::File(path).read().unwrap().unwrap();
        assert_eq!(kept.id(), Keys::from_master(&[1; 32]).id());
    }

    #[test]
    fn postgres_without_a_key_is_an_error_only_when_one_is_needed() {
        assert!(KeySource::Missing.read().unwrap().is_none());
        assert!(matches!(
            KeySource::Missing.read_or_create(),
            Err(SecretsError::Missing)
        ));
    }
}
