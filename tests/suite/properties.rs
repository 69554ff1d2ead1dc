//! Properties of reading CSV: no input makes it panic, and whatever rows are written, in any
//! supported encoding and delimiter, read back exactly as written.

use mdm_mail::csv::{self, ColumnMap, Delimiter, DelimiterChoice, ReadOptions, Record, neutralize};
use mdm_mail::import::{schema, validate::Validator};
use mdm_mail::model::AccountKind;
use proptest::prelude::*;

/// Reads every record of `bytes` and checks each as both account types would.
fn read_everything(bytes: &[u8], options: &ReadOptions) {
    let Ok(mut reader) = csv::open(bytes, options) else {
        return;
    };
    let mut validators = [AccountKind::Email, AccountKind::Exchange]
        .map(|kind| Validator::new(kind, ColumnMap::positional(schema::columns(kind))));
    let mut record = Record::default();
    while let Ok(true) = reader.read(&mut record) {
        for validator in &mut validators {
            validator.check(&record);
        }
        let _ = ColumnMap::from_header(&schema::EMAIL, &record);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_the_reader(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        read_everything(&bytes, &ReadOptions::default());
        read_everything(&bytes, &ReadOptions {
            encoding: csv::EncodingChoice::Utf16,
            delimiter: DelimiterChoice::Fixed(Delimiter::PIPE),
            expected_widths: vec![5],
        });
    }

    #[test]
    fn arbitrary_text_never_panics_the_reader(text in "(?s)[a-z@.,;|\t\"'=\\-\r\n é€\u{0}]{0,400}") {
        read_everything(text.as_bytes(), &ReadOptions::default());
    }
}

/// Characters a cell may hold: delimiters, quotes and line breaks inside, formula triggers,
/// and non-ASCII letters. For Windows-1252 only letters whose encoding cannot be mistaken for
/// UTF-8 (an accented letter's byte there is never a UTF-8 continuation byte).
fn cell(latin1_only: bool) -> impl Strategy<Value = String> {
    let pattern = if latin1_only {
        "[a-zA-Z0-9 ,;|\t\"'=+@\n\\-àéîõüçñÅÆØß]{0,12}"
    } else {
        "[a-zA-Z0-9 ,;|\t\"'=+@\n\\-àéîõüçñÅÆØßжλ中文🙂]{0,12}"
    };
    pattern.prop_map(|s| s.trim().to_owned())
}

fn rows(latin1_only: bool) -> impl Strategy<Value = Vec<Vec<String>>> {
    (1usize..6).prop_flat_map(move |width| {
        proptest::collection::vec(
            proptest::collection::vec(cell(latin1_only), width)
                .prop_filter("a row of empty cells is a blank line", |r| {
                    r.iter().any(|c| !c.is_empty())
                }),
            1..8,
        )
    })
}

#[derive(Debug, Clone, Copy)]
enum Saved {
    Utf8,
    Utf8Bom,
    Utf16Le,
    Utf16Be,
    Windows1252,
}

fn encode(text: &str, saved: Saved) -> Vec<u8> {
    let utf16 = |little: bool| {
        let mut out = if little {
            vec![0xFF, 0xFE]
        } else {
            vec![0xFE, 0xFF]
        };
        for unit in text.encode_utf16() {
            out.extend(if little {
                unit.to_le_bytes()
            } else {
                unit.to_be_bytes()
            });
        }
        out
    };
    match saved {
        Saved::Utf8 => text.as_bytes().to_vec(),
        Saved::Utf8Bom => [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
        Saved::Utf16Le => utf16(true),
        Saved::Utf16Be => utf16(false),
        Saved::Windows1252 => encoding_rs::WINDOWS_1252.encode(text).0.into_owned(),
    }
}

fn write(rows: &[Vec<String>], delimiter: u8, crlf: bool) -> String {
    let mut writer = ::csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(if crlf {
            ::csv::Terminator::CRLF
        } else {
            ::csv::Terminator::Any(b'\n')
        })
        .from_writer(Vec::new());
    for row in rows {
        writer
            .write_record(row.iter().map(|c| neutralize(c).into_owned()))
            .unwrap();
    }
    String::from_utf8(writer.into_inner().unwrap()).unwrap()
}

fn read_back(bytes: &[u8], delimiter: u8) -> Vec<Vec<String>> {
    let options = ReadOptions {
        delimiter: DelimiterChoice::Fixed(Delimiter(delimiter)),
        ..ReadOptions::default()
    };
    let mut reader = csv::open(bytes, &options).unwrap();
    let mut record = Record::default();
    let mut out = Vec::new();
    while reader.read(&mut record).unwrap() {
        out.push(record.cells().map(str::to_owned).collect());
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_rows_read_back_identical_in_every_encoding_and_delimiter(
        rows in rows(false),
        latin1_rows in rows(true),
        delimiter in prop::sample::select(vec![b',', b';', b'\t', b'|']),
        crlf in any::<bool>(),
    ) {
        for saved in [Saved::Utf8, Saved::Utf8Bom, Saved::Utf16Le, Saved::Utf16Be, Saved::Windows1252] {
            let rows = if matches!(saved, Saved::Windows1252) { &latin1_rows } else { &rows };
            let bytes = encode(&write(rows, delimiter, crlf), saved);
            prop_assert_eq!(&read_back(&bytes, delimiter), rows, "{:?}", saved);
        }
    }
}
