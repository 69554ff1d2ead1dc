//! The real binary: `import` queues pushes, `push sync --dry-run` plans, `push status --json`
//! reports, and a `push run` killed half-way is completed by the next one.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::mdm::{API_KEY, FakeMdm};
use super::{fleet, jobs_in};
use crate::import::KEY;
use crate::support::{TestDb, binary, fixture, mdm_mail_in, stderr, stdout, store_test};

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
        assert!(stderr(&imported).contains("push: 3 installs and 0 removals queued"), "{}", stderr(&imported));
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
        assert!(stderr(&removed).contains("push: 0 installs and 2 removals queued"), "{}", stderr(&removed));
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
