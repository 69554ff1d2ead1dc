//! Settings: command-line flags, then `MDM_MAIL_*` environment variables, then the config file
//! (`--config`, default `./mdm-mail.toml` when present), then built-in defaults. Secrets come
//! only from the environment or from files the config names, never from the config itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::profile::{Definitions, Profiles, SignError, Signer};
use crate::secrets::KeySource;

/// The database used when none is configured: an SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://mdm-mail.db";
/// Where `serve` listens by default: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The largest upload the server accepts, in MiB, unless configured.
pub const DEFAULT_UPLOAD_LIMIT_MIB: u64 = 64;
/// The config file read when present and none is named.
pub const DEFAULT_CONFIG_FILE: &str = "mdm-mail.toml";

/// Resolved settings.
#[derive(Clone)]
pub struct Settings {
    /// Database URL or SQLite path.
    pub database_url: String,
    /// Folder of profile definitions.
    pub profiles_dir: PathBuf,
    /// Address `serve` binds.
    pub listen: SocketAddr,
    /// `MDM_MAIL_SECRET_KEY`: the master key for stored passwords, base64 or hex.
    pub secret_key: Option<String>,
    /// A file holding the master key (`MDM_MAIL_SECRET_KEY_FILE` or `secret_key_file`).
    pub secret_key_file: Option<PathBuf>,
    /// Where the identity that signs Apple profiles is.
    pub signing: Signing,
    /// The largest request body `serve` accepts, in bytes (`upload_limit_mib`).
    pub upload_limit: u64,
    /// Profile push: transports and queue tuning.
    pub push: crate::push::PushSettings,
    /// How failed wizard sign-ins slow the next ones (`[sign_in]`).
    pub sign_in: crate::auth::Throttle,
}

/// The files of the identity that signs Apple profiles: a PEM certificate chain and key, or
/// a PKCS#12 file whose password comes from `MDM_MAIL_SIGNING_PASSWORD`. None: unsigned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signing {
    /// PEM file with the signing certificate and its chain.
    pub certificate: Option<PathBuf>,
    /// PEM file with the private key (it may also be in `certificate`).
    pub key: Option<PathBuf>,
    /// PKCS#12 file with certificate, chain and key.
    pub pkcs12: Option<PathBuf>,
}

impl Signing {
    /// Loads the configured identity, if any. `password` unlocks a PKCS#12 file.
    pub fn signer(&self, password: Option<&str>) -> Result<Option<Signer>, ConfigError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let invalid = |path: &Path| {
            let path = path.to_owned();
            move |e: SignError| ConfigError::Parse {
                path,
                message: e.to_string(),
            }
        };
        match (&self.certificate, &self.key, &self.pkcs12) {
            (None, None, None) => Ok(None),
            (Some(certificate), key, None) => {
                let chain = read(certificate)?;
                let key = match key {
                    Some(path) => read(path)?,
                    None => chain.clone(),
                };
                Signer::from_pem(&chain, &key)
                    .map(Some)
                    .map_err(invalid(certificate))
            }
            (None, None, Some(pkcs12)) => {
                Signer::from_pkcs12(&read(pkcs12)?, password.unwrap_or(""))
                    .map(Some)
                    .map_err(invalid(pkcs12))
            }
            (None, Some(key), None) => Err(ConfigError::Parse {
                path: key.clone(),
                message: "a signing key was given without its certificate (signing.certificate)"
                    .into(),
            }),
            (_, _, Some(pkcs12)) => Err(ConfigError::Parse {
                path: pkcs12.clone(),
                message: "give either a PKCS#12 file or a PEM certificate and key, not both".into(),
            }),
        }
    }
}

impl Settings {
    /// What rendering stored users' profiles needs: the definitions, the signing identity
    /// (a PKCS#12 password from `MDM_MAIL_SIGNING_PASSWORD`) and where the key that opens
    /// stored passwords is.
    pub fn profiles(&self) -> Result<Profiles, ConfigError> {
        let definitions = Definitions::load(&self.profiles_dir)?;
        let password = std::env::var("MDM_MAIL_SIGNING_PASSWORD").ok();
        let signer = self.signing.signer(password.as_deref())?;
        Ok(Profiles {
            definitions,
            signer,
            secrets: self.key_source(),
        })
    }

    /// Where the key for stored passwords comes from: the environment, a named file, else a
    /// file beside the SQLite database (created on first use); PostgreSQL needs one of the
    /// first two.
    pub fn key_source(&self) -> KeySource {
        if let Some(key) = &self.secret_key {
            return KeySource::Env(key.clone());
        }
        if let Some(path) = &self.secret_key_file {
            return KeySource::File(path.clone());
        }
        match crate::store::backend_of(&self.database_url) {
            Ok(crate::store::Backend::Sqlite) => crate::store::sqlite_path(&self.database_url)
                .map_or(KeySource::Missing, |db| {
                    KeySource::CreateBeside(KeySource::beside(&db))
                }),
            _ => KeySource::Missing,
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &crate::store::redact(&self.database_url))
            .field("profiles_dir", &self.profiles_dir)
            .field("listen", &self.listen)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "***"))
            .field("secret_key_file", &self.secret_key_file)
            .field("signing", &self.signing)
            .field("upload_limit", &self.upload_limit)
            .field("push", &self.push)
            .field("sign_in", &self.sign_in)
            .finish()
    }
}

/// Values given on the command line or in the environment; they win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--database-url` / `MDM_MAIL_DATABASE_URL`.
    pub database_url: Option<String>,
    /// `--profiles` / `MDM_MAIL_PROFILES`.
    pub profiles_dir: Option<PathBuf>,
    /// `serve --listen`.
    pub listen: Option<SocketAddr>,
    /// `MDM_MAIL_SECRET_KEY` (environment only: a flag would show in process listings).
    pub secret_key: Option<String>,
    /// `MDM_MAIL_SECRET_KEY_FILE`.
    pub secret_key_file: Option<PathBuf>,
    /// `MDM_MAIL_SIGNING_CERTIFICATE`, `MDM_MAIL_SIGNING_KEY`, `MDM_MAIL_SIGNING_PKCS12`.
    pub signing: Signing,
    /// `MDM_MAIL_UPLOAD_LIMIT_MIB`.
    pub upload_limit_mib: Option<u64>,
    /// `MDM_MAIL_NANOMDM_URL`, `MDM_MAIL_NANOMDM_API_KEY` and the other push variables.
    pub push: crate::push::PushEnv,
}

/// The config file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    database_url: Option<String>,
    profiles: Option<PathBuf>,
    listen: Option<SocketAddr>,
    secret_key_file: Option<PathBuf>,
    #[serde(default)]
    signing: Signing,
    upload_limit_mib: Option<u64>,
    #[serde(default)]
    push: crate::push::PushFile,
    #[serde(default)]
    sign_in: crate::auth::Throttle,
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said, with line and key.
        message: String,
    },
    /// The profile definitions do not load.
    #[error(transparent)]
    Definitions(#[from] crate::profile::DefinitionError),
}

impl Settings {
    /// Resolves settings from `overrides`, the config file and defaults. An explicitly named
    /// file must exist; the default one is read only if present.
    pub fn load(config: Option<&Path>, overrides: Overrides) -> Result<Settings, ConfigError> {
        let file = match config {
            Some(path) => read_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                read_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileSettings::default(),
        };
        Ok(Settings {
            database_url: overrides
                .database_url
                .or(file.database_url)
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            profiles_dir: overrides
                .profiles_dir
                .or(file.profiles)
                .unwrap_or_else(|| PathBuf::from("profiles")),
            listen: overrides.listen.or(file.listen).unwrap_or_else(|| {
                DEFAULT_LISTEN
                    .parse()
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)))
            }),
            secret_key: overrides.secret_key,
            secret_key_file: overrides.secret_key_file.or(file.secret_key_file),
            signing: Signing {
                certificate: overrides.signing.certificate.or(file.signing.certificate),
                key: overrides.signing.key.or(file.signing.key),
                pkcs12: overrides.signing.pkcs12.or(file.signing.pkcs12),
            },
            upload_limit: overrides
                .upload_limit_mib
                .or(file.upload_limit_mib)
                .unwrap_or(DEFAULT_UPLOAD_LIMIT_MIB)
                .saturating_mul(1024 * 1024),
            push: crate::push::PushSettings::resolve(overrides.push, file.push)?,
            sign_in: file.sign_in,
        })
    }
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "database_url = \"file.db\"\nlisten = \"0.0.0.0:9000\"\n",
        )
        .unwrap();
        let s = Settings::load(
            Some(&path),
            Overrides {
                database_url: Some("cli.db".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(s.database_url, "cli.db");
        assert_eq!(s.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(s.profiles_dir, PathBuf::from("profiles"));
    }

    #[test]
    fn the_key_file_of_a_sqlite_store_sits_beside_it() {
        let s = Settings::load(
            None,
            Overrides {
                database_url: Some("sqlite://data/m.db".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(s.key_source(), KeySource::CreateBeside("data/m.key".into()));
        let pg = Settings {
            database_url: "postgres://h/db".into(),
            ..s
        };
        assert_eq!(pg.key_source(), KeySource::Missing);
    }

    #[test]
    fn the_sign_in_throttle_comes_from_the_file_with_defaults_for_what_it_omits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[sign_in]\nfree_failures_per_address = 3\ntrusted_proxies = [\"10.0.0.5\"]\n",
        )
        .unwrap();
        let s = Settings::load(Some(&path), Overrides::default()).unwrap();
        assert_eq!(
            s.sign_in,
            crate::auth::Throttle {
                free_failures_per_address: 3,
                trusted_proxies: vec!["10.0.0.5".parse().unwrap()],
                ..crate::auth::Throttle::default()
            }
        );
        std::fs::write(&path, "[sign_in]\nfree_failures = 3\n").unwrap();
        let err = Settings::load(Some(&path), Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("free_failures"), "{err}");
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "databse_url = \"x\"\n").unwrap();
        let err = Settings::load(Some(&path), Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("databse_url"), "{err}");
    }
}
