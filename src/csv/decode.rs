//! Turning the bytes a spreadsheet saved into UTF-8: byte-order marks, UTF-16 (Excel's
//! "Unicode Text"), Windows-1252 (Excel on Western Windows) and UTF-8, detected or forced.
//!
//! Decoding streams: [`DecodeReader`] wraps any reader, so a large file is never held whole.

use std::fmt;
use std::io::{self, Read};

use serde::Serialize;

/// A text encoding mdm-mail reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Encoding {
    /// UTF-8, with or without a byte-order mark.
    #[serde(rename = "utf-8")]
    Utf8,
    /// UTF-16 little-endian (what Excel writes as "Unicode Text").
    #[serde(rename = "utf-16le")]
    Utf16Le,
    /// UTF-16 big-endian.
    #[serde(rename = "utf-16be")]
    Utf16Be,
    /// Windows-1252, the "ANSI" code page of Western Windows.
    #[serde(rename = "windows-1252")]
    Windows1252,
}

impl Encoding {
    /// The label shown to admins and written in JSON summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf16Le => "utf-16le",
            Encoding::Utf16Be => "utf-16be",
            Encoding::Windows1252 => "windows-1252",
        }
    }

    fn codec(self) -> &'static encoding_rs::Encoding {
        match self {
            Encoding::Utf8 => encoding_rs::UTF_8,
            Encoding::Utf16Le => encoding_rs::UTF_16LE,
            Encoding::Utf16Be => encoding_rs::UTF_16BE,
            Encoding::Windows1252 => encoding_rs::WINDOWS_1252,
        }
    }

    fn bom(self) -> &'static [u8] {
        match self {
            Encoding::Utf8 => b"\xEF\xBB\xBF",
            Encoding::Utf16Le => b"\xFF\xFE",
            Encoding::Utf16Be => b"\xFE\xFF",
            Encoding::Windows1252 => b"",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the admin asked for: detection, or one encoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EncodingChoice {
    /// Byte-order mark first, then UTF-16 by its zero bytes, then UTF-8 if the bytes are
    /// valid UTF-8, else Windows-1252.
    #[default]
    Auto,
    /// UTF-8.
    Utf8,
    /// UTF-16; the byte order comes from the BOM, else from the zero bytes, else little-endian.
    Utf16,
    /// Windows-1252.
    Windows1252,
}

impl std::str::FromStr for EncodingChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "auto" => Ok(EncodingChoice::Auto),
            "utf-8" | "utf8" => Ok(EncodingChoice::Utf8),
            "utf-16" | "utf16" | "utf-16le" | "utf-16be" | "unicode" => Ok(EncodingChoice::Utf16),
            "windows-1252" | "cp1252" | "latin1" | "ansi" => Ok(EncodingChoice::Windows1252),
            other => Err(format!(
                "unknown encoding {other:?} (expected auto, utf-8, utf-16 or windows-1252)"
            )),
        }
    }
}

/// The encoding a file turned out to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    /// The encoding the rest of the file is decoded with.
    pub encoding: Encoding,
    /// Whether the file started with a byte-order mark (which is never passed on).
    pub bom: bool,
}

/// Why a file's bytes could not be turned into text.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Bytes that are not valid in the encoding being used.
    #[error(
        "line {line}: the bytes at offset {offset} are not valid {encoding}; save the file as UTF-8, or pass the encoding it was saved in"
    )]
    Malformed {
        /// Encoding the bytes were read as.
        encoding: Encoding,
        /// Byte offset in the file of the first bad byte.
        offset: u64,
        /// Physical line the bad bytes are on.
        line: u64,
    },
    /// The file is not text at all: an image, an archive, a document.
    #[error("this is {what}, not a CSV file: save or export it as CSV (UTF-8) and try again")]
    NotText {
        /// What the file looks like.
        what: &'static str,
    },
    /// A byte-order mark that contradicts the encoding the admin forced.
    #[error("the file starts with a {found} byte-order mark, but {forced} was asked for")]
    BomConflict {
        /// The encoding the BOM announces.
        found: Encoding,
        /// The encoding that was forced.
        forced: &'static str,
    },
}

/// The signatures of files admins pick by mistake, and what each is.
const NOT_TEXT: [(&[u8], &str); 7] = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (
        b"PK\x03\x04",
        "a ZIP archive (an .xlsx or .ods spreadsheet?)",
    ),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an old Office file (an .xls spreadsheet?)",
    ),
    (b"\x1f\x8b", "a gzip archive"),
];

/// What `sample` is when it is plainly not text: a known signature, or NUL bytes where no
/// UTF-16 text would have them.
fn not_text(sample: &[u8], choice: EncodingChoice) -> Option<&'static str> {
    if let Some((_, what)) = NOT_TEXT.iter().find(|(magic, _)| sample.starts_with(magic)) {
        return Some(what);
    }
    let utf16 = choice == EncodingChoice::Utf16
        || sample.starts_with(Encoding::Utf16Le.bom())
        || sample.starts_with(Encoding::Utf16Be.bom())
        || utf16_order_by_zeros(sample).is_some();
    (!utf16 && sample.contains(&0)).then_some("binary data (it holds NUL bytes)")
}

/// Decides the encoding from the first bytes of a file, refusing one that is not text.
pub fn detect(sample: &[u8], choice: EncodingChoice) -> Result<Detected, DecodeError> {
    if let Some(what) = not_text(sample, choice) {
        return Err(DecodeError::NotText { what });
    }
    let bom = [Encoding::Utf8, Encoding::Utf16Le, Encoding::Utf16Be]
        .into_iter()
        .find(|e| sample.starts_with(e.bom()));
    let forced = |encoding: Encoding, label: &'static str| match bom {
        Some(found) if found != encoding => Err(DecodeError::BomConflict {
            found,
            forced: label,
        }),
        _ => Ok(Detected {
            encoding,
            bom: bom.is_some(),
        }),
    };
    match choice {
        EncodingChoice::Utf8 => forced(Encoding::Utf8, "UTF-8"),
        EncodingChoice::Windows1252 => forced(Encoding::Windows1252, "Windows-1252"),
        EncodingChoice::Utf16 => match bom {
            Some(e @ (Encoding::Utf16Le | Encoding::Utf16Be)) => Ok(Detected {
                encoding: e,
                bom: true,
            }),
            _ => forced(
                utf16_order_by_zeros(sample).unwrap_or(Encoding::Utf16Le),
                "UTF-16",
            ),
        },
        EncodingChoice::Auto => Ok(match bom {
            Some(encoding) => Detected {
                encoding,
                bom: true,
            },
            None => Detected {
                encoding: utf16_order_by_zeros(sample).unwrap_or_else(|| {
                    if looks_like_utf8(sample) {
                        Encoding::Utf8
                    } else {
                        Encoding::Windows1252
                    }
                }),
                bom: false,
            },
        }),
    }
}

/// UTF-16 text of mostly ASCII has a zero in every other byte; no CSV in another encoding does.
fn utf16_order_by_zeros(sample: &[u8]) -> Option<Encoding> {
    let pairs = sample.len() / 2;
    if pairs < 2 {
        return None;
    }
    let zeros_at = |parity: usize| {
        sample
            .chunks_exact(2)
            .filter(|pair| pair[parity] == 0 && pair[1 - parity] != 0)
            .count()
    };
    let (odd, even) = (zeros_at(1), zeros_at(0));
    if odd * 10 >= pairs * 7 {
        Some(Encoding::Utf16Le)
    } else if even * 10 >= pairs * 7 {
        Some(Encoding::Utf16Be)
    } else {
        None
    }
}

/// Valid UTF-8, allowing the sample to end in the middle of a character.
fn looks_like_utf8(sample: &[u8]) -> bool {
    match std::str::from_utf8(sample) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

/// A reader that yields the UTF-8 text of an underlying byte stream, without its BOM.
///
/// Malformed input is an error rather than U+FFFD: a silently mangled user name would
/// import, render and push a profile that cannot sign in.
pub struct DecodeReader<R> {
    inner: R,
    encoding: Encoding,
    decoder: encoding_rs::Decoder,
    input: Box<[u8]>,
    input_start: usize,
    input_end: usize,
    input_eof: bool,
    output: Box<[u8]>,
    output_start: usize,
    output_end: usize,
    consumed: u64,
    newlines: u64,
    finished: bool,
}

const BUFFER: usize = 64 * 1024;

impl<R: Read> DecodeReader<R> {
    /// Decodes `inner`, which must start at the beginning of the file (BOM included).
    pub fn new(inner: R, detected: Detected) -> Self {
        let codec = detected.encoding.codec();
        let decoder = if detected.bom {
            codec.new_decoder_with_bom_removal()
        } else {
            codec.new_decoder_without_bom_handling()
        };
        DecodeReader {
            inner,
            encoding: detected.encoding,
            decoder,
            input: vec![0; BUFFER].into_boxed_slice(),
            input_start: 0,
            input_end: 0,
            input_eof: false,
            output: vec![0; BUFFER * 3 + 16].into_boxed_slice(),
            output_start: 0,
            output_end: 0,
            consumed: 0,
            newlines: 0,
            finished: false,
        }
    }

    fn fill_output(&mut self) -> io::Result<()> {
        while self.output_start == self.output_end && !self.finished {
            if self.input_start == self.input_end && !self.input_eof {
                let n = read_retrying(&mut self.inner, &mut self.input)?;
                self.input_start = 0;
                self.input_end = n;
                self.input_eof = n == 0;
            }
            let src = &self.input[self.input_start..self.input_end];
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                src,
                &mut self.output,
                self.input_eof,
            );
            self.newlines += memchr_count(b'\n', &self.output[..written]);
            self.input_start += read;
            self.consumed += read as u64;
            self.output_start = 0;
            self.output_end = written;
            match result {
                encoding_rs::DecoderResult::Malformed(bad, after) => {
                    let offset = self.consumed - u64::from(bad) - u64::from(after);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        DecodeError::Malformed {
                            encoding: self.encoding,
                            offset,
                            line: self.newlines + 1,
                        },
                    ));
                }
                encoding_rs::DecoderResult::InputEmpty if self.input_eof => self.finished = true,
                _ => {}
            }
        }
        Ok(())
    }
}

fn read_retrying(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn memchr_count(needle: u8, haystack: &[u8]) -> u64 {
    haystack.iter().filter(|&&b| b == needle).count() as u64
}

impl<R: Read> Read for DecodeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fill_output()?;
        let available = &self.output[self.output_start..self.output_end];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.output_start += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], choice: EncodingChoice) -> Result<(Detected, String), String> {
        let detected = detect(bytes, choice).map_err(|e| e.to_string())?;
        let mut text = String::new();
        DecodeReader::new(bytes, detected)
            .read_to_string(&mut text)
            .map_err(|e| e.to_string())?;
        Ok((detected, text))
    }

    fn utf16(text: &str, little_endian: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let units = (if bom { "\u{FEFF}" } else { "" })
            .encode_utf16()
            .chain(text.encode_utf16());
        for unit in units {
            out.extend(if little_endian {
                unit.to_le_bytes()
            } else {
                unit.to_be_bytes()
            });
        }
        out
    }

    #[test]
    fn utf8_bom_is_detected_and_removed() {
        let (d, text) = decode(b"\xEF\xBB\xBFuser,x\n", EncodingChoice::Auto).unwrap();
        assert_eq!(
            d,
            Detected {
                encoding: Encoding::Utf8,
                bom: true
            }
        );
        assert_eq!(text, "user,x\n");
    }

    #[test]
    fn utf16_with_bom_in_both_byte_orders() {
        for le in [true, false] {
            let (d, text) = decode(&utf16("Jörg\tx\n", le, true), EncodingChoice::Auto).unwrap();
            assert_eq!(
                d.encoding,
                if le {
                    Encoding::Utf16Le
                } else {
                    Encoding::Utf16Be
                }
            );
            assert_eq!(text, "Jörg\tx\n");
        }
    }

    #[test]
    fn utf16_without_bom_is_recognised_by_its_zero_bytes() {
        let (d, text) =
            decode(&utf16("a@b.co\tAlice\n", true, false), EncodingChoice::Auto).unwrap();
        assert_eq!(d.encoding, Encoding::Utf16Le);
        assert_eq!(text, "a@b.co\tAlice\n");
    }

    #[test]
    fn images_archives_and_binary_data_are_refused_as_not_text() {
        for (bytes, what) in [
            (&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..], "a PNG image"),
            (b"%PDF-1.7\n", "a PDF document"),
            (
                b"PK\x03\x04\x14\0",
                "a ZIP archive (an .xlsx or .ods spreadsheet?)",
            ),
            (b"a,b\n\0\0c,d\n", "binary data (it holds NUL bytes)"),
        ] {
            match detect(bytes, EncodingChoice::Auto) {
                Err(DecodeError::NotText { what: found }) => assert_eq!(found, what),
                other => panic!("{what}: {other:?}"),
            }
        }
        assert!(
            detect(
                "a,b\n"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes)
                    .collect::<Vec<u8>>()
                    .as_slice(),
                EncodingChoice::Auto
            )
            .is_ok()
        );
    }

    #[test]
    fn invalid_utf8_falls_back_to_windows_1252() {
        let (d, text) = decode(b"Ren\xE9e;caf\xE9\n", EncodingChoice::Auto).unwrap();
        assert_eq!(d.encoding, Encoding::Windows1252);
        assert_eq!(text, "Renée;café\n");
    }

    #[test]
    fn forced_utf8_reports_the_line_of_bad_bytes() {
        let err = decode(b"ok\nalso ok\nbad \xFF\n", EncodingChoice::Utf8).unwrap_err();
        assert!(err.starts_with("line 3: the bytes at offset 15"), "{err}");
    }

    #[test]
    fn a_bom_contradicting_the_forced_encoding_is_an_error() {
        let err = decode(b"\xEF\xBB\xBFa", EncodingChoice::Windows1252).unwrap_err();
        assert!(err.contains("UTF-8") || err.contains("utf-8"), "{err}");
    }

    #[test]
    fn a_character_split_across_reads_survives() {
        let text = "é".repeat(BUFFER);
        let (_, back) = decode(text.as_bytes(), EncodingChoice::Utf8).unwrap();
        assert_eq!(back, text);
    }
}
