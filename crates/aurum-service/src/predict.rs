//! Prediction: scoring rows with a loaded model and recording the decision in the audit log.
//!
//! Scoring is CPU work measured in microseconds per row, so small batches are scored on the
//! calling task and large ones on the blocking pool (never stalling the async runtime for
//! long). The audit record is appended with group commit and, by default
//! (`audit.durability = "sync"`), awaited: when `predict` returns Ok, its audit record is on disk,
//! whichever protocol asked. `"buffered"` only queues it (see [`crate::AuditDurability`]). Inputs are not stored in clear: the record holds the SHA-256
//! of the canonical input and only the fields listed in `audit.fields_in_clear`.

use std::sync::Arc;
use std::time::Instant;

use aurum_core::{Explanation, Value};
use aurum_models::policy::Decision;
use aurum_models::reasons::Reason;
use aurum_registry::audit::{AuditEntry, hash_input, mask_fields};

use crate::config::AuditDurability;
use crate::platform::join_error;
use crate::{CallContext, LoadedModel, Platform, ServiceError};

/// Rows up to this count are scored inline on the request task.
const INLINE_ROWS: usize = 64;

/// Per-call options. When the audit record must be durable is not one of them: that is the
/// operator's choice (`audit.durability`), the same for every protocol.
#[derive(Clone, Debug, Default)]
pub struct PredictOptions {
    /// Skip scores and adverse-action reasons (protocols that return only probabilities and
    /// labels, such as the Open Inference Protocol): reasons need a per-row explanation, which
    /// for tree models costs far more than the prediction. The decision then follows the label.
    pub skip_reasons: bool,
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
}

pub(crate) fn score(
    model: &LoadedModel,
    rows: &[Vec<Value>],
    explain: bool,
    skip_reasons: bool,
) -> Result<Vec<RecordOutput>, ServiceError> {
    let preds = model.model.predict(rows)?;
    let mut out = Vec::with_capacity(preds.len());
    for (p, row) in preds.into_iter().zip(rows) {
        let explanation = if explain {
            Some(model.model.explain(row)?)
        } else {
            None
        };
        let d = if skip_reasons {
            aurum_models::policy::CreditDecision {
                pd: p.probability,
                score: None,
                decision: if p.positive {
                    Decision::Decline
                } else {
                    Decision::Approve
                },
                reasons: Vec::new(),
            }
        } else {
            model.model.decide(row)?
        };
        out.push(RecordOutput {
            probability: p.probability,
            label: p.label,
            positive: p.positive,
            score: d.score,
            decision: d.decision,
            reasons: d.reasons,
            explanation,
        });
    }
    Ok(out)
}

impl Platform {
    /// Scores `rows` (aligned to the model's input schema) and writes the audit record.
    ///
    /// `input` is the request's records as the caller sent them; it is hashed (and masked per
    /// configuration) for the audit record, never stored in clear by default.
    pub async fn predict(
        &self,
        ctx: &CallContext,
        model: Arc<LoadedModel>,
        rows: Vec<Vec<Value>>,
        input: &serde_json::Value,
        opts: PredictOptions,
    ) -> Result<PredictOutput, ServiceError> {
        let started = opts.started.unwrap_or_else(Instant::now);
        if rows.is_empty() {
            return Err(ServiceError::invalid(
                "empty_batch",
                Some("records"),
                "no records to score",
            ));
        }
        let n = rows.len();
        let batching = &self.inner.config.batching;
        let records = if batching.models.iter().any(|m| m == &model.name) {
            self.inner
                .batchers
                .submit(
                    &model,
                    rows,
                    opts.explain,
                    opts.skip_reasons,
                    batching.max_batch_size,
                    std::time::Duration::from_micros(batching.max_queue_delay_us),
                )
                .await?
        } else if n <= INLINE_ROWS {
            score(&model, &rows, opts.explain, opts.skip_reasons)?
        } else {
            let m = model.clone();
            let (explain, skip) = (opts.explain, opts.skip_reasons);
            tokio::task::spawn_blocking(move || score(&m, &rows, explain, skip))
                .await
                .map_err(join_error)??
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
            "threshold": model.model.threshold(),
            "latency_us": latency_us,
        });
        let clear = &self.inner.config.audit.fields_in_clear;
        if !clear.is_empty() {
            let masked: Vec<serde_json::Value> = match input {
                serde_json::Value::Array(items) => {
                    items.iter().map(|i| mask_fields(i, clear)).collect()
                }
                other => vec![mask_fields(other, clear)],
            };
            details["inputs_in_clear"] = serde_json::Value::Array(masked);
        }
        let entry = AuditEntry {
            event: "prediction".into(),
            actor: ctx.actor.clone(),
            request_id: ctx.request_id.clone(),
            model: Some(model.name.clone()),
            version: Some(model.version),
            input_sha256: Some(hash_input(input)),
            details,
        };
        let audit_seq = match self.inner.config.audit.durability {
            AuditDurability::Sync => Some(self.inner.audit.append(entry).await?.seq),
            AuditDurability::Buffered => {
                self.inner.audit.append_nowait(entry)?;
                None
            }
        };
        metrics::counter!("aurum_predictions_total", "model" => model.name.clone())
            .increment(n as u64);
        metrics::histogram!("aurum_predict_batch_rows").record(n as f64);
        Ok(PredictOutput {
            model: model.name.clone(),
            version: model.version,
            threshold: model.model.threshold(),
            records,
            audit_seq,
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

    pub async fn audit_verify(&self) -> Result<aurum_registry::audit::VerifyReport, ServiceError> {
        Ok(self.inner.audit.verify().await?)
    }
}
