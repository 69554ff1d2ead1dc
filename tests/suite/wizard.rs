//! The web wizard over real HTTP: sign-in, sessions, CSRF, pages and assets. The browser
//! run of the import steps is in `wizard_browser`.

use mdm_mail::config::Overrides;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};

use crate::api::App;
use crate::support::store_test;

/// The password of the admin the tests sign in as.
pub const PASSWORD: &str = "wizard test password";

/// A client that follows no redirects, so that they can be checked.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` of the `Set-Cookie` for `name`, and the whole header.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| (v.split(';').next().unwrap().to_owned(), v.to_owned()))
}

/// The 64 hex digits that follow `marker` in `html`.
fn after(html: &str, marker: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in the page"))
        + marker.len();
    html[at..at + 64].to_owned()
}

fn hidden_csrf(html: &str) -> String {
    after(html, "name=\"csrf_token\" value=\"")
}

/// Fills in and posts the sign-in form with `client`, as a browser does: fetches the form
/// (for its CSRF cookie and field), then posts `name` and `password`.
pub async fn post_sign_in(
    app: &App,
    client: &reqwest::Client,
    name: &str,
    password: &str,
) -> reqwest::Response {
    let form = client
        .get(format!("{}/sign-in", app.base))
        .send()
        .await
        .unwrap();
    let (login_cookie, _) = set_cookie(&form, "mdm_mail_login").unwrap();
    let csrf = hidden_csrf(&form.text().await.unwrap());
    client
        .post(format!("{}/sign-in", app.base))
        .header(COOKIE, &login_cookie)
        .form(&[
            ("name", name),
            ("password", password),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap()
}

/// A client that follows no redirects, connecting from `address` (any of 127.0.0.0/8 is
/// loopback), so that tests can sign in from several client addresses.
pub fn client_from(address: [u8; 4]) -> reqwest::Client {
    client_builder_from(address).build().unwrap()
}

/// What [`client_from`] builds, for a test to add to.
pub fn client_builder_from(address: [u8; 4]) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from(address))
}

/// The session cookie (`name=value`) an answer sets, if any.
pub fn session_set(response: &reqwest::Response) -> Option<String> {
    set_cookie(response, "mdm_mail_session").map(|(cookie, _)| cookie)
}

/// Adds the admin `ops` to `db`, which `app` serves, signs in and returns the session cookie.
pub async fn ops_session(db: &crate::support::TestDb, app: &App) -> String {
    mdm_mail::auth::add_admin(&db.open().await, "test", "ops", PASSWORD)
        .await
        .unwrap();
    sign_in(app).await.0
}

/// The text of the wizard page at `path`, fetched with the session cookie `session`.
pub async fn page_as(app: &App, session: &str, path: &str) -> String {
    app.anonymous(reqwest::Method::GET, path)
        .header(COOKIE, session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Signs in as `ops` and returns the session cookie (`name=value`) and the CSRF token.
pub async fn sign_in(app: &App) -> (String, String) {
    let client = client();
    let response = post_sign_in(app, &client, "ops", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (session, header) = set_cookie(&response, "mdm_mail_session").unwrap();
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Strict"),
        "{header}"
    );
    assert!(!header.contains("Secure"), "plain HTTP: {header}");
    let page = client
        .get(format!("{}/import", app.base))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (session, after(&page, "name=\"csrf-token\" content=\""))
}

store_test! {
    async fn signing_in_needs_the_right_password_and_the_forms_token(db: TestDb) {
        let app = App::start(&db).await;
        mdm_mail::auth::add_admin(&db.open().await, "test", "ops", PASSWORD).await.unwrap();
        let client = client();

        let anonymous = client.get(format!("{}/", app.base)).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
        assert_eq!(anonymous.headers()[LOCATION], "/sign-in");

        let form = client.get(format!("{}/sign-in", app.base)).send().await.unwrap();
        let (login_cookie, _) = set_cookie(&form, "mdm_mail_login").unwrap();
        let csrf = hidden_csrf(&form.text().await.unwrap());
        let wrong = client.post(format!("{}/sign-in", app.base)).header(COOKIE, &login_cookie)
            .form(&[("name", "ops"), ("password", "not the password"), ("csrf_token", &csrf)])
            .send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert!(set_cookie(&wrong, "mdm_mail_session").is_none());
        assert!(wrong.text().await.unwrap().contains("Wrong name or password."));
        let forged = client.post(format!("{}/sign-in", app.base))
            .form(&[("name", "ops"), ("password", PASSWORD), ("csrf_token", &csrf)])
            .send().await.unwrap();
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        assert!(set_cookie(&forged, "mdm_mail_session").is_none());

        let behind_tls = client.post(format!("{}/sign-in", app.base)).header(COOKIE, &login_cookie)
            .header("x-forwarded-proto", "https")
            .form(&[("name", "ops"), ("password", PASSWORD), ("csrf_token", &csrf)])
            .send().await.unwrap();
        let (_, header) = set_cookie(&behind_tls, "mdm_mail_session").unwrap();
        assert!(header.contains("; Secure"), "{header}");
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM sessions").await, 1);
    }
}

store_test! {
    async fn a_session_reaches_pages_and_the_api_with_its_csrf_token_until_sign_out(db: TestDb) {
        let app = App::start(&db).await;
        app.load_directory().await;
        mdm_mail::auth::add_admin(&db.open().await, "test", "ops", PASSWORD).await.unwrap();
        let (session, csrf) = sign_in(&app).await;
        let client = client();

        let users = client.get(format!("{}/?q=chlo", app.base)).header(COOKIE, &session)
            .send().await.unwrap().text().await.unwrap();
        assert!(users.contains("chloe@example.com") && users.contains("Chloé Chen"));
        assert!(!users.contains("alice@example.com"));
        assert!(users.contains("Import from CSV"));

        let list = client.get(format!("{}/api/users", app.base)).header(COOKIE, &session)
            .send().await.unwrap();
        assert_eq!(list.status(), StatusCode::OK);
        let without_csrf = client.post(format!("{}/api/users", app.base)).header(COOKIE, &session)
            .json(&serde_json::json!({ "email": "dan@example.com" })).send().await.unwrap();
        assert_eq!(without_csrf.status(), StatusCode::FORBIDDEN);
        let with_csrf = client.post(format!("{}/api/users", app.base)).header(COOKIE, &session)
            .header("x-csrf-token", &csrf)
            .json(&serde_json::json!({ "email": "dan@example.com" })).send().await.unwrap();
        assert_eq!(with_csrf.status(), StatusCode::CREATED);

        // A session may read and write, but is never given a password.
        let profile = format!("{}/api/users/dan@example.com/profile?platform=ios", app.base);
        let passwords = client.get(&profile).header(COOKIE, &session).send().await.unwrap();
        assert_eq!(passwords.status(), StatusCode::FORBIDDEN);
        let body: serde_json::Value = passwords.json().await.unwrap();
        assert_eq!(body["error"]["code"], "insufficient_scope", "{body}");
        let redacted = client.get(format!("{profile}&redact=true")).header(COOKIE, &session)
            .send().await.unwrap();
        assert_eq!(redacted.status(), StatusCode::UNPROCESSABLE_ENTITY, "dan has no accounts");

        let refused = client.post(format!("{}/sign-out", app.base)).header(COOKIE, &session)
            .form(&[("csrf_token", "0".repeat(64))]).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let out = client.post(format!("{}/sign-out", app.base)).header(COOKIE, &session)
            .form(&[("csrf_token", &csrf)]).send().await.unwrap();
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        let (cleared, _) = set_cookie(&out, "mdm_mail_session").unwrap();
        assert_eq!(cleared, "mdm_mail_session=");
        let after = client.get(format!("{}/api/users", app.base)).header(COOKIE, &session)
            .send().await.unwrap();
        assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM sessions").await, 0);
    }
}

store_test! {
    async fn pages_and_assets_come_from_mdm_mail_itself(db: TestDb) {
        let app = App::start_with(&db, Overrides::default()).await;
        app.load_directory().await;
        mdm_mail::auth::add_admin(&db.open().await, "test", "ops", PASSWORD).await.unwrap();
        let (session, _) = sign_in(&app).await;
        let client = client();
        let mut everything = String::new();
        for path in ["/", "/import", "/users/alice@example.com?platform=windows", "/assets/wizard.css", "/assets/wizard.js"] {
            let response = client.get(format!("{}{path}", app.base)).header(COOKIE, &session)
                .send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            everything.push_str(&response.text().await.unwrap());
        }
        for external in ["http://", "https://", "//cdn", "@import", "url("] {
            let allowed = "http://www.apple.com/DTDs"; // the plist DOCTYPE of a profile preview
            assert!(
                everything.replace(allowed, "").find(external).is_none(),
                "{external} in a page or asset"
            );
        }
        // The profile preview is rendered with passwords redacted.
        let committed = app.call(Method::POST, "/api/imports?type=email")
            .body(std::fs::read(crate::support::fixture("import/email.csv")).unwrap())
            .send().await.unwrap();
        assert_eq!(committed.status(), StatusCode::CREATED);
        let page = client.get(format!("{}/users/alice@example.com?platform=ios", app.base))
            .header(COOKIE, &session).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("com.apple.mail.managed") && page.contains("********"), "{page}");
        assert!(!page.contains("imap-secret-1") && !page.contains("smtp-secret-1"));

        let template = client.get(format!("{}/templates/exchange.csv", app.base)).send().await.unwrap();
        assert_eq!(template.status(), StatusCode::OK);
        assert_eq!(
            template.text().await.unwrap(),
            "user_email,exchange_email,exchange_username,exchange_domain,exchange_password\r\n"
        );
        let missing = app.anonymous(Method::GET, "/templates/other.csv").send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}

store_test! {
    async fn serve_demo_creates_an_admin_once_and_prints_the_password(db: TestDb) {
        use std::io::{BufRead, BufReader};
        let start = || {
            let mut child = std::process::Command::new(crate::support::binary())
                .current_dir(db.dir.path())
                .env("MDM_MAIL_DATABASE_URL", &db.url)
                .env("MDM_MAIL_SECRET_KEY", crate::import::KEY)
                .args(["serve", "--listen", "127.0.0.1:0", "--demo"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
                .lines()
                .map_while(Result::ok)
                .take_while(|l| !l.starts_with("mdm-mail listening on"))
                .collect();
            (child, lines)
        };
        let (mut first, lines) = start();
        let password = lines
            .iter()
            .find_map(|l| l.strip_prefix("demo: sign in as \"demo\" with password "))
            .unwrap_or_else(|| panic!("no password in {lines:?}"))
            .to_owned();
        first.kill().unwrap();
        first.wait().unwrap();
        let store = db.open().await;
        assert!(crate::support::sign_in_directly(&store, "demo", &password).await.is_some());
        store.close().await;

        let (mut second, lines) = start();
        second.kill().unwrap();
        second.wait().unwrap();
        assert!(!lines.iter().any(|l| l.contains("password")), "{lines:?}");
    }
}

store_test! {
    async fn the_user_page_removes_an_account_with_the_session_s_csrf_token(db: TestDb) {
        let app = App::start(&db).await;
        app.load_directory().await;
        let import = app.call(Method::POST, "/api/imports?type=email")
            .body(std::fs::read(crate::support::fixture("import/email.csv")).unwrap())
            .send().await.unwrap();
        assert_eq!(import.status(), StatusCode::CREATED);
        mdm_mail::auth::add_admin(&db.open().await, "test", "ops", PASSWORD).await.unwrap();
        let (session, csrf) = sign_in(&app).await;
        let client = client();
        let page = client.get(format!("{}/users/alice@example.com", app.base)).header(COOKIE, &session)
            .send().await.unwrap().text().await.unwrap();
        assert!(page.contains(r#"action="/users/alice@example.com/accounts/remove""#), "{page}");
        assert!(page.contains("data-confirm=\"Remove the Email account alice@mail.example.com"), "{page}");

        let remove = format!("{}/users/alice@example.com/accounts/remove", app.base);
        let fields = |token: String| {
            vec![("csrf_token", token), ("type", "email".into()), ("address", "alice@mail.example.com".into())]
        };
        let refused = client.post(&remove).header(COOKIE, &session).form(&fields("0".repeat(64)))
            .send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 2);

        let done = client.post(&remove).header(COOKIE, &session).form(&fields(csrf.clone()))
            .send().await.unwrap();
        assert_eq!(done.status(), StatusCode::SEE_OTHER);
        let location = done.headers()[LOCATION].to_str().unwrap().to_owned();
        assert_eq!(location, "/users/alice@example.com?removed=alice@mail.example.com");
        let shown = client.get(format!("{}{location}", app.base)).header(COOKIE, &session)
            .send().await.unwrap().text().await.unwrap();
        assert!(shown.contains("Removed the account alice@mail.example.com."), "{shown}");
        assert!(!shown.contains("data-confirm"), "no account left to remove: {shown}");
        assert_eq!(
            db.scalar_i64("SELECT COUNT(*) FROM audit_log WHERE action = 'account.remove' AND actor = 'admin:ops'").await,
            1
        );

        let gone = client.post(&remove).header(COOKIE, &session).form(&fields(csrf))
            .send().await.unwrap();
        assert_eq!(gone.status(), StatusCode::NOT_FOUND);
        assert!(gone.text().await.unwrap().contains("nothing was removed"));
    }
}

/// The key the test NanoMDM signs its webhook events with.
const HOOK_KEY: &str = "wizard hook key";

/// Settings pushing Apple profiles to `mdm` (a fake NanoMDM) and taking its signed device
/// answers.
fn pushing_to(mdm: &crate::push::mdm::FakeMdm) -> impl Fn(&mut mdm_mail::config::Settings) {
    let url = mdm.url.clone();
    move |settings| {
        settings.push.nanomdm = Some(mdm_mail::push::settings::Endpoint {
            url: url.clone(),
            api_key: mdm_mail::model::Secret::new(crate::push::mdm::API_KEY),
        });
        settings.push.nanomdm_webhook_key = Some(mdm_mail::model::Secret::new(HOOK_KEY));
    }
}

/// The cells of the row of the devices table that names `device`, joined by ` | `.
fn device_row(page: &str, device: &str) -> String {
    let table = &page[page.find(r#"id="devices""#).expect("the devices table")..];
    let row = table
        .split("<tr>")
        .find(|row| row.contains(&format!(">{device}<")))
        .unwrap_or_else(|| panic!("no row for {device} in {table}"));
    let cells: Vec<&str> = regex::Regex::new("<td[^>]*>([^<]*)</td>")
        .unwrap()
        .captures_iter(row)
        .map(|cell| cell.get(1).map_or("", |c| c.as_str()))
        .collect();
    cells.join(" | ")
}

store_test! {
    async fn the_user_page_shows_what_each_device_holds_what_is_queued_and_the_last_error(db: TestDb) {
        let mdm = crate::push::mdm::FakeMdm::start();
        let app = App::start_configured(&db, Overrides::default(), pushing_to(&mdm)).await;
        app.load_directory().await;
        for (device, platform) in [("IPHONE-A", "ios"), ("IPAD-A", "ipados"), ("PIXEL-A", "android")] {
            let added = app.call(Method::POST, "/api/devices")
                .json(&serde_json::json!({ "user_email": "alice@example.com", "device_id": device,
                    "platform": platform, "enrollment_id": device }))
                .send().await.unwrap();
            assert_eq!(added.status(), StatusCode::CREATED);
        }
        // NanoMDM has no push data for the iPad: its command fails at once.
        mdm.unenroll("IPAD-A");
        let session = crate::wizard::ops_session(&db, &app).await;
        let page = || crate::wizard::page_as(&app, &session, "/users/alice@example.com");
        let before = page().await;
        assert!(
            device_row(&before, "IPHONE-A").ends_with("No profile: the user has no mail accounts | Nothing queued | "),
            "{before}"
        );

        // Her account queues a profile for each Apple device; Android takes no IMAP account.
        let import = app.call(Method::POST, "/api/imports?type=email")
            .body("alice@example.com,Alice Adams,alice@mail.example.com,alice,imap-secret-1,alice,smtp-secret-1\n")
            .send().await.unwrap();
        assert_eq!(import.status(), StatusCode::CREATED);
        let queued = page().await;
        let iphone = device_row(&queued, "IPHONE-A");
        assert!(iphone.ends_with("None yet | Profile install queued | "), "{iphone}");
        let pixel = device_row(&queued, "PIXEL-A");
        assert!(
            pixel.contains("No android profile for alice@example.com: alice@mail.example.com (email): IMAP/POP accounts are not supported on Android"),
            "{pixel}"
        );
        assert!(pixel.contains("Nothing queued"), "{pixel}");

        // The worker sends both: the iPhone's waits for its answer, the iPad's failed.
        let mut settings = mdm_mail::config::Settings::load(None, Overrides {
            database_url: Some(db.url.clone()),
            profiles_dir: Some(crate::support::fixture("profiles")),
            secret_key: Some(crate::import::KEY.to_owned()),
            ..Overrides::default()
        }).unwrap();
        pushing_to(&mdm)(&mut settings);
        let store = db.open().await;
        mdm_mail::push::Pusher::from_settings(&store, &settings).unwrap().run().await.unwrap();
        let sent = page().await;
        let iphone = device_row(&sent, "IPHONE-A");
        assert!(iphone.contains("The current profile, sent "), "{iphone}");
        assert!(iphone.contains("not acknowledged yet") && iphone.contains("waiting for the device"), "{iphone}");
        let ipad = device_row(&sent, "IPAD-A");
        assert!(ipad.contains("Profile install failed after 1 attempt"), "{ipad}");
        assert!(ipad.contains("push data missing for id"), "{ipad}");

        // The iPhone answers: it holds the profile.
        let command = mdm.accepted().into_iter().find(|c| c.enrollment_id == "IPHONE-A").unwrap();
        let answer = crate::push::mdm::device_answer(&command, "Acknowledged", None);
        let hook = app.anonymous(Method::POST, "/webhooks/nanomdm")
            .header("X-Hmac-Signature", crate::push::mdm::sign(HOOK_KEY, &answer))
            .body(answer).send().await.unwrap();
        assert_eq!(hook.status(), StatusCode::OK);
        let acknowledged = page().await;
        let iphone = device_row(&acknowledged, "IPHONE-A");
        assert!(iphone.contains("The current profile, installed (acknowledged "), "{iphone}");
        assert!(iphone.contains("Nothing queued"), "{iphone}");
    }
}
