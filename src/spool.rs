//! Temporary files for files being imported: an upload as it arrives, a workbook read by
//! parts. They hold passwords in the clear as the admin wrote them, so they are encrypted
//! (ChaCha20) under a key drawn for the file and held only in memory: what reaches the disk
//! is noise, and stays noise once the process is gone. The file has no name, and its space is
//! freed when it is closed.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};

/// The key of one temporary file, and the keystream at the position written next.
pub struct Cipher {
    key: [u8; 32],
    nonce: [u8; 12],
    stream: ChaCha20,
}

impl Cipher {
    fn new() -> Cipher {
        use rand::RngExt;
        let mut rng = rand::rng();
        let key: [u8; 32] = rng.random();
        let nonce: [u8; 12] = rng.random();
        Cipher {
            stream: ChaCha20::new(&key.into(), &nonce.into()),
            key,
            nonce,
        }
    }

    /// Encrypts `bytes`, the next to be written, in place.
    pub fn encrypt(&mut self, bytes: &mut [u8]) -> io::Result<()> {
        self.stream.try_apply_keystream(bytes).map_err(too_long)
    }

    /// A reader of `file`, written through this cipher from its start, from its start.
    pub fn reader(self, mut file: File) -> io::Result<Reader> {
        file.rewind()?;
        Ok(Reader {
            file,
            stream: ChaCha20::new(&self.key.into(), &self.nonce.into()),
        })
    }
}

fn too_long(_: impl std::fmt::Debug) -> io::Error {
    io::Error::other("the temporary file is longer than its keystream (256 GiB)")
}

/// A new temporary file and the cipher to write it through.
pub fn create() -> io::Result<(File, Cipher)> {
    Ok((tempfile::tempfile()?, Cipher::new()))
}

/// A temporary file being written, encrypted as it is.
pub struct Writer {
    file: io::BufWriter<File>,
    cipher: Cipher,
    buffer: Vec<u8>,
}

impl Writer {
    /// A new temporary file to write.
    pub fn new() -> io::Result<Writer> {
        let (file, cipher) = create()?;
        Ok(Writer {
            file: io::BufWriter::with_capacity(64 * 1024, file),
            cipher,
            buffer: Vec::new(),
        })
    }

    /// The file written, to be read from its start.
    pub fn into_reader(self) -> io::Result<Reader> {
        let file = self
            .file
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        self.cipher.reader(file)
    }
}

impl Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.clear();
        self.buffer.extend_from_slice(bytes);
        self.cipher.encrypt(&mut self.buffer)?;
        self.file.write_all(&self.buffer)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A temporary file read back in the clear, from anywhere in it.
pub struct Reader {
    file: File,
    stream: ChaCha20,
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.stream
            .try_apply_keystream(&mut buf[..n])
            .map_err(too_long)?;
        Ok(n)
    }
}

impl Seek for Reader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let at = self.file.seek(to)?;
        self.stream.try_seek(at).map_err(too_long)?;
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_from_anywhere_and_is_not_on_disk_in_the_clear() {
        let text = "alice@example.com,imap-secret-1\n"
            .repeat(20_000)
            .into_bytes();
        let mut writer = Writer::new().unwrap();
        for part in text.chunks(7_777) {
            writer.write_all(part).unwrap();
        }
        let mut reader = writer.into_reader().unwrap();
        let mut on_disk = Vec::new();
        reader.file.read_to_end(&mut on_disk).unwrap();
        assert_eq!(on_disk.len(), text.len());
        assert!(!on_disk.windows(6).any(|w| w == b"secret"));

        reader.rewind().unwrap();
        let mut back = Vec::new();
        reader.read_to_end(&mut back).unwrap();
        assert_eq!(back, text);
        reader.seek(SeekFrom::Start(123_457)).unwrap();
        let mut part = [0; 1000];
        reader.read_exact(&mut part).unwrap();
        assert_eq!(part[..], text[123_457..124_457]);
    }
}
