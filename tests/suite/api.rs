//! The JSON API over real HTTP on loopback, against SQLite and PostgreSQL: the real router
//! served on a random port, called with reqwest.

use std::path::PathBuf;
use std::sync::Arc;

use mdm_mail::config::{Overrides, Settings};
use mdm_mail::http::{AppState, api};
use mdm_mail::push::Pusher;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestDb, fixture, store_test};

/// The application on a random loopback port, with an API token.
pub struct App {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A valid API token.
    pub token: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl App {
    /// Serves `db` with the fixture profile definitions and the test key.
    pub async fn start(db: &TestDb) -> App {
        App::start_with(db, Overrides::default()).await
    }

    /// As [`App::start`], with some settings overridden.
    pub async fn start_with(db: &TestDb, overrides: Overrides) -> App {
        App::start_configured(db, overrides, |_| {}).await
    }

    /// As [`App::start_with`], with the resolved settings changed by `configure` (for those
    /// only the config file sets).
    pub async fn start_configured(
        db: &TestDb,
        overrides: Overrides,
        configure: impl FnOnce(&mut Settings),
    ) -> App {
        let mut settings = Settings::load(
            None,
            Overrides {
                database_url: Some(db.url.clone()),
                profiles_dir: Some(fixture("profiles")),
                secret_key: Some(crate::import::KEY.to_owned()),
                ..overrides
            },
        )
        .expect("settings");
        configure(&mut settings);
        let store = db.open().await;
        let token =
            mdm_mail::auth::create_token(&store, "test", "tests", mdm_mail::model::Scopes::ALL)
                .await
                .expect("mint a token");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let pusher = Pusher::from_settings(&store, &settings).expect("push handle");
        let state = AppState {
            store: store.clone(),
            settings: Arc::new(settings),
            pusher: Some(pusher),
        };
        tokio::spawn(mdm_mail::http::serve(listener, state, async {
            let _ = stopped.await;
        }));
        App {
            base,
            token,
            client: reqwest::Client::new(),
            stop: Some(stop),
        }
    }

    /// A request to `path` carrying the token.
    pub fn call(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// A request to `path` without credentials.
    pub fn anonymous(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// Loads the fixture users and devices through the API.
    pub async fn load_directory(&self) {
        for (email, name) in [
            ("alice@example.com", "Alice Adams"),
            ("bob@example.com", "Bob Baker"),
            ("chloe@example.com", "Chloé Chen"),
        ] {
            let response = self
                .call(Method::POST, "/api/users")
                .json(&json!({ "email": email, "display_name": name }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The JSON of a response, after checking its status.
pub async fn json_of(response: reqwest::Response, status: StatusCode) -> Value {
    let got = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A concrete path for a declared one: `{param}` segments filled in.
pub fn concrete(path: &str) -> String {
    path.replace("{id}", "0190f1a2-0000-7000-8000-000000000000")
        .replace("{email}", "nobody@example.com")
        .replace("{device_id}", "NO-DEVICE")
        .replace("{type}", "email")
        .replace("{address}", "nobody@example.com")
}

fn email_csv() -> Vec<u8> {
    std::fs::read(fixture("import/email.csv")).unwrap()
}

store_test! {
    async fn every_api_route_refuses_requests_without_a_valid_token(db: TestDb) {
        let app = App::start(&db).await;
        let operations = api::api().operations().to_vec();
        assert!(operations.len() >= 14, "{} routes", operations.len());
        for op in &operations {
            let path = concrete(op.path);
            for request in [
                app.anonymous(op.method.clone(), &path),
                app.anonymous(op.method.clone(), &path).bearer_auth("mdmm_not-a-token"),
                app.anonymous(op.method.clone(), &path).header("authorization", "Basic Zm9vOmJhcg=="),
            ] {
                let body = json_of(request.send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
                assert_eq!(body["error"]["code"], "unauthorized", "{} {}", op.method, op.path);
            }
            // With the token the route exists: whatever it answers, it is not the router's
            // 404 or 405, nor 401.
            let response = app.call(op.method.clone(), &path).send().await.unwrap();
            let status = response.status();
            assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::METHOD_NOT_ALLOWED,
                "{} {path}: {status}", op.method
            );
            if status == StatusCode::NOT_FOUND {
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "not_found", "{} {path}", op.method);
            }
        }
    }
}

store_test! {
    async fn the_openapi_document_lists_every_route(db: TestDb) {
        let app = App::start(&db).await;
        let document = json_of(
            app.call(Method::GET, "/api/openapi.json").send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(document["openapi"], "3.1.0");
        let operations = api::api().operations().to_vec();
        let mut documented = 0;
        for (path, methods) in document["paths"].as_object().unwrap() {
            documented += methods.as_object().unwrap().len();
            assert!(path.starts_with("/api/"), "{path}");
        }
        assert_eq!(documented, operations.len());
        for op in &operations {
            let entry = &document["paths"][op.path][op.method.as_str().to_lowercase()];
            assert!(entry.is_object(), "{} {} is not documented", op.method, op.path);
            assert!(entry["responses"]["401"].is_object());
            for name in entry["parameters"].as_array().unwrap().iter().filter(|p| p["in"] == "path") {
                let name = name["name"].as_str().unwrap();
                assert!(op.path.contains(&format!("{{{name}}}")), "{name} in {}", op.path);
            }
        }
        // Every schema a route refers to exists.
        let text = document.to_string();
        for reference in text.split("#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(document["components"]["schemas"][name].is_object(), "{name}");
        }
    }
}

store_test! {
    async fn a_preview_then_its_commit_import_exactly_what_was_previewed(db: TestDb) {
        let app = App::start(&db).await;
        app.load_directory().await;

        let preview = json_of(
            app.call(Method::POST, "/api/imports/preview?type=email&results_limit=1000")
                .body(email_csv())
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(preview["dry_run"], true);
        assert_eq!(
            (preview["rows"].as_u64(), preview["added"].as_u64(), preview["discarded"].as_u64(),
             preview["rejected"].as_u64(), preview["duplicates"].as_u64()),
            (Some(5), Some(2), Some(1), Some(1), Some(1))
        );
        assert_eq!(preview["delimiter"], ",");
        assert_eq!(preview["encoding"], "utf-8");
        assert_eq!(preview["results"].as_array().unwrap().len(), 5);
        assert_eq!(preview["results"][3]["field"], "email_address");
        assert_eq!(preview["columns"].as_array().unwrap().len(), 7);
        let sample = preview["sample"].to_string();
        assert!(!sample.contains("imap-secret-1") && !sample.contains("smtp-secret-1"), "{sample}");
        assert!(sample.contains("alice@mail.example.com"));
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 0);

        let fingerprint = preview["fingerprint"].as_str().unwrap();
        let committed = json_of(
            app.call(Method::POST, &format!("/api/imports?type=email&fingerprint={fingerprint}"))
                .body(email_csv())
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(committed["added"], 2);
        assert_eq!(committed["dry_run"], false);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 2);
        let id = committed["id"].as_str().unwrap();

        let record = json_of(
            app.call(Method::GET, &format!("/api/imports/{id}")).send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(record["counts"]["added"], 2);
        assert_eq!(record["actor"], "token:tests");
        let lines: Vec<u64> = record["lines"].as_array().unwrap().iter()
            .map(|l| l["line"].as_u64().unwrap()).collect();
        assert_eq!(lines, [3, 4, 5]);

        let response = app.call(Method::GET, &format!("/api/imports/{id}/results.csv"))
            .send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let csv = response.text().await.unwrap();
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows[0], "line,user_email,account_address,outcome,message");
        assert_eq!(rows.len(), 6, "{csv}");
        assert!(rows[1].starts_with("1,alice@example.com,alice@mail.example.com,added"));
        assert!(!csv.contains("secret"));
    }
}

store_test! {
    async fn a_commit_after_the_store_changed_writes_nothing_and_says_so(db: TestDb) {
        let app = App::start(&db).await;
        app.load_directory().await;
        let preview = json_of(
            app.call(Method::POST, "/api/imports/preview?type=email").body(email_csv())
                .send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        // The unmatched user now exists: the commit would add a line the preview discarded.
        app.call(Method::POST, "/api/users")
            .json(&json!({ "email": "nobody@example.com" }))
            .send().await.unwrap();
        let refused = json_of(
            app.call(Method::POST, &format!(
                "/api/imports?type=email&fingerprint={}", preview["fingerprint"].as_str().unwrap()))
                .body(email_csv()).send().await.unwrap(),
            StatusCode::CONFLICT,
        )
        .await;
        assert_eq!(refused["error"]["code"], "store_changed");
        assert_eq!(refused["error"]["details"]["added"], 3);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 0);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM imports").await, 0);
    }
}

store_test! {
    async fn uploads_come_as_multipart_or_raw_and_over_the_limit_get_a_413_message(db: TestDb) {
        let app = App::start_with(&db, Overrides { upload_limit_mib: Some(1), ..Overrides::default() }).await;
        app.load_directory().await;
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(email_csv()).file_name("accounts.csv"),
        );
        let preview = json_of(
            app.call(Method::POST, "/api/imports/preview?type=email&delimiter=comma&header=no")
                .multipart(form).send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(preview["source"], "accounts.csv");
        assert_eq!(preview["added"], 2);

        let mut big = email_csv();
        while big.len() <= 2 * 1024 * 1024 {
            big.extend_from_slice(b"alice@example.com,Alice,a@mail.example.com,a,,a,\n");
        }
        let refused = json_of(
            app.call(Method::POST, "/api/imports/preview?type=email").body(big)
                .send().await.expect("the answer arrives rather than a reset connection"),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
        .await;
        assert_eq!(refused["error"]["code"], "upload_too_large");
        assert!(refused["error"]["message"].as_str().unwrap().contains("1 MiB"));

        let bad = json_of(
            app.call(Method::POST, "/api/imports/preview?type=calendar").body("x").send().await.unwrap(),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(bad["error"]["code"], "invalid_parameter");
        assert!(bad["error"]["message"].as_str().unwrap().starts_with("type:"));
        let unreadable = json_of(
            app.call(Method::POST, "/api/imports/preview?type=email").body("\n\n").send().await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(unreadable["error"]["code"], "unreadable_file");
    }
}

store_test! {
    async fn json_rows_get_one_outcome_each_without_writing(db: TestDb) {
        let app = App::start(&db).await;
        app.load_directory().await;
        let outcomes = json_of(
            app.call(Method::POST, "/api/email-accounts/import/preview")
                .json(&json!({ "type": "exchange", "rows": [
                    { "user_email": "alice@example.com", "exchange_email": "alice@corp.example.com",
                      "exchange_username": "alice", "exchange_password": "=secret" },
                    { "user_email": "nobody@example.com", "exchange_email": "n@corp.example.com",
                      "exchange_username": "n" },
                    { "user_email": "bob@example.com", "exchange_email": "not an address",
                      "exchange_username": "bob" },
                    {},
                ]}))
                .send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        let rows = outcomes["rows"].as_array().unwrap();
        let got: Vec<(&str, &Value)> = rows.iter()
            .map(|r| (r["outcome"].as_str().unwrap(), &r["field"])).collect();
        assert_eq!(got[0].0, "added");
        assert_eq!(got[1].0, "discarded");
        assert_eq!(got[2], ("rejected", &json!("exchange_email")));
        assert_eq!(got[3].0, "rejected");
        assert!(!outcomes.to_string().contains("secret"));
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 0);

        let unknown = json_of(
            app.call(Method::POST, "/api/email-accounts/import/preview")
                .json(&json!({ "type": "email", "rows": [{ "colour": "blue" }] }))
                .send().await.unwrap(),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(unknown["error"]["message"].as_str().unwrap().contains("\"colour\""));
    }
}

store_test! {
    async fn users_and_devices_are_listed_added_shown_and_removed(db: TestDb) {
        let app = App::start(&db).await;
        app.load_directory().await;
        let device = json!({ "user_email": "alice@example.com", "device_id": "IPHONE-A",
            "platform": "ios", "enrollment_id": "IPHONE-A" });
        let added = json_of(
            app.call(Method::POST, "/api/devices").json(&device).send().await.unwrap(),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(added, json!({ "device_id": "IPHONE-A", "added": true,
                                  "push": { "installs": 0, "removals": 0, "replacements": 0, "batch": null } }));
        let orphan = json_of(
            app.call(Method::POST, "/api/devices")
                .json(&json!({ "user_email": "nobody@example.com", "device_id": "X", "platform": "ios", "enrollment_id": "X" }))
                .send().await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(orphan["error"]["code"], "invalid_device");
        let invalid = json_of(
            app.call(Method::POST, "/api/users").json(&json!({ "email": "not-an-address" }))
                .send().await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(invalid["error"]["message"].as_str().unwrap().starts_with("email:"), "{invalid}");

        let first = json_of(
            app.call(Method::GET, "/api/users?limit=2").send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(first["users"].as_array().unwrap().len(), 2);
        assert_eq!(first["users"][0]["devices"], 1);
        let next = first["next"].as_str().unwrap();
        let second = json_of(
            app.call(Method::GET, &format!("/api/users?limit=2&after={next}")).send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(second["users"][0]["email"], "chloe@example.com");
        assert_eq!(second["next"], Value::Null);
        let found = json_of(
            app.call(Method::GET, "/api/users?q=CHLO").send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(found["users"].as_array().unwrap().len(), 1);

        let alice = json_of(
            app.call(Method::GET, "/api/users/ALICE@example.com").send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(alice["devices"][0]["device_id"], "IPHONE-A");
        let devices = json_of(app.call(Method::GET, "/api/devices").send().await.unwrap(), StatusCode::OK).await;
        assert_eq!(devices["devices"].as_array().unwrap().len(), 1);

        let removed = app.call(Method::DELETE, "/api/devices/IPHONE-A").send().await.unwrap();
        assert_eq!(removed.status(), StatusCode::NO_CONTENT);
        let removed = app.call(Method::DELETE, "/api/users/bob@example.com").send().await.unwrap();
        assert_eq!(removed.status(), StatusCode::NO_CONTENT);
        let again = json_of(
            app.call(Method::DELETE, "/api/users/bob@example.com").send().await.unwrap(),
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(again["error"]["code"], "not_found");
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM users").await, 2);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM devices").await, 0);
        let audited = "SELECT COUNT(*) FROM audit_log WHERE actor = 'token:tests' AND \
             ((action = 'device.remove' AND subject = 'IPHONE-A') \
             OR (action = 'user.remove' AND subject = 'bob@example.com'))";
        assert_eq!(db.scalar_i64(audited).await, 2);
    }
}

store_test! {
    async fn a_users_profile_comes_per_platform_with_apples_media_type(db: TestDb) {
        let app = App::start(&db).await;
        app.load_directory().await;
        json_of(
            app.call(Method::POST, "/api/imports?type=email").body(email_csv()).send().await.unwrap(),
            StatusCode::CREATED,
        )
        .await;
        let response = app.call(Method::GET, "/api/users/alice@example.com/profile?platform=ios")
            .send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/x-apple-aspen-config");
        assert_eq!(
            response.headers()["content-disposition"],
            "attachment; filename=\"alice@example.com-ios.mobileconfig\""
        );
        let body = response.text().await.unwrap();
        assert!(body.contains("com.apple.mail.managed") && body.contains("imap-secret-1"));

        let redacted = app.call(Method::GET, "/api/users/alice@example.com/profile?platform=windows&redact=true")
            .send().await.unwrap();
        assert_eq!(redacted.status(), StatusCode::OK);
        let body = redacted.text().await.unwrap();
        assert!(!body.contains("imap-secret-1") && body.contains("alice@mail.example.com"), "{body}");

        let missing = json_of(
            app.call(Method::GET, "/api/users/nobody@example.com/profile?platform=ios").send().await.unwrap(),
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(missing["error"]["code"], "not_found");
        let bad = json_of(
            app.call(Method::GET, "/api/users/alice@example.com/profile?platform=palm").send().await.unwrap(),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(bad["error"]["message"].as_str().unwrap().starts_with("platform:"));
    }
}

store_test! {
    async fn token_create_prints_the_token_alone_and_stores_only_its_hash(db: TestDb) {
        let output = db.run(&["token", "create", "ci"]);
        assert!(output.status.success(), "{}", crate::support::stderr(&output));
        let printed = crate::support::stdout(&output);
        let token = printed.trim_end();
        assert_eq!(printed, format!("{token}\n"));
        assert!(token.starts_with("mdmm_") && token.len() > 40, "{token}");
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM api_tokens WHERE name = 'ci'").await, 1);
        let file = PathBuf::from(db.dir.path()).join("test.db");
        if file.exists() {
            let bytes = std::fs::read(&file).unwrap();
            assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
        }

        let again = db.run(&["token", "create", "ci"]);
        assert_eq!(again.status.code(), Some(1));
        assert!(crate::support::stderr(&again).contains("already exists"));
        assert!(again.stdout.is_empty());

        // The token works against the API.
        let app = App::start(&db).await;
        let response = app.anonymous(Method::GET, "/api/users").bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}

store_test! {
    async fn a_revoked_token_is_refused_and_token_list_shows_when_each_was_last_used(db: TestDb) {
        use crate::support::{stderr, stdout};
        let token = stdout(&db.run(&["token", "create", "deploy"])).trim().to_owned();
        let listed = db.run(&["token", "list"]);
        assert!(listed.status.success(), "{}", stderr(&listed));
        let line = stdout(&listed).lines().find(|l| l.starts_with("deploy")).map(str::to_owned);
        assert!(line.as_deref().is_some_and(|l| l.ends_with("never")), "{}", stdout(&listed));

        let app = App::start(&db).await;
        let call = || app.anonymous(Method::GET, "/api/users").bearer_auth(&token).send();
        assert_eq!(call().await.unwrap().status(), StatusCode::OK);
        // The use is recorded off the request's path, so it may land a moment later.
        let used = "SELECT COUNT(*) FROM api_tokens WHERE name = 'deploy' AND last_used_at IS NOT NULL";
        let started = std::time::Instant::now();
        while db.scalar_i64(used).await == 0 {
            assert!(started.elapsed().as_secs() < 10, "the token's use was never recorded");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let listed: Value = serde_json::from_slice(&db.run(&["token", "list", "--json"]).stdout).unwrap();
        let deploy = listed.as_array().unwrap().iter().find(|t| t["name"] == "deploy").unwrap();
        assert!(deploy["last_used_at"].is_i64(), "{listed}");
        assert!(!listed.to_string().contains("hash"), "{listed}");

        let revoked = db.run(&["token", "revoke", "deploy"]);
        assert!(revoked.status.success(), "{}", stderr(&revoked));
        assert_eq!(call().await.unwrap().status(), StatusCode::UNAUTHORIZED);
        let again = db.run(&["token", "revoke", "deploy"]);
        assert_eq!(again.status.code(), Some(1));
        assert!(stderr(&again).contains("there is no token \"deploy\""), "{}", stderr(&again));
        let audited = "SELECT COUNT(*) FROM audit_log WHERE subject = 'deploy' AND actor LIKE 'cli%' \
             AND action IN ('token.create', 'token.revoke')";
        assert_eq!(db.scalar_i64(audited).await, 2);
    }
}

store_test! {
    async fn removing_an_admin_ends_their_sessions_at_once(db: TestDb) {
        use crate::support::{stderr, stdout};
        let store = db.open().await;
        mdm_mail::auth::add_admin(&store, "test", "ops", "a long enough password").await.unwrap();
        let session = crate::support::sign_in_directly(&store, "ops", "a long enough password")
            .await.expect("signed in");
        let listed = db.run(&["admin", "list"]);
        assert!(stdout(&listed).lines().any(|l| l.starts_with("ops ")), "{}", stdout(&listed));

        let removed = db.run(&["admin", "remove", "ops"]);
        assert!(removed.status.success(), "{}", stderr(&removed));
        assert_eq!(mdm_mail::auth::session(&store, &session.token).await.unwrap(), None);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM sessions").await, 0);
        let again = db.run(&["admin", "remove", "ops"]);
        assert_eq!(again.status.code(), Some(1));
        assert!(stderr(&again).contains("there is no admin \"ops\""), "{}", stderr(&again));
        let audited = "SELECT COUNT(*) FROM audit_log WHERE subject = 'ops' \
             AND action IN ('admin.add', 'admin.remove')";
        assert_eq!(db.scalar_i64(audited).await, 2);
        store.close().await;
    }
}

store_test! {
    async fn admin_add_takes_the_password_from_standard_input_and_hashes_it(db: TestDb) {
        use std::io::Write;
        let add = |password: &'static str| {
            let mut child = std::process::Command::new(crate::support::binary())
                .current_dir(db.dir.path())
                .env_remove("MDM_MAIL_ADMIN_PASSWORD")
                .env("MDM_MAIL_DATABASE_URL", &db.url)
                .env("MDM_MAIL_SECRET_KEY", crate::import::KEY)
                .args(["admin", "add", "ops"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
            child.wait_with_output().unwrap()
        };
        let short = add("short\n");
        assert_eq!(short.status.code(), Some(1));
        assert!(crate::support::stderr(&short).contains("too short"));
        let added = add("a long enough password\n");
        assert!(added.status.success(), "{}", crate::support::stderr(&added));
        assert_eq!(
            db.scalar_i64("SELECT COUNT(*) FROM admins WHERE name = 'ops' AND password_hash LIKE '$argon2id$%'").await,
            1
        );
        let store = db.open().await;
        let sign_in = |name, password| crate::support::sign_in_directly(&store, name, password);
        assert!(sign_in("ops", "a long enough password").await.is_some());
        assert!(sign_in("ops", "wrong password!!").await.is_none());
        assert!(sign_in("nobody", "a long enough password").await.is_none());
    }
}

store_test! {
    async fn a_preview_on_the_wrong_delimiter_still_shows_no_password(db: TestDb) {
        let app = App::start(&db).await;
        app.load_directory().await;
        let file = std::fs::read(fixture("wizard/accounts-semicolon-bom.csv")).unwrap();
        let preview = json_of(
            app.call(Method::POST, "/api/imports/preview?type=email&delimiter=comma&results_limit=1000")
                .body(file).send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(preview["rejected"], 5);
        let text = preview.to_string();
        assert!(!text.contains("imap-secret-1") && !text.contains("smtp-secret-1"), "{text}");
    }
}

store_test! {
    async fn a_preview_pages_through_only_the_outcomes_asked_for(db: TestDb) {
        let app = App::start(&db).await;
        app.load_directory().await;
        let page = |query: &str| {
            let request = app
                .call(Method::POST, &format!("/api/imports/preview?type=email&{query}"))
                .body(email_csv());
            async move { json_of(request.send().await.unwrap(), StatusCode::OK).await }
        };
        let lines = |preview: &Value| -> Vec<(u64, String)> {
            preview["results"].as_array().unwrap().iter()
                .map(|l| (l["line"].as_u64().unwrap(), l["outcome"].as_str().unwrap().to_owned()))
                .collect()
        };
        // Lines 3, 4 and 5 are the problems (discarded, rejected, duplicate); the offset counts
        // among them only.
        let first = page("results_outcome=problems&results_limit=2").await;
        assert_eq!(lines(&first), [(3, "discarded".into()), (4, "rejected".into())]);
        let second = page("results_outcome=problems&results_limit=2&results_offset=2").await;
        assert_eq!(lines(&second), [(5, "duplicate".into())]);
        // The summary is the whole file's, whatever the filter.
        assert_eq!((second["rows"].as_u64(), second["added"].as_u64()), (Some(5), Some(2)));
        let added = page("results_outcome=added&results_limit=10").await;
        assert_eq!(lines(&added), [(1, "added".into()), (2, "added".into())]);
        let all = page("results_outcome=all&results_limit=10").await;
        assert_eq!(all["results"].as_array().unwrap().len(), 5);

        // A rejected line shows the value that is wrong, as written.
        let rejected = page("results_outcome=rejected&results_limit=10").await;
        assert_eq!(rejected["results"][0]["account_address"], "bob.example.com");
        assert_eq!(rejected["results"][0]["user_email"], "bob@example.com");

        let refused = json_of(
            app.call(Method::POST, "/api/imports/preview?type=email&results_outcome=failed&results_limit=10")
                .body(email_csv()).send().await.unwrap(),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(refused["error"]["message"].as_str().unwrap().starts_with("results_outcome: unknown outcome"), "{refused}");
    }
}

store_test! {
    async fn a_rejected_address_holding_another_delimiter_is_shown_as_written(db: TestDb) {
        let app = App::start(&db).await;
        app.load_directory().await;
        // A comma typed for a dot, in a semicolon file: the line splits right, so its
        // address is no password and is shown.
        let file = "alice@example.com;Alice;alice@mail,example.com;alice;imap-secret-1;alice;smtp-secret-1\n";
        let preview = json_of(
            app.call(Method::POST, "/api/imports/preview?type=email&delimiter=semicolon&results_limit=10")
                .body(file).send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(preview["rejected"], 1);
        assert_eq!(preview["results"][0]["account_address"], "alice@mail,example.com");
        let text = preview.to_string();
        assert!(!text.contains("imap-secret-1") && !text.contains("smtp-secret-1"), "{text}");
    }
}

store_test! {
    async fn a_file_of_the_other_account_type_is_named_with_the_type_to_switch_to(db: TestDb) {
        let app = App::start(&db).await;
        app.load_directory().await;
        let exchange = std::fs::read(fixture("import/exchange.csv")).unwrap();
        // Its header names the Exchange columns: refused, naming the type it fits.
        let refused = json_of(
            app.call(Method::POST, "/api/imports/preview?type=email").body(exchange.clone())
                .send().await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(refused["error"]["code"], "unreadable_file");
        assert_eq!(refused["error"]["details"]["other_type"], "exchange");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(
            message.ends_with("these are the columns of a Mail for Exchange file; is this a --type exchange file?"),
            "{message}"
        );
        // A header that fits neither type is refused without a guess.
        let neither = json_of(
            app.call(Method::POST, "/api/imports/preview?type=email")
                .body("user_email,phone\nalice@example.com,555\n").send().await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(neither["error"].get("details").is_none(), "{neither}");

        // Without a header, most lines having the other type's width says the same.
        let rows: String = exchange.split(|&b| b == b'\n').skip(1)
            .map(|line| format!("{}\n", String::from_utf8_lossy(line)))
            .collect();
        let preview = json_of(
            app.call(Method::POST, "/api/imports/preview?type=email").body(rows.clone())
                .send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(preview["rejected"], 3);
        assert_eq!(preview["other_type"], "exchange");
        let right = json_of(
            app.call(Method::POST, "/api/imports/preview?type=exchange").body(rows)
                .send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(right["other_type"], Value::Null);
        assert_eq!(right["added"], 2);
    }
}

store_test! {
    async fn a_committed_imports_lines_are_listed_by_outcome(db: TestDb) {
        let app = App::start(&db).await;
        app.load_directory().await;
        let committed = json_of(
            app.call(Method::POST, "/api/imports?type=email").body(email_csv()).send().await.unwrap(),
            StatusCode::CREATED,
        )
        .await;
        let id = committed["id"].as_str().unwrap();
        let lines = |query: &str| {
            let request = app.call(Method::GET, &format!("/api/imports/{id}?{query}"));
            async move { json_of(request.send().await.unwrap(), StatusCode::OK).await }
        };
        let numbers = |record: &Value| -> Vec<u64> {
            record["lines"].as_array().unwrap().iter().map(|l| l["line"].as_u64().unwrap()).collect()
        };
        let rejected = lines("outcome=rejected").await;
        assert_eq!(numbers(&rejected), [4]);
        assert_eq!(rejected["lines"][0]["account_address"], "bob.example.com");
        assert_eq!(numbers(&lines("outcome=duplicate").await), [5]);
        assert_eq!(numbers(&lines("").await), [3, 4, 5]);
        let first = lines("outcome=discarded&limit=1").await;
        assert_eq!((numbers(&first), first["next"].as_u64()), (vec![3], Some(3)));
        assert_eq!(numbers(&lines("outcome=discarded&after=3").await), Vec::<u64>::new());

        let refused = json_of(
            app.call(Method::GET, &format!("/api/imports/{id}?outcome=added")).send().await.unwrap(),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(refused["error"]["message"].as_str().unwrap().starts_with("outcome: an import keeps only the lines it did not apply"), "{refused}");
    }
}

store_test! {
    async fn a_profile_download_is_named_as_profile_all_names_its_file(db: TestDb) {
        let app = App::start(&db).await;
        let created = app
            .call(Method::POST, "/api/users")
            .json(&json!({ "email": "Con.Zoë@Example.com", "display_name": "Zoë" }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let csv = "user_email,display_name,email_address,incoming_username,incoming_password,outgoing_username,outgoing_password\n\
                   con.zoë@example.com,Zoë,zoe@mail.example.com,zoe,pw1,zoe,pw2\n";
        json_of(
            app.call(Method::POST, "/api/imports?type=email").body(csv).send().await.unwrap(),
            StatusCode::CREATED,
        )
        .await;
        let response = app
            .call(Method::GET, "/api/users/con.zo%C3%AB@example.com/profile?platform=ios")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        // Lower-cased, and the first letter escaped since Windows takes `con.…` for a
        // device; the UTF-8 name in `filename*`, an ASCII one beside it.
        assert_eq!(
            response.headers()["content-disposition"],
            "attachment; filename=\"_63on.zo_@example.com-ios.mobileconfig\"; \
             filename*=UTF-8''%2563on.zo%C3%AB%40example.com-ios.mobileconfig"
        );
    }
}
