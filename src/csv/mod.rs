//! Reading CSV as spreadsheets really save it: the encoding ([`decode`]), the delimiter
//! ([`dialect`]), records with physical line numbers ([`records`]) and columns found by header
//! name or position ([`columns`]). Every importer reads through here.

pub mod columns;
pub mod decode;
pub mod dialect;
pub mod records;

pub use columns::{Column, ColumnMap, FieldSource, HeaderError, TemplatePart};
pub use decode::{DecodeError, Detected, Encoding, EncodingChoice};
pub use dialect::{Delimiter, DelimiterChoice};
pub use records::{CsvReader, ReadError, ReadOptions, Record, neutralize, open, unneutralize};
