//! `GET /api/push/jobs` and `POST /api/push/retry`: the push queue as the admin sees it, the
//! same library calls as `mdm-mail push status` and `push retry`; and the reconcile every
//! change made through the API triggers.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::Params;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::push::{self, PushError};

/// Devices per page of `GET /api/push/jobs` unless `limit` says otherwise.
const DEVICES_PAGE: i64 = 50;

impl From<PushError> for ApiError {
    fn from(e: PushError) -> ApiError {
        ApiError::internal("push", &e)
    }
}

/// Reconciles after a change committed through the API and says what was queued, for the
/// answer. A failure is reported, not raised: the change itself is committed, and the
/// start-up reconcile or `mdm-mail push sync` catches up.
pub async fn after_change(state: &AppState) -> Value {
    let Some(pusher) = &state.pusher else {
        return json!({ "error": "push is off: the profile definitions did not load when the server started" });
    };
    match pusher.after_change().await {
        Ok(report) => json!({
            "installs": report.installs,
            "removals": report.removals,
            "replacements": report.replacements,
            "batch": report.batch,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "push: cannot reconcile after a change");
            json!({ "error": format!("nothing was queued: {e}") })
        }
    }
}

/// `GET /api/push/jobs`: jobs per state, and a page of devices with theirs; with `batch`,
/// only the jobs one change queued.
pub async fn jobs(State(state): State<AppState>, params: Params) -> Result<Json<Value>, ApiError> {
    let limit = params.limit(DEVICES_PAGE, super::PAGE_LIMIT_MAX)?;
    let after = params.get("after");
    let status = match params.parse::<uuid::Uuid>("batch")? {
        Some(batch) => push::batch_status(&state.store, batch, after, limit).await?,
        None => push::status(&state.store, after, limit).await?,
    };
    let next = (status.devices.len() as i64 == limit)
        .then(|| status.devices.last().map(|d| d.device_id.clone()))
        .flatten();
    let outstanding = status.jobs.queued + status.jobs.sending;
    Ok(Json(json!({
        "jobs": status.jobs,
        "done": outstanding == 0,
        "worker": state.pusher.is_some(),
        "devices": status.devices,
        "overdue": status.overdue,
        "next": next,
    })))
}

/// Puts every failed job back in the queue, waking this server's worker; returns how many.
/// The API's and the wizard's retry.
pub async fn retry_failed(state: &AppState) -> Result<u64, PushError> {
    match &state.pusher {
        Some(pusher) => pusher.retry_failed().await,
        None => push::retry_failed(&state.store).await,
    }
}

/// `POST /api/push/retry`: every failed job back in the queue.
pub async fn retry(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let requeued = retry_failed(&state).await?;
    Ok(Json(json!({ "requeued": requeued })))
}
