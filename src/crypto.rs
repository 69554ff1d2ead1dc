//! Secrets at rest: mail passwords sealed with XChaCha20-Poly1305, and keyed MACs that let an
//! import tell an unchanged password without decrypting it. Where the 32-byte master key comes
//! from, and which key a store accepts, is [`crate::secrets`]' business.

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
/// Bytes of a key's identifier: enough that two keys never share one.
const ID_LEN: usize = 12;

/// Sealing and MAC keys, derived from the master key.
#[derive(Clone)]
pub struct Keys {
    cipher: XChaCha20Poly1305,
    mac: Hmac<Sha256>,
    id: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(***)")
    }
}

/// Why a secret could not be opened, or a key could not be read.
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
        let id = derive(b"mdm-mail v1 key check");
        Keys {
            cipher: XChaCha20Poly1305::new(&seal.into()),
            mac: <Hmac<Sha256> as KeyInit>::new_from_slice(&mac)
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length")),
            id: to_hex(&id[..ID_LEN]),
        }
    }

    /// A new random key.
    pub fn generate() -> ([u8; 32], Keys) {
        let master = random_key();
        (master, Keys::from_master(&master))
    }

    /// The key's identifier: a MAC of a fixed label under the key, which names the key in
    /// messages and in the store's key check without revealing anything of it.
    pub fn id(&self) -> &str {
        &self.id
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

    #[test]
    fn a_key_is_named_by_an_identifier_that_differs_between_keys() {
        assert_eq!(keys().id(), Keys::from_master(&[7; 32]).id());
        assert_ne!(keys().id(), Keys::from_master(&[8; 32]).id());
        assert_eq!(keys().id().len(), 2 * ID_LEN);
    }
}
