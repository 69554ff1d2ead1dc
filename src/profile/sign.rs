//! Signing Apple profiles: CMS SignedData (RFC 5652) with the profile attached, DER, SHA-256,
//! the signer's certificate and its chain included — what Apple devices and
//! `openssl cms -verify` accept.
//!
//! The structure is fixed, so it is written directly: everything that depends only on the
//! signing identity (certificates, signer identifier, algorithms) is encoded once when the
//! [`Signer`] is made, and each signature encodes the signed attributes (content type and
//! message digest), signs them and lays out the result in one buffer. No signing time is
//! included, so RSA signatures of the same profile are byte-identical. The cryptography is
//! AWS-LC (through `aws-lc-rs`, already built for TLS): no system OpenSSL is needed, and RSA
//! signs about twice as fast as with `ring`.
//!
//! Signing costs far more than rendering, so signed profiles are cached by the SHA-256 of
//! the unsigned bytes — the same digest the signature covers — and an unchanged profile is
//! never signed twice while it stays in the bounded cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use x509_parser::pem::Pem;

/// How many signed profiles a [`Signer`] keeps by default (a few KB each).
pub const DEFAULT_CACHE_ENTRIES: usize = 10_000;

/// Smallest RSA key accepted.
const MIN_RSA_BITS: usize = 2048;

/// Why a signer could not be made or a profile not signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// A PEM block is damaged.
    #[error("cannot read the PEM data: {0}")]
    Pem(String),
    /// No certificate was given.
    #[error(
        "no certificate found: give the signing certificate and its chain as PEM \
         \"CERTIFICATE\" blocks (or in the PKCS#12 file)"
    )]
    NoCertificate,
    /// No private key was given.
    #[error(
        "no private key found: give it as a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \
         \"EC PRIVATE KEY\" block (or in the PKCS#12 file)"
    )]
    NoKey,
    /// More than one private key was given.
    #[error("{0} private keys found; give exactly one")]
    SeveralKeys(usize),
    /// The private key is password-protected PEM.
    #[error(
        "the private key is encrypted; give it unencrypted (openssl pkey -in key.pem -out \
         plain.pem) or use a PKCS#12 file with its password"
    )]
    EncryptedKey,
    /// The key is of a kind or size that cannot sign profiles here.
    #[error("unsupported private key: {0}; use RSA (2048 bits or more) or ECDSA P-256")]
    UnsupportedKey(String),
    /// A certificate does not parse.
    #[error("certificate {index} of {count} cannot be read: {reason}")]
    Certificate {
        /// 1-based position in the order given.
        index: usize,
        /// How many were given.
        count: usize,
        /// What is wrong.
        reason: String,
    },
    /// No certificate holds the key's public half.
    #[error(
        "the private key belongs to none of the {0} certificate(s) given; give the \
         certificate issued for this key"
    )]
    KeyMismatch(usize),
    /// The PKCS#12 file cannot be opened.
    #[error("cannot open the PKCS#12 file (wrong password, or not a PKCS#12 file): {0}")]
    Pkcs12(String),
    /// The cryptographic library refused to sign.
    #[error("the signature could not be made")]
    Signing,
}

/// The signature algorithm of a [`Signer`], decided by its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// RSA PKCS#1 v1.5 with SHA-256.
    RsaSha256,
    /// ECDSA on P-256 with SHA-256.
    EcdsaP256Sha256,
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureAlgorithm::RsaSha256 => "RSA with SHA-256",
            SignatureAlgorithm::EcdsaP256Sha256 => "ECDSA P-256 with SHA-256",
        })
    }
}

/// A signing identity and the cache of what it signed. Cheap to share: `sign` takes `&self`
/// and may run on several threads at once.
pub struct Signer {
    key: SigningKey,
    random: SystemRandom,
    subject: String,
    signer_certificate: Vec<u8>,
    /// `[0] IMPLICIT SET OF Certificate`: the signer's and the rest of the chain.
    certificates: Vec<u8>,
    /// `IssuerAndSerialNumber` of the signer's certificate.
    signer_identifier: Vec<u8>,
    cache: Mutex<Cache>,
    signatures: AtomicU64,
}

enum SigningKey {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
}

/// A private key as found, before it is parsed.
enum KeyDer {
    Pkcs8(Vec<u8>),
    Pkcs1(Vec<u8>),
    Sec1(Vec<u8>),
}

impl Signer {
    /// A signer from PEM: the certificate chain (signer's certificate and intermediates, in
    /// any order) and the unencrypted private key (PKCS#8, PKCS#1 or SEC1). Either text may
    /// hold both; the certificate whose public key matches the key is the signer's.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Signer, SignError> {
        let mut certificates = Vec::new();
        let mut keys = Vec::new();
        for text in [cert_chain_pem, key_pem] {
            if contains(text, b"Proc-Type: 4,ENCRYPTED") {
                return Err(SignError::EncryptedKey);
            }
            for block in Pem::iter_from_buffer(text) {
                let block = block.map_err(|e| SignError::Pem(e.to_string()))?;
                match block.label.as_str() {
                    "CERTIFICATE" if !certificates.contains(&block.contents) => {
                        certificates.push(block.contents);
                    }
                    // A certificate given twice (chain file and key file) counts once.
                    "CERTIFICATE" => {}
                    "PRIVATE KEY" => keys.push(KeyDer::Pkcs8(block.contents)),
                    "RSA PRIVATE KEY" => keys.push(KeyDer::Pkcs1(block.contents)),
                    "EC PRIVATE KEY" => keys.push(KeyDer::Sec1(block.contents)),
                    "ENCRYPTED PRIVATE KEY" => return Err(SignError::EncryptedKey),
                    // EC PARAMETERS and the like carry nothing needed here.
                    _ => {}
                }
            }
        }
        let key = match keys.len() {
            0 => return Err(SignError::NoKey),
            1 => keys.remove(0),
            n => return Err(SignError::SeveralKeys(n)),
        };
        Signer::new(&key, &certificates)
    }

    /// A signer from a PKCS#12 (`.p12`, `.pfx`) file and its password.
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<Signer, SignError> {
        let archive = p12_keystore::Pkcs12Archive::from_pkcs12(der, password)
            .map_err(|e| SignError::Pkcs12(e.to_string()))?;
        let mut keys: Vec<KeyDer> = archive
            .keys
            .iter()
            .map(|bag| KeyDer::Pkcs8(bag.key.as_der().to_vec()))
            .collect();
        let key = match keys.len() {
            0 => return Err(SignError::NoKey),
            1 => keys.remove(0),
            n => return Err(SignError::SeveralKeys(n)),
        };
        let mut certificates: Vec<Vec<u8>> = Vec::new();
        for bag in &archive.certs {
            let der = bag.cert.as_der().to_vec();
            if !certificates.contains(&der) {
                certificates.push(der);
            }
        }
        Signer::new(&key, &certificates)
    }

    fn new(key: &KeyDer, certificates: &[Vec<u8>]) -> Result<Signer, SignError> {
        let key = SigningKey::parse(key)?;
        if certificates.is_empty() {
            return Err(SignError::NoCertificate);
        }
        let count = certificates.len();
        let mut signer = None;
        for (i, der) in certificates.iter().enumerate() {
            let (rest, certificate) =
                x509_parser::parse_x509_certificate(der).map_err(|e| SignError::Certificate {
                    index: i + 1,
                    count,
                    reason: e.to_string(),
                })?;
            if !rest.is_empty() {
                return Err(SignError::Certificate {
                    index: i + 1,
                    count,
                    reason: "trailing bytes after the certificate".into(),
                });
            }
            let public_key = &certificate.public_key().subject_public_key.data;
            if signer.is_none() && public_key.as_ref() == key.public_key() {
                let tbs = &certificate.tbs_certificate;
                let mut identifier = Vec::new();
                der::constructed(
                    &mut identifier,
                    der::SEQUENCE,
                    &[
                        tbs.issuer.as_raw(),
                        &der::encode(der::INTEGER, tbs.raw_serial()),
                    ],
                );
                signer = Some((i, identifier, tbs.subject.to_string()));
            }
        }
        let Some((index, signer_identifier, subject)) = signer else {
            return Err(SignError::KeyMismatch(count));
        };
        // DER orders the elements of a SET OF by their encodings; verifiers find the signer
        // by issuer and serial number, not by position.
        let mut ordered: Vec<&[u8]> = certificates.iter().map(Vec::as_slice).collect();
        ordered.sort_unstable();
        let mut encoded_certificates = Vec::new();
        der::constructed(&mut encoded_certificates, der::CONTEXT_0, &ordered);
        Ok(Signer {
            key,
            random: SystemRandom::new(),
            subject,
            signer_certificate: certificates[index].clone(),
            certificates: encoded_certificates,
            signer_identifier,
            cache: Mutex::new(Cache::new(DEFAULT_CACHE_ENTRIES)),
            signatures: AtomicU64::new(0),
        })
    }

    /// Keeps at most about `entries` signed profiles (0 turns the cache off).
    pub fn with_cache_capacity(self, entries: usize) -> Signer {
        Signer {
            cache: Mutex::new(Cache::new(entries)),
            ..self
        }
    }

    /// The signature algorithm the key implies.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match self.key {
            SigningKey::Rsa(_) => SignatureAlgorithm::RsaSha256,
            SigningKey::Ecdsa(_) => SignatureAlgorithm::EcdsaP256Sha256,
        }
    }

    /// The signer's certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.signer_certificate
    }

    /// The signer certificate's subject, for logs and the admin UI.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// How many signatures this signer has made (cache hits not counted).
    pub fn signatures_made(&self) -> u64 {
        self.signatures.load(Ordering::Relaxed)
    }

    /// How many signed profiles the cache holds.
    pub fn cached(&self) -> usize {
        self.lock().len()
    }

    /// `unsigned` wrapped in CMS SignedData (DER): from the cache when these exact bytes were
    /// signed before, else signed now and cached.
    pub fn sign(&self, unsigned: &[u8]) -> Result<Arc<[u8]>, SignError> {
        let digest = digest::digest(&digest::SHA256, unsigned);
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        if let Some(signed) = self.lock().get(&key) {
            return Ok(signed);
        }
        // Signing happens outside the lock so that threads sign in parallel; two threads
        // signing the same new profile at once both sign, and either result is valid.
        let signed: Arc<[u8]> = self.encode(unsigned, &key)?.into();
        self.signatures.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(key, Arc::clone(&signed));
        Ok(signed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic elsewhere while holding the lock leaves a consistent map; keep using it.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Encodes the SignedData of `content`, whose SHA-256 is `digest`.
    fn encode(&self, content: &[u8], digest: &[u8; 32]) -> Result<Vec<u8>, SignError> {
        // Signed attributes, in DER (sorted) order: content type, then message digest.
        let mut attributes = Vec::with_capacity(80);
        der::constructed(
            &mut attributes,
            der::SEQUENCE,
            &[
                &der::encode(der::OID, der::OID_CONTENT_TYPE),
                &der::encode(der::SET, &der::encode(der::OID, der::OID_DATA)),
            ],
        );
        der::constructed(
            &mut attributes,
            der::SEQUENCE,
            &[
                &der::encode(der::OID, der::OID_MESSAGE_DIGEST),
                &der::encode(der::SET, &der::encode(der::OCTET_STRING, digest)),
            ],
        );
        // The signature covers the attributes as a SET; SignerInfo carries them as [0].
        let signature = self
            .key
            .sign(&der::encode(der::SET, &attributes), &self.random)?;
        let mut signer_info = Vec::with_capacity(attributes.len() + signature.len() + 320);
        der::constructed(
            &mut signer_info,
            der::SEQUENCE,
            &[
                der::VERSION_1,
                &self.signer_identifier,
                der::ALGORITHM_SHA256,
                &der::encode(der::CONTEXT_0, &attributes),
                self.key.algorithm_identifier(),
                &der::encode(der::OCTET_STRING, &signature),
            ],
        );

        // ContentInfo { signedData, [0] SignedData { 1, {sha256}, EncapsulatedContentInfo
        // { data, [0] OCTET STRING content }, [0] certificates, { SignerInfo } } }, laid out
        // once: the content is copied a single time.
        let octets = der::encoded_len(content.len());
        let explicit_content = der::encoded_len(octets);
        let encapsulated = der::OID_DATA_TLV.len() + explicit_content;
        let signer_infos = der::encoded_len(signer_info.len());
        let signed_data = der::VERSION_1.len()
            + der::DIGEST_ALGORITHMS.len()
            + der::encoded_len(encapsulated)
            + self.certificates.len()
            + signer_infos;
        let explicit_signed_data = der::encoded_len(der::encoded_len(signed_data));
        let content_info = der::OID_SIGNED_DATA_TLV.len() + explicit_signed_data;
        let total = der::encoded_len(content_info);
        let mut out = Vec::with_capacity(total);
        der::header(&mut out, der::SEQUENCE, content_info);
        out.extend_from_slice(der::OID_SIGNED_DATA_TLV);
        der::header(&mut out, der::CONTEXT_0, der::encoded_len(signed_data));
        der::header(&mut out, der::SEQUENCE, signed_data);
        out.extend_from_slice(der::VERSION_1);
        out.extend_from_slice(der::DIGEST_ALGORITHMS);
        der::header(&mut out, der::SEQUENCE, encapsulated);
        out.extend_from_slice(der::OID_DATA_TLV);
        der::header(&mut out, der::CONTEXT_0, octets);
        der::header(&mut out, der::OCTET_STRING, content.len());
        out.extend_from_slice(content);
        out.extend_from_slice(&self.certificates);
        der::header(&mut out, der::SET, signer_info.len());
        out.extend_from_slice(&signer_info);
        debug_assert_eq!(out.len(), total, "the lengths above describe the layout");
        Ok(out)
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("subject", &self.subject)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn parse(key: &KeyDer) -> Result<SigningKey, SignError> {
        let parsed = match key {
            KeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der)
                .map(SigningKey::Rsa)
                .or_else(|_| {
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der)
                        .map(SigningKey::Ecdsa)
                })
                .map_err(|_| {
                    SignError::UnsupportedKey(
                        "a PKCS#8 key that is neither RSA nor ECDSA P-256".into(),
                    )
                })?,
            KeyDer::Pkcs1(der) => RsaKeyPair::from_der(der)
                .map(SigningKey::Rsa)
                .map_err(|e| SignError::UnsupportedKey(format!("unreadable RSA key ({e})")))?,
            KeyDer::Sec1(der) => {
                EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, der)
                    .map(SigningKey::Ecdsa)
                    .map_err(|_| {
                        SignError::UnsupportedKey("an EC key not on the P-256 curve".into())
                    })?
            }
        };
        if let SigningKey::Rsa(rsa) = &parsed
            && rsa.public_modulus_len() * 8 < MIN_RSA_BITS
        {
            return Err(SignError::UnsupportedKey(format!(
                "RSA key of {} bits",
                rsa.public_modulus_len() * 8
            )));
        }
        Ok(parsed)
    }

    /// The public key as a certificate's `subjectPublicKey` holds it: `RSAPublicKey` DER, or
    /// the uncompressed EC point.
    fn public_key(&self) -> &[u8] {
        match self {
            SigningKey::Rsa(k) => k.public_key().as_ref(),
            SigningKey::Ecdsa(k) => k.public_key().as_ref(),
        }
    }

    fn algorithm_identifier(&self) -> &'static [u8] {
        match self {
            SigningKey::Rsa(_) => der::ALGORITHM_RSA,
            SigningKey::Ecdsa(_) => der::ALGORITHM_ECDSA_SHA256,
        }
    }

    fn sign(&self, message: &[u8], random: &SystemRandom) -> Result<Vec<u8>, SignError> {
        match self {
            SigningKey::Rsa(k) => {
                let mut signature = vec![0; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, random, message, &mut signature)
                    .map_err(|_| SignError::Signing)?;
                Ok(signature)
            }
            SigningKey::Ecdsa(k) => k
                .sign(random, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignError::Signing),
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The signed profiles kept, bounded: two generations, the newer filled first; when it is
/// full the older is dropped and the newer becomes the older. A hit in the older generation
/// moves the entry to the newer, so what is used stays and what is not ages out.
struct Cache {
    generation: usize,
    newer: HashMap<[u8; 32], Arc<[u8]>>,
    older: HashMap<[u8; 32], Arc<[u8]>>,
}

impl Cache {
    fn new(capacity: usize) -> Cache {
        Cache {
            generation: capacity.div_ceil(2),
            newer: HashMap::new(),
            older: HashMap::new(),
        }
    }

    fn len(&self) -> usize {
        self.newer.len() + self.older.len()
    }

    fn get(&mut self, key: &[u8; 32]) -> Option<Arc<[u8]>> {
        if let Some(value) = self.newer.get(key) {
            return Some(Arc::clone(value));
        }
        let value = self.older.remove(key)?;
        self.insert(*key, Arc::clone(&value));
        Some(value)
    }

    fn insert(&mut self, key: [u8; 32], value: Arc<[u8]>) {
        if self.generation == 0 {
            return;
        }
        if self.newer.len() >= self.generation {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(key, value);
    }
}

/// The little DER this module writes.
mod der {
    pub const INTEGER: u8 = 0x02;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    pub const CONTEXT_0: u8 = 0xA0;

    /// 1.2.840.113549.1.7.1, id-data.
    pub const OID_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01];
    /// 1.2.840.113549.1.9.3, content-type attribute.
    pub const OID_CONTENT_TYPE: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x03];
    /// 1.2.840.113549.1.9.4, message-digest attribute.
    pub const OID_MESSAGE_DIGEST: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x04];

    /// `OBJECT IDENTIFIER` id-data, encoded.
    pub const OID_DATA_TLV: &[u8] = &[
        0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01,
    ];
    /// `OBJECT IDENTIFIER` id-signedData (1.2.840.113549.1.7.2), encoded.
    pub const OID_SIGNED_DATA_TLV: &[u8] = &[
        0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02,
    ];
    /// `INTEGER 1`, the SignedData and SignerInfo version for issuer-and-serial signers.
    pub const VERSION_1: &[u8] = &[0x02, 0x01, 0x01];
    /// `AlgorithmIdentifier` sha256 (2.16.840.1.101.3.4.2.1), parameters absent (RFC 5754).
    pub const ALGORITHM_SHA256: &[u8] = &[
        0x30, 0x0B, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
    ];
    /// `SET OF AlgorithmIdentifier` holding sha256 alone.
    pub const DIGEST_ALGORITHMS: &[u8] = &[
        0x31, 0x0D, 0x30, 0x0B, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
    ];
    /// `AlgorithmIdentifier` rsaEncryption (1.2.840.113549.1.1.1) with NULL parameters, the
    /// signature algorithm CMS signers conventionally name for RSA PKCS#1 v1.5 (RFC 3370).
    pub const ALGORITHM_RSA: &[u8] = &[
        0x30, 0x0D, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    /// `AlgorithmIdentifier` ecdsa-with-SHA256 (1.2.840.10045.4.3.2), parameters absent.
    pub const ALGORITHM_ECDSA_SHA256: &[u8] = &[
        0x30, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02,
    ];

    /// The size of an element whose content is `content_len` bytes.
    pub fn encoded_len(content_len: usize) -> usize {
        1 + length_len(content_len) + content_len
    }

    fn length_len(len: usize) -> usize {
        if len < 0x80 {
            1
        } else {
            1 + (usize::BITS - len.leading_zeros()).div_ceil(8) as usize
        }
    }

    /// Tag and length of an element whose content is `len` bytes.
    pub fn header(out: &mut Vec<u8>, tag: u8, len: usize) {
        out.push(tag);
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let used = length_len(len) - 1;
            out.push(0x80 | used as u8);
            out.extend_from_slice(&bytes[bytes.len() - used..]);
        }
    }

    /// A primitive (or pre-encoded) element.
    pub fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(encoded_len(content.len()));
        header(&mut out, tag, content.len());
        out.extend_from_slice(content);
        out
    }

    /// A constructed element of already encoded `parts`, appended to `out`.
    pub fn constructed(out: &mut Vec<u8>, tag: u8, parts: &[&[u8]]) {
        let len = parts.iter().map(|p| p.len()).sum();
        out.reserve(encoded_len(len));
        header(out, tag, len);
        for part in parts {
            out.extend_from_slice(part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::oid_registry as oids;

    #[test]
    fn der_lengths_use_the_short_and_long_forms() {
        for (len, expected) in [
            (0usize, vec![0x04, 0x00]),
            (0x7F, vec![0x04, 0x7F]),
            (0x80, vec![0x04, 0x81, 0x80]),
            (0xFF, vec![0x04, 0x81, 0xFF]),
            (0x100, vec![0x04, 0x82, 0x01, 0x00]),
            (0x1_0000, vec![0x04, 0x83, 0x01, 0x00, 0x00]),
        ] {
            let encoded = der::encode(der::OCTET_STRING, &vec![0u8; len]);
            assert_eq!(&encoded[..expected.len()], expected.as_slice(), "{len}");
            assert_eq!(encoded.len(), der::encoded_len(len));
        }
    }

    #[test]
    fn object_identifiers_are_the_registered_ones() {
        assert_eq!(der::OID_DATA, oids::OID_PKCS7_ID_DATA.as_bytes());
        assert_eq!(&der::OID_DATA_TLV[2..], oids::OID_PKCS7_ID_DATA.as_bytes());
        assert_eq!(
            &der::OID_SIGNED_DATA_TLV[2..],
            oids::OID_PKCS7_ID_SIGNED_DATA.as_bytes()
        );
        assert_eq!(
            der::OID_CONTENT_TYPE,
            oids::OID_PKCS9_CONTENT_TYPE.as_bytes()
        );
        assert_eq!(
            der::OID_MESSAGE_DIGEST,
            oids::OID_PKCS9_ID_MESSAGE_DIGEST.as_bytes()
        );
        assert_eq!(
            &der::ALGORITHM_SHA256[4..],
            oids::OID_NIST_HASH_SHA256.as_bytes()
        );
        assert_eq!(&der::DIGEST_ALGORITHMS[2..], der::ALGORITHM_SHA256);
        assert_eq!(
            &der::ALGORITHM_RSA[4..13],
            oids::OID_PKCS1_RSAENCRYPTION.as_bytes()
        );
        assert_eq!(
            &der::ALGORITHM_ECDSA_SHA256[4..],
            oids::OID_SIG_ECDSA_WITH_SHA256.as_bytes()
        );
    }

    #[test]
    fn the_cache_keeps_what_is_used_and_stays_bounded() {
        let mut cache = Cache::new(4);
        let key = |i: u8| [i; 32];
        let value = |i: u8| -> Arc<[u8]> { Arc::from(vec![i]) };
        for i in 0..4 {
            cache.insert(key(i), value(i));
        }
        assert_eq!(cache.len(), 4);
        // 0 is in the older generation; using it moves it to the newer one.
        assert!(cache.get(&key(0)).is_some());
        cache.insert(key(4), value(4));
        cache.insert(key(5), value(5));
        assert!(cache.len() <= 4);
        assert!(
            cache.get(&key(0)).is_some(),
            "recently used entries survive"
        );
        assert!(cache.get(&key(1)).is_none(), "unused entries age out");
    }

    #[test]
    fn a_zero_capacity_cache_keeps_nothing() {
        let mut cache = Cache::new(0);
        cache.insert([1; 32], Arc::from(vec![1]));
        assert_eq!(cache.len(), 0);
        assert!(cache.get(&[1; 32]).is_none());
    }

    #[test]
    fn pem_without_a_key_or_certificate_says_what_is_missing() {
        assert_eq!(Signer::from_pem(b"", b"").unwrap_err(), SignError::NoKey);
        let encrypted =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert_eq!(
            Signer::from_pem(b"", encrypted).unwrap_err(),
            SignError::EncryptedKey
        );
    }
}
