//! Sign-in under attack, over real HTTP on loopback against SQLite and PostgreSQL: failures
//! throttled per client address and per admin name, and a new password ending the admin's
//! sessions (through the real binary).

use mdm_mail::auth::Throttle;
use mdm_mail::config::Overrides;
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;

use crate::api::App;
use crate::support::{sign_in_directly, stderr, store_test};
use crate::wizard::{PASSWORD, client_builder_from, client_from, post_sign_in, session_set};

/// Few free failures and waits long enough that no test outruns them.
const THROTTLE: Throttle = Throttle {
    free_failures_per_address: 3,
    free_failures_per_name: 5,
    first_wait_seconds: 600,
    max_wait_per_address_seconds: 3600,
    max_wait_per_name_seconds: 600,
    trusted_proxies: Vec::new(),
};

/// The seconds of an answer's `Retry-After`, after checking it is a 429 saying so.
async fn throttled(response: reqwest::Response) -> u64 {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(session_set(&response).is_none());
    let seconds: u64 = response.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let page = response.text().await.unwrap();
    assert!(
        page.contains(&format!(
            "Too many failed attempts; try again in {seconds} seconds."
        )),
        "{page}"
    );
    seconds
}

/// A client on loopback address `from`, as a reverse proxy forwarding for `client`.
fn forwarding(from: [u8; 4], client: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", client.parse().unwrap());
    client_builder_from(from)
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn refused(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Wrong name or password.")
    );
}

store_test! {
    async fn failed_sign_ins_make_that_address_wait_while_the_right_password_works_from_another(db: TestDb) {
        let app = App::start_configured(&db, Overrides::default(), |s| s.sign_in = THROTTLE).await;
        mdm_mail::auth::add_admin(&db.open().await, "test", "ops", PASSWORD).await.unwrap();
        let attacker = client_from([127, 0, 0, 2]);
        for _ in 0..3 {
            refused(post_sign_in(&app, &attacker, "ops", "not the password").await).await;
        }
        // Past its free failures the address waits, and not even the right password is
        // checked from it.
        let wait = throttled(post_sign_in(&app, &attacker, "ops", PASSWORD).await).await;
        assert!((1..=600).contains(&wait), "{wait}");
        throttled(post_sign_in(&app, &attacker, "someone-else", "a guess").await).await;

        let admin = client_from([127, 0, 0, 3]);
        let signed_in = post_sign_in(&app, &admin, "ops", PASSWORD).await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        assert!(session_set(&signed_in).is_some());
        // The admin's own sign-in does not free the attacker's address.
        throttled(post_sign_in(&app, &attacker, "ops", PASSWORD).await).await;

        let failed = "SELECT COUNT(*) FROM audit_log WHERE action = 'admin.sign_in_failed' \
             AND subject = 'ops' AND actor = 'client:127.0.0.2'";
        assert_eq!(db.scalar_i64(failed).await, 3, "the refused attempts are not audited");
    }
}

store_test! {
    async fn a_burst_of_wrong_passwords_sent_at_once_gets_only_the_free_failures_heard(db: TestDb) {
        let app = App::start_configured(&db, Overrides::default(), |s| s.sign_in = THROTTLE).await;
        mdm_mail::auth::add_admin(&db.open().await, "test", "ops", PASSWORD).await.unwrap();
        let attacker = client_from([127, 0, 0, 2]);
        let burst = (0..10).map(|i| {
            let (app, attacker) = (&app, &attacker);
            async move { post_sign_in(app, attacker, "ops", &format!("guess {i}")).await.status() }
        });
        let mut statuses = futures_util::future::join_all(burst).await;
        statuses.sort();
        let heard = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
        let waited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
        assert_eq!((heard, waited), (3, 7), "{statuses:?}");
    }
}

store_test! {
    async fn failures_for_one_name_from_many_addresses_make_it_wait_until_a_right_sign_in_clears_them(db: TestDb) {
        let app = App::start_configured(&db, Overrides::default(), |s| s.sign_in = THROTTLE).await;
        mdm_mail::auth::add_admin(&db.open().await, "test", "ops", PASSWORD).await.unwrap();
        // Four failures, each address within its free ones; then the admin signs in, which
        // starts the name's count again.
        for last in [10, 10, 11, 11] {
            refused(post_sign_in(&app, &client_from([127, 0, 0, last]), "ops", "guess").await).await;
        }
        let admin = client_from([127, 0, 0, 3]);
        assert_eq!(post_sign_in(&app, &admin, "ops", PASSWORD).await.status(), StatusCode::SEE_OTHER);

        // Had the count not restarted, the second of these would already wait.
        for last in [12, 12, 13, 13, 14] {
            refused(post_sign_in(&app, &client_from([127, 0, 0, last]), "ops", "guess").await).await;
        }
        // Five failures for the name: it waits from everywhere, for at most the name's
        // longest wait, while other names are heard.
        let fresh = client_from([127, 0, 0, 15]);
        let wait = throttled(post_sign_in(&app, &fresh, "ops", PASSWORD).await).await;
        assert!((1..=600).contains(&wait), "{wait}");
        refused(post_sign_in(&app, &fresh, "nobody", "guess").await).await;
        let audited = "SELECT COUNT(*) FROM audit_log WHERE action = 'admin.sign_in_failed'";
        assert_eq!(db.scalar_i64(audited).await, 10);
    }
}

store_test! {
    async fn behind_a_trusted_proxy_failures_count_against_the_client_it_forwards_for(db: TestDb) {
        let proxy = std::net::IpAddr::from([127, 0, 0, 1]);
        let app = App::start_configured(&db, Overrides::default(), |s| {
            s.sign_in = Throttle { trusted_proxies: vec![proxy], ..THROTTLE };
        })
        .await;
        mdm_mail::auth::add_admin(&db.open().await, "test", "ops", PASSWORD).await.unwrap();
        let guesser = forwarding([127, 0, 0, 1], "198.51.100.1, 192.0.2.1");
        for _ in 0..3 {
            refused(post_sign_in(&app, &guesser, "ops", "guess").await).await;
        }
        throttled(post_sign_in(&app, &guesser, "ops", PASSWORD).await).await;
        // Another client through the same proxy is not made to wait.
        let admin = forwarding([127, 0, 0, 1], "192.0.2.2");
        assert_eq!(post_sign_in(&app, &admin, "ops", PASSWORD).await.status(), StatusCode::SEE_OTHER);
        let audited = "SELECT COUNT(*) FROM audit_log WHERE action = 'admin.sign_in_failed' \
             AND actor = 'client:192.0.2.1'";
        assert_eq!(db.scalar_i64(audited).await, 3);

        // From a peer that is not a trusted proxy the header is the client's own and ignored.
        for forged in ["192.0.2.10", "192.0.2.11", "192.0.2.12"] {
            let client = forwarding([127, 0, 0, 2], forged);
            refused(post_sign_in(&app, &client, "someone", "guess").await).await;
        }
        throttled(post_sign_in(&app, &forwarding([127, 0, 0, 2], "192.0.2.13"), "ops", PASSWORD).await).await;
    }
}

store_test! {
    async fn a_new_password_signs_out_every_session_of_that_admin_and_no_other(db: TestDb) {
        let store = db.open().await;
        mdm_mail::auth::add_admin(&store, "test", "ops", "the old password").await.unwrap();
        mdm_mail::auth::add_admin(&store, "test", "other", "another password").await.unwrap();
        let laptop = sign_in_directly(&store, "ops", "the old password").await.expect("signed in");
        let phone = sign_in_directly(&store, "ops", "the old password").await.expect("signed in");
        let others = sign_in_directly(&store, "other", "another password").await.expect("signed in");

        let changed = crate::support::mdm_mail_in(
            db.dir.path(),
            &[
                ("MDM_MAIL_DATABASE_URL", db.url.as_str()),
                ("MDM_MAIL_SECRET_KEY", crate::import::KEY),
                ("MDM_MAIL_ADMIN_PASSWORD", "the new password"),
            ],
            &["admin", "add", "ops"],
        );
        assert!(changed.status.success(), "{}", stderr(&changed));
        assert!(
            stderr(&changed).contains("password changed; 2 sessions signed out"),
            "{}",
            stderr(&changed)
        );
        for ended in [&laptop, &phone] {
            assert_eq!(mdm_mail::auth::session(&store, &ended.token).await.unwrap(), None);
        }
        assert!(mdm_mail::auth::session(&store, &others.token).await.unwrap().is_some());
        assert!(sign_in_directly(&store, "ops", "the old password").await.is_none());
        assert!(sign_in_directly(&store, "ops", "the new password").await.is_some());
        let audited = "SELECT COUNT(*) FROM audit_log WHERE action = 'admin.password' \
             AND subject = 'ops' AND details LIKE '%\"sessions_ended\":2%'";
        assert_eq!(db.scalar_i64(audited).await, 1);
        store.close().await;
    }
}
