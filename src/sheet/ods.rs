//! `.ods`: `content.xml` streamed, once to list the sheets and once to read the chosen one
//! row by row. Rows and cells repeated by `number-rows-repeated` and
//! `number-columns-repeated` (LibreOffice writes the empty rest of a sheet that way) cost
//! nothing when empty and are bounded by the sheet's size when not.

use std::io::{BufReader, Read, Seek};

use quick_xml::events::{BytesStart, Event};
use zip::ZipArchive;

use super::text::{CellText, number_text};
use super::zipped::{self, Located, Part, SHEET_PART};
use super::{MAX_COLUMNS, MAX_ROWS, SheetError, column_name};

const CONTENT: &str = "content.xml";

/// An attribute's value by its qualified name (`table:name`).
fn attr(element: &BytesStart<'_>, name: &str) -> Result<Option<String>, SheetError> {
    match element
        .try_get_attribute(name)
        .map_err(|e| SheetError::Damaged(e.to_string()))?
    {
        Some(attribute) => Ok(Some(
            attribute
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| SheetError::Damaged(e.to_string()))?
                .into_owned(),
        )),
        None => Ok(None),
    }
}

fn repeat(element: &BytesStart<'_>, name: &str) -> Result<u64, SheetError> {
    Ok(attr(element, name)?
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1))
}

/// Opens the sheet `wanted` (or the first): every sheet's name, the one chosen, its rows.
pub fn open<R: Read + Seek>(
    mut archive: ZipArchive<R>,
    wanted: Option<&str>,
) -> Result<(Vec<String>, String, Rows<R>), SheetError> {
    let located = zipped::locate(&mut archive, CONTENT)?;
    let file = archive.into_inner();
    // First pass: the names, skipping everything else.
    let mut xml = Part::open(file, located, CONTENT, SHEET_PART)?.xml();
    let mut names = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf)? {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "table:table" => {
                names.push(attr(&e, "table:name")?.unwrap_or_default());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let file = xml.into_inner().into_inner().into_inner();
    let index = match wanted {
        None if names.is_empty() => return Err(SheetError::NoSheets),
        None => 0,
        Some(name) => {
            names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| SheetError::NoSuchSheet {
                    name: name.to_owned(),
                    sheets: names.clone(),
                })?
        }
    };
    let chosen = names[index].clone();
    let rows = Rows::open(file, located, index)?;
    Ok((names, chosen, rows))
}

/// One sheet's rows, streamed.
pub struct Rows<R: Read> {
    xml: quick_xml::Reader<BufReader<Part<R>>>,
    buf: Vec<u8>,
    state: State,
}

#[derive(Default)]
struct State {
    /// Which `table:table` to read, and how many have started.
    wanted: usize,
    tables: usize,
    /// Nesting of tables (a table inside a cell is part of that cell).
    depth: u32,
    in_sheet: bool,
    cells: Vec<String>,
    width: usize,
    /// The last row number given out or passed over.
    row: u64,
    /// How many times the current row repeats, and how many of those are still to give.
    repeats: u64,
    pending: u64,
    column: usize,
    cell_repeats: u64,
    value: Option<String>,
    text: CellText,
    in_cell: bool,
    paragraphs: u32,
    in_paragraph: bool,
    /// Inside an annotation (a comment), whose text is not the cell's.
    skip: u32,
    done: bool,
}

impl<R: Read + Seek> Rows<R> {
    fn open(file: R, located: Located, wanted: usize) -> Result<Self, SheetError> {
        Ok(Rows {
            xml: Part::open(file, located, CONTENT, SHEET_PART)?.xml(),
            buf: Vec::new(),
            state: State {
                wanted,
                ..State::default()
            },
        })
    }
}

impl State {
    fn error(&self, sheet: &str, reason: impl Into<String>) -> SheetError {
        SheetError::Cell {
            sheet: sheet.to_owned(),
            row: self.row + 1,
            reason: reason.into(),
        }
    }

    fn start_row(&mut self, e: &BytesStart<'_>) -> Result<(), SheetError> {
        for cell in &mut self.cells[..self.width] {
            cell.clear();
        }
        self.width = 0;
        self.column = 0;
        self.repeats = repeat(e, "table:number-rows-repeated")?;
        Ok(())
    }

    fn start_cell(&mut self, e: &BytesStart<'_>) -> Result<(), SheetError> {
        self.cell_repeats = repeat(e, "table:number-columns-repeated")?;
        self.text.clear();
        self.paragraphs = 0;
        self.value = match attr(e, "office:value-type")?.as_deref() {
            Some("float") => attr(e, "office:value")?.and_then(|v| number_text(&v)),
            Some("date") => attr(e, "office:date-value")?
                .map(|d| d.strip_suffix("T00:00:00").map(str::to_owned).unwrap_or(d)),
            Some("boolean") => attr(e, "office:boolean-value")?.map(|b| match b.as_str() {
                "true" => "TRUE".to_owned(),
                _ => "FALSE".to_owned(),
            }),
            _ => None,
        };
        Ok(())
    }

    fn finish_cell(&mut self, sheet: &str) -> Result<(), SheetError> {
        let value = self.value.take();
        let value = value.as_deref().unwrap_or(self.text.as_str());
        let end = (self.column as u64).saturating_add(self.cell_repeats);
        if !value.is_empty() {
            if end > MAX_COLUMNS as u64 {
                return Err(self.error(
                    sheet,
                    format!("a cell beyond column {}", column_name(MAX_COLUMNS - 1)),
                ));
            }
            // Bounded by MAX_COLUMNS just above.
            let end = usize::try_from(end).unwrap_or(MAX_COLUMNS);
            if self.cells.len() < end {
                self.cells.resize_with(end, String::new);
            }
            for cell in &mut self.cells[self.column..end] {
                cell.push_str(value);
            }
            self.width = end;
        }
        // Empty cells repeated to the end of the sheet only move the column.
        self.column = usize::try_from(end.min(MAX_COLUMNS as u64 + 1)).unwrap_or(MAX_COLUMNS);
        self.in_cell = false;
        Ok(())
    }

    fn push(&mut self, sheet: &str, text: &str) -> Result<(), SheetError> {
        self.text
            .push(text)
            .map_err(|reason| self.error(sheet, reason))
    }

    /// A row just ended: the number it has, or passes over when empty.
    fn finish_row(&mut self, sheet: &str) -> Result<bool, SheetError> {
        if self.row.saturating_add(self.repeats) > MAX_ROWS {
            if self.width == 0 {
                // The empty rest of the sheet, as LibreOffice writes it.
                self.row = MAX_ROWS;
                return Ok(false);
            }
            return Err(self.error(sheet, format!("a row beyond row {MAX_ROWS}")));
        }
        if self.width == 0 {
            self.row += self.repeats;
            return Ok(false);
        }
        self.pending = self.repeats;
        Ok(true)
    }
}

impl<R: Read> Rows<R> {
    /// The next row: its number and its cells; `None` after the last.
    pub fn next_row(&mut self, sheet: &str) -> Result<Option<(u64, &[String])>, SheetError> {
        let state = &mut self.state;
        if state.pending > 0 {
            state.pending -= 1;
            state.row += 1;
            return Ok(Some((state.row, &state.cells[..state.width])));
        }
        if state.done {
            return Ok(None);
        }
        loop {
            self.buf.clear();
            let event = self.xml.read_event_into(&mut self.buf)?;
            if !state.in_sheet {
                match event {
                    Event::Start(e) if e.name().as_ref() == "table:table" => {
                        state.tables += 1;
                        state.in_sheet = state.tables == state.wanted + 1;
                    }
                    Event::Eof => {
                        state.done = true;
                        return Ok(None);
                    }
                    _ => {}
                }
                continue;
            }
            match event {
                Event::Start(e) if state.skip > 0 && e.name().as_ref() == "office:annotation" => {
                    state.skip += 1;
                }
                Event::End(e) if state.skip > 0 && e.name().as_ref() == "office:annotation" => {
                    state.skip -= 1;
                }
                Event::Start(_) | Event::End(_) | Event::Empty(_) if state.skip > 0 => {}
                Event::Start(e) => match e.name().as_ref() {
                    "table:table" => state.depth += 1,
                    _ if state.depth > 0 => {}
                    "table:table-row" => state.start_row(&e)?,
                    "table:table-cell" | "table:covered-table-cell" => {
                        state.start_cell(&e)?;
                        state.in_cell = true;
                    }
                    "office:annotation" => state.skip = 1,
                    "text:p" | "text:h" if state.in_cell => {
                        if state.paragraphs > 0 {
                            state.push(sheet, "\n")?;
                        }
                        state.paragraphs += 1;
                        state.in_paragraph = true;
                    }
                    _ => {}
                },
                Event::Empty(e) => match e.name().as_ref() {
                    _ if state.depth > 0 => {}
                    "table:table-row" => {
                        state.start_row(&e)?;
                        if state.finish_row(sheet)? {
                            return Ok(Some(state.give()));
                        }
                    }
                    "table:table-cell" | "table:covered-table-cell" => {
                        state.start_cell(&e)?;
                        state.finish_cell(sheet)?;
                    }
                    "text:p" | "text:h" if state.in_cell => {
                        if state.paragraphs > 0 {
                            state.push(sheet, "\n")?;
                        }
                        state.paragraphs += 1;
                    }
                    "text:s" if state.in_cell => {
                        let count = attr(&e, "text:c")?
                            .and_then(|c| c.parse::<usize>().ok())
                            .unwrap_or(1);
                        state
                            .text
                            .repeat(' ', count)
                            .map_err(|reason| state.error(sheet, reason))?;
                    }
                    "text:ta" if state.in_cell => state.push(sheet, "\t")?,
                    "text:line-break" if state.in_cell => state.push(sheet, "\n")?,
                    _ => {}
                },
                Event::End(e) => match e.name().as_ref() {
                    "table:table" if state.depth > 0 => state.depth -= 1,
                    "table:table" => {
                        state.done = true;
                        return Ok(None);
                    }
                    _ if state.depth > 0 => {}
                    "table:table-cell" | "table:covered-table-cell" => state.finish_cell(sheet)?,
                    "text:p" | "text:h" => state.in_paragraph = false,
                    "table:table-row" if state.finish_row(sheet)? => {
                        return Ok(Some(state.give()));
                    }
                    _ => {}
                },
                Event::Text(t) if state.in_paragraph && state.depth == 0 => {
                    state.push(sheet, &t.xml10_content())?;
                }
                Event::GeneralRef(r) if state.in_paragraph && state.depth == 0 => {
                    state.text.push_ref(&r)?;
                }
                Event::Eof => {
                    state.done = true;
                    return Ok(None);
                }
                _ => {}
            }
        }
    }
}

impl State {
    /// Gives out the first of the pending repeats of the row just read.
    fn give(&mut self) -> (u64, &[String]) {
        self.pending -= 1;
        self.row += 1;
        (self.row, &self.cells[..self.width])
    }
}
