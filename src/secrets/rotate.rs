//! Moving a store to a new key: every stored password opened with the old key and sealed
//! with the new one, with fresh MACs, and the key check moved, in one transaction, so that an
//! interruption leaves the store as it was. With the key file beside a SQLite database the
//! new key is written beside it first (`*.key.new`) and put in place once the transaction has
//! committed; the one step that can be interrupted after the commit, the rename, is finished
//! by running the rotation again.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{KeySource, SecretsError, file_error, for_reading, open_row, read_key_file};
use crate::crypto::{Keys, MAC_LEN};
use crate::store::{Resealed, SealedCounts, SealedRow, Store};

/// Accounts read, resealed and written at a time.
const PAGE: i64 = 2000;

/// Where a rotation's new key comes from.
pub enum NewKey {
    /// A key the admin gave, and where it was found (for messages).
    Given {
        /// The 32-byte master key.
        master: [u8; 32],
        /// `MDM_MAIL_NEW_SECRET_KEY` or the file it was read from.
        origin: String,
    },
    /// A new random key: only where mdm-mail keeps the key file itself.
    Generate,
}

/// The variable a rotation's new key may be given in.
pub const NEW_KEY_ENV: &str = "MDM_MAIL_NEW_SECRET_KEY";

impl NewKey {
    /// The key in `path`, which like every key file must be private to its owner.
    pub fn from_file(path: &Path) -> Result<NewKey, SecretsError> {
        match read_key_file(path)? {
            Some(master) => Ok(NewKey::Given {
                master,
                origin: format!("key file {}", path.display()),
            }),
            None => Err(file_error(path)(std::io::Error::from(
                std::io::ErrorKind::NotFound,
            ))),
        }
    }

    /// The key written in `text`, the value of [`NEW_KEY_ENV`].
    pub fn from_env_text(text: &str) -> Result<NewKey, SecretsError> {
        Ok(NewKey::Given {
            master: crate::crypto::parse_key(text, NEW_KEY_ENV)?,
            origin: NEW_KEY_ENV.to_owned(),
        })
    }
}

/// What a rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct Rotated {
    /// The key the passwords were sealed with; `None` for a store that never recorded it.
    pub from: Option<String>,
    /// The key they are sealed with now.
    pub to: String,
    /// How many accounts and passwords were resealed.
    pub resealed: SealedCounts,
    /// The key file that now holds the new key, when mdm-mail keeps it (SQLite); otherwise
    /// the admin must configure the new key wherever the old one was.
    pub key_file: Option<PathBuf>,
    /// Where the old key file was moved, to open backups taken before the rotation.
    pub retired_key_file: Option<PathBuf>,
    /// True when this run only finished the file swap of a rotation interrupted after its
    /// commit.
    pub finished_interrupted: bool,
}

/// The file a rotation writes the new key to before it commits.
pub(super) fn pending_file(key_file: &Path) -> PathBuf {
    key_file.with_extension("key.new")
}

fn retired_file(key_file: &Path, key_id: &str) -> PathBuf {
    key_file.with_extension(format!("key.{key_id}.retired"))
}

/// Re-seals every stored password of `store` from the configured key (`source`, which must
/// be the one the store records) to `new`, and records the new key.
pub async fn rotate(
    store: &Store,
    source: &KeySource,
    new: NewKey,
    actor: &str,
) -> Result<Rotated, SecretsError> {
    let key_file = match source {
        KeySource::CreateBeside(path) => Some(path.as_path()),
        _ => None,
    };
    let recorded = store.key_check().await?;
    if let Some(key_file) = key_file
        && let Some(done) = finish_interrupted(key_file, recorded.as_deref())?
    {
        return Ok(done);
    }
    if recorded.is_none() && store.sealed_sample().await?.is_none() {
        return Err(SecretsError::NothingSealed);
    }
    let old = for_reading(store, source).await?;
    let (master, new_origin) = match new {
        NewKey::Given { master, origin } => (master, origin),
        NewKey::Generate if key_file.is_some() => (Keys::generate().0, "a new random key".into()),
        NewKey::Generate => {
            return Err(SecretsError::NoNewKey {
                current: source.origin(),
            });
        }
    };
    let new = Keys::from_master(&master);
    if new.id() == old.id() {
        return Err(SecretsError::SameKey {
            key: new.id().to_owned(),
            origin: new_origin,
        });
    }
    if let Some(key_file) = key_file {
        let pending = pending_file(key_file);
        if !super::write_key_file(&pending, &master)? {
            return Err(file_error(&pending)(std::io::Error::from(
                std::io::ErrorKind::AlreadyExists,
            )));
        }
    }
    let resealed = match reseal_all(store, &old, &new, recorded.as_deref(), actor).await {
        Ok(counts) => counts,
        Err(e) => {
            if let Some(key_file) = key_file {
                let _ = std::fs::remove_file(pending_file(key_file));
            }
            return Err(e);
        }
    };
    tracing::info!(
        from = old.id(),
        to = new.id(),
        accounts = resealed.accounts,
        "secret key rotated"
    );
    let mut rotated = Rotated {
        from: recorded,
        to: new.id().to_owned(),
        resealed,
        key_file: None,
        retired_key_file: None,
        finished_interrupted: false,
    };
    if let Some(key_file) = key_file {
        rotated.retired_key_file = swap_files(key_file, old.id())?;
        rotated.key_file = Some(key_file.to_owned());
    }
    Ok(rotated)
}

/// The one transaction of a rotation. It holds the key check exclusively from its start, so
/// an import that sealed passwords under the old key commits before it, and one that starts
/// meanwhile finds the key moved and writes nothing.
async fn reseal_all(
    store: &Store,
    old: &Keys,
    new: &Keys,
    recorded: Option<&str>,
    actor: &str,
) -> Result<SealedCounts, SecretsError> {
    let mut tx = store.begin().await?;
    if tx.hold_key_check(true).await?.as_deref() != recorded {
        tx.rollback().await?;
        return Err(SecretsError::Rotated);
    }
    let mut counts = SealedCounts::default();
    let mut after = i64::MIN;
    // Each page is opened and sealed on a thread of its own while the page before it is
    // written: the cryptography and the database each keep a core busy.
    let mut sealing: Option<tokio::task::JoinHandle<Result<Vec<Resealed>, SecretsError>>> = None;
    loop {
        let page = tx.sealed_page(after, PAGE).await?;
        let next = page.last().map(|last| last.id).map(|last| {
            after = last;
            let (old, new) = (old.clone(), new.clone());
            tokio::task::spawn_blocking(move || reseal_page(&old, &new, &page))
        });
        if let Some(sealed) = sealing.take() {
            let resealed = sealed
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
            counts.accounts += resealed.len() as i64;
            counts.passwords += resealed
                .iter()
                .map(|r| i64::from(r.password.is_some()) + i64::from(r.outgoing_password.is_some()))
                .sum::<i64>();
            tx.write_resealed(&resealed).await?;
        }
        match next {
            Some(next) => sealing = Some(next),
            None => break,
        }
    }
    tx.replace_key_check(new.id()).await?;
    tx.audit(
        actor,
        "secrets.rotate",
        new.id(),
        &serde_json::json!({ "from": old.id(), "to": new.id(), "resealed": counts }),
    )
    .await?;
    tx.commit().await?;
    Ok(counts)
}

fn reseal_page(old: &Keys, new: &Keys, page: &[SealedRow]) -> Result<Vec<Resealed>, SecretsError> {
    page.iter()
        .map(|row| {
            let [password, outgoing] =
                open_row(old, row).map_err(|_| SecretsError::Unopenable {
                    user: row.user_email_norm.clone(),
                    account: row.address_norm.clone(),
                    key: old.id().to_owned(),
                })?;
            let seal = |opened: Option<super::Opened>| {
                opened.map(|(aad, secret)| {
                    let mac: [u8; MAC_LEN] = new.mac(&aad, secret.expose());
                    (new.seal(&aad, secret.expose()), mac.to_vec())
                })
            };
            Ok(Resealed {
                id: row.id,
                password: seal(password),
                outgoing_password: seal(outgoing),
            })
        })
        .collect()
}

/// After a rotation that committed but stopped before its files were swapped, the swap;
/// a pending key file the store does not record was left by a rotation that never
/// committed, and is removed.
fn finish_interrupted(
    key_file: &Path,
    recorded: Option<&str>,
) -> Result<Option<Rotated>, SecretsError> {
    let pending = pending_file(key_file);
    let Some(master) = read_key_file(&pending)? else {
        return Ok(None);
    };
    let pending_id = Keys::from_master(&master).id().to_owned();
    if recorded != Some(pending_id.as_str()) {
        std::fs::remove_file(&pending).map_err(file_error(&pending))?;
        return Ok(None);
    }
    let old_id = read_key_file(key_file)?.map(|m| Keys::from_master(&m).id().to_owned());
    let retired = match &old_id {
        Some(old_id) => swap_files(key_file, old_id)?,
        None => {
            std::fs::rename(&pending, key_file).map_err(file_error(key_file))?;
            sync_folder(key_file)?;
            None
        }
    };
    Ok(Some(Rotated {
        from: old_id,
        to: pending_id,
        resealed: SealedCounts::default(),
        key_file: Some(key_file.to_owned()),
        retired_key_file: retired,
        finished_interrupted: true,
    }))
}

/// Moves the old key file aside and the pending one into its place, durably.
fn swap_files(key_file: &Path, old_id: &str) -> Result<Option<PathBuf>, SecretsError> {
    let retired = retired_file(key_file, old_id);
    let moved = match std::fs::rename(key_file, &retired) {
        Ok(()) => Some(retired),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(file_error(key_file)(e)),
    };
    std::fs::rename(pending_file(key_file), key_file).map_err(file_error(key_file))?;
    sync_folder(key_file)?;
    Ok(moved)
}

fn sync_folder(key_file: &Path) -> Result<(), SecretsError> {
    let folder = match key_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(folder)
        .and_then(|f| f.sync_all())
        .map_err(file_error(folder))
}
