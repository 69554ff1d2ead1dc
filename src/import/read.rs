//! The reading side of an import: bytes → records on one thread, records → checked lines on
//! another, sent in chunks to the side that talks to the store, so parsing, validation and
//! database work overlap and memory holds a few chunks, never the file.
//!
//! A CSV file is read as it arrives. A spreadsheet file (a ZIP archive, told by its first
//! bytes) must be read out of order, so it is first copied to a temporary file (encrypted,
//! see [`crate::spool`]), as it arrives, and its sheet then read row by row from there.

use std::io::{BufReader, Cursor, Read};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::schema;
use super::validate::{ParsedLine, Validator};
use super::{
    ColumnReport, FieldReport, HeaderChoice, ImportError, ImportOptions, Progress, SampleRow,
};
use crate::csv::{self, ColumnMap, Delimiter, Detected, Encoding, ReadOptions, Record};
use crate::sheet::{self, SheetReader};
use crate::spool;

/// Lines sent at a time.
const CHUNK: usize = 2048;
/// Bytes of records sent to be checked at a time at most, however few lines that is: a
/// file of long lines (a huge cell, or a million cells) must not be held a chunk at a time.
const CHUNK_BYTES: usize = 1 << 20;
/// Bytes a record may have taken and still be filled again: one that held a huge line is
/// dropped instead, so that the records kept for reuse stay small.
const REUSED_RECORD_BYTES: usize = 512;
/// Chunks read ahead of the side that decides them, to even out their pace. No number
/// worth its memory would cover a scan of the store before the first line is decided: a
/// million users take a quarter of a second, while a chunk is read in a millisecond or two.
const AHEAD: usize = 2;
/// Buffers read (of up to 64 KiB) waiting to be hashed.
const HASH_QUEUE: usize = 4;

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
    /// Each field and where it is read from.
    pub fields: Vec<FieldReport>,
    /// For a spreadsheet file, its format and sheets (then `detected` and `delimiter`
    /// describe nothing).
    pub sheet: Option<SheetInfo>,
}

/// What a spreadsheet file is and which of its sheets is read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SheetInfo {
    /// `.xlsx` or `.ods`.
    pub format: sheet::Format,
    /// The sheet read.
    pub name: String,
    /// Every sheet of the workbook, in order.
    pub sheets: Vec<String>,
}

/// Where records come from: CSV text, or a sheet of a spreadsheet file copied aside.
enum Source<R: Read> {
    Text(Box<csv::CsvReader<std::io::Chain<Cursor<Vec<u8>>, R>>>),
    Sheet(Box<SheetReader<BufReader<spool::Reader>>>),
}

impl<R: Read> Source<R> {
    fn read(&mut self, record: &mut Record) -> Result<bool, ImportError> {
        Ok(match self {
            Source::Text(csv) => csv.read(record)?,
            Source::Sheet(sheet) => sheet.read(record)?,
        })
    }
}

/// Opens `input` as a spreadsheet file or as CSV, by its first bytes.
fn open<R: Read>(
    mut input: R,
    options: &ImportOptions,
    widths: usize,
) -> Result<Source<R>, ImportError> {
    let mut head = Vec::with_capacity(4);
    (&mut input)
        .take(4)
        .read_to_end(&mut head)
        .map_err(csv::ReadError::from)?;
    let input = Cursor::new(head).chain(input);
    if sheet::is_zip(input.get_ref().0.get_ref()) {
        let mut copy = spool::Writer::new().map_err(csv::ReadError::Io)?;
        let mut input = input;
        std::io::copy(&mut input, &mut copy).map_err(csv::ReadError::from)?;
        let copy = copy.into_reader().map_err(csv::ReadError::Io)?;
        let reader = sheet::open(BufReader::new(copy), options.sheet.as_deref())?;
        return Ok(Source::Sheet(Box::new(reader)));
    }
    if let Some(name) = &options.sheet {
        return Err(ImportError::NotSpreadsheet {
            sheet: name.clone(),
        });
    }
    let csv = csv::open(
        input,
        &ReadOptions {
            encoding: options.encoding,
            delimiter: options.delimiter,
            expected_widths: vec![widths],
        },
    )?;
    Ok(Source::Text(Box::new(csv)))
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
) -> Result<(Lines, Finished), ImportError> {
    let (sender, messages) = mpsc::channel(AHEAD);
    let (spent, decided) = std::sync::mpsc::channel();
    let options = options.clone();
    let digest = super::on_thread("import-read", move || {
        read(input, &options, &sender, decided)
    })?;
    Ok((Lines { messages, spent }, digest))
}

/// The checked lines of a file as they come, and the way back for those decided.
pub struct Lines {
    messages: mpsc::Receiver<Message>,
    spent: std::sync::mpsc::Sender<Vec<ParsedLine>>,
}

impl Lines {
    /// The next message; `None` once the file is read, or reading stopped.
    pub async fn next(&mut self) -> Option<Message> {
        self.messages.recv().await
    }

    /// Hands back lines that are decided and done with, to be freed on the thread that made
    /// them: jemalloc then gives their memory straight to the next lines, where freeing them
    /// on the deciding thread cost both threads.
    pub fn done(&self, lines: Vec<ParsedLine>) {
        // Once checking has ended, they are freed here.
        let _ = self.spent.send(lines);
    }
}

fn read(
    input: impl Read,
    options: &ImportOptions,
    sender: &mpsc::Sender<Message>,
    decided: std::sync::mpsc::Receiver<Vec<ParsedLine>>,
) -> Result<FileDigest, ImportError> {
    // The file's SHA-256 is taken on a thread of its own: on the reading thread it was a
    // sixteenth of the work that bounds how fast a file is read.
    let (read_bytes, to_hash) = std::sync::mpsc::sync_channel::<Vec<u8>>(HASH_QUEUE);
    let hashed = super::on_thread("import-hash", move || {
        let mut hasher = Sha256::new();
        for bytes in to_hash {
            hasher.update(&bytes);
        }
        crate::crypto::to_hex(&hasher.finalize())
    })?;
    let counted = Counted {
        inner: input,
        to_hash: read_bytes,
        progress: options.progress.clone(),
    };
    let schema = schema::columns(options.kind);
    let mut source = open(counted, options, schema.len())?;
    let mut record = Record::default();
    if !source.read(&mut record)? {
        return Err(ImportError::Empty);
    }
    let mapped = !options.mapping.is_empty();
    let header = match options.header {
        HeaderChoice::Yes => true,
        HeaderChoice::No if mapped => return Err(ImportError::MappingWithoutHeader),
        HeaderChoice::No => false,
        // Columns are mapped by the headers of a file that is not ours: the first row is
        // its header, whatever it says.
        // So is it when read for mapping (`missing_columns`) unless it starts like a line
        // of accounts, with a user's address (a mail host's headers name none of our
        // fields), or is one cell (split on the wrong delimiter).
        HeaderChoice::Auto => {
            mapped
                || ColumnMap::is_header(schema, &record)
                || (options.missing_columns
                    && record.width() >= 2
                    && crate::model::validate_email(record.cell(0)).is_err())
        }
    };
    let columns = if header {
        // A header of the other type's columns, not mapped, is named as such, also when the
        // file is read for mapping: offering to map an Exchange file onto Email fields would
        // only hide the mistake.
        let other = options.kind.other();
        if !mapped
            && let (Err(refused), Ok(_)) = (
                ColumnMap::from_header(schema, &record),
                ColumnMap::from_header(schema::columns(other), &record),
            )
        {
            return Err(ImportError::OtherType {
                header: refused,
                other,
            });
        }
        ColumnMap::from_header_mapped(
            schema,
            &record,
            &options.mapping.specs(options.kind),
            !options.missing_columns,
        )?
    } else {
        ColumnMap::positional(schema)
    };
    let fields: Vec<FieldReport> = schema
        .iter()
        .zip(columns.sources(&record))
        .enumerate()
        .map(|(i, (column, source))| FieldReport {
            field: column.name,
            required: column.required,
            source,
            mapped: columns.mapped(i).is_some(),
        })
        .collect();
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
    let info = match &source {
        Source::Text(csv) => FileInfo {
            detected: csv.detected(),
            delimiter: csv.delimiter(),
            header,
            columns: column_reports,
            fields,
            sheet: None,
        },
        Source::Sheet(reader) => FileInfo {
            // A workbook's text is Unicode; there is no delimiter.
            detected: Detected {
                encoding: Encoding::Utf8,
                bom: false,
            },
            delimiter: Delimiter::COMMA,
            header,
            columns: column_reports,
            fields,
            sheet: Some(SheetInfo {
                format: reader.format(),
                name: reader.sheet().to_owned(),
                sheets: reader.sheets().to_vec(),
            }),
        },
    };
    if sender.blocking_send(Message::Opened(info)).is_err() {
        return Err(ImportError::Stopped);
    }

    // Lines are checked on a thread of their own: parsing and checking together were the
    // work that bounded how fast a file is read, with a core to spare for one of them.
    let (to_check, parsed) = std::sync::mpsc::sync_channel::<Records>(AHEAD);
    let (recycle, emptied) = std::sync::mpsc::channel::<Records>();
    let mut validator = Validator::new(options.kind, columns);
    let lines = sender.clone();
    let checked = super::on_thread("import-check", move || {
        for mut records in parsed {
            let mut chunk = Vec::new();
            for mut done in decided.try_iter() {
                done.clear();
                chunk = done;
            }
            chunk.extend(records.filled().iter().map(|r| validator.check(r)));
            if lines.blocking_send(Message::Lines(chunk)).is_err() {
                return Err(ImportError::Stopped);
            }
            records.clear();
            // The reader may have stopped; then the records are not needed again.
            let _ = recycle.send(records);
        }
        Ok(validator.other_width())
    })?;
    let mut sample = Vec::new();
    let mut records = Records::default();
    let mut first = (!header).then_some(record);
    loop {
        let record = records.next();
        if let Some(first) = first.take() {
            *record = first;
        } else if !source.read(record)? {
            records.len -= 1;
            break;
        }
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
                        None if secret_header(header_cells.get(i)) && !cell.is_empty() => {
                            MASK.to_owned()
                        }
                        _ => crate::model::excerpt(cell).into_owned(),
                    })
                    .collect(),
            });
        }
        records.bytes += record.footprint();
        if let Some(progress) = &options.progress {
            progress.rows.fetch_add(1, Ordering::Relaxed);
        }
        if records.len == CHUNK || records.bytes >= CHUNK_BYTES {
            let next = emptied.try_recv().unwrap_or_default();
            if to_check
                .send(std::mem::replace(&mut records, next))
                .is_err()
            {
                return Err(ImportError::Stopped);
            }
        }
    }
    if records.len > 0 && to_check.send(records).is_err() {
        return Err(ImportError::Stopped);
    }
    drop(to_check);
    // Every byte has been read: ending the reader ends the hashing.
    drop(source);
    let sha256 = hashed.blocking_recv().map_err(|_| ImportError::Stopped)?;
    let other_width = checked
        .blocking_recv()
        .map_err(|_| ImportError::Stopped)??;
    Ok(FileDigest {
        sha256,
        sample,
        other_width,
    })
}

/// Up to a chunk of records, parsed and waiting to be checked. The records' memory is
/// handed back and filled again, not allocated anew for every line.
#[derive(Default)]
struct Records {
    records: Vec<Record>,
    len: usize,
    /// The records' footprint ([`Record::footprint`]) together.
    bytes: usize,
}

impl Records {
    /// The record to fill next, counted as filled.
    fn next(&mut self) -> &mut Record {
        if self.len == self.records.len() {
            self.records.push(Record::default());
        }
        self.len += 1;
        &mut self.records[self.len - 1]
    }

    /// The records filled.
    fn filled(&self) -> &[Record] {
        &self.records[..self.len]
    }

    /// Empties the records to be filled again, dropping those that grew large.
    fn clear(&mut self) {
        for record in &mut self.records[..self.len] {
            if record.footprint() > REUSED_RECORD_BYTES {
                *record = Record::default();
            }
        }
        self.len = 0;
        self.bytes = 0;
    }
}

/// Whether a column no field is read from looks, by its header, like it holds passwords
/// (a mail host's `password`, `Passwort`, `pwd`, `secret`): its cells are masked in samples
/// all the same, before the admin maps it.
fn secret_header(header: Option<&String>) -> bool {
    let key = header
        .map(|h| crate::csv::columns::header_key(h))
        .unwrap_or_default();
    [
        "pass",
        "pwd",
        "secret",
        "kennwort",
        "motdepasse",
        "contrase",
    ]
    .iter()
    .any(|word| key.contains(word))
}

/// Counts the raw bytes as they are read, and sends them to be hashed.
struct Counted<R> {
    inner: R,
    to_hash: std::sync::mpsc::SyncSender<Vec<u8>>,
    progress: Option<Arc<Progress>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 && self.to_hash.send(buf[..n].to_vec()).is_err() {
            return Err(std::io::Error::other("the file's digest stopped"));
        }
        if let Some(progress) = &self.progress {
            progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AccountKind;

    const HEADER: &str = "user_email,display_name,email_address,incoming_username,\
                          incoming_password,outgoing_username,outgoing_password\n";

    /// How many lines each chunk the reading side sends holds, for `text`.
    fn chunk_sizes(text: String) -> Vec<usize> {
        let options = ImportOptions::new(AccountKind::Email);
        let (mut lines, finished) = spawn(std::io::Cursor::new(text), &options).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut sizes = Vec::new();
        runtime.block_on(async {
            while let Some(message) = lines.next().await {
                if let Message::Lines(chunk) = message {
                    sizes.push(chunk.len());
                    lines.done(chunk);
                }
            }
        });
        finished.blocking_recv().unwrap().unwrap();
        sizes
    }

    #[test]
    fn short_lines_are_sent_a_full_chunk_at_a_time() {
        let line = "a@example.com,A,a@example.com,a,p,a,p\n";
        let sizes = chunk_sizes(HEADER.to_owned() + &line.repeat(CHUNK * 2 + 5));
        assert_eq!(sizes, [CHUNK, CHUNK, 5]);
    }

    #[test]
    fn long_lines_are_sent_a_mebibyte_at_a_time() {
        // A huge cell, and a line of many cells: each record takes over 100 KB, so a chunk
        // stopped at a MiB of them holds 11 at most.
        let long = format!(
            "a@example.com,{},a@example.com,a,p,a,p\n",
            "x".repeat(100_000)
        );
        let wide = format!(
            "a@example.com,A,a@example.com,a,p,a,p{}\n",
            ",".repeat(14_000)
        );
        for line in [long, wide] {
            let sizes = chunk_sizes(HEADER.to_owned() + &line.repeat(40));
            assert_eq!(sizes.iter().sum::<usize>(), 40);
            assert!(sizes.iter().all(|&n| n <= 11), "{sizes:?}");
        }
    }

    #[test]
    fn a_record_that_held_a_long_line_is_not_kept_for_reuse() {
        let mut records = Records::default();
        *records.next() = Record::from_cells(2, ["a@example.com", "A"]);
        let long = "x".repeat(REUSED_RECORD_BYTES);
        *records.next() = Record::from_cells(3, ["a@example.com", &long]);
        records.clear();
        assert_eq!(records.filled().len(), 0);
        assert_eq!(records.records[0].len(), 2, "a short record is kept");
        assert_eq!(records.records[1].footprint(), 0, "a long one is dropped");
    }
}
