//! Checking one line on its own, before any user is looked up: column count, required
//! fields, addresses, lengths, Exchange user names and domains; then, in file order, repeats
//! of an earlier line ([`mark_duplicates`]). Valid lines leave with their keys normalised;
//! their passwords' MACs are computed later, by whatever first compares or stores them.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use super::schema::{self, email, exchange};
use super::seen::FirstSeen;
use crate::crypto::{Keys, PasswordColumn, PasswordMac};
use crate::csv::{Column, ColumnMap, Record};
use crate::model::{
    AccountKind, EmailError, excerpt, more_chars_than, push_normalized_email, quoted,
    unstorable_character, validate_domain, validate_email,
};

/// Longest display name or user name accepted.
pub const MAX_NAME: usize = 256;
/// Longest password accepted.
pub const MAX_PASSWORD: usize = 256;
/// Longest NetBIOS domain name.
const MAX_NETBIOS: usize = 15;

/// A line as read and checked.
#[derive(Debug)]
pub struct ParsedLine {
    /// Physical line number.
    pub line: u64,
    /// The user email then the account address, as written (trimmed), in one string.
    written: String,
    /// Where the address starts in `written`.
    address_at: usize,
    /// The verdict.
    pub check: Checked,
    /// When the admin mapped columns: for each field (in schema order), the source it was
    /// mapped to, so that outcomes can name what a changed field was read from. Shared by
    /// every line of the file; `None` without a mapping.
    pub mapped: Option<Arc<[Option<String>]>>,
}

impl ParsedLine {
    /// The user email as written (trimmed).
    pub fn user_email(&self) -> &str {
        self.written.get(..self.address_at).unwrap_or_default()
    }

    /// The account address as written (trimmed).
    pub fn address(&self) -> &str {
        self.written.get(self.address_at..).unwrap_or_default()
    }
}

/// What checking a line found.
#[derive(Debug)]
pub enum Checked {
    /// Well-formed; ready to match.
    Valid(Box<ValidRow>),
    /// Invalid: the column to blame (if one is) and why.
    Rejected {
        /// Canonical column name.
        field: Option<&'static str>,
        /// The reason, never containing a password.
        message: String,
    },
    /// Same user, type and address as an earlier line.
    Duplicate {
        /// That earlier line.
        first: u64,
    },
}

/// A valid line's fields, normalised keys and passwords, held in one buffer: a million-line
/// file makes a million rows, and a string for each field of each was a third of the
/// checking thread's work, in allocating, copying and freeing them.
pub struct ValidRow {
    text: String,
    /// Where each [`Part`] ends in `text`; it starts where the part before it ends.
    ends: [u32; PARTS],
    /// One bit for each part given: a part not given is `None`, apart from an empty one.
    given: u8,
    /// What the line's outcome must also say, though the line is valid: a password kept with
    /// the white space around it, which may not be what the admin meant.
    note: Option<String>,
    /// Each password column's MAC, once asked for ([`ValidRow::mac`]).
    macs: [OnceLock<PasswordMac>; 2],
}

/// The parts of a [`ValidRow`]'s text, in the order they are held.
#[derive(Debug, Clone, Copy)]
enum Part {
    UserNorm,
    AddressNorm,
    DisplayName,
    Username,
    Domain,
    OutgoingUsername,
    Password,
    OutgoingPassword,
}

const PARTS: usize = Part::OutgoingPassword as usize + 1;

/// A valid line's fields as the checks found them, before they are put in one buffer.
struct RowFields<'c> {
    user: &'c str,
    address: &'c str,
    display_name: Option<&'c str>,
    username: &'c str,
    domain: Option<&'c str>,
    outgoing_username: Option<&'c str>,
    password: Option<&'c str>,
    outgoing_password: Option<&'c str>,
    note: Option<String>,
}

impl ValidRow {
    /// The row of `fields`, its user email and address normalised.
    fn new(fields: RowFields<'_>) -> ValidRow {
        let parts = [
            Some(fields.user),
            Some(fields.address),
            fields.display_name,
            Some(fields.username),
            fields.domain,
            fields.outgoing_username,
            fields.password,
            fields.outgoing_password,
        ];
        let mut text = String::with_capacity(parts.iter().flatten().map(|p| p.len()).sum());
        let mut ends = [0; PARTS];
        let mut given = 0;
        for (i, part) in parts.into_iter().enumerate() {
            if let Some(part) = part {
                given |= 1 << i;
                if i <= Part::AddressNorm as usize {
                    push_normalized_email(&mut text, part);
                } else {
                    text.push_str(part);
                }
            }
            // A valid row's parts are each at most a few hundred characters, so this fits.
            ends[i] = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        ValidRow {
            text,
            ends,
            given,
            note: fields.note,
            macs: Default::default(),
        }
    }

    fn part(&self, part: Part) -> Option<&str> {
        let i = part as usize;
        if self.given & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..self.ends[i] as usize)
    }

    /// Normalised user email.
    pub fn user_norm(&self) -> &str {
        self.part(Part::UserNorm).unwrap_or_default()
    }

    /// Normalised account address.
    pub fn address_norm(&self) -> &str {
        self.part(Part::AddressNorm).unwrap_or_default()
    }

    /// Email: name shown on sent mail, when the file has the column.
    pub fn display_name(&self) -> Option<&str> {
        self.part(Part::DisplayName)
    }

    /// Email: incoming user name; Exchange: user name.
    pub fn username(&self) -> &str {
        self.part(Part::Username).unwrap_or_default()
    }

    /// Exchange: domain, when one is given.
    pub fn domain(&self) -> Option<&str> {
        self.part(Part::Domain)
    }

    /// Email: outgoing user name.
    pub fn outgoing_username(&self) -> Option<&str> {
        self.part(Part::OutgoingUsername)
    }

    /// The password given for `column`, in plain text, to be sealed; `None` when the cell
    /// was blank.
    pub fn password(&self, column: PasswordColumn) -> Option<&str> {
        self.part(match column {
            PasswordColumn::Primary => Part::Password,
            PasswordColumn::Outgoing => Part::OutgoingPassword,
        })
    }

    /// What the line's outcome must also say, though the line is valid.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The MAC of the password given for `column`, bound to the account and column, for
    /// telling an unchanged password without decrypting the stored one; `None` when the
    /// cell was blank. Computed when first asked for, both columns' at once, so every call
    /// must pass the import's own `keys` and `kind`: a line that a preview only adds never
    /// needs one, and on an empty store they were a sixth of the checking thread's work.
    pub fn mac(
        &self,
        keys: &Keys,
        kind: AccountKind,
        column: PasswordColumn,
    ) -> Option<&PasswordMac> {
        let slot = |column| &self.macs[usize::from(column == PasswordColumn::Outgoing)];
        self.password(column)?;
        if slot(column).get().is_none() {
            let macs = keys.account_macs(kind, self.user_norm(), self.address_norm());
            for column in [PasswordColumn::Primary, PasswordColumn::Outgoing] {
                if let Some(secret) = self.password(column) {
                    slot(column).get_or_init(|| macs.mac(column, secret));
                }
            }
        }
        slot(column).get()
    }
}

impl std::fmt::Debug for ValidRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |column| self.password(column).map(|_| "***");
        f.debug_struct("ValidRow")
            .field("user_norm", &self.user_norm())
            .field("address_norm", &self.address_norm())
            .field("display_name", &self.display_name())
            .field("username", &self.username())
            .field("domain", &self.domain())
            .field("outgoing_username", &self.outgoing_username())
            .field("password", &hidden(PasswordColumn::Primary))
            .field("outgoing_password", &hidden(PasswordColumn::Outgoing))
            .field("note", &self.note)
            .finish()
    }
}

/// Checks the lines of one file.
pub struct Validator {
    kind: AccountKind,
    schema: &'static [Column],
    columns: ColumnMap,
    required_width: usize,
    other_width: u64,
    mapped: Option<Arc<[Option<String>]>>,
    /// For each field, whether it is read literally (passwords).
    literal: Vec<bool>,
}

type Rejection = (Option<&'static str>, String);

fn reject(field: &'static str, message: impl Into<String>) -> Rejection {
    (Some(field), message.into())
}

impl Validator {
    /// A validator for a file of `kind` whose cells are found through `columns`.
    pub fn new(kind: AccountKind, columns: ColumnMap) -> Validator {
        let schema = schema::columns(kind);
        let sources: Vec<Option<String>> = (0..schema.len())
            .map(|i| columns.mapped(i).map(str::to_owned))
            .collect();
        Validator {
            mapped: sources.iter().any(Option::is_some).then(|| sources.into()),
            kind,
            schema,
            required_width: columns.required_width(schema),
            columns,
            other_width: 0,
            literal: schema.iter().map(|c| schema::is_password(c.name)).collect(),
        }
    }

    /// How many lines checked so far were refused for having the other account type's
    /// width (in a file without a header): most of them means the type chosen is wrong.
    pub fn other_width(&self) -> u64 {
        self.other_width
    }

    /// Whether `record`, of the wrong shape in a file without a header, is as wide as a
    /// row of the other account type.
    fn has_other_width(&self, record: &Record) -> bool {
        !self.columns.header
            && width_found(record, self.columns.width)
                == super::schema::columns(self.kind.other()).len()
    }

    /// The column mapping in use.
    pub fn columns(&self) -> &ColumnMap {
        &self.columns
    }

    /// Checks one record.
    pub fn check(&mut self, record: &Record) -> ParsedLine {
        // A line of the wrong shape was split wrong, often on the wrong delimiter: its
        // first cell may be the whole line, passwords included, so none of it is echoed.
        let shape = self.shape(record);
        if shape.is_err() && self.has_other_width(record) {
            self.other_width += 1;
        }
        let (user_email, address) = match shape {
            Ok(()) => (
                self.columns.get(record, 0),
                self.columns
                    .get(record, 1 + usize::from(self.kind == AccountKind::Email)),
            ),
            Err(_) => (Cow::Borrowed(""), Cow::Borrowed("")),
        };
        let check = match self.fields(record) {
            Err((field, message)) => Checked::Rejected {
                message: self.naming_the_source(field, message),
                field,
            },
            Ok(row) => Checked::Valid(Box::new(row)),
        };
        // A rejected line's values are kept only to name the line; a huge cell is not
        // stored or sent back whole.
        let (user_email, address) = match check {
            Checked::Rejected { .. } => (excerpt(&user_email), excerpt(&address)),
            _ => (Cow::Borrowed(&*user_email), Cow::Borrowed(&*address)),
        };
        let mut written = String::with_capacity(user_email.len() + address.len());
        written.push_str(&user_email);
        written.push_str(&address);
        ParsedLine {
            line: record.line(),
            address_at: user_email.len(),
            written,
            check,
            mapped: self.mapped.clone(),
        }
    }

    /// `message` about `field`, naming the source the admin mapped the field to, if they did:
    /// the value checked is then not the cell of a column of that name.
    fn naming_the_source(&self, field: Option<&'static str>, message: String) -> String {
        let Some(index) = field.and_then(|f| self.schema.iter().position(|c| c.name == f)) else {
            return message;
        };
        if !self.columns.has(index) {
            return "is not in the file: map a column to it".to_owned();
        }
        match self.columns.mapped(index) {
            Some(source) => format!("{message} (read from {})", quoted(source)),
            None => message,
        }
    }

    /// Whether `record` has as many columns as the file's layout.
    fn shape(&self, record: &Record) -> Result<(), Rejection> {
        let expected = self.columns.width;
        if record.width() > expected || record.len() < self.required_width {
            let found = width_found(record, expected);
            // A file of the other account type is the commonest reason, and has its width.
            let other = self.kind.other();
            let row = match other {
                AccountKind::Exchange => "a Mail for Exchange row",
                AccountKind::Email => "an Email row",
            };
            let hint = if self.has_other_width(record) {
                format!(" ({row} has {found}: is this a --type {other} file?)")
            } else {
                String::new()
            };
            return Err((
                None,
                format!("expected {expected} columns, found {found}{hint}"),
            ));
        }
        Ok(())
    }

    fn fields(&self, record: &Record) -> Result<ValidRow, Rejection> {
        self.shape(record)?;
        // Passwords are read as given: the export never writes one, so neither a leading
        // `'` nor white space around it can have come from the export.
        let values: [Cow<'_, str>; schema::MAX_COLUMNS] =
            std::array::from_fn(|field| match self.literal.get(field) {
                Some(true) => self.columns.get_literal(record, field),
                Some(false) => self.columns.get(record, field),
                None => Cow::Borrowed(""),
            });
        let cell = |field: usize| values[field].as_ref();
        let literal = cell;
        let name = |field: usize| self.schema[field].name;
        match self.kind {
            AccountKind::Email => {
                let user = address(cell(email::USER_EMAIL), name(email::USER_EMAIL))?;
                // Without the column, the profile shows the user's own display name.
                let display_name = if self.columns.has(email::DISPLAY_NAME) {
                    Some(text(cell(email::DISPLAY_NAME), name(email::DISPLAY_NAME))?)
                } else {
                    None
                };
                let address = address(cell(email::ADDRESS), name(email::ADDRESS))?;
                let incoming = text(
                    cell(email::INCOMING_USERNAME),
                    name(email::INCOMING_USERNAME),
                )?;
                let outgoing = text(
                    cell(email::OUTGOING_USERNAME),
                    name(email::OUTGOING_USERNAME),
                )?;
                let password = given_password(
                    literal(email::INCOMING_PASSWORD),
                    name(email::INCOMING_PASSWORD),
                )?;
                let outgoing_password = given_password(
                    literal(email::OUTGOING_PASSWORD),
                    name(email::OUTGOING_PASSWORD),
                )?;
                let note = notes([
                    spaced(password, name(email::INCOMING_PASSWORD)),
                    spaced(outgoing_password, name(email::OUTGOING_PASSWORD)),
                ]);
                Ok(ValidRow::new(RowFields {
                    user,
                    address,
                    display_name,
                    username: incoming,
                    domain: None,
                    outgoing_username: Some(outgoing),
                    password,
                    outgoing_password,
                    note,
                }))
            }
            AccountKind::Exchange => {
                let user = address(cell(exchange::USER_EMAIL), name(exchange::USER_EMAIL))?;
                let address = address(cell(exchange::ADDRESS), name(exchange::ADDRESS))?;
                let username = cell(exchange::USERNAME);
                let domain = cell(exchange::DOMAIN);
                exchange_username(username, name(exchange::USERNAME))?;
                if !domain.is_empty() {
                    exchange_domain(domain, name(exchange::DOMAIN))?;
                }
                if let Some((named, _)) = username.split_once('\\')
                    && !domain.is_empty()
                    && !named.eq_ignore_ascii_case(domain)
                {
                    return Err(reject(
                        name(exchange::DOMAIN),
                        format!(
                            "is {}, but {} names the domain {}",
                            quoted(domain),
                            name(exchange::USERNAME),
                            quoted(named)
                        ),
                    ));
                }
                let password =
                    given_password(literal(exchange::PASSWORD), name(exchange::PASSWORD))?;
                let note = notes([spaced(password, name(exchange::PASSWORD))]);
                Ok(ValidRow::new(RowFields {
                    user,
                    address,
                    display_name: None,
                    username,
                    domain: (!domain.is_empty()).then_some(domain),
                    outgoing_username: None,
                    password,
                    outgoing_password: None,
                    note,
                }))
            }
        }
    }
}

/// Checks a password cell, taken literally; a blank cell (or one of nothing but white space,
/// which a spreadsheet shows blank) is no password: the stored one stays.
fn given_password<'c>(cell: &'c str, field: &'static str) -> Result<Option<&'c str>, Rejection> {
    if cell.trim().is_empty() {
        return Ok(None);
    }
    if more_chars_than(cell, MAX_PASSWORD) {
        return Err(reject(
            field,
            format!("is longer than {MAX_PASSWORD} characters"),
        ));
    }
    if let Some(reason) = unstorable_character(cell) {
        return Err(reject(field, reason));
    }
    Ok(Some(cell))
}

/// Marks each valid line whose user and address an earlier line of the file already had as
/// a duplicate of that line. Called on every chunk in file order, on the deciding thread
/// rather than the checking one, whose work bounds how fast a file is read.
pub(super) fn mark_duplicates(seen: &mut FirstSeen, lines: &mut [ParsedLine]) {
    let keys = lines.iter().filter_map(|line| match &line.check {
        Checked::Valid(row) => Some(([row.user_norm(), row.address_norm()], line.line)),
        _ => None,
    });
    let firsts = seen.check_all(keys);
    let valid = lines
        .iter_mut()
        .filter(|line| matches!(line.check, Checked::Valid(_)));
    for (line, first) in valid.zip(firsts) {
        if let Some(first) = first {
            line.check = Checked::Duplicate { first };
        }
    }
}

/// The width a message names for a record of the wrong shape: when it has more than
/// `expected` cells, those up to its last non-empty one (empty cells trailing are no
/// column); else all of its cells.
fn width_found(record: &Record, expected: usize) -> usize {
    if record.width() > expected {
        record.width()
    } else {
        record.len()
    }
}

/// The note for a password kept with white space at its start or end (a space, a TAB,
/// a no-break space…), which is easily typed or pasted by mistake.
fn spaced(password: Option<&str>, field: &'static str) -> Option<String> {
    let text = password?;
    let start = text.starts_with(char::is_whitespace);
    let end = text.ends_with(char::is_whitespace);
    let place = match (start, end) {
        (true, true) => "at its start and end",
        (true, false) => "at its start",
        (false, true) => "at its end",
        (false, false) => return None,
    };
    Some(format!("{field} has white space {place}, kept as given"))
}

/// The notes of a line joined into one message, or `None`.
fn notes<const N: usize>(notes: [Option<String>; N]) -> Option<String> {
    let notes: Vec<String> = notes.into_iter().flatten().collect();
    (!notes.is_empty()).then(|| notes.join("; "))
}

fn address<'c>(cell: &'c str, field: &'static str) -> Result<&'c str, Rejection> {
    if cell.is_empty() {
        return Err(reject(field, "is empty"));
    }
    validate_email(cell).map_err(|e| reject(field, format!("{} {e}", quoted(cell))))?;
    Ok(cell)
}

fn text<'c>(cell: &'c str, field: &'static str) -> Result<&'c str, Rejection> {
    if cell.is_empty() {
        return Err(reject(field, "is empty"));
    }
    if more_chars_than(cell, MAX_NAME) {
        return Err(reject(
            field,
            format!("is longer than {MAX_NAME} characters"),
        ));
    }
    if let Some(reason) = unstorable_character(cell) {
        return Err(reject(field, reason));
    }
    Ok(cell)
}

/// Characters Active Directory refuses in logon names.
const LOGON_FORBIDDEN: &[char] = &[
    '"', '/', '[', ']', ':', ';', '|', '=', ',', '+', '*', '?', '<', '>',
];

/// An Exchange user name: `user`, `DOMAIN\user` or a UPN (`user@corp.example.com`).
fn exchange_username(cell: &str, field: &'static str) -> Result<(), Rejection> {
    text(cell, field)?;
    if let Some(c) = cell.chars().find(|c| LOGON_FORBIDDEN.contains(c)) {
        return Err(reject(
            field,
            format!("contains {c:?}, which a logon name cannot"),
        ));
    }
    if let Some((domain, user)) = cell.split_once('\\') {
        if domain.is_empty() || user.is_empty() || user.contains('\\') {
            return Err(reject(field, "is not of the form DOMAIN\\user"));
        }
        return exchange_domain(domain, field);
    }
    if cell.contains('@') {
        validate_email(cell).map_err(|e| {
            reject(
                field,
                format!("{} is not a user principal name ({e})", quoted(cell)),
            )
        })?;
    }
    Ok(())
}

/// A Windows domain: a DNS name (`corp.example.com`) or a NetBIOS name (`CORP`).
fn exchange_domain(cell: &str, field: &'static str) -> Result<(), Rejection> {
    if cell.contains('.') {
        return validate_domain(cell).map_err(|e| {
            let reason = match e {
                EmailError::Domain(reason) => reason,
                _ => "malformed",
            };
            reject(
                field,
                format!("{} is not a domain name ({reason})", quoted(cell)),
            )
        });
    }
    let netbios = cell.len() <= MAX_NETBIOS
        && !cell.starts_with('-')
        && cell
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !netbios {
        return Err(reject(
            field,
            format!(
                "{} is neither a DNS domain nor a NetBIOS name (up to 15 letters, digits, - and _)",
                quoted(cell)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: AccountKind, cells: &[&str]) -> Checked {
        let columns = ColumnMap::positional(schema::columns(kind));
        let mut validator = Validator::new(kind, columns);
        validator
            .check(&Record::from_cells(1, cells.iter().copied()))
            .check
    }

    fn rejection(checked: Checked) -> (Option<&'static str>, String) {
        match checked {
            Checked::Rejected { field, message } => (field, message),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    const ALICE: [&str; 7] = [
        "alice@example.com",
        "Alice",
        "alice@mail.example.com",
        "alice",
        "pw",
        "alice",
        "",
    ];

    #[test]
    fn a_complete_email_row_is_valid_with_its_keys_normalised() {
        let mut cells = ALICE;
        cells[0] = "Alice@Example.COM";
        let Checked::Valid(row) = check(AccountKind::Email, &cells) else {
            panic!("valid")
        };
        assert_eq!(row.user_norm(), "alice@example.com");
        assert_eq!(row.address_norm(), "alice@mail.example.com");
        assert_eq!(row.display_name(), Some("Alice"));
        assert_eq!(row.username(), "alice");
        assert_eq!(row.domain(), None);
        assert_eq!(row.outgoing_username(), Some("alice"));
        assert_eq!(row.password(PasswordColumn::Primary), Some("pw"));
        assert_eq!(
            row.password(PasswordColumn::Outgoing),
            None,
            "a blank cell is no password"
        );
        assert!(
            !format!("{row:?}").contains("\"pw\""),
            "passwords are not shown: {row:?}"
        );
    }

    #[test]
    fn an_exchange_row_without_a_domain_has_none_and_keeps_every_other_part() {
        let cells = ["A@B.co", "Box@B.co", "CORP\\bob", "", "pässwörd"];
        let row = valid(AccountKind::Exchange, &cells);
        assert_eq!(row.user_norm(), "a@b.co");
        assert_eq!(row.address_norm(), "box@b.co");
        assert_eq!(row.display_name(), None);
        assert_eq!(row.username(), "CORP\\bob");
        assert_eq!(row.domain(), None);
        assert_eq!(row.outgoing_username(), None);
        assert_eq!(row.password(PasswordColumn::Primary), Some("pässwörd"));
        let mut cells = cells;
        cells[3] = "corp";
        assert_eq!(valid(AccountKind::Exchange, &cells).domain(), Some("corp"));
    }

    #[test]
    fn each_password_mac_is_bound_to_its_account_and_column() {
        let mut cells = ALICE;
        cells[6] = "smtp pw";
        let Checked::Valid(row) = check(AccountKind::Email, &cells) else {
            panic!("valid")
        };
        let keys = Keys::from_master(&[1; 32]);
        for (column, password) in [
            (PasswordColumn::Primary, "pw"),
            (PasswordColumn::Outgoing, "smtp pw"),
        ] {
            let aad = crate::crypto::account_aad(
                AccountKind::Email,
                "alice@example.com",
                "alice@mail.example.com",
                column,
            );
            assert_eq!(
                row.mac(&keys, AccountKind::Email, column),
                Some(&keys.mac(&aad, password))
            );
        }
        let Checked::Valid(row) = check(AccountKind::Email, &ALICE) else {
            panic!("valid")
        };
        assert_eq!(
            row.mac(&keys, AccountKind::Email, PasswordColumn::Outgoing),
            None,
            "a blank cell has no MAC"
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: [(usize, &str, &str); 5] = [
            (2, "alice.example.com", "email_address"),
            (0, "", "user_email"),
            (1, "", "display_name"),
            (3, "a\u{7}b", "incoming_username"),
            (5, &"x".repeat(300), "outgoing_username"),
        ];
        for (index, value, field) in cases {
            let mut cells = ALICE;
            cells[index] = value;
            assert_eq!(rejection(check(AccountKind::Email, &cells)).0, Some(field));
        }
    }

    #[test]
    fn the_column_count_must_fit_the_type() {
        let (field, message) = rejection(check(AccountKind::Email, &ALICE[..3]));
        assert_eq!(
            (field, message.as_str()),
            (None, "expected 7 columns, found 3")
        );
        let mut long = ALICE.to_vec();
        long.extend(["extra", "cells"]);
        let (_, message) = rejection(check(AccountKind::Email, &long));
        assert_eq!(message, "expected 7 columns, found 9");
    }

    #[test]
    fn passwords_are_never_quoted_in_messages() {
        let mut cells = ALICE;
        let long = format!("secret{}", "x".repeat(300));
        cells[4] = &long;
        let (field, message) = rejection(check(AccountKind::Email, &cells));
        assert_eq!(field, Some("incoming_password"));
        assert!(!message.contains("secret"), "{message}");
    }

    fn valid(kind: AccountKind, cells: &[&str]) -> Box<ValidRow> {
        match check(kind, cells) {
            Checked::Valid(row) => row,
            other => panic!("expected a valid line, got {other:?}"),
        }
    }

    #[test]
    fn password_cells_are_taken_literally() {
        for (given, stored) in [
            ("'=x", "'=x"),
            ("'pw", "'pw"),
            ("'", "'"),
            ("  pw  ", "  pw  "),
            ("\u{a0}pw2", "\u{a0}pw2"),
        ] {
            let mut cells = ALICE;
            cells[4] = given;
            let row = valid(AccountKind::Email, &cells);
            assert_eq!(row.password(PasswordColumn::Primary).unwrap(), stored);
            let mut cells = ["a@example.com", "a@example.com", "a", "", ""];
            cells[4] = given;
            let row = valid(AccountKind::Exchange, &cells);
            assert_eq!(row.password(PasswordColumn::Primary).unwrap(), stored);
        }
        let mut cells = ALICE;
        cells[1] = "'=Alice";
        assert_eq!(
            valid(AccountKind::Email, &cells).display_name(),
            Some("=Alice"),
            "other columns undo the export's neutralisation"
        );
    }

    #[test]
    fn a_password_with_white_space_around_it_is_kept_and_noted() {
        let mut cells = ALICE;
        cells[4] = "  pw  ";
        cells[6] = "\u{a0}pw2";
        let row = valid(AccountKind::Email, &cells);
        assert_eq!(
            row.note(),
            Some(
                "incoming_password has white space at its start and end, kept as given; \
                 outgoing_password has white space at its start, kept as given"
            )
        );
        assert!(valid(AccountKind::Email, &ALICE).note().is_none());
    }

    #[test]
    fn a_password_cell_of_only_white_space_is_blank() {
        let mut cells = ALICE;
        cells[4] = "   ";
        assert!(
            valid(AccountKind::Email, &cells)
                .password(PasswordColumn::Primary)
                .is_none()
        );
    }

    #[test]
    fn a_character_no_profile_can_carry_is_rejected_in_every_field() {
        for index in 0..7 {
            let mut cells = ALICE;
            let value = format!("{}\u{ffff}", ALICE[index]);
            cells[index] = &value;
            let (field, message) = rejection(check(AccountKind::Email, &cells));
            assert_eq!(field, Some(schema::EMAIL[index].name), "{message}");
        }
        for index in 0..5 {
            let mut cells = ["a@example.com", "a@example.com", "a", "CORP", "pw"];
            let value = format!("{}\u{fffe}", cells[index]);
            cells[index] = &value;
            let (field, _) = rejection(check(AccountKind::Exchange, &cells));
            assert_eq!(field, Some(schema::EXCHANGE[index].name));
        }
    }

    #[test]
    fn exchange_user_names_and_domains_must_be_well_formed() {
        let row = |user: &'static str, domain: &'static str| {
            check(
                AccountKind::Exchange,
                &["a@example.com", "a@example.com", user, domain, ""],
            )
        };
        assert!(matches!(row("alice", "CORP"), Checked::Valid(_)));
        assert!(matches!(row("CORP\\alice", ""), Checked::Valid(_)));
        assert!(matches!(
            row("alice@corp.example.com", "corp.example.com"),
            Checked::Valid(_)
        ));
        assert_eq!(rejection(row("ali:ce", "")).0, Some("exchange_username"));
        assert_eq!(rejection(row("\\alice", "")).0, Some("exchange_username"));
        assert_eq!(
            rejection(row("alice", "NOT A DOMAIN")).0,
            Some("exchange_domain")
        );
        assert_eq!(
            rejection(row("alice", "corp..example")).0,
            Some("exchange_domain")
        );
        assert_eq!(
            rejection(row("CORP\\alice", "OTHER")).0,
            Some("exchange_domain")
        );
    }

    #[test]
    fn a_repeated_account_is_a_duplicate_of_the_first_line() {
        let columns = ColumnMap::positional(&schema::EMAIL);
        let mut v = Validator::new(AccountKind::Email, columns);
        let mut second = ALICE;
        second[2] = "ALICE@mail.example.com";
        let mut lines = [
            v.check(&Record::from_cells(2, ALICE)),
            v.check(&Record::from_cells(5, second)),
        ];
        let mut seen = FirstSeen::default();
        mark_duplicates(&mut seen, &mut lines[..1]);
        mark_duplicates(&mut seen, &mut lines[1..]);
        assert!(matches!(lines[0].check, Checked::Valid(_)));
        assert!(matches!(lines[1].check, Checked::Duplicate { first: 2 }));
    }
}
