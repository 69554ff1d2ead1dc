//! The delimiter: Excel's `sep=` line, or a guess among comma, semicolon, TAB and pipe from
//! how consistently each one splits the first records, or the admin's choice.

use std::fmt;

use serde::{Serialize, Serializer};

/// A field delimiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delimiter(pub u8);

impl Delimiter {
    /// `,` — the default almost everywhere.
    pub const COMMA: Delimiter = Delimiter(b',');
    /// `;` — Excel in locales whose decimal separator is a comma.
    pub const SEMICOLON: Delimiter = Delimiter(b';');
    /// TAB — Excel's "Unicode Text" and "Text (Tab delimited)".
    pub const TAB: Delimiter = Delimiter(b'\t');
    /// `|` — exports from some mail hosts.
    pub const PIPE: Delimiter = Delimiter(b'|');

    /// The candidates auto-detection chooses among, in order of preference on a tie.
    pub const CANDIDATES: [Delimiter; 4] = [
        Delimiter::COMMA,
        Delimiter::SEMICOLON,
        Delimiter::TAB,
        Delimiter::PIPE,
    ];

    /// The delimiter's name as the CLI and the wizard offer it.
    pub fn name(self) -> &'static str {
        match self.0 {
            b',' => "comma",
            b';' => "semicolon",
            b'\t' => "tab",
            b'|' => "pipe",
            _ => "other",
        }
    }
}

impl fmt::Display for Delimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", char::from(self.0))
    }
}

impl Serialize for Delimiter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The admin's delimiter choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DelimiterChoice {
    /// Honour a `sep=` line, else guess.
    #[default]
    Auto,
    /// Use this one (a `sep=` line is still skipped).
    Fixed(Delimiter),
}

impl std::str::FromStr for DelimiterChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auto" => DelimiterChoice::Auto,
            "comma" | "," => DelimiterChoice::Fixed(Delimiter::COMMA),
            "semicolon" | ";" => DelimiterChoice::Fixed(Delimiter::SEMICOLON),
            "tab" | "\t" | "\\t" => DelimiterChoice::Fixed(Delimiter::TAB),
            "pipe" | "|" => DelimiterChoice::Fixed(Delimiter::PIPE),
            other => {
                return Err(format!(
                    "unknown delimiter {other:?} (expected auto, comma, semicolon, tab or pipe)"
                ));
            }
        })
    }
}

/// A leading `sep=X` line (Excel writes and honours it): the delimiter it names and the
/// number of bytes the line takes, line break included.
pub fn sep_line(text: &[u8]) -> Option<(Delimiter, usize)> {
    let rest = text
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case(b"sep="))
        .map(|_| &text[4..])?;
    let (&delimiter, after) = rest.split_first()?;
    let line_end = match after {
        [b'\r', b'\n', ..] => 2,
        [b'\n', ..] | [b'\r', ..] => 1,
        [] => 0,
        _ => return None,
    };
    (delimiter != b'\n' && delimiter != b'\r' && delimiter != b'"')
        .then_some((Delimiter(delimiter), 5 + line_end))
}

/// How many of the first records are looked at when guessing.
const SNIFF_RECORDS: usize = 200;

/// Guesses the delimiter of `text`, the beginning of a file.
///
/// Each candidate splits the first records with full quoting rules; the winner is the one whose
/// most common field count covers the most records, preferring a count the caller expects
/// (`expected_widths`), then more fields. `complete` says whether `text` is the whole file, so
/// that a record cut off by the end of a sample is not counted.
pub fn sniff(text: &[u8], complete: bool, expected_widths: &[usize]) -> Delimiter {
    #[derive(PartialEq, PartialOrd)]
    struct Score {
        consistent: usize,
        expected: bool,
        width: usize,
    }
    let mut best = (Delimiter::COMMA, None::<Score>);
    for candidate in Delimiter::CANDIDATES {
        let widths = field_counts(text, complete, candidate);
        let Some((width, consistent)) = modal(&widths) else {
            continue;
        };
        if width < 2 {
            continue;
        }
        let score = Score {
            consistent,
            expected: expected_widths.contains(&width),
            width,
        };
        if best.1.as_ref().is_none_or(|b| score > *b) {
            best = (candidate, Some(score));
        }
    }
    best.0
}

fn field_counts(text: &[u8], complete: bool, delimiter: Delimiter) -> Vec<usize> {
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter.0)
        .has_headers(false)
        .flexible(true)
        .from_reader(text);
    let mut record = ::csv::ByteRecord::new();
    let mut counts = Vec::new();
    let mut ends = Vec::new();
    while counts.len() <= SNIFF_RECORDS {
        match reader.read_byte_record(&mut record) {
            Ok(true) if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) => {}
            Ok(true) => {
                counts.push(record.len());
                ends.push(reader.position().byte());
            }
            Ok(false) | Err(_) => break,
        }
    }
    if !complete && ends.last() == Some(&(text.len() as u64)) {
        counts.pop();
    }
    counts
}

/// The most common value and how often it occurs; ties go to the larger value.
fn modal(values: &[usize]) -> Option<(usize, usize)> {
    let mut tally: Vec<(usize, usize)> = Vec::new();
    for &v in values {
        match tally.iter_mut().find(|(value, _)| *value == v) {
            Some((_, n)) => *n += 1,
            None => tally.push((v, 1)),
        }
    }
    tally.into_iter().max_by_key(|&(value, n)| (n, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sep_line_names_the_delimiter() {
        assert_eq!(sep_line(b"sep=;\r\na;b"), Some((Delimiter::SEMICOLON, 7)));
        assert_eq!(sep_line(b"SEP=|\na|b"), Some((Delimiter::PIPE, 6)));
        assert_eq!(sep_line(b"sep=;x\n"), None);
        assert_eq!(sep_line(b"user,sep\n"), None);
    }

    #[test]
    fn semicolons_win_when_commas_only_appear_inside_quotes() {
        let text =
            b"a@x.com;\"Adams, Alice\";a@x.com;alice;;alice;\nb@x.com;Bob;b@x.com;bob;;bob;\n";
        assert_eq!(sniff(text, true, &[7]), Delimiter::SEMICOLON);
    }

    #[test]
    fn tab_separated_unicode_text_is_recognised() {
        let text = b"user_email\texchange_email\texchange_username\na@x.com\ta@x.com\talice\n";
        assert_eq!(sniff(text, true, &[5]), Delimiter::TAB);
    }

    #[test]
    fn expected_width_breaks_a_tie_between_consistent_splits() {
        // Every line has one comma and six pipes: both split consistently, pipes give 7 fields.
        let text = b"a,b|c|d|e|f|g|h\ni,j|k|l|m|n|o|p\n";
        assert_eq!(sniff(text, true, &[7]), Delimiter::PIPE);
        assert_eq!(sniff(text, true, &[2]), Delimiter::COMMA);
    }

    #[test]
    fn a_record_cut_off_by_the_sample_end_is_ignored() {
        let text = b"a;b;c\nd;e;f\ng,h,i,j,k";
        assert_eq!(sniff(text, false, &[]), Delimiter::SEMICOLON);
    }

    #[test]
    fn a_single_column_defaults_to_comma() {
        assert_eq!(
            sniff(b"alice@x.com\nbob@x.com\n", true, &[]),
            Delimiter::COMMA
        );
    }
}
