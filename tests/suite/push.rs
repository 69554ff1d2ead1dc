//! Profile push end to end: imports and devices through the library, the queue in real
//! SQLite and PostgreSQL, commands over real HTTP to an in-test MDM on loopback.

mod cli;
mod delivery;
pub mod mdm;
mod nanomdm;
mod queue;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use mdm_mail::import::{self, ImportOptions, Mode};
use mdm_mail::model::AccountKind;
use mdm_mail::profile::Profiles;
use mdm_mail::push::settings::Endpoint;
use mdm_mail::push::{PushSettings, Pusher};
use mdm_mail::secrets::KeySource;
use mdm_mail::store::Store;

use crate::import::KEY;
use crate::support::{TestDb, fixture};
use mdm::FakeMdm;

/// The profiles the tests render: `tests/fixtures/profiles`, unsigned, the test key.
pub fn profiles() -> Profiles {
    Profiles {
        definitions: crate::profile::definitions(),
        signer: None,
        secrets: KeySource::Env(KEY.to_owned()),
    }
}

/// Settings sending Apple profiles to `mdm`'s NanoMDM API and Windows and Android profiles
/// to a folder in the test's scratch space, with quick retries.
pub fn settings(db: &TestDb, mdm: &FakeMdm) -> PushSettings {
    PushSettings {
        retry_base: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
        nanomdm: Some(Endpoint {
            url: mdm.url.clone(),
            api_key: mdm_mail::model::Secret::new(mdm::API_KEY),
        }),
        directory: Some(db.dir.path().join("drop")),
        ..PushSettings::default()
    }
}

/// Imports `csv` as accounts of `kind`.
pub async fn import_accounts(store: &Store, kind: AccountKind, csv: &str) {
    import::run(
        store,
        &KeySource::Env(KEY.to_owned()),
        std::io::Cursor::new(csv.as_bytes().to_vec()),
        &ImportOptions::new(kind),
        Mode::Commit {
            actor: "test",
            source: "test.csv",
            expected: None,
        },
        None,
    )
    .await
    .unwrap();
}

/// Loads devices from CSV text.
pub async fn load_devices(store: &Store, csv: &str) {
    let report = mdm_mail::import::directory::load_devices(
        store,
        std::io::Cursor::new(csv.as_bytes().to_vec()),
        "test",
        "devices.csv",
    )
    .await
    .unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
}

/// Alice's and Bob's Email accounts (`tests/fixtures/import/email.csv` minus its bad lines).
pub const EMAIL: &str = "alice@example.com,Alice Adams,alice@mail.example.com,alice,imap-secret-1,alice,smtp-secret-1\n\
bob@example.com,\"Baker, Bob\",bob@mail.example.com,bob,,bob,\n";

/// A store with alice, bob and chloe, the devices of `tests/fixtures/devices.csv` (alice's
/// iPhone and Mac, bob's Windows PC) and [`EMAIL`] imported; and a pusher to `mdm`.
pub async fn world(db: &TestDb, mdm: &FakeMdm) -> (Store, Pusher) {
    let store = crate::import::store_with_users(db).await;
    let devices = std::fs::read_to_string(fixture("devices.csv")).unwrap();
    load_devices(&store, &devices).await;
    import_accounts(&store, AccountKind::Email, EMAIL).await;
    let pusher = Pusher::new(store.clone(), Arc::new(profiles()), settings(db, mdm));
    (store, pusher)
}

/// `n` users, each with one Email account and one iPhone (enrollment `DEV-{i}`).
pub async fn fleet(store: &Store, n: usize) {
    let mut users = String::from("email,display_name\n");
    let mut devices = String::from("user_email,device_id,platform,enrollment_id\n");
    let mut accounts = String::new();
    for i in 0..n {
        users.push_str(&format!("user{i}@example.com,User {i}\n"));
        devices.push_str(&format!("user{i}@example.com,DEV-{i},ios,DEV-{i}\n"));
        accounts.push_str(&format!(
            "user{i}@example.com,User {i},user{i}@mail.example.com,user{i},pw{i},user{i},pw{i}\n"
        ));
    }
    mdm_mail::import::directory::load_users(
        store,
        std::io::Cursor::new(users.into_bytes()),
        "test",
        "users.csv",
    )
    .await
    .unwrap();
    load_devices(store, &devices).await;
    import_accounts(store, AccountKind::Email, &accounts).await;
}

/// The job count in `state`.
pub async fn jobs_in(db: &TestDb, state: &str) -> i64 {
    let sql: &'static str = match state {
        "queued" => "SELECT COUNT(*) FROM push_jobs WHERE state = 'queued'",
        "sending" => "SELECT COUNT(*) FROM push_jobs WHERE state = 'sending'",
        "sent" => "SELECT COUNT(*) FROM push_jobs WHERE state = 'sent'",
        "acknowledged" => "SELECT COUNT(*) FROM push_jobs WHERE state = 'acknowledged'",
        "failed" => "SELECT COUNT(*) FROM push_jobs WHERE state = 'failed'",
        _ => panic!("no state {state}"),
    };
    db.scalar_i64(sql).await
}

/// A profile's top-level dictionary.
pub fn profile_dict(payload: &[u8]) -> plist::Dictionary {
    plist::Value::from_reader_xml(std::io::Cursor::new(payload))
        .expect("the Payload is an XML plist")
        .into_dictionary()
        .expect("a dictionary")
}

/// Every string value anywhere in a plist.
pub fn strings(value: &plist::Value) -> Vec<String> {
    match value {
        plist::Value::String(s) => vec![s.clone()],
        plist::Value::Array(a) => a.iter().flat_map(strings).collect(),
        plist::Value::Dictionary(d) => d.values().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}
