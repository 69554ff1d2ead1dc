//! Past imports, found again: `imports list`, `imports show` with the results file, and
//! `GET /api/imports`, newest first and paged, on SQLite and PostgreSQL.

use reqwest::{Method, StatusCode};

use crate::api::{App, json_of};
use crate::support::{fixture, stderr, stdout, store_test};

/// The id a committed `import` prints.
fn committed_id(output: &std::process::Output) -> String {
    let text = stdout(output);
    text.lines()
        .find_map(|l| l.strip_prefix("committed as import "))
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no import id in {text}"))
        .to_owned()
}

store_test! {
    async fn past_imports_are_listed_newest_first_and_shown_with_their_results(db: TestDb) {
        let users = fixture("users.csv");
        assert!(db.run(&["users", "import", users.to_str().unwrap()]).status.success());
        let email = fixture("import/email.csv");
        let first = db.run(&["import", email.to_str().unwrap(), "--type", "email", "--no-push"]);
        let second = db.run(&["import", email.to_str().unwrap(), "--type", "email", "--no-push"]);
        let (first, second) = (committed_id(&first), committed_id(&second));

        let listed: serde_json::Value = serde_json::from_slice(&db.run(&["imports", "list", "--json"]).stdout).unwrap();
        let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [second.as_str(), first.as_str()]);
        assert_eq!(listed[1]["added"], 2);
        assert_eq!(listed[0]["unchanged"], 2);
        assert!(stdout(&db.run(&["imports", "list"])).contains("email.csv"));

        let shown = db.run(&["imports", "show", &first]);
        assert!(shown.status.success(), "{}", stderr(&shown));
        let text = stdout(&shown);
        assert!(text.contains("2 added, 0 updated, 0 unchanged, 1 discarded, 1 rejected, 1 duplicate\n"), "{text}");
        assert!(text.contains("email.csv:4: rejected: email_address:"), "{text}");

        let out = db.dir.path().join("results.csv");
        assert!(db.run(&["imports", "show", &first, "--results", out.to_str().unwrap()]).status.success());
        let results = std::fs::read_to_string(&out).unwrap();
        assert_eq!(results.lines().count(), 6, "header and five lines: {results}");

        let app = App::start(&db).await;
        let page = json_of(app.call(Method::GET, "/api/imports?limit=1").send().await.unwrap(), StatusCode::OK).await;
        assert_eq!(page["imports"][0]["id"], second.as_str());
        let next = page["next"].as_str().unwrap().to_owned();
        let page = json_of(app.call(Method::GET, &format!("/api/imports?limit=1&after={next}")).send().await.unwrap(), StatusCode::OK).await;
        assert_eq!(page["imports"][0]["id"], first.as_str());
        let downloaded = app.call(Method::GET, &format!("/api/imports/{first}/results.csv")).send().await.unwrap().text().await.unwrap();
        assert_eq!(downloaded, results, "the CLI and the API give the same results file");

        let missing = db.run(&["imports", "show", "0190f1a2-0000-7000-8000-000000000000"]);
        assert_eq!(missing.status.code(), Some(1));
        assert!(stderr(&missing).contains("there is no import"), "{}", stderr(&missing));
    }
}

#[tokio::test]
async fn the_wizard_lists_past_imports_with_their_results_files() {
    let db = crate::hardening::with_fixture_users().await;
    let app = App::start(&db).await;
    let session = crate::wizard::ops_session(&db, &app).await;
    let page = |path: &'static str| crate::wizard::page_as(&app, &session, path);
    assert!(page("/imports").await.contains("No imports yet"));
    let email = fixture("import/email.csv");
    let id = committed_id(&db.run(&[
        "import",
        email.to_str().unwrap(),
        "--type",
        "email",
        "--no-push",
    ]));
    let listed = page("/imports").await;
    assert!(listed.contains("email.csv"), "{listed}");
    assert!(
        listed.contains(&format!(r#"href="/api/imports/{id}/results.csv""#)),
        "{listed}"
    );
    assert!(
        page("/")
            .await
            .contains(r#"<a href="/imports">Imports</a>"#)
    );
    assert!(
        listed.contains(r#"<a href="/imports" aria-current="page">Imports</a>"#),
        "the current page is marked"
    );
}

#[tokio::test]
async fn the_users_page_exports_with_the_delimiter_and_encoding_chosen() {
    let db = crate::hardening::with_fixture_users().await;
    let app = App::start(&db).await;
    let session = crate::wizard::ops_session(&db, &app).await;
    let page = crate::wizard::page_as(&app, &session, "/").await;
    for option in [
        r#"name="delimiter""#,
        r#"value="semicolon""#,
        r#"value="utf-8-bom""#,
        r#"action="/api/export""#,
    ] {
        assert!(page.contains(option), "{option}");
    }
    // What the form submits, with the admin's session.
    let export = app
        .anonymous(
            Method::GET,
            "/api/export?type=email&delimiter=semicolon&encoding=utf-8-bom",
        )
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), StatusCode::OK);
    let user = crate::wizard::page_as(&app, &session, "/users/chloe@example.com").await;
    assert!(
        user.contains("No enrolled devices"),
        "a user without devices says so"
    );
    let bytes = export.bytes().await.unwrap();
    assert!(
        bytes.starts_with(b"\xef\xbb\xbfuser_email;"),
        "{:?}",
        String::from_utf8_lossy(&bytes[..40.min(bytes.len())])
    );
}
