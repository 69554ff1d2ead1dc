//! The web wizard's heavy requests over real HTTP on loopback, against a SQLite store of
//! `MDM_MAIL_BENCH_USERS` users (default 100,000): previewing a file of as many Email lines
//! with every line's outcome (what step 3 and every delimiter change of the wizard wait
//! for), a page of the Users view deep into the list, and a search. Run with
//! `cargo bench --bench wizard_api`; the `item/s` column of the preview is lines per second.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use divan::Bencher;
use divan::counter::ItemsCount;
use mdm_mail::config::{Overrides, Settings};
use mdm_mail::http::AppState;

fn main() {
    divan::main();
}

/// A served store with users, an API token and an accounts file to preview.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
    token: String,
    file: Vec<u8>,
    lines: usize,
    _dir: tempfile::TempDir,
}

fn users() -> usize {
    std::env::var("MDM_MAIL_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let n = users();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let mut people = String::from("email,display_name\n");
        let mut file = String::new();
        for i in 0..n {
            let _ = writeln!(people, "user{i}@acme.example,User {i}");
            // Every tenth line names nobody the store knows; every hundredth is invalid.
            let user = if i % 10 == 9 {
                format!("gone{i}@acme.example")
            } else {
                format!("user{i}@acme.example")
            };
            let address = if i % 100 == 42 {
                format!("mail{i}.acme.example")
            } else {
                format!("mail{i}@acme.example")
            };
            let _ = writeln!(file, "{user};User {i};{address};u{i};secret-{i};u{i};");
        }
        let (base, token) = runtime.block_on(async {
            let settings = Settings::load(
                None,
                Overrides {
                    database_url: Some(url.clone()),
                    secret_key: Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into()),
                    ..Overrides::default()
                },
            )
            .unwrap();
            let store = mdm_mail::store::Store::open(&url).await.unwrap();
            mdm_mail::import::directory::load_users(
                &store,
                std::io::Cursor::new(people.into_bytes()),
                "bench",
                "bench",
            )
            .await
            .unwrap();
            let token = mdm_mail::auth::create_token(
                &store,
                "bench",
                "bench",
                mdm_mail::model::Scopes::ALL,
            )
            .await
            .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let state = AppState {
                store,
                settings: Arc::new(settings),
                pusher: None,
            };
            tokio::spawn(mdm_mail::http::serve(
                listener,
                state,
                std::future::pending(),
            ));
            (base, token)
        });
        Fixture {
            runtime,
            client: reqwest::Client::new(),
            base,
            token,
            file: file.into_bytes(),
            lines: n,
            _dir: dir,
        }
    })
}

fn get(f: &Fixture, path: &str) -> usize {
    f.runtime.block_on(async {
        let response = f
            .client
            .get(format!("{}{path}", f.base))
            .bearer_auth(&f.token)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        response.bytes().await.unwrap().len()
    })
}

/// The wizard's preview of the whole file with its first page of outcomes.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn preview_every_line(bencher: Bencher) {
    let f = fixture();
    bencher.counter(ItemsCount::new(f.lines)).bench(|| {
        f.runtime.block_on(async {
            let response = f
                .client
                .post(format!(
                    "{}/api/imports/preview?type=email&results_limit=50",
                    f.base
                ))
                .bearer_auth(&f.token)
                .body(f.file.clone())
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            response.bytes().await.unwrap().len()
        })
    });
}

/// A page of fifty users from the middle of the list.
#[divan::bench(sample_count = 50)]
fn users_page_deep(bencher: Bencher) {
    let f = fixture();
    let after = format!("user{}@acme.example", f.lines / 2);
    bencher.bench(|| get(f, &format!("/api/users?limit=50&after={after}")));
}

/// A search by part of a name over every user.
#[divan::bench(sample_count = 20)]
fn users_search(bencher: Bencher) {
    let f = fixture();
    bencher.bench(|| get(f, "/api/users?limit=50&q=user%20777"));
}
