//! Batch scoring: a whole file (or an imported dataset) through a model, row by row, streamed.
//!
//! Why a separate path from [`Platform::predict`] and not a loop of predict calls: a predict call
//! is all or nothing (one bad record fails the request) and writes one audit record holding every
//! row's output, which is right for a request and wrong for a 10-million-row file. Here a row
//! that cannot be scored is *refused* (written to the error file with its line, column and code)
//! and the run goes on, unless `strict`. What is shared is everything that decides a number:
//! cells are parsed by `aurum_data::parse_field_cell` against the version's manifest input
//! schema (the parser behind `/v1` string cells, OIP BYTES and training files), and rows are
//! scored by the service's one scoring function (`predict::score`, `FittedModel::assess` per
//! row), so a row gets the probability, decision and reasons REST gives it, bit for bit.
//!
//! **Streaming.** The reader hands out chunks of [`BatchOptions::chunk_rows`] rows; each chunk
//! is parsed and scored on the rayon pool in parts, in parallel, and written in input order
//! before the next is read. Memory depends on the chunk size, not the file size.
//!
//! **Audit.** One `batch_prediction` record per run (a CLI call or an API job), whatever its
//! outcome, with the row counts, the SHA-256 of the source, output and error files, and as
//! `input_sha256` the batch input hash: the SHA-256 of the newline-terminated hex
//! [`crate::input_sha256`] of each scored row on its own, in input order. Each of those per-row
//! hashes is the hash a one-record `/v1` request for that applicant records, so a row of the
//! batch can be matched against a REST decision. With [`BatchOptions::audit_rows`] the rows are
//! also scored through [`Platform::predict`] itself, in parts, so every row has a `prediction`
//! record exactly as on REST (same details, same durability), at the cost of one audit append per
//! part.

mod io;
mod job;

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use aurum_core::{CancelToken, ColumnType, Schema, Value};
use aurum_registry::audit::AuditEntry;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

pub use io::FileFormat;
pub use job::{BATCH_JOB_KIND, BatchJob, BatchJobRequest};

use crate::platform::join_error;
use crate::predict::score;
use crate::{CallContext, LoadedModel, Platform, PredictOptions, RecordOutput, ServiceError};
use io::{ErrorWriter, Header, Item, OutRow, OutputLayout, RawRow, Reader, Writer};

/// Rows per part scored on one rayon task.
const PART_ROWS: usize = 256;

/// How a batch run reads, scores and records.
#[derive(Clone, Debug)]
pub struct BatchOptions {
    /// Add each row's per-feature contributions (`contributions`) to the output.
    pub explain: bool,
    /// Input columns copied to the output, before the scores (ids). Need not be features.
    pub keep: Vec<String>,
    /// Stop at the first row that cannot be scored.
    pub strict: bool,
    /// Rows read, scored and written at a time (memory is proportional to it).
    pub chunk_rows: usize,
    /// Also write a `prediction` audit record per part of up to 256 rows, through
    /// [`Platform::predict`], as REST would.
    pub audit_rows: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            explain: false,
            keep: Vec::new(),
            strict: false,
            chunk_rows: 8192,
            audit_rows: false,
        }
    }
}

/// A row that was not scored.
#[derive(Clone, Debug, PartialEq)]
pub struct RowError {
    /// 1-based physical line (CSV, JSON Lines; the header is line 1 in CSV) or row (Parquet).
    pub line: u64,
    /// The column at fault, when there is one.
    pub column: Option<String>,
    /// A stable code: `missing_feature`, `invalid_type`, `non_finite_number`, `malformed_json`,
    /// `invalid_utf8`, `ragged_row` (a CSV line with more or fewer fields than the header), or
    /// the model's own code for a row it refuses.
    pub code: &'static str,
    pub message: String,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchEnd {
    /// Every row was read.
    Completed,
    /// `strict` and a row could not be scored: the run stopped there.
    StoppedAtError,
    /// The cancel token fired.
    Cancelled,
}

impl BatchEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchEnd::Completed => "completed",
            BatchEnd::StoppedAtError => "stopped_at_error",
            BatchEnd::Cancelled => "cancelled",
        }
    }
}

/// What a batch run did.
#[derive(Clone, Debug)]
pub struct BatchSummary {
    pub model: String,
    pub version: u32,
    pub threshold: f64,
    pub end: BatchEnd,
    pub rows_read: u64,
    pub rows_scored: u64,
    pub rows_refused: u64,
    /// The first refused row, if any.
    pub first_error: Option<RowError>,
    /// The batch input hash (see the module docs).
    pub input_sha256: String,
    pub source_sha256: String,
    pub output_sha256: String,
    pub output_bytes: u64,
    pub errors_sha256: String,
    /// The `batch_prediction` audit record (`None` with `audit.durability = "buffered"`).
    pub audit_seq: Option<u64>,
    pub elapsed_ms: u64,
}

/// Told after every chunk.
pub trait BatchProgress: Send + Sync {
    fn rows(&self, read: u64, scored: u64, refused: u64);
}

/// A [`BatchProgress`] that ignores everything.
pub struct NoProgress;

impl BatchProgress for NoProgress {
    fn rows(&self, _: u64, _: u64, _: u64) {}
}

/// Where the scored rows and the refused rows go.
pub struct BatchSinks {
    pub output: Box<dyn std::io::Write + Send>,
    pub output_format: FileFormat,
    pub errors: Box<dyn std::io::Write + Send>,
    pub errors_format: FileFormat,
}

/// What to read.
pub enum BatchSource {
    /// A file, by extension.
    File(std::path::PathBuf),
    /// Bytes already in memory (an imported dataset).
    Bytes(Vec<u8>, FileFormat),
}

/// What a wanted column is for: the first `features` are the model's input schema in order, the
/// rest the kept columns.
struct Plan {
    schema: Schema,
    keep: Vec<String>,
    /// The input hash against `schema`, its prefixes built once for the job.
    hasher: crate::InputHasher,
}

impl Plan {
    fn wanted(&self) -> Vec<String> {
        self.schema
            .fields
            .iter()
            .map(|f| f.name.clone())
            .chain(self.keep.iter().cloned())
            .collect()
    }
}

fn expected(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Float => "a number",
        ColumnType::Integer => "an integer",
        ColumnType::Boolean => "a boolean",
        ColumnType::Categorical | ColumnType::Text => "a string",
        ColumnType::Date => "a date (2024-02-28, 28-Feb-24, 28-Feb-2024 or 02/28/2024)",
        ColumnType::DateTime => "an RFC 3339 date-time",
    }
}

/// The typed row of `raw`, parsed with the one cell parser against the input schema.
fn decode(schema: &Schema, raw: &RawRow) -> Result<Vec<Value>, RowError> {
    let mut row = Vec::with_capacity(schema.fields.len());
    for (f, cell) in schema.fields.iter().zip(&raw.cells) {
        let err = |code, message| RowError {
            line: raw.line,
            column: Some(f.name.clone()),
            code,
            message,
        };
        let Some(text) = cell else {
            return Err(err(
                "missing_feature",
                format!(
                    "`{}` is missing (leave the cell empty for an unknown value)",
                    f.name
                ),
            ));
        };
        match aurum_data::parse_field_cell(text, f) {
            Ok(v) => row.push(v),
            Err(aurum_data::CellError::NonFinite) => {
                return Err(err(
                    "non_finite_number",
                    format!("`{}` must be a finite number, got {text:?}", f.name),
                ));
            }
            Err(aurum_data::CellError::Invalid { .. }) => {
                let want = match &f.format {
                    Some(format) => format!("a date in the format `{format}`"),
                    None => expected(f.ty).to_string(),
                };
                return Err(err(
                    "invalid_type",
                    format!("`{}` must be {want}, got {text:?}", f.name),
                ));
            }
        }
    }
    Ok(row)
}

enum Processed {
    Scored { row_hash: String, out: OutRow },
    Refused(RowError),
}

fn out_row(r: RecordOutput, kept: Vec<Option<String>>) -> OutRow {
    OutRow {
        kept,
        probability: r.probability,
        label: r.label,
        score: r.score,
        decision: r.decision.as_str(),
        reasons: r.reasons.into_iter().map(|x| x.code).collect(),
        contributions: r.explanation.map(|e| {
            e.contributions
                .into_iter()
                .map(|c| (c.feature, c.contribution))
                .collect()
        }),
    }
}

fn model_refusal(line: u64, e: &ServiceError) -> RowError {
    RowError {
        line,
        column: e.field().map(String::from),
        code: e.code(),
        message: e.public_message(),
    }
}

/// Decodes a part of a chunk: typed rows (with their line, kept cells and hash) or refusals.
type Decoded = Vec<Result<(u64, Vec<Value>, Vec<Option<String>>, String), RowError>>;

fn decode_part(plan: &Plan, part: Vec<RawRow>) -> Decoded {
    let n = plan.schema.fields.len();
    part.into_iter()
        .map(|mut raw| {
            let row = decode(&plan.schema, &raw)?;
            let kept = raw.cells.split_off(n);
            let hash = plan.hasher.hash(std::slice::from_ref(&row));
            Ok((raw.line, row, kept, hash))
        })
        .collect()
}

/// Scores the decoded rows of a part with `scorer` (all at once, then one by one if the model
/// refuses a row, so one bad row refuses only itself).
fn score_part(
    decoded: Decoded,
    scorer: &(dyn Fn(Vec<Vec<Value>>) -> Result<Vec<RecordOutput>, ServiceError> + Sync),
) -> Result<Vec<Processed>, ServiceError> {
    let mut slots: Vec<Option<Processed>> = Vec::with_capacity(decoded.len());
    let mut good = Vec::new();
    for d in decoded {
        match d {
            Ok(x) => {
                good.push((slots.len(), x));
                slots.push(None);
            }
            Err(e) => slots.push(Some(Processed::Refused(e))),
        }
    }
    let rows: Vec<Vec<Value>> = good.iter().map(|(_, x)| x.1.clone()).collect();
    let outputs: Vec<Result<RecordOutput, RowError>> = if rows.is_empty() {
        Vec::new()
    } else {
        match scorer(rows) {
            Ok(outs) => outs.into_iter().map(Ok).collect(),
            Err(e) if e.code() == "cancelled" => return Err(e),
            Err(e) if !e.class().eq(&crate::ErrorClass::BadRequest) => return Err(e),
            Err(_) => {
                let mut v = Vec::with_capacity(good.len());
                for (_, x) in &good {
                    v.push(match scorer(vec![x.1.clone()]) {
                        Ok(mut o) => Ok(o.remove(0)),
                        Err(e) if e.class() == crate::ErrorClass::BadRequest => {
                            Err(model_refusal(x.0, &e))
                        }
                        Err(e) => return Err(e),
                    });
                }
                v
            }
        }
    };
    for ((slot, (line, _, kept, hash)), out) in good.into_iter().zip(outputs) {
        slots[slot] = Some(match out {
            Ok(r) => Processed::Scored {
                row_hash: hash,
                out: out_row(r, kept),
            },
            Err(mut e) => {
                e.line = line;
                Processed::Refused(e)
            }
        });
    }
    Ok(slots.into_iter().flatten().collect())
}

struct Counts {
    end: BatchEnd,
    read: u64,
    scored: u64,
    refused: u64,
    first_error: Option<RowError>,
    input_sha256: String,
    output_sha256: String,
    output_bytes: u64,
    errors_sha256: String,
}

/// The per-row audit scorer: [`Platform::predict`], called from a blocking thread.
struct AuditedScorer {
    platform: Platform,
    ctx: CallContext,
    model: Arc<LoadedModel>,
    explain: bool,
    handle: tokio::runtime::Handle,
}

impl Platform {
    /// Scores a file (or dataset bytes) with `model`, writing one output row per scored input
    /// row and one error line per refused row, then one `batch_prediction` audit record.
    ///
    /// Runs on the blocking pool (and rayon for the scoring); `cancel` stops it between chunks.
    #[allow(clippy::too_many_arguments)]
    pub async fn predict_batch(
        &self,
        ctx: &CallContext,
        model: Arc<LoadedModel>,
        source: BatchSource,
        sinks: BatchSinks,
        opts: BatchOptions,
        progress: Arc<dyn BatchProgress>,
        cancel: CancelToken,
        job_id: Option<&str>,
    ) -> Result<BatchSummary, ServiceError> {
        model.check_scoring()?;
        let started = Instant::now();
        let threshold = model.binary()?.threshold();
        if let Some(clash) = opts
            .keep
            .iter()
            .find(|k| io::SCORE_COLUMNS.contains(&k.as_str()) || k.as_str() == "contributions")
        {
            return Err(ServiceError::invalid(
                "invalid_keep",
                Some("keep"),
                format!("`{clash}` cannot be kept: the output has a column of that name"),
            ));
        }
        let plan = Plan {
            schema: model.input_schema().clone(),
            keep: opts.keep.clone(),
            hasher: model.input_hasher.clone(),
        };
        let (source_desc, source_format) = match &source {
            BatchSource::File(p) => (p.display().to_string(), FileFormat::from_path(p)?),
            BatchSource::Bytes(_, f) => ("dataset".to_string(), *f),
        };
        let scorer = opts.audit_rows.then(|| AuditedScorer {
            platform: self.clone(),
            ctx: ctx.clone(),
            model: model.clone(),
            explain: opts.explain,
            handle: tokio::runtime::Handle::current(),
        });
        let m = model.clone();
        let o = opts.clone();
        let (counts, source_sha256) = tokio::task::spawn_blocking(move || {
            let (reader, source_sha256) = open(source, &plan)?;
            let counts = run(&m, &plan, reader, sinks, &o, &*progress, &cancel, scorer)?;
            Ok::<_, ServiceError>((counts, source_sha256))
        })
        .await
        .map_err(join_error)??;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let mut details = serde_json::json!({
            "source": {"name": source_desc, "format": source_format.as_str(), "sha256": source_sha256},
            "output": {"sha256": counts.output_sha256, "bytes": counts.output_bytes},
            "errors": {"sha256": counts.errors_sha256},
            "rows_read": counts.read,
            "rows_scored": counts.scored,
            "rows_refused": counts.refused,
            "end": counts.end.as_str(),
            "threshold": threshold,
            "explain": opts.explain,
            "strict": opts.strict,
            "per_row_records": opts.audit_rows,
            "elapsed_ms": elapsed_ms,
        });
        if let Some(id) = job_id {
            details["job_id"] = id.into();
        }
        let entry = AuditEntry {
            event: "batch_prediction".into(),
            actor: ctx.actor.clone(),
            request_id: ctx.request_id.clone(),
            model: Some(model.name.clone()),
            version: Some(model.version),
            input_sha256: Some(counts.input_sha256.clone()),
            details,
        };
        let audit_seq = self.append_batch_record(entry).await?;
        metrics::counter!("aurum_batch_rows_scored_total", "model" => model.name.clone())
            .increment(counts.scored);
        metrics::counter!("aurum_batch_rows_refused_total", "model" => model.name.clone())
            .increment(counts.refused);
        Ok(BatchSummary {
            model: model.name.clone(),
            version: model.version,
            threshold,
            end: counts.end,
            rows_read: counts.read,
            rows_scored: counts.scored,
            rows_refused: counts.refused,
            first_error: counts.first_error,
            input_sha256: counts.input_sha256,
            source_sha256,
            output_sha256: counts.output_sha256,
            output_bytes: counts.output_bytes,
            errors_sha256: counts.errors_sha256,
            audit_seq,
            elapsed_ms,
        })
    }

    /// The batch record follows `audit.durability` like a prediction record.
    async fn append_batch_record(&self, entry: AuditEntry) -> Result<Option<u64>, ServiceError> {
        Ok(match self.inner.config.audit.durability {
            crate::AuditDurability::Sync => Some(self.inner.audit.append(entry).await?.seq),
            crate::AuditDurability::Buffered => {
                self.inner.audit.append_nowait(entry)?;
                None
            }
        })
    }
}

/// SHA-256 (hex) of a file, streamed.
fn file_sha256(path: &Path) -> Result<String, ServiceError> {
    let mut f = fs_err::File::open(path).map_err(|e| io_input(path, e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| io_input(path, e))?;
    Ok(hex::encode(h.finalize()))
}

fn io_input(path: &Path, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::invalid(
        "unreadable_input",
        None,
        format!("cannot read {}: {e}", path.display()),
    )
}

/// Opens the reader and checks the header: every feature must be a column (a file without one
/// is refused before any row is read), and so must every kept column. JSON Lines has no header:
/// a missing key refuses that line.
fn open(source: BatchSource, plan: &Plan) -> Result<(Reader, String), ServiceError> {
    let wanted = plan.wanted();
    let (reader, header, sha) = match source {
        BatchSource::File(path) => {
            let path = &path;
            let sha = file_sha256(path)?;
            let format = FileFormat::from_path(path)?;
            let file = std::fs::File::open(path).map_err(|e| io_input(path, e))?;
            let (r, h) = match format {
                FileFormat::Csv => {
                    Reader::csv(Box::new(BufReader::with_capacity(1 << 20, file)), &wanted)?
                }
                FileFormat::JsonLines => {
                    Reader::json_lines(Box::new(BufReader::with_capacity(1 << 20, file)), &wanted)
                }
                FileFormat::Parquet => {
                    Reader::parquet(file, &wanted, plan.schema.fields.len(), 8192)?
                }
            };
            (r, h, sha)
        }
        BatchSource::Bytes(bytes, format) => {
            let sha = aurum_core::sha256_hex(&bytes);
            let (r, h) = match format {
                FileFormat::Csv => Reader::csv(Box::new(std::io::Cursor::new(bytes)), &wanted)?,
                FileFormat::JsonLines => {
                    Reader::json_lines(Box::new(std::io::Cursor::new(bytes)), &wanted)
                }
                FileFormat::Parquet => Reader::parquet(
                    bytes::Bytes::from(bytes),
                    &wanted,
                    plan.schema.fields.len(),
                    8192,
                )?,
            };
            (r, h, sha)
        }
    };
    if let Header::Columns(names) = header {
        let missing: Vec<&str> = wanted
            .iter()
            .filter(|w| !names.iter().any(|n| n == *w))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(ServiceError::invalid(
                "missing_column",
                None,
                format!(
                    "the input has no column {} (the model's features and --keep columns must all be columns)",
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok((reader, sha))
}

#[allow(clippy::too_many_arguments)]
fn run(
    model: &Arc<LoadedModel>,
    plan: &Plan,
    mut reader: Reader,
    sinks: BatchSinks,
    opts: &BatchOptions,
    progress: &dyn BatchProgress,
    cancel: &CancelToken,
    audited: Option<AuditedScorer>,
) -> Result<Counts, ServiceError> {
    let layout = OutputLayout {
        kept: plan.keep.clone(),
        explain: opts.explain,
    };
    let mut writer = Writer::new(sinks.output_format, sinks.output, &layout)?;
    let mut errors = ErrorWriter::new(sinks.errors_format, sinks.errors)?;
    let mut batch_hash = Sha256::new();
    let (mut read, mut scored, mut refused) = (0u64, 0u64, 0u64);
    let mut first_error = None;
    let mut end = BatchEnd::Completed;
    let chunk_rows = opts.chunk_rows.max(1);
    let explain = opts.explain;
    type Scorer<'a> =
        Box<dyn Fn(Vec<Vec<Value>>) -> Result<Vec<RecordOutput>, ServiceError> + Sync + 'a>;
    let scorer: Scorer<'_> = match &audited {
        None => Box::new(move |rows| score(model, &rows, explain)),
        // Per-row records: each part goes through `Platform::predict` itself.
        Some(a) => Box::new(move |rows| {
            let opts = PredictOptions {
                explain: a.explain,
                started: None,
            };
            let out = a
                .handle
                .block_on(a.platform.predict(&a.ctx, a.model.clone(), rows, opts))?;
            Ok(out.records)
        }),
    };
    let scorer = &*scorer;
    'chunks: loop {
        if cancel.is_cancelled() {
            end = BatchEnd::Cancelled;
            break;
        }
        let mut chunk: Vec<RawRow> = Vec::with_capacity(chunk_rows);
        let mut bad = Vec::new();
        let mut done = false;
        while chunk.len() + bad.len() < chunk_rows {
            match reader.next()? {
                None => {
                    done = true;
                    break;
                }
                Some(Item::Row(r)) => chunk.push(r),
                Some(Item::Bad(b)) => bad.push((chunk.len(), b)),
            }
        }
        // Parts of the chunk, parsed and scored in parallel, in input order.
        let mut parts: Vec<Vec<RawRow>> = Vec::new();
        let mut it = chunk.into_iter().peekable();
        while it.peek().is_some() {
            parts.push(it.by_ref().take(PART_ROWS).collect());
        }
        let parts_out: Vec<Vec<Processed>> = parts
            .into_par_iter()
            .map(|part| score_part(decode_part(plan, part), scorer))
            .collect::<Result<_, _>>()?;
        // Unreadable lines are put back at their place among the rows.
        let mut processed: Vec<Processed> = parts_out.into_iter().flatten().collect();
        for (at, b) in bad.into_iter().rev() {
            processed.insert(
                at,
                Processed::Refused(RowError {
                    line: b.line,
                    column: None,
                    code: b.code,
                    message: b.message,
                }),
            );
        }
        let mut outs = Vec::with_capacity(processed.len());
        for p in processed {
            read += 1;
            match p {
                Processed::Scored { row_hash, out } => {
                    batch_hash.update(row_hash.as_bytes());
                    batch_hash.update(b"\n");
                    scored += 1;
                    outs.push(out);
                }
                Processed::Refused(e) => {
                    refused += 1;
                    errors.write(&e)?;
                    if first_error.is_none() {
                        first_error = Some(e);
                    }
                    if opts.strict {
                        end = BatchEnd::StoppedAtError;
                        writer.write(&layout, &outs)?;
                        break 'chunks;
                    }
                }
            }
        }
        writer.write(&layout, &outs)?;
        progress.rows(read, scored, refused);
        if done {
            break;
        }
    }
    progress.rows(read, scored, refused);
    let (output_sha256, output_bytes) = writer.finish()?;
    let (errors_sha256, _) = errors.finish()?;
    Ok(Counts {
        end,
        read,
        scored,
        refused,
        first_error,
        input_sha256: hex::encode(batch_hash.finalize()),
        output_sha256,
        output_bytes,
        errors_sha256,
    })
}

#[cfg(test)]
mod tests {
    use aurum_core::{Field, Schema};

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("age", ColumnType::Integer),
            Field::new("income", ColumnType::Float),
        ])
        .unwrap()
    }

    #[test]
    fn cells_go_through_the_dataset_parser() {
        let raw = RawRow {
            line: 7,
            cells: vec![Some("41".into()), Some("$1,200.50".into())],
        };
        assert_eq!(
            decode(&schema(), &raw).unwrap(),
            vec![Value::Integer(41), Value::Float(1200.5)]
        );
        let raw = RawRow {
            line: 7,
            cells: vec![Some("NA".into()), Some("".into())],
        };
        assert_eq!(
            decode(&schema(), &raw).unwrap(),
            vec![Value::Null, Value::Null]
        );
    }

    #[test]
    fn bad_cells_name_line_column_and_code() {
        let raw = RawRow {
            line: 9,
            cells: vec![Some("forty".into()), Some("1".into())],
        };
        let e = decode(&schema(), &raw).unwrap_err();
        assert_eq!(
            (e.line, e.column.as_deref(), e.code),
            (9, Some("age"), "invalid_type")
        );
        let raw = RawRow {
            line: 3,
            cells: vec![Some("1".into()), None],
        };
        let e = decode(&schema(), &raw).unwrap_err();
        assert_eq!(
            (e.column.as_deref(), e.code),
            (Some("income"), "missing_feature")
        );
        let raw = RawRow {
            line: 3,
            cells: vec![Some("1".into()), Some("inf".into())],
        };
        assert_eq!(
            decode(&schema(), &raw).unwrap_err().code,
            "non_finite_number"
        );
    }

    #[test]
    fn formats_by_extension() {
        let f = |p: &str| FileFormat::from_path(Path::new(p)).ok();
        assert_eq!(f("a.CSV"), Some(FileFormat::Csv));
        assert_eq!(f("a.parquet"), Some(FileFormat::Parquet));
        assert_eq!(f("a.jsonl"), Some(FileFormat::JsonLines));
        assert_eq!(f("a.json"), None);
    }
}
