//! Loading the MDM's own users and devices from header CSV files (`users import`, `devices
//! import`). These are the people and machines mail accounts are later matched onto.
//!
//! A file loads in one transaction: bad rows are reported by line and skipped, the rest are
//! added or updated, and a file that cannot be read writes nothing.

use std::collections::HashMap;
use std::io::Read;

use serde::Serialize;
use tokio::sync::mpsc;

use super::seen::FirstSeen;
use crate::csv::{self, Column, ColumnMap, Delimiter, Encoding, ReadOptions, Record};
use crate::model::{
    NewDevice, NewUser, Platform, normalize_email, quoted, unstorable_character, validate_email,
};
use crate::store::{BATCH, Store, StoreError, Table, Tx};

/// Columns of a users file.
pub const USER_COLUMNS: [Column; 2] = [
    Column {
        name: "email",
        label: "Email",
        aliases: &[
            "user email",
            "e-mail",
            "email address",
            "mail",
            "user",
            "upn",
        ],
        required: true,
    },
    Column {
        name: "display_name",
        label: "Display name",
        aliases: &["name", "full name", "user display name", "user name"],
        required: false,
    },
];

/// Columns of a devices file.
pub const DEVICE_COLUMNS: [Column; 5] = [
    Column {
        name: "user_email",
        label: "User email",
        aliases: &["user", "email", "owner", "owner email"],
        required: true,
    },
    Column {
        name: "device_id",
        label: "Device id",
        aliases: &["device", "udid", "id"],
        required: true,
    },
    Column {
        name: "platform",
        label: "Platform",
        aliases: &["os", "operating system"],
        required: true,
    },
    Column {
        name: "enrollment_id",
        label: "Enrollment id",
        aliases: &["enrollment", "mdm enrollment id"],
        required: true,
    },
    Column {
        name: "user_channel_id",
        label: "User channel id",
        aliases: &[
            "user channel",
            "user enrollment id",
            "user channel enrollment id",
        ],
        required: false,
    },
];

/// Longest device id, enrollment id or display name accepted.
const MAX_FIELD: usize = 512;

/// A line that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    /// Physical line of the record.
    pub line: u64,
    /// Canonical name of the offending column, where one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// What is wrong.
    pub message: String,
}

/// What loading a file did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LoadReport {
    /// Data rows read (header and blank lines not counted).
    pub rows: u64,
    /// Rows that created a user or device.
    pub added: u64,
    /// Rows that changed one.
    pub updated: u64,
    /// Rows that matched what is stored.
    pub unchanged: u64,
    /// The first rows that were not loaded, in line order ([`super::LINES_KEPT`] at most).
    pub rejected: Vec<LineError>,
    /// How many rows were not loaded.
    pub rejected_total: u64,
    /// Header cells that named no known column.
    pub ignored_columns: Vec<String>,
    /// Encoding the file was read in.
    pub encoding: Option<Encoding>,
    /// Delimiter the file was split on.
    #[serde(serialize_with = "serialize_delimiter")]
    pub delimiter: Option<Delimiter>,
}

impl LoadReport {
    /// Counts a row not loaded and keeps it if it may be among the first: a file of a
    /// million bad rows keeps a bounded list, not a million messages.
    fn reject(&mut self, error: LineError) {
        self.rejected_total += 1;
        self.rejected.push(error);
        if self.rejected.len() >= 2 * super::LINES_KEPT {
            self.keep_first_rejected();
        }
    }

    fn keep_first_rejected(&mut self) {
        self.rejected.sort_by_key(|e| e.line);
        self.rejected.truncate(super::LINES_KEPT);
    }
}

fn serialize_delimiter<S: serde::Serializer>(
    d: &Option<Delimiter>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => d.serialize(s),
        None => s.serialize_none(),
    }
}

/// Why a file could not be loaded at all. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes could not be read as CSV text.
    #[error(transparent)]
    Read(#[from] csv::ReadError),
    /// The header row is unusable.
    #[error(transparent)]
    Header(#[from] csv::HeaderError),
    /// The first record is data, not a header.
    #[error("line {line}: expected a header row naming the columns ({expected})")]
    NoHeader {
        /// Line of the first record.
        line: u64,
        /// The columns a header may name.
        expected: String,
    },
    /// The file has no records at all.
    #[error("the file is empty")]
    Empty,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Loads a users file: adds new users, updates the display name (a blank one keeps the
/// stored name) and address case of known ones.
pub async fn load_users(
    store: &Store,
    input: impl Read + Send + 'static,
    actor: &str,
    source: &str,
) -> Result<LoadReport, LoadError> {
    let (mut chunks, reader) = read_rows(input, &USER_COLUMNS, parse_user, |u| {
        normalize_email(&u.email)
    });
    let mut tx = store.begin().await?;
    let mut report = LoadReport::default();
    while let Some(chunk) = chunks.recv().await {
        apply_users(&mut tx, chunk, &mut report).await?;
    }
    let report = finish(tx, reader, report, actor, "users.import", source).await?;
    store.refresh_statistics(Table::Users, report.added).await?;
    Ok(report)
}

/// Loads a devices file: adds new devices and updates known ones (matched by device id),
/// each attached to the user whose email the row names.
pub async fn load_devices(
    store: &Store,
    input: impl Read + Send + 'static,
    actor: &str,
    source: &str,
) -> Result<LoadReport, LoadError> {
    let (mut chunks, reader) = read_rows(input, &DEVICE_COLUMNS, parse_device, |d| {
        d.device_id.clone()
    });
    let mut tx = store.begin().await?;
    let mut report = LoadReport::default();
    while let Some(chunk) = chunks.recv().await {
        apply_devices(&mut tx, chunk, &mut report).await?;
    }
    let report = finish(tx, reader, report, actor, "devices.import", source).await?;
    store
        .refresh_statistics(Table::Devices, report.added)
        .await?;
    Ok(report)
}

async fn finish(
    mut tx: Tx,
    reader: tokio::task::JoinHandle<Result<FileInfo, LoadError>>,
    mut report: LoadReport,
    actor: &str,
    action: &str,
    source: &str,
) -> Result<LoadReport, LoadError> {
    let info = reader
        .await
        .map_err(|e| LoadError::Read(csv::ReadError::Io(std::io::Error::other(e))))??;
    report.keep_first_rejected();
    report.ignored_columns = info.ignored_columns;
    report.encoding = Some(info.encoding);
    report.delimiter = Some(info.delimiter);
    let details = serde_json::json!({
        "rows": report.rows,
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "rejected": report.rejected_total,
    });
    tx.audit(actor, action, source, &details).await?;
    tx.commit().await?;
    Ok(report)
}

/// A parsed row and the line it came from.
struct Row<T> {
    line: u64,
    value: T,
}

type Chunk<T> = Vec<Result<Row<T>, LineError>>;

/// What was learnt about the file while reading it.
struct FileInfo {
    encoding: Encoding,
    delimiter: Delimiter,
    ignored_columns: Vec<String>,
}

/// Reads and parses `input` on a blocking thread, sending chunks of at most [`BATCH`] rows,
/// with rows repeating an earlier row's key already turned into errors.
fn read_rows<T: Send + 'static>(
    input: impl Read + Send + 'static,
    schema: &'static [Column],
    parse: fn(&ColumnMap, &Record) -> Result<T, LineError>,
    key: fn(&T) -> String,
) -> (
    mpsc::Receiver<Chunk<T>>,
    tokio::task::JoinHandle<Result<FileInfo, LoadError>>,
) {
    let (sender, receiver) = mpsc::channel(4);
    let reader = tokio::task::spawn_blocking(move || {
        let mut csv = csv::open(input, &ReadOptions::default())?;
        let mut record = Record::default();
        if !csv.read(&mut record)? {
            return Err(LoadError::Empty);
        }
        if !ColumnMap::is_header(schema, &record) {
            return Err(LoadError::NoHeader {
                line: record.line(),
                expected: schema.iter().map(|c| c.name).collect::<Vec<_>>().join(", "),
            });
        }
        let columns = ColumnMap::from_header(schema, &record)?;
        let mut seen = FirstSeen::default();
        let mut chunk = Vec::with_capacity(BATCH);
        while csv.read(&mut record)? {
            let line = record.line();
            let parsed = check_width(&columns, &record)
                .and_then(|()| parse(&columns, &record))
                .map(|value| Row { line, value })
                .and_then(|row| match seen.check(&[&key(&row.value)], line) {
                    Some(first) => Err(LineError {
                        line,
                        field: Some(schema[0].name),
                        message: format!("repeats line {first}"),
                    }),
                    None => Ok(row),
                });
            chunk.push(parsed);
            if chunk.len() == BATCH && sender.blocking_send(std::mem::take(&mut chunk)).is_err() {
                // The writer stopped; its error is the one to report.
                break;
            }
        }
        if !chunk.is_empty() {
            let _ = sender.blocking_send(chunk);
        }
        Ok(FileInfo {
            encoding: csv.detected().encoding,
            delimiter: csv.delimiter(),
            ignored_columns: columns.ignored,
        })
    });
    (receiver, reader)
}

fn check_width(columns: &ColumnMap, record: &Record) -> Result<(), LineError> {
    if record.width() > columns.width {
        return Err(LineError {
            line: record.line(),
            field: None,
            message: format!(
                "{} cells, but the header has {} columns",
                record.width(),
                columns.width
            ),
        });
    }
    Ok(())
}

fn field_error(record: &Record, field: &'static str, message: impl Into<String>) -> LineError {
    LineError {
        line: record.line(),
        field: Some(field),
        message: message.into(),
    }
}

fn bounded<'r>(
    record: &'r Record,
    value: &'r str,
    field: &'static str,
) -> Result<&'r str, LineError> {
    if crate::model::more_chars_than(value, MAX_FIELD) {
        return Err(field_error(
            record,
            field,
            format!("is longer than {MAX_FIELD} characters"),
        ));
    }
    if let Some(reason) = unstorable_character(value) {
        return Err(field_error(record, field, reason));
    }
    Ok(value)
}

fn required<'r>(
    record: &'r Record,
    value: &'r str,
    field: &'static str,
) -> Result<&'r str, LineError> {
    if value.is_empty() {
        return Err(field_error(record, field, "is empty"));
    }
    bounded(record, value, field)
}

fn email<'r>(
    record: &'r Record,
    value: &'r str,
    field: &'static str,
) -> Result<&'r str, LineError> {
    validate_email(value)
        .map_err(|e| field_error(record, field, format!("{} {e}", quoted(value))))?;
    Ok(value)
}

fn parse_user(columns: &ColumnMap, record: &Record) -> Result<NewUser, LineError> {
    let email_cell = columns.get(record, 0);
    let email = email(record, &email_cell, "email")?;
    let display_name_cell = columns.get(record, 1);
    let display_name = bounded(record, &display_name_cell, "display_name")?;
    Ok(NewUser {
        email: email.to_owned(),
        display_name: display_name.to_owned(),
    })
}

fn parse_device(columns: &ColumnMap, record: &Record) -> Result<NewDevice, LineError> {
    let user_email_cell = columns.get(record, 0);
    let user_email = email(record, &user_email_cell, "user_email")?;
    let device_id_cell = columns.get(record, 1);
    let device_id = required(record, &device_id_cell, "device_id")?;
    let platform: Platform =
        columns
            .get(record, 2)
            .parse()
            .map_err(|e: crate::model::UnknownPlatform| {
                field_error(record, "platform", e.to_string())
            })?;
    let enrollment_id_cell = columns.get(record, 3);
    let enrollment_id = required(record, &enrollment_id_cell, "enrollment_id")?;
    let user_channel_id_cell = columns.get(record, 4);
    let user_channel_id = bounded(record, &user_channel_id_cell, "user_channel_id")?;
    if !user_channel_id.is_empty() && platform != Platform::Macos {
        return Err(field_error(
            record,
            "user_channel_id",
            format!("only macOS devices have a user channel, this one is {platform}"),
        ));
    }
    Ok(NewDevice {
        user_email: user_email.to_owned(),
        device_id: device_id.to_owned(),
        platform,
        enrollment_id: enrollment_id.to_owned(),
        user_channel_id: (!user_channel_id.is_empty()).then(|| user_channel_id.to_owned()),
    })
}

/// Splits a chunk into rows to apply and errors to report.
fn triage<T>(chunk: Chunk<T>, report: &mut LoadReport) -> Vec<Row<T>> {
    report.rows += chunk.len() as u64;
    let mut rows = Vec::with_capacity(chunk.len());
    for parsed in chunk {
        match parsed {
            Ok(row) => rows.push(row),
            Err(e) => report.reject(e),
        }
    }
    rows
}

async fn apply_users(
    tx: &mut Tx,
    chunk: Chunk<NewUser>,
    report: &mut LoadReport,
) -> Result<(), StoreError> {
    let rows = triage(chunk, report);
    let norms: Vec<String> = rows
        .iter()
        .map(|r| normalize_email(&r.value.email))
        .collect();
    let keys: Vec<&str> = norms.iter().map(String::as_str).collect();
    let stored: HashMap<String, _> = tx
        .users_by_email(&keys)
        .await?
        .into_iter()
        .map(|u| (u.email_norm.clone(), u))
        .collect();
    let mut writes = Vec::new();
    for (row, norm) in rows.iter().zip(&norms) {
        let mut user = row.value.clone();
        match stored.get(norm) {
            None => report.added += 1,
            Some(old) => {
                if user.display_name.is_empty() {
                    user.display_name.clone_from(&old.display_name);
                }
                if old.email == user.email && old.display_name == user.display_name {
                    report.unchanged += 1;
                    continue;
                }
                report.updated += 1;
            }
        }
        writes.push(user);
    }
    let writes: Vec<&NewUser> = writes.iter().collect();
    tx.upsert_users(&writes).await
}

async fn apply_devices(
    tx: &mut Tx,
    chunk: Chunk<NewDevice>,
    report: &mut LoadReport,
) -> Result<(), StoreError> {
    let rows = triage(chunk, report);
    let norms: Vec<String> = rows
        .iter()
        .map(|r| normalize_email(&r.value.user_email))
        .collect();
    let keys: Vec<&str> = norms.iter().map(String::as_str).collect();
    let users: HashMap<String, i64> = tx
        .users_by_email(&keys)
        .await?
        .into_iter()
        .map(|u| (u.email_norm, u.id))
        .collect();
    let ids: Vec<&str> = rows.iter().map(|r| r.value.device_id.as_str()).collect();
    let stored: HashMap<String, _> = tx
        .devices_by_device_id(&ids)
        .await?
        .into_iter()
        .map(|d| (d.device_id.clone(), d))
        .collect();
    let mut writes = Vec::new();
    for (row, norm) in rows.iter().zip(&norms) {
        let device = &row.value;
        let Some(&user_id) = users.get(norm) else {
            report.reject(LineError {
                line: row.line,
                field: Some("user_email"),
                message: format!("no user with email {}", device.user_email),
            });
            continue;
        };
        match stored.get(&device.device_id) {
            None => report.added += 1,
            Some(old)
                if old.user_id == user_id
                    && old.platform == device.platform.as_str()
                    && old.enrollment_id == device.enrollment_id
                    && old.user_channel_id == device.user_channel_id =>
            {
                report.unchanged += 1;
                continue;
            }
            Some(_) => report.updated += 1,
        }
        writes.push((user_id, device));
    }
    tx.upsert_devices(&writes).await
}
