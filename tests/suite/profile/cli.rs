//! `mdm-mail profile`: a stored user's profile rendered by the real binary from their
//! imported accounts, redacted, signed, and for every user at once, each file inside the
//! folder whatever the user's address.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use mdm_mail::model::{normalize_email, validate_email};
use mdm_mail::profile::files::safe_name;

use crate::import::KEY;
use crate::support::{TestDb, entries_under, fixture, stderr, stdout, store_test};

/// A store with the fixture users and, for alice, an Email and an Exchange account with
/// passwords that need escaping; bob has an Email account without passwords.
fn seeded(db: &TestDb) {
    let run = |args: &[&str]| {
        let output = db.run(args);
        assert!(
            output.status.code() == Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
    };
    run(&["users", "import", fixture("users.csv").to_str().unwrap()]);
    let email = db.dir.path().join("email.csv");
    std::fs::write(
        &email,
        "alice@example.com,\"Adams, Alice \"\"Al\"\" <&>\",alice@example.com,alice,\"p\"\"ss,word<&>\",alice,smtp-pw\n\
         bob@example.com,Bob,bob@example.com,bob,,bob,\n",
    )
    .unwrap();
    run(&["import", email.to_str().unwrap(), "--type", "email"]);
    let exchange = db.dir.path().join("exchange.csv");
    std::fs::write(
        &exchange,
        "alice@example.com,alice@example.com,alice,CORP,eas-pw\n",
    )
    .unwrap();
    run(&["import", exchange.to_str().unwrap(), "--type", "exchange"]);
}

fn profiles_arg() -> String {
    fixture("profiles").display().to_string()
}

fn payloads(plist: &[u8]) -> Vec<plist::Dictionary> {
    let profile: plist::Dictionary = plist::from_bytes(plist).expect("a plist");
    profile["PayloadContent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_dictionary().unwrap().clone())
        .collect()
}

store_test! {
    async fn a_users_profile_carries_their_accounts_and_passwords_exactly(db: TestDb) {
        seeded(&db);
        let output = db.run(&[
            "--profiles", &profiles_arg(), "profile", "Alice@Example.com", "--platform", "ios",
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

        let payloads = payloads(&output.stdout);
        let types: Vec<&str> = payloads.iter().map(|p| p["PayloadType"].as_string().unwrap()).collect();
        assert_eq!(types, ["com.apple.mail.managed", "com.apple.eas.account"]);
        assert_eq!(payloads[0]["EmailAccountName"].as_string(), Some("Adams, Alice \"Al\" <&>"));
        assert_eq!(payloads[0]["IncomingPassword"].as_string(), Some("p\"ss,word<&>"));
        assert_eq!(payloads[1]["Password"].as_string(), Some("eas-pw"));

        let again = db.run(&[
            "--profiles", &profiles_arg(), "profile", "alice@example.com", "--platform", "ios",
        ]);
        assert_eq!(again.stdout, output.stdout, "re-rendering gives the same bytes");
    }
}

store_test! {
    async fn without_a_stored_password_the_profile_lets_the_device_ask(db: TestDb) {
        seeded(&db);
        let out = db.dir.path().join("bob.mobileconfig");
        let output = db.run(&[
            "--profiles", &profiles_arg(), "profile", "bob@example.com", "--platform", "macos",
            "--out", out.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

        let payloads = payloads(&std::fs::read(out).unwrap());
        assert!(payloads[0].get("IncomingPassword").is_none());
        assert_eq!(payloads[0]["IncomingMailServerUsername"].as_string(), Some("bob"));
    }
}

store_test! {
    async fn a_redacted_profile_hides_every_password(db: TestDb) {
        seeded(&db);
        let output = db.run(&[
            "--profiles", &profiles_arg(), "profile", "alice@example.com", "--platform",
            "windows", "--redact",
        ]);
        let text = stdout(&output);
        assert!(text.contains("<Atomic>"), "{text}");
        for secret in ["ss,word", "smtp-pw", "eas-pw"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}

store_test! {
    async fn users_without_accounts_or_unknown_users_get_a_clear_error(db: TestDb) {
        seeded(&db);
        let chloe = db.run(&["--profiles", &profiles_arg(), "profile", "chloe@example.com", "--platform", "ios"]);
        assert_eq!(chloe.status.code(), Some(1));
        assert!(stderr(&chloe).contains("chloe@example.com has no mail accounts"), "{}", stderr(&chloe));

        let nobody = db.run(&["--profiles", &profiles_arg(), "profile", "nobody@example.com", "--platform", "ios"]);
        assert!(stderr(&nobody).contains("no user with email nobody@example.com"), "{}", stderr(&nobody));

        let android = db.run(&["--profiles", &profiles_arg(), "profile", "bob@example.com", "--platform", "android"]);
        assert_eq!(android.status.code(), Some(1));
        assert!(stderr(&android).contains("not supported on Android"), "{}", stderr(&android));
    }
}

store_test! {
    async fn every_users_profile_can_be_written_into_a_folder(db: TestDb) {
        seeded(&db);
        let dir = db.dir.path().join("out");
        let output = db.run(&[
            "--profiles", &profiles_arg(), "profile", "--all", "--platform", "ipados",
            "--out-dir", dir.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["alice@example.com.mobileconfig", "bob@example.com.mobileconfig"]);
        let single = db.run(&["--profiles", &profiles_arg(), "profile", "bob@example.com", "--platform", "ipados"]);
        assert_eq!(std::fs::read(dir.join(&files[1])).unwrap(), single.stdout);
    }
}

/// Loads users whose addresses look like paths or are longer than a file name may be, each
/// with an Email account, and returns their addresses. The users loader takes
/// `/abs/dir/x@y.zz` and `a/./b@y.zz` (a local part may hold `/`); it refuses `../x@y.zz` (a
/// local part may not start with a dot) and local parts over 64 bytes, so the long address
/// is a 64-byte local part at a domain of two-byte letters, 316 bytes in all. One more
/// address names a file in the scratch folder, the output folder's parent, when that
/// folder's path is short enough to be a local part.
fn path_like_users(db: &TestDb) -> Vec<String> {
    let mut users = vec![
        "/abs/dir/x@y.zz".to_owned(),
        "A/./B@y.zz".to_owned(),
        format!("{}@{}", "l".repeat(64), vec!["é".repeat(31); 4].join(".")),
    ];
    let aimed = format!("{}/escaped@y.zz", db.dir.path().display());
    if validate_email(&aimed).is_ok() {
        users.push(aimed);
    }
    assert!(users[2].len() > 255, "{}", users[2].len());
    let mut directory = String::from("email,display_name\n");
    let mut accounts = String::new();
    for (i, user) in users.iter().enumerate() {
        directory.push_str(&format!("{user},User {i}\n"));
        accounts.push_str(&format!(
            "{user},User {i},p{i}@example.com,p{i},pw-{i},p{i},smtp-{i}\n"
        ));
    }
    let users_csv = db.dir.path().join("path-like-users.csv");
    std::fs::write(&users_csv, directory).unwrap();
    let accounts_csv = db.dir.path().join("path-like-accounts.csv");
    std::fs::write(&accounts_csv, accounts).unwrap();
    for args in [
        ["users", "import", users_csv.to_str().unwrap()].as_slice(),
        ["import", accounts_csv.to_str().unwrap(), "--type", "email"].as_slice(),
    ] {
        let output = db.run(args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    users
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn all_into(db: &TestDb, dir: &Path) -> std::process::Output {
    db.run(&[
        "--profiles",
        &profiles_arg(),
        "profile",
        "--all",
        "--platform",
        "ios",
        "--out-dir",
        dir.to_str().unwrap(),
    ])
}

store_test! {
    async fn every_users_file_lands_directly_in_the_folder_whatever_their_address(db: TestDb) {
        seeded(&db);
        let users = path_like_users(&db);
        let before = entries_under(db.dir.path());
        let dir = db.dir.path().join("out");
        let output = all_into(&db, &dir);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

        // Everything new in the scratch folder but the output folder itself and the SQLite
        // store's own files, which come and go as it pleases.
        let written: Vec<_> = entries_under(db.dir.path())
            .into_iter()
            .filter(|path| !before.contains(path) && *path != dir)
            .filter(|path| !path.file_name().unwrap().to_string_lossy().starts_with("test.db"))
            .collect();
        for path in &written {
            assert_eq!(path.parent(), Some(dir.as_path()), "written outside the folder");
            assert!(path.is_file(), "{}", path.display());
            assert_eq!(mode(path), 0o600, "{}", path.display());
        }
        assert!(!Path::new("/abs/dir/x@y.zz.mobileconfig").exists());
        let names: BTreeSet<String> = written
            .iter()
            .map(|path| path.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        let expected: BTreeSet<String> = ["alice@example.com", "bob@example.com"]
            .into_iter()
            .chain(users.iter().map(String::as_str))
            .map(|user| format!("{}.mobileconfig", safe_name(&normalize_email(user))))
            .collect();
        assert_eq!(names, expected);
        for name in ["%2Fabs%2Fdir%2Fx@y.zz.mobileconfig", "a%2F.%2Fb@y.zz.mobileconfig"] {
            assert!(names.contains(name), "{name} in {names:?}");
        }
        assert!(names.iter().all(|name| name.len() <= 255), "{names:?}");
        assert!(
            stdout(&output).contains(&format!("{} ios profiles written", expected.len())),
            "{}",
            stdout(&output)
        );

        for user in &users {
            let single = db.run(&["--profiles", &profiles_arg(), "profile", user, "--platform", "ios"]);
            assert_eq!(single.status.code(), Some(0), "{user}: {}", stderr(&single));
            let file = dir.join(format!("{}.mobileconfig", safe_name(&normalize_email(user))));
            assert_eq!(std::fs::read(file).unwrap(), single.stdout, "{user}'s own profile");
        }
    }
}

store_test! {
    async fn a_user_whose_file_cannot_be_written_is_reported_and_the_others_are_written(db: TestDb) {
        seeded(&db);
        let dir = db.dir.path().join("out");
        // A folder where Alice's file would go, which her profile cannot replace. Alice comes
        // first, so the users after her show that the run goes on.
        let alice = dir.join("alice@example.com.mobileconfig");
        std::fs::create_dir_all(&alice).unwrap();
        let output = all_into(&db, &dir);
        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));

        let errors = stderr(&output);
        assert!(errors.contains("mdm-mail: alice@example.com: cannot write"), "{errors}");
        assert!(alice.is_dir(), "left as it was");
        let bob = dir.join("bob@example.com.mobileconfig");
        let single = db.run(&["--profiles", &profiles_arg(), "profile", "bob@example.com", "--platform", "ios"]);
        assert_eq!(std::fs::read(&bob).unwrap(), single.stdout);
        assert_eq!(mode(&bob), 0o600);
        assert_eq!(entries_under(&dir), BTreeSet::from([alice, bob]), "no half-written file left");
        let summary = stdout(&output);
        assert!(summary.contains("1 ios profiles written") && summary.contains("1 users failed"), "{summary}");
    }
}

#[tokio::test]
async fn a_configured_signing_identity_signs_apple_profiles() {
    let db = TestDb::sqlite().await;
    seeded(&db);
    let pki = super::signing::ecdsa();
    let cert = db.dir.path().join("signing.pem");
    let key = db.dir.path().join("signing.key");
    std::fs::write(&cert, format!("{}{}", pki.leaf_pem, pki.intermediate_pem)).unwrap();
    std::fs::write(&key, &pki.leaf_key_pem).unwrap();
    let output = crate::support::mdm_mail_in(
        db.dir.path(),
        &[
            ("MDM_MAIL_DATABASE_URL", db.url.as_str()),
            ("MDM_MAIL_SECRET_KEY", KEY),
            ("MDM_MAIL_SIGNING_CERTIFICATE", cert.to_str().unwrap()),
            ("MDM_MAIL_SIGNING_KEY", key.to_str().unwrap()),
        ],
        &[
            "--profiles",
            &profiles_arg(),
            "profile",
            "alice@example.com",
            "--platform",
            "ios",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let content = super::signing::openssl_verify(&output.stdout, pki);
    assert_eq!(payloads(&content).len(), 2);
}
