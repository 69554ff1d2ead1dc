//! NanoMDM: `PUT /v1/enqueue/{id}` with the raw command plist, HTTP Basic `nanomdm:<key>`.
//! 200 means queued (a failed APNs push is a note: the device still fetches the command at
//! its next check-in); 207 and 500 carry a per-enrollment `command_error`; 500 without
//! one, like any 5xx, is retried.

use std::collections::HashMap;

use serde::Deserialize;

use super::{Accepted, Delivery, SendError, request_error, status_error};
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
}

#[derive(Debug, Default, Deserialize)]
struct EnrollmentResult {
    push_error: Option<String>,
    command_error: Option<String>,
}

impl NanoMdm {
    /// A transport to `endpoint` over `client`.
    pub fn new(client: reqwest::Client, endpoint: Endpoint) -> NanoMdm {
        NanoMdm { client, endpoint }
    }

    /// Enqueues the delivery's command for its enrollment.
    pub async fn send(&self, delivery: &Delivery) -> Result<Accepted, SendError> {
        let body = command_plist(delivery)?;
        let mut url = reqwest::Url::parse(&self.endpoint.url)
            .map_err(|e| SendError::Fatal(format!("NanoMDM URL {:?}: {e}", self.endpoint.url)))?;
        url.path_segments_mut()
            .map_err(|()| {
                SendError::Fatal(format!(
                    "NanoMDM URL {:?} cannot take a path",
                    self.endpoint.url
                ))
            })?
            .pop_if_empty()
            .extend(["v1", "enqueue", delivery.enrollment_id.as_str()]);
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
        let result: ApiResult = serde_json::from_str(&text).unwrap_or_default();
        let mine = result.status.get(&delivery.enrollment_id);
        let command_error = mine
            .and_then(|r| r.command_error.clone())
            .or(result.command_error.clone());
        let push_error = mine
            .and_then(|r| r.push_error.clone())
            .or(result.push_error);
        match status.as_u16() {
            200 => Ok(Accepted {
                command_uuid: delivery.command_uuid,
                note: push_error
                    .map(|e| format!("queued in NanoMDM, but the APNs push failed: {e}")),
            }),
            207 | 500 if command_error.is_some() => {
                let error = command_error.unwrap_or_default();
                let message = format!(
                    "NanoMDM could not queue the command for {}: {error}",
                    delivery.enrollment_id
                );
                // The enrollment-level error of a 207 is about this device (unknown
                // enrollment, say); a 500 may be the server's storage, so it is retried.
                if status.as_u16() == 207 {
                    Err(SendError::Fatal(message))
                } else {
                    Err(SendError::Retry(message))
                }
            }
            207 => Ok(Accepted {
                command_uuid: delivery.command_uuid,
                note: push_error
                    .map(|e| format!("queued in NanoMDM, but the APNs push failed: {e}")),
            }),
            _ => Err(status_error("NanoMDM", status, &text)),
        }
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
