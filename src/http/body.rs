//! Request bodies under the configured upload limit, and uploaded files out of multipart
//! forms. Over the limit, the rest of the body is still read (and thrown away, up to a bound)
//! before answering 413, so the client gets the message rather than a reset connection
//! while it is still sending.

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;

use super::error::ApiError;

/// How far past the limit a body is drained before the connection is given up on.
const DRAIN_FACTOR: u64 = 4;

/// Reads `body` whole if it is at most `limit` bytes, else answers 413.
pub async fn read_limited(body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let (data, seen) = read_up_to(body, limit, limit.saturating_mul(DRAIN_FACTOR)).await?;
    if seen > limit {
        return Err(ApiError::too_large(limit));
    }
    Ok(Bytes::from(data))
}

/// Reads `body` and keeps none of it, for a request refused without its body being
/// needed: the client, still sending, then gets the answer rather than a reset connection.
/// At most `limit` times [`DRAIN_FACTOR`] bytes are read.
pub async fn discard(body: Body, limit: u64) -> Result<(), ApiError> {
    read_up_to(body, 0, limit.saturating_mul(DRAIN_FACTOR)).await?;
    Ok(())
}

/// Reads `body` until its end or `drain` bytes, keeping the first `keep` if it is no
/// longer; the bytes kept and how many were read.
async fn read_up_to(mut body: Body, keep: u64, drain: u64) -> Result<(Vec<u8>, u64), ApiError> {
    // Sized from Content-Length where the client sent one: a buffer grown by doubling held
    // half as much again as the body while it was copied.
    let declared = body.size_hint().exact().unwrap_or(0).min(keep);
    let mut data = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    let mut seen: u64 = 0;
    loop {
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "bad_body",
                format!("the request body could not be read: {e}"),
            )
        })?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        seen += chunk.len() as u64;
        if seen > drain {
            break;
        }
        if seen <= keep {
            data.extend_from_slice(&chunk);
        }
    }
    Ok((data, seen))
}

/// An uploaded file: its bytes and the name the client gave it.
pub struct Upload {
    /// The file's content.
    pub bytes: Bytes,
    /// The file name, or a description when the body was the file itself.
    pub name: String,
}

/// The file of a request: the `file` field of a multipart form, or else the raw body. The
/// router disables axum's own body limit (`DefaultBodyLimit::disable`), which the multipart
/// parser would otherwise apply on top of ours.
pub async fn upload(request: Request, limit: u64) -> Result<Upload, ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = read_limited(body, limit).await?;
    if !is_multipart(&parts.headers) {
        return Ok(Upload {
            bytes,
            name: "request body".to_owned(),
        });
    }
    let request = Request::from_parts(parts, Body::from(bytes));
    let bad = |why: String| ApiError::parameter("file", why);
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| bad(e.body_text()))?;
    while let Some(field) = form.next_field().await.map_err(|e| bad(e.body_text()))? {
        if field.name() == Some("file") {
            let name = field.file_name().unwrap_or("upload.csv").to_owned();
            let bytes = field.bytes().await.map_err(|e| bad(e.body_text()))?;
            return Ok(Upload { bytes, name });
        }
    }
    Err(bad(
        "the multipart form has no field called \"file\"".to_owned()
    ))
}

/// A JSON body of type `T`, at most `limit` bytes, sent as JSON (`application/json` or a
/// `+json` type): anything else is answered 415 before it is read, so a form or a text
/// body is never taken for JSON by accident.
pub async fn json<T: serde::de::DeserializeOwned>(
    request: Request,
    limit: u64,
) -> Result<T, ApiError> {
    if !is_json(request.headers()) {
        let sent = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map_or_else(
                || "no Content-Type".to_owned(),
                |v| format!("Content-Type {v:?}"),
            );
        return Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "this route takes a JSON body, sent with Content-Type: application/json; the request had {sent}"
            ),
        ));
    }
    let bytes = read_limited(request.into_body(), limit).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the request body is not the JSON expected: {e}"),
        )
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| {
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        })
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}
