//! Per-user email configuration profiles for Apple, Windows and Android devices.
//!
//! The admin describes the mail servers once, in [`definition`]s (`profiles/*.toml`); a user's
//! imported accounts supply the per-user values. [`render`] turns one user's accounts into
//! the profile one of that user's devices needs:
//!
//! - **Apple** (iOS, iPadOS, macOS, [`apple`]): a `Configuration` profile (`.mobileconfig`,
//!   XML plist) with one payload per account — `com.apple.mail.managed` for Email,
//!   `com.apple.eas.account` for Exchange on iOS and iPadOS, `com.apple.ews.account` for
//!   Exchange on macOS, where the profile is user-scoped. [`Signer`] wraps it in CMS
//!   SignedData when a signing identity is configured.
//! - **Windows** ([`windows`]): SyncML inside `<Atomic>` for the ActiveSync CSP (Exchange)
//!   and the EMAIL2 CSP (Email), as the bare command fragment or a full SyncML message, plus
//!   the SyncML that removes the accounts again.
//! - **Android** ([`android`]): an Android Management API `applications[]` entry with the
//!   Gmail managed configuration for the Exchange account. IMAP/POP accounts cannot be
//!   configured there and are reported as skipped, not silently dropped.
//!
//! Rendering is a pure function of its inputs: the same accounts and definitions give
//! byte-identical output, in whatever order the accounts come, because every identifier is
//! derived ([`identity`]) rather than random. Accounts are ordered by definition file name,
//! type and address.
//!
//! A user's profile identifier is `{identifier_prefix}.{user uuid}`. One profile holds the
//! accounts of several definitions, and its identifier must not change when the user gains
//! or loses accounts, so every definition must declare the same `identifier_prefix`
//! (loading refuses them otherwise) rather than one being picked per render. The profile's
//! own name, description and organisation (Apple) come from the definition of its first
//! account.
//!
//! Every value goes through the plist, XML or JSON serialiser, so names and passwords come
//! out exactly as stored, whatever they contain; the few characters XML cannot carry at all
//! make an account skipped with the reason.

pub mod android;
pub mod apple;
pub mod definition;
pub mod files;
pub mod identity;
pub mod sign;
pub mod template;
mod user;
pub mod windows;

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use definition::{Definition, DefinitionError, Definitions};
pub use identity::profile_identifier;
pub use sign::{SignError, Signer};
pub use user::{ProfileError, Profiles};
pub use windows::{SyncHeader, SyncMlCommand, SyncMlForm};

use crate::model::{Account, AccountDetails, AccountKind, Platform, Secret, normalize_email};
use definition::{Exchange, Incoming, Outgoing, Servers};
use template::Values;

/// What replaces every password in a preview ([`RenderOptions::redact_secrets`]).
pub const REDACTED: &str = "********";

/// How to render.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Replace every password with [`REDACTED`], for previews in the admin UI. Accounts
    /// without a stored password still have none, so the preview shows what the device
    /// will prompt for.
    pub redact_secrets: bool,
    /// Windows only: the bare command fragment (the default) or a full SyncML message.
    pub syncml: SyncMlForm,
    /// Windows only: `Add` the accounts (first install, the default) or `Replace` their
    /// settings in place (update of accounts a device already has).
    pub syncml_command: SyncMlCommand,
}

/// A rendered profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The profile's stable identifier, the same on every render for this user:
    /// `{identifier_prefix}.{user uuid}`. On Apple devices it is the top-level
    /// `PayloadIdentifier`, which `RemoveProfile` takes.
    pub identifier: String,
    /// MIME type of [`Rendered::body`].
    pub content_type: &'static str,
    /// File name extension for downloads, without the dot.
    pub extension: &'static str,
    /// The profile document. Apple profiles are unsigned here; see [`Signer::sign`].
    pub body: Vec<u8>,
    /// The accounts the profile holds, in the order it holds them.
    pub accounts: Vec<RenderedAccount>,
    /// The user's accounts left out, with the reason.
    pub skipped: Vec<Skipped>,
}

/// An account inside a rendered profile, with the identity devices know it by. Push keeps
/// these to remove Windows accounts later ([`windows::removal`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedAccount {
    /// The account's address.
    pub address: String,
    /// Its type, which decides the Windows CSP.
    pub kind: AccountKind,
    /// The definition that rendered it (its file name without `.toml`).
    pub definition: String,
    /// Apple `PayloadUUID` and Windows account GUID.
    pub uuid: Uuid,
}

/// An account that is not in the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The account's address.
    pub address: String,
    /// Its type.
    pub kind: AccountKind,
    /// Why it was left out.
    pub reason: SkipReason,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.address, self.kind, self.reason)
    }
}

/// Why an account was left out of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// No definition applies to the account's type and domain.
    NoDefinition,
    /// The platform cannot configure such an account.
    Unsupported {
        /// Why, for a person.
        why: &'static str,
    },
    /// A value holds a character the profile format cannot carry.
    Unrepresentable {
        /// Which value.
        field: &'static str,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NoDefinition => f.write_str(
                "no profile definition applies to this account type and domain (check \
                 account_type and domains in profiles/)",
            ),
            SkipReason::Unsupported { why } => f.write_str(why),
            SkipReason::Unrepresentable { field } => write!(
                f,
                "its {field} contains a control character that XML profiles cannot carry; \
                 correct it and import again"
            ),
        }
    }
}

/// Why no profile could be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The user has no accounts at all.
    #[error("{user} has no mail accounts, so there is no profile to render")]
    NoAccounts {
        /// The user.
        user: String,
    },
    /// Every account was skipped.
    #[error(
        "no {platform} profile for {user}: {}",
        skipped.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    NothingToRender {
        /// The user.
        user: String,
        /// The platform.
        platform: Platform,
        /// Every account, with the reason it was left out.
        skipped: Vec<Skipped>,
    },
    /// An account of another user was passed in.
    #[error("account {address} belongs to {owner}, not to {user}")]
    ForeignAccount {
        /// The user being rendered.
        user: String,
        /// The account's owner.
        owner: String,
        /// The account's address.
        address: String,
    },
    /// The same account was passed in twice.
    #[error("{user} has the {kind} account {address} twice")]
    DuplicateAccount {
        /// The user.
        user: String,
        /// The account type.
        kind: AccountKind,
        /// The address.
        address: String,
    },
    /// The serialiser failed (it does not, writing to memory; kept so that no error is
    /// swallowed).
    #[error("cannot write the {platform} profile: {message}")]
    Serialize {
        /// The platform.
        platform: Platform,
        /// What the serialiser said.
        message: String,
    },
}

/// Renders the profile of `user_email` for `platform`: one payload (Apple), account node
/// (Windows) or managed configuration (Android) per account a definition applies to.
///
/// `accounts` are the user's accounts in any order. Accounts that no definition applies
/// to, that the platform cannot configure, or whose values the format cannot carry are
/// listed in [`Rendered::skipped`]; when that leaves nothing, or there are no accounts,
/// the result is an error saying why rather than an empty profile.
pub fn render(
    user_email: &str,
    accounts: &[Account],
    platform: Platform,
    definitions: &Definitions,
    options: &RenderOptions,
) -> Result<Rendered, RenderError> {
    let plan = Plan::new(user_email, accounts, platform, definitions)?;
    let (body, content_type, extension) = match platform {
        Platform::Ios | Platform::Ipados | Platform::Macos => (
            apple::render(&plan, platform, options)?,
            apple::CONTENT_TYPE,
            apple::EXTENSION,
        ),
        Platform::Windows => (
            windows::render(&plan, options)?,
            windows::content_type(&options.syncml),
            windows::EXTENSION,
        ),
        Platform::Android => (
            android::render(&plan)?,
            android::CONTENT_TYPE,
            android::EXTENSION,
        ),
    };
    Ok(Rendered {
        identifier: plan.identifier,
        content_type,
        extension,
        body,
        accounts: plan
            .entries
            .iter()
            .map(|e| RenderedAccount {
                address: e.account.address.clone(),
                kind: e.account.kind(),
                definition: e.definition.id.clone(),
                uuid: e.uuid,
            })
            .collect(),
        skipped: plan.skipped,
    })
}

/// What a profile will hold: the accounts that render, each with its definition and
/// identity, in their fixed order, and the accounts that do not.
pub(crate) struct Plan<'a> {
    pub(crate) user_email: &'a str,
    pub(crate) identifier: String,
    pub(crate) prefix: &'a str,
    pub(crate) entries: Vec<Entry<'a>>,
    pub(crate) skipped: Vec<Skipped>,
}

/// One account that renders.
pub(crate) struct Entry<'a> {
    pub(crate) definition: &'a Definition,
    pub(crate) account: &'a Account,
    pub(crate) settings: Settings<'a>,
    pub(crate) uuid: Uuid,
    address_key: String,
}

/// A definition's servers paired with an account's fields of the same type.
pub(crate) enum Settings<'a> {
    Email {
        incoming: &'a Incoming,
        outgoing: &'a Outgoing,
        incoming_username: &'a str,
        incoming_password: Option<&'a Secret>,
        outgoing_username: &'a str,
        outgoing_password: Option<&'a Secret>,
    },
    Exchange {
        exchange: &'a Exchange,
        username: &'a str,
        domain: Option<&'a str>,
        password: Option<&'a Secret>,
    },
}

impl<'a> Settings<'a> {
    /// Pairs `definition` with `account`; `None` when their types differ.
    fn pair(definition: &'a Definition, account: &'a Account) -> Option<Settings<'a>> {
        match (&definition.servers, &account.details) {
            (
                Servers::Email { incoming, outgoing },
                AccountDetails::Email {
                    incoming_username,
                    incoming_password,
                    outgoing_username,
                    outgoing_password,
                    ..
                },
            ) => Some(Settings::Email {
                incoming,
                outgoing,
                incoming_username,
                incoming_password: incoming_password.as_ref(),
                outgoing_username,
                outgoing_password: outgoing_password.as_ref(),
            }),
            (
                Servers::Exchange(exchange),
                AccountDetails::Exchange {
                    username,
                    domain,
                    password,
                },
            ) => Some(Settings::Exchange {
                exchange,
                username,
                domain: domain.as_deref(),
                password: password.as_ref(),
            }),
            _ => None,
        }
    }
}

impl<'a> Plan<'a> {
    fn new(
        user_email: &'a str,
        accounts: &'a [Account],
        platform: Platform,
        definitions: &'a Definitions,
    ) -> Result<Plan<'a>, RenderError> {
        if accounts.is_empty() {
            return Err(RenderError::NoAccounts {
                user: user_email.to_owned(),
            });
        }
        let user_key = normalize_email(user_email);
        let mut entries = Vec::with_capacity(accounts.len());
        let mut skipped = Vec::new();
        let skip = |account: &Account, reason| Skipped {
            address: account.address.clone(),
            kind: account.kind(),
            reason,
        };
        for account in accounts {
            if normalize_email(&account.user_email) != user_key {
                return Err(RenderError::ForeignAccount {
                    user: user_email.to_owned(),
                    owner: account.user_email.clone(),
                    address: account.address.clone(),
                });
            }
            let Some((definition, settings)) = definitions
                .for_account(account)
                .and_then(|d| Settings::pair(d, account).map(|s| (d, s)))
            else {
                skipped.push(skip(account, SkipReason::NoDefinition));
                continue;
            };
            if platform == Platform::Android && account.kind() == AccountKind::Email {
                skipped.push(skip(
                    account,
                    SkipReason::Unsupported {
                        why: android::EMAIL_UNSUPPORTED,
                    },
                ));
                continue;
            }
            if platform != Platform::Android
                && let Some(field) = unrepresentable_field(account)
            {
                skipped.push(skip(account, SkipReason::Unrepresentable { field }));
                continue;
            }
            entries.push(Entry {
                definition,
                account,
                settings,
                uuid: identity::account_uuid(definition, account),
                address_key: normalize_email(&account.address),
            });
        }
        entries.sort_by(|a, b| a.order().cmp(&b.order()));
        for pair in entries.windows(2) {
            if pair[0].account.kind() == pair[1].account.kind()
                && pair[0].address_key == pair[1].address_key
            {
                return Err(RenderError::DuplicateAccount {
                    user: user_email.to_owned(),
                    kind: pair[0].account.kind(),
                    address: pair[0].account.address.clone(),
                });
            }
        }
        if platform == Platform::Android && entries.len() > 1 {
            for extra in entries.split_off(1) {
                skipped.push(skip(
                    extra.account,
                    SkipReason::Unsupported {
                        why: android::ONE_ACCOUNT_ONLY,
                    },
                ));
            }
        }
        // Reported in a fixed order too, whatever order the accounts came in.
        skipped.sort_by_cached_key(|s| (s.kind, normalize_email(&s.address)));
        if entries.is_empty() {
            return Err(RenderError::NothingToRender {
                user: user_email.to_owned(),
                platform,
                skipped,
            });
        }
        let prefix = definitions.identifier_prefix();
        Ok(Plan {
            user_email,
            identifier: identity::profile_identifier(prefix, user_email),
            prefix,
            entries,
            skipped,
        })
    }
}

impl<'a> Entry<'a> {
    /// Where the account sits in the profile: by definition, type and address.
    fn order(&self) -> (&str, AccountKind, &str) {
        (&self.definition.id, self.account.kind(), &self.address_key)
    }

    /// The name shown on sent mail: the Email account's own display name, else the owner's.
    pub(crate) fn display_name(&self) -> &'a str {
        match &self.account.details {
            AccountDetails::Email { display_name, .. } if !display_name.trim().is_empty() => {
                display_name
            }
            _ => &self.account.user_display_name,
        }
    }

    /// The values of the template variables for this account.
    pub(crate) fn values(&self) -> Values<'a> {
        Values {
            display_name: self.display_name(),
            user_email: &self.account.user_email,
            email_address: &self.account.address,
        }
    }
}

/// A password as it goes into a profile: as stored, or [`REDACTED`] in previews.
pub(crate) fn secret<'s>(secret: Option<&'s Secret>, options: &RenderOptions) -> Option<&'s str> {
    secret.map(|s| {
        if options.redact_secrets {
            REDACTED
        } else {
            s.expose()
        }
    })
}

/// An Exchange user name as Apple and Gmail want it: `DOMAIN\user` when a domain is stored
/// and the name is not already qualified (`DOMAIN\user` or `user@domain`).
pub(crate) fn qualified_username<'s>(
    username: &'s str,
    domain: Option<&str>,
) -> std::borrow::Cow<'s, str> {
    match domain.map(str::trim).filter(|d| !d.is_empty()) {
        Some(domain) if !username.contains(['\\', '@']) => {
            std::borrow::Cow::Owned(format!("{domain}\\{username}"))
        }
        _ => std::borrow::Cow::Borrowed(username),
    }
}

/// The first value of `account` that XML cannot carry, by its name for people.
fn unrepresentable_field(account: &Account) -> Option<&'static str> {
    let bad = |s: &str| !s.chars().all(definition::xml_char);
    let bad_secret = |s: &Option<Secret>| s.as_ref().is_some_and(|s| bad(s.expose()));
    if bad(&account.user_email) {
        return Some("user email");
    }
    if bad(&account.user_display_name) {
        return Some("user display name");
    }
    if bad(&account.address) {
        return Some("email address");
    }
    match &account.details {
        AccountDetails::Email {
            display_name,
            incoming_username,
            incoming_password,
            outgoing_username,
            outgoing_password,
        } => {
            if bad(display_name) {
                Some("display name")
            } else if bad(incoming_username) {
                Some("incoming user name")
            } else if bad_secret(incoming_password) {
                Some("incoming password")
            } else if bad(outgoing_username) {
                Some("outgoing user name")
            } else if bad_secret(outgoing_password) {
                Some("outgoing password")
            } else {
                None
            }
        }
        AccountDetails::Exchange {
            username,
            domain,
            password,
        } => {
            if bad(username) {
                Some("user name")
            } else if domain.as_deref().is_some_and(bad) {
                Some("domain")
            } else if bad_secret(password) {
                Some("password")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_user_names_get_the_domain_unless_already_qualified() {
        assert_eq!(qualified_username("alice", Some("CORP")), "CORP\\alice");
        assert_eq!(qualified_username("alice", Some(" ")), "alice");
        assert_eq!(qualified_username("alice", None), "alice");
        assert_eq!(
            qualified_username("CORP\\alice", Some("CORP")),
            "CORP\\alice"
        );
        assert_eq!(
            qualified_username("alice@corp.example", Some("CORP")),
            "alice@corp.example"
        );
    }

    #[test]
    fn previews_hide_passwords_but_keep_their_absence() {
        let stored = Secret::new("p\"ss,word<&>");
        let preview = RenderOptions {
            redact_secrets: true,
            ..RenderOptions::default()
        };
        assert_eq!(secret(Some(&stored), &preview), Some(REDACTED));
        assert_eq!(secret(None, &preview), None);
        assert_eq!(
            secret(Some(&stored), &RenderOptions::default()),
            Some("p\"ss,word<&>")
        );
    }
}
