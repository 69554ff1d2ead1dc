//! What hostile or careless clients meet: security headers on every answer, JSON routes
//! that take only JSON, and commands that end quietly when their reader goes away.

use std::io::Read;
use std::process::Stdio;

use mdm_mail::http::api;
use reqwest::{Method, StatusCode};

use crate::api::{App, concrete, json_of};
use crate::support::{TestDb, fixture, mdm_mail_command, stderr, store_test};

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let db = TestDb::sqlite().await;
    let app = App::start(&db).await;
    let requests = [
        app.anonymous(Method::GET, "/sign-in"),
        app.anonymous(Method::GET, "/"),
        app.anonymous(Method::GET, "/assets/wizard.js"),
        app.anonymous(Method::GET, "/healthz"),
        app.anonymous(Method::GET, "/api/users"),
        app.anonymous(Method::GET, "/no-such-page"),
        app.call(Method::GET, "/api/users"),
        app.call(Method::GET, "/api/openapi.json"),
        app.call(Method::POST, "/api/users"),
    ];
    for request in requests {
        let response = request.send().await.unwrap();
        let what = format!("{} {}", response.status(), response.url().path());
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_else(|| panic!("{what}: no {name}"))
        };
        let policy = header("content-security-policy");
        for directive in [
            "script-src 'self'",
            "frame-ancestors 'none'",
            "default-src 'none'",
        ] {
            assert!(policy.contains(directive), "{what}: {policy}");
        }
        assert!(!policy.contains("unsafe-inline"), "{what}: {policy}");
        assert_eq!(header("x-frame-options"), "DENY", "{what}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    }
}

#[tokio::test]
async fn the_wizard_pages_hold_no_inline_script_or_style_the_policy_would_block() {
    let db = TestDb::sqlite().await;
    let app = App::start(&db).await;
    app.load_directory().await;
    let session = crate::wizard::ops_session(&db, &app).await;
    let inline_script = regex::Regex::new(r"<script(?:\s[^>]*)?>\s*[^<\s]").unwrap();
    let handler = regex::Regex::new(r"\son[a-z]+=").unwrap();
    for path in [
        "/sign-in",
        "/",
        "/import",
        "/push",
        "/users/alice@example.com",
    ] {
        let page = crate::wizard::page_as(&app, &session, path).await;
        assert!(page.contains("/assets/wizard.js"), "{path}: {page}");
        assert!(!inline_script.is_match(&page), "{path}: {page}");
        assert!(
            !page.contains(" style=") && !page.contains("<style"),
            "{path}: {page}"
        );
        assert!(!handler.is_match(&page), "{path}: {page}");
    }
}

#[tokio::test]
async fn json_routes_answer_415_to_a_body_not_sent_as_json() {
    let db = TestDb::sqlite().await;
    let app = App::start(&db).await;
    let document = json_of(
        app.call(Method::GET, "/api/openapi.json")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let json_routes: Vec<_> = api::api()
        .operations()
        .iter()
        .filter(|op| !op.body.is_empty() && op.body.iter().all(|(m, _)| *m == "application/json"))
        .cloned()
        .collect();
    assert!(json_routes.len() >= 3, "{json_routes:?}");
    for op in json_routes {
        let path = concrete(op.path);
        for content_type in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            let mut request = app.call(op.method.clone(), &path).body("{}");
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let body = json_of(
                request.send().await.unwrap(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            )
            .await;
            assert_eq!(
                body["error"]["code"], "unsupported_media_type",
                "{} {path}",
                op.method
            );
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("application/json"),
                "{body}"
            );
        }
        let declared = &document["paths"][op.path][op.method.as_str().to_lowercase()];
        assert!(declared["responses"]["415"].is_object(), "{}", op.id);
    }
    let with_charset = app
        .call(Method::POST, "/api/users")
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"email":"dana@example.com","display_name":"Dana"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(with_charset.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_listing_whose_reader_goes_away_ends_quietly() {
    let db = TestDb::sqlite().await;
    let users = db.dir.path().join("users.csv");
    let mut text = String::from("email,display_name\n");
    for i in 0..5000 {
        text.push_str(&format!("user{i}@example.com,User number {i}\n"));
    }
    std::fs::write(&users, text).unwrap();
    let profiles = fixture("profiles");
    let env = [
        ("MDM_MAIL_DATABASE_URL", db.url.as_str()),
        ("MDM_MAIL_PROFILES", profiles.to_str().unwrap()),
    ];
    let loaded = mdm_mail_command(
        db.dir.path(),
        &env,
        &["users", "import", users.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert!(loaded.status.success(), "{}", stderr(&loaded));

    for args in [
        &["users", "list"][..],
        &["users", "list", "--json"],
        &["export", "--type", "email"],
    ] {
        let mut child = mdm_mail_command(db.dir.path(), &env, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read a little, as `head -c 100` does, then go away.
        let mut first = [0u8; 100];
        let mut out = child.stdout.take().unwrap();
        let _ = out.read(&mut first).unwrap();
        drop(out);
        let output = child.wait_with_output().unwrap();
        let message = stderr(&output);
        assert!(!message.contains("panicked"), "{args:?}: {message}");
        use std::os::unix::process::ExitStatusExt;
        assert!(
            output.status.success() || output.status.signal() == Some(13),
            "{args:?}: {:?} {message}",
            output.status
        );
    }
}

/// A SQLite store holding the fixture's users, loaded through the binary.
pub async fn with_fixture_users() -> TestDb {
    let db = TestDb::sqlite().await;
    with_fixture_users_in(&db);
    db
}

/// Loads the fixture's users into `db` through the binary.
pub fn with_fixture_users_in(db: &TestDb) {
    let users = fixture("users.csv");
    assert!(
        db.run(&["users", "import", users.to_str().unwrap()])
            .status
            .success()
    );
}

const SWALLOWED: &str = "alice@example.com,Alice Adams,alice@mail.example.com,alice,imap-1,alice,smtp-1\n\
bob@example.com,\"Bob,bob@mail.example.com,bob,imap-2,bob,smtp-2\n\
chloe@example.com,Chloé,chloe@mail.example.com,chloe,imap-3,chloe,smtp-3\n\
alice@example.com,Alice Adams,alice2@mail.example.com,alice,imap-4,alice,smtp-4\n";

/// Writes `text` to a file called `name` and runs the binary with `args`, the file in place
/// of `FILE`: the whole file must be refused (exit 1) with `expected` after its name. The
/// message, for further checks.
fn refused(db: &TestDb, args: &[&str], name: &str, text: &str, expected: &str) -> String {
    let file = db.dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    let args: Vec<&str> = args
        .iter()
        .map(|a| {
            if *a == "FILE" {
                file.to_str().unwrap()
            } else {
                a
            }
        })
        .collect();
    let refused = db.run(&args);
    assert_eq!(refused.status.code(), Some(1), "{args:?}");
    let message = stderr(&refused);
    assert!(
        message.contains(&format!("{name}: nothing was imported: {expected}")),
        "{message}"
    );
    message
}

/// Previews `text` through the API: refused as unreadable, with a message that starts with
/// `expected`.
async fn preview_refused(app: &App, text: String, expected: &str) {
    let body = json_of(
        app.call(Method::POST, "/api/imports/preview?type=email")
            .body(text)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["error"]["code"], "unreadable_file");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with(expected), "{body}");
}

const IMPORT: [&str; 4] = ["import", "FILE", "--type", "email"];
const USERS_IMPORT: [&str; 3] = ["users", "import", "FILE"];

#[tokio::test]
async fn a_quote_never_closed_refuses_the_file_at_the_line_it_opens() {
    let db = with_fixture_users().await;
    let unterminated = "line 2: unterminated quote";
    for args in [&IMPORT[..], &[&IMPORT[..], &["--dry-run"]].concat()] {
        let message = refused(&db, args, "swallowed.csv", SWALLOWED, unterminated);
        assert!(message.contains("lines 2 to 4"), "{message}");
    }
    assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await,
        0
    );
    preview_refused(&App::start(&db).await, SWALLOWED.to_owned(), unterminated).await;

    let users = "email,display_name\nx@example.com,\"X\ny@example.com,Y\n";
    refused(
        &db,
        &USERS_IMPORT,
        "users-swallowed.csv",
        users,
        unterminated,
    );
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM users").await, 3);
}

#[tokio::test]
async fn a_record_past_the_bounds_refuses_the_file_without_reading_on() {
    let db = with_fixture_users().await;
    // A quote closed only at the end of a long file, and a line of nothing but delimiters:
    // each would be read whole as one record, in memory in proportion to the file.
    let rest = "x@example.com,X,x@mail.example.com,x,p,x,p\n".repeat(400_000);
    let quoted = format!(
        "{}{rest}\"\n",
        &SWALLOWED[..SWALLOWED.find("chloe").unwrap()]
    );
    let commas = format!(
        "{}{}\n",
        &SWALLOWED[..SWALLOWED.find("bob").unwrap()],
        ",".repeat(20_000)
    );
    let too_many = "line 2: the line has more than 16384 cells";
    refused(
        &db,
        &IMPORT,
        "quoted.csv",
        &quoted,
        "line 2: unterminated quote",
    );
    refused(&db, &IMPORT, "commas.csv", &commas, too_many);
    assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await,
        0
    );
    preview_refused(&App::start(&db).await, commas, too_many).await;

    let users = format!("email,display_name\nx@example.com,{}\n", ",".repeat(20_000));
    refused(&db, &USERS_IMPORT, "users-wide.csv", &users, too_many);
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM users").await, 3);
}

#[tokio::test]
async fn loaders_refuse_control_characters_naming_line_and_field() {
    let db = TestDb::sqlite().await;
    let users = db.dir.path().join("users.csv");
    std::fs::write(
        &users,
        "email,display_name\nred@example.com,\u{1b}[31mRed\u{1b}[0m\nok@example.com,Fine\nnon@example.com,X\u{ffff}\n",
    )
    .unwrap();
    let loaded = db.run(&["users", "import", users.to_str().unwrap()]);
    assert_eq!(loaded.status.code(), Some(3));
    let message = stderr(&loaded);
    assert!(
        message.contains("users.csv:2: display_name: contains a control character (U+001B)"),
        "{message}"
    );
    assert!(
        message.contains("users.csv:4: display_name: contains a noncharacter (U+FFFF)"),
        "{message}"
    );
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM users").await, 1);

    let devices = db.dir.path().join("devices.csv");
    std::fs::write(
        &devices,
        "user_email,device_id,platform,enrollment_id\nok@example.com,\"TAB\tDEV\",ios,E1\nok@example.com,GOOD,ios,E\u{7}2\n",
    )
    .unwrap();
    let loaded = db.run(&["devices", "import", devices.to_str().unwrap()]);
    assert_eq!(loaded.status.code(), Some(3));
    let message = stderr(&loaded);
    assert!(
        message.contains("devices.csv:2: device_id: contains a control character (U+0009)"),
        "{message}"
    );
    assert!(
        message.contains("devices.csv:3: enrollment_id: contains a control character (U+0007)"),
        "{message}"
    );
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM devices").await, 0);

    let app = App::start(&db).await;
    let refused = app
        .call(Method::POST, "/api/users")
        .json(&serde_json::json!({ "email": "esc@example.com", "display_name": "\u{1b}]0;pwned\u{7}" }))
        .send()
        .await
        .unwrap();
    let body = json_of(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["error"]["code"], "invalid_user");
    assert_eq!(
        body["error"]["message"],
        "display_name: contains a control character (U+001B)"
    );
    let refused = app
        .call(Method::POST, "/api/devices")
        .json(&serde_json::json!({ "user_email": "ok@example.com", "device_id": "\tTAB-DEV", "platform": "ios", "enrollment_id": "E" }))
        .send()
        .await
        .unwrap();
    let body = json_of(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        body["error"]["message"],
        "device_id: contains a control character (U+0009)"
    );
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM devices").await, 0);
}

#[tokio::test]
async fn listings_escape_control_characters_stored_before_they_were_refused() {
    let db = TestDb::sqlite().await;
    db.open().await;
    db.execute(
        "INSERT INTO users (email, email_norm, display_name, created_at, updated_at) \
         VALUES ('old@example.com', 'old@example.com', char(27) || '[2J' || 'Old', 0, 0)",
        "",
    )
    .await;
    let listed = db.run(&["users", "list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = crate::support::stdout(&listed);
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains("\\u{1b}[2JOld"), "{text}");
}

store_test! {
    async fn a_huge_rejected_cell_is_echoed_and_stored_only_as_a_short_excerpt(db: TestDb) {
        let app = App::start(&db).await;
        app.load_directory().await;
        let huge = "x".repeat(10 * 1024 * 1024);
        let file = format!("{huge}@example.com,Someone,alice@mail.example.com,alice,pw,alice,pw\n\
            alice@example.com,Alice,{huge},alice,pw,alice,pw\n\
            alice@example.com,Alice,alice@mail.example.com,alice,pw,alice,pw\n");
        for path in ["/api/imports/preview?type=email&results_limit=1000", "/api/imports?type=email"] {
            let response = app.call(Method::POST, path).body(file.clone()).send().await.unwrap();
            let text = response.text().await.unwrap();
            assert!(text.len() < 20_000, "{path}: a {} byte answer", text.len());
            let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
            let rejected: Vec<&serde_json::Value> = answer["lines"].as_array().unwrap_or_else(|| panic!("{answer}")).iter().collect();
            assert_eq!(rejected.len(), 2, "{answer}");
            for line in rejected {
                let message = line["message"].as_str().unwrap();
                assert!(message.contains("characters)") && message.len() < 400, "{message}");
            }
            if let Some(id) = answer["id"].as_str() {
                let stored = app.call(Method::GET, &format!("/api/imports/{id}")).send().await.unwrap().text().await.unwrap();
                assert!(stored.len() < 20_000, "{} bytes", stored.len());
                let results = app.call(Method::GET, &format!("/api/imports/{id}/results.csv")).send().await.unwrap().text().await.unwrap();
                assert!(results.len() < 20_000, "{} bytes", results.len());
            }
        }
        let kept = db
            .scalar_i64("SELECT CAST(COALESCE(SUM(LENGTH(user_email) + LENGTH(account_address) + LENGTH(message)), 0) AS BIGINT) FROM import_lines")
            .await;
        assert!(kept < 2_000, "{kept} characters of rejected lines stored");
    }
}

/// `count` Email lines, each naming a user nobody has: every one discarded.
pub fn nobody_lines(count: usize) -> String {
    (1..=count)
        .map(|i| format!("nobody{i}@example.com,N,n{i}@mail.example.com,n,p,n,p\n"))
        .collect()
}

store_test! {
    async fn answers_list_a_page_of_lines_and_page_through_the_rest(db: TestDb) {
        let app = App::start(&db).await;
        app.load_directory().await;
        let file = nobody_lines(1_500);
        let preview = json_of(
            app.call(Method::POST, "/api/imports/preview?type=email&results_offset=1450&results_limit=100")
                .body(file.clone())
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(preview["discarded"], 1_500);
        assert_eq!(preview["lines"].as_array().unwrap().len(), mdm_mail::import::LINES_KEPT);
        assert_eq!(preview["more_lines"], 1_500 - mdm_mail::import::LINES_KEPT as u64);
        let results = preview["results"].as_array().unwrap();
        assert_eq!(results.len(), 50, "the last 50 of 1,500");
        assert_eq!(results[0]["line"], 1_451);
        let too_many = app
            .call(Method::POST, "/api/imports/preview?type=email&results_limit=1001")
            .body(file.clone())
            .send()
            .await
            .unwrap();
        let body = json_of(too_many, StatusCode::BAD_REQUEST).await;
        assert!(body["error"]["message"].as_str().unwrap().contains("results_limit"), "{body}");

        let committed = json_of(
            app.call(Method::POST, "/api/imports?type=email").body(file).send().await.unwrap(),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(committed["lines"].as_array().unwrap().len(), mdm_mail::import::LINES_KEPT);
        let id = committed["id"].as_str().unwrap();
        let mut after = 0;
        let mut seen = Vec::new();
        loop {
            let page = json_of(
                app.call(Method::GET, &format!("/api/imports/{id}?after={after}&limit=1000")).send().await.unwrap(),
                StatusCode::OK,
            )
            .await;
            seen.extend(page["lines"].as_array().unwrap().iter().map(|l| l["line"].as_u64().unwrap()));
            match page["next"].as_u64() {
                Some(next) => after = next,
                None => break,
            }
        }
        assert_eq!(seen, (1..=1_500).collect::<Vec<u64>>(), "every stored line once, in order");
    }
}

#[tokio::test]
async fn a_json_preview_of_more_rows_than_the_limit_is_refused_without_building_them() {
    let db = TestDb::sqlite().await;
    let app = App::start(&db).await;
    let mut body = String::from(r#"{"type":"email","rows":["#);
    body.push_str(&vec!["{}"; 3_000_000].join(","));
    body.push_str("]}");
    let refused = app
        .call(Method::POST, "/api/email-accounts/import/preview")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let answer = json_of(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(answer["error"]["code"], "too_many_rows");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("3000000 rows: at most 10000"),
        "{answer}"
    );
}

#[tokio::test]
async fn the_command_line_lists_the_first_lines_not_applied_and_counts_the_rest() {
    let db = with_fixture_users().await;
    let file = db.dir.path().join("nobody.csv");
    std::fs::write(&file, nobody_lines(250)).unwrap();
    let output = db.run(&[
        "import",
        file.to_str().unwrap(),
        "--type",
        "email",
        "--dry-run",
    ]);
    let message = stderr(&output);
    assert_eq!(
        message.matches(": discarded: ").count(),
        mdm_mail::import::LINES_KEPT,
        "{message}"
    );
    assert!(
        message.contains(
            "nobody.csv: … and 150 more lines not applied: --results FILE writes every line's outcome"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn a_choice_or_number_given_empty_is_refused_not_taken_as_the_default() {
    let db = TestDb::sqlite().await;
    let app = App::start(&db).await;
    for (path, name) in [
        ("/api/users?limit=", "limit"),
        ("/api/export?type=email&delimiter=", "delimiter"),
        ("/api/users/alice@example.com/profile?platform=", "platform"),
    ] {
        let body = json_of(
            app.call(Method::GET, path).send().await.unwrap(),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(body["error"]["code"], "invalid_parameter", "{path}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(name),
            "{path}: {body}"
        );
    }
    let preview = app
        .call(Method::POST, "/api/imports/preview?type=email&header=")
        .body("a,b\n")
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_command_line_names_a_file_of_the_other_type_and_macs_without_a_user_channel() {
    let db = with_fixture_users().await;
    let file = db.dir.path().join("exchange.csv");
    std::fs::write(
        &file,
        "alice@example.com,alice@example.com,alice,EXAMPLE,pw\n",
    )
    .unwrap();
    let output = db.run(&[
        "import",
        file.to_str().unwrap(),
        "--type",
        "email",
        "--dry-run",
    ]);
    let message = stderr(&output);
    assert!(
        message.contains("expected 7 columns, found 5 (a Mail for Exchange row has 5: is this a --type exchange file?)"),
        "{message}"
    );
    assert!(crate::support::stdout(&output).contains("1 rejected, 0 duplicates"));

    let devices = db.dir.path().join("devices.csv");
    std::fs::write(
        &devices,
        "user_email,device_id,platform,enrollment_id\nalice@example.com,MAC-X,macos,MAC-X\n",
    )
    .unwrap();
    let loaded = db.run(&["devices", "import", devices.to_str().unwrap()]);
    assert!(loaded.status.success());
    assert!(
        stderr(&loaded).contains("warning: 1 macOS device without a user_channel_id (MAC-X)"),
        "{}",
        stderr(&loaded)
    );
}

#[tokio::test]
async fn a_file_that_is_not_text_is_refused_at_once_saying_what_it_is() {
    let db = with_fixture_users().await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\0\0\0\0:~\x9bU".to_vec();
    let app = App::start(&db).await;
    let body = json_of(
        app.call(Method::POST, "/api/imports/preview?type=email")
            .body(png.clone())
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["error"]["code"], "unreadable_file");
    assert_eq!(
        body["error"]["message"],
        "this is a PNG image, not a CSV file: save or export it as CSV (UTF-8) and try again"
    );
    let file = db.dir.path().join("accounts.xlsx");
    std::fs::write(&file, b"PK\x03\x04\x14\0\x06\0").unwrap();
    let refused = db.run(&["import", file.to_str().unwrap(), "--type", "email"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains(
            "accounts.xlsx: nothing was imported: the spreadsheet is damaged: it is not a whole ZIP archive (was it cut short?)"
        ),
        "{}",
        stderr(&refused)
    );
    let refused = db.run(&["users", "import", file.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("not a CSV file"),
        "{}",
        stderr(&refused)
    );
}

#[tokio::test]
async fn a_users_file_of_only_bad_rows_lists_the_first_and_counts_them_all() {
    let db = TestDb::sqlite().await;
    let file = db.dir.path().join("users.csv");
    let mut text = String::from("email,display_name\n");
    for i in 0..5_000 {
        text.push_str(&format!("not-an-address-{i},X\n"));
    }
    std::fs::write(&file, text).unwrap();
    let loaded = db.run(&["users", "import", file.to_str().unwrap(), "--json"]);
    assert_eq!(loaded.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&loaded.stdout).unwrap();
    assert_eq!(report["rejected_total"], 5_000);
    let listed = report["rejected"].as_array().unwrap();
    assert_eq!(listed.len(), mdm_mail::import::LINES_KEPT);
    assert_eq!(listed[0]["line"], 2, "the first bad rows, in line order");
    assert_eq!(listed[99]["line"], 101);
}
