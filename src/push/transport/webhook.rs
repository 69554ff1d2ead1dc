//! A signed webhook: one JSON POST per command, for Windows, Android and any MDM without an
//! adapter here. The body is signed with HMAC-SHA256 under the configured secret, sent as
//! `X-Mdm-Mail-Signature: sha256=<hex>`, so the receiver can tell the request is ours.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::{Accepted, Delivery, SendError, request_error, status_error};
use crate::crypto::to_hex;
use crate::push::reconcile::JobKind;
use crate::push::settings::WebhookEndpoint;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Mdm-Mail-Signature";

/// A webhook receiver.
#[derive(Debug, Clone)]
pub struct Webhook {
    client: reqwest::Client,
    endpoint: WebhookEndpoint,
}

/// The JSON body of a webhook request.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    /// The MDM's device id.
    pub device: &'a str,
    /// The enrollment the command is for.
    pub enrollment_id: &'a str,
    /// The device's platform.
    pub platform: crate::model::Platform,
    /// `install` or `remove`.
    pub kind: JobKind,
    /// The profile's identifier.
    pub identifier: &'a str,
    /// This command's UUID.
    pub command_uuid: String,
    /// MIME type of `content`.
    pub content_type: Option<&'a str>,
    /// The document, base64; absent for removals by identifier.
    pub content: Option<String>,
}

/// The signature header value for `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", to_hex(&mac.finalize().into_bytes()))
}

impl Webhook {
    /// A transport to `endpoint` over `client`.
    pub fn new(client: reqwest::Client, endpoint: WebhookEndpoint) -> Webhook {
        Webhook { client, endpoint }
    }

    /// POSTs the delivery.
    pub async fn send(&self, delivery: &Delivery) -> Result<Accepted, SendError> {
        let event = Event {
            device: &delivery.device,
            enrollment_id: &delivery.enrollment_id,
            platform: delivery.platform,
            kind: delivery.kind,
            identifier: &delivery.identifier,
            command_uuid: delivery.command_uuid.hyphenated().to_string(),
            content_type: delivery.content.as_ref().map(|_| delivery.content_type),
            content: delivery
                .content
                .as_ref()
                .map(|c| base64::engine::general_purpose::STANDARD.encode(c)),
        };
        let body = serde_json::to_vec(&event)
            .map_err(|e| SendError::Fatal(format!("cannot write the webhook body: {e}")))?;
        let response = self
            .client
            .post(&self.endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                SIGNATURE_HEADER,
                signature(self.endpoint.secret.expose().as_bytes(), &body),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| request_error("the push webhook", &e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(Accepted {
                command_uuid: delivery.command_uuid,
                note: None,
            });
        }
        let text = response.text().await.unwrap_or_default();
        Err(status_error("the push webhook", status, &text))
    }
}
