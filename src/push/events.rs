//! NanoMDM's webhook events (MicroMDM's format): an `mdm.Connect` event carries a device's
//! answer to a command, `Acknowledged` or `Error` with its error chain, which moves the job
//! that sent the command to acknowledged or failed. NanoMDM signs each body with
//! HMAC-SHA256 (`-webhook-hmac-key`), base64 in `X-Hmac-Signature`.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use uuid::Uuid;

use super::PushError;
use crate::store::{JobAnswer, Store};

/// The header NanoMDM puts the signature in.
pub const SIGNATURE_HEADER: &str = "X-Hmac-Signature";

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// No or a wrong signature.
    #[error("the event's X-Hmac-Signature is missing or does not match the configured key")]
    Signature,
    /// The body is not an event.
    #[error("not a NanoMDM webhook event: {0}")]
    Malformed(String),
}

#[derive(Debug, Deserialize)]
struct Event {
    topic: String,
    acknowledge_event: Option<AcknowledgeEvent>,
}

#[derive(Debug, Deserialize)]
struct AcknowledgeEvent {
    status: Option<String>,
    command_uuid: Option<String>,
    raw_payload: Option<String>,
}

/// What an event says about a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandReport {
    /// The device carried the command out.
    Acknowledged(Uuid),
    /// The device refused it; the error chain, for people.
    Failed(Uuid, String),
    /// Nothing about a command's end (check-ins, Idle, NotNow).
    Other,
}

/// Checks `signature` (base64 HMAC-SHA256 of `body` under `key`) in constant time.
pub fn verify(key: &[u8], body: &[u8], signature: Option<&str>) -> Result<(), EventError> {
    let given = signature
        .and_then(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .ok()
        })
        .ok_or(EventError::Signature)?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| EventError::Signature)
}

/// Reads an event body.
pub fn parse(body: &[u8]) -> Result<CommandReport, EventError> {
    let event: Event =
        serde_json::from_slice(body).map_err(|e| EventError::Malformed(e.to_string()))?;
    let Some(ack) = event
        .acknowledge_event
        .filter(|_| event.topic == "mdm.Connect")
    else {
        return Ok(CommandReport::Other);
    };
    let Some(uuid) = ack.command_uuid.as_deref().filter(|u| !u.is_empty()) else {
        return Ok(CommandReport::Other);
    };
    let uuid = Uuid::parse_str(uuid)
        .map_err(|e| EventError::Malformed(format!("command_uuid {uuid:?}: {e}")))?;
    Ok(match ack.status.as_deref() {
        Some("Acknowledged") => CommandReport::Acknowledged(uuid),
        Some(status @ ("Error" | "CommandFormatError")) => {
            CommandReport::Failed(uuid, error_chain(status, ack.raw_payload.as_deref()))
        }
        _ => CommandReport::Other,
    })
}

/// The device's `ErrorChain`, one `domain code: description` per link, from the raw
/// payload (a base64 plist).
fn error_chain(status: &str, raw_payload: Option<&str>) -> String {
    let chain: Vec<String> = raw_payload
        .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
        .and_then(|plist| plist::Value::from_reader(std::io::Cursor::new(plist)).ok())
        .and_then(|v| v.into_dictionary())
        .and_then(|mut d| d.remove("ErrorChain"))
        .and_then(plist::Value::into_array)
        .unwrap_or_default()
        .into_iter()
        .filter_map(plist::Value::into_dictionary)
        .map(|link| {
            let text = |key: &str| {
                link.get(key)
                    .and_then(|v| {
                        v.as_string()
                            .map(str::to_owned)
                            .or_else(|| v.as_signed_integer().map(|n| n.to_string()))
                    })
                    .unwrap_or_default()
            };
            let description = match text("USEnglishDescription") {
                d if d.is_empty() => text("LocalizedDescription"),
                d => d,
            };
            format!(
                "{} {}: {description}",
                text("ErrorDomain"),
                text("ErrorCode")
            )
        })
        .collect();
    if chain.is_empty() {
        format!("the device answered {status}")
    } else {
        format!("the device answered {status}: {}", chain.join("; "))
    }
}

/// What an event did: whether a job sent the command it reports on, and whether the job
/// moved. A replay, or a report contradicting how the job ended, matches without change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    /// A job sent the command.
    pub matched: bool,
    /// The job moved to acknowledged or failed.
    pub changed: bool,
}

/// Verifies and applies one event, at most once per command: a job waiting for its command's
/// end (sent, or still being sent or queued for another try when the device answered first)
/// moves to acknowledged or failed, and never back.
pub async fn receive(
    store: &Store,
    key: &[u8],
    body: &[u8],
    signature: Option<&str>,
) -> Result<Result<Receipt, EventError>, PushError> {
    if let Err(e) = verify(key, body, signature) {
        return Ok(Err(e));
    }
    let report = match parse(body) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    let (uuid, answer) = match &report {
        CommandReport::Acknowledged(uuid) => (uuid, store.acknowledge_push_job(*uuid, None).await?),
        CommandReport::Failed(uuid, error) => {
            (uuid, store.acknowledge_push_job(*uuid, Some(error)).await?)
        }
        CommandReport::Other => {
            return Ok(Ok(Receipt {
                matched: false,
                changed: false,
            }));
        }
    };
    let receipt = match answer {
        JobAnswer::Unknown => Receipt {
            matched: false,
            changed: false,
        },
        JobAnswer::Applied => Receipt {
            matched: true,
            changed: true,
        },
        JobAnswer::Repeated => {
            tracing::debug!(command = %uuid, "a NanoMDM event was sent again; already applied");
            Receipt {
                matched: true,
                changed: false,
            }
        }
        JobAnswer::Contradicted { state } => {
            tracing::warn!(
                command = %uuid,
                state,
                reported = if matches!(report, CommandReport::Acknowledged(_)) {
                    "acknowledged"
                } else {
                    "failed"
                },
                "a NanoMDM event contradicts its job's state, which stays"
            );
            Receipt {
                matched: true,
                changed: false,
            }
        }
    };
    Ok(Ok(receipt))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(key: &[u8], body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
        mac.update(body);
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    #[test]
    fn only_a_matching_signature_passes() {
        let body = br#"{"topic":"mdm.Connect"}"#;
        assert_eq!(verify(b"k", body, Some(&sign(b"k", body))), Ok(()));
        assert_eq!(
            verify(b"k", body, Some(&sign(b"other", body))),
            Err(EventError::Signature)
        );
        assert_eq!(verify(b"k", body, None), Err(EventError::Signature));
    }

    #[test]
    fn an_error_report_carries_the_device_error_chain() {
        let mut link = plist::Dictionary::new();
        link.insert("ErrorDomain".into(), "MCProfileErrorDomain".into());
        link.insert("ErrorCode".into(), plist::Value::Integer(1009.into()));
        link.insert(
            "USEnglishDescription".into(),
            "The profile is not signed by a trusted signer.".into(),
        );
        let mut payload = plist::Dictionary::new();
        payload.insert(
            "ErrorChain".into(),
            plist::Value::Array(vec![plist::Value::Dictionary(link)]),
        );
        let mut raw = Vec::new();
        plist::to_writer_xml(&mut raw, &plist::Value::Dictionary(payload)).unwrap();
        let uuid = Uuid::new_v4();
        let body = serde_json::json!({
            "topic": "mdm.Connect",
            "acknowledge_event": {
                "status": "Error",
                "command_uuid": uuid.to_string(),
                "raw_payload": base64::engine::general_purpose::STANDARD.encode(raw),
            }
        });
        assert_eq!(
            parse(body.to_string().as_bytes()).unwrap(),
            CommandReport::Failed(
                uuid,
                "the device answered Error: MCProfileErrorDomain 1009: The profile is not \
                 signed by a trusted signer."
                    .into()
            )
        );
    }

    #[test]
    fn idle_and_check_ins_report_nothing() {
        let idle = br#"{"topic":"mdm.Connect","acknowledge_event":{"status":"Idle"}}"#;
        assert_eq!(parse(idle).unwrap(), CommandReport::Other);
        let checkin = br#"{"topic":"mdm.Authenticate","checkin_event":{}}"#;
        assert_eq!(parse(checkin).unwrap(), CommandReport::Other);
        assert!(parse(b"not json").is_err());
    }
}
