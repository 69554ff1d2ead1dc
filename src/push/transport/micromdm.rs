//! MicroMDM: `POST /v1/commands` with a JSON command (the profile base64 in `payload`),
//! HTTP Basic `micromdm:<key>`; 201 with the queued command's UUID.

use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Accepted, Delivery, SendError, request_error, status_error};
use crate::push::reconcile::JobKind;
use crate::push::settings::Endpoint;

/// A MicroMDM server's command API.
#[derive(Debug, Clone)]
pub struct MicroMdm {
    client: reqwest::Client,
    endpoint: Endpoint,
}

#[derive(Serialize)]
struct Command<'a> {
    udid: &'a str,
    request_type: &'static str,
    command_uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identifier: Option<&'a str>,
}

#[derive(Deserialize)]
struct Reply {
    payload: Option<ReplyPayload>,
}

#[derive(Deserialize)]
struct ReplyPayload {
    command_uuid: Option<String>,
}

impl MicroMdm {
    /// A transport to `endpoint` over `client`.
    pub fn new(client: reqwest::Client, endpoint: Endpoint) -> MicroMdm {
        MicroMdm { client, endpoint }
    }

    /// Queues the delivery's command for its device.
    pub async fn send(&self, delivery: &Delivery) -> Result<Accepted, SendError> {
        let command = match delivery.kind {
            JobKind::Install => Command {
                udid: &delivery.enrollment_id,
                request_type: "InstallProfile",
                command_uuid: delivery.command_uuid.hyphenated().to_string(),
                payload: Some(
                    base64::engine::general_purpose::STANDARD
                        .encode(delivery.content.as_deref().unwrap_or_default()),
                ),
                identifier: None,
            },
            JobKind::Remove => Command {
                udid: &delivery.enrollment_id,
                request_type: "RemoveProfile",
                command_uuid: delivery.command_uuid.hyphenated().to_string(),
                payload: None,
                identifier: Some(&delivery.identifier),
            },
        };
        let response = self
            .client
            .post(format!("{}/v1/commands", self.endpoint.url))
            .basic_auth("micromdm", Some(self.endpoint.api_key.expose()))
            .json(&command)
            .send()
            .await
            .map_err(|e| request_error("MicroMDM", &e))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| request_error("MicroMDM", &e))?;
        if !status.is_success() {
            return Err(status_error("MicroMDM", status, &text));
        }
        let command_uuid = serde_json::from_str::<Reply>(&text)
            .ok()
            .and_then(|r| r.payload)
            .and_then(|p| p.command_uuid)
            .and_then(|u| Uuid::parse_str(&u).ok())
            .unwrap_or(delivery.command_uuid);
        Ok(Accepted {
            command_uuid,
            note: None,
        })
    }
}
