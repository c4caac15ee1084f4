//! Prediction: scoring rows with a loaded model and recording the decision in the audit log.
//!
//! This is the one scoring path. Every protocol (`/v1` JSON, the Open Inference Protocol over
//! REST JSON, binary tensors and gRPC, and `aurum predict`) converts its request into typed rows
//! aligned to the model's input schema and calls [`Platform::predict`]; nothing here sees a
//! request body. The rows go through the model's `BinaryClassifier::assess_batch` (the same
//! answer as `assess` row by row): PD, score, the decision under the version's policy (cut-off
//! and refer band), the adverse reasons for every refer and decline and, when asked, the
//! explanation. So an applicant gets the same decision on every protocol.
//!
//! Scoring is CPU work measured in microseconds per row, so small batches are scored on the
//! calling task and large ones on the blocking pool (never stalling the async runtime for
//! long), in pieces of 64 rows spread over the cores. The audit record is appended with group commit and, by default
//! (`audit.durability = "sync"`), awaited: when `predict` returns Ok, its audit record is on disk,
//! whichever protocol asked. `"buffered"` only queues it (see [`crate::AuditDurability`]).
//!
//! Inputs are not stored in clear: the record holds [`input_sha256`] of the typed rows (the
//! canonical form is documented there and in ARCHITECTURE.md) and only the fields listed in
//! `audit.fields_in_clear`. Because the hash is taken over typed values in schema order, not over
//! the caller's bytes, it does not depend on the protocol, the tensor layout, key order or
//! features the server ignored.

use std::sync::Arc;
use std::time::Instant;

use aurum_core::{CancelToken, Explanation, Schema, Value};
use aurum_credit::policy::Decision;
use aurum_credit::reasons::Reason;
use aurum_registry::audit::AuditEntry;
#[cfg(test)]
use aurum_registry::audit::hash_input;

use crate::config::AuditDurability;
use crate::platform::join_error;
use crate::{CallContext, LoadedModel, Platform, ServiceError};

/// Rows up to this count are scored inline on the request task.
const INLINE_ROWS: usize = 64;
/// Rows per piece of a batch: each piece is one [`BinaryClassifier::assess_batch`] call, the
/// pieces of a batch scored off the runtime run on the rayon pool (every core), and the caller's
/// cancellation is checked before each piece.
///
/// [`BinaryClassifier::assess_batch`]: aurum_contract::BinaryClassifier::assess_batch
pub(crate) const PIECE_ROWS: usize = 64;

/// Cancels its token when dropped: held by a request future, it stops the blocking work that
/// future started when the future is dropped (timeout, disconnect).
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Per-call options. When the audit record must be durable is not one of them: that is the
/// operator's choice (`audit.durability`), the same for every protocol. Nor is whether the
/// policy applies: every call is decided under the version's policy.
#[derive(Clone, Debug, Default)]
pub struct PredictOptions {
    /// Return per-feature contributions with each record.
    pub explain: bool,
    /// When the request started (for the recorded latency); defaults to the call time.
    pub started: Option<Instant>,
}

/// The answer for one record.
#[derive(Clone, Debug)]
pub struct RecordOutput {
    pub probability: f64,
    pub label: String,
    pub positive: bool,
    /// Score in points (scorecards, and other families through the same scaling).
    pub score: Option<f64>,
    /// The decision under the version's policy.
    pub decision: Decision,
    /// Adverse-action reasons (refer and decline), most adverse first.
    pub reasons: Vec<Reason>,
    pub explanation: Option<Explanation>,
}

/// The answer for a predict call.
#[derive(Clone, Debug)]
pub struct PredictOutput {
    pub model: String,
    pub version: u32,
    pub threshold: f64,
    pub records: Vec<RecordOutput>,
    /// The audit record's sequence number (`None` with `audit.durability = "buffered"`).
    pub audit_seq: Option<u64>,
    /// The audited input hash ([`input_sha256`] of the rows).
    pub input_sha256: String,
}

/// Scores rows through the model's [`BinaryClassifier::assess_batch`], labelled at the model's
/// threshold. An invalid row fails the batch with an error naming the row.
///
/// [`BinaryClassifier::assess_batch`]: aurum_contract::BinaryClassifier::assess_batch
pub(crate) fn score(
    model: &LoadedModel,
    rows: &[Vec<Value>],
    explain: bool,
) -> Result<Vec<RecordOutput>, ServiceError> {
    score_until(model, rows, explain, None)
}

/// [`score`] in pieces of [`PIECE_ROWS`] rows, checking `cancel` before each: when the caller
/// has gone (a request timeout, a closed connection), the rest of the batch is not scored. A
/// batch of more than one piece (only ever scored off the async runtime: on the blocking pool or
/// by the dynamic batcher) runs its pieces in parallel on the rayon pool. The records come back
/// in row order, and the error is the first failing row's (lowest index).
fn score_until(
    model: &LoadedModel,
    rows: &[Vec<Value>],
    explain: bool,
    cancel: Option<&CancelToken>,
) -> Result<Vec<RecordOutput>, ServiceError> {
    use rayon::prelude::*;
    let m = model.binary()?;
    let threshold = m.threshold();
    let (positive_label, negative_label) = m.labels();
    let piece = |(k, rows): (usize, &[Vec<Value>])| -> Result<Vec<RecordOutput>, ServiceError> {
        if cancel.is_some_and(CancelToken::is_cancelled) {
            metrics::counter!("aurum_scoring_cancelled_total").increment(1);
            return Err(ServiceError::Model(aurum_contract::ModelError::Cancelled));
        }
        let assessed = m
            .assess_batch(rows, explain)
            .map_err(|e| shift_row(e, k * PIECE_ROWS))?;
        model
            .rows_scored
            .fetch_add(rows.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(assessed
            .into_iter()
            .map(|a| {
                let d = a.decision;
                let positive = d.pd >= threshold;
                RecordOutput {
                    probability: d.pd,
                    label: if positive {
                        positive_label
                    } else {
                        negative_label
                    }
                    .to_string(),
                    positive,
                    score: d.score,
                    decision: d.decision,
                    reasons: d.reasons,
                    explanation: a.explanation,
                }
            })
            .collect())
    };
    if rows.len() <= PIECE_ROWS {
        return piece((0, rows));
    }
    // Every piece's result, in order, so that the error reported is the first row's whatever
    // order the threads finished in.
    let pieces: Vec<Result<Vec<RecordOutput>, ServiceError>> =
        rows.par_chunks(PIECE_ROWS).enumerate().map(piece).collect();
    let mut records = Vec::with_capacity(rows.len());
    for p in pieces {
        records.extend(p?);
    }
    Ok(records)
}

/// `e`, with the row it names (if any) moved `by` rows on: a piece's row index made the
/// batch's.
fn shift_row(e: aurum_contract::ModelError, by: usize) -> aurum_contract::ModelError {
    use aurum_contract::ModelError;
    match e {
        ModelError::InvalidInput { row: Some(i), .. }
        | ModelError::RowLength { row: Some(i), .. } => e.at_row(i + by),
        other => other,
    }
}

/// The canonical form of one typed cell: `null` for a missing value; otherwise a JSON number
/// for floats and integers (a finite float stays a float, `3e1`, and an integer stays an
/// integer, `30`, in the canonical encoding), `true`/`false`, a string for categories and text,
/// `YYYY-MM-DD` for dates and `YYYY-MM-DDTHH:MM:SS[.fff…]` (UTC, no offset) for date-times. A
/// non-finite float, which no model accepts, is the string `NaN`, `inf` or `-inf`.
pub fn canonical_value(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Float(x) => match serde_json::Number::from_f64(*x) {
            Some(n) => J::Number(n),
            None => J::String(x.to_string()),
        },
        Value::Integer(i) => (*i).into(),
        Value::Boolean(b) => (*b).into(),
        Value::Str(s) => s.clone().into(),
        Value::Date(d) => d.format("%Y-%m-%d").to_string().into(),
        Value::DateTime(t) => t.format("%Y-%m-%dT%H:%M:%S%.f").to_string().into(),
    }
}

/// The audited input hash of a predict call: lowercase hex SHA-256 of the canonical JSON
/// (`aurum_registry::audit::canonical_json`: no whitespace, shortest round-trip floats in `{:e}`
/// form) of
///
/// ```text
/// [ [ [name, type, value], … one per input feature, in input-schema order ], … one per row ]
/// ```
///
/// where `type` is the feature's declared type (`float`, `integer`, `boolean`, `categorical`,
/// `text`, `date`, `datetime`) and `value` is [`canonical_value`]. Anyone holding the applicant's
/// typed values and the model's input schema can recompute it, whatever protocol was used.
///
/// The canonical text is written directly from the typed values (the same bytes as
/// `canonical_json` of the [`canonical_value`] tree, tested), not through a `serde_json::Value`
/// tree: this runs on every prediction, and a 256-row batch would otherwise build thousands of
/// small arrays and strings.
pub fn input_sha256(schema: &Schema, rows: &[Vec<Value>]) -> String {
    InputHasher::new(schema).hash(rows)
}

/// [`input_sha256`] for one schema, its fields' canonical prefixes (`["name","type",`) written
/// once: a loaded model and a batch job hash every call or row against the same schema.
#[derive(Clone, Debug)]
pub struct InputHasher {
    prefixes: Vec<String>,
    /// Bytes a row of numbers takes, about: the text's initial capacity per row.
    per_row: usize,
}

impl InputHasher {
    pub fn new(schema: &Schema) -> Self {
        use aurum_registry::audit::canonical::push_str;
        let prefixes: Vec<String> = schema
            .fields
            .iter()
            .map(|f| {
                let mut p = String::from("[");
                push_str(&mut p, &f.name);
                p.push(',');
                push_str(&mut p, f.ty.as_str());
                p.push(',');
                p
            })
            .collect();
        let per_row = prefixes.iter().map(|p| p.len() + 24).sum::<usize>() + 2;
        Self { prefixes, per_row }
    }

    /// [`input_sha256`] of `rows` (typed against the schema this hasher was built for).
    pub fn hash(&self, rows: &[Vec<Value>]) -> String {
        use aurum_registry::audit::canonical::{push_f64, push_i64, push_str};
        let mut out = String::with_capacity(self.per_row * rows.len() + 2);
        out.push('[');
        for (r, row) in rows.iter().enumerate() {
            if r > 0 {
                out.push(',');
            }
            out.push('[');
            for (i, (prefix, v)) in self.prefixes.iter().zip(row).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(prefix);
                match v {
                    Value::Null => out.push_str("null"),
                    Value::Float(x) if x.is_finite() => push_f64(&mut out, *x),
                    Value::Float(x) => push_str(&mut out, &x.to_string()),
                    Value::Integer(i) => push_i64(&mut out, *i),
                    Value::Boolean(true) => out.push_str("true"),
                    Value::Boolean(false) => out.push_str("false"),
                    Value::Str(s) => push_str(&mut out, s),
                    Value::Date(_) | Value::DateTime(_) => match canonical_value(v) {
                        serde_json::Value::String(s) => push_str(&mut out, &s),
                        other => out.push_str(&aurum_registry::audit::canonical_json(&other)),
                    },
                }
                out.push(']');
            }
            out.push(']');
        }
        out.push(']');
        aurum_core::sha256_hex(out.as_bytes())
    }
}

/// [`input_sha256`] through a `serde_json::Value` tree and `canonical_json`: the definition the
/// direct writer must agree with.
#[cfg(test)]
fn input_sha256_via_tree(schema: &Schema, rows: &[Vec<Value>]) -> String {
    let records = rows
        .iter()
        .map(|row| {
            serde_json::Value::Array(
                schema
                    .fields
                    .iter()
                    .zip(row)
                    .map(|(f, v)| {
                        serde_json::Value::Array(vec![
                            f.name.clone().into(),
                            f.ty.as_str().into(),
                            canonical_value(v),
                        ])
                    })
                    .collect(),
            )
        })
        .collect();
    hash_input(&serde_json::Value::Array(records))
}

/// What the audit record keeps of the inputs: their hash, and the fields named in
/// `audit.fields_in_clear` (none by default).
fn audited_inputs(
    model: &LoadedModel,
    rows: &[Vec<Value>],
    recorded: &Recorded,
) -> (String, Option<serde_json::Value>) {
    let schema = model.input_schema();
    let hash = model.input_hasher.hash(rows);
    let in_clear = (!recorded.clear.is_empty() || !recorded.masked.is_empty())
        .then(|| inputs_in_clear(schema, rows, recorded));
    (hash, in_clear)
}

/// The input fields a prediction's audit record keeps: in clear, and masked.
#[derive(Clone, Debug, Default)]
pub(crate) struct Recorded {
    pub clear: Vec<String>,
    pub masked: Vec<String>,
}

impl Recorded {
    fn of(config: &crate::config::AuditConfig) -> Recorded {
        Recorded {
            clear: config.fields_in_clear.clone(),
            masked: config.masked_fields.clone(),
        }
    }
}

/// A personal value reduced to its last four characters: `***6789`.
pub fn mask_value(v: &Value) -> serde_json::Value {
    let text = match v {
        Value::Null => return serde_json::Value::Null,
        Value::Str(s) => s.clone(),
        other => canonical_value(other).to_string(),
    };
    let chars: Vec<char> = text.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    serde_json::Value::String(format!("***{tail}"))
}

/// The fields named in `audit.fields_in_clear` (as `{name: canonical value}`) and in
/// `audit.masked_fields` (as `{name: "***6789"}`), per row.
fn inputs_in_clear(schema: &Schema, rows: &[Vec<Value>], recorded: &Recorded) -> serde_json::Value {
    let kept: Vec<(usize, &str, bool)> = schema
        .fields
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            if recorded.masked.iter().any(|c| c == &f.name) {
                Some((i, f.name.as_str(), true))
            } else if recorded.clear.iter().any(|c| c == &f.name) {
                Some((i, f.name.as_str(), false))
            } else {
                None
            }
        })
        .collect();
    serde_json::Value::Array(
        rows.iter()
            .map(|row| {
                serde_json::Value::Object(
                    kept.iter()
                        .filter_map(|&(i, name, masked)| {
                            row.get(i).map(|v| {
                                let shown = if masked {
                                    mask_value(v)
                                } else {
                                    canonical_value(v)
                                };
                                (name.to_string(), shown)
                            })
                        })
                        .collect(),
                )
            })
            .collect(),
    )
}

/// The associated data every sealed audit input is bound to: a sealed value moved into another
/// kind of field, or an artifact's ciphertext pasted into an audit record, does not open.
const AUDIT_INPUTS_AAD: &str = "audit/inputs_in_clear";

impl Platform {
    /// Puts the inputs a prediction's audit record keeps into its `details`: as
    /// `inputs_in_clear`, or, when encryption at rest is configured, as `inputs_sealed` (the
    /// canonical JSON sealed with the current key, hex). The chain hashes what is stored, so it
    /// verifies without the key.
    fn keep_audited_inputs(
        &self,
        details: &mut serde_json::Value,
        in_clear: serde_json::Value,
    ) -> Result<(), ServiceError> {
        match &self.inner.sealer {
            Some(keys) => {
                let sealed = keys.seal(
                    AUDIT_INPUTS_AAD,
                    aurum_registry::audit::canonical_json(&in_clear).as_bytes(),
                )?;
                details["inputs_sealed"] = hex::encode(sealed).into();
            }
            None => details["inputs_in_clear"] = in_clear,
        }
        Ok(())
    }

    /// The inputs a prediction's audit record kept, opened: `inputs_in_clear` as written, or
    /// `inputs_sealed` decrypted with the configured keys (any key of the ring, so records sealed
    /// before a rotation still open). `None` when the record kept no inputs. The record itself
    /// and its hash are unchanged: the chain covers the sealed text.
    pub fn audited_inputs(
        &self,
        record: &aurum_registry::audit::AuditRecord,
    ) -> Result<Option<serde_json::Value>, ServiceError> {
        if let Some(clear) = record.details.get("inputs_in_clear") {
            return Ok(Some(clear.clone()));
        }
        let Some(sealed) = record.details.get("inputs_sealed").and_then(|v| v.as_str()) else {
            return Ok(None);
        };
        let Some(keys) = &self.inner.sealer else {
            return Err(ServiceError::invalid(
                "encryption_not_configured",
                Some("registry.encryption_key_file"),
                "this audit record's inputs are sealed; configure the encryption keys to read them",
            ));
        };
        let bytes = hex::decode(sealed).map_err(|e| {
            ServiceError::Internal(format!(
                "audit record {}: inputs_sealed is not hex: {e}",
                record.seq
            ))
        })?;
        let opened = keys.open(AUDIT_INPUTS_AAD, bytes)?;
        serde_json::from_slice(&opened).map(Some).map_err(|e| {
            ServiceError::Internal(format!(
                "audit record {}: sealed inputs are not JSON: {e}",
                record.seq
            ))
        })
    }

    /// Scores `rows` and writes the audit record.
    ///
    /// `rows` are typed values aligned to the model's input schema (the adapters convert
    /// requests at the edge, naming the field in every error). The audit record holds
    /// [`input_sha256`] of them, never the input in clear unless `audit.fields_in_clear`
    /// names fields.
    pub async fn predict(
        &self,
        ctx: &CallContext,
        model: Arc<LoadedModel>,
        rows: Vec<Vec<Value>>,
        opts: PredictOptions,
    ) -> Result<PredictOutput, ServiceError> {
        model.check_scoring()?;
        let started = opts.started.unwrap_or_else(Instant::now);
        if rows.is_empty() {
            return Err(ServiceError::invalid(
                "empty_batch",
                Some("records"),
                "no records to score",
            ));
        }
        let n = rows.len();
        // Drift monitoring counts the rows of successful calls; scoring consumes them.
        let monitored = self.monitor_prepare(&model, &rows);
        // A challenger scores the same rows after the answer (never on the caller's time).
        let shadow = self
            .shadow_for(ctx, &model)
            .await
            .map(|challenger| (challenger, rows.clone()));
        let clear = Recorded::of(&self.inner.config.audit);
        let batching = &self.inner.config.batching;
        // The hash is taken before scoring; a row the model refuses fails the call, and the
        // hash is then dropped with it. Large inputs are hashed and scored on the blocking pool,
        // never on the async workers, and stop early when the caller goes away.
        let (records, input_sha256, in_clear) =
            if n > INLINE_ROWS && !batching.models.iter().any(|m| m == &model.name) {
                let m = model.clone();
                let explain = opts.explain;
                let cancel = CancelToken::new();
                let _guard = CancelOnDrop(cancel.clone());
                tokio::task::spawn_blocking(move || {
                    let (hash, in_clear) = audited_inputs(&m, &rows, &clear);
                    let records = score_until(&m, &rows, explain, Some(&cancel))?;
                    Ok::<_, ServiceError>((records, hash, in_clear))
                })
                .await
                .map_err(join_error)??
            } else {
                let (hash, in_clear) = audited_inputs(&model, &rows, &clear);
                let records = if batching.models.iter().any(|m| m == &model.name) {
                    self.inner
                        .batchers
                        .submit(
                            &model,
                            rows,
                            opts.explain,
                            batching.max_batch_size,
                            std::time::Duration::from_micros(batching.max_queue_delay_us),
                        )
                        .await?
                } else {
                    score(&model, &rows, opts.explain)?
                };
                (records, hash, in_clear)
            };
        let latency_us = started.elapsed().as_micros() as u64;
        let outputs: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "probability": r.probability,
                    "label": r.label,
                    "score": r.score,
                    "decision": r.decision.as_str(),
                    "reasons": r.reasons.iter().map(|x| &x.code).collect::<Vec<_>>(),
                })
            })
            .collect();
        let mut details = serde_json::json!({
            "records": n,
            "outputs": outputs,
            "threshold": model.binary()?.threshold(),
            "latency_us": latency_us,
        });
        if let Some(in_clear) = in_clear {
            self.keep_audited_inputs(&mut details, in_clear)?;
        }
        let entry = AuditEntry {
            event: "prediction".into(),
            actor: ctx.actor.clone(),
            request_id: ctx.request_id.clone(),
            model: Some(model.name.clone()),
            version: Some(model.version),
            input_sha256: Some(input_sha256.clone()),
            details,
        };
        let audit_seq = self.append_prediction(entry).await?;
        if let Some((challenger, rows)) = shadow {
            let answers = records
                .iter()
                .map(|r| (r.probability, r.decision.as_str().to_string()))
                .collect();
            self.shadow(ctx, &model, challenger, rows, answers);
        }
        if let Some(prepared) = monitored {
            let scores: Vec<f64> = records.iter().map(|r| r.probability).collect();
            self.monitor_commit(&model, prepared, &scores);
        }
        metrics::counter!("aurum_predictions_total", "model" => model.name.clone())
            .increment(n as u64);
        metrics::histogram!("aurum_predict_batch_rows").record(n as f64);
        Ok(PredictOutput {
            model: model.name.clone(),
            version: model.version,
            threshold: model.binary()?.threshold(),
            records,
            audit_seq,
            input_sha256,
        })
    }

    // ----- audit reads -----

    pub async fn audit_tail(
        &self,
        n: usize,
    ) -> Result<Vec<aurum_registry::audit::AuditRecord>, ServiceError> {
        Ok(self
            .inner
            .audit
            .tail(n.min(u32::MAX as usize) as u32)
            .await?)
    }

    pub async fn audit_list(
        &self,
        q: aurum_registry::audit::AuditQuery,
    ) -> Result<Vec<aurum_registry::audit::AuditRecord>, ServiceError> {
        Ok(self.inner.audit.list(&q).await?)
    }

    /// Verifies the chain and its anchor; and, since the log alone cannot tell that it was
    /// removed with its anchor (a new one anchors itself at genesis), an empty log beside a
    /// registry that holds datasets, models or keys is reported as emptied.
    pub async fn audit_verify(&self) -> Result<aurum_registry::audit::VerifyReport, ServiceError> {
        let mut report = self.inner.audit.verify().await?;
        if report.ok && report.records_checked == 0 {
            let meta = &self.inner.meta;
            let entries = meta.list_datasets().await?.len()
                + meta.list_models().await?.len()
                + meta.list_keys().await?.len();
            if entries > 0 {
                report.ok = false;
                report.anchor_problem = Some(aurum_registry::audit::AnchorProblem::Emptied {
                    registry_entries: entries as u64,
                });
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use aurum_core::{ColumnType, Field, sha256_hex};

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("age", ColumnType::Integer),
            Field::new("income", ColumnType::Float),
            Field::new("purpose", ColumnType::Categorical),
            Field::new("opened", ColumnType::Date),
            Field::new("owner", ColumnType::Boolean),
        ])
        .unwrap()
    }

    /// The canonical form is a stored contract (ARCHITECTURE.md): pin it byte for byte.
    #[test]
    fn input_hash_is_sha256_of_the_documented_canonical_form() {
        let rows = vec![
            vec![
                Value::Integer(30),
                Value::Float(52000.5),
                Value::Str("car".into()),
                Value::Null,
                Value::Boolean(true),
            ],
            vec![
                Value::Integer(41),
                Value::Float(30.0),
                Value::Str("t\u{e9}l\u{e9} \"x\"".into()),
                Value::Date(chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
                Value::Null,
            ],
        ];
        let canonical = concat!(
            r#"[[["age","integer",30],["income","float",5.20005e4],["purpose","categorical","car"],"#,
            r#"["opened","date",null],["owner","boolean",true]],"#,
            r#"[["age","integer",41],["income","float",3e1],["purpose","categorical","télé \"x\""],"#,
            r#"["opened","date","2024-02-29"],["owner","boolean",null]]]"#,
        );
        assert_eq!(
            input_sha256(&schema(), &rows),
            sha256_hex(canonical.as_bytes())
        );
    }

    /// The direct writer gives the bytes of the `Value`-tree definition, for every value kind,
    /// including escapes, non-finite floats, large and negative numbers and date-times.
    #[test]
    fn direct_hash_matches_the_tree_definition() {
        let at = chrono::NaiveDate::from_ymd_opt(2024, 2, 29)
            .unwrap()
            .and_hms_milli_opt(13, 5, 9, 250)
            .unwrap();
        let schema = Schema::new(vec![
            Field::new("a\"\\\n\u{1}", ColumnType::Float),
            Field::new("n", ColumnType::Integer),
            Field::new("s", ColumnType::Text),
            Field::new("t", ColumnType::DateTime),
            Field::new("b", ColumnType::Boolean),
        ])
        .unwrap();
        let rows = vec![
            vec![
                Value::Float(0.1),
                Value::Integer(i64::MIN),
                Value::Str("x\ty".into()),
                Value::DateTime(at),
                Value::Boolean(false),
            ],
            vec![
                Value::Float(f64::NAN),
                Value::Integer(7),
                Value::Str(String::new()),
                Value::Null,
                Value::Boolean(true),
            ],
            vec![
                Value::Float(-1e300),
                Value::Integer(0),
                Value::Str("é\u{7f}".into()),
                Value::Date(at.date()),
                Value::Null,
            ],
            vec![
                Value::Float(f64::INFINITY),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ],
            vec![
                Value::Float(5e-324),
                Value::Integer(i64::MAX),
                Value::Str("\"".into()),
                Value::Null,
                Value::Null,
            ],
        ];
        assert_eq!(
            input_sha256(&schema, &rows),
            input_sha256_via_tree(&schema, &rows)
        );
        // One hasher, built once, reused across calls (as a loaded model and a batch job do).
        let hasher = InputHasher::new(&schema);
        assert_eq!(hasher.hash(&rows), input_sha256_via_tree(&schema, &rows));
        for r in &rows {
            let one = vec![r.clone()];
            assert_eq!(
                input_sha256(&schema, &one),
                input_sha256_via_tree(&schema, &one)
            );
            assert_eq!(hasher.hash(&one), input_sha256_via_tree(&schema, &one));
        }
    }

    #[test]
    fn a_float_and_an_integer_hash_differently() {
        let mut a = vec![vec![
            Value::Integer(30),
            Value::Float(1.0),
            Value::Null,
            Value::Null,
            Value::Null,
        ]];
        let h = input_sha256(&schema(), &a);
        a[0][1] = Value::Integer(1);
        assert_ne!(input_sha256(&schema(), &a), h);
        a[0][1] = Value::Float(1.0);
        assert_eq!(input_sha256(&schema(), &a), h);
    }

    #[test]
    fn only_named_fields_are_kept_in_clear() {
        let rows = vec![vec![
            Value::Integer(30),
            Value::Float(1.5),
            Value::Str("car".into()),
            Value::Null,
            Value::Boolean(false),
        ]];
        let recorded = Recorded {
            clear: vec!["purpose".into(), "nope".into()],
            masked: Vec::new(),
        };
        let kept = inputs_in_clear(&schema(), &rows, &recorded);
        assert_eq!(kept, serde_json::json!([{ "purpose": "car" }]));
    }
}

/// The answer of a model of any task (see [`Platform::predict_outputs`]).
#[derive(Clone, Debug)]
pub struct TaskPredictOutput {
    pub model: String,
    pub version: u32,
    pub task: aurum_contract::Task,
    pub outputs: Vec<aurum_contract::Output>,
    /// The audit record's sequence number (`None` with `audit.durability = "buffered"`).
    pub audit_seq: Option<u64>,
    /// The audited input hash ([`input_sha256`] of the rows).
    pub input_sha256: String,
}

/// One output as the audit record (and the wire) writes it.
/// The number drift monitoring follows for one answer: the probability of a binary model, the
/// predicted class's probability (the model's confidence), the predicted value, the anomaly
/// score.
pub(crate) fn monitored_score(o: &aurum_contract::Output) -> f64 {
    use aurum_contract::Output;
    match o {
        Output::Binary(p) => p.probability,
        Output::Class { probabilities, .. } => probabilities.iter().copied().fold(0.0, f64::max),
        Output::Value(v) => *v,
        Output::Anomaly { score, .. } => *score,
    }
}

pub fn output_json(o: &aurum_contract::Output) -> serde_json::Value {
    use aurum_contract::Output;
    match o {
        Output::Binary(p) => serde_json::json!({"probability": p.probability, "label": p.label}),
        Output::Class {
            label,
            probabilities,
        } => serde_json::json!({"label": label, "probabilities": probabilities}),
        Output::Value(v) => serde_json::json!({"value": v}),
        Output::Anomaly { score, anomalous } => {
            serde_json::json!({"score": score, "anomalous": anomalous})
        }
    }
}

impl Platform {
    /// Writes a prediction's audit record under `audit.durability`: its sequence number once
    /// durable (`sync`), or `None` once queued (`buffered`). The one place that applies the
    /// setting, for every task and protocol.
    pub(crate) async fn append_prediction(
        &self,
        entry: AuditEntry,
    ) -> Result<Option<u64>, ServiceError> {
        Ok(match self.inner.config.audit.durability {
            AuditDurability::Sync => Some(self.inner.audit.append(entry).await?.seq),
            AuditDurability::Buffered => {
                self.inner.audit.append_nowait(entry)?;
                None
            }
        })
    }

    /// Scores rows with a model of any task through its generic row scoring, with the same
    /// input hashing, off-runtime scoring of large inputs and audit record as
    /// [`Platform::predict`]. Binary models answer through [`Platform::predict`], which adds
    /// the credit decision; this path serves regression, multiclass and anomaly models.
    pub async fn predict_outputs(
        &self,
        ctx: &CallContext,
        model: Arc<LoadedModel>,
        rows: Vec<Vec<Value>>,
    ) -> Result<TaskPredictOutput, ServiceError> {
        model.check_scoring()?;
        if rows.is_empty() {
            return Err(ServiceError::invalid(
                "empty_batch",
                Some("records"),
                "no records to score",
            ));
        }
        let n = rows.len();
        // Drift monitoring counts the rows of successful calls, as for binary models.
        let monitored = self.monitor_prepare(&model, &rows);
        let clear = Recorded::of(&self.inner.config.audit);
        let m = model.clone();
        let work = move || {
            let (hash, in_clear) = audited_inputs(&m, &rows, &clear);
            let outputs = m.model.predict_rows(&rows)?;
            m.rows_scored
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            Ok::<_, ServiceError>((outputs, hash, in_clear))
        };
        let (outputs, input_sha256, in_clear) = if n > INLINE_ROWS {
            tokio::task::spawn_blocking(work)
                .await
                .map_err(join_error)??
        } else {
            work()?
        };
        let mut details = serde_json::json!({
            "records": n,
            "task": model.task().as_str(),
            "outputs": outputs.iter().map(output_json).collect::<Vec<_>>(),
        });
        if let Some(in_clear) = in_clear {
            self.keep_audited_inputs(&mut details, in_clear)?;
        }
        let entry = AuditEntry {
            event: "prediction".into(),
            actor: ctx.actor.clone(),
            request_id: ctx.request_id.clone(),
            model: Some(model.name.clone()),
            version: Some(model.version),
            input_sha256: Some(input_sha256.clone()),
            details,
        };
        let audit_seq = self.append_prediction(entry).await?;
        if let Some(prepared) = monitored {
            let scores: Vec<f64> = outputs.iter().map(monitored_score).collect();
            self.monitor_commit(&model, prepared, &scores);
        }
        metrics::counter!("aurum_predictions_total", "model" => model.name.clone())
            .increment(n as u64);
        Ok(TaskPredictOutput {
            model: model.name.clone(),
            version: model.version,
            task: model.task(),
            outputs,
            audit_seq,
            input_sha256,
        })
    }
}
