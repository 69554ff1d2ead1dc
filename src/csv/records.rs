//! Records out of a decoded file: physical line numbers, blank lines skipped, cells trimmed,
//! and spreadsheet formula neutralisation undone (except where a cell is read literally).

use std::collections::VecDeque;
use std::io::{self, Chain, Cursor, Read};

use super::decode::{self, DecodeError, DecodeReader, Detected, EncodingChoice};
use super::dialect::{self, Delimiter, DelimiterChoice};

/// How to read a file.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Encoding to use, or detect.
    pub encoding: EncodingChoice,
    /// Delimiter to use, or detect.
    pub delimiter: DelimiterChoice,
    /// Field counts a well-formed record of the expected kind has; a hint for detection.
    pub expected_widths: Vec<usize>,
}

/// Why a file cannot be read at all (as opposed to a bad record, which callers report per line).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The bytes are not text in the encoding used.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A quote opens a cell and is never closed: the parser read every later line into it.
    #[error(
        "line {line}: unterminated quote: the quote that opens a cell on this line is never closed, so lines {line} to {last} were read as that one cell; close it (a quote inside a quoted cell is written twice: \"\")"
    )]
    UnterminatedQuote {
        /// The line the quote is on.
        line: u64,
        /// The file's last line.
        last: u64,
    },
    /// A quoted cell runs on past [`MAX_RECORD_BYTES`]: its closing quote is missing, or
    /// the file holds something other than rows of users, devices or accounts.
    #[error(
        "line {line}: unterminated quote: the quote that opens a cell on this line is not closed within the next {} MiB, which no value comes near; close it (a quote inside a quoted cell is written twice: \"\")",
        MAX_RECORD_BYTES >> 20
    )]
    QuoteRunsOn {
        /// The line the quote is on.
        line: u64,
    },
    /// A line is longer than [`MAX_RECORD_BYTES`].
    #[error(
        "line {line}: the line is longer than {} MiB, far longer than any row of users, devices or accounts; check that this is the file you meant to import",
        MAX_RECORD_BYTES >> 20
    )]
    LineTooLong {
        /// The line that starts the record.
        line: u64,
    },
    /// A line has more than [`MAX_RECORD_CELLS`] cells.
    #[error(
        "line {line}: the line has more than {MAX_RECORD_CELLS} cells, more than a spreadsheet has columns; check that this is the file you meant to import"
    )]
    TooManyCells {
        /// The line that starts the record.
        line: u64,
    },
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Io(#[source] io::Error),
}

/// The errors of decoding and of following the text travel through the parser as I/O
/// errors, and are taken back out here.
impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        let e = match e.downcast::<ReadError>() {
            Ok(read) => return read,
            Err(e) => e,
        };
        match e.downcast::<DecodeError>() {
            Ok(decode) => ReadError::Decode(decode),
            Err(e) => ReadError::Io(e),
        }
    }
}

impl From<::csv::Error> for ReadError {
    fn from(e: ::csv::Error) -> Self {
        match e.into_kind() {
            ::csv::ErrorKind::Io(io) => io.into(),
            other => ReadError::Io(io::Error::other(format!("{other:?}"))),
        }
    }
}

/// How many bytes are examined to detect the encoding and the delimiter.
const SAMPLE: usize = 256 * 1024;

/// The longest record read, in bytes of text. The parser holds a record whole, so a record
/// of a whole file (a quote never closed, a file that is not a table) would otherwise take
/// memory in proportion to the file. A row of users, devices or accounts is a few hundred
/// bytes; a line up to this long is still read, and rejected on its own for its over-long
/// value, so one bad cell does not stop the file.
pub const MAX_RECORD_BYTES: u64 = 16 << 20;

/// The most cells a record may have, as many as a spreadsheet has columns: the parser keeps
/// a position for each, so a line of nothing but delimiters would take eight times its
/// length in memory.
pub const MAX_RECORD_CELLS: usize = crate::sheet::MAX_COLUMNS;

type Source<R> = LineBreaks<Chain<Cursor<Vec<u8>>, DecodeReader<Chain<Cursor<Vec<u8>>, R>>>>;

/// A CSV reader over spreadsheet output, with what was detected about the file.
pub struct CsvReader<R: Read> {
    inner: ::csv::Reader<Source<R>>,
    detected: Detected,
    delimiter: Delimiter,
    /// Line breaks before the current position in the text handed to the CSV parser, plus
    /// the line of a skipped `sep=` line.
    lines_before: u64,
    /// Line breaks inside the quoted cells of the record read last, counted once the next
    /// record is.
    quoted_lines: u64,
}

/// Opens `input` (from its first byte): detects the encoding and the delimiter, skips a
/// `sep=` line, and is ready to yield records.
pub fn open<R: Read>(mut input: R, options: &ReadOptions) -> Result<CsvReader<R>, ReadError> {
    let raw = read_up_to(&mut input, SAMPLE)?;
    let detected = decode::detect(&raw, options.encoding)?;
    let mut decoded = DecodeReader::new(Cursor::new(raw).chain(input), detected);
    let text = read_up_to(&mut decoded, SAMPLE)?;
    let complete = text.len() < SAMPLE;

    let sep = dialect::sep_line(&text);
    let skip = sep.map_or(0, |(_, len)| len);
    let delimiter = match (options.delimiter, sep) {
        (DelimiterChoice::Fixed(d), _) => d,
        (DelimiterChoice::Auto, Some((d, _))) => d,
        (DelimiterChoice::Auto, None) => {
            dialect::sniff(&text[skip..], complete, &options.expected_widths)
        }
    };
    let mut rest = Cursor::new(text);
    rest.set_position(skip as u64);
    let inner = ::csv::ReaderBuilder::new()
        .delimiter(delimiter.0)
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(64 * 1024)
        .from_reader(LineBreaks::new(
            rest.chain(decoded),
            delimiter.0,
            1 + u64::from(sep.is_some()),
        ));
    Ok(CsvReader {
        inner,
        detected,
        delimiter,
        lines_before: u64::from(sep.is_some()),
        quoted_lines: 0,
    })
}

fn read_up_to(reader: &mut impl Read, limit: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(limit.min(64 * 1024));
    reader.take(limit as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

impl<R: Read> CsvReader<R> {
    /// The encoding the file is read with.
    pub fn detected(&self) -> Detected {
        self.detected
    }

    /// The delimiter the file is split with.
    pub fn delimiter(&self) -> Delimiter {
        self.delimiter
    }

    /// Reads the next record that is not blank into `record`; `false` at the end of the file.
    pub fn read(&mut self, record: &mut Record) -> Result<bool, ReadError> {
        loop {
            if !self.inner.read_record(&mut record.raw)? {
                return match self.inner.get_ref().quotes.unterminated() {
                    Some((line, last)) => Err(ReadError::UnterminatedQuote { line, last }),
                    None => Ok(false),
                };
            }
            // A blank record's line is found too, so that the breaks before it are let go.
            let reported = record.raw.position().map_or(0, |p| p.byte());
            record.line = self.line_at(reported);
            if record.raw.iter().all(|cell| cell.trim().is_empty()) {
                continue;
            }
            record.from_sheet = false;
            return Ok(true);
        }
    }

    /// The physical line of the record the parser reports at byte `reported`.
    ///
    /// The parser's own line count ignores quoted line breaks and skipped blank lines, and
    /// its byte position points at the line breaks before a record, so the start of the
    /// record is found by stepping over those, counting every break on the way (CRLF once).
    fn line_at(&mut self, reported: u64) -> u64 {
        let breaks = &mut self.inner.get_mut().breaks;
        let mut start = reported;
        while let Some(run) = breaks.front() {
            if run.start > start {
                break;
            }
            start = start.max(run.end);
            // The lines inside the quoted cells of the record before this run.
            self.lines_before += std::mem::replace(&mut self.quoted_lines, run.quoted_lines);
            self.lines_before += run.lines;
            breaks.pop_front();
        }
        self.lines_before + 1
    }
}

/// Passes text through while following it as the parser does (see [`Quotes`]), noting where
/// the line breaks between records are, so that records can be given physical line numbers.
/// Only the breaks the parser has read ahead are kept, adjacent ones as one run (the parser
/// skips blank lines without a word: a file of nothing but line breaks is one run), and the
/// breaks inside a quoted cell as a count: a record of many lines is no more to keep.
struct LineBreaks<R> {
    inner: R,
    breaks: VecDeque<Breaks>,
    quotes: Quotes,
}

/// Adjacent line break bytes between records, `start..end`, then the lines that quoted cells
/// went on to after them.
struct Breaks {
    start: u64,
    end: u64,
    /// The lines they end: a CR followed by an LF ends one.
    lines: u64,
    /// Lines ended inside quoted cells after them, before the next run.
    quoted_lines: u64,
}

impl<R> LineBreaks<R> {
    fn new(inner: R, delimiter: u8, first_line: u64) -> Self {
        LineBreaks {
            inner,
            breaks: VecDeque::new(),
            quotes: Quotes::new(delimiter, first_line),
        }
    }
}

impl<R: Read> Read for LineBreaks<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.quotes
            .scan(&buf[..n], &mut self.breaks)
            .map_err(io::Error::other)?;
        Ok(n)
    }
}

/// Whether the text read so far ends inside a quoted cell, and on which line that cell's
/// quote opened, following the parser's rules: a quote opens a cell only as the cell's first
/// character, `""` inside it is a quote, and any other quote closes it. Only quotes and line
/// breaks are looked at one by one, found by one `memchr3` pass; the delimiters between them
/// are only counted. So the record being read is known, and one that is too long or has too
/// many cells is refused before the parser takes in more of it.
struct Quotes {
    delimiter: u8,
    /// The physical line of the position reached.
    line: u64,
    /// The byte before the position reached (a line break at the start of the text).
    previous: u8,
    /// Inside a quoted cell, since the line given.
    open_since: Option<u64>,
    /// A quote inside a quoted cell was the last byte read: the next byte decides whether
    /// it closed the cell or was the first of `""`.
    undecided: bool,
    /// Bytes read so far.
    offset: u64,
    /// Where the record being read starts (after the last line break outside quotes), and
    /// on which line.
    record: (u64, u64),
    /// Cells of the record being read so far.
    cells: usize,
}

impl Quotes {
    fn new(delimiter: u8, first_line: u64) -> Quotes {
        Quotes {
            delimiter,
            line: first_line,
            previous: b'\n',
            open_since: None,
            undecided: false,
            offset: 0,
            record: (0, first_line),
            cells: 1,
        }
    }

    /// Follows `text`, the next bytes, noting its line breaks in `breaks`; an error when
    /// the record they are part of runs past [`MAX_RECORD_BYTES`] or [`MAX_RECORD_CELLS`].
    fn scan(&mut self, text: &[u8], breaks: &mut VecDeque<Breaks>) -> Result<(), ReadError> {
        let Some(&last) = text.last() else {
            return Ok(());
        };
        let mut skip = None;
        if std::mem::take(&mut self.undecided) {
            if text[0] == b'"' {
                skip = Some(0);
            } else {
                self.open_since = None;
            }
        }
        let mut unseen = 0;
        for i in memchr::memchr3_iter(b'"', b'\r', b'\n', text) {
            self.count_cells(&text[unseen..i])?;
            unseen = i + 1;
            if skip == Some(i) {
                continue;
            }
            let before = if i == 0 { self.previous } else { text[i - 1] };
            match text[i] {
                b'\r' | b'\n' => {
                    let lines = u64::from(text[i] == b'\r' || before != b'\r');
                    self.line += lines;
                    let at = self.offset + i as u64;
                    if self.open_since.is_some() {
                        quoted_break(breaks, at, lines);
                    } else {
                        self.check_record_length(at)?;
                        self.record = (at + 1, self.line);
                        self.cells = 1;
                        unquoted_break(breaks, at, lines);
                    }
                }
                _ if self.open_since.is_some() => match text.get(i + 1) {
                    Some(b'"') => skip = Some(i + 1),
                    Some(_) => self.open_since = None,
                    None => self.undecided = true,
                },
                _ if before == self.delimiter || before == b'\r' || before == b'\n' => {
                    self.open_since = Some(self.line);
                }
                _ => {}
            }
        }
        self.count_cells(&text[unseen..])?;
        self.previous = last;
        self.offset += text.len() as u64;
        self.check_record_length(self.offset)
    }

    /// Counts the cells that `text`, bytes without quotes or line breaks, starts.
    fn count_cells(&mut self, text: &[u8]) -> Result<(), ReadError> {
        if self.open_since.is_some() {
            return Ok(());
        }
        self.cells += text.iter().filter(|&&b| b == self.delimiter).count();
        if self.cells <= MAX_RECORD_CELLS {
            return Ok(());
        }
        Err(ReadError::TooManyCells {
            line: self.record.1,
        })
    }

    /// An error when the record being read, which runs on to byte `end` at least, is longer
    /// than [`MAX_RECORD_BYTES`]. Checked where records end and where reads end, so that a
    /// record is refused exactly when it is too long, wherever the reads fall.
    fn check_record_length(&self, end: u64) -> Result<(), ReadError> {
        if end - self.record.0 <= MAX_RECORD_BYTES {
            return Ok(());
        }
        Err(match self.open_since {
            Some(line) => ReadError::QuoteRunsOn { line },
            None => ReadError::LineTooLong {
                line: self.record.1,
            },
        })
    }

    /// At the end of the text: the line of a quote never closed, and the last line.
    fn unterminated(&self) -> Option<(u64, u64)> {
        let ended_on_break = self.previous == b'\n' || self.previous == b'\r';
        self.open_since
            .filter(|_| !self.undecided)
            .map(|line| (line, self.line - u64::from(ended_on_break)))
    }
}

/// Notes a line break outside quotes, at byte `at`, ending `lines` lines (none for the LF of
/// a CRLF): a run of its own, or the end of the last one.
fn unquoted_break(breaks: &mut VecDeque<Breaks>, at: u64, lines: u64) {
    match breaks.back_mut() {
        Some(run) if run.end == at => {
            run.end += 1;
            run.lines += lines;
        }
        _ => breaks.push_back(Breaks {
            start: at,
            end: at + 1,
            lines,
            quoted_lines: 0,
        }),
    }
}

/// Notes a line break inside a quoted cell, at byte `at`: counted after the last run, or,
/// in the file's first record, after an empty run where it is.
fn quoted_break(breaks: &mut VecDeque<Breaks>, at: u64, lines: u64) {
    if breaks.is_empty() {
        breaks.push_back(Breaks {
            start: at,
            end: at,
            lines: 0,
            quoted_lines: 0,
        });
    }
    if let Some(run) = breaks.back_mut() {
        run.quoted_lines += lines;
    }
}

/// One record: its cells and the physical line it starts on.
#[derive(Debug, Clone, Default)]
pub struct Record {
    raw: ::csv::StringRecord,
    line: u64,
    /// Read from a spreadsheet file, whose cells are text as they are: no `'` in them was
    /// added by an export (the `.xlsx` export writes values as they are), so none is removed.
    from_sheet: bool,
}

impl Record {
    /// Builds a record from cells, for callers whose rows do not come from a file.
    pub fn from_cells<'a>(line: u64, cells: impl IntoIterator<Item = &'a str>) -> Record {
        Record {
            raw: cells.into_iter().collect(),
            line,
            from_sheet: false,
        }
    }

    /// Refills the record with the cells of a spreadsheet row at `line`, reusing its memory;
    /// its cells are then taken as they are, with no `'` removed.
    pub fn fill<'a>(&mut self, line: u64, cells: impl IntoIterator<Item = &'a str>) {
        self.raw.clear();
        for cell in cells {
            self.raw.push_field(cell);
        }
        self.line = line;
        self.from_sheet = true;
    }

    /// The 1-based physical line the record starts on (a quoted line break moves later ones).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Number of cells, empty ones included.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// About the bytes of memory the record's cells take: their text and a position each.
    pub fn footprint(&self) -> usize {
        self.raw.as_slice().len() + self.raw.len() * std::mem::size_of::<usize>()
    }

    /// Whether the record has no cells at all.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Number of cells, counting none of the empty cells trailing the last non-empty one.
    pub fn width(&self) -> usize {
        (0..self.raw.len())
            .rev()
            .find(|&i| !self.raw[i].trim().is_empty())
            .map_or(0, |last| last + 1)
    }

    /// The cell at `index`, trimmed and, in CSV, with formula neutralisation undone; `""`
    /// if absent.
    pub fn cell(&self, index: usize) -> &str {
        self.raw.get(index).map_or("", |c| self.shown(c))
    }

    fn shown<'c>(&self, cell: &'c str) -> &'c str {
        if self.from_sheet {
            cell.trim()
        } else {
            unneutralize(cell.trim())
        }
    }

    /// The cell at `index` exactly as the file has it, white space and any leading `'`
    /// included; `""` if absent. For values the export never writes (passwords), so that
    /// nothing in them can have been added by it.
    pub fn literal(&self, index: usize) -> &str {
        self.raw.get(index).unwrap_or("")
    }

    /// Every cell, as [`Record::cell`] gives them.
    pub fn cells(&self) -> impl Iterator<Item = &str> {
        self.raw.iter().map(|c| self.shown(c))
    }
}

/// Characters that make a spreadsheet treat a cell as a formula.
const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Protects a cell from being run as a formula when the file is opened in a spreadsheet:
/// a leading `'` is added where the cell (past any leading quotes) starts with a trigger.
/// [`unneutralize`] reverses it exactly, so a value survives a round trip unchanged.
pub fn neutralize(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.trim_start_matches('\'').starts_with(FORMULA_TRIGGERS) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// Undoes [`neutralize`]: drops one leading `'` where it guards a formula trigger.
pub fn unneutralize(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.trim_start_matches('\'').starts_with(FORMULA_TRIGGERS) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(bytes: &[u8]) -> (Vec<(u64, Vec<String>)>, Delimiter) {
        let mut reader = open(bytes, &ReadOptions::default()).unwrap();
        let mut record = Record::default();
        let mut out = Vec::new();
        while reader.read(&mut record).unwrap() {
            out.push((record.line(), record.cells().map(str::to_owned).collect()));
        }
        (out, reader.delimiter())
    }

    #[test]
    fn quoted_line_breaks_move_the_line_numbers_of_later_records() {
        let (recs, _) = records(b"a,\"two\nlines\"\r\n\r\nb,c\n");
        assert_eq!(recs[0], (1, vec!["a".into(), "two\nlines".into()]));
        assert_eq!(recs[1].0, 4);
    }

    #[test]
    fn blank_lines_and_lone_carriage_returns_count_as_lines() {
        let (recs, _) = records(b"a,\"two\nlines\"\r\n\r\n\nb,c\n\n  \nd\re\rf\r\n");
        let lines: Vec<u64> = recs.iter().map(|r| r.0).collect();
        assert_eq!(lines, vec![1, 5, 8, 9, 10]);
    }

    #[test]
    fn a_sep_line_sets_the_delimiter_and_counts_as_a_line() {
        let (recs, delimiter) = records(b"sep=|\nx|y,z\n");
        assert_eq!(delimiter, Delimiter::PIPE);
        assert_eq!(recs, vec![(2, vec!["x".into(), "y,z".into()])]);
    }

    #[test]
    fn blank_and_delimiter_only_lines_are_skipped_and_cells_trimmed() {
        let (recs, _) = records(b"  a , b \n,,\n   \nc,d\n");
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].1, vec!["a", "b"]);
        assert_eq!(recs[1].0, 4);
    }

    #[test]
    fn neutralised_cells_round_trip_exactly() {
        for value in [
            "=SUM(A1)", "+1", "-x", "@home", "'=x", "''+y", "'plain", "plain", "",
        ] {
            let protected = neutralize(value);
            assert!(!protected.starts_with(FORMULA_TRIGGERS), "{protected}");
            assert_eq!(unneutralize(&protected), value);
        }
    }

    fn read_all(bytes: &[u8]) -> Result<usize, ReadError> {
        let mut reader = open(bytes, &ReadOptions::default())?;
        let mut record = Record::default();
        let mut count = 0;
        while reader.read(&mut record)? {
            count += 1;
        }
        Ok(count)
    }

    #[test]
    fn a_quote_never_closed_is_named_at_the_line_it_opens() {
        let err = read_all(b"a,b\nc,\"d\ne,f\r\ng,h\n").unwrap_err();
        assert!(
            matches!(err, ReadError::UnterminatedQuote { line: 2, last: 4 }),
            "{err}"
        );
        assert!(
            err.to_string().starts_with("line 2: unterminated quote"),
            "{err}"
        );
        let err = read_all(b"sep=;\nx;y\n\"open").unwrap_err();
        assert!(
            matches!(err, ReadError::UnterminatedQuote { line: 3, last: 3 }),
            "{err}"
        );
    }

    #[test]
    fn quotes_that_close_escape_or_sit_inside_a_cell_are_not_unterminated() {
        for text in [
            &b"a,\"b \"\"c\"\" d\"\ne,f\n"[..],
            b"a,\"multi\r\nline\",c\n",
            b"5\" floppy,x\n",
            b"a,\"ends at the end\"",
            b"a,\"\"\n",
            b"\"x\"y\"z,1\n",
        ] {
            assert!(read_all(text).is_ok(), "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn a_quote_split_across_reads_is_followed() {
        let mut quotes = Quotes::new(b',', 1);
        for part in [&b"a,\"x"[..], b"\"", b"\"y\"", b"\n"] {
            quotes.scan(part, &mut VecDeque::new()).unwrap();
        }
        assert_eq!(quotes.unterminated(), None);
        let mut quotes = Quotes::new(b',', 1);
        for part in [&b"a,\"x"[..], b"\"", b"\"\n"] {
            quotes.scan(part, &mut VecDeque::new()).unwrap();
        }
        assert_eq!(quotes.unterminated(), Some((1, 1)));
    }

    #[test]
    fn a_line_longer_than_the_bound_is_refused_at_the_line_it_starts() {
        // A byte too long, wherever the reads fall.
        let long = "x".repeat(MAX_RECORD_BYTES as usize - 1);
        let text = format!("a,\"two\nlines\"\n\nb,{long}\nc,d\n");
        let err = read_all(text.as_bytes()).unwrap_err();
        assert!(matches!(err, ReadError::LineTooLong { line: 4 }), "{err}");
        // At the bound, the line is read, and the next one after it.
        let text = format!("a,{}\r\nb\n", "x".repeat(MAX_RECORD_BYTES as usize - 2));
        assert_eq!(read_all(text.as_bytes()).unwrap(), 2);
    }

    #[test]
    fn a_line_of_more_cells_than_a_spreadsheet_has_columns_is_refused() {
        let text = format!("a,b\n\"x\ny\",{}\n", ",".repeat(MAX_RECORD_CELLS));
        let err = read_all(text.as_bytes()).unwrap_err();
        assert!(matches!(err, ReadError::TooManyCells { line: 2 }), "{err}");
        // Delimiters inside a quoted cell start no cells.
        let quoted = format!(
            "a,\"{}\",{}\n",
            ",".repeat(40_000),
            ",".repeat(MAX_RECORD_CELLS - 3)
        );
        assert_eq!(read_all(quoted.as_bytes()).unwrap(), 1);
    }

    #[test]
    fn a_quote_still_open_past_the_bound_is_named_before_the_file_ends() {
        let rest = "e,f\n".repeat(MAX_RECORD_BYTES as usize / 4 + 1);
        let text = format!("a,b\nc,\"d\n{rest}");
        let err = read_all(text.as_bytes()).unwrap_err();
        assert!(matches!(err, ReadError::QuoteRunsOn { line: 2 }), "{err}");
        assert!(
            err.to_string().starts_with("line 2: unterminated quote"),
            "{err}"
        );
    }

    #[test]
    fn adjacent_line_breaks_are_kept_as_one_run() {
        let mut breaks = LineBreaks::new(&b"a\n\r\n\r\r\n\n"[..], b',', 1);
        let mut buf = [0; 3];
        while breaks.read(&mut buf).unwrap() > 0 {}
        assert_eq!(breaks.breaks.len(), 1);
        assert_eq!(breaks.breaks[0].lines, 5);
        let (recs, _) = records(&[&b"a\n"[..], &[b'\n'; 100_000], b"b\r\n\r\nc"].concat());
        let lines: Vec<u64> = recs.iter().map(|r| r.0).collect();
        assert_eq!(lines, vec![1, 100_002, 100_004]);
    }

    #[test]
    fn line_breaks_inside_quoted_cells_are_counted_not_kept() {
        let cell = "x\n".repeat(10_000);
        let text = format!("\"{cell}\",a\n\"{cell}\"\r\n");
        let mut breaks = LineBreaks::new(text.as_bytes(), b',', 1);
        let mut buf = [0; 1000];
        while breaks.read(&mut buf).unwrap() > 0 {}
        assert_eq!(breaks.breaks.len(), 3);
        assert_eq!(breaks.breaks[0].quoted_lines, 10_000);
        let text = format!("\"{cell}\",a\n \n\"{cell}\"\r\n\r\nb,\"{cell}\"\nc\n");
        let (recs, _) = records(text.as_bytes());
        let lines: Vec<u64> = recs.iter().map(|r| r.0).collect();
        assert_eq!(lines, vec![1, 10_003, 20_005, 30_006]);
    }

    #[test]
    fn blank_lines_are_let_go_as_they_are_read() {
        let text = " \n".repeat(100_000) + "a\n";
        let mut reader = open(text.as_bytes(), &ReadOptions::default()).unwrap();
        let mut record = Record::default();
        assert!(reader.read(&mut record).unwrap());
        assert_eq!(record.line(), 100_001);
        assert!(reader.inner.get_ref().breaks.len() < 10);
    }

    #[test]
    fn a_literal_cell_keeps_its_white_space_and_quote() {
        let record = Record::from_cells(1, ["  '=x ", "'pw", "\u{a0}pw"]);
        assert_eq!(record.cell(0), "=x");
        assert_eq!(record.literal(0), "  '=x ");
        assert_eq!(record.literal(1), "'pw");
        assert_eq!(record.literal(2), "\u{a0}pw");
        assert_eq!(record.literal(3), "");
    }

    #[test]
    fn width_ignores_trailing_empty_cells() {
        let record = Record::from_cells(1, ["a", "", "b", "", " "]);
        assert_eq!(record.width(), 3);
    }
}
