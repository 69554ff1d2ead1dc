//! The import wizard in a real browser: headless Chromium driven through chromedriver over
//! WebDriver (plain HTTP with reqwest). Runs when `MDM_MAIL_TEST_BROWSER=1` (CI sets it and
//! installs Debian's `chromium` and `chromium-driver`), and then fails if either is missing;
//! otherwise it is skipped with a notice. A screenshot of every step is saved under
//! `target/wizard-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::App;
use crate::support::{TestDb, fixture};

const BROWSER_ENV: &str = "MDM_MAIL_TEST_BROWSER";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key WebDriver names elements by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a step may take to show its result.
const PATIENCE: Duration = Duration::from_secs(20);

/// A chromedriver process and one browser session in it.
struct Browser {
    driver: Child,
    http: reqwest::Client,
    url: String,
    shots: PathBuf,
    taken: usize,
}

impl Browser {
    /// A browser signed in to `app` as `ops`, on the users page, its screenshots saved
    /// under `target/<shots>`.
    async fn signed_in(app: &App, shots: &str) -> Browser {
        let shots = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(shots);
        let _ = std::fs::remove_dir_all(&shots);
        let mut browser = Browser::start(shots).await;
        browser.goto(&format!("{}/", app.base)).await;
        browser.type_into("#name", "ops").await;
        browser
            .type_into("#password", crate::wizard::PASSWORD)
            .await;
        browser.screenshot("sign-in").await;
        browser.click("#sign-in").await;
        browser.find("#users").await;
        browser
    }

    /// Walks the import wizard with an Email `file` up to its review (step 5).
    async fn review_email_file(&self, app: &App, file: &Path) {
        self.goto(&format!("{}/import", app.base)).await;
        self.click("#next-1").await;
        self.click("#type-email").await;
        self.click("#next-2").await;
        self.type_into("#file", file.to_str().unwrap()).await;
        self.wait_for("!document.getElementById('next-3').disabled")
            .await;
        self.click("#next-3").await;
        self.click("#next-4").await;
        self.click("#next-5").await;
    }

    async fn start(shots: PathBuf) -> Browser {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(program).exists(),
                "{BROWSER_ENV} is set but {program} is missing: apt-get install chromium chromium-driver"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(response) = ready
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                break;
            }
            assert!(started.elapsed() < PATIENCE, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let session = http
            .post(format!("{base}/session"))
            .json(&json!({ "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,1100"],
                },
            } } }))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let id = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {session}"))
            .to_owned();
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            driver,
            http,
            url: format!("{base}/session/{id}"),
            shots,
            taken: 0,
        }
    }

    async fn command(&self, method: Method, path: &str, body: Value) -> Value {
        let request = self.http.request(method, format!("{}{path}", self.url));
        let request = if body.is_null() {
            request
        } else {
            request.json(&body)
        };
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if let Some(error) = answer["value"]["error"].as_str() {
            panic!("WebDriver {path}: {error}: {}", answer["value"]["message"]);
        }
        answer["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.command(Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    /// The element `css` selects, waiting for it to appear.
    async fn find(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let answer: Value = self
                .http
                .post(format!("{}/element", self.url))
                .json(&json!({ "using": "css selector", "value": css }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(id) = answer["value"][ELEMENT].as_str() {
                return id.to_owned();
            }
            if started.elapsed() > PATIENCE {
                let page = self
                    .eval(
                        "return location.href + '\\n' + document.documentElement.outerHTML;",
                        json!([]),
                    )
                    .await;
                panic!(
                    "no element {css} ({answer}) in {}",
                    page.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.command(Method::POST, &format!("/element/{id}/click"), json!({}))
            .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.command(
            Method::POST,
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// Runs `script` in the page and returns its value.
    async fn eval(&self, script: &str, args: Value) -> Value {
        self.command(
            Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
        .await
    }

    async fn text(&self, css: &str) -> String {
        let script =
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;";
        self.eval(script, json!([css]))
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Waits until the page's `condition` (a JavaScript expression) holds.
    async fn wait_for(&self, condition: &str) {
        let started = Instant::now();
        let script = format!("return Boolean({condition});");
        while self.eval(&script, json!([])).await != true {
            assert!(
                started.elapsed() < PATIENCE,
                "timed out waiting for {condition}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&mut self, name: &str) {
        let png = self.command(Method::GET, "/screenshot", Value::Null).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        self.taken += 1;
        std::fs::write(
            self.shots.join(format!("{:02}-{name}.png", self.taken)),
            bytes,
        )
        .unwrap();
    }

    async fn count(&self, list: &str, outcome: &str) -> String {
        self.text(&format!("#{list} dd[data-count={outcome}]"))
            .await
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The server with the fixture users and the admin `ops`; `None` (the test is skipped) unless
/// the browser tests are asked for.
async fn app_with_an_admin() -> Option<(TestDb, App)> {
    if std::env::var(BROWSER_ENV).as_deref() != Ok("1") {
        eprintln!("{BROWSER_ENV} is not 1: the browser test of the wizard is skipped");
        return None;
    }
    let db = TestDb::sqlite().await;
    let app = App::start(&db).await;
    app.load_directory().await;
    mdm_mail::auth::add_admin(&db.open().await, "test", "ops", crate::wizard::PASSWORD)
        .await
        .unwrap();
    Some((db, app))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_runs_the_whole_import_wizard_in_chromium() {
    let Some((db, app)) = app_with_an_admin().await else {
        return;
    };
    let device = app
        .call(Method::POST, "/api/devices")
        .json(
            &json!({ "user_email": "alice@example.com", "device_id": "ALICE-IPHONE",
                       "platform": "ios", "enrollment_id": "ALICE-IPHONE" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(device.status(), reqwest::StatusCode::CREATED);
    let mut browser = Browser::signed_in(&app, "wizard-screenshots").await;
    assert!(browser.text("#users").await.contains("chloe@example.com"));
    browser.click("#import-menu").await;
    browser.screenshot("users-import-menu").await;
    browser.click("#import-csv").await;

    browser.find("#step-1").await;
    browser.screenshot("step-1-import-type").await;
    browser.click("#next-1").await;
    browser.click("#type-email").await;
    assert!(
        browser
            .text("#step-2 .columns[data-type=email]")
            .await
            .contains("incoming_password")
    );
    browser.screenshot("step-2-account-type").await;
    browser.click("#next-2").await;

    let file = fixture("wizard/accounts-semicolon-bom.csv");
    browser.type_into("#file", file.to_str().unwrap()).await;
    browser
        .wait_for("!document.getElementById('next-3').disabled")
        .await;
    assert!(
        browser
            .text("#raw")
            .await
            .contains("alice@example.com;Alice Adams")
    );
    assert!(
        browser
            .text("#file-name")
            .await
            .starts_with("accounts-semicolon-bom.csv")
    );
    browser.screenshot("step-3-file").await;
    browser.click("#next-3").await;

    // Detected: semicolon, UTF-8 with its BOM, a header row; seven columns.
    assert_eq!(
        browser
            .eval(
                "return document.getElementById('delimiter').value;",
                json!([])
            )
            .await,
        "semicolon"
    );
    assert_eq!(
        browser.text("#encoding").await,
        "utf-8 (with byte-order mark)"
    );
    assert_eq!(browser.text("#header").await, "yes");
    let columns = "document.querySelectorAll('#columns-table thead th').length";
    browser.wait_for(&format!("{columns} === 8")).await;
    assert!(browser.text("#columns-table").await.contains("Chloé Chen"));
    browser.screenshot("step-4-delimiter-detected").await;
    // Another delimiter re-columns the preview at once: on commas every line is one cell,
    // and every line (the header is no longer one) is rejected.
    let first_row = "document.querySelectorAll('#columns-table tbody tr:first-child td').length";
    browser.wait_for(&format!("{first_row} === 8")).await;
    browser.click("#delimiter option[value=comma]").await;
    browser.wait_for(&format!("{first_row} === 2")).await;
    browser
        .wait_for(
            "document.querySelector('#review-counts dd[data-count=rejected]').textContent === '5'",
        )
        .await;
    assert!(
        !browser.text("#wizard").await.contains("imap-secret-1"),
        "a password reached the page"
    );
    let warning = browser.text("#delimiter-warning").await;
    assert!(
        warning.starts_with("Most lines do not split into the columns this account type has (expected 7 columns, found"),
        "{warning}"
    );
    browser.screenshot("step-4-delimiter-comma").await;
    browser.click("#delimiter option[value=semicolon]").await;
    browser.wait_for(&format!("{first_row} === 8")).await;
    browser
        .wait_for("document.getElementById('delimiter-warning').hidden")
        .await;
    browser.click("#next-4").await;
    browser.click("#next-5").await;

    browser
        .wait_for(
            "document.querySelector('#review-counts dd[data-count=rejected]').textContent === '1'",
        )
        .await;
    assert_eq!(browser.count("review-counts", "added").await, "2");
    assert_eq!(browser.count("review-counts", "discarded").await, "1");
    assert_eq!(browser.count("review-counts", "rejected").await, "1");
    let rejected = browser.text("#review tr.outcome-rejected").await;
    assert!(
        rejected.contains("email_address") && rejected.contains("bob.example.com"),
        "{rejected}"
    );
    assert!(
        browser
            .text("#review tr.outcome-discarded")
            .await
            .contains("nobody@example.com")
    );
    assert!(
        !browser.text("#wizard").await.contains("imap-secret-1"),
        "a password reached the page"
    );
    browser.screenshot("step-5-review").await;
    browser.click("#next-6").await;

    let disabled = "document.getElementById('import-button').disabled";
    assert_eq!(
        browser
            .eval(&format!("return {disabled};"), json!([]))
            .await,
        true
    );
    browser.click("#skip-rejected").await;
    assert_eq!(
        browser
            .eval(&format!("return {disabled};"), json!([]))
            .await,
        false
    );
    browser.screenshot("step-6-import").await;
    browser.click("#import-button").await;

    browser
        .wait_for(
            "document.getElementById('notification').textContent.startsWith('Import complete')",
        )
        .await;
    assert_eq!(browser.count("result-counts", "added").await, "2");
    assert_eq!(browser.count("result-counts", "rejected").await, "1");
    browser.screenshot("step-7-result").await;
    assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await,
        2
    );

    // The results file, fetched by the page with the admin's session as the link would be.
    let script = "const done = arguments[arguments.length - 1];
        fetch(document.getElementById('results-csv').href).then(r => r.text()).then(done);";
    let csv = browser
        .command(
            Method::POST,
            "/execute/async",
            json!({ "script": script, "args": [] }),
        )
        .await;
    let csv = csv.as_str().unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "line,user_email,account_address,outcome,message");
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(
        lines[4].starts_with("5,bob@example.com,bob.example.com,rejected,\"email_address:"),
        "{csv}"
    );

    // The push card: Alice's iPhone gets her new profile queued.
    browser
        .wait_for(
            "document.getElementById('push-note').textContent.startsWith('1 profile installs')",
        )
        .await;
    browser
        .wait_for("(document.querySelector('#push-counts dd[data-count=queued]') || {}).textContent === '1'")
        .await;
    browser.screenshot("step-7-push-card").await;

    // Back on the Users view, the Export button downloads the accounts in the import format.
    browser.goto(&format!("{}/", app.base)).await;
    browser.find("#export-email").await;
    browser.screenshot("users-export-buttons").await;
    let script = "const done = arguments[arguments.length - 1];
        fetch(document.getElementById('export-email').href).then(r => r.text()).then(done);";
    let export = browser
        .command(
            Method::POST,
            "/execute/async",
            json!({ "script": script, "args": [] }),
        )
        .await;
    let export = export.as_str().unwrap();
    assert!(
        export.starts_with("user_email,display_name,email_address,"),
        "{export}"
    );
    assert_eq!(export.lines().count(), 3, "{export}");
    assert!(
        export.contains("alice@mail.example.com") && !export.contains("secret"),
        "{export}"
    );

    // The push jobs page shows the queue per device.
    browser.goto(&format!("{}/push", app.base)).await;
    assert_eq!(browser.count("push-counts", "queued").await, "1");
    assert!(browser.text("#push-devices").await.contains("ALICE-IPHONE"));
    browser.screenshot("push-jobs").await;

    // Alice's page removes her account, after asking; her iPhone gets the removal queued.
    browser
        .goto(&format!("{}/users/alice@example.com", app.base))
        .await;
    browser.screenshot("user-accounts").await;
    browser.click("#accounts button[type=submit]").await;
    let question = browser
        .command(Method::GET, "/alert/text", Value::Null)
        .await;
    assert!(
        question
            .as_str()
            .unwrap()
            .starts_with("Remove the Email account alice@mail.example.com"),
        "{question}"
    );
    browser
        .command(Method::POST, "/alert/accept", json!({}))
        .await;
    browser.find("#removed").await;
    assert!(
        browser
            .text("#removed")
            .await
            .contains("alice@mail.example.com")
    );
    assert!(browser.text("#accounts").await.contains("No mail accounts"));
    browser.screenshot("user-account-removed").await;

    browser.command(Method::DELETE, "", Value::Null).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_fetches_one_page_of_outcomes_at_a_time() {
    let Some((db, app)) = app_with_an_admin().await else {
        return;
    };
    // 120 lines, each naming nobody: three pages of 50, every line discarded.
    let file = db.dir.path().join("long.csv");
    std::fs::write(&file, crate::hardening::nobody_lines(120)).unwrap();
    let mut browser = Browser::signed_in(&app, "wizard-screenshots-paging").await;
    browser.review_email_file(&app, &file).await;
    let rows = "document.querySelectorAll('#review tbody tr').length";
    browser.wait_for(&format!("{rows} === 50")).await;
    assert_eq!(browser.text("#review-page").await, "Page 1 of 3");
    browser.click("#review-next").await;
    browser
        .wait_for("document.getElementById('review-page').textContent === 'Page 2 of 3'")
        .await;
    browser.click("#review-next").await;
    browser.wait_for(&format!("{rows} === 20")).await;
    assert_eq!(browser.text("#review-page").await, "Page 3 of 3");
    assert!(
        browser
            .text("#review tbody tr:first-child")
            .await
            .contains("nobody101@example.com")
    );
    browser.screenshot("review-page-3").await;
    browser.click("#review-prev").await;
    browser.wait_for(&format!("{rows} === 50")).await;
    assert!(
        browser
            .text("#review tbody tr:first-child")
            .await
            .contains("nobody51@example.com")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_preview_is_refused_and_previewed_again_in_one_click() {
    let Some((db, app)) = app_with_an_admin().await else {
        return;
    };
    let file = db.dir.path().join("accounts.csv");
    std::fs::write(
        &file,
        "chloe@example.com,Chloé,chloe@mail.example.com,chloe,pw,chloe,pw\n",
    )
    .unwrap();
    let mut browser = Browser::signed_in(&app, "wizard-screenshots-stale").await;
    browser.review_email_file(&app, &file).await;
    browser.click("#next-6").await;
    // Meanwhile someone else imports the same account: the preview no longer holds.
    let other = app
        .call(reqwest::Method::POST, "/api/imports?type=email")
        .body(std::fs::read(&file).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), reqwest::StatusCode::CREATED);
    browser.click("#import-button").await;
    browser
        .wait_for("document.getElementById('notification').textContent.startsWith('Import failed')")
        .await;
    browser
        .wait_for("!document.getElementById('preview-again').hidden")
        .await;
    let csv_link_hidden =
        "return getComputedStyle(document.getElementById('results-csv')).display === 'none';";
    assert_eq!(
        browser.eval(csv_link_hidden, json!([])).await,
        true,
        "no results to download"
    );
    browser.screenshot("stale-refused").await;
    browser.click("#preview-again").await;
    browser
        .wait_for(
            "document.querySelector('#review-counts dd[data-count=unchanged]').textContent === '1'",
        )
        .await;
    browser.screenshot("previewed-again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workbook_is_imported_from_the_sheet_chosen_in_chromium() {
    let Some((db, app)) = app_with_an_admin().await else {
        return;
    };
    use crate::spreadsheets::Cell::Text;
    let header = [
        "user_email",
        "display_name",
        "email_address",
        "incoming_username",
        "incoming_password",
        "outgoing_username",
        "outgoing_password",
    ]
    .map(Text);
    let alice = [
        "alice@example.com",
        "Alice Adams",
        "alice@mail.example.com",
        "alice",
        "imap-secret-1",
        "alice",
        "",
    ]
    .map(Text);
    let file = db.dir.path().join("accounts.xlsx");
    std::fs::write(
        &file,
        crate::spreadsheets::xlsx(&[
            ("Notes", &[Some(&[Text("read me first")])]),
            ("Accounts", &[Some(&header), Some(&alice)]),
        ]),
    )
    .unwrap();
    let mut browser = Browser::signed_in(&app, "wizard-screenshots-sheets").await;
    browser.goto(&format!("{}/import", app.base)).await;
    browser.click("#next-1").await;
    browser.click("#type-email").await;
    browser.click("#next-2").await;
    browser.type_into("#file", file.to_str().unwrap()).await;
    browser
        .wait_for("!document.getElementById('next-3').disabled")
        .await;
    browser.click("#next-3").await;
    assert_eq!(browser.text("#encoding").await, "xlsx spreadsheet");
    assert_eq!(
        browser
            .eval(
                "return [document.getElementById('sheet-choice').hidden, document.getElementById('delimiter-choice').hidden, document.getElementById('sheet').value];",
                json!([])
            )
            .await,
        json!([false, true, "Notes"])
    );
    browser.screenshot("first-sheet").await;
    browser.click("#sheet option[value=Accounts]").await;
    browser
        .wait_for("document.getElementById('columns-table').textContent.includes('alice@mail.example.com')")
        .await;
    assert!(
        !browser.text("#wizard").await.contains("imap-secret-1"),
        "a password reached the page"
    );
    browser.screenshot("sheet-chosen").await;
    browser.click("#next-4").await;
    browser.click("#next-5").await;
    browser
        .wait_for(
            "document.querySelector('#review-counts dd[data-count=added]').textContent === '1'",
        )
        .await;
    browser.click("#next-6").await;
    browser.click("#import-button").await;
    browser
        .wait_for(
            "document.getElementById('notification').textContent.startsWith('Import complete')",
        )
        .await;
    browser.screenshot("sheet-imported").await;
    assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await,
        1
    );

    // The Users view downloads the same accounts as a workbook.
    browser.goto(&format!("{}/", app.base)).await;
    browser.find("#export-email-xlsx").await;
    let script = "const done = arguments[arguments.length - 1];
        fetch(document.getElementById('export-email-xlsx').href)
          .then(r => r.arrayBuffer().then(b => done([r.headers.get('content-type'),
            String.fromCharCode(...new Uint8Array(b).slice(0, 2))])));";
    let answer = browser
        .command(
            Method::POST,
            "/execute/async",
            json!({ "script": script, "args": [] }),
        )
        .await;
    assert_eq!(
        answer,
        json!([mdm_mail::export::XLSX_CONTENT_TYPE, "PK"]),
        "a workbook"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_columns_are_mapped_in_the_columns_step_and_the_mapping_saved() {
    let Some((db, app)) = app_with_an_admin().await else {
        return;
    };
    let file = db.dir.path().join("webmail.csv");
    std::fs::write(
        &file,
        "E-mail;Name;Mailbox;Login;Password;SMTP login;SMTP password\n\
         alice@example.com;Alice;alice@mail.example.com;alice;imap-secret-1;alice-out;smtp-secret-1\n\
         bob@example.com;Bob;bob@mail.example.com;bob;imap-secret-2;bob-out;\n",
    )
    .unwrap();
    let mut browser = Browser::signed_in(&app, "wizard-screenshots-columns").await;
    browser.goto(&format!("{}/import", app.base)).await;
    browser.click("#next-1").await;
    browser.click("#type-email").await;
    browser.click("#next-2").await;
    browser.type_into("#file", file.to_str().unwrap()).await;
    browser
        .wait_for("!document.getElementById('next-3').disabled")
        .await;
    browser.click("#next-3").await;
    browser.click("#next-4").await;

    // Recognised by their headers: the address (E-mail), the name, the SMTP password; three
    // required fields still need a column, so the step cannot be left yet.
    let value = |field: &str| format!("document.getElementById('map-{field}').value");
    browser
        .wait_for(&format!("{} === 'E-mail'", value("email_address")))
        .await;
    assert_eq!(
        browser
            .eval(
                &format!(
                    "return [{}, {}, document.getElementById('next-5').disabled];",
                    value("user_email"),
                    value("outgoing_password")
                ),
                json!([])
            )
            .await,
        json!(["", "SMTP password", true])
    );
    assert!(
        browser
            .text("#columns-missing")
            .await
            .contains("user_email, incoming_username, outgoing_username"),
        "{}",
        browser.text("#columns-missing").await
    );
    assert!(
        browser.text("#columns-map").await.contains("(required)"),
        "required fields are marked"
    );
    browser.screenshot("columns-recognised").await;
    for (field, column) in [
        ("user_email", "E-mail"),
        ("email_address", "Mailbox"),
        ("incoming_username", "Login"),
        ("incoming_password", "Password"),
        ("outgoing_username", "SMTP login"),
    ] {
        browser
            .click(&format!("#map-{field} option[value='{column}']"))
            .await;
        // The step is drawn again from the server's answer before the next choice.
        browser
            .wait_for(&format!(
                "!document.getElementById('wizard').dataset.previewing && {} === '{column}'",
                value(field)
            ))
            .await;
    }
    browser
        .wait_for("!document.getElementById('next-5').disabled")
        .await;
    let columns = browser.text("#columns-map").await;
    assert!(
        columns.contains("alice@mail.example.com, bob@mail.example.com"),
        "sample values beside each field: {columns}"
    );
    assert!(
        !browser.text("#wizard").await.contains("imap-secret-1"),
        "a password reached the page"
    );
    browser.type_into("#save-mapping", "webmail").await;
    browser.screenshot("columns-mapped").await;
    browser.click("#next-5").await;
    browser
        .wait_for(
            "document.querySelector('#review-counts dd[data-count=added]').textContent === '2'",
        )
        .await;
    assert!(
        browser
            .text("#review-fields")
            .await
            .contains("email_address ← Mailbox"),
        "{}",
        browser.text("#review-fields").await
    );
    browser.screenshot("columns-review").await;
    browser.click("#next-6").await;
    browser.click("#import-button").await;
    browser
        .wait_for(
            "document.getElementById('notification').textContent.startsWith('Import complete')",
        )
        .await;
    assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await,
        2
    );
    let saved = db.open().await.mapping("webmail").await.unwrap().unwrap();
    assert!(
        saved.fields.contains(r#""email_address":"Mailbox""#),
        "{}",
        saved.fields
    );

    // MXroute's export, read with the saved mapping shipped for it.
    let mxroute = db.dir.path().join("mxroute.csv");
    std::fs::write(
        &mxroute,
        "username,password,quota,limit,recovery_email,domain\nchloe,Abcd1234!,1024,9600,,example.com\n",
    )
    .unwrap();
    browser.goto(&format!("{}/import", app.base)).await;
    browser.click("#next-1").await;
    browser.click("#type-email").await;
    browser.click("#next-2").await;
    browser.type_into("#file", mxroute.to_str().unwrap()).await;
    browser
        .wait_for("!document.getElementById('next-3').disabled")
        .await;
    browser.click("#next-3").await;
    browser.click("#next-4").await;
    browser.click("#saved-mapping option[value=mxroute]").await;
    browser
        .wait_for(&format!(
            "{} === '{{username}}@{{domain}}'",
            value("user_email")
        ))
        .await;
    assert!(
        browser
            .text("#columns-map")
            .await
            .contains("chloe@example.com"),
        "the template filled in from the first row"
    );
    browser.screenshot("columns-saved-mapping").await;
    browser.click("#next-5").await;
    browser
        .wait_for(
            "document.querySelector('#review-counts dd[data-count=added]').textContent === '1'",
        )
        .await;
}
