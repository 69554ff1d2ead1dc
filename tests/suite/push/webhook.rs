//! NanoMDM's webhook over real HTTP on loopback: signed device answers acknowledge or fail
//! the jobs that sent their commands, once and never backwards, with the API's body limit
//! and error shape.

use std::sync::Arc;

use base64::Engine;
use mdm_mail::config::{Overrides, Settings};
use mdm_mail::store::Store;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::mdm::{FakeMdm, sign};
use super::{jobs_in, world};
use crate::api::json_of;
use crate::support::{TestDb, store_test};

const KEY: &str = "hook-key";

/// `serve`'s router with the webhook on (key [`KEY`]), on a random loopback port.
struct Hook {
    url: String,
    client: reqwest::Client,
}

impl Hook {
    async fn start(db: &TestDb, store: &Store, overrides: Overrides) -> Hook {
        let mut settings = Settings::load(
            None,
            Overrides {
                database_url: Some(db.url.clone()),
                ..overrides
            },
        )
        .unwrap();
        settings.push.nanomdm_webhook_key = Some(mdm_mail::model::Secret::new(KEY));
        let state = mdm_mail::http::AppState {
            store: store.clone(),
            settings: Arc::new(settings),
            pusher: None,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks/nanomdm", listener.local_addr().unwrap());
        tokio::spawn(mdm_mail::http::serve(
            listener,
            state,
            std::future::pending(),
        ));
        Hook {
            url,
            client: reqwest::Client::new(),
        }
    }

    /// Posts `body` signed with `key` (unsigned when `None`).
    async fn post(&self, body: impl Into<Vec<u8>>, key: Option<&str>) -> reqwest::Response {
        let body = body.into();
        let mut request = self.client.post(&self.url);
        if let Some(key) = key {
            request = request.header("X-Hmac-Signature", sign(key, &body));
        }
        request.body(body).send().await.unwrap()
    }

    /// Posts `body` signed with the right key and returns the answer's JSON (200 expected).
    async fn receive(&self, body: &str) -> Value {
        json_of(self.post(body, Some(KEY)).await, StatusCode::OK).await
    }
}

/// An `mdm.Connect` event: the device's `status` for command `uuid`.
fn event(uuid: &str, status: &str, raw: Option<&str>) -> String {
    json!({
        "topic": "mdm.Connect",
        "event_id": "e1",
        "created_at": "2026-11-21T12:00:00Z",
        "acknowledge_event": {
            "udid": "x", "status": status, "command_uuid": uuid, "raw_payload": raw,
        }
    })
    .to_string()
}

/// An `Error` event for `uuid` whose error chain is one link saying `description`.
fn error_event(uuid: &str, description: &str) -> String {
    let mut link = plist::Dictionary::new();
    link.insert("ErrorDomain".into(), "MCInstallationErrorDomain".into());
    link.insert("ErrorCode".into(), plist::Value::Integer(4001.into()));
    link.insert("USEnglishDescription".into(), description.into());
    let mut payload = plist::Dictionary::new();
    payload.insert(
        "ErrorChain".into(),
        plist::Value::Array(vec![plist::Value::Dictionary(link)]),
    );
    let mut raw = Vec::new();
    plist::to_writer_xml(&mut raw, &plist::Value::Dictionary(payload)).unwrap();
    event(
        uuid,
        "Error",
        Some(&base64::engine::general_purpose::STANDARD.encode(raw)),
    )
}

/// The latest error of every device with one.
async fn errors(store: &Store) -> Vec<String> {
    let status = mdm_mail::push::status(store, None, 10).await.unwrap();
    status
        .devices
        .iter()
        .filter_map(|d| d.last_error.clone())
        .collect()
}

/// The fixture world with its profiles pushed to a fake NanoMDM: the store, the command
/// ids the MDM accepted, and the webhook.
async fn sent(db: &TestDb) -> (Store, Vec<String>, Hook) {
    let mdm = FakeMdm::start();
    let (store, pusher) = world(db, &mdm).await;
    pusher.after_change().await.unwrap();
    pusher.run().await.unwrap();
    let commands = mdm.accepted().into_iter().map(|c| c.command_uuid).collect();
    let hook = Hook::start(db, &store, Overrides::default()).await;
    (store, commands, hook)
}

store_test! {
    async fn nanomdm_webhook_events_acknowledge_or_fail_jobs(db: TestDb) {
        let (store, commands, hook) = sent(&db).await;

        let ack = event(&commands[0], "Acknowledged", None);
        let unsigned = json_of(hook.post(ack.clone(), None).await, StatusCode::UNAUTHORIZED).await;
        assert_eq!(unsigned["error"]["code"], "signature", "{unsigned}");
        let forged = hook.post(ack.clone(), Some("other")).await;
        assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(jobs_in(&db, "acknowledged").await, 0);

        assert_eq!(hook.receive(&ack).await, json!({ "matched": true, "changed": true }));
        assert_eq!(jobs_in(&db, "acknowledged").await, 1);

        let error = error_event(&commands[1], "Profile installation failed.");
        assert_eq!(hook.receive(&error).await, json!({ "matched": true, "changed": true }));
        let status = mdm_mail::push::status(&store, None, 10).await.unwrap();
        assert_eq!((status.jobs.acknowledged, status.jobs.failed), (1, 1));
        let errors = errors(&store).await;
        assert!(
            errors.iter().any(|e| e.contains("MCInstallationErrorDomain 4001: Profile installation failed.")),
            "{errors:?}"
        );
    }
}

store_test! {
    async fn a_replayed_or_contradicting_webhook_event_changes_nothing(db: TestDb) {
        let (store, commands, hook) = sent(&db).await;
        let unchanged = json!({ "matched": true, "changed": false });

        let ack = event(&commands[0], "Acknowledged", None);
        assert_eq!(hook.receive(&ack).await["changed"], true);
        assert_eq!(hook.receive(&ack).await, unchanged, "the same event again");
        // A signed Error for a command the device acknowledged does not fail its job.
        let late_error = error_event(&commands[0], "Too late.");
        assert_eq!(hook.receive(&late_error).await, unchanged);

        let error = error_event(&commands[1], "Profile installation failed.");
        assert_eq!(hook.receive(&error).await["changed"], true);
        assert_eq!(hook.receive(&error).await, unchanged, "the same event again");
        let late_ack = event(&commands[1], "Acknowledged", None);
        assert_eq!(hook.receive(&late_ack).await, unchanged);

        let status = mdm_mail::push::status(&store, None, 10).await.unwrap();
        assert_eq!((status.jobs.acknowledged, status.jobs.failed), (1, 1));
        let errors = errors(&store).await;
        assert!(errors.iter().all(|e| !e.contains("Too late.")), "{errors:?}");

        // A retry queues the failed job again under a new command: the old command's
        // answers no longer name it, and move nothing.
        assert_eq!(mdm_mail::push::retry_failed(&store).await.unwrap(), 1);
        let stale = json!({ "matched": false, "changed": false });
        assert_eq!(hook.receive(&late_ack).await, stale);
        assert_eq!(hook.receive(&error).await, stale);
        assert_eq!((jobs_in(&db, "queued").await, jobs_in(&db, "acknowledged").await), (1, 1));

        let unknown = event(&uuid::Uuid::new_v4().to_string(), "Acknowledged", None);
        assert_eq!(hook.receive(&unknown).await, stale);
    }
}

store_test! {
    async fn the_webhook_answers_like_the_api_to_a_large_or_malformed_body(db: TestDb) {
        let store = db.open().await;
        let hook = Hook::start(
            &db,
            &store,
            Overrides { upload_limit_mib: Some(1), ..Overrides::default() },
        )
        .await;
        let large = hook.post(vec![b' '; 2 * 1024 * 1024], Some(KEY)).await;
        let large = json_of(large, StatusCode::PAYLOAD_TOO_LARGE).await;
        assert_eq!(large["error"]["code"], "upload_too_large", "{large}");
        // Unsigned, it is refused as such, its body never read.
        let unsigned = json_of(
            hook.post(vec![b' '; 2 * 1024 * 1024], None).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_eq!(unsigned["error"]["code"], "signature", "{unsigned}");
        let malformed = json_of(hook.post("not json", Some(KEY)).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(malformed["error"]["code"], "invalid_event", "{malformed}");
        assert!(malformed["error"]["message"].as_str().unwrap().contains("not a NanoMDM webhook event"));
        store.close().await;
    }
}
