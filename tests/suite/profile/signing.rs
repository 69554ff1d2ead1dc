//! Signed Apple profiles: CMS SignedData verified by `openssl cms -verify` against the test
//! root (so the chain must be inside the signature) and, independently, by the
//! `cryptographic-message-syntax` crate; keys from PEM in every common encoding and from
//! PKCS#12; the cache that keeps an unchanged profile from being signed twice.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, OnceLock};

use cryptographic_message_syntax::SignedData;
use mdm_mail::model::Platform;
use mdm_mail::profile::Signer;
use mdm_mail::profile::sign::{SignError, SignatureAlgorithm};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, SignatureAlgorithm as RcgenAlgorithm,
};

use super::{alice_all, render_ok};

/// A root, an intermediate and a leaf certificate, all with keys of one algorithm.
pub(super) struct Pki {
    pub(super) root_pem: String,
    pub(super) intermediate_pem: String,
    pub(super) leaf_pem: String,
    pub(super) leaf_key_pem: String,
    leaf_key_pkcs8: Vec<u8>,
    leaf_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    root_der: Vec<u8>,
}

fn make_pki(alg: &'static RcgenAlgorithm) -> Pki {
    let ca_params = |name: &str| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
    };
    let root_key = KeyPair::generate_for(alg).unwrap();
    let root_params = ca_params("mdm-mail test root");
    let root = root_params.self_signed(&root_key).unwrap();
    let root_issuer = Issuer::new(root_params, &root_key);

    let intermediate_key = KeyPair::generate_for(alg).unwrap();
    let intermediate_params = ca_params("mdm-mail test intermediate");
    let intermediate = intermediate_params
        .signed_by(&intermediate_key, &root_issuer)
        .unwrap();
    let intermediate_issuer = Issuer::new(intermediate_params, &intermediate_key);

    let leaf_key = KeyPair::generate_for(alg).unwrap();
    let mut leaf_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "Example Corp profile signing");
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let leaf = leaf_params
        .signed_by(&leaf_key, &intermediate_issuer)
        .unwrap();

    Pki {
        root_pem: root.pem(),
        intermediate_pem: intermediate.pem(),
        leaf_pem: leaf.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
        leaf_key_pkcs8: leaf_key.serialize_der(),
        leaf_der: leaf.der().to_vec(),
        intermediate_der: intermediate.der().to_vec(),
        root_der: root.der().to_vec(),
    }
}

fn rsa() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| make_pki(&PKCS_RSA_SHA256))
}

pub(super) fn ecdsa() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| make_pki(&PKCS_ECDSA_P256_SHA256))
}

fn signer(pki: &Pki) -> Signer {
    let chain = format!("{}{}", pki.leaf_pem, pki.intermediate_pem);
    Signer::from_pem(chain.as_bytes(), pki.leaf_key_pem.as_bytes()).unwrap()
}

fn openssl(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (install it: apt-get install openssl; CI does)")
}

/// Verifies `signed` with `openssl cms -verify` against the root alone and returns the
/// content openssl extracted.
pub(super) fn openssl_verify(signed: &[u8], pki: &Pki) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("profile.der"), signed).unwrap();
    std::fs::write(dir.path().join("root.pem"), &pki.root_pem).unwrap();
    let out = openssl(
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "profile.der",
            "-CAfile",
            "root.pem",
            "-out",
            "content",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "openssl cms -verify failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.path().join("content")).unwrap()
}

/// Verifies `signed` with the cryptographic-message-syntax crate: the content, one SHA-256
/// signer whose signature and digest check out, and the chain up to the root.
fn rust_verify(signed: &[u8], unsigned: &[u8], pki: &Pki) {
    let data = SignedData::parse_ber(signed).expect("CMS SignedData parses");
    assert_eq!(data.signed_content(), Some(unsigned), "content is attached");
    let signers: Vec<_> = data.signers().collect();
    assert_eq!(signers.len(), 1);
    let signer = signers[0];
    assert_eq!(signer.digest_algorithm().to_string(), "SHA-256");
    signer
        .verify_signature_with_signed_data(&data)
        .expect("signature verifies");
    signer
        .verify_message_digest_with_signed_data(&data)
        .expect("digest matches");
    // The chain travels byte for byte (the crate re-encodes what it parses, so look for the
    // certificates in the signature's own bytes) and leads from the signer to the root.
    assert_eq!(data.certificates().count(), 2);
    for der in [&pki.leaf_der, &pki.intermediate_der] {
        assert!(signed.windows(der.len()).any(|w| w == der.as_slice()));
    }
    let parse = |der| x509_parser::parse_x509_certificate(der).unwrap().1;
    let (leaf, intermediate, root) = (
        parse(pki.leaf_der.as_slice()),
        parse(pki.intermediate_der.as_slice()),
        parse(pki.root_der.as_slice()),
    );
    leaf.verify_signature(Some(intermediate.public_key()))
        .expect("the signer is issued by the included intermediate");
    intermediate
        .verify_signature(Some(root.public_key()))
        .expect("the intermediate is issued by the root");
}

#[test]
fn signed_profiles_verify_with_openssl_against_the_root() {
    for pki in [rsa(), ecdsa()] {
        let unsigned = render_ok(&alice_all(), Platform::Ios).body;
        let signed = signer(pki).sign(&unsigned).unwrap();
        assert_eq!(openssl_verify(&signed, pki), unsigned);
    }
}

#[test]
fn signed_profiles_verify_in_rust() {
    for (pki, algorithm) in [
        (rsa(), SignatureAlgorithm::RsaSha256),
        (ecdsa(), SignatureAlgorithm::EcdsaP256Sha256),
    ] {
        let signer = signer(pki);
        assert_eq!(signer.algorithm(), algorithm);
        assert_eq!(signer.subject(), "CN=Example Corp profile signing");
        for platform in [Platform::Ios, Platform::Macos] {
            let unsigned = render_ok(&alice_all(), platform).body;
            let signed = signer.sign(&unsigned).unwrap();
            rust_verify(&signed, &unsigned, pki);
        }
    }
}

#[test]
fn large_content_uses_long_der_lengths_correctly() {
    let pki = ecdsa();
    let unsigned: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let signed = signer(pki).sign(&unsigned).unwrap();
    rust_verify(&signed, &unsigned, pki);
    assert_eq!(openssl_verify(&signed, pki), unsigned);
}

#[test]
fn an_unchanged_profile_is_signed_once() {
    let signer = signer(ecdsa());
    let unsigned = render_ok(&alice_all(), Platform::Ios).body;
    let first = signer.sign(&unsigned).unwrap();
    let second = signer.sign(&unsigned).unwrap();
    assert!(
        Arc::ptr_eq(&first, &second),
        "the second request is served from the cache"
    );
    assert_eq!(signer.signatures_made(), 1);
    let other = render_ok(&alice_all(), Platform::Macos).body;
    signer.sign(&other).unwrap();
    assert_eq!(signer.signatures_made(), 2);
    assert_eq!(signer.cached(), 2);
}

#[test]
fn without_a_cache_every_request_signs_and_rsa_signatures_repeat_exactly() {
    let signer = signer(rsa()).with_cache_capacity(0);
    let unsigned = render_ok(&alice_all(), Platform::Ios).body;
    let first = signer.sign(&unsigned).unwrap();
    let second = signer.sign(&unsigned).unwrap();
    assert_eq!(signer.signatures_made(), 2);
    assert_eq!(signer.cached(), 0);
    assert_eq!(
        first, second,
        "no signing time: RSA PKCS#1 v1.5 output is deterministic"
    );
}

#[test]
fn keys_load_from_every_common_pem_encoding_and_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    for (pki, convert) in [
        (rsa(), &["pkey", "-traditional"][..]),
        (ecdsa(), &["ec"][..]),
    ] {
        std::fs::write(dir.path().join("key.pem"), &pki.leaf_key_pem).unwrap();
        let mut args = convert.to_vec();
        args.extend(["-in", "key.pem", "-out", "legacy.pem"]);
        let out = openssl(&args, dir.path());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let legacy = std::fs::read_to_string(dir.path().join("legacy.pem")).unwrap();
        assert!(
            legacy.contains("-----BEGIN RSA PRIVATE KEY-----")
                || legacy.contains("-----BEGIN EC PRIVATE KEY-----")
        );
        // Key and certificates in one file, the intermediate first.
        let combined = format!("{legacy}{}{}", pki.intermediate_pem, pki.leaf_pem);
        let signer = Signer::from_pem(combined.as_bytes(), b"").unwrap();
        let unsigned = b"<plist/>";
        rust_verify(&signer.sign(unsigned).unwrap(), unsigned, pki);
    }
}

#[test]
fn a_key_that_matches_no_certificate_is_refused() {
    let chain = format!("{}{}", rsa().leaf_pem, rsa().intermediate_pem);
    let err = Signer::from_pem(chain.as_bytes(), ecdsa().leaf_key_pem.as_bytes()).unwrap_err();
    assert_eq!(err, SignError::KeyMismatch(2));
    assert!(
        err.to_string()
            .contains("belongs to none of the 2 certificate(s)")
    );
    let err = Signer::from_pem(b"", rsa().leaf_key_pem.as_bytes()).unwrap_err();
    assert_eq!(err, SignError::NoCertificate);
}

fn pkcs12(pki: &Pki, password: &str) -> Vec<u8> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let mut store = KeyStore::new();
    let chain = PrivateKeyChain::new(
        b"1".as_slice(),
        PrivateKey::from_der(&pki.leaf_key_pkcs8).unwrap(),
        [
            Certificate::from_der(&pki.leaf_der).unwrap(),
            Certificate::from_der(&pki.intermediate_der).unwrap(),
        ],
    );
    store.add_entry("signing", KeyStoreEntry::PrivateKeyChain(chain));
    store.writer(password).write().unwrap()
}

#[test]
fn pkcs12_files_load_with_their_password() {
    for pki in [rsa(), ecdsa()] {
        let p12 = pkcs12(pki, "s3cret");
        let signer = Signer::from_pkcs12(&p12, "s3cret").unwrap();
        let unsigned = render_ok(&alice_all(), Platform::Ipados).body;
        let signed = signer.sign(&unsigned).unwrap();
        rust_verify(&signed, &unsigned, pki);
        assert_eq!(openssl_verify(&signed, pki), unsigned);
        assert!(matches!(
            Signer::from_pkcs12(&p12, "wrong"),
            Err(SignError::Pkcs12(_))
        ));
    }
}

#[test]
fn pkcs12_files_exported_by_openssl_load() {
    let pki = rsa();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.pem"), &pki.leaf_key_pem).unwrap();
    std::fs::write(dir.path().join("leaf.pem"), &pki.leaf_pem).unwrap();
    std::fs::write(dir.path().join("chain.pem"), &pki.intermediate_pem).unwrap();
    let out = openssl(
        &[
            "pkcs12",
            "-export",
            "-inkey",
            "key.pem",
            "-in",
            "leaf.pem",
            "-certfile",
            "chain.pem",
            "-passout",
            "pass:p\"ss,word<&>",
            "-out",
            "signing.p12",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p12 = std::fs::read(dir.path().join("signing.p12")).unwrap();
    let signer = Signer::from_pkcs12(&p12, "p\"ss,word<&>").unwrap();
    let unsigned = render_ok(&alice_all(), Platform::Macos).body;
    rust_verify(&signer.sign(&unsigned).unwrap(), &unsigned, pki);
}
