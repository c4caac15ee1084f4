//! Checks on a Parquet file's pages before the decoder sees them.
//!
//! The decoder (parquet 60) trusts two things in a page header that a small malicious file can
//! turn into a denial of service; the `parquet` fuzz target found both (docs/fuzzing.md):
//!
//! * its Thrift reader skips fields it does not know without noticing the end of the input, so a
//!   header field holding a list that declares two billion doubles (or booleans) is "skipped"
//!   element by element: seconds to minutes of CPU for a 700-byte upload;
//! * it sizes a column's dictionary from the dictionary page's `num_values` alone and zeroes it
//!   before reading a byte, so a 2 KB file claiming 1.6 billion entries costs 6 GB (and a larger
//!   claim aborts the process when the allocation fails).
//!
//! Neither is a panic, so the reader's `catch_unwind` does not help. [`check`] therefore walks
//! every page header of every column chunk with its own Thrift compact-protocol reader, which
//! refuses to run past the chunk (a collection must have at least one byte per element left), and
//! then compares each dictionary page's declared count with its bytes. A valid file passes; the
//! cost is one pass over the headers and decompressing the dictionary pages.
//!
//! After decoding, [`check_arrays`] validates every array the decoder built. parquet 60 builds
//! byte-array columns with `build_unchecked` unless debug assertions are on, so in a release build
//! a string column whose bytes are not UTF-8 came back as a `StringArray` holding invalid UTF-8,
//! and aurum copied it into `String`s: undefined behaviour in safe code (the fuzz target, built
//! with debug assertions, saw parquet's own check panic instead).

use std::sync::Arc;

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::basic::Type as PhysicalType;
use parquet::column::page::{Page, PageReader};
use parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};
use parquet::file::reader::ChunkReader;
use parquet::file::serialized_reader::SerializedPageReader;

use crate::DataError;

/// How deeply Thrift values may nest in a page header (the decoder's own limit).
const MAX_DEPTH: u8 = 64;

/// Checks every page header and every dictionary page of `data`, whose footer is `metadata`.
pub(crate) fn check(data: &Bytes, metadata: &ParquetMetaData) -> Result<(), DataError> {
    check_input(Arc::new(data.clone()), metadata)
}

/// [`check`] over any input the decoder reads (a file streams one column chunk at a time).
pub(crate) fn check_input<R: ChunkReader + 'static>(
    input: Arc<R>,
    metadata: &ParquetMetaData,
) -> Result<(), DataError> {
    for row_group in metadata.row_groups() {
        for chunk in row_group.columns() {
            walk_page_headers(input.as_ref(), chunk)?;
        }
    }
    check_dictionary_pages(input, metadata)
}

/// Fully validates every column of every decoded batch (offsets, UTF-8, dictionary keys, null
/// counts); `names` are the columns' names, in order.
pub(crate) fn check_arrays(batches: &[RecordBatch], names: &[String]) -> Result<(), DataError> {
    for batch in batches {
        for (array, name) in batch.columns().iter().zip(names) {
            array
                .to_data()
                .validate_full()
                .map_err(|e| DataError::Parquet {
                    message: format!("column `{name}` decodes to invalid data: {e}"),
                })?;
        }
    }
    Ok(())
}

fn malformed(chunk: &ColumnChunkMetaData, what: impl std::fmt::Display) -> DataError {
    DataError::Parquet {
        message: format!("column `{}`: {what}", chunk.column_path().string()),
    }
}

/// Walks the page headers of one column chunk, page by page, as the decoder will read them.
fn walk_page_headers<R: ChunkReader>(
    file: &R,
    chunk: &ColumnChunkMetaData,
) -> Result<(), DataError> {
    let start = chunk
        .dictionary_page_offset()
        .unwrap_or_else(|| chunk.data_page_offset());
    let (start, len) = u64::try_from(start)
        .ok()
        .zip(usize::try_from(chunk.compressed_size()).ok())
        .filter(|(start, len)| {
            start
                .checked_add(*len as u64)
                .is_some_and(|end| end <= file.len())
        })
        .ok_or_else(|| malformed(chunk, "its byte range lies outside the file"))?;
    let bytes = file.get_bytes(start, len).map_err(|e| DataError::Parquet {
        message: format!("column `{}`: {e}", chunk.column_path().string()),
    })?;
    let pages: &[u8] = &bytes;
    let mut at = 0;
    while at < pages.len() {
        let mut header = Compact {
            buf: pages,
            at,
            budget: pages.len() - at,
        };
        let body = header.page_header().ok_or_else(|| {
            malformed(
                chunk,
                format!("the page header at byte {at} of the column chunk is malformed"),
            )
        })?;
        at = usize::try_from(body)
            .ok()
            .and_then(|body| header.at.checked_add(body))
            .filter(|&end| end <= pages.len())
            .ok_or_else(|| {
                malformed(
                    chunk,
                    format!("the page at byte {at} of the column chunk runs past its end"),
                )
            })?;
    }
    Ok(())
}

/// The page-header structs the decoder reads field by field (parquet 60's `PageHeader` and the
/// structs inside it). It reads a known field by the schema's type whatever type the input
/// declares, and skips every other field by its declared type; [`Compact`] does the same, and
/// refuses a known field whose declared type is not the schema's, which no valid file has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    PageHeader,
    DataPage,
    IndexPage,
    DictionaryPage,
    DataPageV2,
    Statistics,
}

const BOOL: u8 = 1;
const I32: u8 = 5;
const I64: u8 = 6;
const BINARY: u8 = 8;
const STRUCT: u8 = 12;

impl Known {
    /// The compact type of field `id` (`BOOL` stands for either boolean type) and, for a struct,
    /// which one; `None` for a field the decoder skips.
    fn field(self, id: i16) -> Option<(u8, Option<Known>)> {
        use Known::*;
        Some(match (self, id) {
            (PageHeader, 1..=4) | (DataPage, 1..=4) | (DictionaryPage, 1..=2) => (I32, None),
            (DataPageV2, 1..=6) => (I32, None),
            (PageHeader, 5) => (STRUCT, Some(DataPage)),
            (PageHeader, 6) => (STRUCT, Some(IndexPage)),
            (PageHeader, 7) => (STRUCT, Some(DictionaryPage)),
            (PageHeader, 8) => (STRUCT, Some(DataPageV2)),
            (DataPage, 5) | (DataPageV2, 8) => (STRUCT, Some(Statistics)),
            (DictionaryPage, 3) | (DataPageV2, 7) | (Statistics, 7..=8) => (BOOL, None),
            (Statistics, 1 | 2 | 5 | 6) => (BINARY, None),
            (Statistics, 3 | 4 | 9) => (I64, None),
            _ => return None,
        })
    }
}

/// A bounded reader of the Thrift compact protocol that walks a page header as the decoder
/// reads it: every read checks the end of `buf`, and the values it visits are counted against
/// `budget`.
///
/// One quirk of the decoder is kept on purpose: it skips a boolean element of a collection
/// without consuming its byte, so the bytes after it are read as whatever follows. Walking the
/// same way keeps both readers on the same bytes, and the budget (one value per byte of the chunk
/// left, more than a valid header needs, since each of its values takes a byte) bounds what such
/// zero-byte elements could cost.
struct Compact<'a> {
    buf: &'a [u8],
    at: usize,
    budget: usize,
}

impl Compact<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.at
    }

    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        (n <= self.remaining()).then(|| self.at += n)
    }

    /// An unsigned LEB128 varint of at most 10 bytes.
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn zigzag(&mut self) -> Option<i64> {
        let n = self.varint()?;
        Some((n >> 1) as i64 ^ -((n & 1) as i64))
    }

    /// A `PageHeader`; returns its `compressed_page_size`, the size of the page body after it.
    fn page_header(&mut self) -> Option<i64> {
        let mut compressed = None;
        self.known(Known::PageHeader, MAX_DEPTH, &mut compressed)?;
        compressed
    }

    /// A struct the decoder reads field by field; `compressed` receives a `PageHeader`'s field 3.
    fn known(&mut self, kind: Known, depth: u8, compressed: &mut Option<i64>) -> Option<()> {
        let depth = depth.checked_sub(1)?;
        let mut id: i16 = 0;
        loop {
            let b = self.byte()?;
            let ty = b & 0x0f;
            if ty == 0 {
                return Some(());
            }
            id = match b >> 4 {
                // The decoder keeps the low 16 bits of a long-form field id.
                0 => self.zigzag()? as i16,
                delta => id.checked_add(i16::from(delta))?,
            };
            match kind.field(id) {
                None => self.value(ty, depth)?,
                Some((BOOL, _)) if matches!(ty, 1 | 2) => {}
                Some((STRUCT, Some(inner))) if ty == STRUCT => {
                    self.known(inner, depth, compressed)?;
                }
                Some((expected, None)) if ty == expected => {
                    if kind == Known::PageHeader && id == 3 {
                        *compressed = Some(self.zigzag()?);
                    } else {
                        self.value(ty, depth)?;
                    }
                }
                Some(_) => return None,
            }
        }
    }

    /// Skips one value of compact type `ty` as the decoder skips it (a boolean's value is in its
    /// type, in a struct field and, as the decoder reads it, in a collection too).
    fn value(&mut self, ty: u8, depth: u8) -> Option<()> {
        let depth = depth.checked_sub(1)?;
        self.budget = self.budget.checked_sub(1)?;
        match ty {
            1 | 2 => Some(()),
            3 => self.skip(1),
            4..=6 => self.varint().map(drop),
            7 => self.skip(8),
            8 => {
                let len = usize::try_from(self.varint()?).ok()?;
                self.skip(len)
            }
            9 | 10 => {
                let header = self.byte()?;
                let size = match header >> 4 {
                    15 => self.varint()?,
                    n => u64::from(n),
                };
                self.elements(size, &[header & 0x0f], depth)
            }
            11 => {
                let size = self.varint()?;
                if size == 0 {
                    return Some(());
                }
                let kv = self.byte()?;
                self.elements(size, &[kv >> 4, kv & 0x0f], depth)
            }
            12 => loop {
                let b = self.byte()?;
                let ty = b & 0x0f;
                if ty == 0 {
                    return Some(());
                }
                if b >> 4 == 0 {
                    self.zigzag()?;
                }
                self.value(ty, depth)?;
            },
            13 => self.skip(16),
            _ => None,
        }
    }

    /// `size` collection entries, each one value of every type in `types`. Every element of a
    /// valid header takes at least one byte, so a size larger than what is left is refused before
    /// any is read.
    fn elements(&mut self, size: u64, types: &[u8], depth: u8) -> Option<()> {
        let least = size.checked_mul(types.len() as u64)?;
        if least > self.remaining() as u64 {
            return None;
        }
        for _ in 0..size {
            for &ty in types {
                self.value(ty, depth)?;
            }
        }
        Some(())
    }
}

/// Refuses a dictionary page that declares more values than its bytes can hold. A dictionary is
/// PLAIN-encoded, so each value takes at least its physical size (a byte array its 4-byte length)
/// and `num_values` times that must fit in the page as decompressed. Only dictionary pages are
/// decoded here; data pages are skipped by their (already walked) headers.
fn check_dictionary_pages<R: ChunkReader + 'static>(
    reader: Arc<R>,
    metadata: &ParquetMetaData,
) -> Result<(), DataError> {
    let parquet_error = |e: parquet::errors::ParquetError| DataError::Parquet {
        message: e.to_string(),
    };
    for row_group in metadata.row_groups() {
        let rows = usize::try_from(row_group.num_rows()).unwrap_or(0);
        for chunk in row_group.columns() {
            let mut pages = SerializedPageReader::new(reader.clone(), chunk, rows, None)
                .map_err(parquet_error)?;
            while let Some(page) = pages.peek_next_page().map_err(parquet_error)? {
                if !page.is_dict {
                    pages.skip_next_page().map_err(parquet_error)?;
                    continue;
                }
                let Some(Page::DictionaryPage {
                    buf, num_values, ..
                }) = pages.get_next_page().map_err(parquet_error)?
                else {
                    continue;
                };
                let needed_bits = u64::from(num_values).saturating_mul(min_value_bits(chunk));
                if needed_bits > (buf.len() as u64).saturating_mul(8) {
                    return Err(malformed(
                        chunk,
                        format!(
                            "its dictionary page declares {num_values} values but holds only {} bytes",
                            buf.len()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The fewest bits one PLAIN-encoded value of the chunk's physical type takes.
fn min_value_bits(chunk: &ColumnChunkMetaData) -> u64 {
    match chunk.column_type() {
        PhysicalType::BOOLEAN => 1,
        PhysicalType::INT32 | PhysicalType::FLOAT | PhysicalType::BYTE_ARRAY => 32,
        PhysicalType::INT64 | PhysicalType::DOUBLE => 64,
        PhysicalType::INT96 => 96,
        PhysicalType::FIXED_LEN_BYTE_ARRAY => {
            (u64::try_from(chunk.column_descr().type_length()).unwrap_or(0) * 8).max(8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(bytes: &[u8]) -> Option<i64> {
        Compact {
            buf: bytes,
            at: 0,
            budget: bytes.len(),
        }
        .page_header()
    }

    /// type DICTIONARY_PAGE, uncompressed 12, compressed 12, then `extra`, then field 7 (the
    /// dictionary page header: 3 values, PLAIN) in long form and the end of the struct.
    fn with_extra_field(extra: &[u8]) -> Vec<u8> {
        let mut h = vec![0x15, 0x04, 0x15, 0x18, 0x15, 0x18];
        h.extend_from_slice(extra);
        h.extend_from_slice(&[0x0c, 0x0e, 0x15, 0x06, 0x15, 0x00, 0x00, 0x00]);
        h
    }

    #[test]
    fn a_well_formed_header_gives_the_page_size() {
        assert_eq!(header(&with_extra_field(&[])), Some(12));
        // Unknown fields are skipped: field 9 (binary, 3 bytes), field 10 (a list of two i32).
        let binary = [0x08, 0x12, 0x03, b'a', b'b', b'c'];
        assert_eq!(header(&with_extra_field(&binary)), Some(12));
        let list = [0x09, 0x14, 0x25, 0x02, 0x04];
        assert_eq!(header(&with_extra_field(&list)), Some(12));
    }

    #[test]
    fn collections_longer_than_the_input_are_refused_at_once() {
        // Field 9: a list declaring 2^31 - 1 doubles, or booleans, with no bytes behind them.
        for element in [0xf7, 0xf1] {
            let h = with_extra_field(&[0x09, 0x12, element, 0xff, 0xff, 0xff, 0xff, 0x07]);
            assert_eq!(header(&h), None);
        }
        // Field 9: a map declaring 2^31 entries of (i32, i32).
        let h = with_extra_field(&[0x0b, 0x12, 0x80, 0x80, 0x80, 0x80, 0x08, 0x55]);
        assert_eq!(header(&h), None);
        // Field 9: a list of 14 lists of 14 booleans. The decoder skips a boolean element without
        // reading a byte, so this takes 17 bytes but 211 steps: over the budget.
        let mut lists = vec![0x09, 0x12, 0xe9];
        lists.extend(std::iter::repeat_n(0xe1, 14));
        assert_eq!(header(&with_extra_field(&lists)), None);
    }

    #[test]
    fn a_known_field_of_the_wrong_type_is_refused() {
        // The decoder reads field 6 (the index page header) as a struct whatever its declared
        // type, so a byte there would put it on different bytes than a skip would.
        assert_eq!(header(&with_extra_field(&[0x03, 0x0c, 0x2c])), None);
        // Field 4 (the CRC) declared as binary.
        assert_eq!(header(&with_extra_field(&[0x08, 0x08, 0x00])), None);
        // A long-form id whose low 16 bits name field 3 is field 3 to the decoder.
        let aliased = [0x08, 0x86, 0x80, 0x08, 0x00];
        assert_eq!(header(&with_extra_field(&aliased)), None);
    }

    #[test]
    fn truncation_and_runaway_nesting_are_refused() {
        let h = with_extra_field(&[]);
        for cut in 0..h.len() {
            assert_eq!(header(&h[..cut]), None, "cut at {cut}");
        }
        // Field 9: a struct holding a struct holding ... 100 deep.
        let mut deep = vec![0x0c, 0x12];
        deep.extend(std::iter::repeat_n(0x1c, 99));
        deep.extend(std::iter::repeat_n(0x00, 100));
        assert_eq!(header(&with_extra_field(&deep)), None);
        // An unknown type nibble.
        assert_eq!(header(&with_extra_field(&[0x0e, 0x12])), None);
    }
}
