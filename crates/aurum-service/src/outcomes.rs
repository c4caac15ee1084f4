//! Realised outcomes of past predictions and the performance they show.
//!
//! `record_outcomes` takes outcomes named by the request id of the prediction (and the record's
//! position in it), finds that prediction's audit record (indexed by request id), checks the
//! label against the version's classes, and stores each outcome with the probability and
//! decision the audit log recorded, all in one transaction and with one audit record
//! (`outcomes.record`), or nothing when any outcome is invalid. `performance` measures a
//! version on its outcomes: realised AUC, Gini, KS, bad rate, Brier score and calibration by
//! decile, over all outcomes and by scoring day, against the AUC measured at training; an AUC
//! below `monitoring.auc_alert_ratio` × the training AUC (with at least `monitoring.min_rows`
//! outcomes of both classes) is an alert (log event `performance alert`, counter
//! `aurum_performance_alerts_total`).

use std::collections::BTreeMap;

use aurum_registry::OutcomeRecord;
use chrono::Utc;
use serde::Serialize;

use crate::{CallContext, ModelRef, Platform, ServiceError};

/// Most outcomes accepted in one call.
pub const MAX_OUTCOMES: usize = 10_000;

/// A realised label, as a class label or as "is it the positive class".
#[derive(Clone, Debug, PartialEq)]
pub enum OutcomeLabel {
    Class(String),
    Positive(bool),
}

/// One outcome: which scored record, and what happened.
#[derive(Clone, Debug, PartialEq)]
pub struct OutcomeIn {
    pub request_id: String,
    /// The record's position in its request (0 for single-record requests).
    pub record: u32,
    pub label: OutcomeLabel,
    /// Attributes of the record known with its outcome (for example a protected attribute that
    /// is not a feature): live fairness groups outcomes by them.
    pub attributes: BTreeMap<String, String>,
}

/// Attributes accepted with one outcome, at most.
pub const MAX_OUTCOME_ATTRIBUTES: usize = 16;

/// Figures over a set of outcomes.
#[derive(Clone, Debug, Serialize)]
pub struct OutcomeFigures {
    pub n: usize,
    pub positives: usize,
    pub bad_rate: f64,
    /// AUC, Gini, KS, Brier score and the rest of the binary metrics, where defined.
    pub metrics: BTreeMap<String, f64>,
}

/// One decile of predicted probability against the observed rate.
#[derive(Clone, Debug, Serialize)]
pub struct CalibrationRow {
    pub decile: usize,
    pub count: usize,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// Outcomes of the predictions scored on one UTC day.
#[derive(Clone, Debug, Serialize)]
pub struct PeriodFigures {
    pub day: String,
    #[serde(flatten)]
    pub figures: OutcomeFigures,
}

/// A version measured on its realised outcomes.
#[derive(Clone, Debug, Serialize)]
pub struct PerformanceReport {
    pub model: String,
    pub version: u32,
    pub training_auc: Option<f64>,
    pub auc_alert_ratio: f64,
    pub overall: OutcomeFigures,
    pub calibration: Vec<CalibrationRow>,
    pub by_day: Vec<PeriodFigures>,
    /// The realised AUC fell below `auc_alert_ratio` × the training AUC.
    pub alert: bool,
}

impl Platform {
    /// Records outcomes of `model`'s past predictions; returns how many were stored.
    pub async fn record_outcomes(
        &self,
        ctx: &CallContext,
        model: &str,
        outcomes: Vec<OutcomeIn>,
    ) -> Result<usize, ServiceError> {
        if outcomes.is_empty() {
            return Err(ServiceError::invalid(
                "empty_batch",
                Some("outcomes"),
                "no outcomes given",
            ));
        }
        if outcomes.len() > MAX_OUTCOMES {
            return Err(ServiceError::invalid(
                "too_many_records",
                Some("outcomes"),
                format!(
                    "{} outcomes in one call; the limit is {MAX_OUTCOMES}",
                    outcomes.len()
                ),
            ));
        }
        self.get_model(model).await?;
        let received_at = Utc::now();
        let mut labels: BTreeMap<u32, (String, String)> = BTreeMap::new();
        let mut rows = Vec::with_capacity(outcomes.len());
        for (i, o) in outcomes.iter().enumerate() {
            let field = |f: &str| format!("outcomes[{i}].{f}");
            if o.attributes.len() > MAX_OUTCOME_ATTRIBUTES {
                return Err(ServiceError::invalid(
                    "invalid_field",
                    Some(&field("attributes")),
                    format!(
                        "{} attributes; at most {MAX_OUTCOME_ATTRIBUTES} per outcome",
                        o.attributes.len()
                    ),
                ));
            }
            for (name, value) in &o.attributes {
                if name.is_empty() || name.len() > 64 || value.len() > 256 {
                    return Err(ServiceError::invalid(
                        "invalid_field",
                        Some(&field(&format!("attributes.{name}"))),
                        "attribute names are 1 to 64 bytes and values at most 256",
                    ));
                }
            }
            let records = self
                .inner
                .audit
                .by_request(&o.request_id, "prediction")
                .await?;
            let rec = records
                .iter()
                .find(|r| r.model.as_deref() == Some(model))
                .ok_or_else(|| {
                    ServiceError::invalid(
                        "unknown_request",
                        Some(&field("request_id")),
                        format!(
                            "no prediction of `{model}` has the request id `{}`",
                            o.request_id
                        ),
                    )
                })?;
            let version = rec.version.ok_or_else(|| {
                ServiceError::Internal("a prediction record without a version".into())
            })?;
            let output = rec.details["outputs"]
                .get(o.record as usize)
                .ok_or_else(|| {
                    ServiceError::invalid(
                        "unknown_record",
                        Some(&field("record")),
                        format!(
                            "request `{}` scored {} record(s); record {} does not exist",
                            o.request_id,
                            rec.details["records"].as_u64().unwrap_or(0),
                            o.record
                        ),
                    )
                })?;
            let probability = output["probability"].as_f64().ok_or_else(|| {
                ServiceError::invalid(
                    "unknown_record",
                    Some(&field("request_id")),
                    "that prediction has no probability (not a binary model)",
                )
            })?;
            if let std::collections::btree_map::Entry::Vacant(e) = labels.entry(version) {
                let loaded = self.resolve(&ModelRef::version(model, version)).await?;
                let (p, n) = loaded.binary()?.labels();
                e.insert((p.to_string(), n.to_string()));
            }
            let (pos, neg) = &labels[&version];
            let positive = match &o.label {
                OutcomeLabel::Positive(b) => *b,
                OutcomeLabel::Class(c) if c == pos => true,
                OutcomeLabel::Class(c) if c == neg => false,
                OutcomeLabel::Class(c) => {
                    return Err(ServiceError::invalid(
                        "invalid_label",
                        Some(&field("label")),
                        format!("label `{c}` is neither `{pos}` nor `{neg}` (or true/false)"),
                    ));
                }
            };
            rows.push(OutcomeRecord {
                model: model.to_string(),
                version,
                request_id: o.request_id.clone(),
                record: o.record,
                probability,
                decision: output["decision"].as_str().map(String::from),
                positive,
                scored_at: rec.ts,
                received_at,
                attributes: o.attributes.clone(),
            });
        }
        let (this, ctx, model) = (self.clone(), ctx.clone(), model.to_string());
        self.detached(async move {
            this.inner.meta.record_outcomes(&rows).await?;
            let versions: Vec<u32> = labels.keys().copied().collect();
            this.audit(
                &ctx,
                "outcomes.record",
                Some((&model, versions.first().copied())),
                serde_json::json!({"outcomes": rows.len(), "versions": versions}),
            )
            .await?;
            Ok(rows.len())
        })
        .await
    }

    /// A version measured on the outcomes recorded for it.
    pub async fn performance(
        &self,
        model: &str,
        version: u32,
    ) -> Result<PerformanceReport, ServiceError> {
        let record = self.inner.meta.get_version(model, version).await?;
        let training_auc = serde_json::from_str::<serde_json::Value>(&record.metrics_json)
            .ok()
            .and_then(|m| m["auc"].as_f64());
        let outcomes = self.inner.meta.list_outcomes(model, version).await?;
        let cfg = &self.inner.config.monitoring;
        let overall = figures(&outcomes);
        let (y, p) = columns(&outcomes);
        let calibration = aurum_credit::metrics::calibration_by_decile(&y, &p)
            .unwrap_or_default()
            .into_iter()
            .map(|b| CalibrationRow {
                decile: b.decile,
                count: b.count,
                mean_predicted: b.mean_predicted,
                observed_rate: b.observed_rate,
            })
            .collect();
        let mut days: BTreeMap<String, Vec<OutcomeRecord>> = BTreeMap::new();
        for o in &outcomes {
            days.entry(o.scored_at.format("%Y-%m-%d").to_string())
                .or_default()
                .push(o.clone());
        }
        let by_day = days
            .into_iter()
            .map(|(day, os)| PeriodFigures {
                day,
                figures: figures(&os),
            })
            .collect();
        let both = overall.positives > 0 && overall.positives < overall.n;
        let alert = match (training_auc, overall.metrics.get("auc")) {
            (Some(train), Some(auc)) if both && overall.n as u64 >= cfg.min_rows => {
                *auc < cfg.auc_alert_ratio * train
            }
            _ => false,
        };
        if alert {
            tracing::warn!(
                model,
                version,
                realised_auc = overall.metrics["auc"],
                training_auc,
                outcomes = overall.n,
                "performance alert"
            );
            metrics::counter!("aurum_performance_alerts_total", "model" => model.to_string())
                .increment(1);
            self.alert(crate::alerts::Alert {
                kind: "performance",
                model: model.to_string(),
                version,
                raised_at: chrono::Utc::now(),
                details: serde_json::json!({
                    "realised_auc": overall.metrics["auc"],
                    "training_auc": training_auc,
                    "auc_alert_ratio": cfg.auc_alert_ratio,
                    "outcomes": overall.n,
                }),
            });
        }
        Ok(PerformanceReport {
            model: model.to_string(),
            version,
            training_auc,
            auc_alert_ratio: cfg.auc_alert_ratio,
            overall,
            calibration,
            by_day,
            alert,
        })
    }
}

fn columns(outcomes: &[OutcomeRecord]) -> (Vec<f64>, Vec<f64>) {
    outcomes
        .iter()
        .map(|o| (if o.positive { 1.0 } else { 0.0 }, o.probability))
        .unzip()
}

pub(crate) fn figures(outcomes: &[OutcomeRecord]) -> OutcomeFigures {
    let (y, p) = columns(outcomes);
    let positives = outcomes.iter().filter(|o| o.positive).count();
    let mut metrics = aurum_credit::metrics::evaluate_binary(&y, &p, 0.5);
    metrics.retain(|k, v| {
        v.is_finite()
            && matches!(
                k.as_str(),
                "auc" | "gini" | "ks" | "brier" | "log_loss" | "pr_auc"
            )
    });
    OutcomeFigures {
        n: outcomes.len(),
        positives,
        bad_rate: if outcomes.is_empty() {
            0.0
        } else {
            positives as f64 / outcomes.len() as f64
        },
        metrics,
    }
}

/// The fairness of one group (see `aurum_credit::fairness`).
#[derive(Clone, Debug, Serialize)]
pub struct GroupFairnessOut {
    pub group: String,
    pub n: usize,
    pub approval_rate: f64,
    pub adverse_impact_ratio: Option<f64>,
    pub passes_four_fifths: bool,
    pub true_positive_rate: Option<f64>,
    pub false_positive_rate: Option<f64>,
    pub auc: Option<f64>,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// A version's decisions on a dataset, by the groups of a protected attribute.
#[derive(Clone, Debug, Serialize)]
pub struct FairnessOut {
    pub model: String,
    pub version: u32,
    /// `dataset` (the version scored on a dataset) or `outcomes` (its live decisions with
    /// realised outcomes and the attribute given with them).
    pub source: &'static str,
    /// The dataset, for source `dataset`.
    pub dataset: Option<String>,
    pub attribute: String,
    pub target: String,
    pub positive_label: String,
    pub rows: usize,
    pub reference_group: String,
    pub min_adverse_impact_ratio: Option<f64>,
    pub approval_rate_difference: f64,
    pub true_positive_rate_difference: Option<f64>,
    pub false_positive_rate_difference: Option<f64>,
    pub four_fifths_threshold: f64,
    pub groups: Vec<GroupFairnessOut>,
}

impl Platform {
    /// Scores `dataset` with the version (no audit records: an evaluation, not decisions) and
    /// measures its decisions by the groups of `attribute`, a column of the dataset that need
    /// not be a feature. A numeric attribute is grouped by `cuts` (`[25]` → `< 25`, `>= 25`),
    /// otherwise by value. The realised outcome is the version's target column unless `target`
    /// names another.
    pub async fn fairness(
        &self,
        model: &std::sync::Arc<crate::models::LoadedModel>,
        dataset: &str,
        attribute: &str,
        cuts: &[f64],
        target: Option<&str>,
    ) -> Result<FairnessOut, ServiceError> {
        let (positive, _) = model.binary()?.labels();
        let positive = positive.to_string();
        let record = self
            .inner
            .meta
            .get_version(&model.name, model.version)
            .await?;
        let target = match target {
            Some(t) => t.to_string(),
            // An imported version has no training target to fall back on.
            None if record.target.is_empty() => {
                return Err(ServiceError::invalid(
                    "missing_field",
                    Some("target"),
                    format!(
                        "{} v{} was imported, so it has no training target: name the outcome column with `target`",
                        model.name, model.version
                    ),
                ));
            }
            None => record.target.clone(),
        };
        let table = self
            .load_dataset(&self.dataset_record(dataset).await?)
            .await?;
        if table.column(attribute).is_none() {
            return Err(ServiceError::invalid(
                "unknown_column",
                Some("attribute"),
                format!("dataset `{dataset}` has no column `{attribute}`"),
            ));
        }
        if table.column(&target).is_none() {
            return Err(ServiceError::invalid(
                "unknown_column",
                Some("target"),
                format!("dataset `{dataset}` has no column `{target}`"),
            ));
        }
        if cuts.windows(2).any(|w| w[0] >= w[1]) || cuts.iter().any(|c| !c.is_finite()) {
            return Err(ServiceError::invalid(
                "invalid_field",
                Some("cuts"),
                "cuts must be finite and increasing",
            ));
        }
        let y = aurum_data::binary_target(&table, &target, Some(&positive))?;
        let groups: Vec<String> = (0..table.n_rows())
            .map(|i| {
                let v = table
                    .column(attribute)
                    .map(|c| c.data.get(i))
                    .unwrap_or(aurum_core::Value::Null);
                group_of(&v, cuts)
            })
            .collect();
        let names: Vec<&str> = model.input_schema().names().collect();
        let inputs = table.select(names).map_err(crate::platform::internal)?;
        let m = model.clone();
        let rows: Vec<Vec<aurum_core::Value>> =
            (0..inputs.n_rows()).map(|i| inputs.row(i)).collect();
        let records = tokio::task::spawn_blocking(move || crate::predict::score(&m, &rows, false))
            .await
            .map_err(crate::platform::join_error)??;
        let rows: Vec<aurum_credit::fairness::FairnessRow<'_>> = records
            .iter()
            .zip(&groups)
            .zip(&y.y)
            .map(|((r, g), y)| aurum_credit::fairness::FairnessRow {
                group: g,
                y: *y,
                probability: r.probability,
                predicted_positive: r.positive,
                approved: r.decision.as_str() == "approve",
            })
            .collect();
        fairness_out(
            model,
            Some(dataset.to_string()),
            attribute,
            target,
            positive,
            &rows,
        )
        .ok_or_else(|| {
            ServiceError::invalid("empty_dataset", Some("dataset"), "the dataset has no rows")
        })
    }

    /// Fairness of the version's live decisions: its outcomes (`POST …/outcomes`) that were
    /// given `attribute`, grouped by it (by `cuts` when numeric). Each outcome carries the
    /// probability and decision the audit log recorded for it, so these are the decisions
    /// clients received. Outcomes without the attribute are counted, not grouped.
    pub async fn live_fairness(
        &self,
        model: &std::sync::Arc<crate::models::LoadedModel>,
        attribute: &str,
        cuts: &[f64],
    ) -> Result<(FairnessOut, usize), ServiceError> {
        let binary = model.binary()?;
        let threshold = binary.threshold();
        let (positive, _) = binary.labels();
        let positive = positive.to_string();
        if cuts.windows(2).any(|w| w[0] >= w[1]) || cuts.iter().any(|c| !c.is_finite()) {
            return Err(ServiceError::invalid(
                "invalid_field",
                Some("cuts"),
                "cuts must be finite and increasing",
            ));
        }
        let outcomes = self
            .inner
            .meta
            .list_outcomes(&model.name, model.version)
            .await?;
        let given: Vec<(&OutcomeRecord, String)> = outcomes
            .iter()
            .filter_map(|o| {
                let v = o.attributes.get(attribute)?;
                let value = match v.parse::<f64>() {
                    Ok(x) if !cuts.is_empty() => aurum_core::Value::Float(x),
                    _ => aurum_core::Value::Str(v.clone()),
                };
                Some((o, group_of(&value, cuts)))
            })
            .collect();
        let without = outcomes.len() - given.len();
        let rows: Vec<aurum_credit::fairness::FairnessRow<'_>> = given
            .iter()
            .map(|(o, g)| aurum_credit::fairness::FairnessRow {
                group: g,
                y: if o.positive { 1.0 } else { 0.0 },
                probability: o.probability,
                predicted_positive: o.probability >= threshold,
                approved: o.decision.as_deref() == Some("approve"),
            })
            .collect();
        let record = self
            .inner
            .meta
            .get_version(&model.name, model.version)
            .await?;
        let mut out = fairness_out(model, None, attribute, record.target, positive, &rows)
            .ok_or_else(|| {
                ServiceError::invalid(
                    "no_outcomes",
                    Some("attribute"),
                    format!(
                        "no outcome of `{}` version {} was given attribute `{attribute}` \
                         ({} outcomes without it)",
                        model.name, model.version, without
                    ),
                )
            })?;
        out.source = "outcomes";
        Ok((out, without))
    }
}

/// The fairness figures of scored rows, as reported.
fn fairness_out(
    model: &crate::models::LoadedModel,
    dataset: Option<String>,
    attribute: &str,
    target: String,
    positive: String,
    rows: &[aurum_credit::fairness::FairnessRow<'_>],
) -> Option<FairnessOut> {
    let report = aurum_credit::fairness::fairness(rows)?;
    let finite = |x: f64| x.is_finite().then_some(x);
    Some(FairnessOut {
        model: model.name.clone(),
        version: model.version,
        source: "dataset",
        dataset,
        attribute: attribute.to_string(),
        target,
        positive_label: positive,
        rows: rows.len(),
        reference_group: report.reference_group,
        min_adverse_impact_ratio: finite(report.min_adverse_impact_ratio),
        approval_rate_difference: report.approval_rate_difference,
        true_positive_rate_difference: report.true_positive_rate_difference,
        false_positive_rate_difference: report.false_positive_rate_difference,
        four_fifths_threshold: aurum_credit::fairness::FOUR_FIFTHS,
        groups: report
            .groups
            .into_iter()
            .map(|g| GroupFairnessOut {
                group: g.group,
                n: g.n,
                approval_rate: g.approval_rate,
                adverse_impact_ratio: finite(g.adverse_impact_ratio),
                passes_four_fifths: g.passes_four_fifths,
                true_positive_rate: g.true_positive_rate,
                false_positive_rate: g.false_positive_rate,
                auc: g.auc,
                mean_predicted: g.mean_predicted,
                observed_rate: g.observed_rate,
            })
            .collect(),
    })
}

/// The group of an attribute value: by `cuts` for a number, by value otherwise.
fn group_of(v: &aurum_core::Value, cuts: &[f64]) -> String {
    if v.is_null() {
        return "(missing)".into();
    }
    if !cuts.is_empty()
        && let Some(x) = v.as_f64()
    {
        let i = cuts.partition_point(|c| *c <= x);
        return match i {
            0 => format!("< {}", cuts[0]),
            i if i == cuts.len() => format!(">= {}", cuts[i - 1]),
            i => format!("{} to < {}", cuts[i - 1], cuts[i]),
        };
    }
    match v {
        aurum_core::Value::Str(s) => s.clone(),
        aurum_core::Value::Integer(i) => i.to_string(),
        aurum_core::Value::Float(x) => x.to_string(),
        aurum_core::Value::Boolean(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}
