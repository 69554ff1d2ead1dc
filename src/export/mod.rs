//! The export: stored accounts back out as CSV in the import format, and the mappings report
//! of which profile each device should hold.
//!
//! One [`Exporter`] serves the CLI, the HTTP API and the wizard: it reads the store page by
//! page from one read-only state, so memory stays constant and the file is one consistent
//! state (on SQLite, ranges of users read side by side by snapshots of that state; on
//! PostgreSQL, a server-side cursor), and yields the CSV in chunks through
//! [`Exporter::next_chunk`], which a CLI writes to a file and a server streams as a body.
//!
//! Account exports have a header row of canonical column names in Miradore order and one row
//! per account, sorted by user email then account address. Passwords are always blank (they
//! are not even read), which an import takes as "keep the stored one", and cells a
//! spreadsheet would run as formulas are neutralised the way the import undoes: exporting
//! and importing the file again changes nothing. The same rows can be written as an `.xlsx`
//! workbook instead ([`ExportFormat::Xlsx`]), every cell text and nothing neutralised, which
//! a spreadsheet opens and saves again without turning `007123` into a number.

mod rows;
mod xlsx;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use tokio::sync::mpsc;

pub use rows::{MAPPINGS_HEADER, NO_ACCOUNTS, NO_DEVICE, account_cells, account_header};

use crate::accounts;
use crate::crypto::{CryptoError, Keys};
use crate::csv::Delimiter;
use crate::model::{AccountKind, Platform};
use crate::profile::{Profiles, RenderError, RenderOptions, render};
use crate::store::{AccountSnapshots, ExportPage, Store, StoreError, Tx, UserRange};
use rows::{CsvOut, DeviceCells, mapping_rows};
use xlsx::XlsxOut;

/// The media type of an `.xlsx` workbook.
pub const XLSX_CONTENT_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Accounts read per page of an account export from PostgreSQL.
const ACCOUNT_PAGE: i64 = 5_000;
/// Users per page of an account export from SQLite (a page holds all their accounts).
const RANGE_USERS: i64 = 5_000;
/// Users read per page of the mappings report.
const USER_PAGE: i64 = 500;

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportType {
    /// Accounts of one kind, in the import format.
    Accounts(AccountKind),
    /// Users, their devices and the profile identifiers each device should have.
    Mappings,
}

impl ExportType {
    /// The name used on the command line and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportType::Accounts(kind) => kind.as_str(),
            ExportType::Mappings => "mappings",
        }
    }

    /// A file name for a download of this export in `format`.
    pub fn file_name(self, format: ExportFormat) -> String {
        let extension = format.as_str();
        match self {
            ExportType::Accounts(kind) => format!("{kind}-accounts.{extension}"),
            ExportType::Mappings => format!("device-mappings.{extension}"),
        }
    }
}

impl fmt::Display for ExportType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExportType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "email" => Ok(ExportType::Accounts(AccountKind::Email)),
            "exchange" => Ok(ExportType::Accounts(AccountKind::Exchange)),
            "mappings" => Ok(ExportType::Mappings),
            other => Err(format!(
                "unknown export type {other:?} (expected email, exchange or mappings)"
            )),
        }
    }
}

/// The kind of file an export is written as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExportFormat {
    /// CSV text, its delimiter and encoding chosen.
    #[default]
    Csv,
    /// An `.xlsx` workbook: every cell text, so it opens in a spreadsheet losslessly.
    Xlsx,
}

impl ExportFormat {
    /// The name used on the command line and in the API, which is also the file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
        }
    }
}

impl FromStr for ExportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(ExportFormat::Csv),
            "xlsx" => Ok(ExportFormat::Xlsx),
            other => Err(format!(
                "unknown export format {other:?} (expected csv or xlsx)"
            )),
        }
    }
}

/// The text encoding of an export file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputEncoding {
    /// UTF-8 without a byte-order mark.
    #[default]
    Utf8,
    /// UTF-8 with a byte-order mark, which Excel needs to read non-ASCII text right.
    Utf8Bom,
    /// UTF-16 little-endian with a byte-order mark (Excel's "Unicode Text").
    Utf16,
}

impl OutputEncoding {
    /// The name used on the command line and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputEncoding::Utf8 => "utf-8",
            OutputEncoding::Utf8Bom => "utf-8-bom",
            OutputEncoding::Utf16 => "utf-16",
        }
    }

    /// The `Content-Type` of a file in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            OutputEncoding::Utf8 | OutputEncoding::Utf8Bom => "text/csv; charset=utf-8",
            OutputEncoding::Utf16 => "text/csv; charset=utf-16",
        }
    }

    fn bom(self) -> &'static [u8] {
        match self {
            OutputEncoding::Utf8 => b"",
            OutputEncoding::Utf8Bom => b"\xEF\xBB\xBF",
            OutputEncoding::Utf16 => b"\xFF\xFE",
        }
    }
}

impl FromStr for OutputEncoding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" => Ok(OutputEncoding::Utf8),
            "utf-8-bom" | "utf8-bom" | "utf-8-sig" => Ok(OutputEncoding::Utf8Bom),
            "utf-16" | "utf16" | "utf-16le" | "unicode" => Ok(OutputEncoding::Utf16),
            other => Err(format!(
                "unknown export encoding {other:?} (expected utf-8, utf-8-bom or utf-16)"
            )),
        }
    }
}

/// Parses an export delimiter name: `comma`, `semicolon` or `tab` (or the character).
pub fn parse_delimiter(s: &str) -> Result<Delimiter, String> {
    match s.trim_matches(' ').to_ascii_lowercase().as_str() {
        "comma" | "," => Ok(Delimiter::COMMA),
        "semicolon" | ";" => Ok(Delimiter::SEMICOLON),
        "tab" | "\t" | "\\t" => Ok(Delimiter::TAB),
        other => Err(format!(
            "unknown export delimiter {other:?} (expected comma, semicolon or tab)"
        )),
    }
}

/// How to write an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportOptions {
    /// CSV or `.xlsx`.
    pub format: ExportFormat,
    /// Field delimiter (CSV).
    pub delimiter: Delimiter,
    /// Text encoding (CSV).
    pub encoding: OutputEncoding,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            format: ExportFormat::Csv,
            delimiter: Delimiter::COMMA,
            encoding: OutputEncoding::Utf8,
        }
    }
}

/// Where an export's rows are written: CSV text handed out as it grows, or a workbook
/// handed out once it is complete.
enum Out {
    Csv(Box<CsvOut>),
    Xlsx(Box<XlsxOut>),
}

impl Out {
    fn new(options: ExportOptions, what: ExportType) -> std::io::Result<Out> {
        Ok(match options.format {
            ExportFormat::Csv => {
                Out::Csv(Box::new(CsvOut::new(options.delimiter, options.encoding)))
            }
            ExportFormat::Xlsx => Out::Xlsx(Box::new(XlsxOut::new(what.as_str())?)),
        })
    }

    fn row<'c>(&mut self, cells: impl IntoIterator<Item = &'c str>) -> std::io::Result<()> {
        match self {
            Out::Csv(csv) => csv.row(cells),
            Out::Xlsx(xlsx) => xlsx.row(cells),
        }
    }

    fn take(&mut self) -> std::io::Result<Vec<u8>> {
        match self {
            Out::Csv(csv) => csv.take(),
            Out::Xlsx(xlsx) => xlsx.take(),
        }
    }

    /// After the last row: a workbook is written out (on a blocking thread: compressing a
    /// large sheet takes a while).
    async fn finish(&mut self) -> std::io::Result<()> {
        let Out::Xlsx(xlsx) = self else {
            return Ok(());
        };
        if xlsx.finished() {
            return Ok(());
        }
        let placeholder = Box::new(XlsxOut::new("placeholder")?);
        let mut workbook = std::mem::replace(xlsx, placeholder);
        let workbook = tokio::task::spawn_blocking(move || workbook.finish().map(|()| workbook))
            .await
            .map_err(std::io::Error::other)??;
        *xlsx = workbook;
        Ok(())
    }
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored password would not open (mappings: profiles are rendered to be exact).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The key for stored passwords cannot be had.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    /// A profile could not be rendered for the mappings report.
    #[error("cannot render the profile of {user}: {source}")]
    Render {
        /// The user.
        user: String,
        /// Why.
        source: RenderError,
    },
    /// A stored device has a platform this version does not know.
    #[error("device {device}: {source}")]
    Platform {
        /// The device id.
        device: String,
        /// The stored name.
        source: crate::model::UnknownPlatform,
    },
    /// The CSV could not be written.
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
}

enum Source {
    Accounts {
        kind: AccountKind,
        /// Pages read ahead by tasks of their own, so that the database reads the next
        /// pages while this one is written out.
        pages: Pages,
    },
    Mappings {
        profiles: Arc<Profiles>,
        keys: Box<Keys>,
        after: Option<String>,
        /// The snapshot read from; `None` once the last page was read.
        snapshot: Option<Tx>,
    },
}

/// A running export. Call [`Exporter::next_chunk`] until it returns `None`; each chunk is
/// whole rows of encoded CSV, the first with the byte-order mark (if any) and the header.
/// Dropping it part-way stops the reading and ends the snapshot.
pub struct Exporter {
    what: ExportType,
    options: ExportOptions,
    source: Source,
    out: Out,
    rows: u64,
}

/// The pages of an account export, in order.
type Pages = mpsc::Receiver<Result<ExportPage, StoreError>>;
/// Where the reading tasks send the pages.
type PageSender = mpsc::Sender<Result<ExportPage, StoreError>>;

/// How many SQLite snapshots read an account export side by side: one per core, up to
/// four. The writer needs little: decoding and writing are a tenth of the reading.
fn readers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Starts the tasks that read an export's pages a few ahead of the writer, until the last
/// page or until the receiver is dropped.
fn read_ahead(store: &Store, snapshots: AccountSnapshots, kind: AccountKind) -> Pages {
    let (sender, pages) = mpsc::channel(2);
    match snapshots {
        AccountSnapshots::Cursor(snapshot) => {
            tokio::spawn(read_cursor(snapshot, kind, sender));
        }
        AccountSnapshots::Ranges(readers) => {
            tokio::spawn(read_ranges(store.clone(), readers, kind, sender));
        }
    }
    pages
}

/// PostgreSQL: one server-side cursor, read page after page.
async fn read_cursor(mut snapshot: Tx, kind: AccountKind, sender: PageSender) {
    let mut first = true;
    loop {
        let page = match snapshot.export_cursor_page(kind, first, ACCOUNT_PAGE).await {
            Ok(page) => page,
            Err(e) => {
                let _ = sender.send(Err(e)).await;
                break;
            }
        };
        first = false;
        let last = page.len() < ACCOUNT_PAGE as usize;
        if sender.send(Ok(page)).await.is_err() || last {
            break;
        }
    }
    let _ = snapshot.rollback().await;
}

/// SQLite: consecutive ranges of users, range `i` read by reader `i mod n`, so the
/// readers work side by side while the pages still reach the writer in order.
async fn read_ranges(store: Store, snapshots: Vec<Tx>, kind: AccountKind, sender: PageSender) {
    let mut ranges = Vec::new();
    let mut pages = Vec::new();
    for mut snapshot in snapshots {
        let (range_sender, mut range_receiver) = mpsc::channel::<UserRange>(2);
        let (page_sender, page_receiver) = mpsc::channel(2);
        tokio::spawn(async move {
            while let Some(range) = range_receiver.recv().await {
                let page = snapshot.export_range(kind, range).await;
                if page_sender.send(page).await.is_err() {
                    break;
                }
            }
            let _ = snapshot.rollback().await;
        });
        ranges.push(range_sender);
        pages.push(page_receiver);
    }
    let readers = ranges.len();
    let (mut handed_out, mut passed_on) = (0, 0);
    let mut after = Some(String::new());
    loop {
        // Each reader busy with a range and the next one waiting for it.
        while handed_out - passed_on < 2 * readers
            && let Some(start) = after.take()
        {
            let through = match store.user_range_end(&start, RANGE_USERS).await {
                Ok(through) => through,
                Err(e) => {
                    let _ = sender.send(Err(e)).await;
                    return;
                }
            };
            after.clone_from(&through);
            let range = UserRange {
                after: start,
                through,
            };
            if ranges[handed_out % readers].send(range).await.is_err() {
                return;
            }
            handed_out += 1;
        }
        if passed_on == handed_out {
            return;
        }
        let page = pages[passed_on % readers].recv().await.unwrap_or_else(|| {
            Err(StoreError::Query(sqlx::Error::Protocol(
                "an export reader stopped".into(),
            )))
        });
        passed_on += 1;
        let failed = page.is_err();
        if sender.send(page).await.is_err() || failed {
            return;
        }
    }
}

impl Exporter {
    /// Starts exporting the accounts of `kind`.
    pub async fn accounts(
        store: &Store,
        kind: AccountKind,
        options: ExportOptions,
    ) -> Result<Exporter, ExportError> {
        let mut out = Out::new(options, ExportType::Accounts(kind))?;
        out.row(account_header(kind))?;
        let snapshots = store.begin_account_export(readers()).await?;
        Ok(Exporter {
            what: ExportType::Accounts(kind),
            options,
            source: Source::Accounts {
                kind,
                pages: read_ahead(store, snapshots, kind),
            },
            out,
            rows: 0,
        })
    }

    /// Starts the mappings report: every user, each of their devices, and for each device
    /// the profile identifier and account UUIDs it should hold, found by rendering the
    /// user's profile for the device's platform exactly as a push would.
    pub async fn mappings(
        store: &Store,
        profiles: Arc<Profiles>,
        options: ExportOptions,
    ) -> Result<Exporter, ExportError> {
        let mut out = Out::new(options, ExportType::Mappings)?;
        out.row(MAPPINGS_HEADER)?;
        Ok(Exporter {
            what: ExportType::Mappings,
            options,
            source: Source::Mappings {
                keys: Box::new(profiles.keys(store).await?),
                profiles,
                after: None,
                snapshot: Some(store.begin_export().await?),
            },
            out,
            rows: 0,
        })
    }

    /// What this export is.
    pub fn export_type(&self) -> ExportType {
        self.what
    }

    /// The `Content-Type` of the file.
    pub fn content_type(&self) -> &'static str {
        match self.options.format {
            ExportFormat::Csv => self.options.encoding.content_type(),
            ExportFormat::Xlsx => XLSX_CONTENT_TYPE,
        }
    }

    /// A file name for a download of this export.
    pub fn file_name(&self) -> String {
        self.what.file_name(self.options.format)
    }

    /// Data rows written so far (the header not counted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The next chunk of the file (never empty), or `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ExportError> {
        loop {
            let finished = self.read_page().await?;
            if finished {
                self.out.finish().await?;
            }
            let chunk = self.out.take()?;
            if !chunk.is_empty() {
                return Ok(Some(chunk));
            }
            if finished {
                return Ok(None);
            }
        }
    }

    /// Writes the rows of the next page; `true` when there are no more.
    async fn read_page(&mut self) -> Result<bool, ExportError> {
        match &mut self.source {
            Source::Accounts { kind, pages } => match pages.recv().await {
                None => Ok(true),
                Some(page) => {
                    // Decoded here, so the reader is already fetching the next page.
                    let page = page?.rows()?;
                    for row in &page {
                        self.out.row(account_cells(*kind, row))?;
                    }
                    self.rows += page.len() as u64;
                    Ok(false)
                }
            },
            Source::Mappings {
                profiles,
                keys,
                after,
                snapshot,
            } => {
                let Some(tx) = snapshot.as_mut() else {
                    return Ok(true);
                };
                let page = tx.mappings_page(after.as_deref(), USER_PAGE).await?;
                for user in &page {
                    self.rows += write_mappings(&mut self.out, profiles, keys, user)?;
                }
                if let Some(last) = page.last() {
                    *after = Some(last.user.email_norm.clone());
                }
                if page.len() < USER_PAGE as usize
                    && let Some(tx) = snapshot.take()
                {
                    tx.rollback().await?;
                }
                Ok(false)
            }
        }
    }
}

/// Writes one user's mappings rows and returns how many.
fn write_mappings(
    out: &mut Out,
    profiles: &Profiles,
    keys: &Keys,
    mappings: &crate::store::UserMappings,
) -> Result<u64, ExportError> {
    let email = mappings.user.email.clone();
    let (user, accounts) =
        accounts::open_user(keys, mappings.user.clone(), mappings.accounts.clone())?;
    let listed: Vec<(AccountKind, &str)> = accounts
        .iter()
        .map(|a| (a.kind(), a.address.as_str()))
        .collect();
    let options = RenderOptions {
        redact_secrets: true,
        ..RenderOptions::default()
    };
    let mut rows = Vec::new();
    if mappings.devices.is_empty() {
        rows.extend(mapping_rows(&user.email, None, None, &listed));
    }
    for (device_id, platform, enrollment_id) in &mappings.devices {
        let platform: Platform = platform.parse().map_err(|source| ExportError::Platform {
            device: device_id.clone(),
            source,
        })?;
        let rendered = render(
            &user.email,
            &accounts,
            platform,
            &profiles.definitions,
            &options,
        );
        if let Err(e) = &rendered
            && !matches!(
                e,
                RenderError::NoAccounts { .. } | RenderError::NothingToRender { .. }
            )
        {
            return Err(ExportError::Render {
                user: email,
                source: e.clone(),
            });
        }
        let device = DeviceCells {
            device_id,
            platform: platform.as_str(),
            enrollment_id,
        };
        rows.extend(mapping_rows(
            &user.email,
            Some(device),
            Some(&rendered),
            &listed,
        ));
    }
    for row in &rows {
        out.row(row.iter().map(String::as_str))?;
    }
    Ok(rows.len() as u64)
}
