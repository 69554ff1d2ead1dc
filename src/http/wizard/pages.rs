//! The wizard's server-rendered pages.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::{LOGIN_COOKIE, cookie, end_session, escape, signed_in, url_escape};
use crate::auth::{self, Session};
use crate::http::AppState;
use crate::http::session::{COOKIE_NAME, CSRF_FIELD, client_address, same_secret};
use crate::import::schema;
use crate::model::{AccountKind, Platform, normalize_email};

/// Users per page of the Users view.
const USERS_PAGE: i64 = 50;
/// Imports per page of the imports page.
const IMPORTS_PAGE: i64 = 50;
/// Devices per page of the push jobs page.
const DEVICES_PAGE: i64 = 50;

/// `n` with its thousands grouped, as a count reads at a glance: `200,000`.
fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A whole page: header with the signed-in admin and sign-out, then `main`.
fn layout(title: &str, session: Option<&Session>, main: &str) -> Html<String> {
    let account = match session {
        Some(s) => format!(
            r#"<form method="post" action="/sign-out" class="signout">
<span class="who">Signed in as {admin}</span>
<input type="hidden" name="{CSRF_FIELD}" value="{csrf}">
<button type="submit" class="button secondary" id="sign-out">Sign out</button></form>"#,
            admin = escape(&s.admin),
            csrf = escape(&s.csrf_token)
        ),
        None => String::new(),
    };
    let csrf_meta = session.map_or(String::new(), |s| {
        format!(
            r#"<meta name="csrf-token" content="{}">"#,
            escape(&s.csrf_token)
        )
    });
    let nav: String = [
        ("/", "Users"),
        ("/imports", "Imports"),
        ("/push", "Push jobs"),
    ]
    .iter()
    .map(|(href, name)| {
        let current = if *name == title {
            r#" aria-current="page""#
        } else {
            ""
        };
        format!(r#"<a href="{href}"{current}>{name}</a> "#)
    })
    .collect();
    Html(format!(
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{csrf_meta}
<title>{title} · mdm-mail</title>
<link rel="stylesheet" href="/assets/wizard.css">
</head><body>
<a class="skip-link" href="#main">Skip to content</a>
<header class="top"><a class="brand" href="/">mdm-mail</a><nav aria-label="Sections">{nav}</nav>{account}</header>
<main id="main" tabindex="-1">{main}</main>
<script src="/assets/wizard.js"></script>
</body></html>"##,
        title = escape(title),
    ))
}

/// `GET /sign-in`.
pub async fn sign_in_form(headers: HeaderMap) -> Response {
    sign_in_page(&headers, None, StatusCode::OK)
}

fn sign_in_page(headers: &HeaderMap, error: Option<&str>, status: StatusCode) -> Response {
    let token = auth::random_secret();
    let error = error.map_or(String::new(), |e| {
        format!(r#"<p class="alert error" role="alert">{}</p>"#, escape(e))
    });
    let main = format!(
        r#"<section class="card narrow"><h1>Sign in</h1>{error}
<form method="post" action="/sign-in">
<input type="hidden" name="{CSRF_FIELD}" value="{token}">
<label for="name">Name</label><input id="name" name="name" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" class="button primary" id="sign-in">Sign in</button>
</form></section>"#
    );
    (
        status,
        [(SET_COOKIE, cookie(headers, LOGIN_COOKIE, &token, 600))],
        layout("Sign in", None, &main),
    )
        .into_response()
}

/// The sign-in form.
#[derive(serde::Deserialize)]
pub struct SignIn {
    name: String,
    password: String,
    csrf_token: String,
}

/// `POST /sign-in`. The client is the TCP peer, or behind a configured proxy the client
/// it forwarded for: `X-Forwarded-For` from anyone else is the client's to write, and
/// counting failures by it would let a guesser pick a fresh address for every attempt.
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    let expected = cookie_value(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(&form.csrf_token, &expected) {
        return sign_in_page(
            &headers,
            Some("The form expired; please sign in again."),
            StatusCode::FORBIDDEN,
        );
    }
    let throttle = &state.settings.sign_in;
    let client = client_address(peer.ip(), &headers, &throttle.trusted_proxies);
    let name = form.name.trim();
    match auth::sign_in(&state.store, throttle, client, name, &form.password).await {
        Ok(auth::SignIn::Session(session)) => {
            let max_age = auth::SESSION_LIFETIME_MS / 1000;
            let mut response = Redirect::to("/").into_response();
            let cookies = response.headers_mut();
            for value in [
                cookie(&headers, COOKIE_NAME, &session.token, max_age),
                cookie(&headers, LOGIN_COOKIE, "", 0),
            ] {
                if let Ok(value) = value.parse() {
                    cookies.append(SET_COOKIE, value);
                }
            }
            response
        }
        Ok(auth::SignIn::Refused) => sign_in_page(
            &headers,
            Some("Wrong name or password."),
            StatusCode::UNAUTHORIZED,
        ),
        Ok(auth::SignIn::Throttled { retry_after_s }) => {
            let mut page = sign_in_page(
                &headers,
                Some(&format!(
                    "Too many failed attempts; try again in {retry_after_s} {}.",
                    if retry_after_s == 1 {
                        "second"
                    } else {
                        "seconds"
                    }
                )),
                StatusCode::TOO_MANY_REQUESTS,
            );
            page.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_after_s));
            page
        }
        Err(e) => crate::http::error::ApiError::from(e).into_response(),
    }
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (n, v) = pair.trim().split_once('=')?;
            (n == name).then(|| v.to_owned())
        })
}

/// The session a state-changing form was posted in, provided the form carries its CSRF
/// token; otherwise the answer to send instead.
async fn form_session(
    state: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Session, Response> {
    let session = signed_in(state, headers).await?;
    let sent = form.get(CSRF_FIELD).map_or("", String::as_str);
    if !same_secret(sent, &session.csrf_token) {
        return Err(crate::http::error::ApiError::csrf().into_response());
    }
    Ok(session)
}

/// `POST /sign-out`.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(refused) = form_session(&state, &headers, &form).await {
        return refused;
    }
    match end_session(&state, &headers).await {
        Ok(clear) => ([(SET_COOKIE, clear)], Redirect::to("/sign-in")).into_response(),
        Err(e) => crate::http::error::ApiError::from(e).into_response(),
    }
}

/// `GET /`: the Users view.
pub async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let session = match signed_in(&state, &headers).await {
        Ok(session) => session,
        Err(redirect) => return redirect,
    };
    let q = query.get("q").map(|q| q.trim()).filter(|q| !q.is_empty());
    let after = query.get("after").map(|a| normalize_email(a));
    let page = match q {
        Some(q) => {
            state
                .store
                .search_users(q, after.as_deref(), USERS_PAGE)
                .await
        }
        None => state.store.list_users(after.as_deref(), USERS_PAGE).await,
    };
    let users = match page {
        Ok(users) => users,
        Err(e) => return crate::http::error::ApiError::from(e).into_response(),
    };
    let total = match state.store.count_users().await {
        Ok(total) => grouped(total),
        Err(e) => return crate::http::error::ApiError::from(e).into_response(),
    };
    let mut rows = String::new();
    for u in &users {
        rows.push_str(&format!(
            r#"<tr><td><a href="/users/{link}">{email}</a></td><td>{name}</td><td class="num">{accounts}</td><td class="num">{devices}</td></tr>"#,
            link = url_escape(&u.email),
            email = escape(&u.email),
            name = escape(&u.display_name),
            accounts = u.accounts,
            devices = u.devices,
        ));
    }
    if users.is_empty() {
        rows.push_str(r#"<tr><td colspan="4" class="empty">No users found.</td></tr>"#);
    }
    let q_value = q.map(escape).unwrap_or_default();
    let q_param = q.map_or(String::new(), |q| format!("q={}&", url_escape(q)));
    let next = if users.len() == usize::try_from(USERS_PAGE).unwrap_or(usize::MAX) {
        users.last().map_or(String::new(), |last| {
            format!(
                r#"<a class="button secondary" id="next-page" href="/?{q_param}after={}">Next page</a>"#,
                url_escape(&normalize_email(&last.email))
            )
        })
    } else {
        String::new()
    };
    let first = if after.is_some() {
        format!(r#"<a class="button secondary" href="/?{q_param}">First page</a>"#)
    } else {
        String::new()
    };
    let main = format!(
        r#"<div class="toolbar"><h1>Users <span class="muted">({total})</span></h1>
<details class="menu"><summary class="button primary" id="import-menu">Import</summary>
<ul><li><a href="/import" id="import-csv">Import from CSV or a spreadsheet</a></li></ul></details>
<a class="button secondary" id="export-email" href="/api/export?type=email" download>Export CSV (Email)</a>
<a class="button secondary" id="export-exchange" href="/api/export?type=exchange" download>Export CSV (Exchange)</a>
<a class="button secondary" id="export-email-xlsx" href="/api/export?type=email&amp;format=xlsx" download>Export .xlsx (Email)</a>
<details class="menu" id="export-options"><summary class="button secondary">Export as…</summary>
<form method="get" action="/api/export" class="export-form">
<label for="export-type">Export</label><select id="export-type" name="type"><option value="email">Email accounts</option><option value="exchange">Exchange accounts</option><option value="mappings">Device mappings</option></select>
<label for="export-format">Format</label><select id="export-format" name="format"><option value="csv">CSV</option><option value="xlsx">Excel workbook (.xlsx, every cell text)</option></select>
<label for="export-delimiter">Delimiter</label><select id="export-delimiter" name="delimiter"><option value="comma">Comma</option><option value="semicolon">Semicolon (Excel in most of Europe)</option><option value="tab">Tab</option></select>
<label for="export-encoding">Encoding</label><select id="export-encoding" name="encoding"><option value="utf-8">UTF-8</option><option value="utf-8-bom">UTF-8 with BOM (Excel)</option><option value="utf-16">UTF-16 (Excel's Unicode Text)</option></select>
<button type="submit" class="button primary" id="export-download">Download</button></form></details></div>
<form method="get" action="/" class="search" role="search">
<label for="q">Search users</label><input id="q" name="q" type="search" value="{q_value}" placeholder="Address or name">
<button type="submit" class="button secondary">Search</button></form>
<div class="scroll" tabindex="0" role="region" aria-label="Users"><table class="grid" id="users"><thead><tr><th scope="col">User</th><th scope="col">Name</th><th scope="col" class="num">Mail accounts</th><th scope="col" class="num">Devices</th></tr></thead>
<tbody>{rows}</tbody></table></div>
<nav class="pager" aria-label="Pages of users">{first}{next}</nav>"#
    );
    layout("Users", Some(&session), &main).into_response()
}

/// `GET /import`: the import wizard; its steps run in `wizard.js`.
pub async fn import(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match signed_in(&state, &headers).await {
        Ok(session) => session,
        Err(redirect) => return redirect,
    };
    let columns = |kind: AccountKind| {
        schema::columns(kind)
            .iter()
            .map(|c| {
                let optional = if c.required {
                    ""
                } else {
                    " <span class=\"muted\">(optional)</span>"
                };
                format!(
                    "<li><code>{}</code> — {}{optional}</li>",
                    escape(c.name),
                    escape(c.label)
                )
            })
            .collect::<String>()
    };
    let main = format!(
        include_str!("import.html"),
        email_columns = columns(AccountKind::Email),
        exchange_columns = columns(AccountKind::Exchange),
    );
    layout("Import from CSV or a spreadsheet", Some(&session), &main).into_response()
}

/// `GET /users/{email}`: a user's accounts and devices, and their profile previewed per
/// platform with passwords redacted.
pub async fn user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(email): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let session = match signed_in(&state, &headers).await {
        Ok(session) => session,
        Err(redirect) => return redirect,
    };
    let norm = normalize_email(&email);
    let (user, accounts) = match state.store.user_with_accounts(&norm).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            let main = format!(
                r#"<p class="alert error" role="alert">No user with email {}.</p>"#,
                escape(&email)
            );
            return (
                StatusCode::NOT_FOUND,
                layout("Not found", Some(&session), &main),
            )
                .into_response();
        }
        Err(e) => return crate::http::error::ApiError::from(e).into_response(),
    };
    let devices = match state.store.devices_of_user(&norm).await {
        Ok(devices) => devices,
        Err(e) => return crate::http::error::ApiError::from(e).into_response(),
    };
    let platform = query
        .get("platform")
        .and_then(|p| p.parse::<Platform>().ok())
        .or_else(|| devices.first().map(|d| d.platform))
        .unwrap_or(Platform::Ios);
    let mut account_rows = String::new();
    for a in &accounts {
        let kind = if a.kind == "exchange" {
            "Mail for Exchange"
        } else {
            "Email"
        };
        account_rows.push_str(&format!(
            r#"<tr><td data-label="Type">{kind}</td><td data-label="Address">{address}</td><td data-label="User name">{username}</td><td data-label="Password">{password}</td><td><form method="post" action="/users/{user}/accounts/remove" data-confirm="Remove the {kind} account {address} from {email}? Its profile changes on every device of the user.">
<input type="hidden" name="{CSRF_FIELD}" value="{csrf}"><input type="hidden" name="type" value="{type_}"><input type="hidden" name="address" value="{address}">
<button type="submit" class="button secondary" aria-label="Remove {address}">Remove</button></form></td></tr>"#,
            address = escape(&a.address),
            username = escape(&a.username),
            password = if a.password.is_some() {
                "set (hidden)"
            } else {
                "none: the device asks"
            },
            user = url_escape(&user.email),
            email = escape(&user.email),
            csrf = escape(&session.csrf_token),
            type_ = escape(&a.kind),
        ));
    }
    if accounts.is_empty() {
        account_rows.push_str(r#"<tr><td colspan="5" class="empty">No mail accounts: import some from CSV.</td></tr>"#);
    }
    let removed = query
        .get("removed")
        .map(|address| {
            format!(
                r#"<p class="alert success" role="status" id="removed">Removed the account {}. The user's devices get the changed profile through push (see <a href="/push">Push jobs</a>).</p>"#,
                escape(address)
            )
        })
        .unwrap_or_default();
    let pushes = match state.store.device_push_states(&norm).await {
        Ok(pushes) => pushes,
        Err(e) => return crate::http::error::ApiError::from(e).into_response(),
    };
    let mut device_rows = String::new();
    for d in &devices {
        let push = pushes
            .iter()
            .find(|p| p.device_id == d.device_id)
            .map(super::device_push::describe);
        let (holds, queue, error) =
            push.map_or_else(Default::default, |p| (p.holds, p.queue, p.error));
        device_rows.push_str(&format!(
            r#"<tr><td data-label="Device">{}</td><td data-label="Platform">{}</td><td data-label="Enrollment">{}</td><td data-label="Holds">{}</td><td data-label="Push">{}</td><td data-label="Last error">{}</td></tr>"#,
            escape(&d.device_id),
            escape(d.platform.as_str()),
            escape(&d.enrollment_id),
            escape(&holds),
            escape(&queue),
            escape(&error),
        ));
    }
    if devices.is_empty() {
        device_rows.push_str(r#"<tr><td colspan="6" class="empty">No enrolled devices: load them with <code>mdm-mail devices import FILE</code> or <code>POST /api/devices</code>; profiles are pushed once there are some.</td></tr>"#);
    }
    let preview = match crate::http::api::profile_preview(&state, &user.email, platform).await {
        Ok(text) => format!(
            r#"<pre class="profile" id="profile" tabindex="0">{}</pre>"#,
            escape(&text)
        ),
        Err(message) => format!(r#"<p class="alert" id="profile">{}</p>"#, escape(&message)),
    };
    let options: String = [
        Platform::Ios,
        Platform::Ipados,
        Platform::Macos,
        Platform::Windows,
        Platform::Android,
    ]
    .iter()
    .map(|p| {
        let selected = if *p == platform { " selected" } else { "" };
        format!(r#"<option value="{0}"{selected}>{0}</option>"#, p.as_str())
    })
    .collect();
    let main = format!(
        r#"<p><a href="/">← Users</a></p>
<h1>{email} <span class="muted">{name}</span></h1>
{removed}<h2>Mail accounts</h2>
<table class="grid cards" id="accounts"><thead><tr><th scope="col">Type</th><th scope="col">Address</th><th scope="col">User name</th><th scope="col">Password</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead><tbody>{account_rows}</tbody></table>
<h2>Devices</h2>
<table class="grid cards" id="devices"><thead><tr><th scope="col">Device</th><th scope="col">Platform</th><th scope="col">Enrollment</th><th scope="col">Profile on the device</th><th scope="col">Push</th><th scope="col">Last error</th></tr></thead><tbody>{device_rows}</tbody></table>
<h2>Profile preview</h2>
<form method="get" class="inline" id="preview-form" data-user="{user_path}"><label for="platform">Platform</label>
<select id="platform" name="platform">{options}</select>
<button type="submit" class="button secondary" id="preview-show">Show</button></form>
<p class="muted">Passwords are shown as ********; devices receive the real profile.</p>
<div id="preview" aria-live="polite">{preview}</div>"#,
        user_path = url_escape(&user.email),
        email = escape(&user.email),
        name = escape(&user.display_name),
    );
    layout(&user.email, Some(&session), &main).into_response()
}

/// `GET /push`: the push queue per state and per device, with retry for failed jobs.
pub async fn push(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let session = match signed_in(&state, &headers).await {
        Ok(session) => session,
        Err(redirect) => return redirect,
    };
    let after = query
        .get("after")
        .map(String::as_str)
        .filter(|a| !a.is_empty());
    let status = match crate::push::status(&state.store, after, DEVICES_PAGE).await {
        Ok(status) => status,
        Err(e) => return crate::http::error::ApiError::from(e).into_response(),
    };
    let jobs = &status.jobs;
    let counts: String = [
        ("queued", jobs.queued),
        ("sending", jobs.sending),
        ("sent", jobs.sent),
        ("acknowledged", jobs.acknowledged),
        ("failed", jobs.failed),
    ]
    .iter()
    .map(|(name, n)| {
        format!(r#"<div><dt class="push-{name}">{name}</dt><dd data-count="{name}">{n}</dd></div>"#)
    })
    .collect();
    let mut rows = String::new();
    for d in &status.devices {
        let note = d.note();
        rows.push_str(&format!(
            r#"<tr><td>{device}</td><td>{platform}</td><td class="num">{q}</td><td class="num">{s}</td><td class="num">{sent}</td><td class="num">{a}</td><td class="num">{f}</td><td>{note}</td></tr>"#,
            device = escape(&d.device_id),
            platform = escape(&d.platform),
            q = d.queued,
            s = d.sending,
            sent = d.sent,
            a = d.acknowledged,
            f = d.failed,
            note = escape(note),
        ));
    }
    if status.devices.is_empty() {
        rows.push_str(r#"<tr><td colspan="8" class="empty">No push jobs yet.</td></tr>"#);
    }
    let next = match status.devices.last() {
        Some(last)
            if status.devices.len() == usize::try_from(DEVICES_PAGE).unwrap_or(usize::MAX) =>
        {
            format!(
                r#"<a class="button secondary" href="/push?after={}">Next page</a>"#,
                url_escape(&last.device_id)
            )
        }
        _ => String::new(),
    };
    let retried = query
        .get("retried")
        .map(|n| {
            format!(
                r#"<p class="alert success" role="status">{} failed job(s) queued again.</p>"#,
                escape(n)
            )
        })
        .unwrap_or_default();
    let overdue = overdue_section(&status);
    let disabled = if jobs.failed == 0 { " disabled" } else { "" };
    let main = format!(
        r#"<div class="toolbar"><h1>Push jobs</h1>
<form method="post" action="/push/retry"><input type="hidden" name="{CSRF_FIELD}" value="{csrf}">
<button type="submit" class="button primary" id="retry-failed"{disabled}>Retry failed jobs</button></form></div>
{retried}<section class="card"><dl class="counts" id="push-counts">{counts}</dl></section>
{overdue}<div class="scroll" tabindex="0" role="region" aria-label="Push jobs per device"><table class="grid" id="push-devices"><thead><tr><th scope="col">Device</th><th scope="col">Platform</th><th scope="col" class="num">Queued</th><th scope="col" class="num">Sending</th><th scope="col" class="num">Sent</th><th scope="col" class="num">Acknowledged</th><th scope="col" class="num">Failed</th><th scope="col">Last error or status</th></tr></thead>
<tbody>{rows}</tbody></table></div>
<nav class="pager" aria-label="Pages of devices">{next}</nav>"#,
        csrf = escape(&session.csrf_token),
    );
    layout("Push jobs", Some(&session), &main).into_response()
}

/// The sent jobs whose device has not answered in time, longest waiting first, as `push
/// status` lists them; nothing when there are none.
fn overdue_section(status: &crate::push::Status) -> String {
    if status.overdue.is_empty() {
        return String::new();
    }
    let rows: String = status
        .overdue
        .iter()
        .map(|job| {
            format!(
                r#"<tr><td data-label="Device">{}</td><td data-label="Platform">{}</td><td data-label="Job">{} {}</td><td data-label="Waiting">{}</td></tr>"#,
                escape(&job.device_id),
                escape(&job.platform),
                escape(&job.kind),
                escape(&job.identifier),
                escape(&crate::push::overdue_note(job)),
            )
        })
        .collect();
    let more = match status.overdue_not_listed() {
        0 => String::new(),
        n => format!(r#"<p class="muted">… and {} more.</p>"#, grouped(n)),
    };
    format!(
        r#"<section class="card" id="push-overdue"><h2>Answers overdue</h2>
<p class="muted">Sent to the MDM, but the device has not answered in time: it is woken with a push, and an install is sent again once.</p>
<table class="grid cards"><thead><tr><th scope="col">Device</th><th scope="col">Platform</th><th scope="col">Job</th><th scope="col">Waiting</th></tr></thead><tbody>{rows}</tbody></table>{more}</section>
"#
    )
}

/// `GET /imports`: past imports, newest first, each with its results file.
pub async fn imports(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let session = match signed_in(&state, &headers).await {
        Ok(session) => session,
        Err(redirect) => return redirect,
    };
    let before = query
        .get("after")
        .and_then(|a| a.parse::<uuid::Uuid>().ok());
    let imports = match state.store.list_imports(before, IMPORTS_PAGE).await {
        Ok(imports) => imports,
        Err(e) => return crate::http::error::ApiError::from(e).into_response(),
    };
    let mut rows = String::new();
    for i in &imports {
        rows.push_str(&format!(
            r#"<tr><td>{when}</td><td>{kind}</td><td>{source}<br><small class="hash" title="SHA-256 of the file">{sha}</small></td><td>{actor}</td><td class="num">{rows}</td><td class="num">{added}</td><td class="num">{updated}</td><td class="num">{unchanged}</td><td class="num">{discarded}</td><td class="num">{rejected}</td><td class="num">{duplicates}</td><td><a href="/api/imports/{id}/results.csv" download>Results CSV</a></td></tr>"#,
            when = escape(&crate::model::when(i.created_at)),
            kind = escape(&i.kind),
            source = escape(&i.source),
            sha = escape(&i.file_sha256),
            actor = escape(&i.actor),
            rows = i.rows,
            added = i.added,
            updated = i.updated,
            unchanged = i.unchanged,
            discarded = i.discarded,
            rejected = i.rejected,
            duplicates = i.duplicates,
            id = i.id,
        ));
    }
    if imports.is_empty() {
        rows.push_str(r#"<tr><td colspan="12" class="empty">No imports yet: <a href="/import">import a CSV file</a>.</td></tr>"#);
    }
    let next = match imports.last() {
        Some(last) if imports.len() == usize::try_from(IMPORTS_PAGE).unwrap_or(usize::MAX) => {
            format!(
                r#"<a class="button secondary" href="/imports?after={}">Older imports</a>"#,
                last.id
            )
        }
        _ => String::new(),
    };
    let main = format!(
        r#"<div class="toolbar"><h1>Imports</h1><a class="button primary" href="/import">Import from CSV</a></div>
<div class="scroll" tabindex="0" role="region" aria-label="Past imports"><table class="grid" id="imports"><thead><tr><th scope="col">When (UTC)</th><th scope="col">Type</th><th scope="col">File</th><th scope="col">By</th><th scope="col" class="num">Lines</th><th scope="col" class="num">Added</th><th scope="col" class="num">Updated</th><th scope="col" class="num">Unchanged</th><th scope="col" class="num">Discarded</th><th scope="col" class="num">Rejected</th><th scope="col" class="num">Duplicate</th><th scope="col">Every line's outcome</th></tr></thead>
<tbody>{rows}</tbody></table></div>
<nav class="pager" aria-label="Pages of imports">{next}</nav>"#
    );
    layout("Imports", Some(&session), &main).into_response()
}

/// `POST /push/retry`: every failed job back in the queue, then the push page again.
pub async fn push_retry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(refused) = form_session(&state, &headers, &form).await {
        return refused;
    }
    match crate::http::api::push::retry_failed(&state).await {
        Ok(n) => Redirect::to(&format!("/push?retried={n}")).into_response(),
        Err(e) => crate::http::error::ApiError::from(e).into_response(),
    }
}

/// `POST /users/{email}/accounts/remove`: removes one account (fields `type` and `address`)
/// through the API's removal, then shows the user again.
pub async fn remove_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(email): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let session = match form_session(&state, &headers, &form).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let address = form.get("address").map_or("", String::as_str);
    let kind: AccountKind = match form.get("type").map_or("", String::as_str).parse() {
        Ok(kind) => kind,
        Err(e) => {
            return crate::http::error::ApiError::parameter("type", e).into_response();
        }
    };
    let actor = format!("admin:{}", session.admin);
    match crate::http::api::directory::remove_account(&state, &actor, &email, kind, address).await {
        Ok(Some(_)) => Redirect::to(&format!(
            "/users/{}?removed={}",
            url_escape(&email),
            url_escape(address)
        ))
        .into_response(),
        Ok(None) => {
            let main = format!(
                r#"<p class="alert error" role="alert">{} has no {kind} account {}; nothing was removed.</p><p><a href="/users/{}">Back to the user</a></p>"#,
                escape(&email),
                escape(address),
                url_escape(&email),
            );
            (
                StatusCode::NOT_FOUND,
                layout("Not found", Some(&session), &main),
            )
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_push_page_lists_overdue_answers_escaped_and_counts_the_rest() {
        let job = crate::store::OverdueJob {
            device_id: "<MAC-A>".to_owned(),
            platform: "macos".to_owned(),
            kind: "install".to_owned(),
            identifier: "com.example.mail".to_owned(),
            sent_at: 0,
            waiting_seconds: 7200,
            nudges: 2,
            resent: false,
        };
        let mut status = crate::push::Status {
            jobs: crate::store::StateCounts {
                sent: 1200,
                overdue: 1,
                ..Default::default()
            },
            devices: Vec::new(),
            overdue: Vec::new(),
        };
        assert_eq!(overdue_section(&status), "", "nothing listed, no section");
        status.overdue.push(job);
        let one = overdue_section(&status);
        assert!(
            one.contains("<td data-label=\"Device\">&lt;MAC-A&gt;</td>"),
            "{one}"
        );
        assert!(one.contains("install com.example.mail"), "{one}");
        assert!(one.contains("waiting 2 h, nudged 2 times"), "{one}");
        assert!(!one.contains("more"), "{one}");
        status.jobs.overdue = 1101;
        assert!(overdue_section(&status).contains("… and 1,100 more."));
    }

    #[test]
    fn counts_read_with_their_thousands_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(200_000), "200,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(-1000), "-1,000");
    }
}
