//! `mdm-mail profile`: a stored user's profile rendered by the real binary from their
//! imported accounts, redacted, signed, and for every user at once.

use crate::import::KEY;
use crate::support::{TestDb, fixture, stderr, stdout, store_test};

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
