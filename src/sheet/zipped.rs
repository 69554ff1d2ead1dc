//! The ZIP side of a workbook: which format it is, small parts read whole under a limit, and
//! a large part (a sheet) streamed straight from the file, inflated as it is read, with the
//! number of bytes it may inflate to and the longest run between two tags both bounded.

use std::io::{self, BufReader, Read, Seek, SeekFrom, Take};

use zip::{CompressionMethod, ZipArchive};

use super::{Format, SheetError};

/// The most a small part (workbook, relationships, styles, manifest) may unpack to.
pub const SMALL_PART: u64 = 16 * 1024 * 1024;
/// The most a sheet's XML may unpack to: a sheet of a million full rows of accounts is a
/// few hundred MiB.
pub const SHEET_PART: u64 = 4 * 1024 * 1024 * 1024;
/// The longest run of bytes without a `<` a part may hold: a cell's text, at most 32,767
/// characters of up to 4 bytes each, escaped, fits many times over. It bounds what the XML
/// parser buffers for one event.
const LONGEST_RUN: u64 = 4 * 1024 * 1024;

/// What the archive is, from the parts it holds.
pub fn format<R: Read + Seek>(archive: &mut ZipArchive<R>) -> Result<Format, SheetError> {
    if archive.index_for_name("mimetype").is_some() {
        let mimetype = read_part(archive, "mimetype")?;
        return match mimetype.trim_ascii() {
            b"application/vnd.oasis.opendocument.spreadsheet" => Ok(Format::Ods),
            b"application/vnd.oasis.opendocument.text" => Err(SheetError::NotSpreadsheet {
                what: "an OpenDocument text document",
            }),
            _ => Err(SheetError::NotSpreadsheet {
                what: "an OpenDocument file other than a spreadsheet",
            }),
        };
    }
    let has = |name: &str| archive.index_for_name(name).is_some();
    if has("xl/workbook.xml")
        || has("_rels/.rels")
            && !has("word/document.xml")
            && !has("ppt/presentation.xml")
            && !has("xl/workbook.bin")
    {
        return Ok(Format::Xlsx);
    }
    let what = if has("xl/workbook.bin") {
        "an Excel binary workbook (.xlsb)"
    } else if has("word/document.xml") {
        "a Word document"
    } else if has("ppt/presentation.xml") {
        "a PowerPoint presentation"
    } else {
        "a ZIP archive"
    };
    Err(SheetError::NotSpreadsheet { what })
}

/// A small part read whole; an error if it is missing or unpacks to more than
/// [`SMALL_PART`] bytes.
pub fn read_part<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    name: &str,
) -> Result<Vec<u8>, SheetError> {
    let entry = archive
        .by_name(name)
        .map_err(|_| SheetError::Damaged(format!("it has no {name}")))?;
    let mut bytes = Vec::new();
    entry.take(SMALL_PART + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > SMALL_PART {
        return Err(SheetError::TooLarge {
            what: name.to_owned(),
            limit: SMALL_PART,
        });
    }
    Ok(bytes)
}

/// Where a part's compressed bytes are in the file, and how they are compressed.
#[derive(Debug, Clone, Copy)]
pub struct Located {
    start: u64,
    compressed: u64,
    deflated: bool,
}

/// Finds part `name`.
pub fn locate<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    name: &str,
) -> Result<Located, SheetError> {
    let entry = archive
        .by_name(name)
        .map_err(|_| SheetError::Damaged(format!("it has no {name}")))?;
    let deflated = match entry.compression() {
        CompressionMethod::Stored => false,
        CompressionMethod::Deflated => true,
        other => {
            return Err(SheetError::Damaged(format!(
                "{name} is compressed with {other}, which this version does not read"
            )));
        }
    };
    if entry.encrypted() {
        return Err(SheetError::Damaged(format!("{name} is encrypted")));
    }
    let start = entry
        .data_start()
        .ok_or_else(|| SheetError::Damaged(format!("{name} has no data")))?;
    Ok(Located {
        start,
        compressed: entry.compressed_size(),
        deflated,
    })
}

/// A part inflated as it is read from the file, refusing to unpack to more than its limit
/// or to hold a run of more than [`LONGEST_RUN`] bytes without a `<`.
pub struct Part<R: Read> {
    inner: Inflate<R>,
    name: String,
    limit: u64,
    read: u64,
    run: u64,
}

enum Inflate<R: Read> {
    Stored(Take<R>),
    Deflated(Box<flate2::read::DeflateDecoder<Take<R>>>),
}

impl<R: Read + Seek> Part<R> {
    /// Opens the part found at `located` in `input` (the archive's file).
    pub fn open(
        mut input: R,
        located: Located,
        name: &str,
        limit: u64,
    ) -> Result<Self, SheetError> {
        input.seek(SeekFrom::Start(located.start))?;
        let raw = input.take(located.compressed);
        let inner = if located.deflated {
            Inflate::Deflated(Box::new(flate2::read::DeflateDecoder::new(raw)))
        } else {
            Inflate::Stored(raw)
        };
        Ok(Part {
            inner,
            name: name.to_owned(),
            limit,
            read: 0,
            run: 0,
        })
    }

    /// The part's XML, buffered for the parser.
    pub fn xml(self) -> quick_xml::Reader<BufReader<Self>> {
        quick_xml::Reader::from_reader(BufReader::with_capacity(64 * 1024, self))
    }
}

impl<R: Read> Part<R> {
    /// Gives the underlying file back, for reading another part.
    pub fn into_inner(self) -> R {
        match self.inner {
            Inflate::Stored(take) => take.into_inner(),
            Inflate::Deflated(decoder) => decoder.into_inner().into_inner(),
        }
    }
}

fn limit_error(what: String, limit: u64) -> io::Error {
    io::Error::other(SheetError::TooLarge { what, limit })
}

impl<R: Read> Read for Part<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.inner {
            Inflate::Stored(take) => take.read(buf)?,
            Inflate::Deflated(decoder) => decoder.read(buf)?,
        };
        self.read += n as u64;
        if self.read > self.limit {
            return Err(limit_error(self.name.clone(), self.limit));
        }
        let chunk = &buf[..n];
        match memchr::memrchr(b'<', chunk) {
            Some(last) => {
                let first = memchr::memchr(b'<', chunk).unwrap_or(last);
                if self.run + first as u64 > LONGEST_RUN {
                    return Err(run_error(&self.name));
                }
                // Runs between two `<` inside this chunk.
                let mut previous = first;
                for at in memchr::memchr_iter(b'<', &chunk[first + 1..]) {
                    let at = first + 1 + at;
                    if (at - previous) as u64 > LONGEST_RUN {
                        return Err(run_error(&self.name));
                    }
                    previous = at;
                }
                self.run = (n - last) as u64;
            }
            None => {
                self.run += n as u64;
                if self.run > LONGEST_RUN {
                    return Err(run_error(&self.name));
                }
            }
        }
        Ok(n)
    }
}

fn run_error(name: &str) -> io::Error {
    limit_error(
        format!("a cell or tag of {name} (a run of text between two tags)"),
        LONGEST_RUN,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn archive(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in parts {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn a_part_that_unpacks_past_its_limit_is_refused() {
        let bomb = vec![b'<'; 1024 * 1024];
        let bytes = archive(&[("xl/worksheets/sheet1.xml", &bomb)]);
        let mut zip = ZipArchive::new(Cursor::new(bytes)).unwrap();
        let located = locate(&mut zip, "xl/worksheets/sheet1.xml").unwrap();
        let mut part = Part::open(zip.into_inner(), located, "sheet1.xml", 1000).unwrap();
        let err = SheetError::from(std::io::copy(&mut part, &mut std::io::sink()).unwrap_err());
        assert!(
            matches!(err, SheetError::TooLarge { limit: 1000, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_run_of_megabytes_without_a_tag_is_refused() {
        let mut text = b"<c><t>".to_vec();
        text.extend(std::iter::repeat_n(b'x', LONGEST_RUN as usize + 10));
        let bytes = archive(&[("content.xml", &text)]);
        let mut zip = ZipArchive::new(Cursor::new(bytes)).unwrap();
        let located = locate(&mut zip, "content.xml").unwrap();
        let mut part = Part::open(zip.into_inner(), located, "content.xml", u64::MAX).unwrap();
        let err = SheetError::from(std::io::copy(&mut part, &mut std::io::sink()).unwrap_err());
        assert!(
            err.to_string().contains("a cell or tag of content.xml"),
            "{err}"
        );
    }

    #[test]
    fn archives_that_are_not_workbooks_are_named() {
        for (parts, what) in [
            (
                vec![
                    ("word/document.xml", &b"<w/>"[..]),
                    ("_rels/.rels", b"<r/>"),
                ],
                "a Word document",
            ),
            (vec![("notes.txt", &b"hello"[..])], "a ZIP archive"),
            (
                vec![("mimetype", &b"application/vnd.oasis.opendocument.text"[..])],
                "an OpenDocument text document",
            ),
        ] {
            let mut zip = ZipArchive::new(Cursor::new(archive(&parts))).unwrap();
            match format(&mut zip) {
                Err(SheetError::NotSpreadsheet { what: found }) => assert_eq!(found, what),
                other => panic!("{what}: {other:?}"),
            }
        }
    }
}
