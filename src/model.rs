//! Domain types shared by every stage: users, devices, platforms, account kinds, and the
//! rules for email addresses. Plain data and pure functions; nothing here touches storage.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A user the MDM already knows. The email is the identity that imported accounts match on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Store id.
    pub id: i64,
    /// The address as it was last imported (case preserved).
    pub email: String,
    /// Name shown to admins and used in profiles.
    pub display_name: String,
}

/// A user as read from a users file, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The address as written in the file, trimmed.
    pub email: String,
    /// The display name, possibly empty.
    pub display_name: String,
}

/// An enrolled device of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// Store id.
    pub id: i64,
    /// The owner's email address.
    pub user_email: String,
    /// The MDM's identifier of the device (UDID, serial, hardware id).
    pub device_id: String,
    /// Operating system family, which decides the profile format.
    pub platform: Platform,
    /// Where the MDM server addresses device-channel commands.
    pub enrollment_id: String,
    /// macOS only: where user-channel commands go (NanoMDM's `UDID:UserID`).
    pub user_channel_id: Option<String>,
}

/// A device as read from a devices file, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevice {
    /// Owner's email address as written in the file.
    pub user_email: String,
    /// The MDM's identifier of the device.
    pub device_id: String,
    /// Operating system family.
    pub platform: Platform,
    /// Device-channel enrollment id.
    pub enrollment_id: String,
    /// macOS user-channel enrollment id.
    pub user_channel_id: Option<String>,
}

/// The operating system family of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// iPhone.
    Ios,
    /// iPad.
    Ipados,
    /// Mac.
    Macos,
    /// Windows 10 and 11.
    Windows,
    /// Android Enterprise.
    Android,
}

impl Platform {
    /// Every platform, in the order they are listed to admins.
    pub const ALL: [Platform; 5] = [
        Platform::Ios,
        Platform::Ipados,
        Platform::Macos,
        Platform::Windows,
        Platform::Android,
    ];

    /// The lower-case name used in files, URLs and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Ios => "ios",
            Platform::Ipados => "ipados",
            Platform::Macos => "macos",
            Platform::Windows => "windows",
            Platform::Android => "android",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A platform name that is not one of the five supported ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown platform {0:?} (expected ios, ipados, macos, windows or android)")]
pub struct UnknownPlatform(pub String);

impl FromStr for Platform {
    type Err = UnknownPlatform;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownPlatform(s.trim().to_owned()))
    }
}

/// The two kinds of mail account an admin imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// IMAP or POP for incoming mail, SMTP for outgoing ("Email" in Miradore).
    Email,
    /// Exchange ActiveSync ("Mail for Exchange").
    Exchange,
}

impl AccountKind {
    /// The lower-case name used on the command line, in the API and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Email => "email",
            AccountKind::Exchange => "exchange",
        }
    }

    /// The other account type: what a file refused as this one may be.
    pub fn other(self) -> AccountKind {
        match self {
            AccountKind::Email => AccountKind::Exchange,
            AccountKind::Exchange => AccountKind::Email,
        }
    }

    /// The name admins know from their MDM console: `Email`, `Mail for Exchange`.
    pub fn label(self) -> &'static str {
        match self {
            AccountKind::Email => "Email",
            AccountKind::Exchange => "Mail for Exchange",
        }
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account type name that is neither `email` nor `exchange`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown account type {0:?} (expected email or exchange)")]
pub struct UnknownAccountKind(pub String);

impl FromStr for AccountKind {
    type Err = UnknownAccountKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "email" => Ok(AccountKind::Email),
            "exchange" => Ok(AccountKind::Exchange),
            _ => Err(UnknownAccountKind(s.trim().to_owned())),
        }
    }
}

/// What an API token may do. Each API route declares the one it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// List and fetch: users, devices, imports, the push queue, exports, redacted profiles.
    Read,
    /// Change: import, add, remove, retry.
    Write,
    /// Receive passwords: the unredacted profile.
    Secrets,
}

impl Scope {
    /// Every scope, in the order they are listed.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Secrets];

    /// The name used on the command line, in the store and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Secrets => "secrets",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that is not `read`, `write` or `secrets`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?} (expected a comma-separated list of read, write and secrets)")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownScope(s.trim().to_owned()))
    }
}

/// A set of scopes: what one token or session may do.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    /// Every scope: what tokens made before scopes existed keep.
    pub const ALL: Scopes = Scopes(0b111);
    /// What a token gets unless told otherwise, and what a wizard session has: everything
    /// but passwords.
    pub const DEFAULT: Scopes = Scopes(0b011);

    /// The set holding `scopes`.
    pub fn of(scopes: &[Scope]) -> Scopes {
        Scopes(scopes.iter().fold(0, |bits, scope| bits | scope.bit()))
    }

    /// Whether `scope` is in the set.
    pub fn allows(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// The scopes in the set, in [`Scope::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.allows(*s))
    }
}

impl fmt::Display for Scopes {
    /// `read,write`: the form the command line takes and the store keeps.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

impl FromStr for Scopes {
    type Err = UnknownScope;

    /// A comma-separated list, such as `read,write`; at least one scope.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let scopes = s
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<Scope>, _>>()?;
        Ok(Scopes::of(&scopes))
    }
}

impl TryFrom<String> for Scopes {
    type Error = UnknownScope;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl Serialize for Scopes {
    /// A list of names: `["read", "write"]`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// A mail account of a user, with its secrets in plain text: what a profile is rendered from.
/// It lives only in memory; the store keeps passwords encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The owner's email address (the user the account was imported onto).
    pub user_email: String,
    /// The owner's display name.
    pub user_display_name: String,
    /// The account's email address.
    pub address: String,
    /// What differs between the two kinds.
    pub details: AccountDetails,
}

/// The fields of each kind of account, named as in the import columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountDetails {
    /// IMAP or POP plus SMTP.
    Email {
        /// Name shown on sent mail.
        display_name: String,
        /// Incoming server user name.
        incoming_username: String,
        /// Incoming server password; `None` makes the device ask.
        incoming_password: Option<Secret>,
        /// Outgoing server user name.
        outgoing_username: String,
        /// Outgoing server password; `None` makes the device ask.
        outgoing_password: Option<Secret>,
    },
    /// Exchange ActiveSync.
    Exchange {
        /// User name.
        username: String,
        /// Windows domain, if the server wants one.
        domain: Option<String>,
        /// Password; `None` makes the device ask.
        password: Option<Secret>,
    },
}

impl Account {
    /// Which kind of account this is.
    pub fn kind(&self) -> AccountKind {
        match self.details {
            AccountDetails::Email { .. } => AccountKind::Email,
            AccountDetails::Exchange { .. } => AccountKind::Exchange,
        }
    }
}

/// A password in plain text. It cannot be printed, logged or serialised by accident: `Debug`
/// shows `***`, and the only way to the text is [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a plain-text secret.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The plain text, for the few places that must have it (encryption, rendered profiles).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What an import did, or would do, with one line of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A new account was stored.
    Added,
    /// A stored account changed.
    Updated,
    /// The stored account already matched.
    Unchanged,
    /// No user has the line's user email; nothing was stored.
    Discarded,
    /// The line is invalid; the field and reason are reported.
    Rejected,
    /// An earlier line had the same user, type and account address.
    Duplicate,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 6] = [
        Outcome::Added,
        Outcome::Updated,
        Outcome::Unchanged,
        Outcome::Discarded,
        Outcome::Rejected,
        Outcome::Duplicate,
    ];

    /// The lower-case name used in reports and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Added => "added",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Discarded => "discarded",
            Outcome::Rejected => "rejected",
            Outcome::Duplicate => "duplicate",
        }
    }

    /// Whether the line was applied to the store (or matched it already).
    pub fn applied(self) -> bool {
        matches!(self, Outcome::Added | Outcome::Updated | Outcome::Unchanged)
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("unknown outcome {s:?}"))
    }
}

/// How many lines of an import had each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Data lines read.
    pub rows: u64,
    /// Accounts stored new.
    pub added: u64,
    /// Accounts changed.
    pub updated: u64,
    /// Accounts that already matched.
    pub unchanged: u64,
    /// Lines naming no known user.
    pub discarded: u64,
    /// Invalid lines.
    pub rejected: u64,
    /// Lines repeating an earlier line's account.
    pub duplicates: u64,
}

impl fmt::Display for Counts {
    /// `2 added, 0 updated, 1 unchanged, 0 discarded, 1 rejected, 0 duplicates`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let duplicates = if self.duplicates == 1 {
            "duplicate"
        } else {
            "duplicates"
        };
        write!(
            f,
            "{} added, {} updated, {} unchanged, {} discarded, {} rejected, {} {duplicates}",
            self.added,
            self.updated,
            self.unchanged,
            self.discarded,
            self.rejected,
            self.duplicates
        )
    }
}

impl Counts {
    /// Counts one line.
    pub fn count(&mut self, outcome: Outcome) {
        self.rows += 1;
        *match outcome {
            Outcome::Added => &mut self.added,
            Outcome::Updated => &mut self.updated,
            Outcome::Unchanged => &mut self.unchanged,
            Outcome::Discarded => &mut self.discarded,
            Outcome::Rejected => &mut self.rejected,
            Outcome::Duplicate => &mut self.duplicates,
        } += 1;
    }
}

/// The form of an email address used for matching: trimmed and lower-cased.
///
/// Local parts are case-sensitive in theory, but no mail system an MDM admin meets treats
/// `Alice@Example.com` and `alice@example.com` as different people, and spreadsheets change
/// case freely.
pub fn normalize_email(email: &str) -> String {
    let mut out = String::with_capacity(email.len());
    push_normalized_email(&mut out, email);
    out
}

/// [`normalize_email`] of `email`, appended to `out`.
pub fn push_normalized_email(out: &mut String, email: &str) {
    let email = email.trim();
    if email.is_ascii() {
        let start = out.len();
        out.push_str(email);
        out[start..].make_ascii_lowercase();
    } else {
        out.push_str(&email.to_lowercase());
    }
}

/// A stored time (unix milliseconds) as RFC 3339 UTC to the second, as listings show it.
pub fn when(ms: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// How many characters of a rejected value messages quote and stored lines keep: enough to
/// recognise it, never a whole huge cell echoed back or stored again.
pub const EXCERPT_CHARS: usize = 100;

/// `value`, or for a longer one its first [`EXCERPT_CHARS`] characters, `…` and its length.
pub fn excerpt(value: &str) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(EXCERPT_CHARS) {
        None => value.into(),
        Some((end, _)) => {
            format!("{}… ({} characters)", &value[..end], value.chars().count()).into()
        }
    }
}

/// `value` quoted for a message (escaped, in double quotes), shortened as [`excerpt`] does.
pub fn quoted(value: &str) -> String {
    match value.char_indices().nth(EXCERPT_CHARS) {
        None => format!("{value:?}"),
        Some((end, _)) => format!(
            "{:?}… ({} characters)",
            &value[..end],
            value.chars().count()
        ),
    }
}

/// Why `value` cannot be stored as text, if it cannot: a control character (which a terminal
/// would act on, and which XML profiles cannot carry) or one of the noncharacters U+FFFE and
/// U+FFFF (which XML cannot carry either), named by its code point. Every character an XML
/// profile cannot carry is among them, so nothing accepted at import fails to render later.
pub fn unstorable_character(value: &str) -> Option<String> {
    // Printable ASCII holds none of them, and is what almost every cell is made of.
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    value
        .chars()
        .find(|&c| c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}')
        .map(|c| {
            let kind = if c.is_control() {
                "a control character"
            } else {
                "a noncharacter"
            };
            format!("contains {kind} (U+{:04X})", u32::from(c))
        })
}

/// Whether `value` has more than `limit` characters; they are counted only when its bytes
/// could be too many, as a character is at least one byte.
pub fn more_chars_than(value: &str, limit: usize) -> bool {
    value.len() > limit && value.chars().count() > limit
}

/// Longest address SMTP can carry (RFC 5321 path limit minus the angle brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// Why a string is not an email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Empty cell.
    #[error("is empty")]
    Empty,
    /// No `@` at all.
    #[error("is not an email address (no @)")]
    NoAt,
    /// More than one `@`.
    #[error("is not an email address (more than one @)")]
    SeveralAt,
    /// Over [`MAX_EMAIL_LEN`] characters.
    #[error("is longer than {MAX_EMAIL_LEN} characters")]
    TooLong,
    /// The part before `@` is empty, too long or has a forbidden character.
    #[error("is not an email address (bad local part: {0})")]
    LocalPart(&'static str),
    /// The part after `@` is not a domain name.
    #[error("is not an email address (bad domain: {0})")]
    Domain(&'static str),
}

/// Checks that `s` (already trimmed) is a plausible mailbox address: `local@domain.tld`, with
/// the characters RFC 5322 allows unquoted, internationalised letters allowed (RFC 6531).
pub fn validate_email(s: &str) -> Result<(), EmailError> {
    if plain_ascii_email(s.as_bytes()) {
        return Ok(());
    }
    email_checks(s)
}

/// [`validate_email`]'s checks, one by one.
fn email_checks(s: &str) -> Result<(), EmailError> {
    if s.is_empty() {
        return Err(EmailError::Empty);
    }
    if more_chars_than(s, MAX_EMAIL_LEN) {
        return Err(EmailError::TooLong);
    }
    let (local, domain) = s.split_once('@').ok_or(EmailError::NoAt)?;
    if domain.contains('@') {
        return Err(EmailError::SeveralAt);
    }
    validate_local_part(local)?;
    validate_domain(domain)
}

/// Punctuation RFC 5322 allows unquoted in a local part, besides the dot.
const LOCAL_PUNCTUATION: &[u8] = b"!#$%&'*+-/=?^_`{|}~";

/// Whether `s` is an address of ASCII characters that [`validate_email`]'s checks accept,
/// found in one pass over its bytes rather than one for each check: almost every address of
/// a file is one, and checking two of them on every line was a tenth of an import's
/// checking. Anything else, valid or not, is left to the checks, which also tell why.
fn plain_ascii_email(s: &[u8]) -> bool {
    let Some(at) = s.iter().position(|&c| c == b'@') else {
        return false;
    };
    let (local, domain) = (&s[..at], &s[at + 1..]);
    if s.len() > MAX_EMAIL_LEN || local.is_empty() || local.len() > 64 || domain.len() > 253 {
        return false;
    }
    // A dot before the first character, so that a leading dot is one dot too many.
    let mut previous = b'.';
    for &c in local {
        let allowed = c.is_ascii_alphanumeric()
            || (c == b'.' && previous != b'.')
            || LOCAL_PUNCTUATION.contains(&c);
        if !allowed {
            return false;
        }
        previous = c;
    }
    if previous == b'.' {
        return false;
    }
    let (mut label, mut dots) = (0, 0);
    for &c in domain {
        if c == b'.' {
            if label == 0 || previous == b'-' {
                return false;
            }
            (label, dots) = (0, dots + 1);
        } else if c.is_ascii_alphanumeric() || (c == b'-' && label > 0) {
            label += 1;
            if label > 63 {
                return false;
            }
        } else {
            return false;
        }
        previous = c;
    }
    dots > 0 && label > 0 && previous != b'-'
}

fn validate_local_part(local: &str) -> Result<(), EmailError> {
    if local.is_empty() {
        return Err(EmailError::LocalPart("empty"));
    }
    if local.len() > 64 {
        return Err(EmailError::LocalPart("longer than 64 bytes"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(EmailError::LocalPart("misplaced dot"));
    }
    let punctuation = |c: u8| c == b'.' || LOCAL_PUNCTUATION.contains(&c);
    let allowed_ascii = |c: u8| c.is_ascii_alphanumeric() || punctuation(c);
    let allowed = |c: char| c.is_alphanumeric() || u8::try_from(c).is_ok_and(punctuation);
    let ok = if local.is_ascii() {
        local.bytes().all(allowed_ascii)
    } else {
        local.chars().all(allowed)
    };
    if !ok {
        return Err(EmailError::LocalPart("character not allowed"));
    }
    Ok(())
}

/// Checks a host name: dot-separated labels of letters, digits and inner hyphens, with a
/// top-level label. Used for email domains and Exchange/mail server names.
pub fn validate_domain(domain: &str) -> Result<(), EmailError> {
    if domain.is_empty() {
        return Err(EmailError::Domain("empty"));
    }
    if domain.len() > 253 {
        return Err(EmailError::Domain("longer than 253 bytes"));
    }
    if !domain.contains('.') {
        return Err(EmailError::Domain("no dot"));
    }
    let ascii = domain.is_ascii();
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(EmailError::Domain("empty label"));
        }
        if label.len() > 63 {
            return Err(EmailError::Domain("label longer than 63 bytes"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(EmailError::Domain("label starts or ends with a hyphen"));
        }
        let ok = if ascii {
            label
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        } else {
            label.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if !ok {
            return Err(EmailError::Domain("character not allowed"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_quoted_as_a_prefix_and_their_length() {
        assert_eq!(quoted("short\tone"), "\"short\\tone\"");
        let long = "é".repeat(EXCERPT_CHARS + 1);
        let prefix = "é".repeat(EXCERPT_CHARS);
        assert_eq!(quoted(&long), format!("\"{prefix}\"… (101 characters)"));
        assert_eq!(excerpt(&long), format!("{prefix}… (101 characters)"));
        assert_eq!(excerpt(&prefix), prefix.as_str());
    }

    #[test]
    fn the_one_pass_address_check_accepts_exactly_the_ascii_addresses_the_checks_accept() {
        let alphabet = b"a9.-@_+!\"\\ \x7f";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut cases: Vec<String> = [
            "a@b.co",
            ".a@b.co",
            "a.@b.co",
            "a..b@c.co",
            "a@-b.co",
            "a@b-.co",
            "a@b..co",
            "a@b.co.",
            "a@.b.co",
            "a@bco",
            "a@b@c.co",
            "@b.co",
            "a@",
            "",
            "Zoë@b.co",
        ]
        .map(str::to_owned)
        .to_vec();
        cases.push(format!("{}@b.co", "a".repeat(64)));
        cases.push(format!("{}@b.co", "a".repeat(65)));
        cases.push(format!("a@{}.co", "b".repeat(63)));
        cases.push(format!("a@{}.co", "b".repeat(64)));
        cases.push(format!("a@{}.co", "b.".repeat(125)));
        cases.push(format!("a@{}.co", "b.".repeat(126)));
        cases.push(format!("{}@{}.co", "a".repeat(64), "b.".repeat(94)));
        for _ in 0..200_000 {
            let len = (next() % 14) as usize;
            let text = (0..len)
                .map(|_| char::from(alphabet[(next() % alphabet.len() as u64) as usize]))
                .collect();
            cases.push(text);
        }
        for case in &cases {
            assert_eq!(
                plain_ascii_email(case.as_bytes()),
                case.is_ascii() && email_checks(case).is_ok(),
                "{case:?}"
            );
        }
    }

    #[test]
    fn control_characters_and_xml_noncharacters_cannot_be_stored() {
        assert_eq!(unstorable_character("Zoë Ødegård 東京"), None);
        assert_eq!(
            unstorable_character("a\u{1b}[2J").as_deref(),
            Some("contains a control character (U+001B)")
        );
        assert_eq!(
            unstorable_character("x\u{fffe}").as_deref(),
            Some("contains a noncharacter (U+FFFE)")
        );
        assert_eq!(
            unstorable_character("\u{85}").as_deref(),
            Some("contains a control character (U+0085)")
        );
    }

    #[test]
    fn every_character_xml_profiles_cannot_carry_is_unstorable() {
        for c in (0..=0x10_FFFF).filter_map(char::from_u32) {
            if !crate::profile::definition::xml_char(c) {
                assert!(
                    unstorable_character(&c.to_string()).is_some(),
                    "U+{:04X}",
                    u32::from(c)
                );
            }
        }
    }

    #[test]
    fn scope_lists_parse_in_any_order_and_print_in_one() {
        let scopes: Scopes = "secrets, READ".parse().unwrap();
        assert_eq!(scopes.to_string(), "read,secrets");
        assert!(scopes.allows(Scope::Secrets) && !scopes.allows(Scope::Write));
        assert_eq!(Scopes::DEFAULT.to_string(), "read,write");
        assert_eq!(Scopes::ALL.to_string(), "read,write,secrets");
        assert_eq!(
            serde_json::to_value(Scopes::DEFAULT).unwrap(),
            serde_json::json!(["read", "write"])
        );
        for bad in ["", "read,", "admin", "read;write"] {
            assert!(bad.parse::<Scopes>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn normalized_emails_ignore_case_and_surrounding_space() {
        assert_eq!(normalize_email("  Alice@Example.COM "), "alice@example.com");
        assert_eq!(normalize_email("ÉLODIE@exemple.fr"), "élodie@exemple.fr");
    }

    #[test]
    fn ordinary_addresses_are_valid() {
        for ok in [
            "a@b.co",
            "first.last+tag@sub.example.com",
            "o'brien@example.ie",
            "jörg@müller.de",
        ] {
            assert_eq!(validate_email(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn malformed_addresses_say_what_is_wrong() {
        assert_eq!(validate_email(""), Err(EmailError::Empty));
        assert_eq!(validate_email("bob.example.com"), Err(EmailError::NoAt));
        assert_eq!(validate_email("a@b@c.com"), Err(EmailError::SeveralAt));
        assert!(matches!(
            validate_email("a b@c.com"),
            Err(EmailError::LocalPart(_))
        ));
        assert!(matches!(
            validate_email(".a@c.com"),
            Err(EmailError::LocalPart(_))
        ));
        assert!(matches!(
            validate_email("a@localhost"),
            Err(EmailError::Domain(_))
        ));
        assert!(matches!(
            validate_email("a@-x.com"),
            Err(EmailError::Domain(_))
        ));
        assert!(matches!(
            validate_email("<a@x.com>"),
            Err(EmailError::LocalPart(_))
        ));
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(validate_email(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let account = AccountDetails::Exchange {
            username: "alice".into(),
            domain: None,
            password: Some(Secret::new("hunter2")),
        };
        assert!(!format!("{account:?}").contains("hunter2"));
    }

    #[test]
    fn platforms_parse_case_insensitively() {
        assert_eq!("macOS".parse(), Ok(Platform::Macos));
        assert_eq!(" iPadOS ".parse(), Ok(Platform::Ipados));
        assert!("blackberry".parse::<Platform>().is_err());
    }
}
