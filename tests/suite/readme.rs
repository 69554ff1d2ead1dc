//! The README as a newcomer follows it: the first-day script run as written in an empty
//! folder with the real binary on the PATH, and `serve --demo` started in an empty folder,
//! each followed to the device.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::server::Server;
use crate::support::{TestDb, binary};

/// The shell block under the README's "First day" heading.
fn first_day_script() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let section = readme
        .split_once("### First day")
        .expect("a First day section")
        .1;
    let block = section.split_once("```sh\n").expect("its shell block").1;
    block
        .split_once("\n```")
        .expect("the block's end")
        .0
        .to_owned()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn the_first_day_script_in_the_readme_runs_as_written_and_reaches_the_devices() {
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(binary()).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = std::process::Command::new("sh");
    command
        .args(["-e", "-c", &first_day_script()])
        .current_dir(dir.path())
        .env("PATH", path);
    for (key, _) in std::env::vars() {
        if key.starts_with("MDM_MAIL_") {
            command.env_remove(key);
        }
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "the README's first-day script failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let alice = files_under(&dir.path().join("delivered/ALICE-IPHONE"));
    assert_eq!(alice.len(), 1, "{alice:?}");
    let profile = std::fs::read_to_string(&alice[0]).unwrap();
    assert!(
        profile.contains("imap-secret-1"),
        "Alice's iPhone got her password"
    );
    let mode = std::fs::metadata(&alice[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(files_under(&dir.path().join("delivered/BOB-PC")).len(), 1);
}

#[tokio::test]
async fn serve_demo_in_an_empty_folder_delivers_every_device_its_profile() {
    let db = TestDb::sqlite().await;
    let server = Server::start_with(&db, &[], &["--demo"]);
    let devices = db.dir.path().join(mdm_mail::demo::DEVICES_FOLDER);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let delivered = files_under(&devices)
            .iter()
            .filter(|device| !files_under(device).is_empty())
            .count();
        if delivered == 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{delivered} of 6 demo devices got a profile"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.terminate();
    assert!(
        db.dir.path().join("profiles/email.toml").exists(),
        "the example definitions were written"
    );
}

#[tokio::test]
async fn a_profile_shown_on_a_terminal_hides_the_passwords_unless_asked() {
    let db = TestDb::sqlite().await;
    crate::hardening::with_fixture_users_in(&db);
    let accounts = db.dir.path().join("accounts.csv");
    std::fs::write(
        &accounts,
        "alice@example.com,Alice,alice@mail.example.com,alice,imap-secret-1,alice,smtp-secret-1\n",
    )
    .unwrap();
    assert!(
        db.run(&[
            "import",
            accounts.to_str().unwrap(),
            "--type",
            "email",
            "--no-push"
        ])
        .status
        .success()
    );
    // `script` gives the command a terminal, as an admin's shell does.
    let on_terminal = |extra: &str| {
        let command = format!(
            "MDM_MAIL_DATABASE_URL='{}' MDM_MAIL_SECRET_KEY='{}' MDM_MAIL_PROFILES='{}' '{}' profile alice@example.com --platform ios {extra}",
            db.url,
            crate::import::KEY,
            crate::support::fixture("profiles").display(),
            binary()
        );
        let output = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .current_dir(db.dir.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let shown = on_terminal("");
    assert!(
        !shown.contains("imap-secret-1") && shown.contains("********"),
        "{shown}"
    );
    assert!(shown.contains("--show-passwords prints them"), "{shown}");
    assert!(on_terminal("--show-passwords").contains("imap-secret-1"));
    let piped = crate::secrets::run(
        &db,
        &[("MDM_MAIL_SECRET_KEY", crate::import::KEY)],
        &["profile", "alice@example.com", "--platform", "ios"],
    );
    assert!(
        crate::support::stdout(&piped).contains("imap-secret-1"),
        "a pipe gets the profile a device would"
    );
}
