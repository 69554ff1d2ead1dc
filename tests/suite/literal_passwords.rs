//! Password cells are taken exactly as written, through the real binary and into the
//! profile a device gets: a leading `'` stays (the export never writes passwords, so it
//! cannot have added one), white space stays and the line says so, and a character no
//! profile can carry is refused at import with its line and field.

use crate::support::{TestDb, fixture, stderr, stdout, store_test};

const ACCOUNTS: &str = "user_email,display_name,email_address,incoming_username,incoming_password,outgoing_username,outgoing_password\n\
alice@example.com,Alice,a1@mail.example.com,a1,'=x,a1,'pw\n\
alice@example.com,Alice,a2@mail.example.com,a2,',a2,\"  pw  \"\n\
alice@example.com,Alice,a3@mail.example.com,a3,\u{a0}pw2,a3,\n\
alice@example.com,Alice,a4@mail.example.com,a4,pw\u{ffff},a4,\n\
alice@example.com,'=Alice,a5@mail.example.com,a5,,a5,\n";

/// One Email payload: address, incoming and outgoing password, account name.
type Payload = (String, Option<String>, Option<String>, Option<String>);

/// The Email payloads of alice's iOS profile, in address order.
fn alice_passwords(db: &TestDb) -> Vec<Payload> {
    let output = db.run(&[
        "--profiles",
        fixture("profiles").to_str().unwrap(),
        "profile",
        "alice@example.com",
        "--platform",
        "ios",
        "--show-passwords",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let profile: plist::Dictionary = plist::from_bytes(&output.stdout).expect("a plist");
    let text = |p: &plist::Dictionary, key: &str| {
        p.get(key).and_then(|v| v.as_string()).map(str::to_owned)
    };
    let mut accounts: Vec<_> = profile["PayloadContent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_dictionary().unwrap())
        .map(|p| {
            (
                text(p, "EmailAddress").unwrap(),
                text(p, "IncomingPassword"),
                text(p, "OutgoingPassword"),
                text(p, "EmailAccountName"),
            )
        })
        .collect();
    accounts.sort();
    accounts
}

store_test! {
    async fn password_cells_reach_the_profile_exactly_as_written(db: TestDb) {
        let users = db.run(&["users", "import", fixture("users.csv").to_str().unwrap()]);
        assert_eq!(users.status.code(), Some(0), "{}", stderr(&users));
        let file = db.dir.path().join("accounts.csv");
        std::fs::write(&file, ACCOUNTS).unwrap();
        let results = db.dir.path().join("results.csv");

        let output = db.run(&["import", file.to_str().unwrap(), "--type", "email", "--results", results.to_str().unwrap()]);

        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
        assert!(stdout(&output).contains("4 added"), "{}", stdout(&output));
        assert!(
            stderr(&output).contains("accounts.csv:5: rejected: incoming_password: contains a noncharacter (U+FFFF)"),
            "{}",
            stderr(&output)
        );
        let results = std::fs::read_to_string(&results).unwrap();
        assert!(
            results.contains("3,alice@example.com,a2@mail.example.com,added,\"outgoing_password has white space at its start and end, kept as given\""),
            "{results}"
        );
        assert!(
            results.contains("4,alice@example.com,a3@mail.example.com,added,\"incoming_password has white space at its start, kept as given\""),
            "{results}"
        );
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            alice_passwords(&db),
            [
                ("a1@mail.example.com".to_owned(), some("'=x"), some("'pw"), some("Alice")),
                ("a2@mail.example.com".to_owned(), some("'"), some("  pw  "), some("Alice")),
                ("a3@mail.example.com".to_owned(), some("\u{a0}pw2"), None, some("Alice")),
                ("a5@mail.example.com".to_owned(), None, None, some("=Alice")),
            ]
        );

        // The same file again: every password matches what is stored, so nothing changes.
        let again = db.run(&["import", file.to_str().unwrap(), "--type", "email", "--json"]);
        let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
        assert_eq!(
            (summary["unchanged"].as_u64(), summary["updated"].as_u64(), summary["rejected"].as_u64()),
            (Some(4), Some(0), Some(1)),
            "{summary}"
        );
    }
}

store_test! {
    async fn a_character_no_profile_can_carry_is_refused_in_any_field_with_its_line(db: TestDb) {
        let users = db.run(&["users", "import", fixture("users.csv").to_str().unwrap()]);
        assert_eq!(users.status.code(), Some(0), "{}", stderr(&users));
        let file = db.dir.path().join("exchange.csv");
        std::fs::write(
            &file,
            "alice@example.com,alice@corp.example.com,alice\u{ffff},CORP,pw\n\
             bob@example.com,bob@corp.example.com,bob,CORP,pw\u{fffe}\n\
             chloe@example.com,chloe@corp.example.com,chloe,CORP,pw\u{1}\n",
        )
        .unwrap();

        let output = db.run(&["import", file.to_str().unwrap(), "--type", "exchange"]);

        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
        let err = stderr(&output);
        for expected in [
            "exchange.csv:1: rejected: exchange_username: contains a noncharacter (U+FFFF)",
            "exchange.csv:2: rejected: exchange_password: contains a noncharacter (U+FFFE)",
            "exchange.csv:3: rejected: exchange_password: contains a control character (U+0001)",
        ] {
            assert!(err.contains(expected), "{expected} in {err}");
        }
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 0);
    }
}

store_test! {
    async fn json_rows_compare_passwords_as_given(db: TestDb) {
        let app = crate::api::App::start(&db).await;
        app.load_directory().await;
        let file = "alice@example.com,Alice,a1@mail.example.com,a1,'=x,a1,'pw\n";
        let committed = app
            .call(reqwest::Method::POST, "/api/imports?type=email")
            .body(file)
            .send()
            .await
            .unwrap();
        assert_eq!(committed.status(), reqwest::StatusCode::CREATED);

        let row = |incoming: &str| {
            serde_json::json!({ "type": "email", "rows": [{
                "user_email": "alice@example.com", "display_name": "Alice",
                "email_address": "a1@mail.example.com", "incoming_username": "a1",
                "incoming_password": incoming, "outgoing_username": "a1", "outgoing_password": "'pw" }] })
        };
        for (incoming, outcome) in [("'=x", "unchanged"), ("=x", "updated")] {
            let answer: serde_json::Value = app
                .call(reqwest::Method::POST, "/api/email-accounts/import/preview")
                .json(&row(incoming))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(answer["rows"][0]["outcome"], outcome, "{incoming}: {answer}");
        }
    }
}
