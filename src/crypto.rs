//! Secrets at rest: mail passwords sealed with an AEAD, and keyed MACs that let an import
//! tell an unchanged password without decrypting it. Where the 32-byte master key comes from,
//! and which key a store accepts, is [`crate::secrets`]' business.
//!
//! Both are versioned by their first byte, so that what older releases stored still opens and
//! still compares: ciphertexts of version 1 are XChaCha20-Poly1305, of version 2 AES-256-GCM-SIV
//! (AES in hardware, a tenth of the cost per password, and a repeated random nonce leaks no
//! more than that two ciphertexts hold the same password); MACs of version 1 are 16 bytes of
//! HMAC-SHA256 with no version byte, of version 2 the byte 2 and SipHash-2-4-128, a PRF made
//! for short keyed inputs at a fifth of HMAC's cost. New secrets are always sealed and MACed
//! at the newest version.

use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use siphasher::sip128::{Hasher128, SipHasher24};

use crate::model::{AccountKind, Secret};

/// Ciphertexts of version 1: the version byte, a 24-byte nonce, XChaCha20-Poly1305.
const SEALED_V1: u8 = 1;
/// Ciphertexts of version 2: the version byte, a 12-byte nonce, AES-256-GCM-SIV.
const SEALED_V2: u8 = 2;
/// Bytes of an XChaCha20 nonce.
const V1_NONCE: usize = 24;
/// The version byte of a version-2 MAC.
const MAC_V2: u8 = 2;
/// Bytes of a version-1 MAC (HMAC-SHA256, truncated; no version byte).
const MAC_V1_LEN: usize = 16;
/// Bytes of a MAC as now written: the version byte and 128 bits, ample to make a false
/// "unchanged" impossible in practice.
pub const MAC_LEN: usize = 17;
/// Bytes of a key's identifier: enough that two keys never share one.
const ID_LEN: usize = 12;

/// A password's MAC as now written.
pub type PasswordMac = [u8; MAC_LEN];

/// Sealing and MAC keys, derived from the master key.
#[derive(Clone)]
pub struct Keys {
    seal: Arc<LessSafeKey>,
    mac: (u64, u64),
    legacy_cipher: XChaCha20Poly1305,
    legacy_mac: Hmac<Sha256>,
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
        let legacy_seal = derive(b"mdm-mail v1 password encryption");
        let legacy_mac = derive(b"mdm-mail v1 password mac");
        let seal = derive(b"mdm-mail v2 password encryption");
        let mac = derive(b"mdm-mail v2 password mac");
        let id = derive(b"mdm-mail v1 key check");
        let half = |at: usize| {
            u64::from_le_bytes(
                mac[at..at + 8]
                    .try_into()
                    .unwrap_or_else(|_| unreachable!("eight bytes")),
            )
        };
        Keys {
            seal: Arc::new(LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM_SIV, &seal)
                    .unwrap_or_else(|_| unreachable!("AES-256-GCM-SIV takes a 32-byte key")),
            )),
            mac: (half(0), half(8)),
            legacy_cipher: XChaCha20Poly1305::new(&legacy_seal.into()),
            legacy_mac: <Hmac<Sha256> as KeyInit>::new_from_slice(&legacy_mac)
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
        use rand::RngExt;
        // The nonce comes from the thread's CSPRNG: AWS-LC's own generator cost four times
        // the encryption itself per call. GCM-SIV stays safe should two nonces ever repeat.
        let nonce: [u8; NONCE_LEN] = rand::rng().random();
        let tag_len = AES_256_GCM_SIV.tag_len();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + secret.len() + tag_len);
        out.push(SEALED_V2);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(secret.as_bytes());
        let tag = self
            .seal
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[1 + NONCE_LEN..],
            )
            .unwrap_or_else(|_| unreachable!("AES-256-GCM-SIV seals any password length"));
        out.extend_from_slice(tag.as_ref());
        out
    }

    /// Opens what [`Keys::seal`] sealed with the same `aad`, at any version.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Secret, CryptoError> {
        let plain = match sealed.split_first() {
            Some((&SEALED_V2, rest)) if rest.len() >= NONCE_LEN => {
                let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
                let nonce =
                    Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
                let mut in_out = ciphertext.to_vec();
                let plain_len = self
                    .seal
                    .open_in_place(nonce, Aad::from(aad), &mut in_out)
                    .map_err(|_| CryptoError::Open)?
                    .len();
                in_out.truncate(plain_len);
                in_out
            }
            Some((&SEALED_V1, rest)) if rest.len() >= V1_NONCE => {
                let (nonce, ciphertext) = rest.split_at(V1_NONCE);
                let nonce = XNonce::try_from(nonce).map_err(|_| CryptoError::Open)?;
                self.legacy_cipher
                    .decrypt(
                        &nonce,
                        Payload {
                            msg: ciphertext,
                            aad,
                        },
                    )
                    .map_err(|_| CryptoError::Open)?
            }
            _ => return Err(CryptoError::Open),
        };
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| CryptoError::Open)
    }

    /// A keyed MAC of `secret` as bound to `aad`: equal for an equal password of the same
    /// account, unrelated across accounts, useless without the key.
    pub fn mac(&self, aad: &[u8], secret: &str) -> PasswordMac {
        use std::hash::Hasher;
        let mut hasher = SipHasher24::new_with_keys(self.mac.0, self.mac.1);
        hasher.write(aad);
        finish_mac(hasher, secret)
    }

    /// Whether `stored`, a MAC stored at any version, is the MAC of `secret` bound to `aad`.
    /// `current` is `secret`'s MAC at the newest version, already computed by the caller.
    pub fn mac_matches(
        &self,
        stored: &[u8],
        current: &PasswordMac,
        aad: &[u8],
        secret: &str,
    ) -> bool {
        if stored.len() == MAC_V1_LEN {
            let mut mac = self.legacy_mac.clone();
            mac.update(aad);
            mac.update(&[0]);
            mac.update(secret.as_bytes());
            let full: [u8; 32] = mac.finalize().into_bytes().into();
            return stored == &full[..MAC_V1_LEN];
        }
        stored == current
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

impl PasswordColumn {
    /// The column's name, the last part of [`account_aad`].
    fn name(self) -> &'static str {
        match self {
            PasswordColumn::Primary => "password",
            PasswordColumn::Outgoing => "outgoing_password",
        }
    }
}

/// The associated data that binds a stored password to its account and column: the
/// account's natural key, so a ciphertext copied to another row or column no longer opens.
pub fn account_aad(
    kind: AccountKind,
    user_email_norm: &str,
    address_norm: &str,
    column: PasswordColumn,
) -> Vec<u8> {
    let mut aad = Vec::with_capacity(48 + user_email_norm.len() + address_norm.len());
    for part in aad_parts(kind, user_email_norm, address_norm, column) {
        aad.extend_from_slice(part.as_bytes());
        aad.push(0);
    }
    aad
}

/// The parts of [`account_aad`], each followed by a NUL byte there.
fn aad_parts<'a>(
    kind: AccountKind,
    user_email_norm: &'a str,
    address_norm: &'a str,
    column: PasswordColumn,
) -> [&'a str; 5] {
    let [a, b, c, d] = account_parts(kind, user_email_norm, address_norm);
    [a, b, c, d, column.name()]
}

/// The parts of [`account_aad`] that name the account, shared by both its columns.
fn account_parts<'a>(
    kind: AccountKind,
    user_email_norm: &'a str,
    address_norm: &'a str,
) -> [&'a str; 4] {
    [
        "mdm-mail/email_accounts",
        kind.as_str(),
        user_email_norm,
        address_norm,
    ]
}

impl Keys {
    /// The MACs of one account's passwords ([`AccountMacs::mac`]), without building the
    /// associated data: an import computes two for every line it reads.
    pub fn account_macs(
        &self,
        kind: AccountKind,
        user_email_norm: &str,
        address_norm: &str,
    ) -> AccountMacs {
        use std::hash::Hasher;
        let mut prefix = SipHasher24::new_with_keys(self.mac.0, self.mac.1);
        for part in account_parts(kind, user_email_norm, address_norm) {
            prefix.write(part.as_bytes());
            prefix.write_u8(0);
        }
        AccountMacs { prefix }
    }
}

/// The MAC state after the part of [`account_aad`] both password columns of an account
/// share: each column's MAC goes on from a copy of it rather than hashing that part again.
pub struct AccountMacs {
    prefix: SipHasher24,
}

impl AccountMacs {
    /// [`Keys::mac`] of `secret` bound to [`account_aad`] of the account and `column`.
    pub fn mac(&self, column: PasswordColumn, secret: &str) -> PasswordMac {
        use std::hash::Hasher;
        let mut hasher = self.prefix;
        hasher.write(column.name().as_bytes());
        hasher.write_u8(0);
        finish_mac(hasher, secret)
    }
}

/// Ends a MAC whose associated data `hasher` has taken: a NUL, the secret, version 2.
fn finish_mac(mut hasher: SipHasher24, secret: &str) -> PasswordMac {
    use std::hash::Hasher;
    hasher.write_u8(0);
    hasher.write(secret.as_bytes());
    let mut out = [0; MAC_LEN];
    out[0] = MAC_V2;
    out[1..].copy_from_slice(&hasher.finish128().as_bytes());
    out
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
    fn what_version_1_sealed_still_opens_and_its_macs_still_compare() {
        let keys = keys();
        let aad = b"row 1";
        let nonce = XNonce::from([9; V1_NONCE]);
        let mut sealed = vec![SEALED_V1];
        sealed.extend_from_slice(&nonce);
        sealed.extend(
            keys.legacy_cipher
                .encrypt(
                    &nonce,
                    Payload {
                        msg: b"old secret",
                        aad,
                    },
                )
                .unwrap(),
        );
        assert_eq!(keys.open(aad, &sealed).unwrap().expose(), "old secret");
        assert!(keys.open(b"row 2", &sealed).is_err());

        let mut hmac = keys.legacy_mac.clone();
        hmac.update(aad);
        hmac.update(&[0]);
        hmac.update(b"old secret");
        let stored = &hmac.finalize().into_bytes()[..MAC_V1_LEN];
        let current = keys.mac(aad, "old secret");
        assert!(keys.mac_matches(stored, &current, aad, "old secret"));
        let other = keys.mac(aad, "new secret");
        assert!(!keys.mac_matches(stored, &other, aad, "new secret"));
        assert!(keys.mac_matches(&current, &current, aad, "old secret"));
        assert!(!keys.mac_matches(&other, &current, aad, "old secret"));
    }

    #[test]
    fn new_secrets_are_sealed_and_maced_at_version_2() {
        let keys = keys();
        assert_eq!(keys.seal(b"a", "x")[0], SEALED_V2);
        assert_eq!(keys.mac(b"a", "x")[0], MAC_V2);
        assert!(keys.open(b"a", &[SEALED_V2, 1, 2]).is_err());
        assert!(keys.open(b"a", &[7; 40]).is_err());
        assert!(keys.open(b"a", &[]).is_err());
    }

    #[test]
    fn macs_are_equal_for_equal_passwords_of_one_account_only() {
        let keys = keys();
        assert_eq!(keys.mac(b"a", "pw"), keys.mac(b"a", "pw"));
        assert_ne!(keys.mac(b"a", "pw"), keys.mac(b"b", "pw"));
        assert_ne!(keys.mac(b"a", "pw"), keys.mac(b"a", "pw2"));
    }

    #[test]
    fn an_account_mac_is_the_mac_of_the_accounts_associated_data() {
        let keys = keys();
        let (user, address) = ("a@example.com", "b@example.com");
        for kind in [AccountKind::Email, AccountKind::Exchange] {
            let macs = keys.account_macs(kind, user, address);
            for column in [PasswordColumn::Primary, PasswordColumn::Outgoing] {
                let aad = account_aad(kind, user, address, column);
                assert_eq!(macs.mac(column, "pw"), keys.mac(&aad, "pw"));
            }
        }
    }

    #[test]
    fn a_version_2_mac_is_what_stores_already_hold() {
        // Stored MACs are compared, never recomputed: any change to how one is computed
        // would call every stored password changed.
        let keys = keys();
        let macs = keys.account_macs(AccountKind::Email, "a@example.com", "b@example.com");
        assert_eq!(
            to_hex(&macs.mac(PasswordColumn::Outgoing, "pässwörd")),
            "022be3577f44d37b597c8c25f6f760b7e4"
        );
        assert_eq!(
            to_hex(&keys.mac(b"aad", "pw")),
            "028ca27ce53696d0ceab469597d00e11cc"
        );
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
