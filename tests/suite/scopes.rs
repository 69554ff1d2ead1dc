//! Token scopes over real HTTP: every route enforces the scope it declares, the OpenAPI
//! document says the same, and `token create --scope` / `token list` through the real binary.

use mdm_mail::http::api;
use mdm_mail::model::{Scope, Scopes};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::api::{App, concrete, json_of};
use crate::support::{TestDb, stderr, stdout, store_test};

/// A token with exactly `scopes`, minted straight into `db`.
async fn token(db: &TestDb, name: &str, scopes: &[Scope]) -> String {
    mdm_mail::auth::create_token(&db.open().await, "test", name, Scopes::of(scopes))
        .await
        .unwrap()
}

store_test! {
    async fn every_route_refuses_a_token_without_the_scope_it_declares(db: TestDb) {
        let app = App::start(&db).await;
        let document = json_of(
            app.call(Method::GET, "/api/openapi.json").send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        for op in api::api().operations() {
            let needed = op.needs.scope;
            let others: Vec<Scope> = Scope::ALL.into_iter().filter(|s| *s != needed).collect();
            let without = token(&db, &format!("without-{}", op.id), &others).await;
            let only = token(&db, &format!("only-{}", op.id), &[needed]).await;
            let path = concrete(op.path);

            let refused = app.anonymous(op.method.clone(), &path).bearer_auth(&without).send().await.unwrap();
            let challenge = refused.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
            let body = json_of(refused, StatusCode::FORBIDDEN).await;
            assert_eq!(body["error"]["code"], "insufficient_scope", "{} {path}", op.method);
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(&format!("the {needed} scope")), "{} {path}: {message}", op.method);
            assert_eq!(
                challenge.as_deref(),
                Some(format!("Bearer error=\"insufficient_scope\", scope=\"{needed}\"").as_str())
            );

            let allowed = app.anonymous(op.method.clone(), &path).bearer_auth(&only).send().await.unwrap();
            let status = allowed.status();
            assert!(
                ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN, StatusCode::METHOD_NOT_ALLOWED].contains(&status),
                "{} {path} with only {needed}: {status}", op.method
            );

            let declared = &document["paths"][op.path][op.method.as_str().to_lowercase()];
            assert_eq!(declared["security"], serde_json::json!([{ "bearer": [needed] }]), "{}", op.id);
            assert!(declared["responses"]["403"].is_object(), "{}", op.id);
        }
    }
}

store_test! {
    async fn a_redacted_profile_needs_only_read_and_the_passwords_need_secrets(db: TestDb) {
        let app = App::start(&db).await;
        app.load_directory().await;
        let imported = app
            .call(Method::POST, "/api/imports?type=email")
            .body(std::fs::read(crate::support::fixture("import/email.csv")).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(imported.status(), StatusCode::CREATED);
        let reader = token(&db, "reader", &[Scope::Read]).await;
        let profile = "/api/users/alice@example.com/profile?platform=ios";

        let redacted = app.anonymous(Method::GET, &format!("{profile}&redact=true")).bearer_auth(&reader).send().await.unwrap();
        assert_eq!(redacted.status(), StatusCode::OK);
        assert!(String::from_utf8_lossy(&redacted.bytes().await.unwrap()).contains("********"));

        for query in ["", "&redact=false", "&redact=1"] {
            let refused = app.anonymous(Method::GET, &format!("{profile}{query}")).bearer_auth(&reader).send().await.unwrap();
            let body = json_of(refused, StatusCode::FORBIDDEN).await;
            assert!(body["error"]["message"].as_str().unwrap().contains("secrets"), "{query}: {body}");
        }

        let fetcher = token(&db, "fetcher", &[Scope::Read, Scope::Secrets]).await;
        let full = app.anonymous(Method::GET, profile).bearer_auth(&fetcher).send().await.unwrap();
        assert_eq!(full.status(), StatusCode::OK);
        assert!(!String::from_utf8_lossy(&full.bytes().await.unwrap()).contains("********"));
    }
}

store_test! {
    async fn token_create_takes_scopes_and_token_list_shows_them(db: TestDb) {
        let default = db.run(&["token", "create", "plain"]);
        assert!(default.status.success(), "{}", stderr(&default));
        let scoped = db.run(&["token", "create", "fetcher", "--scope", "read,secrets"]);
        assert!(scoped.status.success(), "{}", stderr(&scoped));

        let bad = db.run(&["token", "create", "bad", "--scope", "read,admin"]);
        assert_eq!(bad.status.code(), Some(2));
        assert!(stderr(&bad).contains("unknown scope \"admin\""), "{}", stderr(&bad));
        assert!(bad.stdout.is_empty());

        let listed = stdout(&db.run(&["token", "list"]));
        let line = |name: &str| listed.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_owned();
        assert!(line("plain").contains(" read,write "), "{listed}");
        assert!(line("fetcher").contains(" read,secrets "), "{listed}");
        assert!(!listed.contains("bad"), "{listed}");

        let json: Value = serde_json::from_slice(&db.run(&["token", "list", "--json"]).stdout).unwrap();
        assert_eq!(json[0]["name"], "fetcher");
        assert_eq!(json[0]["scopes"], serde_json::json!(["read", "secrets"]));
        assert_eq!(json[0]["before_scopes"], false);
        assert_eq!(
            db.scalar_i64("SELECT COUNT(*) FROM audit_log WHERE action = 'token.create' AND details LIKE '%secrets%'").await,
            1
        );
    }
}

store_test! {
    async fn a_token_made_before_scopes_keeps_all_three_and_is_marked_for_replacement(db: TestDb) {
        let app = App::start(&db).await;
        app.load_directory().await;
        // As the migration leaves a token minted before it: no scopes recorded.
        let old = token(&db, "old", &[Scope::Read]).await;
        db.execute(
            "UPDATE api_tokens SET scopes = NULL WHERE name = 'old'",
            "UPDATE api_tokens SET scopes = NULL WHERE name = 'old'",
        )
        .await;

        let listed = stdout(&db.run(&["token", "list"]));
        let line = listed.lines().find(|l| l.starts_with("old")).unwrap();
        assert!(line.contains("read,write,secrets (made before scopes: replace it)"), "{listed}");

        let added = app
            .anonymous(Method::POST, "/api/users")
            .bearer_auth(&old)
            .json(&serde_json::json!({ "email": "dan@example.com" }))
            .send()
            .await
            .unwrap();
        assert_eq!(added.status(), StatusCode::CREATED);
        let profile = app
            .anonymous(Method::GET, "/api/users/alice@example.com/profile?platform=ios")
            .bearer_auth(&old)
            .send()
            .await
            .unwrap();
        assert_ne!(profile.status(), StatusCode::FORBIDDEN);
    }
}
