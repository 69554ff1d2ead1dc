//! First run and the secret key, as an admin meets them: the real binary, `serve` started
//! before any key exists, a lost key file, a wrong key, a key file others can read,
//! concurrent first imports.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mdm_mail::import::{self, ImportOptions, Mode};
use mdm_mail::model::AccountKind;
use mdm_mail::secrets::KeySource;
use mdm_mail::store::Store;

use crate::server::Server;
use crate::support::{TestDb, fixture, mdm_mail_in, stderr, stdout, store_test};

const OTHER_KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

const ALICE: &str =
    "alice@example.com,Alice Adams,alice@mail.example.com,alice,imap-1,alice,smtp-1\n";
const BOB: &str = "bob@example.com,Bob Baker,bob@mail.example.com,bob,imap-2,bob,smtp-2\n";

fn key_file(db: &TestDb) -> PathBuf {
    db.dir.path().join("test.key")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Runs the binary on `db` with `env` and nothing else configured but the profiles.
fn run(db: &TestDb, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let profiles = fixture("profiles");
    let mut all = vec![
        ("MDM_MAIL_DATABASE_URL", db.url.as_str()),
        ("MDM_MAIL_PROFILES", profiles.to_str().unwrap()),
    ];
    all.extend_from_slice(env);
    mdm_mail_in(db.dir.path(), &all, args)
}

/// The environment of a first run: nothing on SQLite, the key on PostgreSQL (which has no
/// key file of its own).
fn first_run_env(db: &TestDb) -> Vec<(&'static str, &'static str)> {
    if db.url.starts_with("postgres") {
        vec![("MDM_MAIL_SECRET_KEY", crate::import::KEY)]
    } else {
        Vec::new()
    }
}

fn write(db: &TestDb, name: &str, text: &str) -> String {
    let path = db.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

store_test! {
    async fn serve_started_before_any_key_pushes_from_the_first_api_import(db: TestDb) {
        let env = first_run_env(&db);
        let users = fixture("users.csv");
        let devices = fixture("devices.csv");
        assert!(run(&db, &env, &["users", "import", users.to_str().unwrap()]).status.success());
        assert!(run(&db, &env, &["devices", "import", devices.to_str().unwrap()]).status.success());
        let token = stdout(&run(&db, &env, &["token", "create", "admin"])).trim().to_owned();
        let drop = db.dir.path().join("drop");
        let profiles = fixture("profiles");
        let mut serve_env = env.clone();
        serve_env.push(("MDM_MAIL_PROFILES", profiles.to_str().unwrap()));
        serve_env.push(("MDM_MAIL_PUSH_DIRECTORY", drop.to_str().unwrap()));
        let server = Server::start_with(&db, &serve_env, &[]);

        let response = reqwest::Client::new()
            .post(format!("{}/api/imports?type=email", server.base))
            .bearer_auth(&token)
            .body(format!("{ALICE}{BOB}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["added"], 2, "{answer}");
        assert!(answer["push"]["installs"].as_u64().unwrap() > 0, "{answer}");

        let deadline = Instant::now() + Duration::from_secs(20);
        let delivered = loop {
            let files: Vec<PathBuf> = std::fs::read_dir(drop.join("WIN-B"))
                .map(|d| d.map(|e| e.unwrap().path()).collect())
                .unwrap_or_default();
            let profile = files.into_iter().find(|p| {
                std::fs::read_to_string(p).is_ok_and(|text| text.contains("imap-2"))
            });
            if let Some(profile) = profile {
                break profile;
            }
            assert!(
                Instant::now() < deadline,
                "no profile with bob's password reached his PC: {}",
                stdout(&run(&db, &env, &["push", "status"]))
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(mode(&delivered), 0o600, "a delivered profile holds passwords");
        server.terminate();
        if !db.url.starts_with("postgres") {
            assert_eq!(mode(&key_file(&db)), 0o600);
        }
        let status = stdout(&run(&db, &env, &["push", "status"]));
        assert!(!status.contains("cannot open"), "{status}");
    }
}

store_test! {
    async fn a_wrong_key_is_refused_with_nothing_written(db: TestDb) {
        let users = fixture("users.csv");
        assert!(db.run(&["users", "import", users.to_str().unwrap()]).status.success());
        let first = write(&db, "first.csv", ALICE);
        assert!(db.run(&["import", &first, "--type", "email"]).status.success());

        let second = write(&db, "second.csv", &format!("{ALICE}{BOB}"));
        let refused = run(&db, &[("MDM_MAIL_SECRET_KEY", OTHER_KEY)], &["import", &second, "--type", "email"]);
        assert_eq!(refused.status.code(), Some(1));
        let message = stderr(&refused);
        let expected = mdm_mail_in_key_id(crate::import::KEY);
        assert!(message.contains(&format!("sealed with key {expected}")), "{message}");
        assert!(message.contains("MDM_MAIL_SECRET_KEY"), "{message}");
        let dry = run(&db, &[("MDM_MAIL_SECRET_KEY", OTHER_KEY)], &["import", &second, "--type", "email", "--dry-run"]);
        assert_eq!(dry.status.code(), Some(1), "a preview cannot compare passwords either");

        let preview = db.run(&["import", &second, "--type", "email", "--dry-run", "--json"]);
        let summary: serde_json::Value = serde_json::from_slice(&preview.stdout).unwrap();
        assert_eq!((summary["added"].as_u64(), summary["unchanged"].as_u64()), (Some(1), Some(1)), "{summary}");
    }
}

fn mdm_mail_in_key_id(key: &str) -> String {
    KeySource::Env(key.to_owned())
        .read()
        .unwrap()
        .unwrap()
        .id()
        .to_owned()
}

#[tokio::test]
async fn a_lost_key_file_is_refused_and_no_new_key_is_made() {
    let db = TestDb::sqlite().await;
    let users = fixture("users.csv");
    assert!(
        run(&db, &[], &["users", "import", users.to_str().unwrap()])
            .status
            .success()
    );
    let first = write(&db, "first.csv", ALICE);
    assert!(
        run(&db, &[], &["import", &first, "--type", "email"])
            .status
            .success()
    );
    let key = key_file(&db);
    let id = KeySource::File(key.clone())
        .read()
        .unwrap()
        .unwrap()
        .id()
        .to_owned();
    let elsewhere = db.dir.path().join("elsewhere.key");
    std::fs::rename(&key, &elsewhere).unwrap();

    let second = write(&db, "second.csv", BOB);
    let refused = run(&db, &[], &["import", &second, "--type", "email"]);
    assert_eq!(refused.status.code(), Some(1));
    let message = stderr(&refused);
    assert!(
        message.contains(&format!("sealed with key {id}")),
        "{message}"
    );
    assert!(
        message.contains(&format!("{}: no such file", key.display())),
        "{message}"
    );
    assert!(!key.exists(), "no new key was made");

    std::fs::rename(&elsewhere, &key).unwrap();
    let preview = run(
        &db,
        &[],
        &["import", &second, "--type", "email", "--dry-run", "--json"],
    );
    let summary: serde_json::Value = serde_json::from_slice(&preview.stdout).unwrap();
    assert_eq!(
        summary["added"], 1,
        "the refused import wrote nothing: {summary}"
    );
}

#[tokio::test]
async fn a_key_file_others_can_read_is_refused_with_how_to_fix_it() {
    let db = TestDb::sqlite().await;
    let users = fixture("users.csv");
    assert!(
        run(&db, &[], &["users", "import", users.to_str().unwrap()])
            .status
            .success()
    );
    let first = write(&db, "first.csv", ALICE);
    assert!(
        run(&db, &[], &["import", &first, "--type", "email"])
            .status
            .success()
    );
    let key = key_file(&db);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();

    let refused = run(
        &db,
        &[],
        &["profile", "alice@example.com", "--platform", "ios"],
    );
    assert_eq!(refused.status.code(), Some(1));
    let message = stderr(&refused);
    assert!(
        message.contains(&format!("chmod 600 {}", key.display())),
        "{message}"
    );
}

#[tokio::test]
async fn concurrent_first_imports_agree_on_one_key() {
    let db = TestDb::sqlite().await;
    let users = fixture("users.csv");
    assert!(
        run(&db, &[], &["users", "import", users.to_str().unwrap()])
            .status
            .success()
    );
    let files: Vec<String> = (0..4)
        .map(|i| {
            write(
                &db,
                &format!("f{i}.csv"),
                if i % 2 == 0 { ALICE } else { BOB },
            )
        })
        .collect();
    let children: Vec<_> = files
        .iter()
        .map(|file| {
            let profiles = fixture("profiles");
            let mut command = std::process::Command::new(crate::support::binary());
            for (key, _) in std::env::vars() {
                if key.starts_with("MDM_MAIL_") {
                    command.env_remove(key);
                }
            }
            command
                .current_dir(db.dir.path())
                .env("MDM_MAIL_DATABASE_URL", &db.url)
                .env("MDM_MAIL_PROFILES", &profiles)
                .args(["import", file, "--type", "email", "--no-push"])
                .output()
        })
        .collect();
    for child in children {
        let output = child.unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let store = Store::open(&db.url).await.unwrap();
    let recorded = store.key_check().await.unwrap().unwrap();
    let key = KeySource::File(key_file(&db)).read().unwrap().unwrap();
    assert_eq!(recorded, key.id());
    let rendered = run(
        &db,
        &[],
        &["profile", "bob@example.com", "--platform", "ios"],
    );
    assert!(
        stdout(&rendered).contains("imap-2"),
        "{}",
        stderr(&rendered)
    );
}

store_test! {
    async fn a_device_whose_passwords_could_not_be_opened_is_decided_again_once_they_can(db: TestDb) {
        let store = crate::import::store_with_users(&db).await;
        let devices = std::fs::read_to_string(fixture("devices.csv")).unwrap();
        crate::push::load_devices(&store, &devices).await;
        crate::push::import_accounts(&store, AccountKind::Email, ALICE).await;
        let mut wrong = crate::push::profiles();
        wrong.secrets = KeySource::Env(OTHER_KEY.to_owned());
        let blocked = mdm_mail::push::reconcile(&store, &wrong, false).await.unwrap();
        assert_eq!(blocked.installs, 0);
        assert!(blocked.statuses.iter().any(|s| s.message.contains("sealed with key")), "{blocked:?}");

        let fixed = mdm_mail::push::reconcile(&store, &crate::push::profiles(), false).await.unwrap();
        assert!(fixed.installs > 0, "{fixed:?}");
    }
}

#[tokio::test]
async fn a_preview_of_a_fresh_store_writes_no_key() {
    let db = TestDb::sqlite().await;
    let store = Store::open(&db.url).await.unwrap();
    let source = KeySource::CreateBeside(key_file(&db));
    import::run(
        &store,
        &source,
        std::io::Cursor::new(ALICE.as_bytes().to_vec()),
        &ImportOptions::new(AccountKind::Email),
        Mode::Preview,
        None,
    )
    .await
    .unwrap();
    assert!(!key_file(&db).exists());
    assert_eq!(store.key_check().await.unwrap(), None);
}
