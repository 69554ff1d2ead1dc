//! The API routes over the push queue and the export, over real HTTP on loopback against
//! SQLite and PostgreSQL: what the wizard's push card, push page and Export buttons call.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::api::{App, json_of};
use crate::support::{TestDb, fixture, store_test};

/// The fixture users, Alice's iPhone, and the fixture Email file committed.
/// Alice's iPhone enrolled, then the Email fixture imported: her profile is queued for it.
pub(crate) async fn imported(app: &App) -> serde_json::Value {
    app.load_directory().await;
    let device = json_of(
        app.call(Method::POST, "/api/devices")
            .json(
                &json!({ "user_email": "alice@example.com", "device_id": "ALICE-IPHONE",
                           "platform": "ios", "enrollment_id": "ALICE-IPHONE" }),
            )
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(device["push"]["installs"], 0, "no accounts yet: {device}");
    json_of(
        app.call(Method::POST, "/api/imports?type=email")
            .body(std::fs::read(fixture("import/email.csv")).unwrap())
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await
}

store_test! {
    async fn an_import_through_the_api_queues_a_push_to_each_device_it_changes(db: TestDb) {
        let app = App::start(&db).await;
        let committed = imported(&app).await;
        let batch = committed["push"]["batch"].as_str().unwrap_or_default();
        assert!(uuid::Uuid::parse_str(batch).is_ok(), "{committed}");
        assert_eq!(
            committed["push"],
            json!({ "installs": 1, "removals": 0, "replacements": 0, "batch": batch }),
            "{committed}"
        );

        let status = json_of(
            app.call(Method::GET, "/api/push/jobs").send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(status["jobs"]["queued"], 1, "{status}");
        assert_eq!(status["done"], false);
        assert_eq!(status["devices"][0]["device_id"], "ALICE-IPHONE");

        // The same file again changes nothing, so nothing more is queued.
        let again = json_of(
            app.call(Method::POST, "/api/imports?type=email")
                .body(std::fs::read(fixture("import/email.csv")).unwrap())
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(again["push"], json!({ "installs": 0, "removals": 0, "replacements": 0, "batch": null }), "{again}");
    }
}

store_test! {
    async fn retry_puts_failed_push_jobs_back_in_the_queue(db: TestDb) {
        let app = App::start(&db).await;
        imported(&app).await;
        db.execute(
            "UPDATE push_jobs SET state = 'failed', last_error = 'HTTP 400 from the MDM'",
            "UPDATE push_jobs SET state = 'failed', last_error = 'HTTP 400 from the MDM'",
        )
        .await;
        let failed = json_of(
            app.call(Method::GET, "/api/push/jobs").send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(failed["jobs"]["failed"], 1, "{failed}");
        assert_eq!(failed["devices"][0]["last_error"], "HTTP 400 from the MDM");

        let retried = json_of(
            app.call(Method::POST, "/api/push/retry").send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(retried["requeued"], 1);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM push_jobs WHERE state = 'queued'").await, 1);
    }
}

store_test! {
    async fn the_export_route_serves_the_export_command_s_file_without_passwords(db: TestDb) {
        let app = App::start(&db).await;
        imported(&app).await;

        let response = app.call(Method::GET, "/api/export?type=email").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
        assert!(response.headers()["content-disposition"].to_str().unwrap().contains("email-accounts.csv"));
        let served = response.bytes().await.unwrap();
        let cli = db.run(&["export", "--type", "email"]);
        assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
        assert_eq!(served, cli.stdout);
        let text = String::from_utf8(served.to_vec()).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(!text.contains("secret"), "{text}");

        let semicolons = app
            .call(Method::GET, "/api/export?type=email&delimiter=semicolon&encoding=utf-8-bom")
            .send().await.unwrap().bytes().await.unwrap();
        assert!(semicolons.starts_with(b"\xEF\xBB\xBFuser_email;"), "{semicolons:?}");

        let mappings = app.call(Method::GET, "/api/export?type=mappings").send().await.unwrap();
        assert_eq!(mappings.status(), StatusCode::OK);
        assert!(mappings.text().await.unwrap().contains("ALICE-IPHONE"));

        let bad = json_of(
            app.call(Method::GET, "/api/export?type=contacts").send().await.unwrap(),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(bad["error"]["code"], "invalid_parameter");
    }
}

store_test! {
    async fn removing_an_account_through_the_api_takes_its_profile_off_the_user_s_devices(db: TestDb) {
        let app = App::start(&db).await;
        imported(&app).await;
        // Alice's iPhone got her profile, as a worker records a delivery.
        let delivered = "INSERT INTO push_delivered (device_id, identifier, content_hash, sent_at) \
             SELECT device_id, profile_identifier, content_hash, 0 FROM push_jobs; \
             UPDATE push_jobs SET state = 'sent';";
        db.execute(delivered, delivered).await;
        let path = "/api/users/ALICE@example.com/accounts/email/Alice@Mail.Example.com";

        let removed = json_of(app.call(Method::DELETE, path).send().await.unwrap(), StatusCode::OK).await;
        assert_eq!(removed["address"], "Alice@Mail.Example.com", "{removed}");
        assert_eq!(removed["push"]["removals"], 1, "{removed}");
        assert_eq!(removed["push"]["installs"], 0, "{removed}");
        assert_eq!(
            db.scalar_i64("SELECT COUNT(*) FROM push_jobs WHERE kind = 'remove' AND state = 'queued'").await,
            1
        );
        let alice = json_of(
            app.call(Method::GET, "/api/users/alice@example.com").send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(alice["accounts"], json!([]), "{alice}");
        assert_eq!(
            db.scalar_i64(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'account.remove' \
                 AND actor LIKE 'token:%' AND subject = 'alice@example.com'"
            )
            .await,
            1
        );

        let again = json_of(app.call(Method::DELETE, path).send().await.unwrap(), StatusCode::NOT_FOUND).await;
        assert_eq!(again["error"]["code"], "not_found");
        assert!(again["error"]["message"].as_str().unwrap().contains("has no email account"), "{again}");
        let bad = json_of(
            app.call(Method::DELETE, "/api/users/bob@example.com/accounts/pop3/bob@mail.example.com")
                .send().await.unwrap(),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(bad["error"]["code"], "invalid_parameter");
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 1, "Bob's stays");
    }
}

store_test! {
    async fn the_push_status_of_one_change_counts_only_the_jobs_it_queued(db: TestDb) {
        let app = App::start(&db).await;
        let import = imported(&app).await;
        let first = import["push"]["batch"].as_str().unwrap().to_owned();
        let device = json!({ "user_email": "bob@example.com", "device_id": "BOB-IPHONE",
            "platform": "ios", "enrollment_id": "BOB-IPHONE" });
        let added = json_of(
            app.call(Method::POST, "/api/devices").json(&device).send().await.unwrap(),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(added["push"]["installs"], 1, "{added}");
        let second = added["push"]["batch"].as_str().unwrap().to_owned();
        assert_ne!(first, second);

        let status = |query: String| {
            let app = &app;
            async move {
                json_of(
                    app.call(Method::GET, &format!("/api/push/jobs{query}")).send().await.unwrap(),
                    StatusCode::OK,
                )
                .await
            }
        };
        let whole = status(String::new()).await;
        assert_eq!(whole["jobs"]["queued"], 2, "{whole}");
        let import = status(format!("?batch={first}")).await;
        assert_eq!(import["jobs"]["queued"], 1, "{import}");
        assert_eq!(import["done"], false, "{import}");
        let devices: Vec<&str> = import["devices"].as_array().unwrap().iter()
            .map(|d| d["device_id"].as_str().unwrap()).collect();
        assert_eq!(devices, ["ALICE-IPHONE"], "{import}");
        let later = status(format!("?batch={second}")).await;
        assert_eq!(later["devices"][0]["device_id"], "BOB-IPHONE", "{later}");

        let none = status(format!("?batch={}", uuid::Uuid::new_v4())).await;
        assert_eq!(none["jobs"]["queued"], 0, "{none}");
        assert_eq!((none["done"].as_bool(), none["devices"].as_array().map(Vec::len)), (Some(true), Some(0)), "{none}");
        let bad = json_of(
            app.call(Method::GET, "/api/push/jobs?batch=last").send().await.unwrap(),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(bad["error"]["code"], "invalid_parameter", "{bad}");
    }
}

/// Every push job sent an hour ago and nudged once since, with no answer: overdue.
pub(crate) async fn sent_an_hour_ago(db: &TestDb) {
    db.execute(
        "UPDATE push_jobs SET state = 'sent', nudges = 1, \
         sent_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000 - 3600000",
        "UPDATE push_jobs SET state = 'sent', nudges = 1, \
         sent_at = CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT) - 3600000",
    )
    .await;
}

store_test! {
    async fn push_jobs_lists_the_sent_jobs_whose_answer_is_overdue(db: TestDb) {
        let app = App::start(&db).await;
        imported(&app).await;
        // Alice's iPhone was sent its profile an hour ago and nudged once since.
        sent_an_hour_ago(&db).await;
        let status = json_of(app.call(Method::GET, "/api/push/jobs").send().await.unwrap(), StatusCode::OK).await;
        assert_eq!((status["jobs"]["sent"].as_i64(), status["jobs"]["overdue"].as_i64()), (Some(1), Some(1)), "{status}");
        let overdue = &status["overdue"][0];
        assert_eq!(overdue["device_id"], "ALICE-IPHONE", "{status}");
        assert_eq!((overdue["kind"].as_str(), overdue["nudges"].as_i64(), overdue["resent"].as_bool()), (Some("install"), Some(1), Some(false)));
        let waited = overdue["waiting_seconds"].as_i64().unwrap();
        assert!((3590..3700).contains(&waited), "{status}");
        assert_eq!(status["devices"][0]["overdue"], 1, "{status}");
    }
}
