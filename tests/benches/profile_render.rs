//! Profiles rendered per second for one user with one account, per platform, unsigned and
//! signed (RSA-2048 and ECDSA P-256), on one thread. Run with
//! `cargo bench --bench profile_render`; the `item/s` column is profiles per second.
//!
//! - `unsigned`: `render` with the shipped example definitions.
//! - `sign`: CMS signing alone of a rendered iOS profile, cache off.
//! - `render_and_sign`: render plus signing, cache off (every profile new).
//! - `render_and_sign_cached`: render plus a cache hit (an unchanged profile).

use std::path::PathBuf;

use divan::Bencher;
use divan::counter::ItemsCount;
use mdm_mail::model::{Account, AccountDetails, Platform, Secret};
use mdm_mail::profile::{Definitions, RenderOptions, Rendered, Signer, render};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};

fn main() {
    divan::main();
}

const CASES: [&str; 7] = [
    "ios/email",
    "ios/exchange",
    "macos/email",
    "macos/exchange",
    "windows/email",
    "windows/exchange",
    "android/exchange",
];

const KEYS: [&str; 2] = ["rsa-2048", "ecdsa-p256"];

fn definitions() -> Definitions {
    Definitions::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles"))
        .expect("the shipped definitions load")
}

fn account(kind: &str) -> Account {
    let details = match kind {
        "email" => AccountDetails::Email {
            display_name: "Alice Adams".into(),
            incoming_username: "alice".into(),
            incoming_password: Some(Secret::new("in-secret")),
            outgoing_username: "alice".into(),
            outgoing_password: Some(Secret::new("out-secret")),
        },
        _ => AccountDetails::Exchange {
            username: "alice".into(),
            domain: Some("CORP".into()),
            password: Some(Secret::new("ex-secret")),
        },
    };
    Account {
        user_email: "alice@example.com".into(),
        user_display_name: "Alice Adams".into(),
        address: "alice@example.com".into(),
        details,
    }
}

fn render_case(case: &str, definitions: &Definitions, accounts: &[Account]) -> Rendered {
    let platform: Platform = case
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a platform");
    render(
        "alice@example.com",
        accounts,
        platform,
        definitions,
        &RenderOptions::default(),
    )
    .expect("the profile renders")
}

fn signer(key: &str, cache: usize) -> Signer {
    let alg = match key {
        "rsa-2048" => &PKCS_RSA_SHA256,
        _ => &PKCS_ECDSA_P256_SHA256,
    };
    let ca_key = KeyPair::generate_for(alg).expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.distinguished_name.push(DnType::CommonName, "bench CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, &ca_key);
    let leaf_key = KeyPair::generate_for(alg).expect("leaf key");
    let mut leaf = CertificateParams::new(Vec::<String>::new()).expect("leaf parameters");
    leaf.distinguished_name
        .push(DnType::CommonName, "bench signer");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .expect("leaf certificate");
    let chain = format!("{}{}", leaf_cert.pem(), ca_cert.pem());
    Signer::from_pem(chain.as_bytes(), leaf_key.serialize_pem().as_bytes())
        .expect("the signer loads")
        .with_cache_capacity(cache)
}

#[divan::bench(args = CASES)]
fn unsigned(bencher: Bencher, case: &str) {
    let definitions = definitions();
    let accounts = [account(case.split('/').nth(1).unwrap_or("email"))];
    bencher
        .counter(ItemsCount::new(1usize))
        .bench(|| render_case(case, &definitions, &accounts));
}

#[divan::bench(args = KEYS)]
fn sign(bencher: Bencher, key: &str) {
    let signer = signer(key, 0);
    let body = render_case("ios/email", &definitions(), &[account("email")]).body;
    bencher
        .counter(ItemsCount::new(1usize))
        .bench(|| signer.sign(&body).expect("signed"));
}

#[divan::bench(args = KEYS)]
fn render_and_sign(bencher: Bencher, key: &str) {
    let signer = signer(key, 0);
    let definitions = definitions();
    let accounts = [account("email")];
    bencher.counter(ItemsCount::new(1usize)).bench(|| {
        let rendered = render_case("ios/email", &definitions, &accounts);
        signer.sign(&rendered.body).expect("signed")
    });
}

#[divan::bench(args = KEYS)]
fn render_and_sign_cached(bencher: Bencher, key: &str) {
    let signer = signer(key, 1024);
    let definitions = definitions();
    let accounts = [account("email")];
    bencher.counter(ItemsCount::new(1usize)).bench(|| {
        let rendered = render_case("ios/email", &definitions, &accounts);
        signer.sign(&rendered.body).expect("signed")
    });
}
