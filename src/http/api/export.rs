//! `GET /api/export`: the same [`Exporter`] as `mdm-mail export`, streamed as the body so a
//! million accounts never sit in memory.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use super::Params;
use crate::export::{ExportError, ExportOptions, ExportType, Exporter, parse_delimiter};
use crate::http::AppState;
use crate::http::error::ApiError;

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> ApiError {
        ApiError::internal("export", &e)
    }
}

/// `GET /api/export?type=email|exchange|mappings[&format=csv|xlsx&delimiter=…&encoding=…]`.
pub async fn get(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let what: ExportType = params.require("type")?;
    let delimiter = params
        .given("delimiter")?
        .map(|d| parse_delimiter(d).map_err(|e| ApiError::parameter("delimiter", e)))
        .transpose()?;
    let defaults = ExportOptions::default();
    let options = ExportOptions {
        format: params.parse("format")?.unwrap_or(defaults.format),
        delimiter: delimiter.unwrap_or(defaults.delimiter),
        encoding: params.parse("encoding")?.unwrap_or(defaults.encoding),
    };
    let mut exporter = match what {
        ExportType::Accounts(kind) => Exporter::accounts(&state.store, kind, options).await?,
        ExportType::Mappings => {
            let profiles = super::profile::profiles(&state)?;
            Exporter::mappings(&state.store, profiles.into(), options).await?
        }
    };
    // The first page is read before answering, so a store that fails at once gets a proper
    // error; a failure later can only cut the download short, which the client sees.
    let first = exporter.next_chunk().await?.unwrap_or_default();
    let (content_type, file_name) = (exporter.content_type(), exporter.file_name());
    let rest = futures_util::stream::try_unfold(exporter, |mut exporter| async move {
        let chunk = exporter.next_chunk().await.inspect_err(|e| {
            tracing::error!(error = %e, "export failed half-way; the download is cut short");
        })?;
        Ok::<_, ExportError>(chunk.map(|chunk| (Bytes::from(chunk), exporter)))
    });
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok(Bytes::from(first)) }),
        rest,
    );
    Ok((
        [
            (CONTENT_TYPE, content_type.to_owned()),
            (CONTENT_DISPOSITION, crate::http::attachment(&file_name)),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
