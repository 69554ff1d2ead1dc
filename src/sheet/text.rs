//! Cell values as the text a spreadsheet shows: numbers, dates, and text out of XML events.

use quick_xml::events::BytesRef;

use super::{MAX_CELL_CHARS, SheetError};

/// A stored number as a spreadsheet shows it in its General format: a whole number without
/// `.0` (`7123`, never `7123.0`), others to 15 significant digits (`0.3`, not
/// `0.30000000000000004`). `None` when `value` is not a number.
pub fn number_text(value: &str) -> Option<String> {
    let x: f64 = value.trim().parse().ok()?;
    if !x.is_finite() {
        return None;
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        // Whole and within i64: the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        return Some(format!("{}", x as i64));
    }
    let rounded: f64 = format!("{x:.14e}").parse().ok()?;
    Some(format!("{rounded}"))
}

/// An Excel date serial as ISO 8601: `2024-12-31`, `2024-12-31T08:30:00` or `08:30:00`,
/// with the date and the time as the cell's format shows them. `date1904` is the
/// workbook's date system. `None` outside the years a spreadsheet handles.
pub fn excel_date(serial: f64, date1904: bool, date: bool, time: bool) -> Option<String> {
    if !serial.is_finite() || !(0.0..3_000_000.0).contains(&serial) {
        return None;
    }
    let mut seconds = (serial * 86_400.0).round();
    let days = (seconds / 86_400.0).floor();
    seconds -= days * 86_400.0;
    // In range, so whole days and seconds fit.
    #[allow(clippy::cast_possible_truncation)]
    let (days, seconds) = (days as i64, seconds as i64);
    let day = if date1904 {
        time::macros::date!(1904 - 01 - 01).to_julian_day() as i64 + days
    } else if days == 60 {
        // Excel's 1900-02-29, a day that never was, kept as Excel shows it.
        return Some(match time {
            true => format!("1900-02-29T{}", clock(seconds)),
            false => "1900-02-29".to_owned(),
        });
    } else if days < 60 {
        time::macros::date!(1899 - 12 - 31).to_julian_day() as i64 + days
    } else {
        time::macros::date!(1899 - 12 - 30).to_julian_day() as i64 + days
    };
    let day = time::Date::from_julian_day(i32::try_from(day).ok()?).ok()?;
    let iso = format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    );
    Some(match (date, time) {
        (_, false) => iso,
        (false, true) => clock(seconds),
        (true, true) => format!("{iso}T{}", clock(seconds)),
    })
}

fn clock(seconds: i64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Whether an Excel number format shows a date, a time, both or neither: `(date, time)`.
pub fn date_format(id: u32, code: Option<&str>) -> (bool, bool) {
    match id {
        14..=17 | 27..=31 | 34..=36 | 50..=58 => return (true, false),
        18..=21 | 32 | 33 | 45..=47 => return (false, true),
        22 => return (true, true),
        _ => {}
    }
    let Some(code) = code else {
        return (false, false);
    };
    // Only the first section, without quoted text, escapes and [colour] or [$-locale]
    // parts, which may hold the letters looked for.
    let mut plain = String::new();
    let mut chars = code.chars();
    while let Some(c) = chars.next() {
        match c {
            ';' => break,
            '"' => {
                for q in chars.by_ref() {
                    if q == '"' {
                        break;
                    }
                }
            }
            '\\' | '_' | '*' => {
                chars.next();
            }
            '[' => {
                let inner: String = chars.by_ref().take_while(|&b| b != ']').collect();
                // [h], [mm], [ss]: elapsed time.
                if inner
                    .chars()
                    .all(|b| matches!(b.to_ascii_lowercase(), 'h' | 'm' | 's'))
                {
                    plain.push_str(&inner);
                }
            }
            c => plain.push(c.to_ascii_lowercase()),
        }
    }
    let time = plain.contains(['h', 's']);
    let date = plain.contains(['y', 'd']) || (plain.contains('m') && !time);
    (date, time)
}

/// The text of a cell being collected from XML events, bounded at [`MAX_CELL_CHARS`]
/// characters.
#[derive(Debug, Default)]
pub struct CellText {
    text: String,
    chars: usize,
}

impl CellText {
    /// Empties it for the next cell.
    pub fn clear(&mut self) {
        self.text.clear();
        self.chars = 0;
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Adds `more`; a `reason` for the message when the cell would be too long.
    pub fn push(&mut self, more: &str) -> Result<(), String> {
        self.chars += more.chars().count();
        if self.chars > MAX_CELL_CHARS {
            return Err(format!(
                "a cell holds more than {MAX_CELL_CHARS} characters, more than a spreadsheet cell can"
            ));
        }
        self.text.push_str(more);
        Ok(())
    }

    /// Adds `c` `count` times (ODF's `<text:s text:c="3"/>`).
    pub fn repeat(&mut self, c: char, count: usize) -> Result<(), String> {
        if count > MAX_CELL_CHARS {
            return self.push(&"x".repeat(MAX_CELL_CHARS + 1));
        }
        self.push(&c.to_string().repeat(count))
    }

    /// Adds the text of an entity or character reference.
    pub fn push_ref(&mut self, reference: &BytesRef<'_>) -> Result<(), SheetError> {
        let resolved = match reference.resolve_char_ref() {
            Ok(Some(c)) => c.to_string(),
            Ok(None) => {
                let name: &str = reference;
                quick_xml::escape::resolve_predefined_entity(name)
                    .ok_or_else(|| SheetError::Damaged(format!("unknown entity &{name};")))?
                    .to_owned()
            }
            Err(e) => return Err(SheetError::Damaged(e.to_string())),
        };
        self.push(&resolved).map_err(SheetError::Damaged)
    }
}

/// Undoes Excel's escapes of characters XML cannot carry: `_x000D_` is a carriage return,
/// `_x005F_` a literal `_`.
pub fn unescape_excel(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("_x") {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("_x") {
        out.push_str(&rest[..at]);
        let candidate = &rest[at..];
        let escaped = candidate
            .get(2..6)
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .filter(|_| candidate.as_bytes().get(6) == Some(&b'_'))
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .and_then(char::from_u32);
        match escaped {
            Some(c) => {
                out.push(c);
                rest = &candidate[7..];
            }
            None => {
                out.push_str("_x");
                rest = &candidate[2..];
            }
        }
    }
    out.push_str(rest);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_a_spreadsheet_shows_them() {
        assert_eq!(number_text("7123").as_deref(), Some("7123"));
        assert_eq!(number_text("7123.0").as_deref(), Some("7123"));
        assert_eq!(number_text("42").as_deref(), Some("42"));
        assert_eq!(number_text("1.5").as_deref(), Some("1.5"));
        assert_eq!(number_text("0.30000000000000004").as_deref(), Some("0.3"));
        assert_eq!(number_text("-3").as_deref(), Some("-3"));
        assert_eq!(number_text("abc"), None);
    }

    #[test]
    fn excel_serials_become_iso_dates() {
        assert_eq!(
            excel_date(45657.0, false, true, false).as_deref(),
            Some("2024-12-31")
        );
        assert_eq!(
            excel_date(45657.5, false, true, true).as_deref(),
            Some("2024-12-31T12:00:00")
        );
        assert_eq!(
            excel_date(0.25, false, false, true).as_deref(),
            Some("06:00:00")
        );
        assert_eq!(
            excel_date(1.0, false, true, false).as_deref(),
            Some("1900-01-01")
        );
        assert_eq!(
            excel_date(61.0, false, true, false).as_deref(),
            Some("1900-03-01")
        );
        assert_eq!(
            excel_date(0.0, true, true, false).as_deref(),
            Some("1904-01-01")
        );
    }

    #[test]
    fn date_formats_are_told_from_number_formats() {
        assert_eq!(date_format(14, None), (true, false));
        assert_eq!(date_format(0, None), (false, false));
        assert_eq!(date_format(49, None), (false, false));
        assert_eq!(date_format(164, Some("yyyy-mm-dd")), (true, false));
        assert_eq!(date_format(165, Some("dd/mm/yyyy hh:mm")), (true, true));
        assert_eq!(date_format(166, Some("[h]:mm:ss")), (false, true));
        assert_eq!(date_format(167, Some("#,##0.00\" days\"")), (false, false));
        assert_eq!(date_format(168, Some("[Red]0.00")), (false, false));
    }

    #[test]
    fn excel_escapes_are_undone() {
        assert_eq!(unescape_excel("a_x000D_b"), "a\rb");
        assert_eq!(unescape_excel("_x005F_x0041_"), "_x0041_");
        assert_eq!(unescape_excel("my_xvalue"), "my_xvalue");
    }
}
