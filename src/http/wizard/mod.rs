//! The web wizard at `/`: sign-in, the Users view, the import wizard and per-user profile
//! previews. Pages are rendered here as HTML strings (every value through [`escape`]); the
//! import steps run in a little vanilla JavaScript that calls the same `/api` routes as any
//! client, with the session cookie and its CSRF token. Styles and script are compiled into
//! the binary and served from `/assets/`: nothing is fetched from elsewhere.

mod device_push;
mod pages;

use axum::Router;
use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::AppState;
use super::session::{COOKIE_NAME, current_session};
use crate::auth::{self, Session};
use crate::import::schema;
use crate::model::AccountKind;

const CSS: &str = include_str!("wizard.css");
const JS: &str = include_str!("wizard.js");
/// The cookie that carries the sign-in form's CSRF token (double submit: no session yet).
const LOGIN_COOKIE: &str = "mdm_mail_login";

/// The wizard's pages and assets.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::users))
        .route("/sign-in", get(pages::sign_in_form).post(pages::sign_in))
        .route("/sign-out", post(pages::sign_out))
        .route("/import", get(pages::import))
        .route("/users/{email}", get(pages::user))
        .route(
            "/users/{email}/accounts/remove",
            post(pages::remove_account),
        )
        .route("/imports", get(pages::imports))
        .route("/push", get(pages::push))
        .route("/push/retry", post(pages::push_retry))
        .route("/templates/{file}", get(template))
        .route(
            "/assets/wizard.css",
            get(|| asset("text/css; charset=utf-8", CSS)),
        )
        .route(
            "/assets/wizard.js",
            get(|| asset("text/javascript; charset=utf-8", JS)),
        )
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response()
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for a URL path segment or query value.
pub fn url_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The signed-in session, or a redirect to the sign-in page.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    match current_session(state, headers).await {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(Redirect::to("/sign-in").into_response()),
        Err(e) => Err(e.into_response()),
    }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, and Secure when the request came over
/// TLS (as a TLS-terminating proxy reports with `X-Forwarded-Proto`).
fn cookie(headers: &HeaderMap, name: &str, value: &str, max_age_s: i64) -> String {
    let tls = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let secure = if tls { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
}

/// `/templates/email.csv` and `/templates/exchange.csv`: the header row of each file type in
/// the expected column order, for admins to fill in.
async fn template(Path(file): Path<String>) -> Response {
    let kind = match file.as_str() {
        "email.csv" => AccountKind::Email,
        "exchange.csv" => AccountKind::Exchange,
        _ => return (StatusCode::NOT_FOUND, "no such template").into_response(),
    };
    let header: Vec<&str> = schema::columns(kind).iter().map(|c| c.name).collect();
    (
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                CONTENT_DISPOSITION,
                crate::http::attachment(&format!("{}-accounts-template.csv", kind.as_str())),
            ),
        ],
        format!("{}\r\n", header.join(",")),
    )
        .into_response()
}

/// Ends a session server-side and tells the browser to forget it.
async fn end_session(state: &AppState, headers: &HeaderMap) -> Result<String, auth::AuthError> {
    if let Some(token) = super::session::session_cookie(headers) {
        auth::sign_out(&state.store, token).await?;
    }
    Ok(cookie(headers, COOKIE_NAME, "", 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped() {
        assert_eq!(
            escape(r#"<a href="x">O'Neil & co</a>"#),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Neil &amp; co&lt;/a&gt;"
        );
    }

    #[test]
    fn url_values_are_percent_encoded() {
        assert_eq!(url_escape("a b/c@d.e?&"), "a%20b%2Fc@d.e%3F%26");
        assert_eq!(url_escape("é"), "%C3%A9");
    }
}
