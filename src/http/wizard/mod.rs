//! The web wizard.

use axum::Router;

use super::AppState;

/// The wizard's pages and assets.
pub fn router() -> Router<AppState> {
    Router::new()
}
