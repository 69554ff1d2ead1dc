//! `GET /api/users/{email}/profile`: a user's rendered profile, the same library call as
//! `mdm-mail profile`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use super::Params;
use crate::accounts::AccountsError;
use crate::http::error::ApiError;
use crate::http::{AppState, attachment};
use crate::model::{Platform, normalize_email};
use crate::profile::files::safe_name;
use crate::profile::{ProfileError, Profiles, RenderOptions, Rendered};
use crate::secrets::SecretsError;

/// Everything rendering needs, read from the settings now, so edited definitions show at
/// once.
pub fn profiles(state: &AppState) -> Result<Profiles, ApiError> {
    state
        .settings
        .profiles()
        .map_err(|e| ApiError::internal("profile_config", &e))
}

/// A user's profile for `platform`, passwords redacted when `redact`.
pub async fn render(
    state: &AppState,
    email: &str,
    platform: Platform,
    redact: bool,
) -> Result<Rendered, ApiError> {
    let options = RenderOptions {
        redact_secrets: redact,
        ..RenderOptions::default()
    };
    profiles(state)?
        .for_user(&state.store, email, platform, &options)
        .await
        .map_err(|e| match e {
            ProfileError::Accounts(AccountsError::NoUser(_)) => ApiError::not_found(e.to_string()),
            ProfileError::Render(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_profile",
                e.to_string(),
            ),
            ProfileError::Accounts(AccountsError::Secrets(SecretsError::Store(_))) => {
                ApiError::internal("storage", &e)
            }
            ProfileError::Accounts(AccountsError::Secrets(_)) => ApiError::secret_key(&e),
            other => ApiError::internal("profile", &other),
        })
}

/// `GET /api/users/{email}/profile?platform=…`.
pub async fn get(
    State(state): State<AppState>,
    Path(email): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let platform: Platform = params.require("platform")?;
    let redact = params.parse::<bool>("redact")?.unwrap_or(false);
    let rendered = render(&state, &email, platform, redact).await?;
    // Named as `profile --all` names its files.
    let file = format!(
        "{}-{}.{}",
        safe_name(&normalize_email(&email)),
        platform.as_str(),
        rendered.extension
    );
    Ok((
        [
            (CONTENT_TYPE, rendered.content_type.to_owned()),
            (CONTENT_DISPOSITION, attachment(&file)),
        ],
        rendered.body,
    )
        .into_response())
}
