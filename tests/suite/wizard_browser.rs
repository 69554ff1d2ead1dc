//! The import wizard in a real browser: headless Chromium driven through chromedriver over
//! WebDriver (plain HTTP with reqwest). Runs when `MDM_MAIL_TEST_BROWSER=1` (CI sets it and
//! installs Debian's `chromium` and `chromium-driver`), and then fails if either is missing;
//! otherwise it is skipped with a notice.
//!
//! Every page and step is audited at a desktop and a phone width: axe-core (the file
//! `MDM_MAIL_TEST_AXE` names, which CI installs from npm; the product never serves it) is
//! injected and run, the page must not be wider than the screen, and a screenshot of each
//! width is saved under `target/wizard-screenshots*/`. A test fails on any finding, listing
//! them all.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::App;
use crate::support::{TestDb, fixture};

const BROWSER_ENV: &str = "MDM_MAIL_TEST_BROWSER";
/// Names `axe.min.js` of the npm package `axe-core`.
const AXE_ENV: &str = "MDM_MAIL_TEST_AXE";
/// The widths every page is audited at: a laptop, and a phone (an iPhone 14's CSS pixels).
const SCREENS: [(&str, u32, u32); 2] = [("desktop", 1366, 900), ("phone", 390, 844)];
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key WebDriver names elements by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// WebDriver's code for the Tab key.
const TAB: &str = "\u{E004}";
/// WebDriver's code for the Enter key.
const ENTER: &str = "\u{E007}";
/// How long a step may take to show its result.
const PATIENCE: Duration = Duration::from_secs(20);

/// A chromedriver process and one browser session in it.
struct Browser {
    driver: Child,
    http: reqwest::Client,
    url: String,
    shots: PathBuf,
    taken: usize,
    /// Where the browser saves downloads.
    downloads: PathBuf,
    /// The source of axe-core, injected into each page audited.
    axe: String,
    /// What the audits found, one line each.
    findings: Vec<String>,
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
        browser.audit("sign-in").await;
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
        let axe = std::env::var(AXE_ENV).unwrap_or_else(|_| {
            panic!(
                "{BROWSER_ENV} is set but {AXE_ENV} is not: it names axe.min.js of the npm package axe-core (npm install --prefix DIR axe-core@4; .ci/run does)"
            )
        });
        let axe = std::fs::read_to_string(&axe)
            .unwrap_or_else(|e| panic!("{AXE_ENV}={axe} cannot be read: {e}"));
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
        let downloads = shots.join("downloads");
        std::fs::create_dir_all(&downloads).unwrap();
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
                             "--disable-dev-shm-usage", "--window-size=1366,900"],
                    "prefs": { "download.default_directory": downloads,
                               "download.prompt_for_download": false },
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
        Browser {
            driver,
            http,
            url: format!("{base}/session/{id}"),
            shots,
            taken: 0,
            downloads,
            axe,
            findings: Vec::new(),
        }
    }

    /// The file the browser downloaded as `name`, once it is complete.
    async fn downloaded(&self, name: &str) -> Vec<u8> {
        let path = self.downloads.join(name);
        let started = Instant::now();
        while !path.exists() {
            assert!(started.elapsed() < PATIENCE, "{name} was not downloaded");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        std::fs::read(path).unwrap()
    }

    /// Sets the viewport to `width` × `height` CSS pixels. Not as a mobile browser, which
    /// would zoom out to show a page wider than the screen whole, and so hide that it is.
    async fn screen(&self, width: u32, height: u32) {
        self.command(
            Method::POST,
            "/goog/cdp/execute",
            json!({ "cmd": "Emulation.setDeviceMetricsOverride", "params": {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false } }),
        )
        .await;
    }

    /// Audits the page as it is, at each of [`SCREENS`]: axe-core's violations, and whether
    /// the page is wider than the screen; a screenshot of each. Findings are kept for
    /// [`Browser::finish`]. Ends at the desktop width.
    async fn audit(&mut self, name: &str) {
        for (screen, width, height) in SCREENS {
            self.screen(width, height).await;
            // The page must fit the screen less its scroll bar: clientWidth, not innerWidth.
            let measured = self
                .eval(
                    "const root = document.documentElement; return [root.scrollWidth, root.clientWidth, window.innerWidth];",
                    json!([]),
                )
                .await;
            let [page, fits, inner] = [0, 1, 2].map(|i| measured[i].as_u64().unwrap());
            assert_eq!(inner, u64::from(width), "the {screen} viewport");
            if page > fits {
                self.findings.push(format!(
                    "{name} at {screen} width: the page is {page} px wide on a {fits} px screen"
                ));
            }
            for violation in self.axe_violations().await {
                self.findings
                    .push(format!("{name} at {screen} width: axe: {violation}"));
            }
            self.screenshot(&format!("{name}-{screen}")).await;
        }
        let (_, width, height) = SCREENS[0];
        self.screen(width, height).await;
    }

    /// axe-core's violations on the page, one line each: rule, impact, what it asks, and
    /// the elements at fault.
    async fn axe_violations(&self) -> Vec<String> {
        if self.eval("return typeof axe;", json!([])).await != "object" {
            self.eval(&format!("{};\nreturn typeof axe;", self.axe), json!([]))
                .await;
        }
        let script = "const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ['violations'] })
              .then((r) => done(r.violations.map((v) => v.id + ' (' + v.impact + '): ' + v.help + ': ' +
                 v.nodes.map((n) => n.target.join(' ') + ' [' + n.failureSummary.replace(/\\s+/g, ' ') + ']').join('; '))))
              .catch((e) => done(['axe failed: ' + e]));";
        let found = self
            .command(
                Method::POST,
                "/execute/async",
                json!({ "script": script, "args": [] }),
            )
            .await;
        found
            .as_array()
            .unwrap_or_else(|| panic!("axe answered {found}"))
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Ends the session, failing if any audit found anything.
    async fn finish(self) {
        self.command(Method::DELETE, "", Value::Null).await;
        assert!(
            self.findings.is_empty(),
            "{} accessibility and layout findings:\n{}",
            self.findings.len(),
            self.findings.join("\n")
        );
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

    /// Presses and releases `key` (a WebDriver key code such as [`TAB`]) on whatever has
    /// the focus.
    async fn press(&self, key: &str) {
        self.command(
            Method::POST,
            "/actions",
            json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": [
                { "type": "keyDown", "value": key }, { "type": "keyUp", "value": key } ] }] }),
        )
        .await;
    }

    /// The id, or else the class, of the element that has the focus.
    async fn focused(&self) -> String {
        let script = "const e = document.activeElement; return e.id || e.className;";
        self.eval(script, json!([]))
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
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

    /// Saves a screenshot of the whole page, not only the part on the screen.
    async fn screenshot(&mut self, name: &str) {
        let size = self
            .eval(
                "return [window.innerWidth, document.documentElement.scrollHeight];",
                json!([]),
            )
            .await;
        let shot = self
            .command(
                Method::POST,
                "/goog/cdp/execute",
                json!({ "cmd": "Page.captureScreenshot", "params": {
                    "format": "png", "captureBeyondViewport": true, "clip": {
                        "x": 0, "y": 0, "scale": 1, "width": size[0], "height": size[1] } } }),
            )
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        self.taken += 1;
        std::fs::write(
            self.shots.join(format!("{:02}-{name}.png", self.taken)),
            bytes,
        )
        .unwrap();
    }

    async fn count(&self, list: &str, outcome: &str) -> String {
        self.text(&format!("#{list} [data-count={outcome}]")).await
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
    // The first Tab reaches a link that skips the navigation.
    browser.press(TAB).await;
    assert_eq!(browser.focused().await, "skip-link");
    browser.press(ENTER).await;
    assert_eq!(browser.focused().await, "main");
    browser.click("#import-menu").await;
    browser.audit("users-import-menu").await;
    browser.click("#import-csv").await;

    browser.find("#step-1").await;
    browser.audit("step-1-import-type").await;
    browser.click("#next-1").await;
    browser.click("#type-email").await;
    assert!(
        browser
            .text("#step-2 .columns[data-type=email]")
            .await
            .contains("incoming_password")
    );
    browser.audit("step-2-account-type").await;
    browser.click("#next-2").await;
    // From the step's heading, Tab reaches Browse: the file input it opens is no tab stop.
    browser
        .wait_for("document.activeElement.id === 'h-3'")
        .await;
    browser.press(TAB).await;
    assert_eq!(browser.focused().await, "browse");

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
    browser.audit("step-3-file").await;
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
    // Each column heading: the file's header → the field it is read as (kept on one line).
    let heading = |n: usize| format!("#columns-table thead th:nth-child({n})");
    assert_eq!(
        browser.text(&heading(4)).await,
        "Email address →\u{a0}email_address"
    );
    assert_eq!(
        browser.text(&heading(8)).await,
        "Outgoing server password →\u{a0}outgoing_password"
    );
    browser.audit("step-4-delimiter-detected").await;
    // Another delimiter re-columns the preview at once: on commas every line is one cell,
    // and every line (the header is no longer one) is rejected.
    let first_row = "document.querySelectorAll('#columns-table tbody tr:first-child td').length";
    browser.wait_for(&format!("{first_row} === 8")).await;
    browser.click("#delimiter option[value=comma]").await;
    browser.wait_for(&format!("{first_row} === 2")).await;
    browser
        .wait_for(
            "document.querySelector('#review-counts [data-count=rejected]').textContent === '5'",
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
    browser.audit("step-4-delimiter-comma").await;
    browser.click("#delimiter option[value=semicolon]").await;
    browser.wait_for(&format!("{first_row} === 8")).await;
    browser
        .wait_for("document.getElementById('delimiter-warning').hidden")
        .await;
    browser.click("#next-4").await;
    browser.audit("step-5-columns").await;
    browser.click("#next-5").await;

    browser
        .wait_for(
            "document.querySelector('#review-counts [data-count=rejected]').textContent === '1'",
        )
        .await;
    assert_eq!(browser.count("review-counts", "added").await, "2");
    assert_eq!(browser.count("review-counts", "discarded").await, "1");
    assert_eq!(browser.count("review-counts", "rejected").await, "1");
    // The problems come first: the discarded and the rejected line, the rejected address
    // shown as written and marked.
    let rows = "document.querySelectorAll('#review tbody tr').length";
    assert_eq!(browser.eval(&format!("return {rows};"), json!([])).await, 2);
    assert_eq!(
        browser.text("#review-counts [aria-pressed=true]").await,
        "Problems2"
    );
    assert_eq!(browser.text("#review-shown").await, "Problems: 2 lines.");
    let rejected = browser.text("#review tr.outcome-rejected").await;
    assert!(
        rejected.contains("email_address") && rejected.contains("bob.example.com"),
        "{rejected}"
    );
    assert_eq!(
        browser.text("#review tr.outcome-rejected .at-fault").await,
        "bob.example.com"
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
    browser.audit("step-6-review").await;
    // Each count shows its lines.
    browser.click("#review-counts [data-filter=all]").await;
    browser.wait_for(&format!("{rows} === 4")).await;
    assert_eq!(browser.text("#review-shown").await, "All lines: 4 lines.");
    browser.click("#review-counts [data-filter=added]").await;
    browser.wait_for(&format!("{rows} === 2")).await;
    assert!(browser.text("#review").await.contains("chloe@example.com"));
    browser
        .click("#review-counts [data-filter=duplicate]")
        .await;
    browser
        .wait_for("document.querySelector('#review tbody td.empty') !== null")
        .await;
    browser.audit("step-6-review-no-duplicates").await;
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
    browser.audit("step-6-import").await;
    browser.click("#import-button").await;

    browser
        .wait_for(
            "document.getElementById('notification').textContent.startsWith('Import complete')",
        )
        .await;
    assert_eq!(browser.count("result-counts", "added").await, "2");
    assert_eq!(browser.count("result-counts", "rejected").await, "1");
    browser.audit("step-7-result").await;
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
            "document.getElementById('push-note').textContent.startsWith('1 profile install queued')",
        )
        .await;
    browser
        .wait_for("(document.querySelector('#push-counts dd[data-count=queued]') || {}).textContent === '1'")
        .await;
    browser.audit("step-7-push-card").await;

    // Back on the Users view, the Export button downloads the accounts in the import format.
    browser.goto(&format!("{}/", app.base)).await;
    browser.find("#export-email").await;
    browser.audit("users-export-buttons").await;
    browser.click("#export-options summary").await;
    browser.find("#export-download").await;
    browser.audit("users-export-as").await;
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

    // The imports page lists it.
    browser.goto(&format!("{}/imports", app.base)).await;
    assert!(
        browser
            .text("#imports")
            .await
            .contains("accounts-semicolon-bom.csv")
    );
    browser.audit("imports").await;

    // The push jobs page shows the queue per device.
    browser.goto(&format!("{}/push", app.base)).await;
    assert_eq!(browser.count("push-counts", "queued").await, "1");
    assert!(browser.text("#push-devices").await.contains("ALICE-IPHONE"));
    browser.audit("push-jobs").await;

    // Alice's page removes her account, after asking; her iPhone gets the removal queued.
    browser
        .goto(&format!("{}/users/alice@example.com", app.base))
        .await;
    // Her iPhone's push state, and her profile previewed for it at once.
    assert!(
        browser
            .text("#devices")
            .await
            .contains("Profile install queued")
    );
    assert!(
        browser
            .text("#profile")
            .await
            .contains("com.apple.mail.managed")
    );
    browser.audit("user-accounts").await;
    // Another platform previews as soon as it is chosen: no Show to press.
    assert_eq!(
        browser
            .eval(
                "return getComputedStyle(document.getElementById('preview-show')).display;",
                json!([])
            )
            .await,
        "none"
    );
    browser.click("#platform option[value=windows]").await;
    browser
        .wait_for("document.getElementById('profile').textContent.includes('EMAIL2')")
        .await;
    assert!(!browser.text("#profile").await.contains("imap-secret-1"));
    assert_eq!(
        browser.eval("return location.search;", json!([])).await,
        "?platform=windows"
    );
    browser.audit("user-preview-windows").await;
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
    browser.audit("user-account-removed").await;

    browser.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_page_lists_the_devices_whose_answer_is_overdue() {
    let Some((db, app)) = app_with_an_admin().await else {
        return;
    };
    crate::api_wiring::imported(&app).await;
    crate::api_wiring::sent_an_hour_ago(&db).await;
    let mut browser = Browser::signed_in(&app, "wizard-screenshots-overdue").await;
    browser.goto(&format!("{}/push", app.base)).await;
    let overdue = browser.text("#push-overdue").await;
    assert!(overdue.contains("ALICE-IPHONE"), "{overdue}");
    assert!(overdue.contains("nudged"), "{overdue}");
    browser.audit("push-overdue").await;
    browser.finish().await;
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
    browser.audit("review-page-3").await;
    browser.click("#review-prev").await;
    browser.wait_for(&format!("{rows} === 50")).await;
    assert!(
        browser
            .text("#review tbody tr:first-child")
            .await
            .contains("nobody51@example.com")
    );
    // The pages with nothing to list yet, and a user without devices.
    for (page, name) in [
        ("/imports", "imports-empty"),
        ("/push", "push-empty"),
        ("/users/chloe@example.com", "user-without-devices"),
    ] {
        browser.goto(&format!("{}{page}", app.base)).await;
        browser.find("main h1").await;
        browser.audit(name).await;
    }
    assert!(
        browser
            .text("#devices")
            .await
            .contains("No enrolled devices")
    );
    browser.finish().await;
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
    browser.audit("stale-refused").await;
    browser.click("#preview-again").await;
    browser
        .wait_for(
            "document.querySelector('#review-counts [data-count=unchanged]').textContent === '1'",
        )
        .await;
    browser.audit("previewed-again").await;
    browser.finish().await;
}

/// `text` as UTF-16LE with its byte-order mark, as Excel saves "Unicode Text".
fn utf16(text: &str) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_problem_lines_download_as_the_file_has_them_to_fix_and_import_again() {
    let Some((db, app)) = app_with_an_admin().await else {
        return;
    };
    // Excel's "Unicode Text": UTF-16, tabs, CRLF. Line 3 is rejected for a line break in
    // its display name (a record of two lines), line 5 for a tab in its quoted display name
    // (quotes in it too; its user is unknown besides), and line 7 repeats line 6.
    let header = "User email\tUser display name\tEmail address\tIncoming server user name\tIncoming server password\tOutgoing server user name\tOutgoing server password";
    let rejected = "bob@example.com\t\"Bob\r\nBaker\"\tbob.example.com\tbob\tbob-imap-secret\tbob\tbob-smtp-secret";
    let unknown = "nobody@example.com\t\"No \"\"body\"\"\tat all\"\tnobody@mail.example.com\tnobody\t\tnobody\t";
    let repeated = "chloe@example.com\tChloé\tchloe@mail.example.com\tchloe\tpw2\tchloe\tpw2";
    let lines = [
        header,
        "alice@example.com\tAlice Adams\talice@mail.example.com\talice\timap-secret-1\talice\tsmtp-secret-1",
        rejected,
        unknown,
        "chloe@example.com\tChloé\tchloe@mail.example.com\tchloe\tpw\tchloe\tpw",
        repeated,
    ];
    let file = db.dir.path().join("accounts-unicode.txt");
    std::fs::write(&file, utf16(&(lines.join("\r\n") + "\r\n"))).unwrap();

    let mut browser = Browser::signed_in(&app, "wizard-screenshots-problem-lines").await;
    browser.review_email_file(&app, &file).await;
    browser
        .wait_for("(document.querySelector('#review-counts [data-count=problems]') || {}).textContent === '3'")
        .await;
    let rows = "document.querySelectorAll('#review tbody tr').length";
    browser.wait_for(&format!("{rows} === 3")).await;
    browser.click("#problems-download").await;
    let downloaded = browser
        .downloaded("accounts-unicode-problem-lines.csv")
        .await;
    browser
        .wait_for("document.getElementById('problems-status').textContent.startsWith('Downloaded 3 problem lines')")
        .await;
    browser.audit("problem-lines-downloaded").await;
    // The header and the three lines exactly as written, passwords and all, still UTF-16.
    let expected = [header, rejected, unknown, repeated].join("\r\n") + "\r\n";
    assert_eq!(
        String::from_utf16_lossy(
            &downloaded[2..]
                .chunks(2)
                .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
                .collect::<Vec<_>>()
        ),
        expected
    );
    assert_eq!(downloaded, utf16(&expected));

    // Fixed where the review said, the file imports: the rejected line's passwords were
    // in it all along.
    let fixed = expected
        .replace("\"Bob\r\nBaker\"", "Bob Baker")
        .replace("bob.example.com", "bob@mail.example.com")
        .replace("\tat all", " at all");
    let committed = app
        .call(Method::POST, "/api/imports?type=email")
        .body(utf16(&fixed))
        .send()
        .await
        .unwrap();
    assert_eq!(committed.status(), reqwest::StatusCode::CREATED);
    let committed: Value = committed.json().await.unwrap();
    assert_eq!(
        (
            committed["rejected"].as_u64(),
            committed["added"].as_u64(),
            committed["discarded"].as_u64()
        ),
        (Some(0), Some(2), Some(1)),
        "{committed}"
    );
    assert_eq!(
        db.scalar_i64(
            "SELECT COUNT(*) FROM email_accounts WHERE address = 'bob@mail.example.com' \
             AND password IS NOT NULL AND outgoing_password IS NOT NULL"
        )
        .await,
        1
    );
    browser.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_the_other_account_type_is_switched_to_it_in_one_click() {
    let Some((_db, app)) = app_with_an_admin().await else {
        return;
    };
    let mut browser = Browser::signed_in(&app, "wizard-screenshots-other-type").await;
    browser.goto(&format!("{}/import", app.base)).await;
    browser.click("#next-1").await;
    browser.click("#type-email").await;
    browser.click("#next-2").await;
    let file = fixture("import/exchange.csv");
    browser.type_into("#file", file.to_str().unwrap()).await;
    browser
        .wait_for("!document.getElementById('other-type').hidden")
        .await;
    assert!(
        browser
            .text("#wizard-error")
            .await
            .ends_with("is this a --type exchange file?")
    );
    assert_eq!(
        browser.text("#switch-type").await,
        "Switch to Mail for Exchange and preview again"
    );
    browser.audit("other-type-offered").await;
    browser.click("#switch-type").await;
    browser
        .wait_for("!document.getElementById('next-3').disabled")
        .await;
    assert_eq!(
        browser
            .eval(
                "return document.getElementById('type-exchange').checked;",
                json!([])
            )
            .await,
        true
    );
    assert_eq!(
        browser
            .eval(
                "return [document.getElementById('wizard-error').hidden, document.getElementById('other-type').hidden];",
                json!([])
            )
            .await,
        json!([true, true])
    );
    browser.click("#next-3").await;
    browser.click("#next-4").await;
    browser.click("#next-5").await;
    browser
        .wait_for("(document.querySelector('#review-counts [data-count=added]') || {}).textContent === '2'")
        .await;
    assert_eq!(browser.count("review-counts", "rejected").await, "1");
    browser.audit("other-type-switched").await;
    browser.finish().await;
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
    browser.audit("first-sheet").await;
    browser.click("#sheet option[value=Accounts]").await;
    browser
        .wait_for("document.getElementById('columns-table').textContent.includes('alice@mail.example.com')")
        .await;
    assert!(
        !browser.text("#wizard").await.contains("imap-secret-1"),
        "a password reached the page"
    );
    browser.audit("sheet-chosen").await;
    browser.click("#next-4").await;
    browser.click("#next-5").await;
    browser
        .wait_for("document.querySelector('#review-counts [data-count=added]').textContent === '1'")
        .await;
    browser.click("#next-6").await;
    browser.click("#import-button").await;
    browser
        .wait_for(
            "document.getElementById('notification').textContent.startsWith('Import complete')",
        )
        .await;
    browser.audit("sheet-imported").await;
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
    browser.finish().await;
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
    browser.audit("columns-recognised").await;
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
    browser.audit("columns-mapped").await;
    browser.click("#next-5").await;
    browser
        .wait_for("document.querySelector('#review-counts [data-count=added]').textContent === '2'")
        .await;
    assert!(
        browser
            .text("#review-fields")
            .await
            .contains("email_address ← Mailbox"),
        "{}",
        browser.text("#review-fields").await
    );
    browser.audit("columns-review").await;
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
    browser.audit("columns-saved-mapping").await;
    browser.click("#next-5").await;
    browser
        .wait_for("document.querySelector('#review-counts [data-count=added]').textContent === '1'")
        .await;
    browser.finish().await;
}
