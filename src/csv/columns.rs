//! Columns: which cell holds which field, from a header row (by name, label or alias, in any
//! order) or by position.

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

/// Where each column of a schema is found in the records of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    positions: Vec<Option<usize>>,
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
            positions: (0..schema.len()).map(Some).collect(),
            ignored: Vec::new(),
            width: schema.len(),
            header: false,
        }
    }

    /// Maps a header row onto `schema`.
    pub fn from_header(schema: &[Column], header: &Record) -> Result<ColumnMap, HeaderError> {
        let mut positions: Vec<Option<usize>> = vec![None; schema.len()];
        let mut ignored = Vec::new();
        for (index, cell) in header.cells().enumerate() {
            let key = header_key(cell);
            if key.is_empty() {
                continue;
            }
            match schema.iter().position(|c| c.matches(&key)) {
                Some(field) => {
                    if let Some(first) = positions[field] {
                        return Err(HeaderError::Repeated {
                            line: header.line(),
                            name: schema[field].name,
                            first: header.cell(first).to_owned(),
                            second: cell.to_owned(),
                        });
                    }
                    positions[field] = Some(index);
                }
                None => ignored.push(crate::model::excerpt(cell).into_owned()),
            }
        }
        let missing: Vec<&'static str> = schema
            .iter()
            .zip(&positions)
            .filter(|(c, p)| c.required && p.is_none())
            .map(|(c, _)| c.name)
            .collect();
        if !missing.is_empty() {
            return Err(HeaderError::Missing {
                line: header.line(),
                missing,
                expected: schema.iter().map(|c| c.name).collect::<Vec<_>>().join(", "),
            });
        }
        Ok(ColumnMap {
            positions,
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

    /// The cell of `record` holding the schema's `field`-th column; `""` when absent.
    pub fn get<'r>(&self, record: &'r Record, field: usize) -> &'r str {
        self.positions[field].map_or("", |i| record.cell(i))
    }

    /// The cell of `record` holding the schema's `field`-th column exactly as read (see
    /// [`Record::literal`]); `""` when absent.
    pub fn get_literal<'r>(&self, record: &'r Record, field: usize) -> &'r str {
        self.positions[field].map_or("", |i| record.literal(i))
    }

    /// The fewest cells a record needs to reach every required column.
    pub fn required_width(&self, schema: &[Column]) -> usize {
        schema
            .iter()
            .zip(&self.positions)
            .filter(|(c, _)| c.required)
            .filter_map(|(_, p)| p.map(|i| i + 1))
            .max()
            .unwrap_or(0)
    }

    /// The canonical column name each cell position maps to (`None`: ignored).
    pub fn names(&self, schema: &[Column]) -> Vec<Option<&'static str>> {
        let mut names = vec![None; self.width];
        for (column, position) in schema.iter().zip(&self.positions) {
            if let Some(i) = *position {
                if i >= names.len() {
                    names.resize(i + 1, None);
                }
                names[i] = Some(column.name);
            }
        }
        names
    }

    /// Whether the file has the schema's `field`-th column at all.
    pub fn has(&self, field: usize) -> bool {
        self.positions[field].is_some()
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
