//! Where profiles go: an MDM's command API (NanoMDM, MicroMDM), a signed webhook, or a
//! folder. Each transport turns one [`Delivery`] into one request (or file) and says whether
//! a failure is worth retrying.

pub mod directory;
pub mod micromdm;
pub mod nanomdm;
pub mod webhook;

use std::time::Duration;

use uuid::Uuid;

use super::PushSettings;
use super::reconcile::{JobKind, is_apple};
use crate::model::Platform;

/// One command for one device, ready to send.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The MDM's device id.
    pub device: String,
    /// Where the MDM addresses the command: the device channel, or macOS's user channel.
    pub enrollment_id: String,
    /// The device's platform.
    pub platform: Platform,
    /// Install or remove.
    pub kind: JobKind,
    /// The profile's identifier.
    pub identifier: String,
    /// The job's command UUID, the same on every attempt of the job.
    pub command_uuid: Uuid,
    /// The document: the (signed, for Apple) profile to install, or the Windows SyncML that
    /// deletes accounts. `None` for Apple and Android removals, which name the identifier.
    pub content: Option<Vec<u8>>,
    /// MIME type of `content`.
    pub content_type: &'static str,
    /// File name extension for `content`.
    pub extension: &'static str,
}

/// A delivery the transport accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The command UUID the MDM will report back under.
    pub command_uuid: Uuid,
    /// Something worth showing, though the command is queued (a failed APNs push, say).
    pub note: Option<String>,
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again: a connection error, a timeout, a 5xx.
    #[error("{0}")]
    Retry(String),
    /// Trying again cannot help: a 4xx, a refused command.
    #[error("{0}")]
    Fatal(String),
}

/// A configured transport.
#[derive(Debug, Clone)]
pub enum Transport {
    /// NanoMDM's `PUT /v1/enqueue/{id}`.
    NanoMdm(nanomdm::NanoMdm),
    /// MicroMDM's `POST /v1/commands`.
    MicroMdm(micromdm::MicroMdm),
    /// A signed JSON POST.
    Webhook(webhook::Webhook),
    /// Files in a folder.
    Directory(directory::Directory),
}

impl Transport {
    /// Sends `delivery`.
    pub async fn send(&self, delivery: &Delivery) -> Result<Accepted, SendError> {
        match self {
            Transport::NanoMdm(t) => t.send(delivery).await,
            Transport::MicroMdm(t) => t.send(delivery).await,
            Transport::Webhook(t) => t.send(delivery).await,
            Transport::Directory(t) => t.send(delivery).await,
        }
    }

    /// The transport's name, for statuses.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::NanoMdm(_) => "nanomdm",
            Transport::MicroMdm(_) => "micromdm",
            Transport::Webhook(_) => "webhook",
            Transport::Directory(_) => "directory",
        }
    }
}

/// The configured transports, and which one each platform's profiles take.
#[derive(Debug, Clone, Default)]
pub struct Transports {
    apple: Option<Transport>,
    other: Option<Transport>,
}

/// Why transports could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client for push: {0}")]
pub struct ClientError(#[from] reqwest::Error);

impl Transports {
    /// Builds the transports `settings` configure. Apple profiles go to NanoMDM, else
    /// MicroMDM, else the webhook, else the folder; Windows and Android profiles, which
    /// those MDMs cannot deliver, to the webhook, else the folder.
    pub fn new(settings: &PushSettings) -> Result<Transports, ClientError> {
        let client = http_client(settings.timeout)?;
        let webhook = settings
            .webhook
            .clone()
            .map(|w| Transport::Webhook(webhook::Webhook::new(client.clone(), w)));
        let directory = settings
            .directory
            .clone()
            .map(|d| Transport::Directory(directory::Directory::new(d)));
        let other = webhook.or(directory);
        let apple = settings
            .nanomdm
            .clone()
            .map(|e| Transport::NanoMdm(nanomdm::NanoMdm::new(client.clone(), e)))
            .or_else(|| {
                settings
                    .micromdm
                    .clone()
                    .map(|e| Transport::MicroMdm(micromdm::MicroMdm::new(client.clone(), e)))
            })
            .or(other.clone());
        Ok(Transports { apple, other })
    }

    /// The transport for `platform`'s profiles, if one is configured.
    pub fn for_platform(&self, platform: Platform) -> Option<&Transport> {
        if is_apple(platform) {
            self.apple.as_ref()
        } else {
            self.other.as_ref()
        }
    }

    /// What a job waits for when no transport takes its platform.
    pub fn missing(platform: Platform) -> String {
        if is_apple(platform) {
            format!(
                "waiting: no transport for {platform} profiles is configured (set \
                 MDM_MAIL_NANOMDM_URL and MDM_MAIL_NANOMDM_API_KEY, MicroMDM, a push webhook \
                 or a push directory)"
            )
        } else {
            format!(
                "waiting: no transport for {platform} profiles is configured (set \
                 MDM_MAIL_PUSH_WEBHOOK_URL and MDM_MAIL_PUSH_WEBHOOK_SECRET, or \
                 MDM_MAIL_PUSH_DIRECTORY)"
            )
        }
    }
}

/// The HTTP client every transport shares: connections are kept and reused, and no request
/// may take longer than `timeout`.
fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_max_idle_per_host(64)
        .build()
}

/// Classifies a request that got no response.
fn request_error(server: &str, e: &reqwest::Error) -> SendError {
    if e.is_timeout() {
        SendError::Retry(format!("{server} did not answer in time"))
    } else if e.is_builder() {
        SendError::Fatal(format!("cannot build the request to {server}: {e}"))
    } else {
        SendError::Retry(format!("cannot reach {server}: {e}"))
    }
}

/// Classifies an HTTP status that is not success; `body` is the response text.
fn status_error(server: &str, status: reqwest::StatusCode, body: &str) -> SendError {
    let detail = body_message(body);
    let message = if detail.is_empty() {
        format!("{server} answered {status}")
    } else {
        sentence(&format!("{server} answered {status}: {detail}"))
    };
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        SendError::Retry(message)
    } else if status == reqwest::StatusCode::UNAUTHORIZED {
        SendError::Fatal(format!("{message} (check the API key)"))
    } else {
        SendError::Fatal(message)
    }
}

/// What an error body says, for people: the messages of a JSON body (every string under a
/// key that names an error or a message, as NanoMDM's `push_error` and `command_error`,
/// MicroMDM's `error`), else the text itself, on one line.
fn body_message(body: &str) -> String {
    fn messages(value: &serde_json::Value, key: &str, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s)
                if (key.ends_with("error") || key == "message") && !out.contains(s) =>
            {
                out.push(s.clone());
            }
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    messages(v, k, out);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(body) {
        messages(&json, "", &mut found);
    }
    let text = if found.is_empty() {
        body.to_owned()
    } else {
        found.join("; ")
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The longest a stored error may be, in characters.
const ERROR_LIMIT: usize = 300;

/// `text` on one line, cut at the last word boundary within [`ERROR_LIMIT`] characters and
/// ended with "…" when it was cut, so `last_error` reads as a sentence.
pub fn sentence(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= ERROR_LIMIT {
        return line;
    }
    let cut: String = line.chars().take(ERROR_LIMIT - 1).collect();
    let kept = match cut.rfind(' ') {
        Some(space) if space > 0 => &cut[..space],
        _ => cut.as_str(),
    };
    format!("{}…", kept.trim_end_matches([',', ';', ':']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_error_is_cut_at_a_word_boundary() {
        let long = format!(
            "NanoMDM answered 500: {}",
            "retrieving push cert ".repeat(30)
        );
        let cut = sentence(&long);
        assert!(cut.chars().count() <= ERROR_LIMIT, "{cut}");
        assert!(cut.ends_with("cert…") || cut.ends_with("push…") || cut.ends_with("retrieving…"));
        assert_eq!(sentence("short\n\tone"), "short one");
    }

    #[test]
    fn a_json_error_body_reads_as_its_messages() {
        let body = r#"{"status":{"X":{"push_error":"push data missing for id"}},
            "command_uuid":"u","error":"storage\n\tfailed"}"#;
        let message = body_message(body);
        assert!(message.contains("push data missing for id"), "{message}");
        assert!(message.contains("storage failed"), "{message}");
        assert!(!message.contains('{'), "{message}");
        assert_eq!(body_message("Bad\n Gateway"), "Bad Gateway");
    }
}
