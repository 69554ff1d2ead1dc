//! `POST /webhooks/nanomdm`: NanoMDM's webhook (`-webhook-url`), signed with the key
//! configured as `MDM_MAIL_NANOMDM_WEBHOOK_KEY` (`-webhook-hmac-key` on NanoMDM's side).
//! Device answers to our commands move push jobs to acknowledged or failed, once: a replayed
//! event is answered `{"matched": true, "changed": false}` and changes nothing. An event
//! without a signature is refused without its body being kept; the body is held to the API's
//! upload limit (at most 16 MiB), and errors have the API's shape.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use super::AppState;
use super::body::{discard, read_limited};
use super::error::ApiError;
use crate::push::events;

/// The largest event read, below the upload limit when that is larger: an event carries
/// one device's answer to one command, a few KiB for ours, a few MiB for the largest
/// answers (an app list) of commands other tools sent.
const EVENT_LIMIT: u64 = 16 << 20;

/// The webhook's route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/webhooks/nanomdm", post(nanomdm))
}

async fn nanomdm(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<events::Receipt>, ApiError> {
    let Some(key) = &state.settings.push.nanomdm_webhook_key else {
        return Err(ApiError::not_found(
            "the NanoMDM webhook is off: set MDM_MAIL_NANOMDM_WEBHOOK_KEY to NanoMDM's \
             -webhook-hmac-key",
        ));
    };
    let limit = state.settings.upload_limit.min(EVENT_LIMIT);
    // Without a signature nothing can be verified, so the body is not kept: anyone can
    // reach this route, and keeping it would let them make the server hold a body of the
    // limit for nothing.
    let Some(signature) = headers
        .get(events::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
    else {
        discard(body, limit).await?;
        return Err(unsigned());
    };
    let body = read_limited(body, limit).await?;
    match events::receive(
        &state.store,
        key.expose().as_bytes(),
        &body,
        Some(signature),
    )
    .await
    {
        Ok(Ok(receipt)) => Ok(Json(receipt)),
        Ok(Err(events::EventError::Signature)) => Err(unsigned()),
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_event",
            e.to_string(),
        )),
        Err(e) => {
            tracing::warn!(error = %e, "cannot record a NanoMDM event");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage",
                e.to_string(),
            ))
        }
    }
}

/// The answer to an event whose signature is missing or wrong.
fn unsigned() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "signature",
        events::EventError::Signature.to_string(),
    )
}
