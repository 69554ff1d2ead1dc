//! Turning stored values into CSV rows: the cells of each row (pure functions) and the
//! writer that quotes them, neutralises formula triggers and encodes the text.

use crate::csv::{Delimiter, neutralize};
use crate::import::schema;
use crate::model::AccountKind;
use crate::profile::{RenderError, Rendered};
use crate::store::ExportRow;

use super::OutputEncoding;

/// The header of an account export: the canonical column names in Miradore order.
pub fn account_header(kind: AccountKind) -> Vec<&'static str> {
    schema::columns(kind).iter().map(|c| c.name).collect()
}

/// The cells of one account, in the order of [`account_header`]; passwords blank.
pub fn account_cells(kind: AccountKind, row: &ExportRow) -> Vec<&str> {
    match kind {
        AccountKind::Email => vec![
            &row.user_email,
            row.display_name.as_deref().unwrap_or(""),
            &row.address,
            &row.username,
            "",
            row.outgoing_username.as_deref().unwrap_or(""),
            "",
        ],
        AccountKind::Exchange => vec![
            &row.user_email,
            &row.address,
            &row.username,
            row.domain.as_deref().unwrap_or(""),
            "",
        ],
    }
}

/// The header of the mappings report.
pub const MAPPINGS_HEADER: [&str; 9] = [
    "user_email",
    "device_id",
    "platform",
    "enrollment_id",
    "profile_identifier",
    "account_type",
    "account_address",
    "account_uuid",
    "note",
];

/// A device of a user, as the mappings report names it.
#[derive(Debug, Clone, Copy)]
pub struct DeviceCells<'a> {
    /// The MDM's device id.
    pub device_id: &'a str,
    /// Platform name.
    pub platform: &'a str,
    /// Device-channel enrollment id.
    pub enrollment_id: &'a str,
}

/// The note of an account the device gets no profile entry for because the user has no
/// device at all.
pub const NO_DEVICE: &str = "no enrolled device";
/// The note of a device whose user has no mail account.
pub const NO_ACCOUNTS: &str = "no mail accounts";

/// The mappings rows of one device (or of a user without devices, `device` `None`): one row
/// per account the profile for that device holds, with the identifiers the device knows it
/// by, one per account left out, with the reason, or one row saying there is nothing.
/// `rendered` is the user's profile rendered for the device's platform.
pub fn mapping_rows(
    user_email: &str,
    device: Option<DeviceCells<'_>>,
    rendered: Option<&Result<Rendered, RenderError>>,
    accounts: &[(AccountKind, &str)],
) -> Vec<[String; 9]> {
    let (device_id, platform, enrollment_id) =
        device.map_or(("", "", ""), |d| (d.device_id, d.platform, d.enrollment_id));
    let row = |identifier: &str, kind: &str, address: &str, uuid: &str, note: &str| {
        [
            user_email,
            device_id,
            platform,
            enrollment_id,
            identifier,
            kind,
            address,
            uuid,
            note,
        ]
        .map(str::to_owned)
    };
    let mut rows = Vec::new();
    let skipped = match rendered {
        None if accounts.is_empty() => {
            rows.push(row("", "", "", "", NO_ACCOUNTS));
            &[][..]
        }
        None => {
            for (kind, address) in accounts {
                rows.push(row("", kind.as_str(), address, "", NO_DEVICE));
            }
            &[][..]
        }
        Some(Ok(rendered)) => {
            for a in &rendered.accounts {
                rows.push(row(
                    &rendered.identifier,
                    a.kind.as_str(),
                    &a.address,
                    &a.uuid.hyphenated().to_string(),
                    "",
                ));
            }
            &rendered.skipped[..]
        }
        Some(Err(RenderError::NothingToRender { skipped, .. })) => &skipped[..],
        // `NoAccounts`: the caller fails the export on every other error.
        Some(Err(_)) => {
            rows.push(row("", "", "", "", NO_ACCOUNTS));
            &[][..]
        }
    };
    for s in skipped {
        rows.push(row(
            "",
            s.kind.as_str(),
            &s.address,
            "",
            &s.reason.to_string(),
        ));
    }
    rows
}

/// Writes rows as CSV text in the chosen delimiter and encoding, each cell formula-safe,
/// and hands the bytes over chunk by chunk.
pub struct CsvOut {
    writer: ::csv::Writer<Vec<u8>>,
    delimiter: Delimiter,
    encoding: OutputEncoding,
    started: bool,
}

/// A CSV writer into memory: CRLF line ends, which every spreadsheet reads, and quotes only
/// where a cell needs them.
fn csv_writer(delimiter: Delimiter) -> ::csv::Writer<Vec<u8>> {
    ::csv::WriterBuilder::new()
        .delimiter(delimiter.0)
        .terminator(::csv::Terminator::CRLF)
        .quote_style(::csv::QuoteStyle::Necessary)
        .buffer_capacity(64 * 1024)
        .from_writer(Vec::with_capacity(1024 * 1024))
}

impl CsvOut {
    /// A writer that has written nothing yet.
    pub fn new(delimiter: Delimiter, encoding: OutputEncoding) -> CsvOut {
        CsvOut {
            writer: csv_writer(delimiter),
            delimiter,
            encoding,
            started: false,
        }
    }

    /// Adds one row.
    pub fn row<'c>(&mut self, cells: impl IntoIterator<Item = &'c str>) -> std::io::Result<()> {
        for cell in cells {
            self.writer
                .write_field(neutralize(cell).as_bytes())
                .map_err(std::io::Error::other)?;
        }
        self.writer
            .write_record(None::<&[u8]>)
            .map_err(std::io::Error::other)
    }

    /// The bytes of the rows added since the last call, encoded; the first chunk starts
    /// with the byte-order mark, if the encoding has one.
    pub fn take(&mut self) -> std::io::Result<Vec<u8>> {
        let writer = std::mem::replace(&mut self.writer, csv_writer(self.delimiter));
        let text = writer
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let bom = if self.started {
            &b""[..]
        } else {
            self.encoding.bom()
        };
        self.started = true;
        Ok(match self.encoding {
            OutputEncoding::Utf8 | OutputEncoding::Utf8Bom if bom.is_empty() => text,
            OutputEncoding::Utf8 | OutputEncoding::Utf8Bom => [bom, &text].concat(),
            OutputEncoding::Utf16 => {
                // Only whole cells of `&str` were written, so the text is UTF-8.
                let text = String::from_utf8(text).map_err(std::io::Error::other)?;
                let mut out = Vec::with_capacity(bom.len() + 2 * text.len());
                out.extend_from_slice(bom);
                for unit in text.encode_utf16() {
                    out.extend_from_slice(&unit.to_le_bytes());
                }
                out
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(delimiter: Delimiter, encoding: OutputEncoding, rows: &[&[&str]]) -> Vec<u8> {
        let mut out = CsvOut::new(delimiter, encoding);
        let mut bytes = Vec::new();
        for row in rows {
            out.row(row.iter().copied()).unwrap();
            bytes.extend(out.take().unwrap());
        }
        bytes
    }

    #[test]
    fn formula_cells_are_neutralised_and_special_characters_quoted() {
        let bytes = written(
            Delimiter::COMMA,
            OutputEncoding::Utf8,
            &[&["=SUM(A1)", "a,b", "say \"hi\"", "two\nlines", "-1", "plain"]],
        );
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "'=SUM(A1),\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",'-1,plain\r\n"
        );
    }

    #[test]
    fn the_byte_order_mark_comes_once_at_the_start() {
        let bytes = written(Delimiter::TAB, OutputEncoding::Utf8Bom, &[&["é"], &["x"]]);
        assert_eq!(bytes, b"\xEF\xBB\xBF\xC3\xA9\r\nx\r\n");
        let bytes = written(
            Delimiter::TAB,
            OutputEncoding::Utf16,
            &[&["é", "b"], &["x"]],
        );
        assert_eq!(
            bytes,
            b"\xFF\xFE\xE9\0\t\0b\0\r\0\n\0x\0\r\0\n\0".as_slice()
        );
    }

    #[test]
    fn passwords_are_always_blank() {
        let row = ExportRow {
            user_email: "a@example.com".into(),
            user_email_norm: "a@example.com".into(),
            address: "A@example.com".into(),
            address_norm: "a@example.com".into(),
            display_name: Some("A".into()),
            username: "a".into(),
            domain: Some("CORP".into()),
            outgoing_username: Some("a-out".into()),
        };
        let email = account_cells(AccountKind::Email, &row);
        assert_eq!(
            email,
            ["a@example.com", "A", "A@example.com", "a", "", "a-out", ""]
        );
        let exchange = account_cells(AccountKind::Exchange, &row);
        assert_eq!(
            exchange,
            ["a@example.com", "A@example.com", "a", "CORP", ""]
        );
        for (kind, cells) in [
            (AccountKind::Email, email),
            (AccountKind::Exchange, exchange),
        ] {
            let header = account_header(kind);
            assert_eq!(header.len(), cells.len());
            for (name, cell) in header.iter().zip(cells) {
                if schema::is_password(name) {
                    assert_eq!(cell, "", "{name}");
                }
            }
        }
    }
}
