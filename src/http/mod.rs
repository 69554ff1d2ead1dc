//! The HTTP server: a thin shell over the library, as the CLI is. The JSON API is under
//! `/api` ([`api`]); the web wizard is at `/` ([`wizard`]).

pub mod api;
mod body;
pub mod error;
pub mod session;
pub mod wizard;

mod webhook;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::config::Settings;
use crate::push::Pusher;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Resolved settings.
    pub settings: Arc<Settings>,
    /// Reconciles after imports and new devices and wakes the worker; `None` while the
    /// profile definitions do not load, so push waits for them.
    pub pusher: Option<Pusher>,
}

/// The whole application's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(api::router(state.clone()))
        .merge(wizard::router())
        .merge(webhook::routes())
        .layer(axum::middleware::map_response(security_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// A `Content-Disposition` that downloads the answer as `file_name` (RFC 6266): the name in
/// `filename*` as UTF-8 (RFC 8187) when it is not plain ASCII, with an ASCII `filename`
/// beside it for clients that read only that, every other character made `_`. A name made
/// by [`safe_name`](crate::profile::files::safe_name) keeps its escapes only in `filename*`.
pub(crate) fn attachment(file_name: &str) -> String {
    let fallback: String = file_name
        .chars()
        .map(|c| match c {
            // `%` too: some browsers decode escapes in `filename`.
            ' '..='~' if !matches!(c, '"' | '\\' | '%') => c,
            _ => '_',
        })
        .collect();
    if fallback == file_name {
        return format!("attachment; filename=\"{file_name}\"");
    }
    let mut encoded = String::with_capacity(file_name.len() * 3);
    for byte in file_name.bytes() {
        // RFC 8187's attr-char; every other byte is percent-encoded.
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// What every answer says about how a browser may use it. The wizard's script and styles
/// are files the binary serves, never inline, so the policy allows scripts only from the
/// server itself; no page may be framed (clickjacking), sniffed into another type, or leak
/// its address to another site.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
];

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, axum::http::HeaderValue::from_static(value));
    }
    response
}

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight
/// finish. Each request knows its TCP peer (`ConnectInfo`), which sign-in throttling counts
/// failures by.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Liveness and the store's state; 503 when the database does not answer.
async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.health().await {
        Ok(health) => Json(serde_json::json!({ "status": "ok", "store": health })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "unavailable", "error": e.to_string() })),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::attachment;

    #[test]
    fn an_ascii_file_name_is_given_as_it_is() {
        assert_eq!(
            attachment("email-accounts.csv"),
            "attachment; filename=\"email-accounts.csv\""
        );
    }

    #[test]
    fn a_name_beyond_ascii_or_with_quotes_comes_percent_encoded_beside_an_ascii_one() {
        assert_eq!(
            attachment("zoë \"x\".csv"),
            "attachment; filename=\"zo_ _x_.csv\"; filename*=UTF-8''zo%C3%AB%20%22x%22.csv"
        );
        assert_eq!(
            attachment("a\r\nb"),
            "attachment; filename=\"a__b\"; filename*=UTF-8''a%0D%0Ab"
        );
    }
}
