//! Secrets at rest: mail passwords sealed with XChaCha20-Poly1305, keyed MACs that let an
//! import tell an unchanged password without decrypting it, and where the key comes from.
//!
//! The 32-byte master key comes from `MDM_MAIL_SECRET_KEY` (base64 or hex), or from a key file.
//! With SQLite and no key configured, a key file is created beside the database on first use,
//! readable by its owner only. PostgreSQL deployments must supply the key: several servers share
//! the database, so no one of them may invent it.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::model::{AccountKind, Secret};

/// Format version written as the first byte of every ciphertext.
const VERSION: u8 = 1;
/// Bytes of nonce after the version byte.
const NONCE: usize = 24;
/// Bytes of MAC kept per password: ample to make a false "unchanged" impossible in practice.
pub const MAC_LEN: usize = 16;

/// Sealing and MAC keys, derived from the master key.
#[derive(Clone)]
pub struct Keys {
    cipher: XChaCha20Poly1305,
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(***)")
    }
}

/// Why a secret could not be opened, or a key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The ciphertext was altered, belongs to another row, or was sealed with another key.
    #[error(
        "a stored password cannot be decrypted with the configured key (was MDM_MAIL_SECRET_KEY or the key file changed?)"
    )]
    Open,
    /// The key text is not 32 bytes of base64 or hex.
    #[error(
        "{source_name} is not a valid key: expected 32 bytes as base64 (44 characters) or hex (64 characters)"
    )]
    BadKey {
        /// Where the key came from.
        source_name: String,
    },
    /// PostgreSQL without a configured key.
    #[error(
        "no secret key: set MDM_MAIL_SECRET_KEY to 32 random bytes in base64 (for example the output of `openssl rand -base64 32`), or secret_key_file in the config; every server sharing the database needs the same key"
    )]
    Missing,
    /// The key file could not be read or created.
    #[error("key file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Keys {
    /// Derives the sealing and MAC keys from a 32-byte master key.
    pub fn from_master(master: &[u8; 32]) -> Keys {
        let derive = |label: &[u8]| -> [u8; 32] {
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(master)
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        let seal = derive(b"mdm-mail v1 password encryption");
        let mac = derive(b"mdm-mail v1 password mac");
        Keys {
            cipher: XChaCha20Poly1305::new(&seal.into()),
            mac: <Hmac<Sha256> as KeyInit>::new_from_slice(&mac)
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length")),
        }
    }

    /// A key that exists only for this process: used by dry runs on a store that has no key
    /// yet (and so no stored password to compare with), so that previewing writes nothing.
    pub fn ephemeral() -> Keys {
        Keys::from_master(&random_key())
    }

    /// Seals `secret`, binding it to `aad` (the row and column it belongs to): the ciphertext
    /// cannot be moved to another account and still open.
    pub fn seal(&self, aad: &[u8], secret: &str) -> Vec<u8> {
        use chacha20poly1305::aead::Generate;
        let nonce = XNonce::generate_from_rng(&mut rand::rng());
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: secret.as_bytes(),
                    aad,
                },
            )
            .unwrap_or_else(|_| unreachable!("XChaCha20-Poly1305 seals any password length"));
        let mut out = Vec::with_capacity(1 + NONCE + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`Keys::seal`] sealed with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Secret, CryptoError> {
        let (&version, rest) = sealed.split_first().ok_or(CryptoError::Open)?;
        if version != VERSION || rest.len() < NONCE {
            return Err(CryptoError::Open);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE);
        let nonce = XNonce::try_from(nonce).map_err(|_| CryptoError::Open)?;
        let plain = self
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Open)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| CryptoError::Open)
    }

    /// A keyed MAC of `secret` as bound to `aad`: equal for an equal password of the same
    /// account, unrelated across accounts, useless without the key.
    pub fn mac(&self, aad: &[u8], secret: &str) -> [u8; MAC_LEN] {
        let mut mac = self.mac.clone();
        mac.update(aad);
        mac.update(&[0]);
        mac.update(secret.as_bytes());
        let full: [u8; 32] = mac.finalize().into_bytes().into();
        let mut out = [0; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }
}

fn random_key() -> [u8; 32] {
    use rand::RngExt;
    rand::rng().random()
}

/// Reads a master key written as base64 or hex; `source_name` names it in errors.
pub fn parse_key(text: &str, source_name: &str) -> Result<[u8; 32], CryptoError> {
    let text = text.trim();
    let bad = || CryptoError::BadKey {
        source_name: source_name.to_owned(),
    };
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| bad())?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| bad())?
    };
    bytes.try_into().map_err(|_| bad())
}

/// Where the master key is to be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The text of `MDM_MAIL_SECRET_KEY`.
    Env(String),
    /// A key file that must exist.
    File(PathBuf),
    /// The key file beside a SQLite database, created on first use.
    CreateBeside(PathBuf),
    /// Nothing configured and nowhere to create a key (PostgreSQL).
    Missing,
}

impl KeySource {
    /// The key file that goes with a SQLite database file: same folder and name, `.key`.
    pub fn beside(database: &Path) -> PathBuf {
        database.with_extension("key")
    }

    /// Loads the key; with `create`, a missing key file beside the database is created.
    /// Returns `None` when there is no key and `create` is false.
    pub fn load(&self, create: bool) -> Result<Option<Keys>, CryptoError> {
        let file_error = |path: &Path| {
            let path = path.to_owned();
            move |source| CryptoError::File { path, source }
        };
        let master = match self {
            KeySource::Env(text) => parse_key(text, "MDM_MAIL_SECRET_KEY")?,
            KeySource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(file_error(path))?;
                parse_key(&text, &path.display().to_string())?
            }
            KeySource::CreateBeside(path) => match std::fs::read_to_string(path) {
                Ok(text) => parse_key(&text, &path.display().to_string())?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                    create_key_file(path).map_err(file_error(path))?
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(file_error(path)(e)),
            },
            KeySource::Missing if create => return Err(CryptoError::Missing),
            KeySource::Missing => return Ok(None),
        };
        Ok(Some(Keys::from_master(&master)))
    }
}

/// Writes a new random key, readable and writable by the owner only, failing rather than
/// replacing a file that appeared meanwhile.
fn create_key_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let key = random_key();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(
        file,
        "{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "created a new secret key file; back it up with the database");
    Ok(key)
}

/// The two password columns of a stored account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordColumn {
    /// `password`: Email's incoming password, Exchange's password.
    Primary,
    /// `outgoing_password`: Email's outgoing (SMTP) password.
    Outgoing,
}

/// The associated data that binds a stored password to its account and column: the
/// account's natural key, so a ciphertext copied to another row or column no longer opens.
pub fn account_aad(
    kind: AccountKind,
    user_email_norm: &str,
    address_norm: &str,
    column: PasswordColumn,
) -> Vec<u8> {
    let column = match column {
        PasswordColumn::Primary => "password",
        PasswordColumn::Outgoing => "outgoing_password",
    };
    let mut aad = Vec::with_capacity(48 + user_email_norm.len() + address_norm.len());
    for part in [
        "mdm-mail/email_accounts",
        kind.as_str(),
        user_email_norm,
        address_norm,
        column,
    ] {
        aad.extend_from_slice(part.as_bytes());
        aad.push(0);
    }
    aad
}

/// Lower-case hex of `bytes`, as digests are shown.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// SHA-256 of a token: what the store keeps instead of the token.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::from_master(&[7; 32])
    }

    #[test]
    fn sealed_passwords_open_only_with_the_same_binding() {
        let keys = keys();
        let sealed = keys.seal(b"row 1", "p\"ss,word<&>");
        assert_eq!(
            keys.open(b"row 1", &sealed).unwrap().expose(),
            "p\"ss,word<&>"
        );
        assert!(keys.open(b"row 2", &sealed).is_err());
        assert!(Keys::from_master(&[8; 32]).open(b"row 1", &sealed).is_err());
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let keys = keys();
        assert_ne!(keys.seal(b"a", "x"), keys.seal(b"a", "x"));
    }

    #[test]
    fn macs_are_equal_for_equal_passwords_of_one_account_only() {
        let keys = keys();
        assert_eq!(keys.mac(b"a", "pw"), keys.mac(b"a", "pw"));
        assert_ne!(keys.mac(b"a", "pw"), keys.mac(b"b", "pw"));
        assert_ne!(keys.mac(b"a", "pw"), keys.mac(b"a", "pw2"));
    }

    #[test]
    fn keys_parse_from_base64_or_hex() {
        let hex = "00".repeat(31) + "ff";
        assert_eq!(parse_key(&hex, "x").unwrap()[31], 0xff);
        let b64 = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        assert_eq!(parse_key(&b64, "x").unwrap(), [1; 32]);
        assert!(parse_key("short", "x").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_created_key_file_is_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mdm-mail.key");
        let source = KeySource::CreateBeside(path.clone());
        assert!(source.load(false).unwrap().is_none());

        let first = source.load(true).unwrap().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = source.load(true).unwrap().unwrap();
        assert_eq!(first.mac(b"a", "b"), second.mac(b"a", "b"));
    }

    #[test]
    fn postgres_without_a_key_is_an_error_only_when_one_is_needed() {
        assert!(KeySource::Missing.load(false).unwrap().is_none());
        assert!(matches!(
            KeySource::Missing.load(true),
            Err(CryptoError::Missing)
        ));
    }
}
