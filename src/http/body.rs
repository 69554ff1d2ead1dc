//! Request bodies under the configured upload limit, and uploaded files out of multipart
//! forms. Over the limit, the rest of the body is still read (and thrown away, up to a bound)
//! before answering 413, so the client gets the message rather than a reset connection
//! while it is still sending.

use std::io::{self, Read};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use tokio::io::AsyncWriteExt;

use super::error::ApiError;
use crate::spool;

/// How far past the limit a body is drained before the connection is given up on.
const DRAIN_FACTOR: u64 = 4;

/// Reads `body` whole if it is at most `limit` bytes, else answers 413.
pub async fn read_limited(body: Body, limit: u64) -> Result<Bytes, ApiError> {
    // Sized from Content-Length where the client sent one: a buffer grown by doubling held
    // half as much again as the body while it was copied.
    let declared = body.size_hint().exact().unwrap_or(0).min(limit);
    let mut data = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    let seen = read_up_to(body, &mut data, limit, limit.saturating_mul(DRAIN_FACTOR)).await?;
    if seen > limit {
        return Err(ApiError::too_large(limit));
    }
    Ok(Bytes::from(data))
}

/// Reads `body` and keeps none of it, for a request refused without its body being
/// needed: the client, still sending, then gets the answer rather than a reset connection.
/// At most `limit` times [`DRAIN_FACTOR`] bytes are read.
pub async fn discard(body: Body, limit: u64) -> Result<(), ApiError> {
    read_up_to(body, &mut Vec::new(), 0, limit.saturating_mul(DRAIN_FACTOR)).await?;
    Ok(())
}

/// Where the bytes of a body that are kept go.
trait Keep {
    async fn keep(&mut self, chunk: &[u8]) -> Result<(), ApiError>;
}

impl Keep for Vec<u8> {
    async fn keep(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        self.extend_from_slice(chunk);
        Ok(())
    }
}

/// A temporary file that an upload is written to as it arrives (see [`crate::spool`]).
struct Spool {
    file: tokio::fs::File,
    cipher: spool::Cipher,
}

impl Spool {
    async fn new() -> Result<Spool, ApiError> {
        let (file, cipher) = tokio::task::spawn_blocking(spool::create)
            .await
            .map_err(|e| ApiError::internal("upload", &e))?
            .map_err(spool_failed)?;
        Ok(Spool {
            file: tokio::fs::File::from_std(file),
            cipher,
        })
    }

    /// The file, written out and ready to be read from its start.
    async fn into_reader(self) -> Result<spool::Reader, ApiError> {
        let mut file = self.file;
        file.flush().await.map_err(spool_failed)?;
        let file = file.into_std().await;
        self.cipher.reader(file).map_err(spool_failed)
    }
}

impl Keep for Spool {
    async fn keep(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        let mut sealed = chunk.to_vec();
        self.cipher.encrypt(&mut sealed).map_err(spool_failed)?;
        self.file.write_all(&sealed).await.map_err(spool_failed)
    }
}

fn spool_failed(e: io::Error) -> ApiError {
    ApiError::internal("upload", &SpoolError(e))
}

/// A temporary file for an upload could not be made or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the upload to a temporary file: {0}")]
struct SpoolError(#[source] io::Error);

/// Reads `body` until its end or `drain` bytes, handing the first `keep` to `kept` if it
/// is no longer; how many bytes were read.
async fn read_up_to(
    mut body: Body,
    kept: &mut impl Keep,
    keep: u64,
    drain: u64,
) -> Result<u64, ApiError> {
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
            kept.keep(&chunk).await?;
        }
    }
    Ok(seen)
}

/// An uploaded file, in a temporary file deleted when it is dropped: a request holds no
/// more of an upload in memory than the chunk being written.
pub struct Upload {
    /// The file's content, read from its start.
    pub file: spool::Reader,
    /// Its length in bytes.
    pub len: u64,
    /// The file name, or a description when the body was the file itself.
    pub name: String,
}

/// The file of a request: the `file` field of a multipart form, or else the raw body. The
/// router disables axum's own body limit (`DefaultBodyLimit::disable`), which the multipart
/// parser would otherwise apply on top of ours.
pub async fn upload(request: Request, limit: u64) -> Result<Upload, ApiError> {
    let (parts, body) = request.into_parts();
    let mut spooled = Spool::new().await?;
    let len = read_up_to(
        body,
        &mut spooled,
        limit,
        limit.saturating_mul(DRAIN_FACTOR),
    )
    .await?;
    if len > limit {
        return Err(ApiError::too_large(limit));
    }
    let spooled = spooled.into_reader().await?;
    if !is_multipart(&parts.headers) {
        return Ok(Upload {
            file: spooled,
            len,
            name: "request body".to_owned(),
        });
    }
    // The form is parsed from its spool, and the file field spooled on its own.
    let request = Request::from_parts(parts, Body::from_stream(chunks(spooled)));
    let bad = |why: String| ApiError::parameter("file", why);
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| bad(e.body_text()))?;
    while let Some(mut field) = form.next_field().await.map_err(|e| bad(e.body_text()))? {
        if field.name() == Some("file") {
            let name = field.file_name().unwrap_or("upload.csv").to_owned();
            let mut file = Spool::new().await?;
            let mut len = 0;
            while let Some(chunk) = field.chunk().await.map_err(|e| bad(e.body_text()))? {
                len += chunk.len() as u64;
                file.keep(&chunk).await?;
            }
            let file = file.into_reader().await?;
            return Ok(Upload { file, len, name });
        }
    }
    Err(bad(
        "the multipart form has no field called \"file\"".to_owned()
    ))
}

/// The bytes of `file`, a chunk at a time, each read on a blocking thread.
fn chunks(file: spool::Reader) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send {
    const CHUNK: usize = 64 * 1024;
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let read = tokio::task::spawn_blocking(move || {
            let mut chunk = vec![0; CHUNK];
            let n = file.read(&mut chunk)?;
            chunk.truncate(n);
            Ok::<_, io::Error>((chunk, file))
        })
        .await
        .map_err(io::Error::other)
        .and_then(|read| read);
        match read {
            Ok((chunk, _)) if chunk.is_empty() => None,
            Ok((chunk, file)) => Some((Ok(Bytes::from(chunk)), Some(file))),
            // Nothing is read after an error.
            Err(e) => Some((Err(e), None)),
        }
    })
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
