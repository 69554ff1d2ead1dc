//! The real binary: `import` queues pushes, `push sync --dry-run` plans, `push status --json`
//! reports, and a `push run` killed half-way is completed by the next one.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::mdm::{API_KEY, FakeMdm};
use super::{fleet, jobs_in};
use crate::import::KEY;
use crate::server::Server;
use crate::support::{
    TestDb, binary, entries_under, fixture, mdm_mail_in, stderr, stdout, store_test,
};

fn env<'a>(db: &'a TestDb, mdm: &'a FakeMdm) -> Vec<(&'a str, &'a str)> {
    vec![
        ("MDM_MAIL_DATABASE_URL", db.url.as_str()),
        ("MDM_MAIL_SECRET_KEY", KEY),
        ("MDM_MAIL_NANOMDM_URL", mdm.url.as_str()),
        ("MDM_MAIL_NANOMDM_API_KEY", API_KEY),
    ]
}

fn profiles_arg() -> String {
    fixture("profiles").display().to_string()
}

/// Runs the binary on `db` with the fixture profiles, pushing to `mdm`.
fn run(db: &TestDb, mdm: &FakeMdm, args: &[&str]) -> std::process::Output {
    let profiles = profiles_arg();
    let mut all = vec!["--profiles", profiles.as_str()];
    all.extend_from_slice(args);
    mdm_mail_in(db.dir.path(), &env(db, mdm), &all)
}

/// Loads the fixture users and devices.
fn load_directory(db: &TestDb, mdm: &FakeMdm) {
    for (what, file) in [("users", "users.csv"), ("devices", "devices.csv")] {
        let out = run(db, mdm, &[what, "import", fixture(file).to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

store_test! {
    async fn an_import_from_the_command_line_queues_and_push_run_delivers(db: TestDb) {
        let mdm = FakeMdm::start();
        let run = |args: &[&str]| run(&db, &mdm, args);
        load_directory(&db, &mdm);
        let email = fixture("import/email.csv");
        let dry = run(&["import", email.to_str().unwrap(), "--type", "email", "--dry-run"]);
        assert!(!stderr(&dry).contains("push:"), "a dry run queues nothing: {}", stderr(&dry));
        let imported = run(&["import", email.to_str().unwrap(), "--type", "email"]);
        assert_eq!(imported.status.code(), Some(3), "{}", stderr(&imported));
        assert!(stderr(&imported).contains("push: 3 installs queued"), "{}", stderr(&imported));
        assert_eq!(jobs_in(&db, "queued").await, 3);

        let plan = run(&["push", "sync", "--dry-run", "--json"]);
        let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
        assert_eq!(plan["installs"], 0, "already queued: {plan}");

        let sent = run(&["push", "run", "--json"]);
        assert!(sent.status.success(), "{}", stderr(&sent));
        let sent: serde_json::Value = serde_json::from_slice(&sent.stdout).unwrap();
        // Bob's Windows PC has no transport here: it waits, and says so.
        assert_eq!((sent["sent"].as_u64(), sent["waiting"].as_u64()), (Some(2), Some(1)), "{sent}");
        assert_eq!(mdm.accepted().len(), 2);

        let status = run(&["push", "status", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(status["jobs"]["sent"], 2, "{status}");
        assert_eq!(status["jobs"]["queued"], 1, "{status}");
        let human = run(&["push", "status"]);
        assert!(stdout(&human).contains("WIN-B (windows): 1 queued"), "{}", stdout(&human));
        assert!(stdout(&human).contains("no transport for windows profiles"), "{}", stdout(&human));

        // The import's batch, which its push line names, stays its own after a later change.
        let said = stderr(&imported);
        let batch = said
            .split("push status --batch ")
            .nth(1)
            .and_then(|rest| rest.get(..36))
            .unwrap_or_else(|| panic!("no batch named: {said}"))
            .to_owned();
        let devices = db.dir.path().join("more-devices.csv");
        std::fs::write(&devices, "user_email,device_id,platform,enrollment_id\nbob@example.com,IPAD-B,ipados,IPAD-B\n").unwrap();
        let loaded = run(&["devices", "import", devices.to_str().unwrap()]);
        assert!(stderr(&loaded).contains("push: 1 install queued"), "{}", stderr(&loaded));
        let whole = run(&["push", "status", "--json"]);
        let whole: serde_json::Value = serde_json::from_slice(&whole.stdout).unwrap();
        assert_eq!(whole["jobs"]["queued"], 2, "{whole}");
        let import = run(&["push", "status", "--batch", &batch, "--json"]);
        let import: serde_json::Value = serde_json::from_slice(&import.stdout).unwrap();
        assert_eq!((import["jobs"]["sent"].as_i64(), import["jobs"]["queued"].as_i64()), (Some(2), Some(1)), "{import}");
        assert!(!import.to_string().contains("IPAD-B"), "{import}");

        let again = run(&["import", email.to_str().unwrap(), "--type", "email", "--no-push"]);
        assert!(!stderr(&again).contains("push:"), "{}", stderr(&again));
    }
}

store_test! {
    async fn a_killed_push_run_is_completed_by_the_next_one(db: TestDb) {
        let mdm = FakeMdm::start();
        mdm.delay(Duration::from_millis(20));
        let store = db.open().await;
        fleet(&store, 150).await;
        store.close().await;
        std::fs::write(
            db.dir.path().join("mdm-mail.toml"),
            "[push]\nconcurrency = 2\nlease_seconds = 1\nretry_base_ms = 20\n",
        )
        .unwrap();
        let env = env(&db, &mdm);
        let profiles = profiles_arg();
        let sync = mdm_mail_in(db.dir.path(), &env, &["--profiles", &profiles, "push", "sync"]);
        assert!(sync.status.success(), "{}", stderr(&sync));
        assert_eq!(jobs_in(&db, "queued").await, 150);

        let mut child = Command::new(binary());
        child
            .current_dir(db.dir.path())
            .args(["--profiles", &profiles, "push", "run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, _) in std::env::vars() {
            if key.starts_with("MDM_MAIL_") {
                child.env_remove(key);
            }
        }
        let mut child = child.envs(env.iter().copied()).spawn().unwrap();
        let started = Instant::now();
        while mdm.accepted().len() < 20 {
            assert!(started.elapsed() < Duration::from_secs(60), "push run never got going");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let interrupted = mdm.accepted().len();
        assert!(interrupted < 150, "killed before the end ({interrupted} sent)");
        assert!(jobs_in(&db, "sent").await < 150);

        let rerun = mdm_mail_in(db.dir.path(), &env, &["--profiles", &profiles, "push", "run", "--json"]);
        assert!(rerun.status.success(), "{}", stderr(&rerun));
        assert_eq!(jobs_in(&db, "sent").await, 150);
        let mut targets: Vec<String> = mdm.accepted().into_iter().map(|c| c.enrollment_id).collect();
        targets.sort();
        targets.dedup();
        assert_eq!(targets.len(), 150, "every device received its profile");
    }
}

store_test! {
    async fn accounts_remove_takes_the_profile_off_the_user_s_devices(db: TestDb) {
        let mdm = FakeMdm::start();
        let run = |args: &[&str]| run(&db, &mdm, args);
        load_directory(&db, &mdm);
        let email = fixture("import/email.csv");
        run(&["import", email.to_str().unwrap(), "--type", "email"]);
        assert!(run(&["push", "run"]).status.success());
        let installed = mdm.accepted().len();

        let missing = run(&["accounts", "remove", "alice@example.com", "nobody@mail.example.com", "--type", "email"]);
        assert_eq!(missing.status.code(), Some(1));
        assert!(
            stderr(&missing).contains("alice@example.com has no email account nobody@mail.example.com"),
            "{}", stderr(&missing)
        );

        let removed = run(&["accounts", "remove", "Alice@Example.com", "alice@mail.example.com", "--type", "email"]);
        assert!(removed.status.success(), "{}", stderr(&removed));
        assert!(stdout(&removed).contains("removed the email account alice@mail.example.com of Alice@Example.com"));
        assert!(stderr(&removed).contains("push: 2 removals queued"), "{}", stderr(&removed));
        assert!(run(&["push", "run"]).status.success());
        let removals: Vec<_> = mdm.accepted().into_iter().skip(installed).collect();
        assert_eq!(removals.len(), 2, "her iPhone and her Mac");
        assert!(removals.iter().all(|c| c.request_type == "RemoveProfile"), "{removals:?}");

        let again = run(&["accounts", "remove", "bob@example.com", "bob@mail.example.com", "--type", "email"]);
        assert!(again.status.success(), "{}", stderr(&again));
        assert!(
            stderr(&again).contains("push: nothing was queued: 1 removal not needed, the device was never sent"),
            "a removal that sends nothing says why: {}", stderr(&again)
        );

        let export = run(&["export", "--type", "email"]);
        assert!(!stdout(&export).contains("alice"), "{}", stdout(&export));
        let usage = run(&["accounts", "remove", "bob@example.com", "bob@mail.example.com", "--type", "pop3"]);
        assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));
    }
}

/// The environment of a binary run on `db` with the fixture profiles and no transport, plus
/// `extra`.
fn bare_env<'a>(
    db: &'a TestDb,
    profiles: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("MDM_MAIL_DATABASE_URL", db.url.as_str()),
        ("MDM_MAIL_SECRET_KEY", KEY),
        ("MDM_MAIL_PROFILES", profiles),
    ];
    env.extend_from_slice(extra);
    env
}

/// Loads the fixture users and devices and imports the fixture Email accounts, with no
/// transport configured: three installs wait in the queue.
fn queue_without_a_transport(db: &TestDb, profiles: &str) {
    let env = bare_env(db, profiles, &[]);
    for (what, file) in [("users", "users.csv"), ("devices", "devices.csv")] {
        let out = mdm_mail_in(
            db.dir.path(),
            &env,
            &[what, "import", fixture(file).to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let email = fixture("import/email.csv");
    let imported = mdm_mail_in(
        db.dir.path(),
        &env,
        &["import", email.to_str().unwrap(), "--type", "email"],
    );
    assert_eq!(imported.status.code(), Some(3), "{}", stderr(&imported));
}

/// The profile files under `folder`.
fn profile_files(folder: &std::path::Path) -> usize {
    entries_under(folder).iter().filter(|p| p.is_file()).count()
}

store_test! {
    async fn jobs_queued_without_a_transport_go_out_on_the_first_push_run_that_has_one(db: TestDb) {
        let profiles = profiles_arg();
        queue_without_a_transport(&db, &profiles);
        let env = bare_env(&db, &profiles, &[]);
        let none = mdm_mail_in(db.dir.path(), &env, &["push", "run", "--json"]);
        let none: serde_json::Value = serde_json::from_slice(&none.stdout).unwrap();
        assert_eq!((none["sent"].as_u64(), none["waiting"].as_u64()), (Some(0), Some(3)), "{none}");
        let again = mdm_mail_in(db.dir.path(), &env, &["push", "run"]);
        assert!(stdout(&again).contains("3 waiting for a transport"), "{}", stdout(&again));

        let folder = db.dir.path().join("devices");
        let folder_env = bare_env(&db, &profiles, &[("MDM_MAIL_PUSH_DIRECTORY", folder.to_str().unwrap())]);
        let started = Instant::now();
        let sent = mdm_mail_in(db.dir.path(), &folder_env, &["push", "run", "--json"]);
        assert!(sent.status.success(), "{}", stderr(&sent));
        let sent: serde_json::Value = serde_json::from_slice(&sent.stdout).unwrap();
        assert_eq!((sent["sent"].as_u64(), sent["waiting"].as_u64()), (Some(3), Some(0)), "{sent}");
        assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
        assert_eq!(profile_files(&folder), 3, "{:?}", entries_under(&folder));
        assert_eq!(jobs_in(&db, "queued").await, 0);
    }
}

store_test! {
    async fn serve_restarted_with_a_transport_sends_the_jobs_that_waited_for_one_at_once(db: TestDb) {
        let profiles = profiles_arg();
        queue_without_a_transport(&db, &profiles);
        let waiting = || db.scalar_i64("SELECT COUNT(*) FROM push_jobs WHERE waiting_transport");
        let without = Server::start_with(&db, &bare_env(&db, &profiles, &[]), &[]);
        let started = Instant::now();
        while waiting().await < 3 {
            assert!(started.elapsed() < Duration::from_secs(30), "the worker never looked at the jobs");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(without.terminate().success());

        let folder = db.dir.path().join("devices");
        let with = Server::start_with(
            &db,
            &bare_env(&db, &profiles, &[("MDM_MAIL_PUSH_DIRECTORY", folder.to_str().unwrap())]),
            &[],
        );
        let restarted = Instant::now();
        while jobs_in(&db, "sent").await < 3 {
            assert!(
                restarted.elapsed() < Duration::from_secs(20),
                "not sent at once after the restart: {:?}",
                entries_under(&folder)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(with.terminate().success());
        assert_eq!(profile_files(&folder), 3);
    }
}

store_test! {
    async fn a_windows_device_whose_accounts_are_deleted_and_added_again_is_told_a_replacement(db: TestDb) {
        let profiles = profiles_arg();
        let folder = db.dir.path().join("devices");
        let env = bare_env(&db, &profiles, &[("MDM_MAIL_PUSH_DIRECTORY", folder.to_str().unwrap())]);
        let run = |args: &[&str]| mdm_mail_in(db.dir.path(), &env, args);
        for (what, file) in [("users", "users.csv"), ("devices", "devices.csv")] {
            assert!(run(&[what, "import", fixture(file).to_str().unwrap()]).status.success());
        }
        let email = fixture("import/email.csv");
        run(&["import", email.to_str().unwrap(), "--type", "email"]);
        assert!(run(&["push", "run"]).status.success());

        let second = db.dir.path().join("second.csv");
        std::fs::write(&second, "bob@example.com,Bob,bob@other.example.com,bob2,,bob2,\n").unwrap();
        let imported = run(&["import", second.to_str().unwrap(), "--type", "email"]);
        assert!(imported.status.success(), "{}", stderr(&imported));
        let said = stderr(&imported);
        assert!(said.contains("push: 1 replacement queued"), "{said}");
        assert!(!said.contains("removal"), "an account added is no removal: {said}");
        let sent = run(&["push", "run", "--json"]);
        let sent: serde_json::Value = serde_json::from_slice(&sent.stdout).unwrap();
        assert_eq!(sent["sent"], 2, "the accounts deleted, then added again: {sent}");
    }
}

store_test! {
    async fn push_status_lists_the_devices_whose_answer_is_overdue_and_push_run_nudges_them(db: TestDb) {
        let mdm = FakeMdm::start();
        std::fs::write(db.dir.path().join("mdm-mail.toml"), "[push]\nanswer_overdue_seconds = 1\n").unwrap();
        let mut env = env(&db, &mdm);
        env.push(("MDM_MAIL_NANOMDM_WEBHOOK_KEY", "hook-key"));
        let profiles = profiles_arg();
        let run = |args: &[&str]| {
            let mut all = vec!["--profiles", profiles.as_str()];
            all.extend_from_slice(args);
            mdm_mail_in(db.dir.path(), &env, &all)
        };
        load_directory(&db, &mdm);
        let email = fixture("import/email.csv");
        run(&["import", email.to_str().unwrap(), "--type", "email"]);
        assert!(run(&["push", "run"]).status.success());
        let early = run(&["push", "status", "--json"]);
        let early: serde_json::Value = serde_json::from_slice(&early.stdout).unwrap();
        assert_eq!(early["jobs"]["overdue"], 0, "{early}");

        std::thread::sleep(Duration::from_millis(1200));
        let reminded = run(&["push", "run"]);
        assert!(reminded.status.success(), "{}", stderr(&reminded));
        assert!(stdout(&reminded).contains("answers overdue: 2 devices nudged, 0 sent again"), "{}", stdout(&reminded));
        let mut pushed = mdm.pushed();
        pushed.sort();
        assert_eq!(pushed, ["IPHONE-A", "MAC-A:501"]);

        let human = stdout(&run(&["push", "status"]));
        assert!(human.contains("2 sent (2 with the answer overdue)"), "{human}");
        assert!(human.contains("answers overdue (sent, no answer from the device):"), "{human}");
        let line = human.lines().find(|l| l.trim_start().starts_with("IPHONE-A (ios): install")).unwrap_or_else(|| panic!("{human}"));
        assert!(line.contains(" s, nudged 1 time") && !line.contains("times"), "{line}");
        let json = run(&["push", "status", "--json"]);
        let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(json["jobs"]["overdue"], 2, "{json}");
        let mut listed: Vec<&str> = json["overdue"].as_array().unwrap().iter().map(|j| j["device_id"].as_str().unwrap()).collect();
        listed.sort_unstable();
        assert_eq!(listed, ["IPHONE-A", "MAC-A"], "{json}");
        assert!(json["overdue"][0]["waiting_seconds"].as_i64().unwrap() >= 1, "{json}");
        assert_eq!(mdm.accepted().len(), 2, "nothing enqueued twice");
    }
}
