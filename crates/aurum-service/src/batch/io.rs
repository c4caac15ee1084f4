//! Streaming readers and writers for batch scoring: CSV, Parquet and JSON Lines in, the same out.
//!
//! Readers hand out chunks of text cells, already projected to the columns the run needs (the
//! model's features, then the kept columns), so that every format reaches the model through the
//! one cell parser, `aurum_data::parse_field_cell`, exactly as a `/v1` string cell or a training
//! file cell does. Parquet values that are not strings are rendered as text first (arrow's
//! display: shortest round-trip floats, so a float reads back bit for bit); JSON numbers and
//! booleans are their JSON text.
//!
//! Nothing here holds more than one chunk: memory depends on the chunk size, not the file size.

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field as ArrowField, Schema as ArrowSchema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::ArrowWriter;
use sha2::{Digest, Sha256};

use crate::ServiceError;

/// A file format of batch input and output, chosen by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Parquet,
    JsonLines,
}

impl FileFormat {
    /// `.csv`, `.parquet` (or `.pq`), `.jsonl` (or `.ndjson`).
    pub fn from_path(path: &std::path::Path) -> Result<Self, ServiceError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        Self::from_name(ext.as_deref().unwrap_or("")).ok_or_else(|| {
            ServiceError::invalid(
                "unknown_file_format",
                None,
                format!(
                    "{}: the extension must be .csv, .parquet or .jsonl",
                    path.display()
                ),
            )
        })
    }

    /// The format of an extension or name: `csv`, `parquet`/`pq`, `jsonl`/`ndjson`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "csv" => Some(FileFormat::Csv),
            "parquet" | "pq" => Some(FileFormat::Parquet),
            "jsonl" | "ndjson" => Some(FileFormat::JsonLines),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Parquet => "parquet",
            FileFormat::JsonLines => "jsonl",
        }
    }
}

/// One input row: where it is (the 1-based physical line for CSV and JSON Lines, the 1-based row
/// for Parquet) and its cells in the run's column order. `None` is a column the row does not
/// have (a short CSV record, a JSON key that is absent); a missing *value* is `Some("")`.
#[derive(Debug)]
pub(crate) struct RawRow {
    pub line: u64,
    pub cells: Vec<Option<String>>,
}

/// A row that could not be read at all (a broken JSON line, invalid UTF-8).
#[derive(Debug)]
pub(crate) struct BadLine {
    pub line: u64,
    pub code: &'static str,
    pub message: String,
}

pub(crate) enum Item {
    Row(RawRow),
    Bad(BadLine),
}

fn io_error(what: &str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::invalid("unreadable_input", None, format!("{what}: {e}"))
}

/// A streaming reader of one input.
pub(crate) enum Reader {
    Csv {
        reader: csv::Reader<Tap>,
        /// Input column of each wanted column, `None` when the header lacks it.
        index: Vec<Option<usize>>,
        record: csv::ByteRecord,
        lines: LineCounter,
        /// Fields in the header: a line with another count is refused as `ragged_row`.
        width: usize,
    },
    Parquet {
        batches: aurum_data::ParquetBatches,
        index: Vec<Option<usize>>,
        row: u64,
        pending: std::collections::VecDeque<Item>,
    },
    JsonLines {
        lines: Box<dyn BufRead + Send>,
        wanted: Vec<String>,
        line: u64,
        buf: String,
    },
}

/// Where each wanted column sits among `names`.
fn project(names: &[String], wanted: &[String]) -> Vec<Option<usize>> {
    let by_name: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.trim(), i))
        .collect();
    wanted
        .iter()
        .map(|w| by_name.get(w.as_str()).copied())
        .collect()
}

/// The input's column names, when the format has a header (CSV, Parquet).
pub(crate) enum Header {
    Columns(Vec<String>),
    PerLine,
}

impl Reader {
    pub fn csv(
        input: Box<dyn Read + Send>,
        wanted: &[String],
    ) -> Result<(Self, Header), ServiceError> {
        let window = Arc::new(std::sync::Mutex::new(Window::default()));
        let mut lines = LineCounter {
            window: window.clone(),
            offset: 0,
            line: 1,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(Tap {
                inner: input,
                window,
            });
        let mut record = csv::ByteRecord::new();
        if !reader
            .read_byte_record(&mut record)
            .map_err(|e| io_error("cannot read the CSV header", e))?
        {
            return Err(ServiceError::invalid(
                "empty_file",
                None,
                "the input file is empty",
            ));
        }
        let header_line = lines.line_of(&record);
        let names: Vec<String> = record
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let f = if i == 0 {
                    f.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(f)
                } else {
                    f
                };
                String::from_utf8_lossy(f).trim().to_string()
            })
            .collect();
        // The header rules of dataset import (no empty or repeated names): a repeated name
        // would otherwise be read from its last column.
        aurum_data::check_column_names(&names, Some(header_line))?;
        let index = project(&names, wanted);
        Ok((
            Reader::Csv {
                reader,
                index,
                record,
                lines,
                width: names.len(),
            },
            Header::Columns(names),
        ))
    }

    /// `features`: the first so many `wanted` columns are the model's inputs, which must have a
    /// type dataset import reads (the others are kept as text).
    pub fn parquet<T: parquet::file::reader::ChunkReader + 'static>(
        input: T,
        wanted: &[String],
        features: usize,
        batch_rows: usize,
    ) -> Result<(Self, Header), ServiceError> {
        // aurum-data's reader: the page checks, header rules and array validation of dataset
        // imports.
        let batches = aurum_data::ParquetBatches::open(input, batch_rows).map_err(|e| match e {
            e @ (aurum_data::DataError::DuplicateHeader { .. }
            | aurum_data::DataError::EmptyHeader { .. }) => ServiceError::from(e),
            e => io_error("cannot read the Parquet file", e),
        })?;
        let names = batches.names().to_vec();
        let index = project(&names, wanted);
        for i in index.iter().take(features).flatten() {
            batches.check_supported(*i)?;
        }
        Ok((
            Reader::Parquet {
                batches,
                index,
                row: 0,
                pending: Default::default(),
            },
            Header::Columns(names),
        ))
    }

    pub fn json_lines(input: Box<dyn BufRead + Send>, wanted: &[String]) -> (Self, Header) {
        (
            Reader::JsonLines {
                lines: input,
                wanted: wanted.to_vec(),
                line: 0,
                buf: String::new(),
            },
            Header::PerLine,
        )
    }

    /// The next item, `None` at the end of the input.
    pub fn next(&mut self) -> Result<Option<Item>, ServiceError> {
        match self {
            Reader::Csv {
                reader,
                index,
                record,
                lines,
                width,
            } => {
                if !reader
                    .read_byte_record(record)
                    .map_err(|e| io_error("cannot read the CSV file", e))?
                {
                    return Ok(None);
                }
                let line = lines.line_of(record);
                if record.len() != *width {
                    return Ok(Some(Item::Bad(BadLine {
                        line,
                        code: "ragged_row",
                        message: format!(
                            "the line has {} fields but the header has {width}",
                            record.len()
                        ),
                    })));
                }
                let mut cells = Vec::with_capacity(index.len());
                for i in index.iter() {
                    let cell = match i.and_then(|i| record.get(i)) {
                        None => None,
                        Some(bytes) => match std::str::from_utf8(bytes) {
                            Ok(s) => Some(s.to_string()),
                            Err(_) => {
                                return Ok(Some(Item::Bad(BadLine {
                                    line,
                                    code: "invalid_utf8",
                                    message: "the line is not valid UTF-8".into(),
                                })));
                            }
                        },
                    };
                    cells.push(cell);
                }
                Ok(Some(Item::Row(RawRow { line, cells })))
            }
            Reader::Parquet {
                batches,
                index,
                row,
                pending,
            } => {
                if let Some(item) = pending.pop_front() {
                    return Ok(Some(item));
                }
                let Some(batch) = batches.next() else {
                    return Ok(None);
                };
                let batch = batch.map_err(|e| io_error("cannot read the Parquet file", e))?;
                let options = FormatOptions::default().with_null("");
                let columns: Vec<Option<(ArrayRef, bool)>> = index
                    .iter()
                    .map(|i| {
                        i.map(|i| {
                            let a = batch.column(i).clone();
                            let is_str = matches!(
                                a.data_type(),
                                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                            );
                            (a, is_str)
                        })
                    })
                    .collect();
                let formatters: Vec<Option<ArrayFormatter>> = columns
                    .iter()
                    .map(|c| {
                        c.as_ref()
                            .map(|(a, _)| ArrayFormatter::try_new(a.as_ref(), &options))
                            .transpose()
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|e| io_error("cannot read the Parquet file", e))?;
                for r in 0..batch.num_rows() {
                    *row += 1;
                    let cells = formatters
                        .iter()
                        .map(|f| f.as_ref().map(|f| f.value(r).to_string()))
                        .collect();
                    pending.push_back(Item::Row(RawRow { line: *row, cells }));
                }
                Ok(pending.pop_front())
            }
            Reader::JsonLines {
                lines,
                wanted,
                line,
                buf,
            } => loop {
                buf.clear();
                let n = lines
                    .read_line(buf)
                    .map_err(|e| io_error("cannot read the JSON Lines file", e))?;
                if n == 0 {
                    return Ok(None);
                }
                *line += 1;
                if buf.trim().is_empty() {
                    continue;
                }
                // Strictly, as a request body: a repeated key refuses the line (the last one
                // would be scored, while REST refuses the same record).
                let obj = match aurum_data::json::parse_strict(buf.as_bytes()) {
                    Ok(serde_json::Value::Object(o)) => o,
                    Ok(_) => {
                        return Ok(Some(Item::Bad(BadLine {
                            line: *line,
                            code: "invalid_type",
                            message: "the line must be a JSON object of column values".into(),
                        })));
                    }
                    Err(aurum_data::json::StrictError::DuplicateKey(path)) => {
                        return Ok(Some(Item::Bad(BadLine {
                            line: *line,
                            code: "duplicate_key",
                            message: format!(
                                "`{path}` appears more than once in the same object; send each key once"
                            ),
                        })));
                    }
                    Err(aurum_data::json::StrictError::Syntax(e)) => {
                        return Ok(Some(Item::Bad(BadLine {
                            line: *line,
                            code: "malformed_json",
                            message: format!("the line is not valid JSON: {e}"),
                        })));
                    }
                };
                let mut cells = Vec::with_capacity(wanted.len());
                for w in wanted.iter() {
                    cells.push(match obj.get(w) {
                        None => None,
                        Some(serde_json::Value::Null) => Some(String::new()),
                        Some(serde_json::Value::String(s)) => Some(s.clone()),
                        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                        Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
                        Some(other) => {
                            return Ok(Some(Item::Bad(BadLine {
                                line: *line,
                                code: "invalid_type",
                                message: format!(
                                    "`{w}` must be a number, string, boolean or null, got {}",
                                    if other.is_array() {
                                        "an array"
                                    } else {
                                        "an object"
                                    }
                                ),
                            })));
                        }
                    });
                }
                return Ok(Some(Item::Row(RawRow { line: *line, cells })));
            },
        }
    }
}

/// The bytes the CSV tokenizer has read and the line counter has not yet passed.
#[derive(Default)]
pub(crate) struct Window {
    /// Absolute offset of `bytes[0]`.
    start: u64,
    bytes: std::collections::VecDeque<u8>,
}

/// The CSV input, keeping what it hands the tokenizer in the [`Window`] until the line counter
/// has passed it: at most the tokenizer's buffer and one record, whatever the file size.
pub(crate) struct Tap {
    inner: Box<dyn Read + Send>,
    window: Arc<std::sync::Mutex<Window>>,
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.window
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .bytes
            .extend(&buf[..n]);
        Ok(n)
    }
}

/// 1-based line numbers of CSV records, counted from byte offsets as aurum-data's reader
/// counts them: the tokenizer's own line numbers are off by one after a CRLF or a blank line
/// (a record's recorded start is the previous terminator), so terminator bytes are skipped from
/// the recorded start and `\n`s counted, incrementally.
pub(crate) struct LineCounter {
    window: Arc<std::sync::Mutex<Window>>,
    offset: u64,
    line: u64,
}

impl LineCounter {
    fn line_of(&mut self, record: &csv::ByteRecord) -> u64 {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let recorded = record.position().map_or(self.offset, |p| p.byte());
        let end = w.start + w.bytes.len() as u64;
        let mut start = recorded.clamp(self.offset, end);
        while start < end && matches!(w.bytes[(start - w.start) as usize], b'\r' | b'\n') {
            start += 1;
        }
        let from = (self.offset - w.start) as usize;
        let to = (start - w.start) as usize;
        self.line += w.bytes.range(from..to).filter(|&&b| b == b'\n').count() as u64;
        w.bytes.drain(..to);
        w.start = start;
        self.offset = start;
        self.line
    }
}

/// Counts and hashes the bytes written through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Flushes and returns the inner writer, the SHA-256 (hex) and length of what was written.
    pub fn finish(mut self) -> std::io::Result<(W, String, u64)> {
        self.inner.flush()?;
        Ok((self.inner, hex::encode(self.hasher.finalize()), self.bytes))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// One scored row as the output writes it.
pub(crate) struct OutRow {
    pub kept: Vec<Option<String>>,
    pub probability: f64,
    pub label: String,
    pub score: Option<f64>,
    pub decision: &'static str,
    /// Reason codes, most adverse first.
    pub reasons: Vec<String>,
    /// `{feature: contribution}` in the explanation's order, with `--explain`.
    pub contributions: Option<Vec<(String, f64)>>,
}

/// The output columns: the kept columns, then these.
pub(crate) const SCORE_COLUMNS: [&str; 5] =
    ["probability", "label", "score", "decision", "reasons"];

fn contributions_json(c: &[(String, f64)]) -> serde_json::Value {
    serde_json::Value::Object(
        c.iter()
            .map(|(f, v)| (f.clone(), serde_json::json!(v)))
            .collect(),
    )
}

type Sink = HashingWriter<Box<dyn Write + Send>>;

/// A streaming writer of the scored rows.
pub(crate) enum Writer {
    Csv(Box<csv::Writer<Sink>>),
    JsonLines(std::io::BufWriter<Sink>),
    Parquet {
        writer: Box<ArrowWriter<Sink>>,
        schema: Arc<ArrowSchema>,
    },
}

pub(crate) struct OutputLayout {
    pub kept: Vec<String>,
    pub explain: bool,
}

impl OutputLayout {
    fn columns(&self) -> Vec<String> {
        let mut c: Vec<String> = self.kept.clone();
        c.extend(SCORE_COLUMNS.iter().map(|s| s.to_string()));
        if self.explain {
            c.push("contributions".into());
        }
        c
    }
}

fn write_error(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(format!("cannot write the output: {e}"))
}

impl Writer {
    pub fn new(
        format: FileFormat,
        out: Box<dyn Write + Send>,
        layout: &OutputLayout,
    ) -> Result<Self, ServiceError> {
        let sink = HashingWriter::new(out);
        Ok(match format {
            FileFormat::Csv => {
                let mut w = csv::Writer::from_writer(sink);
                w.write_record(layout.columns()).map_err(write_error)?;
                Writer::Csv(Box::new(w))
            }
            FileFormat::JsonLines => Writer::JsonLines(std::io::BufWriter::new(sink)),
            FileFormat::Parquet => {
                let fields: Vec<ArrowField> = layout
                    .columns()
                    .into_iter()
                    .map(|name| {
                        let ty = match name.as_str() {
                            "probability" | "score" if !layout.kept.contains(&name) => {
                                DataType::Float64
                            }
                            _ => DataType::Utf8,
                        };
                        ArrowField::new(name, ty, true)
                    })
                    .collect();
                let schema = Arc::new(ArrowSchema::new(fields));
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .build();
                let writer =
                    ArrowWriter::try_new(sink, schema.clone(), Some(props)).map_err(write_error)?;
                Writer::Parquet {
                    writer: Box::new(writer),
                    schema,
                }
            }
        })
    }

    pub fn write(&mut self, layout: &OutputLayout, rows: &[OutRow]) -> Result<(), ServiceError> {
        match self {
            Writer::Csv(w) => {
                let mut record: Vec<String> = Vec::new();
                for r in rows {
                    record.clear();
                    record.extend(r.kept.iter().map(|c| c.clone().unwrap_or_default()));
                    record.push(r.probability.to_string());
                    record.push(r.label.clone());
                    record.push(r.score.map(|s| s.to_string()).unwrap_or_default());
                    record.push(r.decision.to_string());
                    record.push(r.reasons.join(";"));
                    if layout.explain {
                        record.push(
                            r.contributions
                                .as_deref()
                                .map(|c| contributions_json(c).to_string())
                                .unwrap_or_default(),
                        );
                    }
                    w.write_record(&record).map_err(write_error)?;
                }
            }
            Writer::JsonLines(w) => {
                for r in rows {
                    let mut o = serde_json::Map::new();
                    for (name, v) in layout.kept.iter().zip(&r.kept) {
                        o.insert(name.clone(), v.clone().into());
                    }
                    o.insert("probability".into(), serde_json::json!(r.probability));
                    o.insert("label".into(), r.label.clone().into());
                    o.insert("score".into(), serde_json::json!(r.score));
                    o.insert("decision".into(), r.decision.into());
                    o.insert("reasons".into(), serde_json::json!(r.reasons));
                    if layout.explain {
                        o.insert(
                            "contributions".into(),
                            r.contributions
                                .as_deref()
                                .map(contributions_json)
                                .unwrap_or_default(),
                        );
                    }
                    serde_json::to_writer(&mut *w, &o).map_err(write_error)?;
                    w.write_all(b"\n").map_err(write_error)?;
                }
            }
            Writer::Parquet { writer, schema } => {
                if rows.is_empty() {
                    return Ok(());
                }
                let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
                for k in 0..layout.kept.len() {
                    let mut b = StringBuilder::new();
                    for r in rows {
                        b.append_option(r.kept[k].as_deref());
                    }
                    columns.push(Arc::new(b.finish()));
                }
                let mut p = Float64Builder::with_capacity(rows.len());
                let mut label = StringBuilder::new();
                let mut score = Float64Builder::with_capacity(rows.len());
                let mut decision = StringBuilder::new();
                let mut reasons = StringBuilder::new();
                let mut contrib = StringBuilder::new();
                for r in rows {
                    p.append_value(r.probability);
                    label.append_value(&r.label);
                    score.append_option(r.score);
                    decision.append_value(r.decision);
                    reasons.append_value(r.reasons.join(";"));
                    if layout.explain {
                        contrib.append_option(
                            r.contributions
                                .as_deref()
                                .map(|c| contributions_json(c).to_string()),
                        );
                    }
                }
                columns.push(Arc::new(p.finish()));
                columns.push(Arc::new(label.finish()));
                columns.push(Arc::new(score.finish()));
                columns.push(Arc::new(decision.finish()));
                columns.push(Arc::new(reasons.finish()));
                if layout.explain {
                    columns.push(Arc::new(contrib.finish()));
                }
                let batch = RecordBatch::try_new(schema.clone(), columns).map_err(write_error)?;
                writer.write(&batch).map_err(write_error)?;
            }
        }
        Ok(())
    }

    /// Finishes the file; returns its SHA-256 (hex) and size.
    pub fn finish(self) -> Result<(String, u64), ServiceError> {
        let sink = match self {
            Writer::Csv(w) => w.into_inner().map_err(|e| write_error(e.error()))?,
            Writer::JsonLines(w) => w.into_inner().map_err(|e| write_error(e.error()))?,
            Writer::Parquet { writer, .. } => (*writer).into_inner().map_err(write_error)?,
        };
        let (_, sha, len) = sink.finish().map_err(write_error)?;
        Ok((sha, len))
    }
}

/// The error file: one line per refused row (`line,column,code,message`), CSV or JSON Lines.
pub(crate) enum ErrorWriter {
    Csv(Box<csv::Writer<Sink>>),
    JsonLines(std::io::BufWriter<Sink>),
}

impl ErrorWriter {
    pub fn new(format: FileFormat, out: Box<dyn Write + Send>) -> Result<Self, ServiceError> {
        let sink = HashingWriter::new(out);
        match format {
            FileFormat::Csv => {
                let mut w = csv::Writer::from_writer(sink);
                w.write_record(["line", "column", "code", "message"])
                    .map_err(write_error)?;
                Ok(ErrorWriter::Csv(Box::new(w)))
            }
            FileFormat::JsonLines => Ok(ErrorWriter::JsonLines(std::io::BufWriter::new(sink))),
            FileFormat::Parquet => Err(ServiceError::invalid(
                "unknown_file_format",
                Some("errors"),
                "the error file must be .csv or .jsonl",
            )),
        }
    }

    pub fn write(&mut self, e: &super::RowError) -> Result<(), ServiceError> {
        match self {
            ErrorWriter::Csv(w) => w
                .write_record([
                    e.line.to_string().as_str(),
                    e.column.as_deref().unwrap_or(""),
                    e.code,
                    e.message.as_str(),
                ])
                .map_err(write_error),
            ErrorWriter::JsonLines(w) => {
                serde_json::to_writer(
                    &mut *w,
                    &serde_json::json!({"line": e.line, "column": e.column, "code": e.code, "message": e.message}),
                )
                .map_err(write_error)?;
                w.write_all(b"\n").map_err(write_error)
            }
        }
    }

    pub fn finish(self) -> Result<(String, u64), ServiceError> {
        let sink = match self {
            ErrorWriter::Csv(w) => w.into_inner().map_err(|e| write_error(e.error()))?,
            ErrorWriter::JsonLines(w) => w.into_inner().map_err(|e| write_error(e.error()))?,
        };
        let (_, sha, len) = sink.finish().map_err(write_error)?;
        Ok((sha, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Physical lines of each record through CRLF, blank lines and a quoted field over two lines.
    #[test]
    fn csv_lines_are_physical_lines() {
        let text = "a,b\r\n1,2\r\n\r\n3,\"x\r\ny\"\r\n\n4,5\n6,7";
        let (mut r, _) = Reader::csv(
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            &["a".to_string()],
        )
        .unwrap();
        let mut lines = Vec::new();
        while let Some(item) = r.next().unwrap() {
            match item {
                Item::Row(row) => lines.push(row.line),
                Item::Bad(b) => panic!("{b:?}"),
            }
        }
        assert_eq!(lines, [2, 4, 7, 8]);
    }
}
