//! Importing mail accounts from CSV onto the users the MDM already has, and loading those
//! users and devices ([`directory`]).
//!
//! [`run`] is the one entry point for the CLI, the HTTP API and the wizard, in either mode:
//! a preview computes exactly what a commit would do and writes nothing; a commit applies it in
//! one transaction and records the import. The stages: [`read`] (bytes to checked lines, on
//! threads of its own), [`plan`] (outcomes against the store), then the writes.

mod buffers;
pub mod directory;
pub mod history;
mod index;
pub mod mapping;
mod packed;
mod plan;
mod read;
pub mod report;
pub mod schema;
mod seen;
pub mod validate;
mod write;

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::crypto::Keys;
use crate::csv::{self, Delimiter, DelimiterChoice, Encoding, EncodingChoice};
use crate::model::{AccountKind, Counts, Outcome};
use crate::secrets::{self, KeySource, SecretsError};
use crate::store::{ImportSnapshot, Store, StoreCounts, StoreError, Table};
use index::StoreIndex;
use validate::{Checked, ParsedLine};

pub use read::{MASK, SheetInfo};

/// How many lines not applied a result lists, the first in file order; the rest are counted.
/// A file of a million rejected lines must not become a million messages in memory, nor one
/// answer: every line's outcome is in the results file (`--results`, the stored import's
/// results), and an API preview pages through them (`results_offset`, `results_limit`).
pub const LINES_KEPT: usize = 100;

/// Whether the first record is a header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HeaderChoice {
    /// A header if one of its cells names a column.
    #[default]
    Auto,
    /// Always a header.
    Yes,
    /// Never a header: columns are positional.
    No,
}

impl std::str::FromStr for HeaderChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(HeaderChoice::Auto),
            "yes" | "true" => Ok(HeaderChoice::Yes),
            "no" | "false" => Ok(HeaderChoice::No),
            other => Err(format!(
                "unknown header choice {other:?} (expected auto, yes or no)"
            )),
        }
    }
}

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Email or Exchange rows.
    pub kind: AccountKind,
    /// Encoding to read the file in.
    pub encoding: EncodingChoice,
    /// Delimiter to split it on.
    pub delimiter: DelimiterChoice,
    /// Whether it has a header row.
    pub header: HeaderChoice,
    /// For a spreadsheet file, the sheet to read (else its first).
    pub sheet: Option<String>,
    /// Fields read from the columns or templates the admin gave, not found by header name.
    pub mapping: mapping::Mapping,
    /// A header without a required field is read anyway, every line rejected for the
    /// missing field, instead of being an error: a preview then still shows the file's
    /// columns for the admin to map (the wizard's Columns step).
    pub missing_columns: bool,
    /// Write nothing unless every line is valid and unique.
    pub strict: bool,
    /// How many of the first records to return split into columns.
    pub sample_rows: usize,
    /// Counters the caller may watch while the import runs.
    pub progress: Option<Arc<Progress>>,
    /// The input's size in bytes, when known: a file large against the store is decided
    /// against an index of the whole store rather than by a look-up per batch of lines.
    pub size_hint: Option<u64>,
}

impl ImportOptions {
    /// Defaults for `kind`: everything detected, not strict, ten sample rows.
    pub fn new(kind: AccountKind) -> ImportOptions {
        ImportOptions {
            kind,
            encoding: EncodingChoice::Auto,
            delimiter: DelimiterChoice::Auto,
            header: HeaderChoice::Auto,
            sheet: None,
            mapping: mapping::Mapping::default(),
            missing_columns: false,
            strict: false,
            sample_rows: 10,
            progress: None,
            size_hint: None,
        }
    }
}

/// Live counters of an import in progress.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes of the file read so far.
    pub bytes: AtomicU64,
    /// Data lines read so far.
    pub rows: AtomicU64,
}

/// Preview or commit.
#[derive(Debug, Clone, Copy)]
pub enum Mode<'a> {
    /// Decide every line and write nothing.
    Preview,
    /// Apply, in one transaction, and record the import.
    Commit {
        /// Who is importing, for the record.
        actor: &'a str,
        /// What the input is called (file name), for the record.
        source: &'a str,
        /// The fingerprint of the preview the admin approved: if the commit would now do
        /// anything different, it writes nothing and says so.
        expected: Option<&'a str>,
    },
}

/// One line's outcome, as handed to a [`LineSink`].
#[derive(Debug, Clone, Copy)]
pub struct LineResult<'a> {
    /// Physical line.
    pub line: u64,
    /// User email as written.
    pub user_email: &'a str,
    /// Account address as written.
    pub account_address: &'a str,
    /// What happened.
    pub outcome: Outcome,
    /// For rejected lines, the canonical column to blame.
    pub field: Option<&'a str>,
    /// Why, or what changed; may be empty.
    pub message: &'a str,
}

/// Receives every line's outcome as the import goes (a results file, a review table).
pub trait LineSink: Send {
    /// Takes one line's outcome.
    fn line(&mut self, line: &LineResult<'_>) -> std::io::Result<()>;
}

/// A line that was not applied, as summaries list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineReport {
    /// Physical line.
    pub line: u64,
    /// Discarded, rejected or duplicate.
    pub outcome: Outcome,
    /// For rejected lines, the canonical column to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// Why.
    pub message: String,
}

/// A cell position of the file and the column it was read as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnReport {
    /// The header cell, when the file has a header.
    pub header: Option<String>,
    /// The canonical column, or `None` when the cell is ignored.
    pub column: Option<&'static str>,
}

/// A field of the account type and where the file gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldReport {
    /// The canonical field name.
    pub field: &'static str,
    /// Whether a line must have it.
    pub required: bool,
    /// The header of the column it is read from, or its template, or `column N` without a
    /// header; `None` when the file does not have it.
    pub source: Option<String>,
    /// Whether the admin mapped it (else it was found by its header or position).
    pub mapped: bool,
}

/// One of the first records, split into cells, passwords masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleRow {
    /// Physical line.
    pub line: u64,
    /// The cells in file order.
    pub cells: Vec<String>,
}

/// Everything an import found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportResult {
    /// The recorded import's id, when committed.
    pub id: Option<Uuid>,
    /// Email or Exchange.
    pub kind: AccountKind,
    /// Outcome counts.
    pub counts: Counts,
    /// Encoding the file was read in.
    pub encoding: Encoding,
    /// Whether it started with a byte-order mark.
    pub bom: bool,
    /// Delimiter it was split on.
    pub delimiter: Delimiter,
    /// Whether the first record was a header.
    pub header: bool,
    /// For a spreadsheet file, its format and the sheet read (then `encoding`, `bom` and
    /// `delimiter` describe nothing).
    pub sheet: Option<SheetInfo>,
    /// Whether this was a preview.
    pub dry_run: bool,
    /// The first [`LINES_KEPT`] lines that were not applied.
    pub lines: Vec<LineReport>,
    /// The file's columns as read.
    pub columns: Vec<ColumnReport>,
    /// Each field and where it is read from.
    pub fields: Vec<FieldReport>,
    /// The first records.
    pub sample: Vec<SampleRow>,
    /// SHA-256 of the file, hex.
    pub file_sha256: String,
    /// A digest of every line's outcome: equal for a preview and a commit that do the same.
    pub fingerprint: String,
    /// The other account type, when most lines were refused for having its width: the
    /// file is probably of that type.
    pub other_type: Option<AccountKind>,
}

impl ImportResult {
    /// The summary in the shape `import --json` prints.
    pub fn summary(&self) -> report::Summary<'_> {
        report::Summary::of(self)
    }

    /// How many lines were not applied but are not in [`ImportResult::lines`].
    pub fn more_lines(&self) -> u64 {
        let c = &self.counts;
        (c.discarded + c.rejected + c.duplicates).saturating_sub(self.lines.len() as u64)
    }

    /// Whether every line was applied or discarded (exit status 0).
    pub fn clean(&self) -> bool {
        self.counts.rejected == 0 && self.counts.duplicates == 0
    }
}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The bytes could not be read as CSV text.
    #[error(transparent)]
    Read(#[from] csv::ReadError),
    /// The header row is unusable.
    #[error(transparent)]
    Header(#[from] csv::HeaderError),
    /// The header row is unusable, but is the header of the other account type.
    #[error("{header}: these are the columns of a {} file; is this a --type {other} file?", .other.label())]
    OtherType {
        /// Why the header does not do for the type asked for.
        header: csv::HeaderError,
        /// The account type whose columns the header names.
        other: AccountKind,
    },
    /// A spreadsheet file that cannot be read.
    #[error(transparent)]
    Sheet(#[from] crate::sheet::SheetError),
    /// Columns were mapped, but the file is read without a header row.
    #[error(
        "columns can only be mapped by their headers, and this file is read without a header row"
    )]
    MappingWithoutHeader,
    /// A sheet was asked for, but the file is CSV text.
    #[error("a sheet ({sheet:?}) was asked for, but this is a CSV text file, which has no sheets")]
    NotSpreadsheet {
        /// The sheet asked for.
        sheet: String,
    },
    /// Nothing but blank lines.
    #[error("the file is empty")]
    Empty,
    /// `strict` and some lines were rejected or duplicate.
    #[error(
        "strict import: {} line(s) rejected and {} duplicate; nothing was written",
        .0.counts.rejected, .0.counts.duplicates
    )]
    Strict(Box<ImportResult>),
    /// The store no longer gives the outcome the admin previewed.
    #[error(
        "the accounts or users changed since the preview, so this import would now do something different; nothing was written: preview the file again"
    )]
    Changed(Box<ImportResult>),
    /// The secret key for passwords is missing or unusable.
    #[error(transparent)]
    Key(#[from] SecretsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A line sink (such as the results file) could not be written.
    #[error("cannot write the results: {0}")]
    Sink(#[source] std::io::Error),
    /// The reading side stopped because the writing side had failed.
    #[error("the import stopped")]
    Stopped,
}

impl ImportError {
    /// The complete result of an import that ran to the end but was not committed (strict
    /// failure, or a changed store), so that its lines can still be reported.
    pub fn result(&self) -> Option<&ImportResult> {
        match self {
            ImportError::Strict(result) | ImportError::Changed(result) => Some(result),
            _ => None,
        }
    }
}

/// Imports `input` as `options` say: decides every line against the store and, in
/// [`Mode::Commit`], applies the result in one transaction. `sink` receives every line's
/// outcome in file order.
///
/// Three stages overlap: reading and checking lines (threads of their own), deciding them
/// against the store as it was when the import began (a read-only transaction of its own),
/// and writing (the import's transaction, in a task of its own). Lines never depend on each
/// other's writes, since a repeated account is a duplicate, so deciding need not wait for
/// writing.
pub async fn run(
    store: &Store,
    keys: &KeySource,
    input: impl Read + Send + 'static,
    options: &ImportOptions,
    mode: Mode<'_>,
    sink: Option<&mut dyn LineSink>,
) -> Result<ImportResult, ImportError> {
    let commit = matches!(mode, Mode::Commit { .. });
    // Checked against the store's key before any line is read: a wrong key would call every
    // unchanged password updated, and seal it under a key that opens nothing else.
    let keys = if commit {
        secrets::for_sealing(store, keys).await?
    } else {
        secrets::for_reading(store, keys).await?
    };
    let writer = match mode {
        Mode::Commit { .. } => Some(write::start(store, options.kind, keys.id()).await?),
        Mode::Preview => None,
    };
    let (lines, reader) = read::spawn(input, options)?;
    let mut snapshot = store.import_snapshot().await?;
    let decided = match against(&mut snapshot, options).await {
        Ok(index) => {
            decide_all(
                &mut snapshot,
                index.as_ref(),
                &keys,
                options,
                mode,
                lines,
                writer.as_ref(),
                sink,
            )
            .await
        }
        Err(e) => Err(e),
    };
    snapshot.end().await;
    let digest = reader.await.unwrap_or(Err(ImportError::Stopped));
    let (decided, digest) = match (decided, digest) {
        (Ok(decided), Ok(digest)) => (decided, digest),
        (decided, digest) => {
            // A stage that stopped because another failed reports `Stopped`; the failure
            // worth telling is the other one: the writer's, else the reader's.
            let written = match writer {
                Some(writer) => writer.abandon().await.err(),
                None => None,
            };
            let error = [written, digest.err(), decided.err()]
                .into_iter()
                .flatten()
                .find(|e| !matches!(e, ImportError::Stopped | ImportError::Empty))
                .unwrap_or(ImportError::Empty);
            return Err(error);
        }
    };
    let result = decided.into_result(options.kind, commit, digest);
    let (
        Some(writer),
        Mode::Commit {
            actor,
            source,
            expected,
        },
    ) = (writer, mode)
    else {
        return Ok(result);
    };
    let written = writer.finish().await?;
    if options.strict && !result.clean() {
        written.rollback().await?;
        return Err(ImportError::Strict(Box::new(result)));
    }
    if expected.is_some_and(|e| e != result.fingerprint) {
        written.rollback().await?;
        return Err(ImportError::Changed(Box::new(result)));
    }
    let id = result.id.unwrap_or_default();
    written
        .commit(write::Finish {
            id,
            counts: &result.counts,
            file_sha256: &result.file_sha256,
            actor,
            source,
            details: serde_json::json!({
                "import": id, "type": result.kind, "counts": result.counts
            }),
        })
        .await?;
    store
        .refresh_statistics(Table::Accounts, result.counts.added)
        .await?;
    Ok(result)
}

/// What deciding every line found.
struct Decided {
    id: Uuid,
    info: read::FileInfo,
    counts: Counts,
    not_applied: Vec<LineReport>,
    fingerprint: Sha256,
}

impl Decided {
    fn into_result(
        self,
        kind: AccountKind,
        commit: bool,
        digest: read::FileDigest,
    ) -> ImportResult {
        ImportResult {
            id: commit.then_some(self.id),
            kind,
            counts: self.counts,
            encoding: self.info.detected.encoding,
            bom: self.info.detected.bom,
            delimiter: self.info.delimiter,
            header: self.info.header,
            sheet: self.info.sheet,
            dry_run: !commit,
            lines: self.not_applied,
            columns: self.info.columns,
            fields: self.info.fields,
            sample: digest.sample,
            file_sha256: digest.sha256,
            fingerprint: crate::crypto::to_hex(&self.fingerprint.finalize()),
            other_type: (digest.other_width * 2 > self.counts.rows).then(|| kind.other()),
        }
    }
}

/// Runs `work` on a thread of its own named `name` (so that `top -H` and profilers tell
/// the stages of an import apart); its result, or why it gave none.
fn on_thread<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<tokio::sync::oneshot::Receiver<T>, ImportError> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ = done.send(work());
        })
        .map_err(ImportError::Sink)?;
    Ok(result)
}

/// The outcome of a line as sinks and results files see it.
fn line_result<'a>(line: &'a ParsedLine, decision: &'a plan::Decision) -> LineResult<'a> {
    LineResult {
        line: line.line,
        user_email: line.user_email(),
        account_address: line.address(),
        outcome: decision.outcome,
        field: decision.field,
        message: &decision.message,
    }
}

/// Bytes of the shortest line worth counting, for telling how many lines a file of some size
/// may hold.
const MIN_LINE_BYTES: u64 = 32;
/// Stored rows an index scan reads in the time it takes to look up one line.
const SCAN_ROWS_PER_LINE: u64 = 8;
/// A store this small is indexed whatever the file's size: its scan costs next to nothing.
const SMALL_STORE_ROWS: i64 = 20_000;
/// The most memory an index of the store may take; a larger store is looked up line by line.
const INDEX_BUDGET: u64 = 96 << 20;
/// Memory for the index of the store and the write connection's page cache together: a
/// million accounts went in a fifth faster with 96 MiB of cache than with 32, as the key
/// index then stays in memory rather than being written out page by page again and again.
const INDEX_AND_CACHE_BUDGET: u64 = 80 << 20;
/// The smallest page cache the write connection is given.
const MIN_WRITE_CACHE: u64 = 16 << 20;

/// The index of the store to decide against, when the file is large enough against the
/// store for scanning it to cost less than looking its lines up, and the index fits its
/// budget; else `None`, and each batch of lines is looked up.
async fn against(
    snapshot: &mut ImportSnapshot,
    options: &ImportOptions,
) -> Result<Option<StoreIndex>, ImportError> {
    let worth_it = |counts: StoreCounts| {
        let rows = counts.users.saturating_add(counts.accounts);
        let large = match options.size_hint {
            Some(bytes) => {
                (bytes / MIN_LINE_BYTES).saturating_mul(SCAN_ROWS_PER_LINE) >= rows.unsigned_abs()
            }
            None => rows <= SMALL_STORE_ROWS,
        };
        large && index::index_bytes(counts.users, counts.accounts) <= INDEX_BUDGET
    };
    // Bounds first, which cost nothing to read, where counting a million rows took a tenth
    // of a second before the scan could start. An index worth it for more rows is worth it
    // for fewer, so the rows are counted only when the bounds alone would do without one.
    let mut counts = snapshot.counts_at_most().await?;
    if !worth_it(counts) {
        counts = snapshot.counts(options.kind).await?;
        if !worth_it(counts) {
            return Ok(None);
        }
    }
    let gather = index::Gather::new(counts.users, counts.accounts);
    snapshot.scan(options.kind, gather.clone()).await?;
    // Sorting takes a core or two for a tenth of a second: not on the runtime's threads.
    let sorted = on_thread("import-index", move || gather.finish())?;
    Ok(Some(sorted.await.map_err(|_| ImportError::Stopped)?))
}

/// Decides every line the reader sends, against `snapshot` (through `index` when there is
/// one), handing each decided chunk to the writer when there is one.
#[allow(clippy::too_many_arguments)]
async fn decide_all(
    snapshot: &mut ImportSnapshot,
    index: Option<&StoreIndex>,
    keys: &Keys,
    options: &ImportOptions,
    mode: Mode<'_>,
    mut lines_read: read::Lines,
    writer: Option<&write::Writer>,
    mut sink: Option<&mut dyn LineSink>,
) -> Result<Decided, ImportError> {
    let kind = options.kind;
    let id = Uuid::now_v7();
    let mut info = None;
    let mut counts = Counts::default();
    let mut not_applied = Vec::new();
    let mut fingerprint = Sha256::new();
    fingerprint.update(kind.as_str());
    let mut seen = seen::FirstSeen::default();
    while let Some(message) = lines_read.next().await {
        let mut lines = match message {
            read::Message::Opened(opened) => {
                if let (Some(writer), Mode::Commit { actor, source, .. }) = (writer, mode) {
                    writer
                        .send(write::Work::Start(write::Start {
                            id,
                            source: source.to_owned(),
                            actor: actor.to_owned(),
                            options: options_json(options),
                            encoding: match &opened.sheet {
                                Some(sheet) => sheet.format.as_str().to_owned(),
                                None => opened.detected.encoding.as_str().to_owned(),
                            },
                            delimiter: match &opened.sheet {
                                Some(_) => String::new(),
                                None => opened.delimiter.to_string(),
                            },
                            header: opened.header,
                            cache_bytes: INDEX_AND_CACHE_BUDGET
                                .saturating_sub(index.map_or(0, StoreIndex::bytes))
                                .max(MIN_WRITE_CACHE),
                        }))
                        .await?;
                }
                info = Some(opened);
                continue;
            }
            read::Message::Lines(lines) => lines,
        };
        validate::mark_duplicates(&mut seen, &mut lines);
        let decisions = decide_chunk(snapshot, index, keys, kind, &lines).await?;
        for (line, d) in lines.iter().zip(&decisions) {
            counts.count(d.outcome);
            fingerprint.update(line.line.to_le_bytes());
            fingerprint.update(d.outcome.as_str());
            if let Some(sink) = sink.as_deref_mut() {
                sink.line(&line_result(line, d))
                    .map_err(ImportError::Sink)?;
            }
            if !d.outcome.applied() && not_applied.len() < LINES_KEPT {
                not_applied.push(LineReport {
                    line: line.line,
                    outcome: d.outcome,
                    field: d.field,
                    message: d.message.clone(),
                });
            }
        }
        if let Some(writer) = writer {
            // Passwords are sealed only for the accounts that will be written: sealing every
            // line would make an unchanged re-import cost as much as the first one.
            let sealed = plan::seal(kind, keys, &lines, &decisions);
            let results =
                report::deflate_run(lines.iter().zip(&decisions).map(|(l, d)| line_result(l, d)))
                    .map_err(ImportError::Sink)?;
            writer
                .send(write::Work::Lines(packed::Chunk::pack(
                    &lines, &decisions, &sealed, results,
                )))
                .await?;
        }
        lines_read.done(lines);
    }
    let info = info.ok_or(ImportError::Empty)?;
    Ok(Decided {
        id,
        info,
        counts,
        not_applied,
        fingerprint,
    })
}

/// Decides one chunk: through the index where it can tell, else by looking the users of
/// the lines up.
async fn decide_chunk(
    snapshot: &mut ImportSnapshot,
    index: Option<&StoreIndex>,
    keys: &Keys,
    kind: AccountKind,
    lines: &[ParsedLine],
) -> Result<Vec<plan::Decision>, ImportError> {
    let known = match index {
        Some(index) => plan::decide_indexed(kind, keys, lines, index),
        None => lines.iter().map(|_| None).collect(),
    };
    let emails: BTreeSet<&str> = lines
        .iter()
        .zip(&known)
        .filter(|(_, known)| known.is_none())
        .filter_map(|(l, _)| match &l.check {
            Checked::Valid(row) => Some(row.user_norm()),
            _ => None,
        })
        .collect();
    let users = if emails.is_empty() {
        HashMap::new()
    } else {
        let emails = emails.into_iter().map(str::to_owned).collect();
        snapshot.users_with_accounts(kind, emails).await?
    };
    Ok(lines
        .iter()
        .zip(known)
        .map(|(line, known)| known.unwrap_or_else(|| plan::decide_line(kind, keys, line, &users)))
        .collect())
}

fn options_json(options: &ImportOptions) -> String {
    let delimiter = match options.delimiter {
        DelimiterChoice::Auto => "auto".to_owned(),
        DelimiterChoice::Fixed(d) => d.name().to_owned(),
    };
    serde_json::json!({
        "type": options.kind,
        "encoding": format!("{:?}", options.encoding).to_lowercase(),
        "delimiter": delimiter,
        "header": format!("{:?}", options.header).to_lowercase(),
        "sheet": options.sheet,
        "mapping": serde_json::from_str::<serde_json::Value>(&options.mapping.to_json()).unwrap_or_default(),
        "strict": options.strict,
    })
    .to_string()
}
