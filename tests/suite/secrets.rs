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
use crate::support::{TestDb, fixture, mdm_mail_command, mdm_mail_in, stderr, stdout, store_test};

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
pub fn run(db: &TestDb, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
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
        let expected = key_id(&KeySource::Env(crate::import::KEY.to_owned()));
        assert!(message.contains(&format!("sealed with key {expected}")), "{message}");
        assert!(message.contains("MDM_MAIL_SECRET_KEY"), "{message}");
        let dry = run(&db, &[("MDM_MAIL_SECRET_KEY", OTHER_KEY)], &["import", &second, "--type", "email", "--dry-run"]);
        assert_eq!(dry.status.code(), Some(1), "a preview cannot compare passwords either");

        let preview = db.run(&["import", &second, "--type", "email", "--dry-run", "--json"]);
        let summary: serde_json::Value = serde_json::from_slice(&preview.stdout).unwrap();
        assert_eq!((summary["added"].as_u64(), summary["unchanged"].as_u64()), (Some(1), Some(1)), "{summary}");
    }
}

/// The identifier the store records for the key `source` reads.
pub fn key_id(source: &KeySource) -> String {
    source.read().unwrap().unwrap().id().to_owned()
}

/// A SQLite store with the fixture's users and one sealed account, its key made by that
/// first import in the default key file; returns that file.
fn sealed_with_a_key_file(db: &TestDb) -> PathBuf {
    let users = fixture("users.csv");
    assert!(
        run(db, &[], &["users", "import", users.to_str().unwrap()])
            .status
            .success()
    );
    let first = write(db, "first.csv", ALICE);
    assert!(
        run(db, &[], &["import", &first, "--type", "email"])
            .status
            .success()
    );
    key_file(db)
}

#[tokio::test]
async fn a_lost_key_file_is_refused_and_no_new_key_is_made() {
    let db = TestDb::sqlite().await;
    let key = sealed_with_a_key_file(&db);
    let id = key_id(&KeySource::File(key.clone()));
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
    let key = sealed_with_a_key_file(&db);
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
    let profiles = fixture("profiles");
    let env = [
        ("MDM_MAIL_DATABASE_URL", db.url.as_str()),
        ("MDM_MAIL_PROFILES", profiles.to_str().unwrap()),
    ];
    // All started before any is waited for, so they race for the first key.
    let children: Vec<_> = files
        .iter()
        .map(|file| {
            mdm_mail_command(
                db.dir.path(),
                &env,
                &["import", file, "--type", "email", "--no-push"],
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let store = Store::open(&db.url).await.unwrap();
    let recorded = store.key_check().await.unwrap().unwrap();
    assert_eq!(recorded, key_id(&KeySource::File(key_file(&db))));
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

#[tokio::test]
async fn profiles_written_to_files_are_private() {
    let db = TestDb::sqlite().await;
    sealed_with_a_key_file(&db);
    let one = db.dir.path().join("alice.mobileconfig");
    let written = run(
        &db,
        &[],
        &[
            "profile",
            "alice@example.com",
            "--platform",
            "ios",
            "--out",
            one.to_str().unwrap(),
        ],
    );
    assert!(written.status.success(), "{}", stderr(&written));
    assert_eq!(mode(&one), 0o600);

    let all = db.dir.path().join("all");
    let written = run(
        &db,
        &[],
        &[
            "profile",
            "--all",
            "--platform",
            "ios",
            "--out-dir",
            all.to_str().unwrap(),
        ],
    );
    assert!(written.status.success(), "{}", stderr(&written));
    let files: Vec<PathBuf> = std::fs::read_dir(&all)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(!files.is_empty(), "{}", stdout(&written));
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}
