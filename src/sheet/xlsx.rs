//! `.xlsx`: the workbook's list of sheets, its shared strings and cell styles read first, then
//! one sheet's XML streamed row by row.

use std::collections::HashMap;
use std::io::{BufReader, Read, Seek};

use quick_xml::events::{BytesStart, Event};
use zip::ZipArchive;

use super::text::{CellText, date_format, excel_date, number_text, unescape_excel};
use super::zipped::{self, Part, SHEET_PART};
use super::{MAX_COLUMNS, MAX_ROWS, SheetError, column_name};

/// The most the shared-strings part may unpack to.
const SHARED_PART: u64 = 1024 * 1024 * 1024;
/// The most text the shared strings may hold in all: they are kept in memory while the sheet
/// is read, since any cell may refer to any of them.
const SHARED_TEXT: usize = 256 * 1024 * 1024;
/// The most shared strings a workbook may have.
const SHARED_COUNT: usize = 1 << 24;

/// An attribute's value by its local name (`r:id` is `id`).
fn attr(element: &BytesStart<'_>, name: &str) -> Result<Option<String>, SheetError> {
    for attribute in element.attributes() {
        let attribute = attribute.map_err(|e| SheetError::Damaged(e.to_string()))?;
        if attribute.key.local_name().as_ref() == name {
            let value = attribute
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| SheetError::Damaged(e.to_string()))?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

/// Every element of a small XML part named `name`, with the attributes asked for.
fn elements(
    xml: &[u8],
    name: &str,
    attrs: &[&str],
) -> Result<Vec<Vec<Option<String>>>, SheetError> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut found = Vec::new();
    loop {
        buf.clear();
        match reader.read_event_into(&mut buf)? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == name => {
                found.push(
                    attrs
                        .iter()
                        .map(|a| attr(&e, a))
                        .collect::<Result<Vec<_>, _>>()?,
                );
            }
            Event::Eof => return Ok(found),
            _ => {}
        }
    }
}

/// A part's relationships: id → (type, path of the target within the archive).
fn relationships(xml: &[u8], base: &str) -> Result<HashMap<String, (String, String)>, SheetError> {
    let mut map = HashMap::new();
    for found in elements(xml, "Relationship", &["Id", "Type", "Target"])? {
        if let [Some(id), Some(kind), Some(target)] = &found[..] {
            map.insert(id.clone(), (kind.clone(), resolve(base, target)));
        }
    }
    Ok(map)
}

/// `target` relative to the folder `base` (ending in `/`, or empty), `..` resolved; a
/// target starting with `/` is from the archive's root.
fn resolve(base: &str, target: &str) -> String {
    let joined = match target.strip_prefix('/') {
        Some(absolute) => absolute.to_owned(),
        None => format!("{base}{target}"),
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            ".." => {
                parts.pop();
            }
            "." | "" => {}
            part => parts.push(part),
        }
    }
    parts.join("/")
}

fn folder(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..=i])
}

/// The shared strings, one buffer of text and where each ends.
#[derive(Default)]
struct SharedStrings {
    text: String,
    ends: Vec<usize>,
}

impl SharedStrings {
    fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)?;
        let start = match index {
            0 => 0,
            i => self.ends[i - 1],
        };
        self.text.get(start..end)
    }

    fn read<R: Read>(xml: &mut quick_xml::Reader<BufReader<Part<R>>>) -> Result<Self, SheetError> {
        let mut shared = SharedStrings::default();
        let mut buf = Vec::new();
        let mut text = CellText::default();
        let (mut collect, mut phonetic) = (false, 0u32);
        loop {
            buf.clear();
            match xml.read_event_into(&mut buf)? {
                Event::Start(e) => match e.local_name().as_ref() {
                    "si" => text.clear(),
                    "t" if phonetic == 0 => collect = true,
                    "rPh" => phonetic += 1,
                    _ => {}
                },
                Event::End(e) => match e.local_name().as_ref() {
                    "t" => collect = false,
                    "rPh" => phonetic = phonetic.saturating_sub(1),
                    "si" => {
                        if shared.ends.len() == SHARED_COUNT {
                            return Err(SheetError::TooLarge {
                                what: format!(
                                    "the shared strings table (over {SHARED_COUNT} strings)"
                                ),
                                limit: SHARED_PART,
                            });
                        }
                        shared.text.push_str(text.as_str());
                        if shared.text.len() > SHARED_TEXT {
                            return Err(SheetError::TooLarge {
                                what: "the text of the shared strings table".to_owned(),
                                limit: SHARED_TEXT as u64,
                            });
                        }
                        shared.ends.push(shared.text.len());
                    }
                    _ => {}
                },
                Event::Empty(e) if e.local_name().as_ref() == "si" => {
                    shared.ends.push(shared.text.len());
                }
                Event::Text(t) if collect => text.push(&t.xml10_content()).map_err(|reason| {
                    SheetError::Damaged(format!("shared string {}: {reason}", shared.ends.len()))
                })?,
                Event::GeneralRef(r) if collect => text.push_ref(&r)?,
                Event::CData(c) if collect => text.push(&c).map_err(SheetError::Damaged)?,
                Event::Eof => return Ok(shared),
                _ => {}
            }
        }
    }
}

/// For each cell style (`s`), whether numbers in it show a date, a time: `(date, time)`.
fn styles(xml: &[u8]) -> Result<Vec<(bool, bool)>, SheetError> {
    let codes: HashMap<u32, String> = elements(xml, "numFmt", &["numFmtId", "formatCode"])?
        .into_iter()
        .filter_map(|found| match &found[..] {
            [Some(id), Some(code)] => Some((id.parse().ok()?, code.clone())),
            _ => None,
        })
        .collect();
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut in_cell_xfs = false;
    let mut styles = Vec::new();
    loop {
        buf.clear();
        match reader.read_event_into(&mut buf)? {
            Event::Start(e) if e.local_name().as_ref() == "cellXfs" => in_cell_xfs = true,
            Event::End(e) if e.local_name().as_ref() == "cellXfs" => in_cell_xfs = false,
            Event::Start(e) | Event::Empty(e) if in_cell_xfs && e.local_name().as_ref() == "xf" => {
                let id: u32 = attr(&e, "numFmtId")?
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                styles.push(date_format(id, codes.get(&id).map(String::as_str)));
            }
            Event::Eof => return Ok(styles),
            _ => {}
        }
    }
}

/// Opens the workbook's sheet `wanted` (or its first): every sheet's name, the one chosen,
/// and its rows.
pub fn open<R: Read + Seek>(
    mut archive: ZipArchive<R>,
    wanted: Option<&str>,
) -> Result<(Vec<String>, String, Rows<R>), SheetError> {
    let workbook = match zipped::read_part(&mut archive, "_rels/.rels") {
        Ok(rels) => relationships(&rels, "")?
            .into_values()
            .find(|(kind, _)| kind.ends_with("/officeDocument"))
            .map_or_else(|| "xl/workbook.xml".to_owned(), |(_, target)| target),
        Err(_) => "xl/workbook.xml".to_owned(),
    };
    let xml = zipped::read_part(&mut archive, &workbook)?;
    let date1904 = elements(&xml, "workbookPr", &["date1904"])?
        .iter()
        .any(|found| matches!(found[0].as_deref(), Some("1" | "true")));
    let listed = elements(&xml, "sheet", &["name", "id"])?;
    let rels_path = format!(
        "{}_rels/{}.rels",
        folder(&workbook),
        &workbook[folder(&workbook).len()..]
    );
    let rels = relationships(
        &zipped::read_part(&mut archive, &rels_path)?,
        folder(&workbook),
    )?;
    let target = |suffix: &str| {
        rels.values()
            .find(|(kind, _)| kind.ends_with(suffix))
            .map(|(_, path)| path.clone())
    };
    let worksheets: Vec<(String, String)> = listed
        .into_iter()
        .filter_map(|found| match &found[..] {
            [Some(name), Some(id)] => match rels.get(id) {
                Some((kind, path)) if kind.ends_with("/worksheet") => {
                    Some((name.clone(), path.clone()))
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    let names: Vec<String> = worksheets.iter().map(|(name, _)| name.clone()).collect();
    let (chosen, path) = match wanted {
        None => worksheets.first().cloned().ok_or(SheetError::NoSheets)?,
        Some(name) => worksheets
            .iter()
            .find(|(n, _)| n == name)
            .cloned()
            .ok_or_else(|| SheetError::NoSuchSheet {
                name: name.to_owned(),
                sheets: names.clone(),
            })?,
    };
    let styles = match target("/styles") {
        Some(path) => styles(&zipped::read_part(&mut archive, &path)?)?,
        None => Vec::new(),
    };
    let shared_located = target("/sharedStrings")
        .map(|path| zipped::locate(&mut archive, &path).map(|located| (path, located)))
        .transpose()?;
    let sheet_located = zipped::locate(&mut archive, &path)?;
    let mut file = archive.into_inner();
    let shared = match shared_located {
        Some((path, located)) => {
            let mut xml = Part::open(file, located, &path, SHARED_PART)?.xml();
            let shared = SharedStrings::read(&mut xml)?;
            file = xml.into_inner().into_inner().into_inner();
            shared
        }
        None => SharedStrings::default(),
    };
    let rows = Rows {
        xml: Part::open(file, sheet_located, &path, SHEET_PART)?.xml(),
        buf: Vec::new(),
        state: State {
            shared,
            styles,
            date1904,
            ..State::default()
        },
    };
    Ok((names, chosen, rows))
}

/// One sheet's rows, streamed.
pub struct Rows<R: Read> {
    xml: quick_xml::Reader<BufReader<Part<R>>>,
    buf: Vec<u8>,
    state: State,
}

/// How a cell's value is stored (its `t` attribute).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Kind {
    #[default]
    Number,
    Shared,
    Inline,
    Formula,
    Bool,
    Error,
    Date,
}

#[derive(Default)]
struct State {
    shared: SharedStrings,
    styles: Vec<(bool, bool)>,
    date1904: bool,
    cells: Vec<String>,
    width: usize,
    row: u64,
    column: usize,
    kind: Kind,
    style: usize,
    text: CellText,
    collect: bool,
    inline: bool,
    phonetic: u32,
    done: bool,
}

impl State {
    fn error(&self, sheet: &str, reason: impl Into<String>) -> SheetError {
        SheetError::Cell {
            sheet: sheet.to_owned(),
            row: self.row,
            reason: reason.into(),
        }
    }

    fn start_row(&mut self, e: &BytesStart<'_>, sheet: &str) -> Result<(), SheetError> {
        for cell in &mut self.cells[..self.width] {
            cell.clear();
        }
        self.width = 0;
        self.column = 0;
        self.row = match attr(e, "r")? {
            Some(r) => r
                .parse()
                .map_err(|_| self.error(sheet, format!("row number {r:?} is not a number")))?,
            None => self.row + 1,
        };
        if self.row == 0 || self.row > MAX_ROWS {
            return Err(self.error(sheet, format!("a row beyond row {MAX_ROWS}")));
        }
        Ok(())
    }

    fn start_cell(&mut self, e: &BytesStart<'_>, sheet: &str) -> Result<(), SheetError> {
        let column = match attr(e, "r")? {
            Some(reference) => {
                let letters = reference.bytes().take_while(u8::is_ascii_alphabetic);
                let mut index = 0usize;
                let mut any = false;
                for letter in letters {
                    any = true;
                    index = index
                        .saturating_mul(26)
                        .saturating_add(usize::from(letter.to_ascii_uppercase() - b'A') + 1);
                }
                if any { index - 1 } else { self.column }
            }
            None => self.column,
        };
        if column >= MAX_COLUMNS {
            return Err(self.error(
                sheet,
                format!("a cell beyond column {}", column_name(MAX_COLUMNS - 1)),
            ));
        }
        self.column = column;
        self.kind = match attr(e, "t")?.as_deref() {
            Some("s") => Kind::Shared,
            Some("inlineStr") => Kind::Inline,
            Some("str") => Kind::Formula,
            Some("b") => Kind::Bool,
            Some("e") => Kind::Error,
            Some("d") => Kind::Date,
            _ => Kind::Number,
        };
        self.style = attr(e, "s")?.and_then(|s| s.parse().ok()).unwrap_or(0);
        self.text.clear();
        Ok(())
    }

    fn finish_cell(&mut self, sheet: &str) -> Result<(), SheetError> {
        let raw = self.text.as_str();
        let value: std::borrow::Cow<'_, str> = match self.kind {
            _ if raw.is_empty() => "".into(),
            Kind::Shared => {
                let string = raw
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.shared.get(i))
                    .ok_or_else(|| {
                        self.error(
                            sheet,
                            format!(
                                "cell {}{}: refers to shared string {raw}, which the workbook does not have",
                                column_name(self.column),
                                self.row
                            ),
                        )
                    })?;
                unescape_excel(string)
            }
            Kind::Inline | Kind::Formula => unescape_excel(raw),
            Kind::Bool => match raw.trim() {
                "1" => "TRUE".into(),
                "0" => "FALSE".into(),
                other => other.into(),
            },
            Kind::Error | Kind::Date => raw.into(),
            Kind::Number => {
                let (date, time) = self.styles.get(self.style).copied().unwrap_or_default();
                let shown = if date || time {
                    raw.trim()
                        .parse()
                        .ok()
                        .and_then(|serial| excel_date(serial, self.date1904, date, time))
                } else {
                    None
                };
                match shown.or_else(|| number_text(raw)) {
                    Some(shown) => shown.into(),
                    None => raw.into(),
                }
            }
        };
        if !value.is_empty() {
            if self.cells.len() <= self.column {
                self.cells.resize_with(self.column + 1, String::new);
            }
            self.cells[self.column].push_str(&value);
            self.width = self.width.max(self.column + 1);
        }
        self.column += 1;
        Ok(())
    }
}

impl<R: Read> Rows<R> {
    /// The next row: its number and its cells (empty cells included up to the last one that
    /// is not); `None` after the last.
    pub fn next_row(&mut self, sheet: &str) -> Result<Option<(u64, &[String])>, SheetError> {
        let state = &mut self.state;
        if state.done {
            return Ok(None);
        }
        loop {
            self.buf.clear();
            match self.xml.read_event_into(&mut self.buf)? {
                Event::Start(e) => match e.local_name().as_ref() {
                    "row" => state.start_row(&e, sheet)?,
                    "c" => state.start_cell(&e, sheet)?,
                    "v" => state.collect = true,
                    "is" => state.inline = true,
                    "t" if state.inline && state.phonetic == 0 => state.collect = true,
                    "rPh" => state.phonetic += 1,
                    _ => {}
                },
                Event::Empty(e) => match e.local_name().as_ref() {
                    "row" => state.start_row(&e, sheet)?,
                    "c" => {
                        state.start_cell(&e, sheet)?;
                        state.finish_cell(sheet)?;
                    }
                    _ => {}
                },
                Event::End(e) => match e.local_name().as_ref() {
                    "v" | "t" => state.collect = false,
                    "is" => state.inline = false,
                    "rPh" => state.phonetic = state.phonetic.saturating_sub(1),
                    "c" => state.finish_cell(sheet)?,
                    "row" => return Ok(Some((state.row, &state.cells[..state.width]))),
                    "sheetData" => {
                        state.done = true;
                        return Ok(None);
                    }
                    _ => {}
                },
                Event::Text(t) if state.collect => {
                    let text = t.xml10_content();
                    if let Err(reason) = state.text.push(&text) {
                        return Err(state.error(sheet, reason));
                    }
                }
                Event::GeneralRef(r) if state.collect => state.text.push_ref(&r)?,
                Event::CData(c) if state.collect => {
                    if let Err(reason) = state.text.push(&c) {
                        return Err(state.error(sheet, reason));
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_against_their_folder() {
        assert_eq!(
            resolve("xl/", "worksheets/sheet1.xml"),
            "xl/worksheets/sheet1.xml"
        );
        assert_eq!(
            resolve("xl/", "/xl/sharedStrings.xml"),
            "xl/sharedStrings.xml"
        );
        assert_eq!(resolve("xl/worksheets/", "../styles.xml"), "xl/styles.xml");
    }
}
