//! Writing an export as an `.xlsx` workbook: every cell text (so `007123` keeps its zeros and
//! `=x` stays a value, with no `'` added), a bold header row frozen in place, columns as wide
//! as their contents. Rows go to a temporary file as they are written (rust_xlsxwriter's
//! constant-memory mode), and the finished workbook is read back in chunks, so a large export
//! holds neither its rows nor its file in memory.

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use rust_xlsxwriter::{Format, Workbook, XlsxError};

/// Rows a sheet holds, the header included.
const MAX_ROWS: u32 = 1_048_576;
/// The widest a column is made, in characters: longer values wrap nothing, they are cut off
/// on screen only.
const MAX_WIDTH: usize = 60;
/// Bytes handed out per chunk once the workbook is written.
const CHUNK: usize = 1024 * 1024;

/// An export being written as a workbook of one sheet.
pub struct XlsxOut {
    book: Workbook,
    text: Format,
    header: Format,
    widths: Vec<usize>,
    rows: u32,
    file: Option<BufReader<std::fs::File>>,
}

fn failed(e: XlsxError) -> io::Error {
    io::Error::other(e)
}

impl XlsxOut {
    /// A workbook with one empty sheet called `sheet`.
    pub fn new(sheet: &str) -> io::Result<XlsxOut> {
        let mut book = Workbook::new();
        book.add_worksheet_with_constant_memory()
            .map_err(failed)?
            .set_name(sheet)
            .map_err(failed)?;
        let text = Format::new().set_num_format("@");
        Ok(XlsxOut {
            book,
            header: text.clone().set_bold(),
            text,
            widths: Vec::new(),
            rows: 0,
            file: None,
        })
    }

    /// Adds one row, the first being the header.
    pub fn row<'c>(&mut self, cells: impl IntoIterator<Item = &'c str>) -> io::Result<()> {
        if self.rows == MAX_ROWS {
            return Err(io::Error::other(format!(
                "a sheet holds at most {} rows; export as CSV instead",
                MAX_ROWS - 1
            )));
        }
        let sheet = self.book.worksheet_from_index(0).map_err(failed)?;
        let format = if self.rows == 0 {
            &self.header
        } else {
            &self.text
        };
        for (column, cell) in cells.into_iter().enumerate() {
            let index = u16::try_from(column).map_err(io::Error::other)?;
            // A blank cell is left out: it reads back blank, and a blank password keeps the
            // stored one.
            if !cell.is_empty() {
                sheet
                    .write_string_with_format(self.rows, index, cell, format)
                    .map_err(failed)?;
            }
            if self.widths.len() <= column {
                self.widths.resize(column + 1, 0);
            }
            self.widths[column] = self.widths[column].max(cell.chars().count());
        }
        self.rows += 1;
        Ok(())
    }

    /// Writes the workbook to a temporary file, from which [`XlsxOut::take`] then reads it.
    pub fn finish(&mut self) -> io::Result<()> {
        let sheet = self.book.worksheet_from_index(0).map_err(failed)?;
        for (column, width) in self.widths.iter().enumerate() {
            let index = u16::try_from(column).map_err(io::Error::other)?;
            // Room for the widest value and a little margin, as a person would size it.
            let width = (*width).clamp(8, MAX_WIDTH) as f64 + 2.0;
            sheet.set_column_width(index, width).map_err(failed)?;
            sheet.set_column_format(index, &self.text).map_err(failed)?;
        }
        sheet.set_freeze_panes(1, 0).map_err(failed)?;
        let mut file = tempfile::tempfile()?;
        self.book.save_to_writer(&mut file).map_err(failed)?;
        file.seek(SeekFrom::Start(0))?;
        self.file = Some(BufReader::new(file));
        Ok(())
    }

    /// Whether [`XlsxOut::finish`] has run.
    pub fn finished(&self) -> bool {
        self.file.is_some()
    }

    /// The next piece of the finished workbook; empty before it is finished and at its end.
    pub fn take(&mut self) -> io::Result<Vec<u8>> {
        let Some(file) = &mut self.file else {
            return Ok(Vec::new());
        };
        let mut chunk = Vec::with_capacity(CHUNK);
        file.take(CHUNK as u64).read_to_end(&mut chunk)?;
        Ok(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv::Record;

    #[test]
    fn every_cell_reads_back_as_the_text_written() {
        let mut out = XlsxOut::new("email").unwrap();
        out.row(["user_email", "exchange_username", "exchange_domain"])
            .unwrap();
        out.row(["a@example.com", "007123", "=x"]).unwrap();
        out.row(["b@example.com", "'plain", "-1"]).unwrap();
        out.finish().unwrap();
        let mut bytes = Vec::new();
        loop {
            let chunk = out.take().unwrap();
            if chunk.is_empty() {
                break;
            }
            bytes.extend(chunk);
        }
        let mut reader = crate::sheet::open(io::Cursor::new(bytes), None).unwrap();
        assert_eq!(reader.sheet(), "email");
        let mut record = Record::default();
        let mut rows = Vec::new();
        while reader.read(&mut record).unwrap() {
            rows.push(
                (0..record.len())
                    .map(|i| record.literal(i).to_owned())
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(
            rows,
            [
                ["user_email", "exchange_username", "exchange_domain"],
                ["a@example.com", "007123", "=x"],
                ["b@example.com", "'plain", "-1"],
            ]
        );
    }
}
