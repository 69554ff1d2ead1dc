//! An in-test MDM server on loopback implementing the NanoMDM and MicroMDM command API
//! contracts: HTTP Basic with the API key (401 with `WWW-Authenticate` otherwise), NanoMDM's
//! `PUT /v1/enqueue/{id}` with a raw command plist answered by an `APIResult`, MicroMDM's
//! `POST /v1/commands` with JSON answered 201. It records every command it stored and can
//! be told to fail (any status) or hang on the next requests. It runs on a thread of its
//! own, so tests may block on the real binary while it answers.
//!
//! The NanoMDM side follows NanoMDM v0.9 (`api/api.go` `EnqueueWithPush`, `api/do.go`,
//! `storage/kv/queue.go`, `push/service/service.go`), modelled here, not copied:
//! - the command is stored first and pushed afterwards, and only when storing worked;
//! - the result always carries `command_uuid` and `request_type` once the command decoded;
//!   a command that does not decode is answered 500 `{"command_error": "decoding command:
//!   …"}` alone;
//! - a CommandUUID already stored is refused before anything is written: 500
//!   `{"command_error": "command already exists: <uuid>", "command_uuid": …}`;
//! - an enrollment id without push data gets `status.<id>.push_error` "push data missing for
//!   id" (the command is stored all the same), and with every id failing the answer is 500;
//! - a push that fails as a whole (no push certificate for the topic) is a top-level
//!   `push_error` and 500, the command stored;
//! - 200 with `status.<id>.push_result` (the APNs id) when all went well.
//!
//! NanoMDM's `/v1/push/{id,id,…}` (`http/api/api.go` `PushToIDsHandler`, any method, the
//! ids split at commas; `api/api.go` `Push`, `push/service/service.go` `Push`) pushes and
//! queues nothing, answering the same `APIResult` without `command_uuid`: per id under
//! `status` a `push_result` or, for an id without push data, `push_error` "push data missing
//! for id"; a push that fails as a whole (no push certificate) a top-level `push_error`. The
//! status is 500 when there is a top-level error or every id failed, 207 when some did, 200
//! otherwise.
//!
//! Device answers are NanoMDM's webhook events (`service/webhook`): `{"topic":
//! "mdm.Connect", "created_at", "acknowledge_event": {"enrollment_id", "udid", "status",
//! "command_uuid", "raw_payload" (base64 of the device's plist)}}` signed with
//! `X-Hmac-Signature` (base64 HMAC-SHA256 of the body).

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post, put};
use axum::{Json, Router};
use base64::Engine;

/// The API key the server accepts.
pub const API_KEY: &str = "test-api-key";

/// How the server answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    /// Store it and push, as NanoMDM does.
    Accept,
    /// Answer this status with a plain body, storing nothing: a proxy in front of the MDM.
    Status(u16),
    /// Never answer, storing nothing.
    Hang,
    /// NanoMDM: store the command, then fail the APNs push (no push certificate).
    PushFails,
    /// NanoMDM: store the command, then never answer (APNs does not answer the push).
    StoreThenHang,
}

/// A command the server accepted.
#[derive(Debug, Clone)]
pub struct Command {
    /// The enrollment id it was addressed to.
    pub enrollment_id: String,
    /// Its CommandUUID.
    pub command_uuid: String,
    /// InstallProfile or RemoveProfile.
    pub request_type: String,
    /// The profile of an InstallProfile.
    pub payload: Option<Vec<u8>>,
    /// The identifier of a RemoveProfile.
    pub identifier: Option<String>,
}

#[derive(Default)]
struct Shared {
    accepted: Mutex<Vec<Command>>,
    script: Mutex<VecDeque<Reply>>,
    requests: AtomicUsize,
    delay_ms: AtomicUsize,
    hooks: Mutex<Vec<(Option<String>, Vec<u8>)>>,
    stored: Mutex<HashSet<String>>,
    unenrolled: Mutex<HashSet<String>>,
    held: Mutex<HashSet<String>>,
    release: tokio::sync::Notify,
    pushed: Mutex<Vec<String>>,
    no_push_certificate: std::sync::atomic::AtomicBool,
}

/// A running fake MDM.
pub struct FakeMdm {
    /// Its base URL.
    pub url: String,
    shared: Arc<Shared>,
}

impl FakeMdm {
    /// Starts a server on a free loopback port.
    pub fn start() -> FakeMdm {
        let shared = Arc::new(Shared::default());
        let state = Arc::clone(&shared);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = Router::new()
                    .route("/v1/enqueue/{id}", put(nanomdm_enqueue))
                    .route("/v1/push/{ids}", any(nanomdm_push))
                    .route("/v1/commands", post(micromdm_command))
                    .route("/hook", post(hook))
                    .with_state(state);
                axum::serve(listener, app).await.unwrap();
            });
        });
        let address = rx.recv().unwrap();
        FakeMdm {
            url: format!("http://{address}"),
            shared,
        }
    }

    /// Answers the next requests as listed, then accepts again.
    pub fn script(&self, replies: &[Reply]) {
        self.shared
            .script
            .lock()
            .unwrap()
            .extend(replies.iter().copied());
    }

    /// Waits this long before answering each request.
    pub fn delay(&self, delay: Duration) {
        self.shared
            .delay_ms
            .store(delay.as_millis() as usize, Ordering::SeqCst);
    }

    /// Makes `enrollment_id` one NanoMDM has no push data for (never enrolled, or gone).
    pub fn unenroll(&self, enrollment_id: &str) {
        self.shared
            .unenrolled
            .lock()
            .unwrap()
            .insert(enrollment_id.to_owned());
    }

    /// Holds the answer to every request for `enrollment_id`, after its command is stored,
    /// until [`FakeMdm::release`].
    pub fn hold(&self, enrollment_id: &str) {
        self.shared
            .held
            .lock()
            .unwrap()
            .insert(enrollment_id.to_owned());
    }

    /// Makes every push fail as NanoMDM's does without a push certificate for the topic
    /// (commands are still stored).
    pub fn remove_push_certificate(&self) {
        self.shared
            .no_push_certificate
            .store(true, Ordering::SeqCst);
    }

    /// The enrollment ids `/v1/push` was asked to push to, in order, one per id asked.
    pub fn pushed(&self) -> Vec<String> {
        self.shared.pushed.lock().unwrap().clone()
    }

    /// Answers the held requests, and holds no more.
    pub fn release(&self) {
        self.shared.held.lock().unwrap().clear();
        self.shared.release.notify_waiters();
    }

    /// The commands stored so far, in order.
    pub fn accepted(&self) -> Vec<Command> {
        self.shared.accepted.lock().unwrap().clone()
    }

    /// The webhook requests received at `/hook`: signature header and body.
    pub fn hooks(&self) -> Vec<(Option<String>, Vec<u8>)> {
        self.shared.hooks.lock().unwrap().clone()
    }

    /// Requests received so far, accepted or not.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

fn authorized(headers: &HeaderMap, user: &str) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{API_KEY}"))
    );
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [("WWW-Authenticate", "Basic realm=\"api\"")],
        "Unauthorized",
    )
        .into_response()
}

/// The next scripted reply, after the configured delay.
async fn next_reply(shared: &Shared) -> Reply {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let delay = shared.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    let reply = shared
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Accept);
    if let Reply::Hang = reply {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    reply
}

async fn nanomdm_enqueue(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers, "nanomdm") {
        return unauthorized();
    }
    let reply = next_reply(&shared).await;
    let command = plist::Value::from_reader_xml(std::io::Cursor::new(&body[..]))
        .ok()
        .and_then(plist::Value::into_dictionary);
    let parsed = command.and_then(|root| {
        let uuid = root.get("CommandUUID")?.as_string()?.to_owned();
        let cmd = root.get("Command")?.as_dictionary()?;
        Some(Command {
            enrollment_id: id.clone(),
            command_uuid: uuid,
            request_type: cmd.get("RequestType")?.as_string()?.to_owned(),
            payload: cmd
                .get("Payload")
                .and_then(|p| p.as_data())
                .map(<[u8]>::to_vec),
            identifier: cmd
                .get("Identifier")
                .and_then(|i| i.as_string())
                .map(str::to_owned),
        })
    });
    let Some(command) = parsed else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({"command_error": "decoding command: invalid command"})),
        )
            .into_response();
    };
    let refused =
        |status: StatusCode, body: serde_json::Value| (status, Json(body)).into_response();
    match reply {
        Reply::Status(code) => {
            return (StatusCode::from_u16(code).unwrap(), "scripted failure").into_response();
        }
        Reply::Hang => unreachable!(),
        Reply::Accept | Reply::PushFails | Reply::StoreThenHang => {}
    }
    let uuid = command.command_uuid.clone();
    let request_type = command.request_type.clone();
    if !shared.stored.lock().unwrap().insert(uuid.clone()) {
        return refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({
                "command_error": format!("command already exists: {uuid}"),
                "command_uuid": uuid,
                "request_type": request_type,
            }),
        );
    }
    shared.accepted.lock().unwrap().push(command);
    if let Reply::StoreThenHang = reply {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    loop {
        let released = shared.release.notified();
        if !shared.held.lock().unwrap().contains(&id) {
            break;
        }
        released.await;
    }
    if shared.unenrolled.lock().unwrap().contains(&id) {
        return refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({
                "status": { id.as_str(): { "push_error": "push data missing for id" } },
                "command_uuid": uuid,
                "request_type": request_type,
            }),
        );
    }
    if let Reply::PushFails = reply {
        return refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({
                "push_error": "retrieving push cert for topic \"com.apple.mgmt.External.test\": \
                     no push certificate found",
                "command_uuid": uuid,
                "request_type": request_type,
            }),
        );
    }
    Json(serde_json::json!({
        "status": { id.as_str(): { "push_result": uuid::Uuid::new_v4().to_string() } },
        "command_uuid": uuid,
        "request_type": request_type,
    }))
    .into_response()
}

async fn nanomdm_push(
    State(shared): State<Arc<Shared>>,
    Path(ids): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers, "nanomdm") {
        return unauthorized();
    }
    let ids: Vec<String> = ids.split(',').map(str::to_owned).collect();
    shared.pushed.lock().unwrap().extend(ids.iter().cloned());
    let unenrolled = shared.unenrolled.lock().unwrap().clone();
    let mut status = serde_json::Map::new();
    let mut failed = 0;
    for id in &ids {
        let result = if unenrolled.contains(id) {
            failed += 1;
            serde_json::json!({ "push_error": "push data missing for id" })
        } else if shared.no_push_certificate.load(Ordering::SeqCst) {
            continue;
        } else {
            serde_json::json!({ "push_result": uuid::Uuid::new_v4().to_string() })
        };
        status.insert(id.clone(), result);
    }
    let mut body = serde_json::json!({});
    if !status.is_empty() {
        body["status"] = serde_json::Value::Object(status);
    }
    let whole = shared.no_push_certificate.load(Ordering::SeqCst) && failed < ids.len();
    if whole {
        body["push_error"] = serde_json::json!(
            "retrieving push cert for topic \"com.apple.mgmt.External.test\": no push certificate found"
        );
    }
    let code = if whole || failed == ids.len() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else if failed > 0 {
        StatusCode::MULTI_STATUS
    } else {
        StatusCode::OK
    };
    (code, Json(body)).into_response()
}

/// The device's answer to `command` as NanoMDM's webhook posts it: `status` Acknowledged,
/// NotNow or Error (with a one-link error chain saying `error`).
pub fn device_answer(command: &Command, status: &str, error: Option<&str>) -> Vec<u8> {
    let mut report = plist::Dictionary::new();
    report.insert("Status".into(), status.into());
    report.insert("CommandUUID".into(), command.command_uuid.clone().into());
    report.insert("UDID".into(), command.enrollment_id.clone().into());
    if let Some(error) = error {
        let mut link = plist::Dictionary::new();
        link.insert("ErrorDomain".into(), "MCProfileErrorDomain".into());
        link.insert("ErrorCode".into(), plist::Value::Integer(1009.into()));
        link.insert("USEnglishDescription".into(), error.into());
        report.insert(
            "ErrorChain".into(),
            plist::Value::Array(vec![plist::Value::Dictionary(link)]),
        );
    }
    let mut raw = Vec::new();
    plist::to_writer_xml(&mut raw, &plist::Value::Dictionary(report)).unwrap();
    serde_json::json!({
        "topic": "mdm.Connect",
        "event_id": uuid::Uuid::new_v4().to_string(),
        "created_at": "2026-12-04T12:00:00Z",
        "acknowledge_event": {
            "enrollment_id": command.enrollment_id,
            "udid": command.enrollment_id,
            "status": status,
            "command_uuid": command.command_uuid,
            "raw_payload": base64::engine::general_purpose::STANDARD.encode(raw),
        }
    })
    .to_string()
    .into_bytes()
}

/// NanoMDM's `X-Hmac-Signature` of `body` under `key`.
pub fn sign(key: &str, body: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn micromdm_command(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Response {
    if !authorized(&headers, "micromdm") {
        return unauthorized();
    }
    let reply = next_reply(&shared).await;
    let text = |key: &str| body.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let (Some(udid), Some(request_type)) = (text("udid"), text("request_type")) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "udid and request_type are required"})),
        )
            .into_response();
    };
    let command_uuid = text("command_uuid").unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    match reply {
        Reply::Accept => {
            let payload = text("payload")
                .map(|p| base64::engine::general_purpose::STANDARD.decode(p).unwrap());
            shared.accepted.lock().unwrap().push(Command {
                enrollment_id: udid,
                command_uuid: command_uuid.clone(),
                request_type: request_type.clone(),
                payload,
                identifier: text("identifier"),
            });
            (
                StatusCode::CREATED,
                Json(serde_json::json!({
                    "payload": {
                        "command_uuid": command_uuid,
                        "command": { "request_type": request_type },
                    }
                })),
            )
                .into_response()
        }
        Reply::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            Json(serde_json::json!({"error": "scripted failure"})),
        )
            .into_response(),
        Reply::Hang => unreachable!(),
        Reply::PushFails | Reply::StoreThenHang => panic!("a NanoMDM reply scripted for MicroMDM"),
    }
}

async fn hook(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get("x-mdm-mail-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    shared
        .hooks
        .lock()
        .unwrap()
        .push((signature, body.to_vec()));
    StatusCode::NO_CONTENT
}
