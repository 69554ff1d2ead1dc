//! Push throughput and the cost of a reconcile that finds nothing to do.
//!
//! `cargo bench --bench push` builds a SQLite store of 100,000 users, each with one Email
//! account and one iPhone, starts a loopback server that answers NanoMDM's
//! `PUT /v1/enqueue/{id}` as NanoMDM does (Basic auth checked, the command plist decoded, an
//! `APIResult` returned), then times, through the library:
//!
//! - the first reconcile (every device needs an install),
//! - draining the queue to the server: pushes per second (target ≥ 3,000/s),
//! - a reconcile that finds nothing changed, right after the drain and again (target < 2 s).
//!
//! `cargo bench --bench push -- --devices 10000` runs a smaller set. Set
//! `MDM_MAIL_BENCH_POSTGRES_URL` to run the same against PostgreSQL as well (it creates and
//! drops a schema of its own).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use mdm_mail::import::{self, ImportOptions, Mode};
use mdm_mail::model::{AccountKind, Secret};
use mdm_mail::profile::{Definitions, Profiles};
use mdm_mail::push::settings::Endpoint;
use mdm_mail::push::{PushSettings, Pusher};
use mdm_mail::secrets::KeySource;
use mdm_mail::store::Store;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const API_KEY: &str = "bench-key";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let devices: usize = args
        .iter()
        .position(|a| a == "--devices")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(start_server());
    let sqlite = tempfile::tempdir().expect("scratch folder");
    let url = format!("sqlite://{}", sqlite.path().join("bench.db").display());
    runtime.block_on(bench_store("SQLite", &url, &server, devices));
    if let Ok(base) = std::env::var("MDM_MAIL_BENCH_POSTGRES_URL") {
        runtime.block_on(async {
            let schema = "push_bench";
            let admin = Store::open(&base).await.expect("open PostgreSQL");
            drop(admin);
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
                .await
                .expect("connect");
            sqlx::raw_sql(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .execute(&mut conn)
            .await
            .expect("schema");
            let separator = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
            bench_store("PostgreSQL", &url, &server, devices).await;
            sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&mut conn)
                .await
                .expect("drop schema");
        });
    }
}

struct Server {
    url: String,
    received: Arc<AtomicU64>,
}

async fn start_server() -> Server {
    let received = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let app = Router::new()
        .route("/v1/enqueue/{id}", put(enqueue))
        .with_state(Arc::clone(&received));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server { url, received }
}

/// NanoMDM's enqueue: checks the key, decodes the command, answers an `APIResult`.
async fn enqueue(
    State(received): State<Arc<AtomicU64>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("nanomdm:{API_KEY}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Some(command) = plist::Value::from_reader_xml(std::io::Cursor::new(&body[..]))
        .ok()
        .and_then(plist::Value::into_dictionary)
    else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({"command_error": "decoding command: invalid command"})),
        )
            .into_response();
    };
    received.fetch_add(1, Ordering::Relaxed);
    let uuid = command
        .get("CommandUUID")
        .and_then(|v| v.as_string())
        .unwrap_or_default()
        .to_owned();
    Json(serde_json::json!({
        "status": { id: { "push_result": "00000000-0000-0000-0000-000000000000" } },
        "command_uuid": uuid,
        "request_type": "InstallProfile",
    }))
    .into_response()
}

async fn bench_store(name: &str, url: &str, server: &Server, n: usize) {
    let store = Store::open(url).await.expect("open store");
    let started = Instant::now();
    load(&store, n).await;
    println!(
        "{name}: loaded {n} users, devices and accounts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let definitions = Definitions::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profiles"),
    )
    .expect("definitions");
    let profiles = Profiles {
        definitions,
        signer: None,
        secrets: KeySource::Env(KEY.to_owned()),
    };
    let settings = PushSettings {
        nanomdm: Some(Endpoint {
            url: server.url.clone(),
            api_key: Secret::new(API_KEY),
        }),
        ..PushSettings::default()
    };
    let pusher = Pusher::new(store.clone(), Arc::new(profiles), settings);

    let started = Instant::now();
    let first = pusher.after_change().await.expect("reconcile");
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{name}: first reconcile of {n} devices: {} installs queued in {elapsed:.2} s ({:.0} devices/s)",
        first.installs,
        n as f64 / elapsed
    );

    let before = server.received.load(Ordering::Relaxed);
    let started = Instant::now();
    let drained = pusher.run().await.expect("push run");
    let elapsed = started.elapsed().as_secs_f64();
    let received = server.received.load(Ordering::Relaxed) - before;
    println!(
        "{name}: pushed {} InstallProfile commands ({received} received, {} failed) in {elapsed:.2} s: {:.0} pushes/s (concurrency {})",
        drained.sent,
        drained.failed,
        drained.sent as f64 / elapsed,
        mdm_mail::push::settings::DEFAULT_CONCURRENCY
    );

    // Twice: the first runs right after the queue was drained (SQLite's WAL still holds
    // those writes), the second is the steady state.
    for round in ["after the drain", "again"] {
        let started = Instant::now();
        let again = pusher.after_change().await.expect("reconcile");
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "{name}: no-op reconcile of {} devices ({} unchanged, {} jobs), {round}: {elapsed:.3} s",
            again.devices,
            again.unchanged,
            again.installs + again.removals
        );
    }
    store.close().await;
}

/// `n` users, each with an Email account and an iPhone, through the real loaders.
async fn load(store: &Store, n: usize) {
    let mut users = String::from("email,display_name\n");
    let mut devices = String::from("user_email,device_id,platform,enrollment_id\n");
    let mut accounts = String::new();
    for i in 0..n {
        users.push_str(&format!("user{i}@acme.example,User {i}\n"));
        devices.push_str(&format!(
            "user{i}@acme.example,DEV-{i:06},ios,{:08X}-0000-4000-8000-{i:012}\n",
            i
        ));
        accounts.push_str(&format!(
            "user{i}@acme.example,User {i},user{i}@mail.example.com,user{i},pw-{i}-x,user{i},pw-{i}-y\n"
        ));
    }
    import::directory::load_users(
        store,
        std::io::Cursor::new(users.into_bytes()),
        "bench",
        "users.csv",
    )
    .await
    .expect("users");
    import::directory::load_devices(
        store,
        std::io::Cursor::new(devices.into_bytes()),
        "bench",
        "devices.csv",
    )
    .await
    .expect("devices");
    import::run(
        store,
        &KeySource::Env(KEY.to_owned()),
        std::io::Cursor::new(accounts.into_bytes()),
        &ImportOptions::new(AccountKind::Email),
        Mode::Commit {
            actor: "bench",
            source: "accounts.csv",
            expected: None,
        },
        None,
    )
    .await
    .expect("accounts");
}
