//! CSV ingest.
//!
//! Why this is more than `csv::Reader::deserialize`: user files are messy, and an error that says
//! "invalid data" is useless on a 10 000-line upload. We read raw [`csv::ByteRecord`]s with the
//! tokenizer in flexible mode and do every check ourselves, so each error names the 1-based
//! physical line where the record starts (counted from the record's byte offset, so multi-line
//! quoted fields, CRLF and blank lines are all accounted for), the column by name and position, and
//! the value. UTF-8 is validated per field for the same reason.
//!
//! Handled: a UTF-8 byte-order mark, CRLF line ends, quoted fields (with embedded delimiters,
//! quotes and newlines), blank lines (skipped by the tokenizer), any single-byte delimiter.
//! Cells are trimmed and missing-value tokens recognised as described in the `infer` module.
//!
//! Cells are kept as text in one buffer per column until the column's type is known, so reading
//! costs one pass over the bytes plus one parse per cell.

use std::collections::HashMap;

use aurum_core::{Column, Table};
use csv::ByteRecord;

use crate::error::{ColumnRef, Location};
use crate::infer::{self, RawColumn};
use crate::{CellFormat, ColumnFormats, DataError, ReadOptions};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a CSV file with a header line into a typed [`Table`].
///
/// Column types come from [`ReadOptions::overrides`], then [`ReadOptions::schema`], then
/// inference (see [`crate::categorical_limit`] and [`crate::MISSING_TOKENS`] for the rules).
///
/// # Errors
///
/// [`DataError::EmptyFile`], [`DataError::NoDataRows`], [`DataError::EmptyHeader`],
/// [`DataError::DuplicateHeader`], [`DataError::RaggedRow`], [`DataError::InvalidUtf8`],
/// [`DataError::BadValue`] (a value that does not parse as a forced type), and the option
/// errors [`DataError::UnknownColumn`], [`DataError::MissingColumn`],
/// [`DataError::UnexpectedColumn`]. Each names the line and column involved.
pub fn read_csv(bytes: &[u8], opts: &ReadOptions) -> Result<Table, DataError> {
    read_csv_with_formats(bytes, opts).map(|(table, _)| table)
}

/// [`read_csv`], also returning the [`CellFormat`] of each column whose values were spelled as
/// currency, percentages or non-ISO dates (or read with an explicit date format).
///
/// # Errors
///
/// Those of [`read_csv`].
pub fn read_csv_with_formats(
    bytes: &[u8],
    opts: &ReadOptions,
) -> Result<(Table, ColumnFormats), DataError> {
    let body = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::EmptyFile);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(opts.delimiter)
        .from_reader(body);
    let mut record = ByteRecord::new();

    if !read_record(&mut reader, &mut record)? {
        return Err(DataError::EmptyFile);
    }
    let mut lines_seen = LineCounter::new(body);
    let header_line = lines_seen.line_of(&record);
    let names = header_names(&record, header_line)?;
    let forced = opts.forced_types(&names)?;

    let mut columns: Vec<RawColumn> = names
        .iter()
        .map(|_| RawColumn::with_capacity(body.len() / 64 / names.len().max(1)))
        .collect();
    let mut lines: Vec<u64> = Vec::new();
    while read_record(&mut reader, &mut record)? {
        let line = lines_seen.line_of(&record);
        if record.len() != names.len() {
            return Err(DataError::RaggedRow {
                line,
                expected: names.len(),
                got: record.len(),
            });
        }
        for (i, (field, column)) in record.iter().zip(&mut columns).enumerate() {
            let text = std::str::from_utf8(field).map_err(|e| DataError::InvalidUtf8 {
                line,
                column: ColumnRef::new(&names[i], i),
                byte_offset: e.valid_up_to(),
            })?;
            column.push(Some(text.trim()));
        }
        lines.push(line);
    }
    if lines.is_empty() {
        return Err(DataError::NoDataRows);
    }

    let mut out = Vec::with_capacity(names.len());
    let mut formats = ColumnFormats::new();
    for (i, ((name, raw), forced)) in names.into_iter().zip(&columns).zip(forced).enumerate() {
        let date_format = opts.date_format(&name);
        let (ty, format) = match forced {
            Some(ty) => (ty, None),
            None => infer::infer(raw),
        };
        let format = match date_format {
            Some(pattern) => Some(CellFormat::Date {
                pattern: pattern.to_string(),
            }),
            None => format,
        };
        if let Some(format) = format {
            formats.insert(name.clone(), format);
        }
        let data =
            infer::convert(raw, ty, date_format).map_err(|(row, value)| DataError::BadValue {
                location: Location::Line(lines[row]),
                column: ColumnRef::new(&name, i),
                value: infer::excerpt(&value),
                expected: ty,
            })?;
        out.push(Column { name, data });
    }
    let table = Table::new(out).map_err(|e| DataError::Internal {
        message: e.to_string(),
    })?;
    Ok((table, formats))
}

/// Reads the next record; `false` at the end of the input.
fn read_record(
    reader: &mut csv::Reader<&[u8]>,
    record: &mut ByteRecord,
) -> Result<bool, DataError> {
    reader.read_byte_record(record).map_err(|e| DataError::Csv {
        line: e
            .position()
            .map_or(reader.position().line(), csv::Position::line),
        message: e.to_string(),
    })
}

/// 1-based line numbers of records, counted from byte offsets.
///
/// The tokenizer's own line counter is off by one after a CRLF or a blank line (the record's
/// recorded start is the previous terminator), so we skip terminator bytes from the recorded start
/// and count `\n`s ourselves, incrementally, which keeps the whole pass linear.
struct LineCounter<'a> {
    body: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(body: &'a [u8]) -> Self {
        Self {
            body,
            offset: 0,
            line: 1,
        }
    }

    fn line_of(&mut self, record: &ByteRecord) -> u64 {
        let recorded = record.position().map_or(self.offset, |p| p.byte() as usize);
        let mut start = recorded.clamp(self.offset, self.body.len());
        while start < self.body.len() && matches!(self.body[start], b'\r' | b'\n') {
            start += 1;
        }
        self.line += self.body[self.offset..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        self.offset = start;
        self.line
    }
}

/// Decodes and checks the header: UTF-8, non-empty, unique (names are trimmed).
fn header_names(record: &ByteRecord, line: u64) -> Result<Vec<String>, DataError> {
    let mut names = Vec::with_capacity(record.len());
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(record.len());
    for (i, field) in record.iter().enumerate() {
        let name = std::str::from_utf8(field)
            .map_err(|e| DataError::InvalidUtf8 {
                line,
                column: ColumnRef::unnamed(i),
                byte_offset: e.valid_up_to(),
            })?
            .trim();
        if name.is_empty() {
            return Err(DataError::EmptyHeader {
                line: Some(line),
                position: i + 1,
            });
        }
        if let Some(first) = seen.insert(name, i) {
            return Err(DataError::DuplicateHeader {
                line: Some(line),
                name: name.to_string(),
                first: first + 1,
                second: i + 1,
            });
        }
        names.push(name.to_string());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use aurum_core::{ColumnData, ColumnType};

    use super::*;

    fn read(s: &str) -> Result<Table, DataError> {
        read_csv(s.as_bytes(), &ReadOptions::default())
    }

    #[test]
    fn bom_crlf_and_quotes() {
        let t = read("\u{feff}id,name,score\r\n1,\"Smith, J\",2.5\r\n2,\"say \"\"hi\"\"\",NA\r\n")
            .unwrap();
        assert_eq!(
            t.schema().names().collect::<Vec<_>>(),
            ["id", "name", "score"]
        );
        assert_eq!(
            t.column("id").unwrap().data,
            ColumnData::Integer(vec![Some(1), Some(2)])
        );
        assert_eq!(
            t.column("name").unwrap().data,
            ColumnData::Categorical(vec![Some("Smith, J".into()), Some("say \"hi\"".into())])
        );
        assert_eq!(
            t.column("score").unwrap().data,
            ColumnData::Float(vec![Some(2.5), None])
        );
    }

    #[test]
    fn other_delimiter() {
        let opts = ReadOptions {
            delimiter: b';',
            ..ReadOptions::default()
        };
        let t = read_csv(b"a;b\n1,5;x\n", &opts).unwrap();
        assert_eq!(t.n_cols(), 2);
        assert_eq!(
            t.column("a").unwrap().data.column_type(),
            ColumnType::Categorical
        );
    }

    #[test]
    fn lines_count_crlf_and_blank_lines() {
        let err = read("a,b\r\n\r\n1,2\r\n3\r\n").unwrap_err();
        assert_eq!(
            err,
            DataError::RaggedRow {
                line: 4,
                expected: 2,
                got: 1
            }
        );
    }

    #[test]
    fn lines_count_multiline_fields() {
        let err = read("a,b\n1,\"two\nlines\"\n3\n").unwrap_err();
        assert_eq!(
            err,
            DataError::RaggedRow {
                line: 4,
                expected: 2,
                got: 1
            }
        );
    }

    #[test]
    fn blank_lines_are_skipped() {
        let t = read("a\n1\n\n2\n").unwrap();
        assert_eq!(t.n_rows(), 2);
    }
}
