//! How an import is reported: the JSON summary `import --json` prints (and the API extends),
//! and the per-line results CSV.

use std::io::Write;

use serde::Serialize;

use super::{ImportResult, LineReport, LineResult, LineSink};
use crate::csv::{Delimiter, Encoding, neutralize};
use crate::model::AccountKind;

/// The summary of an import, in the exact shape of the CLI contract.
#[derive(Debug, Clone, Serialize)]
pub struct Summary<'a> {
    /// Account type.
    #[serde(rename = "type")]
    pub kind: AccountKind,
    /// Data lines.
    pub rows: u64,
    /// Accounts stored new.
    pub added: u64,
    /// Accounts changed.
    pub updated: u64,
    /// Accounts already as in the file.
    pub unchanged: u64,
    /// Lines naming no known user.
    pub discarded: u64,
    /// Invalid lines.
    pub rejected: u64,
    /// Lines repeating an earlier account.
    pub duplicates: u64,
    /// Encoding the file was read in (CSV only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// Delimiter it was split on (CSV only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<Delimiter>,
    /// A spreadsheet file's format, `xlsx` or `ods`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<crate::sheet::Format>,
    /// The sheet read, of a spreadsheet file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<&'a str>,
    /// Whether it had a header row.
    pub header: bool,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// The first lines not applied ([`super::LINES_KEPT`] at most).
    pub lines: &'a [LineReport],
    /// Lines not applied beyond those listed.
    pub more_lines: u64,
}

impl<'a> Summary<'a> {
    /// The summary of `result`.
    pub fn of(result: &'a ImportResult) -> Summary<'a> {
        let c = &result.counts;
        Summary {
            kind: result.kind,
            rows: c.rows,
            added: c.added,
            updated: c.updated,
            unchanged: c.unchanged,
            discarded: c.discarded,
            rejected: c.rejected,
            duplicates: c.duplicates,
            encoding: result.sheet.is_none().then_some(result.encoding),
            delimiter: result.sheet.is_none().then_some(result.delimiter),
            format: result.sheet.as_ref().map(|s| s.format),
            sheet: result.sheet.as_ref().map(|s| s.name.as_str()),
            header: result.header,
            dry_run: result.dry_run,
            lines: &result.lines,
            more_lines: result.more_lines(),
        }
    }
}

/// The header of a results file.
pub const RESULTS_HEADER: [&str; 5] = [
    "line",
    "user_email",
    "account_address",
    "outcome",
    "message",
];

/// Writes one CSV row per line: line, user email, account address, outcome, message. Never a
/// password: none reaches a [`LineResult`]. Cells are protected against formula injection.
pub struct ResultsCsv<W: Write> {
    writer: ::csv::Writer<W>,
}

impl<W: Write> ResultsCsv<W> {
    /// Starts a results file on `out`, header first.
    pub fn new(out: W) -> std::io::Result<Self> {
        let mut results = ResultsCsv::rows_only(out);
        results.writer.write_record(RESULTS_HEADER)?;
        Ok(results)
    }

    /// Rows without a header: a run of a results file.
    pub fn rows_only(out: W) -> Self {
        ResultsCsv {
            writer: ::csv::Writer::from_writer(out),
        }
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> std::io::Result<W> {
        self.writer
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// Writes one line's row.
    pub fn write(&mut self, line: &LineResult<'_>) -> std::io::Result<()> {
        let message = match line.field {
            Some(field) => format!("{field}: {}", line.message),
            None => line.message.to_owned(),
        };
        self.writer.write_record([
            line.line.to_string().as_str(),
            &neutralize(line.user_email),
            &neutralize(line.account_address),
            line.outcome.as_str(),
            &neutralize(&message),
        ])?;
        Ok(())
    }
}

/// Deflates a run of results rows for the store.
pub fn deflate_run<'a>(
    lines: impl IntoIterator<Item = LineResult<'a>>,
) -> std::io::Result<Vec<u8>> {
    let encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut run = ResultsCsv::rows_only(encoder);
    for line in lines {
        run.write(&line)?;
    }
    run.finish()?.finish()
}

/// Writes stored runs of a results file in order, inflated, the file's header first when
/// `header` (the first piece of the file).
pub fn write_runs<'a>(
    mut out: impl Write,
    header: bool,
    runs: impl IntoIterator<Item = &'a [u8]>,
) -> std::io::Result<()> {
    if header {
        let mut header = ::csv::Writer::from_writer(&mut out);
        header.write_record(RESULTS_HEADER)?;
        header.flush()?;
    }
    for run in runs {
        std::io::copy(&mut flate2::read::DeflateDecoder::new(run), &mut out)?;
    }
    Ok(())
}

impl<W: Write + Send> LineSink for ResultsCsv<W> {
    fn line(&mut self, line: &LineResult<'_>) -> std::io::Result<()> {
        self.write(line)
    }
}
