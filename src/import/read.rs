//! The reading side of an import, run on a blocking thread: bytes → records → checked lines,
//! sent in chunks to the side that talks to the store, so parsing, validation and sealing
//! overlap with database work and memory holds a few chunks, never the file.

use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::schema;
use super::validate::{ParsedLine, Validator};
use super::{ColumnReport, HeaderChoice, ImportError, ImportOptions, Progress, SampleRow};
use crate::crypto::Keys;
use crate::csv::{self, ColumnMap, Delimiter, Detected, ReadOptions, Record};

/// Lines sent at a time.
const CHUNK: usize = 2048;
/// Chunks read ahead of the side that decides them: enough for reading to go on while that
/// side scans the store before deciding the first line.
const AHEAD: usize = 8;

/// Cells of a sample row sent back at most.
const SAMPLE_CELLS: usize = 64;

/// What the reader sends.
pub enum Message {
    /// The file is open: how it is being read. Always first.
    Opened(FileInfo),
    /// The next lines, in file order.
    Lines(Vec<ParsedLine>),
}

/// How the file is being read.
pub struct FileInfo {
    /// Encoding.
    pub detected: Detected,
    /// Delimiter.
    pub delimiter: Delimiter,
    /// Whether the first record was a header.
    pub header: bool,
    /// Each cell position and the column it holds.
    pub columns: Vec<ColumnReport>,
}

/// What is known only once the whole file has been read.
pub struct FileDigest {
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// The first records, passwords masked.
    pub sample: Vec<SampleRow>,
    /// Lines refused for having the other account type's width.
    pub other_width: u64,
}

/// What a masked password looks like in previews: fixed, so it does not tell the length.
pub const MASK: &str = "••••••••";

/// The file's digest, once every line has been read.
pub type Finished = tokio::sync::oneshot::Receiver<Result<FileDigest, ImportError>>;

/// Starts reading `input` on a thread of its own: the lines come on the receiver, the
/// file's digest once it has all been read.
pub fn spawn(
    input: impl Read + Send + 'static,
    options: &ImportOptions,
    keys: Keys,
) -> Result<(mpsc::Receiver<Message>, Finished), ImportError> {
    let (sender, receiver) = mpsc::channel(AHEAD);
    let options = options.clone();
    let digest = super::on_thread("import-read", move || read(input, &options, keys, &sender))?;
    Ok((receiver, digest))
}

fn read(
    input: impl Read,
    options: &ImportOptions,
    keys: Keys,
    sender: &mpsc::Sender<Message>,
) -> Result<FileDigest, ImportError> {
    let hasher = Rc::new(RefCell::new(Sha256::new()));
    let counted = Counted {
        inner: input,
        hasher: Rc::clone(&hasher),
        progress: options.progress.clone(),
    };
    let schema = schema::columns(options.kind);
    let mut csv = csv::open(
        counted,
        &ReadOptions {
            encoding: options.encoding,
            delimiter: options.delimiter,
            expected_widths: vec![schema.len()],
        },
    )?;
    let mut record = Record::default();
    if !csv.read(&mut record)? {
        return Err(ImportError::Empty);
    }
    let header = match options.header {
        HeaderChoice::Yes => true,
        HeaderChoice::No => false,
        HeaderChoice::Auto => ColumnMap::is_header(schema, &record),
    };
    let columns = if header {
        ColumnMap::from_header(schema, &record).map_err(|refused| {
            let other = options.kind.other();
            match ColumnMap::from_header(schema::columns(other), &record) {
                Ok(_) => ImportError::OtherType {
                    header: refused,
                    other,
                },
                Err(_) => ImportError::Header(refused),
            }
        })?
    } else {
        ColumnMap::positional(schema)
    };
    let header_cells: Vec<String> = if header {
        record.cells().map(str::to_owned).collect()
    } else {
        Vec::new()
    };
    let names = columns.names(schema);
    let column_reports = names
        .iter()
        .enumerate()
        .map(|(i, name)| ColumnReport {
            header: header_cells.get(i).cloned(),
            column: *name,
        })
        .collect();
    let info = FileInfo {
        detected: csv.detected(),
        delimiter: csv.delimiter(),
        header,
        columns: column_reports,
    };
    if sender.blocking_send(Message::Opened(info)).is_err() {
        return Err(ImportError::Stopped);
    }

    let mut validator = Validator::new(options.kind, columns, keys);
    let mut sample = Vec::new();
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut have_record = !header;
    loop {
        if !have_record && !csv.read(&mut record)? {
            break;
        }
        have_record = false;
        if sample.len() < options.sample_rows {
            sample.push(SampleRow {
                line: record.line(),
                // Shown to be recognised, not to be read in full: a huge cell, or a line of
                // a million cells, is not sent back whole.
                cells: record
                    .cells()
                    .take(SAMPLE_CELLS)
                    .enumerate()
                    .map(|(i, cell)| match names.get(i).copied().flatten() {
                        Some(name) if schema::is_password(name) && !cell.is_empty() => {
                            MASK.to_owned()
                        }
                        _ => crate::model::excerpt(cell).into_owned(),
                    })
                    .collect(),
            });
        }
        chunk.push(validator.check(&record));
        if let Some(progress) = &options.progress {
            progress.rows.fetch_add(1, Ordering::Relaxed);
        }
        if chunk.len() == CHUNK
            && sender
                .blocking_send(Message::Lines(std::mem::take(&mut chunk)))
                .is_err()
        {
            return Err(ImportError::Stopped);
        }
    }
    if !chunk.is_empty() && sender.blocking_send(Message::Lines(chunk)).is_err() {
        return Err(ImportError::Stopped);
    }
    let sha256 = crate::crypto::to_hex(&hasher.borrow_mut().finalize_reset());
    Ok(FileDigest {
        sha256,
        sample,
        other_width: validator.other_width(),
    })
}

/// Hashes and counts the raw bytes as they are read.
struct Counted<R> {
    inner: R,
    hasher: Rc<RefCell<Sha256>>,
    progress: Option<Arc<Progress>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.borrow_mut().update(&buf[..n]);
        if let Some(progress) = &self.progress {
            progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}
