//! Champion/challenger in shadow: while a model has a challenger configured, every record its
//! champion scores (on any protocol) is also scored by the version behind the challenger alias,
//! after the caller has its answer, on a spawned task. The challenger's answers are stored
//! (`shadow_scores`, keyed by request id and record), never returned, and compared with the
//! champion's: score distributions (means and PSI), agreement of decisions, and, once outcomes
//! arrive for the same requests, both realised AUCs.
//!
//! Shadow records are written by one task per process in batches (what arrives within 20 ms, up
//! to 2,048 records, in one transaction), not one transaction per request: on a small machine the
//! per-request commit was most of shadow scoring's cost to clients. The queue is bounded; when
//! it is full the records are dropped and counted (`aurum_shadow_dropped_total`), never waited
//! for, and records still queued at a crash are lost: the comparison is a sample, the client's
//! answer and its audit record are not affected.
//!
//! The setting is stored in `<data_dir>/challengers/<model>.json` and cached per process
//! (another process sharing the data directory sees a change when it restarts). Predictions
//! without a request id (in-process CLI calls) are not shadowed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aurum_core::Value;
use aurum_registry::ShadowRecord;
use serde::{Deserialize, Serialize};

use crate::models::LoadedModel;
use crate::{CallContext, ModelRef, Platform, ServiceError};

/// A shadow answer and the realised outcome of its record, when known.
type WithOutcome = (ShadowRecord, Option<bool>);

/// Shadow answers read for a comparison, at most.
const COMPARE_LIMIT: u32 = 200_000;

/// Calls' worth of shadow records queued for the writer, at most.
const SHADOW_QUEUE: usize = 4096;
/// Records written in one transaction, at most.
const SHADOW_BATCH: usize = 2048;
/// How long the writer gathers records after the first of a batch.
const SHADOW_GATHER: std::time::Duration = std::time::Duration::from_millis(20);

/// The queue to this process's shadow-record writer (started with the first record).
pub(crate) type ShadowQueue = std::sync::OnceLock<tokio::sync::mpsc::Sender<Vec<ShadowRecord>>>;

/// A model's challenger setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChallengerConfig {
    /// The alias whose version shadows the champion.
    pub alias: String,
}

/// Cached settings by model (`None` = no challenger).
#[derive(Default)]
pub(crate) struct Challengers {
    by_model: Mutex<HashMap<String, Option<ChallengerConfig>>>,
}

/// The champion and one challenger version compared on the same records.
#[derive(Clone, Debug, Serialize)]
pub struct PairComparison {
    pub champion_version: u32,
    pub challenger_version: u32,
    pub records: usize,
    pub champion_mean_probability: f64,
    pub challenger_mean_probability: f64,
    /// PSI of the challenger's probabilities against the champion's.
    pub score_psi: f64,
    /// Share of records with the same decision.
    pub decision_agreement: f64,
    /// `champion decision → challenger decision → count`.
    pub decisions: BTreeMap<String, BTreeMap<String, usize>>,
    /// Records with a realised outcome, and each version's AUC on them.
    pub outcomes: usize,
    pub champion_auc: Option<f64>,
    pub challenger_auc: Option<f64>,
}

/// A model's challenger setting and the comparisons so far.
#[derive(Clone, Debug, Serialize)]
pub struct ChallengerReport {
    pub model: String,
    pub challenger: Option<ChallengerConfig>,
    pub comparisons: Vec<PairComparison>,
}

impl Platform {
    fn challenger_path(&self, model: &str) -> std::path::PathBuf {
        self.data_dir()
            .join("challengers")
            .join(format!("{model}.json"))
    }

    /// The model's challenger setting (cached).
    pub(crate) fn challenger_of(&self, model: &str) -> Option<ChallengerConfig> {
        let mut cache = self
            .inner
            .challengers
            .by_model
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        cache
            .entry(model.to_string())
            .or_insert_with(|| {
                let text = fs_err::read_to_string(self.challenger_path(model)).ok()?;
                serde_json::from_str(&text).ok()
            })
            .clone()
    }

    /// Shadows `model`'s champion with the version behind `alias`.
    pub async fn set_challenger(
        &self,
        ctx: &CallContext,
        model: &str,
        alias: &str,
    ) -> Result<ChallengerConfig, ServiceError> {
        let version = self.resolve(&ModelRef::alias(model, alias)).await?;
        version.binary()?;
        let config = ChallengerConfig {
            alias: alias.to_string(),
        };
        let (this, ctx, model_name, stored) =
            (self.clone(), ctx.clone(), model.to_string(), config.clone());
        self.detached(async move {
            let path = this.challenger_path(&model_name);
            let bytes = serde_json::to_vec(&stored).map_err(crate::platform::internal)?;
            crate::flows::write_atomic(&path, &bytes).map_err(crate::platform::internal)?;
            this.inner
                .challengers
                .by_model
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(model_name.clone(), Some(stored.clone()));
            this.audit(
                &ctx,
                "challenger.set",
                Some((&model_name, None)),
                serde_json::json!({"alias": stored.alias}),
            )
            .await
        })
        .await?;
        Ok(config)
    }

    /// Stops shadowing `model`'s champion.
    pub async fn clear_challenger(
        &self,
        ctx: &CallContext,
        model: &str,
    ) -> Result<(), ServiceError> {
        self.get_model(model).await?;
        let (this, ctx, model) = (self.clone(), ctx.clone(), model.to_string());
        self.detached(async move {
            match fs_err::remove_file(this.challenger_path(&model)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(crate::platform::internal(e)),
            }
            this.inner
                .challengers
                .by_model
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(model.clone(), None);
            this.audit(
                &ctx,
                "challenger.clear",
                Some((&model, None)),
                serde_json::json!({}),
            )
            .await
        })
        .await
    }

    /// Scores `rows` with the challenger after the champion answered, and stores the pairs.
    /// Runs on its own task; failures are logged, never returned.
    pub(crate) fn shadow(
        &self,
        ctx: &CallContext,
        champion: &Arc<LoadedModel>,
        config: ChallengerConfig,
        rows: Vec<Vec<Value>>,
        answers: Vec<(f64, String)>,
    ) {
        let Some(request_id) = ctx.request_id.clone() else {
            return;
        };
        let (this, champion) = (self.clone(), champion.clone());
        tokio::spawn(async move {
            let result: Result<usize, ServiceError> = async {
                let challenger = this
                    .resolve(&ModelRef::alias(&champion.name, &config.alias))
                    .await?;
                if challenger.version == champion.version {
                    return Ok(0);
                }
                let c = challenger.clone();
                let records =
                    tokio::task::spawn_blocking(move || crate::predict::score(&c, &rows, false))
                        .await
                        .map_err(crate::platform::join_error)??;
                let now = chrono::Utc::now();
                let shadow: Vec<ShadowRecord> = records
                    .iter()
                    .zip(&answers)
                    .enumerate()
                    .map(|(i, (r, (p, d)))| ShadowRecord {
                        model: champion.name.clone(),
                        request_id: request_id.clone(),
                        record: i as u32,
                        champion_version: champion.version,
                        challenger_version: challenger.version,
                        champion_p: *p,
                        challenger_p: r.probability,
                        champion_decision: d.clone(),
                        challenger_decision: r.decision.as_str().to_string(),
                        scored_at: now,
                    })
                    .collect();
                let n = shadow.len();
                this.queue_shadow(&champion.name, shadow);
                Ok(n)
            }
            .await;
            match result {
                Ok(n) => {
                    metrics::counter!("aurum_shadow_records_total", "model" => champion.name.clone())
                        .increment(n as u64);
                }
                Err(e) => {
                    tracing::warn!(model = %champion.name, error = %e, "challenger scoring failed")
                }
            }
        });
    }

    /// Hands shadow records to the writer task (see the module docs); never waits.
    fn queue_shadow(&self, model: &str, records: Vec<ShadowRecord>) {
        let queue = self.inner.shadow_queue.get_or_init(|| {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<ShadowRecord>>(SHADOW_QUEUE);
            let meta = self.inner.meta.clone();
            tokio::spawn(async move {
                while let Some(mut batch) = rx.recv().await {
                    let until = tokio::time::Instant::now() + SHADOW_GATHER;
                    while batch.len() < SHADOW_BATCH {
                        match tokio::time::timeout_at(until, rx.recv()).await {
                            Ok(Some(more)) => batch.extend(more),
                            _ => break,
                        }
                    }
                    if let Err(e) = meta.record_shadow(&batch).await {
                        tracing::warn!(records = batch.len(), error = %e, "shadow records not written");
                        metrics::counter!("aurum_shadow_dropped_total").increment(batch.len() as u64);
                    }
                }
            });
            tx
        });
        let n = records.len() as u64;
        if queue.try_send(records).is_err() {
            tracing::debug!(model, records = n, "shadow queue full; records dropped");
            metrics::counter!("aurum_shadow_dropped_total").increment(n);
        }
    }

    /// The challenger setting of `model` and its comparisons with the champion so far.
    pub async fn challenger_report(&self, model: &str) -> Result<ChallengerReport, ServiceError> {
        self.get_model(model).await?;
        let rows = self.inner.meta.list_shadow(model, COMPARE_LIMIT).await?;
        let mut pairs: BTreeMap<(u32, u32), Vec<WithOutcome>> = BTreeMap::new();
        for (r, o) in rows {
            pairs
                .entry((r.champion_version, r.challenger_version))
                .or_default()
                .push((r, o));
        }
        let comparisons = pairs
            .into_iter()
            .map(|((champion_version, challenger_version), rs)| {
                let n = rs.len();
                let cp: Vec<f64> = rs.iter().map(|(r, _)| r.champion_p).collect();
                let hp: Vec<f64> = rs.iter().map(|(r, _)| r.challenger_p).collect();
                let mut decisions: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
                let mut agree = 0;
                for (r, _) in &rs {
                    *decisions
                        .entry(r.champion_decision.clone())
                        .or_default()
                        .entry(r.challenger_decision.clone())
                        .or_default() += 1;
                    agree += usize::from(r.champion_decision == r.challenger_decision);
                }
                let with: Vec<&WithOutcome> = rs.iter().filter(|(_, o)| o.is_some()).collect();
                let y: Vec<f64> = with
                    .iter()
                    .map(|(_, o)| if *o == Some(true) { 1.0 } else { 0.0 })
                    .collect();
                let auc_of = |f: &dyn Fn(&ShadowRecord) -> f64| {
                    let p: Vec<f64> = with.iter().map(|(r, _)| f(r)).collect();
                    aurum_credit::metrics::auc(&y, &p)
                };
                PairComparison {
                    champion_version,
                    challenger_version,
                    records: n,
                    champion_mean_probability: cp.iter().sum::<f64>() / n.max(1) as f64,
                    challenger_mean_probability: hp.iter().sum::<f64>() / n.max(1) as f64,
                    score_psi: aurum_monitor::psi_of(&cp, &hp),
                    decision_agreement: agree as f64 / n.max(1) as f64,
                    decisions,
                    outcomes: with.len(),
                    champion_auc: auc_of(&|r| r.champion_p),
                    challenger_auc: auc_of(&|r| r.challenger_p),
                }
            })
            .collect();
        Ok(ChallengerReport {
            model: model.to_string(),
            challenger: self.challenger_of(model),
            comparisons,
        })
    }
}
