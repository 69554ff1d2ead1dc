//! Spreadsheet files as records: `.xlsx` (Excel) and `.ods` (LibreOffice), told apart by
//! their content, read one row at a time so that a sheet of a million rows never sits in
//! memory (an `.xlsx` keeps only its shared-strings table, compactly).
//!
//! Cells come out as the text the admin sees: a whole number without `.0`, other numbers to
//! the 15 significant digits a spreadsheet shows, dates as ISO 8601, booleans as `TRUE` and
//! `FALSE`. A record's line is its row number, so messages point at the row to look at.
//!
//! Every size is bounded, whatever the file claims: each part is inflated only as far as its
//! limit, no cell may hold more than a spreadsheet cell can (32,767 characters), no row may
//! reach past column XFD (16,384) nor a sheet past row 1,048,576, and no run of bytes
//! between two tags may exceed a few MiB, so a zip bomb or a hostile table costs a bounded
//! amount of memory and time and ends in an error naming what was too large.

mod ods;
mod text;
mod xlsx;
mod zipped;

use std::io::{Read, Seek};

use crate::csv::Record;

pub use text::{excel_date, number_text};

/// The spreadsheet file formats read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Office Open XML workbook (Excel 2007 and later, LibreOffice, Google Sheets).
    Xlsx,
    /// OpenDocument spreadsheet (LibreOffice, OpenOffice).
    Ods,
}

impl Format {
    /// The format's usual file extension, as shown to admins.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Xlsx => "xlsx",
            Format::Ods => "ods",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The most columns a row may have: Excel's last column is XFD.
pub const MAX_COLUMNS: usize = 16_384;
/// The most rows a sheet may have, as in Excel and LibreOffice.
pub const MAX_ROWS: u64 = 1_048_576;
/// The most characters a cell may hold, as in Excel.
pub const MAX_CELL_CHARS: usize = 32_767;

/// Why a spreadsheet file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    /// A ZIP archive that holds no workbook this version reads.
    #[error("this is {what}, not a spreadsheet this version reads: save it as .xlsx, .ods or CSV")]
    NotSpreadsheet {
        /// What the archive turned out to be.
        what: &'static str,
    },
    /// The sheet asked for is not in the workbook.
    #[error("the workbook has no sheet called {name:?} (its sheets: {})", .sheets.join(", "))]
    NoSuchSheet {
        /// The name asked for.
        name: String,
        /// The sheets it has.
        sheets: Vec<String>,
    },
    /// The workbook has no sheet of cells at all.
    #[error("the workbook has no sheet of cells")]
    NoSheets,
    /// The file is not well-formed.
    #[error("the spreadsheet is damaged: {0}")]
    Damaged(String),
    /// A part of the file is larger than any real spreadsheet's.
    #[error(
        "{what} is larger than {limit} bytes once unpacked; no spreadsheet program writes one so large, so it is not read"
    )]
    TooLarge {
        /// The part.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A cell or row beyond what a spreadsheet can hold.
    #[error("sheet {sheet:?}, row {row}: {reason}")]
    Cell {
        /// The sheet.
        sheet: String,
        /// The row number.
        row: u64,
        /// What is wrong.
        reason: String,
    },
    /// The file could not be read.
    #[error("cannot read the spreadsheet: {0}")]
    Io(#[source] std::io::Error),
}

impl From<zip::result::ZipError> for SheetError {
    fn from(e: zip::result::ZipError) -> Self {
        match e {
            zip::result::ZipError::Io(io) => io.into(),
            other => SheetError::Damaged(other.to_string()),
        }
    }
}

impl From<std::io::Error> for SheetError {
    fn from(e: std::io::Error) -> Self {
        // The bounded readers report a limit as an I/O error carrying this error.
        if !e.get_ref().is_some_and(|inner| inner.is::<SheetError>()) {
            return SheetError::Io(e);
        }
        match e.into_inner().map(|inner| inner.downcast::<SheetError>()) {
            Some(Ok(sheet)) => *sheet,
            _ => SheetError::Io(std::io::Error::other("unreadable spreadsheet")),
        }
    }
}

impl From<quick_xml::Error> for SheetError {
    fn from(e: quick_xml::Error) -> Self {
        match e {
            quick_xml::Error::Io(io) => match std::sync::Arc::try_unwrap(io) {
                Ok(io) => io.into(),
                Err(shared) => {
                    SheetError::Io(std::io::Error::new(shared.kind(), shared.to_string()))
                }
            },
            other => SheetError::Damaged(other.to_string()),
        }
    }
}

/// Whether `sample`, the first bytes of a file, starts a ZIP archive, as `.xlsx` and `.ods`
/// files do.
pub fn is_zip(sample: &[u8]) -> bool {
    sample.starts_with(b"PK\x03\x04")
}

/// One sheet of a workbook, read row by row.
pub struct SheetReader<R: Read + Seek> {
    format: Format,
    sheets: Vec<String>,
    sheet: String,
    rows: Rows<R>,
}

enum Rows<R: Read + Seek> {
    Xlsx(Box<xlsx::Rows<R>>),
    Ods(Box<ods::Rows<R>>),
}

/// Opens the workbook in `input` and the sheet called `sheet`, or its first sheet.
pub fn open<R: Read + Seek>(input: R, sheet: Option<&str>) -> Result<SheetReader<R>, SheetError> {
    let mut archive = zip::ZipArchive::new(input).map_err(|e| match e {
        zip::result::ZipError::Io(io) => SheetError::Io(io),
        _ => SheetError::Damaged("it is not a whole ZIP archive (was it cut short?)".to_owned()),
    })?;
    let format = zipped::format(&mut archive)?;
    let (sheets, chosen, rows) = match format {
        Format::Xlsx => {
            let (sheets, chosen, rows) = xlsx::open(archive, sheet)?;
            (sheets, chosen, Rows::Xlsx(Box::new(rows)))
        }
        Format::Ods => {
            let (sheets, chosen, rows) = ods::open(archive, sheet)?;
            (sheets, chosen, Rows::Ods(Box::new(rows)))
        }
    };
    Ok(SheetReader {
        format,
        sheets,
        sheet: chosen,
        rows,
    })
}

impl<R: Read + Seek> SheetReader<R> {
    /// The file's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The name of the sheet being read.
    pub fn sheet(&self) -> &str {
        &self.sheet
    }

    /// Every sheet of cells in the workbook, in its order.
    pub fn sheets(&self) -> &[String] {
        &self.sheets
    }

    /// Reads the next row that has a cell that is not blank into `record`, with its row
    /// number as its line; `false` after the last.
    pub fn read(&mut self, record: &mut Record) -> Result<bool, SheetError> {
        loop {
            let row = match &mut self.rows {
                Rows::Xlsx(rows) => rows.next_row(&self.sheet)?,
                Rows::Ods(rows) => rows.next_row(&self.sheet)?,
            };
            let Some((line, cells)) = row else {
                return Ok(false);
            };
            if cells.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            record.fill(line, cells.iter().map(String::as_str));
            return Ok(true);
        }
    }
}

/// The letters of a 0-based column index (`0` → `A`, `27` → `AB`), as messages name columns.
pub fn column_name(index: usize) -> String {
    let mut name = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        let rem = (n - 1) % 26;
        name.push(b'A' + u8::try_from(rem).unwrap_or(0));
        n = (n - 1) / 26;
    }
    name.reverse();
    String::from_utf8(name).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    type Read = (Vec<String>, String, Vec<(u64, Vec<String>)>);

    fn read_all(bytes: Vec<u8>, sheet: Option<&str>) -> Result<Read, SheetError> {
        let mut reader = open(Cursor::new(bytes), sheet)?;
        let mut record = Record::default();
        let mut rows = Vec::new();
        while reader.read(&mut record)? {
            rows.push((record.line(), record.cells().map(str::to_owned).collect()));
        }
        Ok((reader.sheets().to_vec(), reader.sheet().to_owned(), rows))
    }

    fn strings(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| (*c).to_owned()).collect()
    }

    /// A workbook of two sheets as Excel users fill them in: text, numbers that look like
    /// identifiers, a date, a boolean, a blank row, a formula.
    fn workbook() -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet().set_name("Accounts").unwrap();
        sheet.write_string(0, 0, "user_email").unwrap();
        sheet.write_string(0, 1, "exchange_username").unwrap();
        sheet.write_string(1, 0, "a@example.com").unwrap();
        sheet.write_number(1, 1, 7123).unwrap();
        sheet.write_number(1, 2, 1.5).unwrap();
        sheet.write_boolean(1, 3, true).unwrap();
        let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        sheet.write_number_with_format(1, 4, 45657, &date).unwrap();
        sheet.write_string(3, 0, "after a blank row").unwrap();
        sheet.write_string(3, 2, "  spaced  ").unwrap();
        sheet
            .write_formula(
                4,
                0,
                rust_xlsxwriter::Formula::new("=\"a\"&\"b\"").set_result("ab"),
            )
            .unwrap();
        let other = book.add_worksheet().set_name("Other").unwrap();
        other.write_string(0, 0, "x").unwrap();
        book.save_to_buffer().unwrap()
    }

    #[test]
    fn an_xlsx_reads_as_the_text_its_cells_show_with_row_numbers_as_lines() {
        let (sheets, sheet, rows) = read_all(workbook(), None).unwrap();
        assert_eq!(sheets, ["Accounts", "Other"]);
        assert_eq!(sheet, "Accounts");
        assert_eq!(
            rows,
            [
                (1, strings(&["user_email", "exchange_username"])),
                (
                    2,
                    strings(&["a@example.com", "7123", "1.5", "TRUE", "2024-12-31"])
                ),
                (4, strings(&["after a blank row", "", "spaced"])),
                (5, strings(&["ab"])),
            ]
        );
    }

    #[test]
    fn another_sheet_is_read_by_its_name_and_a_missing_one_is_named() {
        let (_, sheet, rows) = read_all(workbook(), Some("Other")).unwrap();
        assert_eq!(
            (sheet.as_str(), rows),
            ("Other", vec![(1, strings(&["x"]))])
        );
        let err = read_all(workbook(), Some("Nope")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the workbook has no sheet called \"Nope\" (its sheets: Accounts, Other)"
        );
    }

    fn ods(content: &str) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file("mimetype", stored).unwrap();
        zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
            .unwrap();
        zip.start_file("content.xml", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(content.as_bytes()).unwrap();
        zip.finish().unwrap().into_inner()
    }

    const ODS_CONTENT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:spreadsheet><table:table table:name="First"><table:table-column/><table:table-row><table:table-cell office:value-type="string"><text:p>user_email</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>domain</text:p></table:table-cell></table:table-row><table:table-row><table:table-cell office:value-type="string"><office:annotation><text:p>a <text:s text:c="3"/>comment</text:p></office:annotation><text:p><text:s text:c="2"/>pw &amp; <text:span>more</text:span></text:p><text:p>second line</text:p></table:table-cell><table:table-cell office:value-type="float" office:value="42"><text:p>042</text:p></table:table-cell><table:table-cell office:value-type="date" office:date-value="2024-12-31"><text:p>31/12/24</text:p></table:table-cell><table:table-cell office:value-type="boolean" office:boolean-value="false"><text:p>FALSE</text:p></table:table-cell></table:table-row><table:table-row table:number-rows-repeated="2"><table:table-cell table:number-columns-repeated="2" office:value-type="string"><text:p>same</text:p></table:table-cell></table:table-row><table:table-row table:number-rows-repeated="1048570"><table:table-cell table:number-columns-repeated="1024"/></table:table-row></table:table><table:table table:name="Second"><table:table-row><table:table-cell table:number-columns-repeated="3"/><table:table-cell office:value-type="string"><text:p>d</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#;

    #[test]
    fn an_ods_reads_its_text_values_and_repeats() {
        let (sheets, sheet, rows) = read_all(ods(ODS_CONTENT), None).unwrap();
        assert_eq!(
            (sheets, sheet),
            (strings(&["First", "Second"]), "First".to_owned())
        );
        assert_eq!(
            rows,
            [
                (1, strings(&["user_email", "domain"])),
                (
                    2,
                    strings(&["pw & more\nsecond line", "42", "2024-12-31", "FALSE"])
                ),
                (3, strings(&["same", "same"])),
                (4, strings(&["same", "same"])),
            ]
        );
        let (_, _, rows) = read_all(ods(ODS_CONTENT), Some("Second")).unwrap();
        assert_eq!(rows, [(1, strings(&["", "", "", "d"]))]);
    }

    #[test]
    fn an_ods_keeps_the_spaces_it_spells_out() {
        let (_, _, rows) = read_all(ods(ODS_CONTENT), None).unwrap();
        let mut reader = open(Cursor::new(ods(ODS_CONTENT)), None).unwrap();
        let mut record = Record::default();
        reader.read(&mut record).unwrap();
        reader.read(&mut record).unwrap();
        assert_eq!(record.literal(0), "  pw & more\nsecond line");
        assert_eq!(rows.len(), 4);
    }

    #[test]
    fn a_row_past_column_xfd_or_a_cell_too_long_is_refused_with_its_row() {
        let wide = ODS_CONTENT.replace(
            r#"table:number-columns-repeated="2" office:value-type="string""#,
            r#"table:number-columns-repeated="20000" office:value-type="string""#,
        );
        let err = read_all(ods(&wide), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sheet \"First\", row 3: a cell beyond column XFD"
        );
        let long = ODS_CONTENT.replace("second line", &"x".repeat(MAX_CELL_CHARS));
        let err = read_all(ods(&long), None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("sheet \"First\", row 2: a cell holds more than 32767 characters"),
            "{err}"
        );
        let mut book = rust_xlsxwriter::Workbook::new();
        book.add_worksheet()
            .write_string(0, 0, "x".repeat(MAX_CELL_CHARS))
            .unwrap();
        assert!(
            read_all(book.save_to_buffer().unwrap(), None).is_ok(),
            "the longest cell Excel allows"
        );
    }

    #[test]
    fn columns_are_named_by_letters() {
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
        assert_eq!(column_name(MAX_COLUMNS - 1), "XFD");
    }
}
