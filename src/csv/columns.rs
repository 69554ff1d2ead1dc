//! Columns: which cell holds which field, from a header row (by name, label or alias, in any
//! order) or by position, or as the admin maps them: a field read from a column named by its
//! header, or from a template over several (`{username}@{domain}`).

use std::borrow::Cow;

use super::records::Record;

/// One field a file may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Canonical name, as written in exports and error reports (`user_email`).
    pub name: &'static str,
    /// The label admins know from their MDM console (`User email`).
    pub label: &'static str,
    /// Other header spellings seen in the wild.
    pub aliases: &'static [&'static str],
    /// Whether a header must have this column.
    pub required: bool,
}

/// Reduces a header cell to what matching compares: letters and digits, lower case. So
/// `User E-mail`, `user_email` and `USEREMAIL` are one name.
pub fn header_key(cell: &str) -> String {
    cell.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

impl Column {
    fn matches(&self, key: &str) -> bool {
        header_key(self.name) == key
            || header_key(self.label) == key
            || self.aliases.iter().any(|a| header_key(a) == key)
    }
}

/// Where the admin says a field comes from, as written: a column by its header, or a
/// template whose `{header}` parts are columns and whose other text is kept as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSource {
    /// The column with this header.
    Column(String),
    /// Text and columns, in order.
    Template(Vec<TemplatePart>),
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// Text as it is.
    Text(String),
    /// The cell of the column with this header.
    Column(String),
}

impl FieldSource {
    /// Reads a source as an admin writes it: `E-mail` (a header) or `{username}@{domain}`
    /// (a template; `{{` and `}}` are literal braces).
    pub fn parse(text: &str) -> Result<FieldSource, String> {
        if !text.contains(['{', '}']) {
            let header = text.trim();
            if header.is_empty() {
                return Err("names no column".to_owned());
            }
            return Ok(FieldSource::Column(header.to_owned()));
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => {
                                return Err(format!("{text:?}: a {{ is not closed by }}"));
                            }
                            Some(c) => name.push(c),
                        }
                    }
                    if name.trim().is_empty() {
                        return Err(format!("{text:?}: {{}} names no column"));
                    }
                    if !literal.is_empty() {
                        parts.push(TemplatePart::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(TemplatePart::Column(name.trim().to_owned()));
                }
                '}' => {
                    return Err(format!(
                        "{text:?}: a }} without its {{ (write }}}} for a brace)"
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(TemplatePart::Text(literal));
        }
        Ok(FieldSource::Template(parts))
    }
}

/// A field's source found in one file's header.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    Cell(usize),
    Template(Vec<Piece>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Cell(usize),
}

/// Where each column of a schema is found in the records of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    positions: Vec<Option<Found>>,
    /// For each field the admin mapped, the source as written, for messages.
    mapped: Vec<Option<String>>,
    /// Header cells that matched no column (reported once, then ignored).
    pub ignored: Vec<String>,
    /// The number of cells a record should have.
    pub width: usize,
    /// Whether the first record was a header.
    pub header: bool,
}

/// A header row that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A required column is not in the header.
    #[error("line {line}: the header has no {} column{} (expected {})",
        .missing.join(", "), if .missing.len() > 1 { "s" } else { "" }, .expected)]
    Missing {
        /// Line of the header.
        line: u64,
        /// Canonical names of the missing columns.
        missing: Vec<&'static str>,
        /// Every column of the schema, for the message.
        expected: String,
    },
    /// A field is mapped to a column the header does not have.
    #[error(
        "line {line}: {field} is mapped to {mapped_to:?}, but the header has no column {column:?} (its columns: {columns})"
    )]
    NoColumn {
        /// Line of the header.
        line: u64,
        /// The field.
        field: &'static str,
        /// The source as the admin wrote it.
        mapped_to: String,
        /// The header that is not there.
        column: String,
        /// The header's columns, for the message.
        columns: String,
    },
    /// Two header cells name the same column.
    #[error("line {line}: columns {first:?} and {second:?} both mean {name}")]
    Repeated {
        /// Line of the header.
        line: u64,
        /// Canonical name both map to.
        name: &'static str,
        /// The first header cell.
        first: String,
        /// The second header cell.
        second: String,
    },
}

impl ColumnMap {
    /// Columns in schema order, one cell each.
    pub fn positional(schema: &[Column]) -> ColumnMap {
        ColumnMap {
            positions: (0..schema.len()).map(|i| Some(Found::Cell(i))).collect(),
            mapped: vec![None; schema.len()],
            ignored: Vec::new(),
            width: schema.len(),
            header: false,
        }
    }

    /// Maps a header row onto `schema`.
    pub fn from_header(schema: &[Column], header: &Record) -> Result<ColumnMap, HeaderError> {
        ColumnMap::from_header_mapped(schema, header, &[], true)
    }

    /// Maps a header row onto `schema`, the fields in `mapped` (by their index in `schema`)
    /// from the sources the admin gave, the others by their header names as
    /// [`ColumnMap::from_header`] does. A source naming a column the header does not have is
    /// an error, and so, when `require`, is a required field found nowhere.
    pub fn from_header_mapped(
        schema: &[Column],
        header: &Record,
        mapped: &[(usize, String, FieldSource)],
        require: bool,
    ) -> Result<ColumnMap, HeaderError> {
        let mut positions: Vec<Option<Found>> = vec![None; schema.len()];
        let mut sources: Vec<Option<String>> = vec![None; schema.len()];
        let cells: Vec<&str> = header.cells().collect();
        let mut used = vec![false; cells.len()];
        for (field, written, source) in mapped {
            let column = |name: &str| {
                find_column(&cells, name).ok_or_else(|| HeaderError::NoColumn {
                    line: header.line(),
                    field: schema[*field].name,
                    mapped_to: written.clone(),
                    column: name.to_owned(),
                    columns: cells
                        .iter()
                        .filter(|c| !c.is_empty())
                        .map(|c| crate::model::excerpt(c).into_owned())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            };
            let found = match source {
                FieldSource::Column(name) => Found::Cell(column(name)?),
                FieldSource::Template(parts) => Found::Template(
                    parts
                        .iter()
                        .map(|part| match part {
                            TemplatePart::Text(text) => Ok(Piece::Text(text.clone())),
                            TemplatePart::Column(name) => column(name).map(Piece::Cell),
                        })
                        .collect::<Result<_, _>>()?,
                ),
            };
            match &found {
                Found::Cell(i) => used[*i] = true,
                Found::Template(pieces) => {
                    for piece in pieces {
                        if let Piece::Cell(i) = piece {
                            used[*i] = true;
                        }
                    }
                }
            }
            positions[*field] = Some(found);
            sources[*field] = Some(written.clone());
        }
        let mut ignored = Vec::new();
        for (index, cell) in cells.iter().copied().enumerate() {
            let key = header_key(cell);
            if key.is_empty() {
                continue;
            }
            match schema.iter().position(|c| c.matches(&key)) {
                // A field the admin mapped is read from where they said.
                Some(field) if sources[field].is_some() => {
                    if !used[index] {
                        ignored.push(crate::model::excerpt(cell).into_owned());
                    }
                }
                Some(field) => {
                    if let Some(Found::Cell(first)) = positions[field] {
                        return Err(HeaderError::Repeated {
                            line: header.line(),
                            name: schema[field].name,
                            first: header.cell(first).to_owned(),
                            second: cell.to_owned(),
                        });
                    }
                    positions[field] = Some(Found::Cell(index));
                }
                None if used[index] => {}
                None => ignored.push(crate::model::excerpt(cell).into_owned()),
            }
        }
        let missing: Vec<&'static str> = schema
            .iter()
            .zip(&positions)
            .filter(|(c, p)| c.required && p.is_none())
            .map(|(c, _)| c.name)
            .collect();
        if require && !missing.is_empty() {
            return Err(HeaderError::Missing {
                line: header.line(),
                missing,
                expected: schema.iter().map(|c| c.name).collect::<Vec<_>>().join(", "),
            });
        }
        Ok(ColumnMap {
            positions,
            mapped: sources,
            ignored,
            width: header.width(),
            header: true,
        })
    }

    /// Whether `record` looks like a header for `schema`: one of its cells names a column.
    pub fn is_header(schema: &[Column], record: &Record) -> bool {
        record.cells().any(|cell| {
            let key = header_key(cell);
            !key.is_empty() && schema.iter().any(|c| c.matches(&key))
        })
    }

    /// The value of the schema's `field`-th column in `record`: its cell, or its template
    /// filled in; `""` when absent.
    pub fn get<'r>(&self, record: &'r Record, field: usize) -> Cow<'r, str> {
        self.value(record, field, Record::cell)
    }

    /// As [`ColumnMap::get`], from cells exactly as read (see [`Record::literal`]).
    pub fn get_literal<'r>(&self, record: &'r Record, field: usize) -> Cow<'r, str> {
        self.value(record, field, Record::literal)
    }

    fn value<'r>(
        &self,
        record: &'r Record,
        field: usize,
        cell: fn(&'r Record, usize) -> &'r str,
    ) -> Cow<'r, str> {
        match &self.positions[field] {
            None => Cow::Borrowed(""),
            Some(Found::Cell(i)) => Cow::Borrowed(cell(record, *i)),
            Some(Found::Template(pieces)) => {
                // A template over cells that are all blank is blank, not its bare text.
                let cells = pieces.iter().filter_map(|p| match p {
                    Piece::Cell(i) => Some(cell(record, *i)),
                    Piece::Text(_) => None,
                });
                if cells.clone().count() > 0 && cells.clone().all(|c| c.trim().is_empty()) {
                    return Cow::Borrowed("");
                }
                let mut value = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(text) => value.push_str(text),
                        Piece::Cell(i) => value.push_str(cell(record, *i)),
                    }
                }
                Cow::Owned(value)
            }
        }
    }

    /// The source the admin mapped the schema's `field`-th column to, as written, if they
    /// mapped it.
    pub fn mapped(&self, field: usize) -> Option<&str> {
        self.mapped.get(field)?.as_deref()
    }

    /// Where each field is read from, for showing: the header of its cell, its template as
    /// written, or `None` when the file does not have it.
    pub fn sources(&self, header: &Record) -> Vec<Option<String>> {
        self.positions
            .iter()
            .zip(&self.mapped)
            .map(|(found, mapped)| match (found, mapped) {
                (_, Some(written)) => Some(written.clone()),
                (Some(Found::Cell(i)), None) if self.header => Some(header.cell(*i).to_owned()),
                (Some(Found::Cell(i)), None) => Some(format!("column {}", i + 1)),
                (Some(Found::Template(_)), None) | (None, _) => None,
            })
            .collect()
    }

    /// The fewest cells a record needs to reach every required column.
    pub fn required_width(&self, schema: &[Column]) -> usize {
        schema
            .iter()
            .zip(&self.positions)
            .filter(|(c, _)| c.required)
            .filter_map(|(_, p)| match p {
                Some(Found::Cell(i)) => Some(i + 1),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// The canonical column name each cell position maps to (`None`: ignored).
    pub fn names(&self, schema: &[Column]) -> Vec<Option<&'static str>> {
        let mut names = vec![None; self.width];
        let mut name = |i: usize, column: &'static str, first_only: bool| {
            if i >= names.len() {
                names.resize(i + 1, None);
            }
            if !first_only || names[i].is_none() {
                names[i] = Some(column);
            }
        };
        for (column, position) in schema.iter().zip(&self.positions) {
            match position {
                Some(Found::Cell(i)) => name(*i, column.name, false),
                // A cell that goes into a template is named after its first field.
                Some(Found::Template(pieces)) => {
                    for piece in pieces {
                        if let Piece::Cell(i) = piece {
                            name(*i, column.name, true);
                        }
                    }
                }
                None => {}
            }
        }
        names
    }

    /// Whether the file has the schema's `field`-th column at all.
    pub fn has(&self, field: usize) -> bool {
        self.positions[field].is_some()
    }
}

/// The position of the header cell called `name`: written exactly so, else the only one that
/// matches ignoring case, spaces and punctuation.
fn find_column(cells: &[&str], name: &str) -> Option<usize> {
    if let Some(i) = cells.iter().position(|c| *c == name) {
        return Some(i);
    }
    let key = header_key(name);
    let mut matching = cells
        .iter()
        .enumerate()
        .filter(|(_, c)| !key.is_empty() && header_key(c) == key);
    match (matching.next(), matching.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: [Column; 3] = [
        Column {
            name: "user_email",
            label: "User email",
            aliases: &["user"],
            required: true,
        },
        Column {
            name: "display_name",
            label: "Display name",
            aliases: &["name", "full name"],
            required: false,
        },
        Column {
            name: "platform",
            label: "Platform",
            aliases: &[],
            required: true,
        },
    ];

    #[test]
    fn headers_match_by_name_label_or_alias_in_any_order() {
        let header = Record::from_cells(1, ["PLATFORM", "Full-Name", "notes", "User E-mail"]);
        let map = ColumnMap::from_header(&SCHEMA, &header).unwrap();
        let row = Record::from_cells(2, ["ios", "Alice", "x", "a@x.com"]);
        assert_eq!(map.get(&row, 0), "a@x.com");
        assert_eq!(map.get(&row, 1), "Alice");
        assert_eq!(map.get(&row, 2), "ios");
        assert_eq!(map.ignored, vec!["notes"]);
    }

    #[test]
    fn a_missing_required_column_is_named() {
        let header = Record::from_cells(1, ["user_email", "name"]);
        let err = ColumnMap::from_header(&SCHEMA, &header).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: the header has no platform column (expected user_email, display_name, platform)"
        );
    }

    #[test]
    fn two_cells_for_one_column_are_refused() {
        let header = Record::from_cells(1, ["user", "User Email", "platform"]);
        assert!(matches!(
            ColumnMap::from_header(&SCHEMA, &header),
            Err(HeaderError::Repeated { .. })
        ));
    }

    #[test]
    fn sources_parse_as_a_header_or_a_template() {
        assert_eq!(
            FieldSource::parse(" E-mail "),
            Ok(FieldSource::Column("E-mail".into()))
        );
        assert_eq!(
            FieldSource::parse("{username}@{domain}"),
            Ok(FieldSource::Template(vec![
                TemplatePart::Column("username".into()),
                TemplatePart::Text("@".into()),
                TemplatePart::Column("domain".into()),
            ]))
        );
        assert_eq!(
            FieldSource::parse("{{x}} {a}"),
            Ok(FieldSource::Template(vec![
                TemplatePart::Text("{x} ".into()),
                TemplatePart::Column("a".into()),
            ]))
        );
        assert!(FieldSource::parse("{open").is_err());
        assert!(FieldSource::parse("a}").is_err());
        assert!(FieldSource::parse("{}").is_err());
    }

    #[test]
    fn mapped_fields_read_from_their_columns_and_templates() {
        let header = Record::from_cells(1, ["username", "Platform", "domain", "notes"]);
        let mapped = [(
            0,
            "{username}@{domain}".to_owned(),
            FieldSource::parse("{username}@{domain}").unwrap(),
        )];
        let map = ColumnMap::from_header_mapped(&SCHEMA, &header, &mapped, true).unwrap();
        let row = Record::from_cells(2, ["alice", "ios", "example.com", "x"]);
        assert_eq!(map.get(&row, 0), "alice@example.com");
        assert_eq!(map.get(&row, 2), "ios");
        assert_eq!(map.ignored, vec!["notes"]);
        assert_eq!(map.mapped(0), Some("{username}@{domain}"));
        assert_eq!(map.get(&Record::from_cells(3, ["", "ios", " "]), 0), "");
        let missing = [(
            0,
            "{user}".to_owned(),
            FieldSource::parse("{user}").unwrap(),
        )];
        assert_eq!(
            ColumnMap::from_header_mapped(&SCHEMA, &header, &missing, true)
                .unwrap_err()
                .to_string(),
            "line 1: user_email is mapped to \"{user}\", but the header has no column \"user\" (its columns: username, Platform, domain, notes)"
        );
    }

    #[test]
    fn a_data_row_is_not_a_header() {
        assert!(!ColumnMap::is_header(
            &SCHEMA,
            &Record::from_cells(1, ["a@x.com", "Alice", "ios"])
        ));
        assert!(ColumnMap::is_header(
            &SCHEMA,
            &Record::from_cells(1, ["email", "User email"])
        ));
    }
}
