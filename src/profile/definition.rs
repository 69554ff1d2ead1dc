//! Profile definitions: the `profiles/*.toml` files in which an admin describes, once, how
//! the mail servers look. Each file is one definition for one account type (`email` or
//! `exchange`), optionally limited to some account-address domains.
//!
//! Loading checks everything a device would otherwise discover too late — unknown keys,
//! template variables, ports, host names, value ranges of the Apple and Windows schemas —
//! and reports every problem with its file, key and reason. Which definition applies to an
//! account is decided here too, and never ambiguously: two definitions may not claim the
//! same account type and domain.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::template::{Template, TemplateError};
use crate::model::{Account, AccountKind, validate_domain};

/// Longest `host:port` Windows' EMAIL2 CSP accepts for `INSERVER` and `OUTSERVER`.
pub const WINDOWS_SERVER_MAX: usize = 62;

/// Why definitions could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// The folder cannot be listed.
    #[error("cannot read profile definitions from {dir}: {source}")]
    ReadDir {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file cannot be read.
    #[error("cannot read {file}: {source}")]
    ReadFile {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The folder holds no `*.toml` file.
    #[error(
        "no profile definitions in {dir}: add one *.toml file per mail server setup \
         (profiles/email.toml and profiles/exchange.toml in the source tree are examples)"
    )]
    Empty {
        /// The folder.
        dir: PathBuf,
    },
    /// The file is not TOML, or a key is unknown or of the wrong type.
    #[error("{file}:{line}: {}{message}", key.as_ref().map(|k| format!("key {k}: ")).unwrap_or_default())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// The key on that line, with its table (`incoming.port`), where one could be found.
        key: Option<String>,
        /// What the TOML reader said.
        message: String,
    },
    /// A value is not acceptable.
    #[error("{file}: key {key}: {reason}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The key, with its table (`exchange.mail_days_to_sync`).
        key: String,
        /// What is wrong and what would be right.
        reason: String,
    },
    /// Several problems, in file order.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<DefinitionError>),
}

impl DefinitionError {
    fn collect(mut errors: Vec<DefinitionError>) -> Result<(), DefinitionError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(DefinitionError::Several(errors)),
        }
    }

    /// Every individual problem (a [`DefinitionError::Several`] flattened).
    pub fn problems(&self) -> Vec<&DefinitionError> {
        match self {
            DefinitionError::Several(all) => all.iter().flat_map(|e| e.problems()).collect(),
            other => vec![other],
        }
    }
}

/// The protocol of an Email account's incoming server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncomingProtocol {
    /// IMAP.
    Imap,
    /// POP3.
    Pop,
}

impl IncomingProtocol {
    /// The lower-case name used in definitions.
    pub fn as_str(self) -> &'static str {
        match self {
            IncomingProtocol::Imap => "imap",
            IncomingProtocol::Pop => "pop",
        }
    }
}

/// How a mail server authenticates the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Authentication {
    /// No authentication.
    None,
    /// Password (the usual).
    Password,
    /// CRAM-MD5 challenge-response.
    CramMd5,
    /// NTLM.
    Ntlm,
    /// HTTP MD5 digest.
    HttpMd5,
}

/// Android Management API `installType` for the Gmail app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstallType {
    /// Installed automatically and cannot be removed.
    ForceInstalled,
    /// Installed automatically, removable by the user.
    Preinstalled,
    /// Available to install.
    Available,
    /// Installed automatically; setup waits for it.
    RequiredForSetup,
}

impl InstallType {
    /// The AMAPI enum name.
    pub fn as_str(self) -> &'static str {
        match self {
            InstallType::ForceInstalled => "FORCE_INSTALLED",
            InstallType::Preinstalled => "PREINSTALLED",
            InstallType::Available => "AVAILABLE",
            InstallType::RequiredForSetup => "REQUIRED_FOR_SETUP",
        }
    }
}

/// The incoming server of an Email definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// IMAP or POP.
    pub protocol: IncomingProtocol,
    /// Host name or IPv4 address.
    pub host: String,
    /// Port; `None` lets the device use the protocol's default.
    pub port: Option<u16>,
    /// Connect with TLS.
    pub tls: bool,
    /// How to authenticate.
    pub authentication: Authentication,
    /// IMAP path prefix (IMAP only).
    pub imap_path_prefix: Option<String>,
}

/// The outgoing (SMTP) server of an Email definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Host name or IPv4 address.
    pub host: String,
    /// Port; `None` lets the device try 25, 587 and 465.
    pub port: Option<u16>,
    /// Connect with TLS.
    pub tls: bool,
    /// How to authenticate.
    pub authentication: Authentication,
}

/// Which Exchange services an account syncs. At least one is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Services {
    /// Mail.
    pub mail: bool,
    /// Contacts.
    pub contacts: bool,
    /// Calendars.
    pub calendars: bool,
    /// Reminders (tasks on Windows).
    pub reminders: bool,
    /// Notes (Apple only).
    pub notes: bool,
}

impl Default for Services {
    fn default() -> Self {
        Services {
            mail: true,
            contacts: true,
            calendars: true,
            reminders: true,
            notes: true,
        }
    }
}

/// OAuth settings of an Exchange definition (Apple only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OAuth {
    /// Where to sign in; turns auto-discovery off.
    pub sign_in_url: Option<String>,
    /// Where to request tokens.
    pub token_request_url: Option<String>,
}

/// The Exchange server of an Exchange definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Host name or IPv4 address.
    pub host: String,
    /// Connect with TLS.
    pub tls: bool,
    /// Days of past mail to sync: 0 (no limit), 1, 3, 7, 14 or 31; `None` leaves the
    /// device's default.
    pub mail_days_to_sync: Option<u8>,
    /// Services to sync.
    pub services: Services,
    /// OAuth instead of a password, when set.
    pub oauth: Option<OAuth>,
    /// macOS (Exchange Web Services) port.
    pub macos_port: Option<u16>,
    /// macOS (Exchange Web Services) path, e.g. `/EWS/Exchange.asmx`.
    pub macos_path: Option<String>,
}

/// The server side of a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Servers {
    /// IMAP/POP and SMTP.
    Email {
        /// Incoming server.
        incoming: Incoming,
        /// Outgoing server.
        outgoing: Outgoing,
    },
    /// Exchange ActiveSync / Exchange Web Services.
    Exchange(Exchange),
}

/// One loaded and checked profile definition.
#[derive(Debug, Clone)]
pub struct Definition {
    pub(crate) id: String,
    pub(crate) file: PathBuf,
    pub(crate) name: Template,
    pub(crate) description: Option<Template>,
    pub(crate) organization: Option<Template>,
    pub(crate) account_name: Template,
    pub(crate) identifier_prefix: String,
    pub(crate) domains: Vec<String>,
    pub(crate) servers: Servers,
    pub(crate) android_install_type: InstallType,
}

impl Definition {
    /// The definition's name: its file name without `.toml`. Identifiers derive from it, so
    /// renaming the file makes devices see new accounts.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The file it was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Which account type it applies to.
    pub fn account_type(&self) -> AccountKind {
        match self.servers {
            Servers::Email { .. } => AccountKind::Email,
            Servers::Exchange(_) => AccountKind::Exchange,
        }
    }

    /// The account-address domains it is limited to (lower case); empty means any.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// The reverse-DNS prefix of every identifier it produces.
    pub fn identifier_prefix(&self) -> &str {
        &self.identifier_prefix
    }

    /// The server settings.
    pub fn servers(&self) -> &Servers {
        &self.servers
    }

    /// The profile's name template (`name`).
    pub fn name(&self) -> &Template {
        &self.name
    }

    /// The account's name template (`account_name`, defaulting to `name`).
    pub fn account_name(&self) -> &Template {
        &self.account_name
    }

    /// The description template, if any.
    pub fn description(&self) -> Option<&Template> {
        self.description.as_ref()
    }

    /// The organisation template, if any.
    pub fn organization(&self) -> Option<&Template> {
        self.organization.as_ref()
    }

    /// How Android installs Gmail for this definition's accounts.
    pub fn android_install_type(&self) -> InstallType {
        self.android_install_type
    }

    /// Parses and checks one definition; `file` names it in messages and its stem is the id.
    pub fn parse(file: &Path, text: &str) -> Result<Definition, DefinitionError> {
        let raw: RawDefinition = toml::from_str(text).map_err(|e| syntax_error(file, text, &e))?;
        let id = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let mut check = Check {
            file,
            errors: Vec::new(),
        };
        if id.is_empty() {
            check.fail(
                "(file name)",
                "the file name must be valid UTF-8 and not empty",
            );
        }
        let definition = check.definition(id, raw);
        DefinitionError::collect(check.errors)?;
        definition.ok_or_else(|| DefinitionError::Invalid {
            file: file.to_owned(),
            key: "(file)".into(),
            reason: "not a usable definition".into(),
        })
    }
}

/// Every loaded definition, in file-name order, checked against each other.
#[derive(Debug, Clone)]
pub struct Definitions {
    all: Vec<Definition>,
}

impl Definitions {
    /// Reads every `*.toml` file in `dir` (not its subfolders, not hidden files).
    pub fn load(dir: &Path) -> Result<Definitions, DefinitionError> {
        let entries = std::fs::read_dir(dir).map_err(|source| DefinitionError::ReadDir {
            dir: dir.to_owned(),
            source,
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| DefinitionError::ReadDir {
                dir: dir.to_owned(),
                source,
            })?;
            let path = entry.path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if !hidden && path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(DefinitionError::Empty {
                dir: dir.to_owned(),
            });
        }
        files.sort();
        let mut definitions = Vec::new();
        let mut errors = Vec::new();
        for file in files {
            let parsed = std::fs::read_to_string(&file)
                .map_err(|source| DefinitionError::ReadFile {
                    file: file.clone(),
                    source,
                })
                .and_then(|text| Definition::parse(&file, &text));
            match parsed {
                Ok(d) => definitions.push(d),
                Err(DefinitionError::Several(all)) => errors.extend(all),
                Err(e) => errors.push(e),
            }
        }
        DefinitionError::collect(errors)?;
        Definitions::new(definitions)
    }

    /// Checks definitions against each other: one identifier prefix for all, file names
    /// unique, and no account type and domain claimed twice.
    pub fn new(mut all: Vec<Definition>) -> Result<Definitions, DefinitionError> {
        if all.is_empty() {
            return Err(DefinitionError::Empty {
                dir: PathBuf::from("(none given)"),
            });
        }
        all.sort_by(|a, b| a.id.cmp(&b.id));
        let mut errors = Vec::new();
        let first = &all[0];
        for d in &all[1..] {
            if d.identifier_prefix != first.identifier_prefix {
                errors.push(DefinitionError::Invalid {
                    file: d.file.clone(),
                    key: "identifier_prefix".into(),
                    reason: format!(
                        "{:?} differs from {:?} in {}; every definition must use the same \
                         prefix, because one user's profile holds the accounts of several \
                         definitions and its identifier must not change when they do",
                        d.identifier_prefix,
                        first.identifier_prefix,
                        first.file.display()
                    ),
                });
            }
        }
        let mut claims: BTreeMap<(AccountKind, Option<&str>), &Definition> = BTreeMap::new();
        let mut previous: Option<&Definition> = None;
        for d in &all {
            if let Some(p) = previous.filter(|p| p.id == d.id) {
                errors.push(DefinitionError::Invalid {
                    file: d.file.clone(),
                    key: "(file name)".into(),
                    reason: format!("has the same name as {}", p.file.display()),
                });
            }
            previous = Some(d);
            let domains: Vec<Option<&str>> = if d.domains.is_empty() {
                vec![None]
            } else {
                d.domains.iter().map(|s| Some(s.as_str())).collect()
            };
            for domain in domains {
                if let Some(other) = claims.insert((d.account_type(), domain), d) {
                    let what = match domain {
                        Some(domain) => format!("{} accounts in {domain}", d.account_type()),
                        None => format!(
                            "{} accounts of any domain (neither lists `domains`)",
                            d.account_type()
                        ),
                    };
                    errors.push(DefinitionError::Invalid {
                        file: d.file.clone(),
                        key: if domain.is_some() {
                            "domains".into()
                        } else {
                            "account_type".into()
                        },
                        reason: format!(
                            "{} already applies to {what}; which one should win is ambiguous",
                            other.file.display()
                        ),
                    });
                }
            }
        }
        DefinitionError::collect(errors)?;
        Ok(Definitions { all })
    }

    /// The definition for `account`: the one of its type listing its address's domain,
    /// otherwise the one of its type listing no domains, otherwise none.
    pub fn for_account(&self, account: &Account) -> Option<&Definition> {
        let kind = account.kind();
        let domain = account
            .address
            .rsplit_once('@')
            .map(|(_, d)| d.trim())
            .unwrap_or_default();
        let mut fallback = None;
        for d in self.all.iter().filter(|d| d.account_type() == kind) {
            if d.domains.is_empty() {
                fallback = fallback.or(Some(d));
            } else if d.domains.iter().any(|listed| same_domain(listed, domain)) {
                return Some(d);
            }
        }
        fallback
    }

    /// The common identifier prefix.
    pub fn identifier_prefix(&self) -> &str {
        // `new` refuses an empty list, so there is always a first definition.
        self.all
            .first()
            .map(|d| d.identifier_prefix.as_str())
            .unwrap_or_default()
    }

    /// Every definition, in file-name order.
    pub fn iter(&self) -> impl Iterator<Item = &Definition> {
        self.all.iter()
    }

    /// The number of definitions.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Always false: a `Definitions` holds at least one definition.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }
}

fn same_domain(listed: &str, domain: &str) -> bool {
    if domain.is_ascii() {
        listed.eq_ignore_ascii_case(domain)
    } else {
        listed == domain.to_lowercase()
    }
}

/// The file's shape, before checks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefinition {
    name: String,
    description: Option<String>,
    organization: Option<String>,
    identifier_prefix: String,
    account_type: AccountKind,
    domains: Option<Vec<String>>,
    account_name: Option<String>,
    incoming: Option<RawIncoming>,
    outgoing: Option<RawOutgoing>,
    exchange: Option<RawExchange>,
    android: Option<RawAndroid>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIncoming {
    protocol: IncomingProtocol,
    host: String,
    port: Option<u16>,
    tls: bool,
    #[serde(default = "password")]
    authentication: Authentication,
    imap_path_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutgoing {
    host: String,
    port: Option<u16>,
    tls: bool,
    #[serde(default = "password")]
    authentication: Authentication,
}

fn password() -> Authentication {
    Authentication::Password
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExchange {
    host: String,
    tls: bool,
    mail_days_to_sync: Option<i64>,
    #[serde(default)]
    services: Services,
    #[serde(default)]
    oauth: bool,
    oauth_sign_in_url: Option<String>,
    oauth_token_request_url: Option<String>,
    macos: Option<RawMacos>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMacos {
    port: Option<u16>,
    path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAndroid {
    install_type: InstallType,
}

/// Apple's allowed values of `MailNumberOfPastDaysToSync`.
pub const MAIL_DAYS: [u8; 6] = [0, 1, 3, 7, 14, 31];

/// Days of mail to sync on the 0–5 scale Windows (`MailAgeFilter`) and Gmail
/// (`default_exchange_sync_window`) use: 0 all, 1 a day, 2 three days, 3 a week, 4 two weeks,
/// 5 a month. Each of [`MAIL_DAYS`] has its place on it.
pub fn sync_window(days: u8) -> u8 {
    match days {
        0 => 0,
        1 => 1,
        3 => 2,
        7 => 3,
        14 => 4,
        _ => 5,
    }
}

struct Check<'a> {
    file: &'a Path,
    errors: Vec<DefinitionError>,
}

impl Check<'_> {
    fn fail(&mut self, key: &str, reason: impl Into<String>) {
        self.errors.push(DefinitionError::Invalid {
            file: self.file.to_owned(),
            key: key.to_owned(),
            reason: reason.into(),
        });
    }

    fn definition(&mut self, id: String, raw: RawDefinition) -> Option<Definition> {
        let name = self.template("name", &raw.name, true);
        let description = raw
            .description
            .as_deref()
            .and_then(|t| self.template("description", t, false));
        let organization = raw
            .organization
            .as_deref()
            .and_then(|t| self.template("organization", t, false));
        let account_name = match raw.account_name.as_deref() {
            Some(t) => self.template("account_name", t, true),
            None => name.clone(),
        };
        self.identifier_prefix(&raw.identifier_prefix);
        let domains = self.domains(raw.domains.unwrap_or_default());
        let servers = match raw.account_type {
            AccountKind::Email => {
                if raw.exchange.is_some() {
                    self.fail(
                        "exchange",
                        "only for account_type = \"exchange\"; this definition is for email",
                    );
                }
                if raw.android.is_some() {
                    self.fail(
                        "android",
                        "only for account_type = \"exchange\": Android (Gmail) cannot set up \
                         IMAP/POP accounts",
                    );
                }
                let incoming = match raw.incoming {
                    Some(i) => self.incoming(i),
                    None => {
                        self.fail("incoming", "missing: an email definition needs [incoming]");
                        None
                    }
                };
                let outgoing = match raw.outgoing {
                    Some(o) => self.outgoing(o),
                    None => {
                        self.fail("outgoing", "missing: an email definition needs [outgoing]");
                        None
                    }
                };
                incoming
                    .zip(outgoing)
                    .map(|(incoming, outgoing)| Servers::Email { incoming, outgoing })
            }
            AccountKind::Exchange => {
                for (present, key) in [
                    (raw.incoming.is_some(), "incoming"),
                    (raw.outgoing.is_some(), "outgoing"),
                ] {
                    if present {
                        self.fail(
                            key,
                            "only for account_type = \"email\"; this definition is for exchange \
                             (its server is [exchange])",
                        );
                    }
                }
                match raw.exchange {
                    Some(e) => self.exchange(e).map(Servers::Exchange),
                    None => {
                        self.fail(
                            "exchange",
                            "missing: an exchange definition needs [exchange]",
                        );
                        None
                    }
                }
            }
        };
        Some(Definition {
            id,
            file: self.file.to_owned(),
            name: name?,
            description,
            organization,
            account_name: account_name?,
            identifier_prefix: raw.identifier_prefix,
            domains,
            servers: servers?,
            android_install_type: raw
                .android
                .map(|a| a.install_type)
                .unwrap_or(InstallType::ForceInstalled),
        })
    }

    fn template(&mut self, key: &str, text: &str, required: bool) -> Option<Template> {
        if required && text.trim().is_empty() {
            self.fail(key, "is empty; devices show this text, so give it one");
            return None;
        }
        let template = match Template::parse(text) {
            Ok(t) => t,
            Err(e @ (TemplateError::UnknownVariable(_) | TemplateError::Unclosed(_))) => {
                self.fail(key, e.to_string());
                return None;
            }
        };
        if let Some(bad) = template.literals().find_map(unrepresentable) {
            self.fail(key, bad);
            return None;
        }
        Some(template)
    }

    fn text(&mut self, key: &str, text: &str) {
        if let Some(bad) = unrepresentable(text) {
            self.fail(key, bad);
        }
    }

    fn identifier_prefix(&mut self, prefix: &str) {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if prefix.split('.').count() < 2 || !prefix.split('.').all(label_ok) {
            self.fail(
                "identifier_prefix",
                format!(
                    "{prefix:?} is not a reverse-DNS name like \"com.example.mail\" (at least \
                     two dot-separated labels of letters, digits and inner hyphens)"
                ),
            );
        }
    }

    fn domains(&mut self, domains: Vec<String>) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(domains.len());
        for domain in domains {
            let trimmed = domain.trim();
            let lower = if trimmed.is_ascii() {
                trimmed.to_ascii_lowercase()
            } else {
                trimmed.to_lowercase()
            };
            if let Err(e) = validate_domain(&lower) {
                self.fail("domains", format!("{domain:?} {e}"));
            } else if out.contains(&lower) {
                self.fail("domains", format!("{domain:?} is listed twice"));
            } else {
                out.push(lower);
            }
        }
        out
    }

    fn host(&mut self, key: &str, host: &str) {
        if let Err(reason) = check_host(host) {
            self.fail(key, format!("{host:?} {reason}"));
        }
    }

    fn port(&mut self, key: &str, port: Option<u16>) {
        if port == Some(0) {
            self.fail(key, "0 is not a port; give 1-65535 or leave the key out");
        }
    }

    fn windows_server(&mut self, key: &str, host: &str, port: Option<u16>) {
        let len = host.chars().count() + port.map(|p| 1 + p.to_string().len()).unwrap_or(0);
        if len > WINDOWS_SERVER_MAX {
            self.fail(
                key,
                format!(
                    "{host:?} with its port is {len} characters; Windows (EMAIL2 CSP) accepts \
                     at most {WINDOWS_SERVER_MAX}"
                ),
            );
        }
    }

    fn incoming(&mut self, raw: RawIncoming) -> Option<Incoming> {
        self.host("incoming.host", &raw.host);
        self.port("incoming.port", raw.port);
        self.windows_server("incoming.host", &raw.host, raw.port);
        if let Some(prefix) = &raw.imap_path_prefix {
            if raw.protocol == IncomingProtocol::Pop {
                self.fail(
                    "incoming.imap_path_prefix",
                    "only for protocol = \"imap\"; POP has no folders",
                );
            }
            self.text("incoming.imap_path_prefix", prefix);
        }
        Some(Incoming {
            protocol: raw.protocol,
            host: raw.host,
            port: raw.port,
            tls: raw.tls,
            authentication: raw.authentication,
            imap_path_prefix: raw.imap_path_prefix,
        })
    }

    fn outgoing(&mut self, raw: RawOutgoing) -> Option<Outgoing> {
        self.host("outgoing.host", &raw.host);
        self.port("outgoing.port", raw.port);
        self.windows_server("outgoing.host", &raw.host, raw.port);
        Some(Outgoing {
            host: raw.host,
            port: raw.port,
            tls: raw.tls,
            authentication: raw.authentication,
        })
    }

    fn exchange(&mut self, raw: RawExchange) -> Option<Exchange> {
        self.host("exchange.host", &raw.host);
        let mail_days_to_sync = match raw.mail_days_to_sync {
            None => None,
            Some(d) => match u8::try_from(d).ok().filter(|d| MAIL_DAYS.contains(d)) {
                Some(d) => Some(d),
                None => {
                    self.fail(
                        "exchange.mail_days_to_sync",
                        format!("{d} is not one of 0 (no limit), 1, 3, 7, 14 or 31"),
                    );
                    None
                }
            },
        };
        let s = raw.services;
        if !(s.mail || s.contacts || s.calendars || s.reminders || s.notes) {
            self.fail(
                "exchange.services",
                "every service is off; at least one of mail, contacts, calendars, reminders and \
                 notes must be true",
            );
        }
        let oauth = if raw.oauth {
            for (key, url) in [
                ("exchange.oauth_sign_in_url", &raw.oauth_sign_in_url),
                (
                    "exchange.oauth_token_request_url",
                    &raw.oauth_token_request_url,
                ),
            ] {
                if let Some(url) = url
                    && let Err(reason) = check_url(url)
                {
                    self.fail(key, format!("{url:?} {reason}"));
                }
            }
            Some(OAuth {
                sign_in_url: raw.oauth_sign_in_url,
                token_request_url: raw.oauth_token_request_url,
            })
        } else {
            for (key, url) in [
                ("exchange.oauth_sign_in_url", &raw.oauth_sign_in_url),
                (
                    "exchange.oauth_token_request_url",
                    &raw.oauth_token_request_url,
                ),
            ] {
                if url.is_some() {
                    self.fail(key, "only used with oauth = true");
                }
            }
            None
        };
        let (macos_port, macos_path) = match raw.macos {
            Some(m) => {
                self.port("exchange.macos.port", m.port);
                if let Some(path) = &m.path
                    && (!path.starts_with('/') || path.chars().any(|c| c.is_whitespace()))
                {
                    self.fail(
                        "exchange.macos.path",
                        format!("{path:?} is not a URL path like \"/EWS/Exchange.asmx\""),
                    );
                }
                (m.port, m.path)
            }
            None => (None, None),
        };
        Some(Exchange {
            host: raw.host,
            tls: raw.tls,
            mail_days_to_sync,
            services: s,
            oauth,
            macos_port,
            macos_path,
        })
    }
}

/// Why `text` cannot travel in an XML profile, if it cannot: XML 1.0 has no way to carry
/// most control characters, even escaped.
pub(crate) fn unrepresentable(text: &str) -> Option<String> {
    text.chars().find(|&c| !xml_char(c)).map(|c| {
        format!(
            "contains the control character U+{:04X}, which XML profiles cannot carry",
            c as u32
        )
    })
}

/// Whether XML 1.0 can carry `c` in text content.
pub(crate) fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn check_host(host: &str) -> Result<(), &'static str> {
    if host.is_empty() {
        return Err("is empty");
    }
    if host.contains("://") {
        return Err("is a URL; write the host name only, without the scheme");
    }
    if host.contains(':') {
        return Err("has a port or is an IPv6 address; write the port in `port`");
    }
    if host.contains('/') {
        return Err("has a path; write the host name only");
    }
    if host.len() > 253 {
        return Err("is longer than 253 characters");
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err("has an empty label (two dots, or a dot at an end)");
        }
        if label.len() > 63 {
            return Err("has a label longer than 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("has a label starting or ending with a hyphen");
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("is not a host name (letters, digits, hyphens and dots only)");
        }
    }
    Ok(())
}

fn check_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("https://")
        .ok_or("is not an https:// URL")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    if host.is_empty() || check_host(host).is_err() {
        return Err("has no valid host name");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains spaces or control characters");
    }
    Ok(())
}

/// A TOML error as `file:line: key …: message`, the key found from the error's position.
fn syntax_error(file: &Path, text: &str, error: &toml::de::Error) -> DefinitionError {
    let offset = error.span().map(|s| s.start).unwrap_or(0).min(text.len());
    let line = text[..offset].matches('\n').count() + 1;
    DefinitionError::Syntax {
        file: file.to_owned(),
        line,
        key: key_at(text, offset),
        message: error.message().trim().to_owned(),
    }
}

/// The dotted key of the `key = value` line holding `offset`, prefixed with its `[table]`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let end = text[offset..]
        .find('\n')
        .map(|i| offset + i)
        .unwrap_or(text.len());
    let (key, _) = text[start..end].split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('#') || key.starts_with('[') {
        return None;
    }
    let table = text[..start].lines().rev().find_map(|l| {
        let l = l.trim();
        (l.starts_with('[') && !l.starts_with("[[")).then(|| l.trim_matches(['[', ']']).trim())
    });
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_owned(),
    })
}

impl fmt::Display for Authentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Authentication::None => "none",
            Authentication::Password => "password",
            Authentication::CramMd5 => "cram-md5",
            Authentication::Ntlm => "ntlm",
            Authentication::HttpMd5 => "http-md5",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMAIL: &str = r#"
name = "Example mail"
identifier_prefix = "com.example.mail"
account_type = "email"

[incoming]
protocol = "imap"
host = "imap.example.com"
port = 993
tls = true

[outgoing]
host = "smtp.example.com"
port = 465
tls = true
"#;

    fn parse(text: &str) -> Result<Definition, DefinitionError> {
        Definition::parse(Path::new("profiles/email.toml"), text)
    }

    fn problems(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .problems()
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn a_minimal_email_definition_takes_the_defaults() {
        let d = parse(EMAIL).unwrap();
        assert_eq!(d.id(), "email");
        assert_eq!(d.account_type(), AccountKind::Email);
        assert_eq!(d.account_name().source(), "Example mail");
        let Servers::Email { incoming, outgoing } = d.servers() else {
            panic!("email servers expected");
        };
        assert_eq!(incoming.authentication, Authentication::Password);
        assert_eq!(outgoing.port, Some(465));
    }

    #[test]
    fn an_unknown_key_names_the_line_and_the_key() {
        let text = EMAIL.replace("port = 465", "prot = 465");
        let err = problems(&text);
        assert_eq!(err.len(), 1);
        assert!(
            err[0].starts_with("profiles/email.toml:14: key outgoing.prot: unknown field `prot`"),
            "{}",
            err[0]
        );
    }

    #[test]
    fn a_wrongly_typed_value_names_its_key() {
        let text = EMAIL.replace("port = 993", "port = \"993\"");
        let err = problems(&text);
        assert!(
            err[0].starts_with("profiles/email.toml:9: key incoming.port: "),
            "{}",
            err[0]
        );
    }

    #[test]
    fn every_invalid_value_is_reported_with_its_key() {
        let text = EMAIL
            .replace("\"com.example.mail\"", "\"example\"")
            .replace("\"Example mail\"", "\"Mail of {{user}}\"")
            .replace(
                "host = \"imap.example.com\"",
                "host = \"https://imap.example.com\"",
            )
            .replace("port = 465", "port = 0");
        let err = problems(&text);
        assert_eq!(
            err,
            vec![
                "profiles/email.toml: key name: unknown variable {{user}} (known: \
                 {{display_name}}, {{user_email}}, {{email_address}})",
                "profiles/email.toml: key identifier_prefix: \"example\" is not a reverse-DNS \
                 name like \"com.example.mail\" (at least two dot-separated labels of letters, \
                 digits and inner hyphens)",
                "profiles/email.toml: key incoming.host: \"https://imap.example.com\" is a URL; \
                 write the host name only, without the scheme",
                "profiles/email.toml: key outgoing.port: 0 is not a port; give 1-65535 or leave \
                 the key out",
            ]
        );
    }

    #[test]
    fn exchange_values_are_checked_against_apple_ranges() {
        let text = r#"
name = "Exchange"
identifier_prefix = "com.example.mail"
account_type = "exchange"
[exchange]
host = "mail.example.com"
tls = true
mail_days_to_sync = 5
oauth_sign_in_url = "https://login.example.com/"
[exchange.services]
mail = false
contacts = false
calendars = false
reminders = false
notes = false
"#;
        let err = problems(text);
        assert_eq!(
            err,
            vec![
                "profiles/email.toml: key exchange.mail_days_to_sync: 5 is not one of 0 (no \
                 limit), 1, 3, 7, 14 or 31",
                "profiles/email.toml: key exchange.services: every service is off; at least one \
                 of mail, contacts, calendars, reminders and notes must be true",
                "profiles/email.toml: key exchange.oauth_sign_in_url: only used with oauth = true",
            ]
        );
    }

    #[test]
    fn tables_of_the_other_account_type_are_refused() {
        let text = format!("{EMAIL}\n[exchange]\nhost = \"x.example.com\"\ntls = true\n");
        assert_eq!(
            problems(&text),
            vec![
                "profiles/email.toml: key exchange: only for account_type = \"exchange\"; this \
                 definition is for email"
            ]
        );
    }

    #[test]
    fn windows_server_length_limit_is_enforced_at_load() {
        let long = format!("{}.example.com", "a".repeat(50));
        let text = EMAIL.replace("imap.example.com", &long);
        let err = problems(&text);
        assert_eq!(err.len(), 1);
        assert!(err[0].contains("66 characters; Windows (EMAIL2 CSP) accepts at most 62"));
    }

    #[test]
    fn control_characters_in_text_are_refused() {
        let text = EMAIL.replace("Example mail", "Example\\u0007mail");
        let err = problems(&text);
        assert!(err[0].contains("key name: contains the control character U+0007"));
    }

    #[test]
    fn hosts_are_plain_host_names() {
        assert!(check_host("mail.example.com").is_ok());
        assert!(check_host("exchange01").is_ok());
        assert!(check_host("10.0.0.7").is_ok());
        assert!(check_host("mail.example.com:993").is_err());
        assert!(check_host("mail..example.com").is_err());
        assert!(check_host("mail_1.example.com").is_err());
        assert!(check_host("").is_err());
    }

    #[test]
    fn oauth_urls_must_be_https() {
        assert!(check_url("https://login.example.com/oauth2/authorize?x=1").is_ok());
        assert!(check_url("https://login.example.com:8443/a").is_ok());
        assert!(check_url("http://login.example.com/").is_err());
        assert!(check_url("https:///path").is_err());
        assert!(check_url("https://a.example.com/a b").is_err());
    }

    #[test]
    fn xml_characters_follow_the_xml_1_0_rules() {
        assert!(xml_char('\t') && xml_char('\n') && xml_char('\r') && xml_char('é'));
        assert!(!xml_char('\u{0}') && !xml_char('\u{1b}') && !xml_char('\u{FFFE}'));
        assert!(xml_char('\u{1F600}'));
    }
}
