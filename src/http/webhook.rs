//! `POST /webhooks/nanomdm`: NanoMDM's webhook (`-webhook-url`), signed with the key
//! configured as `MDM_MAIL_NANOMDM_WEBHOOK_KEY` (`-webhook-hmac-key` on NanoMDM's side).
//! Device answers to our commands move push jobs to acknowledged or failed.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::AppState;
use crate::push::events;

/// The webhook's route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/webhooks/nanomdm", post(nanomdm))
}

async fn nanomdm(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(key) = &state.settings.push.nanomdm_webhook_key else {
        return error(
            StatusCode::NOT_FOUND,
            "the NanoMDM webhook is off: set MDM_MAIL_NANOMDM_WEBHOOK_KEY to NanoMDM's \
             -webhook-hmac-key",
        );
    };
    let signature = headers
        .get(events::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    match events::receive(&state.store, key.expose().as_bytes(), &body, signature).await {
        Ok(Ok(matched)) => Json(serde_json::json!({ "matched": matched })).into_response(),
        Ok(Err(e @ events::EventError::Signature)) => {
            error(StatusCode::UNAUTHORIZED, &e.to_string())
        }
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot record a NanoMDM event");
            error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}
