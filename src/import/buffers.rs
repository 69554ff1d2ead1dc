//! Text and bytes copied into one buffer of each, every field a range of one: rows handed
//! from one thread to another (a scan's batches, the writer's chunks) then cost two
//! allocations, not one per field.

use std::ops::Range;

/// One buffer of text and one of bytes.
#[derive(Default)]
pub struct Buffers {
    text: String,
    bytes: Vec<u8>,
}

impl Buffers {
    /// Buffers that hold `text` bytes of text and `bytes` bytes before they grow.
    pub fn with_capacity(text: usize, bytes: usize) -> Buffers {
        Buffers {
            text: String::with_capacity(text),
            bytes: Vec::with_capacity(bytes),
        }
    }

    /// Copies `value` in; where it lies.
    pub fn text(&mut self, value: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(value);
        start..self.text.len()
    }

    /// Copies `value` in; where it lies.
    pub fn bytes(&mut self, value: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(value);
        start..self.bytes.len()
    }

    /// The text `range` gave back from [`Buffers::text`].
    pub fn text_at(&self, range: &Range<usize>) -> &str {
        &self.text[range.clone()]
    }

    /// The bytes `range` gave back from [`Buffers::bytes`].
    pub fn bytes_at(&self, range: &Range<usize>) -> &[u8] {
        &self.bytes[range.clone()]
    }
}
