//! NanoMDM: `PUT /v1/enqueue/{id}` with the raw command plist, HTTP Basic `nanomdm:<key>`.
//!
//! NanoMDM stores the command first and pushes afterwards, and answers an `APIResult`: 200
//! when both worked; 500 (or 207) with `push_error` when the command is stored but the APNs
//! push failed (no push certificate, APNs down: the device still fetches the command at its
//! next check-in), the result then still echoing `command_uuid`; `command_error` when it
//! could not store it, "command already exists" when an earlier attempt of the same job
//! did. So an answer that echoes our CommandUUID without a `command_error` means stored,
//! and so does "already exists"; a push error is kept as a note, except "push data missing
//! for id", which says NanoMDM has no enrollment of that id and fails the job at once.
//!
//! `/v1/push/{id,id,…}` sends APNs pushes alone, queueing nothing: what [`NanoMdm::nudge`]
//! asks for when a device has not answered a command it was sent. NanoMDM answers the same
//! `APIResult`, a `push_result` or `push_error` per id under `status` (200 when every push
//! went, 207 when some failed, 500 when all did or the push as a whole failed, with a
//! top-level `push_error`).

use std::collections::HashMap;

use serde::Deserialize;

use super::{Accepted, Delivery, SendError, request_error, sentence, status_error};
use crate::push::reconcile::JobKind;
use crate::push::settings::Endpoint;

/// A NanoMDM server's command API.
#[derive(Debug, Clone)]
pub struct NanoMdm {
    client: reqwest::Client,
    endpoint: Endpoint,
}

/// NanoMDM's `APIResult`.
#[derive(Debug, Default, Deserialize)]
struct ApiResult {
    #[serde(default)]
    status: HashMap<String, EnrollmentResult>,
    push_error: Option<String>,
    command_error: Option<String>,
    command_uuid: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct EnrollmentResult {
    push_error: Option<String>,
    command_error: Option<String>,
}

/// What NanoMDM answered about pushing to one enrollment.
type Nudged = Result<(), String>;

/// NanoMDM's push error for an enrollment id it has no push token for (its
/// `push/service.ErrIdNotFound`).
const NOT_ENROLLED: &str = "push data missing for id";

impl NanoMdm {
    /// A transport to `endpoint` over `client`.
    pub fn new(client: reqwest::Client, endpoint: Endpoint) -> NanoMdm {
        NanoMdm { client, endpoint }
    }

    /// The URL of NanoMDM's `endpoint` for `ids` (joined by commas, as NanoMDM splits them).
    fn url(&self, endpoint: &str, ids: &str) -> Result<reqwest::Url, String> {
        let mut url = reqwest::Url::parse(&self.endpoint.url)
            .map_err(|e| format!("NanoMDM URL {:?}: {e}", self.endpoint.url))?;
        url.path_segments_mut()
            .map_err(|()| format!("NanoMDM URL {:?} cannot take a path", self.endpoint.url))?
            .pop_if_empty()
            .extend(["v1", endpoint, ids]);
        Ok(url)
    }

    /// Enqueues the delivery's command for its enrollment.
    pub async fn send(&self, delivery: &Delivery) -> Result<Accepted, SendError> {
        let body = command_plist(delivery)?;
        let url = self
            .url("enqueue", &delivery.enrollment_id)
            .map_err(SendError::Fatal)?;
        let response = self
            .client
            .put(url)
            .basic_auth("nanomdm", Some(self.endpoint.api_key.expose()))
            .header(reqwest::header::CONTENT_TYPE, "text/plain")
            .body(body)
            .send()
            .await
            .map_err(|e| request_error("NanoMDM", &e))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| request_error("NanoMDM", &e))?;
        answer(delivery, status, &text)
    }
}

impl NanoMdm {
    /// Asks NanoMDM to push to each of `enrollment_ids`, in one request, so that the devices
    /// check in and fetch the commands already queued for them: nothing new is queued, so
    /// nothing can be carried out twice. Returns, per id, whether its push went.
    pub async fn nudge(&self, enrollment_ids: &[String]) -> Vec<(String, Nudged)> {
        let all = |why: String| -> Vec<(String, Nudged)> {
            enrollment_ids
                .iter()
                .map(|id| (id.clone(), Err(why.clone())))
                .collect()
        };
        let url = match self.url("push", &enrollment_ids.join(",")) {
            Ok(url) => url,
            Err(e) => return all(e),
        };
        let sent = self
            .client
            .get(url)
            .basic_auth("nanomdm", Some(self.endpoint.api_key.expose()))
            .send()
            .await;
        let answered = match sent {
            Ok(response) => {
                let status = response.status();
                response.text().await.map(|text| (status, text))
            }
            Err(e) => Err(e),
        };
        match answered {
            Ok((status, text)) => pushed(enrollment_ids, status, &text),
            Err(e) => all(request_error("NanoMDM", &e).to_string()),
        }
    }
}

/// What NanoMDM's answer `text` with `status` to pushing to `enrollment_ids` says of each.
fn pushed(
    enrollment_ids: &[String],
    status: reqwest::StatusCode,
    text: &str,
) -> Vec<(String, Nudged)> {
    let result = serde_json::from_str::<ApiResult>(text).ok();
    enrollment_ids
        .iter()
        .map(|id| {
            let mine = result.as_ref().and_then(|r| r.status.get(id));
            let error = mine
                .and_then(|r| r.push_error.clone())
                .or_else(|| result.as_ref().and_then(|r| r.push_error.clone()));
            let outcome = match (error, mine) {
                (Some(error), _) => Err(sentence(&format!(
                    "NanoMDM answered {status} and could not push to {id}: {error}"
                ))),
                (None, Some(_)) => Ok(()),
                (None, None) if status.is_success() => Ok(()),
                (None, None) => Err(status_error("NanoMDM", status, text).to_string()),
            };
            (id.clone(), outcome)
        })
        .collect()
}

/// What NanoMDM's answer `text` with `status` to enqueueing `delivery` means.
fn answer(
    delivery: &Delivery,
    status: reqwest::StatusCode,
    text: &str,
) -> Result<Accepted, SendError> {
    let Ok(result) = serde_json::from_str::<ApiResult>(text) else {
        return if status.is_success() {
            Ok(Accepted {
                command_uuid: delivery.command_uuid,
                note: None,
            })
        } else {
            Err(status_error("NanoMDM", status, text))
        };
    };
    let enrollment = delivery.enrollment_id.as_str();
    let mine = result.status.get(enrollment);
    let command_error = mine
        .and_then(|r| r.command_error.clone())
        .or(result.command_error);
    let push_error = mine
        .and_then(|r| r.push_error.clone())
        .or(result.push_error);
    let ours = delivery.command_uuid.hyphenated().to_string();
    let echoed = result
        .command_uuid
        .is_some_and(|u| u.eq_ignore_ascii_case(&ours));
    let stored = Ok(Accepted {
        command_uuid: delivery.command_uuid,
        note: None,
    });
    match (command_error, push_error) {
        (Some(error), _) if echoed && error.contains("already exists") => stored,
        (Some(error), _) => {
            let message = sentence(&format!(
                "NanoMDM answered {status} and did not queue the command for {enrollment}: \
                 {error}"
            ));
            // A 500 may be NanoMDM's storage, worth another try; anything else (a 207's
            // enrollment-level error, a command it cannot decode) will not change.
            if status == reqwest::StatusCode::INTERNAL_SERVER_ERROR
                && !error.starts_with("decoding command")
            {
                Err(SendError::Retry(message))
            } else {
                Err(SendError::Fatal(message))
            }
        }
        (None, Some(error)) if error.contains(NOT_ENROLLED) => {
            Err(SendError::Fatal(sentence(&format!(
                "NanoMDM answered {status}: it has no push data for enrollment {enrollment} \
                 (not enrolled in NanoMDM?): {error}"
            ))))
        }
        (None, Some(error)) if echoed || status.is_success() => Ok(Accepted {
            command_uuid: delivery.command_uuid,
            note: Some(sentence(&format!(
                "queued in NanoMDM for {enrollment}, but the APNs push failed ({status}): \
                 {error}"
            ))),
        }),
        (None, _) if echoed || status.is_success() => stored,
        (None, _) => Err(status_error("NanoMDM", status, text)),
    }
}

/// The raw MDM command plist: `CommandUUID` and `Command` with `RequestType` and, for
/// `InstallProfile`, the profile as `Payload` data, for `RemoveProfile` its `Identifier`.
pub fn command_plist(delivery: &Delivery) -> Result<Vec<u8>, SendError> {
    let mut command = plist::Dictionary::new();
    match delivery.kind {
        JobKind::Install => {
            command.insert("RequestType".into(), "InstallProfile".into());
            let payload = delivery
                .content
                .clone()
                .ok_or_else(|| SendError::Fatal("an install without a profile".into()))?;
            command.insert("Payload".into(), plist::Value::Data(payload));
        }
        JobKind::Remove => {
            command.insert("RequestType".into(), "RemoveProfile".into());
            command.insert("Identifier".into(), delivery.identifier.clone().into());
        }
    }
    let mut root = plist::Dictionary::new();
    root.insert(
        "CommandUUID".into(),
        delivery.command_uuid.hyphenated().to_string().into(),
    );
    root.insert("Command".into(), plist::Value::Dictionary(command));
    let mut out = Vec::new();
    plist::to_writer_xml(&mut out, &plist::Value::Dictionary(root))
        .map_err(|e| SendError::Fatal(format!("cannot write the command plist: {e}")))?;
    Ok(out)
}
