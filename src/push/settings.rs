//! Push settings: the `[push]` section of the config file and the `MDM_MAIL_*` variables.
//! URLs and the folder may come from either (environment wins); keys only from the
//! environment or from files the config file names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::model::Secret;

/// Default number of jobs sent at once.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Default number of attempts before a job fails for good.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// Default wait for a device's answer before it is overdue: devices that are on answer
/// within seconds of NanoMDM's push, so an hour without one means the push, the device or
/// the webhook carrying its answer went astray.
pub const DEFAULT_ANSWER_OVERDUE: Duration = Duration::from_secs(3600);

/// Push values from the environment.
#[derive(Debug, Clone, Default)]
pub struct PushEnv {
    /// `MDM_MAIL_NANOMDM_URL`.
    pub nanomdm_url: Option<String>,
    /// `MDM_MAIL_NANOMDM_API_KEY`.
    pub nanomdm_api_key: Option<Secret>,
    /// `MDM_MAIL_NANOMDM_WEBHOOK_KEY`: the `-webhook-hmac-key` NanoMDM signs its events with.
    pub nanomdm_webhook_key: Option<Secret>,
    /// `MDM_MAIL_MICROMDM_URL`.
    pub micromdm_url: Option<String>,
    /// `MDM_MAIL_MICROMDM_API_KEY`.
    pub micromdm_api_key: Option<Secret>,
    /// `MDM_MAIL_PUSH_WEBHOOK_URL`.
    pub webhook_url: Option<String>,
    /// `MDM_MAIL_PUSH_WEBHOOK_SECRET`.
    pub webhook_secret: Option<Secret>,
    /// `MDM_MAIL_PUSH_DIRECTORY`.
    pub directory: Option<PathBuf>,
}

impl PushEnv {
    /// Reads the variables; empty ones count as unset.
    pub fn from_env() -> PushEnv {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let secret = |name: &str| var(name).map(Secret::new);
        PushEnv {
            nanomdm_url: var("MDM_MAIL_NANOMDM_URL"),
            nanomdm_api_key: secret("MDM_MAIL_NANOMDM_API_KEY"),
            nanomdm_webhook_key: secret("MDM_MAIL_NANOMDM_WEBHOOK_KEY"),
            micromdm_url: var("MDM_MAIL_MICROMDM_URL"),
            micromdm_api_key: secret("MDM_MAIL_MICROMDM_API_KEY"),
            webhook_url: var("MDM_MAIL_PUSH_WEBHOOK_URL"),
            webhook_secret: secret("MDM_MAIL_PUSH_WEBHOOK_SECRET"),
            directory: var("MDM_MAIL_PUSH_DIRECTORY").map(PathBuf::from),
        }
    }
}

/// The `[push]` section of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushFile {
    concurrency: Option<usize>,
    max_attempts: Option<u32>,
    retry_base_ms: Option<u64>,
    retry_max_ms: Option<u64>,
    timeout_ms: Option<u64>,
    lease_seconds: Option<u64>,
    answer_overdue_seconds: Option<u64>,
    nanomdm_url: Option<String>,
    nanomdm_api_key_file: Option<PathBuf>,
    nanomdm_webhook_key_file: Option<PathBuf>,
    micromdm_url: Option<String>,
    micromdm_api_key_file: Option<PathBuf>,
    webhook_url: Option<String>,
    webhook_secret_file: Option<PathBuf>,
    directory: Option<PathBuf>,
}

/// An MDM server's API: its base URL and key.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Base URL, without a trailing slash.
    pub url: String,
    /// API key (HTTP Basic password).
    pub api_key: Secret,
}

/// A signed webhook.
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    /// Where to POST.
    pub url: String,
    /// HMAC-SHA256 key of the signature header.
    pub secret: Secret,
}

/// Resolved push settings.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// Jobs sent at once.
    pub concurrency: usize,
    /// Attempts before a job fails for good.
    pub max_attempts: u32,
    /// First retry delay; it doubles with each attempt.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// How long one request to an MDM may take.
    pub timeout: Duration,
    /// How long a claimed job stays with its worker before another may take it over.
    pub lease: Duration,
    /// How long a job sent through an MDM that reports device answers (NanoMDM with its
    /// webhook) waits for its device's answer before it is overdue and the device is nudged.
    pub answer_overdue: Duration,
    /// NanoMDM's command API.
    pub nanomdm: Option<Endpoint>,
    /// Key NanoMDM signs its webhook events with (`X-Hmac-Signature`).
    pub nanomdm_webhook_key: Option<Secret>,
    /// MicroMDM's command API.
    pub micromdm: Option<Endpoint>,
    /// A signed webhook receiving every profile.
    pub webhook: Option<WebhookEndpoint>,
    /// A folder receiving every profile.
    pub directory: Option<PathBuf>,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            concurrency: DEFAULT_CONCURRENCY,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            timeout: Duration::from_secs(30),
            lease: Duration::from_secs(120),
            answer_overdue: DEFAULT_ANSWER_OVERDUE,
            nanomdm: None,
            nanomdm_webhook_key: None,
            micromdm: None,
            webhook: None,
            directory: None,
        }
    }
}

impl PushSettings {
    /// Combines the environment and the file; a URL without its key is an error naming both.
    pub fn resolve(env: PushEnv, file: PushFile) -> Result<PushSettings, ConfigError> {
        let defaults = PushSettings::default();
        let positive = |value: Option<u64>, name: &str, default: Duration| match value {
            Some(0) => Err(invalid(&format!("push.{name} must be greater than 0"))),
            Some(ms) => Ok(Duration::from_millis(ms)),
            None => Ok(default),
        };
        let concurrency = match file.concurrency {
            Some(0) => return Err(invalid("push.concurrency must be at least 1")),
            Some(n) => n,
            None => defaults.concurrency,
        };
        let max_attempts = match file.max_attempts {
            Some(0) => return Err(invalid("push.max_attempts must be at least 1")),
            Some(n) => n,
            None => defaults.max_attempts,
        };
        let endpoint = |name: &str,
                        url: Option<String>,
                        key: Option<Secret>,
                        key_file: Option<PathBuf>|
         -> Result<Option<Endpoint>, ConfigError> {
            let key = match key {
                Some(key) => Some(key),
                None => key_file.as_deref().map(read_secret).transpose()?,
            };
            match (url, key) {
                (None, _) => Ok(None),
                (Some(url), Some(api_key)) => Ok(Some(Endpoint {
                    url: url.trim_end_matches('/').to_owned(),
                    api_key,
                })),
                (Some(_), None) => Err(invalid(&format!(
                    "{name} URL is set but its API key is not (set MDM_MAIL_{upper}_API_KEY, or \
                     push.{name}_api_key_file)",
                    upper = name.to_ascii_uppercase()
                ))),
            }
        };
        let webhook = match endpoint(
            "webhook",
            env.webhook_url.or(file.webhook_url),
            env.webhook_secret,
            file.webhook_secret_file,
        ) {
            Ok(found) => found.map(|e| WebhookEndpoint {
                url: e.url,
                secret: e.api_key,
            }),
            Err(_) => {
                return Err(invalid(
                    "the push webhook URL is set but its secret is not (set \
                     MDM_MAIL_PUSH_WEBHOOK_SECRET, or push.webhook_secret_file)",
                ));
            }
        };
        Ok(PushSettings {
            concurrency,
            max_attempts,
            retry_base: positive(file.retry_base_ms, "retry_base_ms", defaults.retry_base)?,
            retry_max: positive(file.retry_max_ms, "retry_max_ms", defaults.retry_max)?,
            timeout: positive(file.timeout_ms, "timeout_ms", defaults.timeout)?,
            lease: match file.lease_seconds {
                Some(0) => return Err(invalid("push.lease_seconds must be greater than 0")),
                Some(s) => Duration::from_secs(s),
                None => defaults.lease,
            },
            answer_overdue: match file.answer_overdue_seconds {
                Some(0) => {
                    return Err(invalid(
                        "push.answer_overdue_seconds must be greater than 0",
                    ));
                }
                Some(s) => Duration::from_secs(s),
                None => defaults.answer_overdue,
            },
            nanomdm: endpoint(
                "nanomdm",
                env.nanomdm_url.or(file.nanomdm_url),
                env.nanomdm_api_key,
                file.nanomdm_api_key_file,
            )?,
            nanomdm_webhook_key: match env.nanomdm_webhook_key {
                Some(key) => Some(key),
                None => file
                    .nanomdm_webhook_key_file
                    .as_deref()
                    .map(read_secret)
                    .transpose()?,
            },
            micromdm: endpoint(
                "micromdm",
                env.micromdm_url.or(file.micromdm_url),
                env.micromdm_api_key,
                file.micromdm_api_key_file,
            )?,
            webhook,
            directory: env.directory.or(file.directory),
        })
    }
}

fn invalid(message: &str) -> ConfigError {
    ConfigError::Parse {
        path: PathBuf::from("[push]"),
        message: message.to_owned(),
    }
}

/// A secret kept in a file: its first line, trimmed.
fn read_secret(path: &Path) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return Err(ConfigError::Parse {
            path: path.to_owned(),
            message: "the file is empty; it should hold the key on its first line".into(),
        });
    }
    Ok(Secret::new(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_without_its_key_is_refused_with_the_variable_to_set() {
        let env = PushEnv {
            nanomdm_url: Some("http://mdm.example:9000/".into()),
            ..PushEnv::default()
        };
        let err = PushSettings::resolve(env, PushFile::default()).unwrap_err();
        assert!(
            err.to_string().contains("MDM_MAIL_NANOMDM_API_KEY"),
            "{err}"
        );
    }

    #[test]
    fn the_environment_wins_and_trailing_slashes_go() {
        let env = PushEnv {
            nanomdm_url: Some("http://env.example:9000/".into()),
            nanomdm_api_key: Some(Secret::new("k")),
            ..PushEnv::default()
        };
        let file: PushFile =
            toml::from_str("nanomdm_url = \"http://file.example\"\nconcurrency = 3\n").unwrap();
        let s = PushSettings::resolve(env, file).unwrap();
        assert_eq!(s.nanomdm.unwrap().url, "http://env.example:9000");
        assert_eq!(s.concurrency, 3);
    }

    #[test]
    fn the_answer_wait_is_an_hour_unless_the_file_says_otherwise_and_never_zero() {
        let default = PushSettings::resolve(PushEnv::default(), PushFile::default()).unwrap();
        assert_eq!(default.answer_overdue, Duration::from_secs(3600));
        let file: PushFile = toml::from_str("answer_overdue_seconds = 600\n").unwrap();
        let set = PushSettings::resolve(PushEnv::default(), file).unwrap();
        assert_eq!(set.answer_overdue, Duration::from_secs(600));
        let file: PushFile = toml::from_str("answer_overdue_seconds = 0\n").unwrap();
        let err = PushSettings::resolve(PushEnv::default(), file).unwrap_err();
        assert!(err.to_string().contains("answer_overdue_seconds"), "{err}");
    }

    #[test]
    fn zero_concurrency_is_refused() {
        let file: PushFile = toml::from_str("concurrency = 0\n").unwrap();
        assert!(PushSettings::resolve(PushEnv::default(), file).is_err());
    }
}
