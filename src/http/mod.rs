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
