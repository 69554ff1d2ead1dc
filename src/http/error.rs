//! The one error type of the HTTP layer: a status, a stable machine-readable code, a message
//! for the admin, and optionally the import summary that explains it. Answered as JSON:
//! `{"error": {"code": "...", "message": "..."}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::import::ImportError;
use crate::model::Scope;
use crate::secrets::SecretsError;
use crate::store::StoreError;

/// An error answer of the API.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code clients may branch on (`unauthorized`, `invalid_parameter`, …).
    pub code: &'static str,
    /// What went wrong and what to do, for a person.
    pub message: String,
    /// More structure, such as the summary of an import that was not committed.
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    /// An error with no details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// 401: no valid token or session.
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in, or send an API token as `Authorization: Bearer <token>` (mint one with `mdm-mail token create NAME`)",
        )
    }

    /// 403: a session request without its CSRF token.
    pub fn csrf() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "the request lacks this session's CSRF token; reload the page and try again",
        )
    }

    /// 403: the token (or session) lacks the scope the route needs.
    pub fn insufficient_scope(scope: Scope) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!(
                "this request needs the {scope} scope, which the caller does not have; make a token that has it with `mdm-mail token create NAME --scope read,write,{scope}`{}",
                if scope == Scope::Secrets {
                    " (wizard sessions never receive passwords)"
                } else {
                    ""
                }
            ),
        )
    }

    /// 400: a query or body parameter is unusable.
    pub fn parameter(name: &str, why: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("{name}: {why}"),
        )
    }

    /// 404: nothing at that key.
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    /// 413: the body is over the configured limit.
    pub fn too_large(limit: u64) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload_too_large",
            format!(
                "the upload is larger than the limit of {} MiB (setting upload_limit_mib); split the file or raise the limit",
                limit / (1024 * 1024)
            ),
        )
    }

    /// 500: a failure the client cannot fix; the cause goes to the log, not the answer.
    pub fn internal(code: &'static str, error: &dyn std::error::Error) -> ApiError {
        tracing::error!(error = %error, code, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code,
            format!("the server could not complete the request: {error}"),
        )
    }

    /// A 503 for a secret key that cannot open the store's passwords: the server's
    /// configuration, not the request, is at fault, and the message says what to fix.
    pub fn secret_key(error: &dyn std::error::Error) -> ApiError {
        tracing::error!(error = %error, "the secret key cannot open the store's passwords");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "secret_key",
            error.to_string(),
        )
    }

    /// Adds details.
    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = Some(details);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if let Some(details) = self.details {
            error["details"] = details;
        }
        (self.status, Json(serde_json::json!({ "error": error }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::internal("storage", &e)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::Name { .. } | AuthError::WeakPassword => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", e.to_string())
            }
            AuthError::TokenExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "exists", e.to_string())
            }
            AuthError::Store(_) | AuthError::Hash(_) | AuthError::Stopped => {
                ApiError::internal("auth", &e)
            }
        }
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> ApiError {
        let details = e
            .result()
            .and_then(|r| serde_json::to_value(r.summary()).ok());
        let error = match &e {
            ImportError::OtherType { other, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unreadable_file",
                e.to_string(),
            )
            .with_details(serde_json::json!({ "other_type": other })),
            ImportError::Read(_)
            | ImportError::Header(_)
            | ImportError::Sheet(_)
            | ImportError::NotSpreadsheet { .. }
            | ImportError::MappingWithoutHeader
            | ImportError::Empty => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unreadable_file",
                e.to_string(),
            ),
            ImportError::Strict(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "strict_failed",
                e.to_string(),
            ),
            ImportError::Changed(_) => {
                ApiError::new(StatusCode::CONFLICT, "store_changed", e.to_string())
            }
            ImportError::Key(SecretsError::Store(_)) => ApiError::internal("storage", &e),
            ImportError::Key(SecretsError::Rotated) => {
                ApiError::new(StatusCode::CONFLICT, "key_rotated", e.to_string())
            }
            ImportError::Key(_) => ApiError::secret_key(&e),
            ImportError::Store(_) | ImportError::Sink(_) | ImportError::Stopped => {
                ApiError::internal("storage", &e)
            }
        };
        match details {
            Some(details) => error.with_details(details),
            None => error,
        }
    }
}
