//! `/api/users` and `/api/devices`: list, add (through the same loaders as the users and
//! devices files), show and remove.

use std::io::Cursor;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{PAGE_LIMIT_MAX, Params};
use crate::accounts::{self, AccountsError};
use crate::http::AppState;
use crate::http::body;
use crate::http::error::ApiError;
use crate::http::session::Actor;
use crate::import::directory::{self, LoadError, LoadReport};
use crate::model::{AccountKind, normalize_email, unstorable_character};

/// Users or devices listed when no limit is given.
const PAGE_DEFAULT: i64 = 50;

/// `GET /api/users`.
pub async fn list_users(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let limit = params.limit(PAGE_DEFAULT, PAGE_LIMIT_MAX)?;
    let after = params.get("after").map(normalize_email);
    let users = match params.get("q") {
        Some(q) => state.store.search_users(q, after.as_deref(), limit).await?,
        None => state.store.list_users(after.as_deref(), limit).await?,
    };
    let next = (users.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| users.last().map(|u| normalize_email(&u.email)))
        .flatten();
    Ok(Json(json!({ "users": users, "next": next })))
}

/// `POST /api/users` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    email: String,
    #[serde(default)]
    display_name: String,
}

/// `POST /api/devices` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDeviceBody {
    user_email: String,
    device_id: String,
    platform: String,
    enrollment_id: String,
    #[serde(default)]
    user_channel_id: Option<String>,
}

/// One record as a CSV file with a header, for the directory loaders.
/// The one CSV record an add is loaded as. A control character is refused here, as the
/// loader refuses it, rather than let the record's trimming or quoting change the value: the
/// API stores exactly what it was given, or says why not.
fn one_record(header: &[&str], cells: &[&str], code: &'static str) -> Result<Vec<u8>, ApiError> {
    for (field, cell) in header.iter().zip(cells) {
        if let Some(reason) = unstorable_character(cell) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code,
                format!("{field}: {reason}"),
            ));
        }
    }
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    let fail = |e: ::csv::Error| ApiError::internal("csv", &e);
    writer.write_record(header).map_err(fail)?;
    writer
        .write_record(cells.iter().map(|c| crate::csv::neutralize(c).into_owned()))
        .map_err(fail)?;
    writer
        .into_inner()
        .map_err(|e| ApiError::internal("csv", e.error()))
}

/// The answer to an add: 201, or 422 naming the field and the reason.
fn added(report: &LoadReport, key: (&str, &str), code: &'static str) -> Result<Value, ApiError> {
    if let Some(e) = report.rejected.first() {
        let message = match e.field {
            Some(field) => format!("{field}: {}", e.message),
            None => e.message.clone(),
        };
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            message,
        ));
    }
    Ok(json!({ key.0: key.1, "added": report.added == 1 }))
}

fn load_error(e: LoadError) -> ApiError {
    match e {
        LoadError::Store(e) => ApiError::from(e),
        other => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            other.to_string(),
        ),
    }
}

/// `POST /api/users`.
pub async fn add_user(
    State(state): State<AppState>,
    axum::Extension(Actor(actor)): axum::Extension<Actor>,
    request: Request,
) -> Result<Response, ApiError> {
    let user: NewUserBody = body::json(request, state.settings.upload_limit).await?;
    let csv = one_record(
        &["email", "display_name"],
        &[&user.email, &user.display_name],
        "invalid_user",
    )?;
    let report = directory::load_users(&state.store, Cursor::new(csv), &actor, "api")
        .await
        .map_err(load_error)?;
    let user = added(&report, ("email", user.email.trim()), "invalid_user")?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// `GET /api/users/{email}`.
pub async fn get_user(
    State(state): State<AppState>,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let norm = normalize_email(&email);
    let (user, accounts) = state
        .store
        .user_with_accounts(&norm)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user with email {email}")))?;
    let devices = state.store.devices_of_user(&norm).await?;
    // Passwords never leave the store through the API: only whether one is set.
    let accounts: Vec<Value> = accounts
        .into_iter()
        .map(|a| {
            json!({ "type": a.kind, "address": a.address, "display_name": a.display_name,
                "username": a.username, "domain": a.domain, "outgoing_username": a.outgoing_username,
                "has_password": a.password.is_some(),
                "has_outgoing_password": a.outgoing_password.is_some() })
        })
        .collect();
    Ok(Json(json!({
        "email": user.email, "display_name": user.display_name,
        "accounts": accounts, "devices": devices,
    })))
}

/// `DELETE /api/users/{email}`.
pub async fn remove_user(
    State(state): State<AppState>,
    axum::Extension(Actor(actor)): axum::Extension<Actor>,
    Path(email): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state
        .store
        .delete_user(&normalize_email(&email), &actor)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no user with email {email}")))
    }
}

/// Removes one account of a user and reconciles push: the API's and the wizard's removal.
/// Answers what push queued, or `None` when the user has no such account.
pub async fn remove_account(
    state: &AppState,
    actor: &str,
    email: &str,
    kind: AccountKind,
    address: &str,
) -> Result<Option<Value>, ApiError> {
    let removed = accounts::delete(&state.store, actor, email, kind, address)
        .await
        .map_err(|e| match e {
            AccountsError::Store(e) => ApiError::from(e),
            other => ApiError::internal("accounts", &other),
        })?;
    if !removed {
        return Ok(None);
    }
    Ok(Some(super::push::after_change(state).await))
}

/// `DELETE /api/users/{email}/accounts/{type}/{address}`.
pub async fn delete_account(
    State(state): State<AppState>,
    axum::Extension(Actor(actor)): axum::Extension<Actor>,
    Path((email, kind, address)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let kind: AccountKind = kind.parse().map_err(|e| ApiError::parameter("type", e))?;
    match remove_account(&state, &actor, &email, kind, &address).await? {
        Some(push) => Ok(Json(json!({
            "user_email": email.trim(), "type": kind, "address": address.trim(), "push": push,
        }))),
        None => Err(ApiError::not_found(format!(
            "{} has no {kind} account {}",
            email.trim(),
            address.trim()
        ))),
    }
}

/// `GET /api/devices`.
pub async fn list_devices(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let limit = params.limit(PAGE_DEFAULT, PAGE_LIMIT_MAX)?;
    let devices = state.store.list_devices(params.get("after"), limit).await?;
    let next = (devices.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| devices.last().map(|d| d.device_id.clone()))
        .flatten();
    Ok(Json(json!({ "devices": devices, "next": next })))
}

/// `POST /api/devices`.
pub async fn add_device(
    State(state): State<AppState>,
    axum::Extension(Actor(actor)): axum::Extension<Actor>,
    request: Request,
) -> Result<Response, ApiError> {
    let device: NewDeviceBody = body::json(request, state.settings.upload_limit).await?;
    let csv = one_record(
        &[
            "user_email",
            "device_id",
            "platform",
            "enrollment_id",
            "user_channel_id",
        ],
        &[
            &device.user_email,
            &device.device_id,
            &device.platform,
            &device.enrollment_id,
            device.user_channel_id.as_deref().unwrap_or(""),
        ],
        "invalid_device",
    )?;
    let report = directory::load_devices(&state.store, Cursor::new(csv), &actor, "api")
        .await
        .map_err(load_error)?;
    let mut added = added(
        &report,
        ("device_id", device.device_id.trim()),
        "invalid_device",
    )?;
    added["push"] = super::push::after_change(&state).await;
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

/// `DELETE /api/devices/{device_id}`.
pub async fn remove_device(
    State(state): State<AppState>,
    axum::Extension(Actor(actor)): axum::Extension<Actor>,
    Path(device_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.store.delete_device(&device_id, &actor).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no device with id {device_id:?}"
        )))
    }
}
