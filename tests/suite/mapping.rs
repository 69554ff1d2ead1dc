//! Column mapping: a file whose headers are not ours imports with `--map FIELD=SOURCE`
//! (a header, or a template over headers), with a mapping saved by name and reused, listed
//! and removed (audited), through the real binary and the API; MXroute's export imports as
//! it is with the documented map set, which also ships as the saved mapping `mxroute`.

use crate::support::{TestDb, fixture, stderr, stdout, store_test};

/// MXroute's documented export, for alice (a password) and bob (none given).
const MXROUTE: &str = "username,password,quota,limit,recovery_email,domain\n\
alice,Abcd1234!,1024,9600,,example.com\n\
bob,,1024,9600,,example.com\n";

/// The map set the README documents for MXroute's export.
const MXROUTE_MAP: [&str; 6] = [
    "user_email={username}@{domain}",
    "email_address={username}@{domain}",
    "incoming_username={username}@{domain}",
    "outgoing_username={username}@{domain}",
    "incoming_password=password",
    "outgoing_password=password",
];

fn with_users(db: &TestDb) {
    let output = db.run(&["users", "import", fixture("users.csv").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

fn summary(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("JSON on stdout: {} {}", stdout(output), stderr(output)))
}

/// alice's iOS Email payload: (address, incoming user name, incoming password).
fn alice_payload(db: &TestDb, user: &str) -> (String, String, Option<String>) {
    let output = db.run(&[
        "--profiles",
        fixture("profiles").to_str().unwrap(),
        "profile",
        user,
        "--platform",
        "ios",
        "--show-passwords",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let profile: plist::Dictionary = plist::from_bytes(&output.stdout).unwrap();
    let payload = profile["PayloadContent"].as_array().unwrap()[0]
        .as_dictionary()
        .unwrap()
        .clone();
    let text = |key: &str| {
        payload
            .get(key)
            .and_then(|v| v.as_string())
            .map(str::to_owned)
    };
    (
        text("EmailAddress").unwrap(),
        text("IncomingMailServerUsername").unwrap(),
        text("IncomingPassword"),
    )
}

store_test! {
    async fn the_mail_hosts_export_imports_as_it_is_with_the_documented_map(db: TestDb) {
        with_users(&db);
        // bob already has his account with a password, which a blank cell keeps; like
        // MXroute's, his file had no display name, so his profile shows his own.
        let bob = db.dir.path().join("bob.csv");
        std::fs::write(
            &bob,
            "user_email,email_address,incoming_username,incoming_password,outgoing_username,outgoing_password\n\
             bob@example.com,bob@example.com,bob@example.com,bob-pw,bob@example.com,bob-pw\n",
        )
        .unwrap();
        assert_eq!(db.run(&["import", bob.to_str().unwrap(), "--type", "email"]).status.code(), Some(0));
        let file = db.dir.path().join("mxroute.csv");
        std::fs::write(&file, MXROUTE).unwrap();
        let mut args = vec!["import", file.to_str().unwrap(), "--type", "email"];
        for map in &MXROUTE_MAP {
            args.extend(["--map", map]);
        }

        let output = db.run(&args);

        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(stdout(&output).contains("2 email rows (utf-8, \",\", header): 1 added, 0 updated, 1 unchanged"), "{}", stdout(&output));
        assert!(stderr(&output).contains("mxroute.csv: user_email from {username}@{domain}"), "{}", stderr(&output));
        assert!(stderr(&output).contains("ignoring columns \"quota\", \"limit\", \"recovery_email\""), "{}", stderr(&output));
        assert_eq!(
            alice_payload(&db, "alice@example.com"),
            ("alice@example.com".to_owned(), "alice@example.com".to_owned(), Some("Abcd1234!".to_owned()))
        );
        assert_eq!(alice_payload(&db, "bob@example.com").2.as_deref(), Some("bob-pw"), "a blank password keeps the stored one");

        // The same map ships as the saved mapping "mxroute".
        let again = db.run(&["import", file.to_str().unwrap(), "--type", "email", "--mapping", "mxroute", "--json"]);
        assert_eq!(summary(&again)["unchanged"].as_u64(), Some(2), "{}", stderr(&again));

        // A changed password is named with the column it was read from.
        std::fs::write(&file, MXROUTE.replace("Abcd1234!", "New-5678")).unwrap();
        let results = db.dir.path().join("results.csv");
        let changed = db.run(&["import", file.to_str().unwrap(), "--type", "email", "--mapping", "mxroute", "--results", results.to_str().unwrap()]);
        assert_eq!(changed.status.code(), Some(0), "{}", stderr(&changed));
        let results = std::fs::read_to_string(&results).unwrap();
        assert!(
            results.contains("2,alice@example.com,alice@example.com,updated,\"changed incoming_password (read from \"\"password\"\"), outgoing_password (read from \"\"password\"\")\""),
            "{results}"
        );
    }
}

store_test! {
    async fn a_mapping_is_saved_reused_listed_and_removed_with_an_audit_trail(db: TestDb) {
        with_users(&db);
        let file = db.dir.path().join("webmail.csv");
        std::fs::write(
            &file,
            "E-mail;Name;Mailbox;Login;Password;SMTP login;SMTP password\n\
             alice@example.com;Alice;alice@mail.example.com;alice;pw1;alice-out;pw2\n",
        )
        .unwrap();
        let refused = db.run(&["import", file.to_str().unwrap(), "--type", "email"]);
        assert_eq!(refused.status.code(), Some(1));
        assert!(stderr(&refused).contains("the header has no user_email, incoming_username, outgoing_username columns"), "{}", stderr(&refused));

        let output = db.run(&[
            "import", file.to_str().unwrap(), "--type", "email", "--dry-run", "--json",
            "--map", "user_email=E-mail", "--map", "email_address=Mailbox", "--map", "incoming_username=Login",
            "--map", "incoming_password=Password", "--map", "outgoing_username=smtp login",
            "--save-mapping", "webmail",
        ]);
        assert_eq!(summary(&output)["added"].as_u64(), Some(1), "{}", stderr(&output));
        let listed = db.run(&["mappings", "list", "--json"]);
        let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        let names: Vec<&str> = listed.as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["mxroute", "webmail"]);
        assert_eq!(listed[1]["fields"]["email_address"], "Mailbox");
        assert_eq!(listed[1]["fields"]["outgoing_username"], "smtp login");

        let reused = db.run(&["import", file.to_str().unwrap(), "--type", "email", "--mapping", "webmail", "--json"]);
        assert_eq!(summary(&reused)["added"].as_u64(), Some(1), "{}", stderr(&reused));
        let other_kind = db.run(&["import", file.to_str().unwrap(), "--type", "exchange", "--mapping", "webmail"]);
        assert_eq!(other_kind.status.code(), Some(1));
        assert!(stderr(&other_kind).contains("the saved mapping \"webmail\" is for email accounts, not exchange"), "{}", stderr(&other_kind));

        let removed = db.run(&["mappings", "remove", "webmail"]);
        assert_eq!(removed.status.code(), Some(0), "{}", stderr(&removed));
        assert_eq!(db.run(&["mappings", "remove", "webmail"]).status.code(), Some(1));
        let gone = db.run(&["import", file.to_str().unwrap(), "--type", "email", "--mapping", "webmail"]);
        assert!(stderr(&gone).contains("there is no saved mapping called \"webmail\""), "{}", stderr(&gone));
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM audit_log WHERE action IN ('mapping.save', 'mapping.remove')").await, 2);
    }
}

store_test! {
    async fn a_template_naming_a_missing_column_is_refused_before_any_line_is_read(db: TestDb) {
        with_users(&db);
        let file = db.dir.path().join("mxroute.csv");
        std::fs::write(&file, MXROUTE).unwrap();
        let output = db.run(&["import", file.to_str().unwrap(), "--type", "email", "--map", "user_email={user}@{domain}"]);
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stderr(&output).contains("mxroute.csv: nothing was imported: line 1: user_email is mapped to \"{user}@{domain}\", but the header has no column \"user\" (its columns: username, password, quota, limit, recovery_email, domain)"),
            "{}",
            stderr(&output)
        );
        let bad = db.run(&["import", file.to_str().unwrap(), "--type", "email", "--map", "mailbox=username"]);
        assert_eq!(bad.status.code(), Some(1));
        assert!(stderr(&bad).contains("\"mailbox\" is not a field of email accounts"), "{}", stderr(&bad));
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM imports").await, 0);
    }
}

store_test! {
    async fn rejections_name_the_field_and_the_column_it_was_read_from(db: TestDb) {
        with_users(&db);
        let file = db.dir.path().join("mxroute.csv");
        std::fs::write(&file, "username,password,domain\nalice,pw,example..com\n").unwrap();
        let results = db.dir.path().join("results.csv");
        let mut args = vec!["import", file.to_str().unwrap(), "--type", "email", "--results", results.to_str().unwrap()];
        for map in &MXROUTE_MAP {
            args.extend(["--map", map]);
        }
        let output = db.run(&args);
        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
        let results = std::fs::read_to_string(&results).unwrap();
        assert!(
            results.contains("2,alice@example..com,alice@example..com,rejected,\"user_email: \"\"alice@example..com\"\" is not an email address (bad domain: empty label) (read from \"\"{username}@{domain}\"\")\""),
            "{results}"
        );
    }
}

store_test! {
    async fn the_api_maps_columns_by_parameter_or_saved_mapping_and_lists_mappings(db: TestDb) {
        let app = crate::api::App::start(&db).await;
        app.load_directory().await;
        let listed: serde_json::Value = app.call(reqwest::Method::GET, "/api/mappings").send().await.unwrap().json().await.unwrap();
        assert_eq!(listed["mappings"][0]["name"], "mxroute", "{listed}");
        assert_eq!(listed["mappings"][0]["fields"]["user_email"], "{username}@{domain}");

        // Without a header naming one of our fields, the lines are read as data, and refused.
        let unmapped: serde_json::Value = app
            .call(reqwest::Method::POST, "/api/imports/preview?type=email")
            .body(MXROUTE).send().await.unwrap().json().await.unwrap();
        assert_eq!((unmapped["header"].as_bool(), unmapped["rejected"].as_u64()), (Some(false), Some(3)), "{unmapped}");
        // Read anyway, for the wizard to map: every line names what it lacks.
        let columns: serde_json::Value = app
            .call(reqwest::Method::POST, "/api/imports/preview?type=email&missing_columns=reject&results_limit=5")
            .body(MXROUTE).send().await.unwrap().json().await.unwrap();
        assert_eq!(columns["fields"][0], serde_json::json!({ "field": "user_email", "required": true, "source": null, "mapped": false }));
        assert_eq!(columns["results"][0]["field"], "user_email");
        assert_eq!(columns["results"][0]["message"], "is not in the file: map a column to it");
        assert_eq!(columns["sample"][0]["cells"][1], "••••••••", "a column called password is masked before it is mapped");

        let query: String = MXROUTE_MAP.iter().map(|m| format!("&map={}", urlencode(m))).collect();
        let mapped: serde_json::Value = app
            .call(reqwest::Method::POST, &format!("/api/imports/preview?type=email{query}"))
            .body(MXROUTE).send().await.unwrap().json().await.unwrap();
        assert_eq!(mapped["added"].as_u64(), Some(2), "{mapped}");
        assert_eq!(mapped["fields"][0], serde_json::json!({ "field": "user_email", "required": true, "source": "{username}@{domain}", "mapped": true }));
        let saved: serde_json::Value = app
            .call(reqwest::Method::POST, "/api/imports/preview?type=email&mapping=mxroute")
            .body(MXROUTE).send().await.unwrap().json().await.unwrap();
        assert_eq!(saved["fingerprint"], mapped["fingerprint"], "the saved mapping reads the file the same way");

        let committed = app
            .call(reqwest::Method::POST, &format!("/api/imports?type=email&save_mapping=mine{query}"))
            .body(MXROUTE).send().await.unwrap();
        assert_eq!(committed.status(), reqwest::StatusCode::CREATED);
        let listed: serde_json::Value = app.call(reqwest::Method::GET, "/api/mappings").send().await.unwrap().json().await.unwrap();
        assert_eq!(listed["mappings"][0]["name"], "mine", "{listed}");
        let unknown = app.call(reqwest::Method::POST, "/api/imports/preview?type=email&mapping=nope").body(MXROUTE).send().await.unwrap();
        assert_eq!(unknown.status(), reqwest::StatusCode::BAD_REQUEST);
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
