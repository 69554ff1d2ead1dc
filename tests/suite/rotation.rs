//! `mdm-mail secrets rotate` and `secrets status` through the real binary: every password
//! moved to the new key and still the admin's, nothing re-pushed, the old key refused
//! afterwards, and nothing lost when the rotation fails, is interrupted, or races an import.

use std::path::Path;

use mdm_mail::secrets::KeySource;

use crate::secrets::{key_id, run};
use crate::support::{TestDb, fixture, mdm_mail_command, mdm_mail_in, stderr, stdout, store_test};

const OLD: &str = crate::import::KEY;
const NEW: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

const ACCOUNTS: &str = "alice@example.com,Alice Adams,alice@mail.example.com,alice,imap-1,alice,smtp-1\n\
bob@example.com,Bob Baker,bob@mail.example.com,bob,imap-2,bob,smtp-2\n";

fn id(key: &str) -> String {
    key_id(&KeySource::Env(key.to_owned()))
}

fn file_id(path: &Path) -> String {
    key_id(&KeySource::File(path.to_owned()))
}

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(output), stderr(output)))
}

/// The fixture's users and devices, Alice's and Bob's accounts sealed under whatever key
/// `env` configures (or the key file the first import makes), and the push decided.
fn sealed_store(db: &TestDb, env: &[(&str, &str)]) -> String {
    let users = fixture("users.csv");
    let devices = fixture("devices.csv");
    assert!(
        run(db, env, &["users", "import", users.to_str().unwrap()])
            .status
            .success()
    );
    assert!(
        run(db, env, &["devices", "import", devices.to_str().unwrap()])
            .status
            .success()
    );
    let file = db.dir.path().join("accounts.csv");
    std::fs::write(&file, ACCOUNTS).unwrap();
    let file = file.display().to_string();
    let imported = run(db, env, &["import", &file, "--type", "email"]);
    assert!(imported.status.success(), "{}", stderr(&imported));
    file
}

/// What a dry run of `file` finds, as (added, updated, unchanged).
fn preview(db: &TestDb, env: &[(&str, &str)], file: &str) -> (u64, u64, u64) {
    let summary = json(&run(
        db,
        env,
        &["import", file, "--type", "email", "--dry-run", "--json"],
    ));
    let count = |k: &str| summary[k].as_u64().unwrap_or_else(|| panic!("{summary}"));
    (count("added"), count("updated"), count("unchanged"))
}

fn bobs_profile(db: &TestDb, env: &[(&str, &str)]) -> std::process::Output {
    run(
        db,
        env,
        &["profile", "bob@example.com", "--platform", "ios"],
    )
}

store_test! {
    async fn a_rotation_reseals_every_password_and_pushes_nothing_again(db: TestDb) {
        let old = [("MDM_MAIL_SECRET_KEY", OLD)];
        let new = [("MDM_MAIL_SECRET_KEY", NEW)];
        let file = sealed_store(&db, &old);
        let before = json(&run(&db, &old, &["push", "sync", "--json"]));
        assert_eq!(before["installs"], 0, "the import queued its installs: {before}");

        let rotated = run(&db, &[("MDM_MAIL_SECRET_KEY", OLD), ("MDM_MAIL_NEW_SECRET_KEY", NEW)], &["secrets", "rotate", "--json"]);
        assert!(rotated.status.success(), "{}", stderr(&rotated));
        let report = json(&rotated);
        assert_eq!(report["from"], id(OLD));
        assert_eq!(report["to"], id(NEW));
        assert_eq!((report["resealed"]["accounts"].as_u64(), report["resealed"]["passwords"].as_u64()), (Some(2), Some(4)));
        assert!(stderr(&rotated).contains("configure the new key"), "{}", stderr(&rotated));

        let refused = bobs_profile(&db, &old);
        assert_eq!(refused.status.code(), Some(1));
        assert!(stderr(&refused).contains(&format!("sealed with key {}", id(NEW))), "{}", stderr(&refused));
        let status = run(&db, &old, &["secrets", "status"]);
        assert_eq!(status.status.code(), Some(1), "{}", stdout(&status));

        assert!(stdout(&bobs_profile(&db, &new)).contains("imap-2"), "the password is still Bob's");
        assert_eq!(preview(&db, &new, &file), (0, 0, 2), "MACs moved with the passwords");
        let after = json(&run(&db, &new, &["push", "sync", "--json"]));
        assert_eq!((after["installs"].as_u64(), after["removals"].as_u64()), (Some(0), Some(0)), "{after}");
        assert_eq!(after["rendered_same"], 3, "every device looked at again, none changed: {after}");
        let status = json(&run(&db, &new, &["secrets", "status", "--json"]));
        assert_eq!(status["recorded"], id(NEW));
        assert_eq!(status["problem"], serde_json::Value::Null);
    }
}

#[tokio::test]
async fn the_key_file_beside_the_database_is_replaced_and_the_old_one_kept_for_backups() {
    let db = TestDb::sqlite().await;
    let file = sealed_store(&db, &[]);
    let key = db.dir.path().join("test.key");
    let old_id = file_id(&key);
    let backup = db.dir.path().join("backup.db");
    let copied = run(&db, &[], &["push", "status"]);
    assert!(copied.status.success());
    // A copy of a SQLite file in WAL mode is the file and its WAL: what was committed last
    // may still be in the WAL (sqlx closes its connections on threads of their own, and a
    // process may end before the last one has folded the WAL back into the file).
    std::fs::copy(db.dir.path().join("test.db"), &backup).unwrap();
    let wal = db.dir.path().join("test.db-wal");
    if wal.exists() {
        std::fs::copy(&wal, db.dir.path().join("backup.db-wal")).unwrap();
    }

    let rotated = run(&db, &[], &["secrets", "rotate"]);
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    assert!(
        stdout(&rotated).contains("resealed 4 passwords in 2 accounts"),
        "{}",
        stdout(&rotated)
    );
    let new_id = file_id(&key);
    assert_ne!(new_id, old_id);
    let retired = key.with_extension(format!("key.{old_id}.retired"));
    assert_eq!(file_id(&retired), old_id);
    for file in [&key, &retired] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    assert!(!key.with_extension("key.new").exists());
    assert!(stdout(&bobs_profile(&db, &[])).contains("imap-2"));
    assert_eq!(preview(&db, &[], &file), (0, 0, 2));

    let backup_url = format!("sqlite://{}", backup.display());
    let opened = mdm_mail_in(
        db.dir.path(),
        &[
            ("MDM_MAIL_DATABASE_URL", backup_url.as_str()),
            ("MDM_MAIL_SECRET_KEY_FILE", retired.to_str().unwrap()),
            ("MDM_MAIL_PROFILES", fixture("profiles").to_str().unwrap()),
        ],
        &["profile", "bob@example.com", "--platform", "ios"],
    );
    assert!(
        stdout(&opened).contains("imap-2"),
        "the retired key opens the old backup: {}",
        stderr(&opened)
    );
}

store_test! {
    async fn a_failed_rotation_changes_nothing(db: TestDb) {
        let old = [("MDM_MAIL_SECRET_KEY", OLD)];
        let file = sealed_store(&db, &old);
        // The last write of the rotation fails: everything before it must be undone.
        db.execute(
            "CREATE TRIGGER no_move BEFORE UPDATE ON secret_key_check BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;",
            "CREATE FUNCTION no_move() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$; \
             CREATE TRIGGER no_move BEFORE UPDATE ON secret_key_check FOR EACH ROW EXECUTE FUNCTION no_move();",
        )
        .await;
        let failed = run(&db, &[("MDM_MAIL_SECRET_KEY", OLD), ("MDM_MAIL_NEW_SECRET_KEY", NEW)], &["secrets", "rotate"]);
        assert_eq!(failed.status.code(), Some(1));
        assert!(stderr(&failed).contains("disk on fire"), "{}", stderr(&failed));
        assert!(stdout(&bobs_profile(&db, &old)).contains("imap-2"));
        assert_eq!(preview(&db, &old, &file), (0, 0, 2));
        assert!(run(&db, &old, &["secrets", "status"]).status.success());
    }
}

#[tokio::test]
async fn a_rotation_stopped_before_its_key_file_moved_is_named_and_finished_by_running_it_again() {
    let db = TestDb::sqlite().await;
    let file = sealed_store(&db, &[]);
    let key = db.dir.path().join("test.key");
    let old_id = file_id(&key);
    // The state a crash between the commit and the rename leaves: the store records the new
    // key, which waits in test.key.new, while test.key still holds the old one.
    let pending = key.with_extension("key.new");
    mdm_mail::secrets::write_key_file(&pending, &mdm_mail::crypto::parse_key(NEW, "NEW").unwrap())
        .unwrap();
    let moved = run(
        &db,
        &[
            ("MDM_MAIL_SECRET_KEY_FILE", key.to_str().unwrap()),
            ("MDM_MAIL_NEW_SECRET_KEY", NEW),
        ],
        &["secrets", "rotate"],
    );
    assert!(moved.status.success(), "{}", stderr(&moved));

    let refused = bobs_profile(&db, &[]);
    assert_eq!(refused.status.code(), Some(1));
    let message = stderr(&refused);
    assert!(
        message.contains("interrupted `mdm-mail secrets rotate`"),
        "{message}"
    );
    assert!(
        message.contains(&pending.display().to_string()),
        "{message}"
    );

    let finished = run(&db, &[], &["secrets", "rotate"]);
    assert!(finished.status.success(), "{}", stderr(&finished));
    assert!(
        stdout(&finished).contains("finished an interrupted rotation"),
        "{}",
        stdout(&finished)
    );
    assert_eq!(file_id(&key), id(NEW));
    assert_eq!(
        file_id(&key.with_extension(format!("key.{old_id}.retired"))),
        old_id
    );
    assert!(stdout(&bobs_profile(&db, &[])).contains("imap-2"));
    assert_eq!(preview(&db, &[], &file), (0, 0, 2));
}

#[tokio::test]
async fn a_pending_key_file_of_a_rotation_that_never_committed_is_discarded() {
    let db = TestDb::sqlite().await;
    sealed_store(&db, &[]);
    let key = db.dir.path().join("test.key");
    let pending = key.with_extension("key.new");
    mdm_mail::secrets::write_key_file(&pending, &[9; 32]).unwrap();
    let rotated = run(
        &db,
        &[("MDM_MAIL_NEW_SECRET_KEY", NEW)],
        &["secrets", "rotate"],
    );
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    assert_eq!(file_id(&key), id(NEW));
    assert!(!pending.exists());
    assert!(stdout(&bobs_profile(&db, &[])).contains("imap-2"));
}

store_test! {
    async fn a_rotation_is_refused_without_the_right_old_key_or_a_new_one(db: TestDb) {
        let old = [("MDM_MAIL_SECRET_KEY", OLD)];
        sealed_store(&db, &old);
        let cases: [(&[(&str, &str)], &str); 3] = [
            (&[("MDM_MAIL_SECRET_KEY", NEW), ("MDM_MAIL_NEW_SECRET_KEY", NEW)], "sealed with key"),
            (&[("MDM_MAIL_SECRET_KEY", OLD)], "no new key: the store's key comes from MDM_MAIL_SECRET_KEY"),
            (&[("MDM_MAIL_SECRET_KEY", OLD), ("MDM_MAIL_NEW_SECRET_KEY", OLD)], "the one the store already uses"),
        ];
        for (env, reason) in cases {
            let refused = run(&db, env, &["secrets", "rotate"]);
            assert_eq!(refused.status.code(), Some(1), "{env:?}");
            assert!(stderr(&refused).contains(reason), "{env:?}: {}", stderr(&refused));
        }
        assert!(stdout(&bobs_profile(&db, &old)).contains("imap-2"));
    }
}

#[tokio::test]
async fn a_fresh_store_has_nothing_to_rotate() {
    let db = TestDb::sqlite().await;
    let refused = run(&db, &[], &["secrets", "rotate"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("nothing to rotate"),
        "{}",
        stderr(&refused)
    );
    assert!(!db.dir.path().join("test.key").exists());
    assert!(!db.dir.path().join("test.key.new").exists());
}

/// Holds the store's key check in a transaction that moves it to another key, as a
/// rotation does, and commits that when told.
async fn rotate_meanwhile(
    url: String,
    held: tokio::sync::oneshot::Sender<()>,
    commit: tokio::sync::oneshot::Receiver<()>,
) {
    const MOVE: &str = "UPDATE secret_key_check SET key_id = 'another'";
    if url.starts_with("postgres") {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        sqlx::raw_sql("BEGIN").execute(&mut conn).await.unwrap();
        sqlx::raw_sql(MOVE).execute(&mut conn).await.unwrap();
        held.send(()).unwrap();
        commit.await.unwrap();
        sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
    } else {
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::raw_sql(MOVE).execute(&mut conn).await.unwrap();
        held.send(()).unwrap();
        commit.await.unwrap();
        sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
    }
}

store_test! {
    async fn an_import_that_began_under_the_old_key_writes_nothing_once_the_key_moved(db: TestDb) {
        let old = [("MDM_MAIL_SECRET_KEY", OLD)];
        sealed_store(&db, &old);
        let file = db.dir.path().join("chloe.csv");
        std::fs::write(&file, "chloe@example.com,Chloé,chloe@mail.example.com,chloe,pw-c,chloe,out-c\n").unwrap();
        let (commit, committed) = tokio::sync::oneshot::channel();
        let (held, holding) = tokio::sync::oneshot::channel::<()>();
        let profiles = fixture("profiles");
        let mover = rotate_meanwhile(db.url.clone(), held, committed);
        let importer = async {
            holding.await.unwrap();
            let import = mdm_mail_command(
            db.dir.path(),
            &[
                ("MDM_MAIL_DATABASE_URL", db.url.as_str()),
                ("MDM_MAIL_PROFILES", profiles.to_str().unwrap()),
                ("MDM_MAIL_SECRET_KEY", OLD),
            ],
            &["import", file.to_str().unwrap(), "--type", "email", "--no-push"],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
            // Time for the import to check its key against the store and wait for the lock.
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            commit.send(()).unwrap();
            import
        };
        let ((), import) = tokio::join!(mover, importer);
        let output = import.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
        let message = stderr(&output);
        assert!(
            message.contains("moved to another key") || message.contains("sealed with key another"),
            "{message}"
        );
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 2, "nothing written");
    }
}

store_test! {
    async fn a_server_left_on_the_old_key_answers_503_naming_the_key_it_needs(db: TestDb) {
        let old = [("MDM_MAIL_SECRET_KEY", OLD)];
        let file = sealed_store(&db, &old);
        let token = stdout(&run(&db, &old, &["token", "create", "ops", "--scope", "read,write,secrets"]))
            .trim()
            .to_owned();
        let profiles = fixture("profiles");
        let server = crate::server::Server::start_with(
            &db,
            &[("MDM_MAIL_SECRET_KEY", OLD), ("MDM_MAIL_PROFILES", profiles.to_str().unwrap())],
            &[],
        );
        let rotated = run(&db, &[("MDM_MAIL_SECRET_KEY", OLD), ("MDM_MAIL_NEW_SECRET_KEY", NEW)], &["secrets", "rotate"]);
        assert!(rotated.status.success(), "{}", stderr(&rotated));

        let client = reqwest::Client::new();
        let import = client
            .post(format!("{}/api/imports?type=email", server.base))
            .bearer_auth(&token)
            .body(std::fs::read(&file).unwrap())
            .send()
            .await
            .unwrap();
        let profile = client
            .get(format!("{}/api/users/bob@example.com/profile?platform=ios", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        for answer in [import, profile] {
            assert_eq!(answer.status(), 503);
            let body: serde_json::Value = answer.json().await.unwrap();
            assert_eq!(body["error"]["code"], "secret_key", "{body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(&format!("sealed with key {}", id(NEW))), "{message}");
        }
        server.terminate();
        assert_eq!(preview(&db, &[("MDM_MAIL_SECRET_KEY", NEW)], &file), (0, 0, 2), "the refused import wrote nothing");
    }
}
