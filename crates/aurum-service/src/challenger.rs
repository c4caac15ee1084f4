//! Champion/challenger: a model's challenger alias either shadows its champion or takes a share
//! of its traffic.
//!
//! **Shadow** (the default): every record the champion scores (on any protocol) is also scored by
//! the version behind the challenger alias, after the caller has its answer. The challenger's
//! answers are stored (`shadow_scores`, keyed by request id and record), never returned, and
//! compared with the champion's: score distributions (means and PSI), agreement of decisions,
//! and, once outcomes arrive for the same requests, both realised AUCs. `share` (default 1) is
//! the fraction of requests shadowed, chosen by a hash of the request id.
//!
//! Shadow scoring must not cost the client: the request path only hands the rows, the
//! champion's answers and the resolved challenger to a bounded queue (a `try_send`, never a
//! wait). One worker thread per process, scheduled `SCHED_IDLE` on Linux (it runs only on CPU
//! time nothing else wants), scores whatever has queued in batches and hands the records to one
//! writer task, which stores what arrives within 1 s (up to 8,192 records) in one transaction.
//! When either queue is full, records are dropped and counted (`aurum_shadow_dropped_total`);
//! records still queued at a crash are lost. On a saturated machine the comparison is therefore
//! a sample of the traffic (the report says how many records it holds); the client's answer,
//! its latency and its audit record are not affected.
//!
//! **Split**: a `share` of the requests addressed to the champion alias (chosen by a hash of the
//! request id, so a retried request id lands on the same side) is answered by the challenger
//! instead; its answer, version and audit record are the challenger's. Requests naming a version
//! or another alias are never redirected. The report then compares the two arms on their live
//! outcomes (`POST /v1/models/{name}/outcomes`): count, bad rate and realised AUC per version.
//!
//! The setting is stored in the registry (`challengers` table, SQLite or PostgreSQL) and copied
//! into each process; a change bumps the registry's change epoch, so every process and every
//! replica reloads it within the coherence poll (at once with PostgreSQL's notifications) and
//! all of them shadow or split alike. Settings kept by earlier releases in
//! `<data_dir>/challengers/<model>.json` move into the registry at start. Predictions without a
//! request id (in-process CLI calls) are neither shadowed nor split.

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
const SHADOW_BATCH: usize = 8192;
/// How long the writer gathers records after the first of a batch: one insert burst (CPU on a
/// normal-priority thread) a second. Shorter transactions were measured to cost the clients'
/// tail latency more (BENCHMARKS.md, "Shadow scoring, 2026-12-06"); the embedded store's shadow
/// commits never flush the disk (`registry-shadow.db`, `synchronous=OFF`).
const SHADOW_GATHER: std::time::Duration = std::time::Duration::from_secs(1);

/// Shadow jobs (one per request) waiting for the scoring worker, at most: a pause's worth at
/// 20,000 requests a second.
const SHADOW_JOBS: usize = 1024;
/// How long the worker lets jobs queue before each pass.
const SHADOW_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);
/// Rows the worker scores in one pass, at most (what has queued meanwhile, up to this).
const SHADOW_PASS_ROWS: usize = 4096;

/// One request's rows waiting to be scored by the challenger.
pub(crate) struct ShadowJob {
    champion: Arc<LoadedModel>,
    challenger: Arc<LoadedModel>,
    request_id: String,
    rows: Vec<Vec<Value>>,
    answers: Vec<(f64, String)>,
}

/// The queue to this process's shadow worker (started with the first shadowed request).
pub(crate) type ShadowQueue = std::sync::OnceLock<std::sync::mpsc::SyncSender<ShadowJob>>;

/// How the challenger takes part in a model's traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengerMode {
    /// Scores the champion's requests after the answer; its answers are stored, never returned.
    #[default]
    Shadow,
    /// Answers a share of the requests addressed to the champion alias.
    Split,
}

impl ChallengerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengerMode::Shadow => "shadow",
            ChallengerMode::Split => "split",
        }
    }
}

fn full_share() -> f64 {
    1.0
}

/// A model's challenger setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChallengerConfig {
    /// The alias whose version challenges the champion.
    pub alias: String,
    /// Shadow (default) or split.
    #[serde(default)]
    pub mode: ChallengerMode,
    /// Shadow: the share of requests shadowed. Split: the share answered by the challenger.
    /// In (0, 1]; requests are chosen by a hash of their request id.
    #[serde(default = "full_share")]
    pub share: f64,
}

impl ChallengerConfig {
    /// Whether the request with this id falls in the configured share.
    pub fn selects(&self, request_id: &str) -> bool {
        if self.share >= 1.0 {
            return true;
        }
        // FNV-1a: stable across processes and releases, so a request id always lands on the
        // same side.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in request_id.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        ((h % 1_000_000) as f64) < self.share * 1_000_000.0
    }
}

/// This process's copy of every model's challenger setting (from the registry; reloaded when the
/// registry's change epoch moves).
#[derive(Default)]
pub(crate) struct Challengers {
    by_model: Mutex<HashMap<String, ChallengerConfig>>,
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

/// One version's live answers in a split, measured on their realised outcomes.
#[derive(Clone, Debug, Serialize)]
pub struct SplitArm {
    pub version: u32,
    /// The alias this version is behind now (`champion`, the challenger alias), if any.
    pub alias: Option<String>,
    pub outcomes: crate::outcomes::OutcomeFigures,
}

/// A model's challenger setting and the comparisons so far.
#[derive(Clone, Debug, Serialize)]
pub struct ChallengerReport {
    pub model: String,
    pub challenger: Option<ChallengerConfig>,
    /// Shadow pairs: both versions' answers on the same records.
    pub comparisons: Vec<PairComparison>,
    /// Split: the champion's and the challenger's own traffic, on their realised outcomes.
    pub arms: Vec<SplitArm>,
}

impl Platform {
    /// The model's challenger setting (this process's copy of the registry's).
    pub(crate) fn challenger_of(&self, model: &str) -> Option<ChallengerConfig> {
        self.inner
            .challengers
            .by_model
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(model)
            .cloned()
    }

    /// Reads every challenger setting from the registry into this process's copy (at start and
    /// whenever the change epoch moves: another process or replica may have changed one). A
    /// setting this version cannot read is skipped with a warning, never half-applied.
    pub(crate) async fn reload_challengers(&self) -> Result<(), ServiceError> {
        let rows = self.inner.meta.list_challengers().await?;
        let mut map = HashMap::with_capacity(rows.len());
        for (model, text) in rows {
            match serde_json::from_str::<ChallengerConfig>(&text) {
                Ok(config) => {
                    map.insert(model, config);
                }
                Err(e) => {
                    tracing::warn!(model = %model, error = %e, "unreadable challenger setting ignored")
                }
            }
        }
        *self
            .inner
            .challengers
            .by_model
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = map;
        Ok(())
    }

    /// Moves challenger settings kept by earlier releases in `<data_dir>/challengers/<model>.json`
    /// into the registry (unless the registry already has one for that model), then removes the
    /// files. Runs once at start.
    pub(crate) async fn import_legacy_challengers(&self) -> Result<(), ServiceError> {
        let dir = self.data_dir().join("challengers");
        let Ok(entries) = fs_err::read_dir(&dir) else {
            return Ok(());
        };
        let stored: HashMap<String, String> = self
            .inner
            .meta
            .list_challengers()
            .await?
            .into_iter()
            .collect();
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(model) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_string)
            else {
                continue;
            };
            // Another process starting on the same data directory may have moved it already.
            let text = match fs_err::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(crate::platform::internal(e)),
            };
            if !stored.contains_key(&model)
                && serde_json::from_str::<ChallengerConfig>(&text).is_ok()
            {
                match self.inner.meta.put_challenger(&model, Some(&text)).await {
                    Ok(()) => {
                        tracing::info!(model = %model, "challenger setting moved into the registry")
                    }
                    Err(e) => {
                        tracing::warn!(model = %model, error = %e, "legacy challenger setting not moved");
                        continue;
                    }
                }
            }
            match fs_err::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(crate::platform::internal(e)),
            }
        }
        Ok(())
    }

    /// Sets `model`'s challenger: the version behind `alias` shadows the champion or answers
    /// `share` of its traffic.
    pub async fn set_challenger(
        &self,
        ctx: &CallContext,
        model: &str,
        alias: &str,
        mode: ChallengerMode,
        share: f64,
    ) -> Result<ChallengerConfig, ServiceError> {
        if !(share.is_finite() && share > 0.0 && share <= 1.0) {
            return Err(ServiceError::invalid(
                "invalid_field",
                Some("share"),
                format!("`share` must be a number in (0, 1], got {share}"),
            ));
        }
        if alias == "champion" {
            return Err(ServiceError::invalid(
                "invalid_field",
                Some("alias"),
                "the challenger alias cannot be `champion`: name the alias of the version that challenges it",
            ));
        }
        let version = self.resolve(&ModelRef::alias(model, alias)).await?;
        version.binary()?;
        let config = ChallengerConfig {
            alias: alias.to_string(),
            mode,
            share,
        };
        let (this, ctx, model_name, stored) =
            (self.clone(), ctx.clone(), model.to_string(), config.clone());
        self.detached(async move {
            let text = serde_json::to_string(&stored).map_err(crate::platform::internal)?;
            this.inner
                .meta
                .put_challenger(&model_name, Some(&text))
                .await?;
            this.inner
                .challengers
                .by_model
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(model_name.clone(), stored.clone());
            this.audit(
                &ctx,
                "challenger.set",
                Some((&model_name, None)),
                serde_json::json!({
                    "alias": stored.alias,
                    "mode": stored.mode.as_str(),
                    "share": stored.share,
                }),
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
            this.inner.meta.put_challenger(&model, None).await?;
            this.inner
                .challengers
                .by_model
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&model);
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

    /// The version that answers this request for `target`: the challenger for the configured
    /// share of the requests addressed to the champion alias when the model is split, otherwise
    /// `target`'s own version. Every protocol's scoring route resolves through here.
    pub async fn resolve_serving(
        &self,
        ctx: &CallContext,
        target: &ModelRef,
    ) -> Result<Arc<LoadedModel>, ServiceError> {
        if target.is_champion()
            && let Some(config) = self.challenger_of(&target.name)
            && config.mode == ChallengerMode::Split
            && let Some(id) = ctx.request_id.as_deref()
            && config.selects(id)
        {
            match self
                .resolve(&ModelRef::alias(&target.name, &config.alias))
                .await
            {
                Ok(m) => {
                    metrics::counter!("aurum_split_challenger_requests_total", "model" => target.name.clone())
                        .increment(1);
                    return Ok(m);
                }
                // The champion answers when the challenger alias has gone.
                Err(e) => {
                    tracing::warn!(model = %target.name, alias = %config.alias, error = %e, "split challenger unavailable")
                }
            }
        }
        self.resolve(target).await
    }

    /// The challenger that shadows this request to `model`, if any: shadow mode, a request id in
    /// the configured share, and a challenger version other than the one answering.
    pub(crate) async fn shadow_for(
        &self,
        ctx: &CallContext,
        model: &LoadedModel,
    ) -> Option<Arc<LoadedModel>> {
        let config = self.challenger_of(&model.name)?;
        let id = ctx.request_id.as_deref()?;
        if config.mode != ChallengerMode::Shadow || !config.selects(id) {
            return None;
        }
        match self
            .resolve(&ModelRef::alias(&model.name, &config.alias))
            .await
        {
            Ok(c) if c.version != model.version => Some(c),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(model = %model.name, alias = %config.alias, error = %e, "shadow challenger unavailable");
                None
            }
        }
    }

    /// Hands `rows` and the champion's answers to the shadow worker (see the module docs); never
    /// waits: when the queue is full the rows are dropped and counted.
    pub(crate) fn shadow(
        &self,
        ctx: &CallContext,
        champion: &Arc<LoadedModel>,
        challenger: Arc<LoadedModel>,
        rows: Vec<Vec<Value>>,
        answers: Vec<(f64, String)>,
    ) {
        let Some(request_id) = ctx.request_id.clone() else {
            return;
        };
        let jobs = self.inner.shadow_queue.get_or_init(|| {
            let writer = self.shadow_writer();
            let (tx, rx) = std::sync::mpsc::sync_channel::<ShadowJob>(SHADOW_JOBS);
            let started = std::thread::Builder::new()
                .name("aurum-shadow".into())
                .spawn(move || shadow_worker(rx, writer));
            if let Err(e) = started {
                tracing::error!(error = %e, "shadow worker not started; shadow records are dropped");
            }
            tx
        });
        let n = rows.len() as u64;
        let job = ShadowJob {
            champion: champion.clone(),
            challenger,
            request_id,
            rows,
            answers,
        };
        if jobs.try_send(job).is_err() {
            tracing::debug!(model = %champion.name, records = n, "shadow queue full; records dropped");
            metrics::counter!("aurum_shadow_dropped_total").increment(n);
        }
    }

    /// Starts the task that writes shadow records in batches; returns its queue.
    fn shadow_writer(&self) -> tokio::sync::mpsc::Sender<Vec<ShadowRecord>> {
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
        let challenger = self.challenger_of(model);
        let mut arms = Vec::new();
        if let Some(config) = challenger
            .as_ref()
            .filter(|c| c.mode == ChallengerMode::Split)
        {
            for alias in ["champion", config.alias.as_str()] {
                let Some(version) = self.inner.meta.resolve_alias(model, alias).await? else {
                    continue;
                };
                let outcomes = self.inner.meta.list_outcomes(model, version).await?;
                arms.push(SplitArm {
                    version,
                    alias: Some(alias.to_string()),
                    outcomes: crate::outcomes::figures(&outcomes),
                });
            }
        }
        Ok(ChallengerReport {
            model: model.to_string(),
            challenger,
            comparisons,
            arms,
        })
    }
}

/// The shadow worker: scores queued requests with their challengers in batches, at the lowest
/// CPU priority, and hands the records to the writer. Ends when the platform is dropped.
fn shadow_worker(
    jobs: std::sync::mpsc::Receiver<ShadowJob>,
    writer: tokio::sync::mpsc::Sender<Vec<ShadowRecord>>,
) {
    lower_priority();
    while let Ok(first) = jobs.recv() {
        // Let the queue fill before a pass: under load the worker is then asleep, not blocked
        // in `recv`, so a request's `try_send` wakes no thread, and the writer task (normal
        // priority) is woken once a pass rather than once a request.
        std::thread::sleep(SHADOW_PAUSE);
        let mut rows = first.rows.len();
        let mut pass = vec![first];
        while rows < SHADOW_PASS_ROWS {
            match jobs.try_recv() {
                Ok(job) => {
                    rows += job.rows.len();
                    pass.push(job);
                }
                Err(_) => break,
            }
        }
        // One scoring call per (champion, challenger) pair in the pass.
        let mut groups: BTreeMap<(String, u32, u32), Vec<ShadowJob>> = BTreeMap::new();
        for job in pass {
            groups
                .entry((
                    job.champion.name.clone(),
                    job.champion.version,
                    job.challenger.version,
                ))
                .or_default()
                .push(job);
        }
        for ((model, _, _), group) in groups {
            let challenger = group[0].challenger.clone();
            let all: Vec<Vec<Value>> = group.iter().flat_map(|j| j.rows.iter().cloned()).collect();
            // Scored here, piece by piece: `score` spreads a large batch over the rayon pool,
            // whose threads run at normal priority, and would take the clients' CPU.
            let scored = all
                .chunks(crate::predict::PIECE_ROWS)
                .map(|piece| crate::predict::score(&challenger, piece, false))
                .collect::<Result<Vec<_>, _>>()
                .map(|pieces| pieces.into_iter().flatten().collect::<Vec<_>>());
            let scored = match scored {
                Ok(scored) => scored,
                Err(e) => {
                    tracing::warn!(model = %model, version = challenger.version, error = %e, "challenger scoring failed");
                    metrics::counter!("aurum_shadow_dropped_total").increment(all.len() as u64);
                    continue;
                }
            };
            let now = chrono::Utc::now();
            let mut scored = scored.into_iter();
            let mut records = Vec::with_capacity(all.len());
            for job in &group {
                for (i, (p, d)) in job.answers.iter().enumerate() {
                    let Some(r) = scored.next() else { break };
                    records.push(ShadowRecord {
                        model: model.clone(),
                        request_id: job.request_id.clone(),
                        record: i as u32,
                        champion_version: job.champion.version,
                        challenger_version: challenger.version,
                        champion_p: *p,
                        challenger_p: r.probability,
                        champion_decision: d.clone(),
                        challenger_decision: r.decision.as_str().to_string(),
                        scored_at: now,
                    });
                }
            }
            let n = records.len() as u64;
            metrics::counter!("aurum_shadow_records_total", "model" => model.clone()).increment(n);
            if writer.try_send(records).is_err() {
                tracing::debug!(model = %model, records = n, "shadow writer queue full; records dropped");
                metrics::counter!("aurum_shadow_dropped_total").increment(n);
            }
        }
    }
}

/// Puts the calling thread in the idle scheduling class (Linux `SCHED_IDLE`; elsewhere the
/// lowest priority the platform allows), so shadow scoring only uses CPU time nothing else
/// wants.
fn lower_priority() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    #[cfg(target_os = "linux")]
    let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    #[cfg(not(target_os = "linux"))]
    let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
    if let Err(e) = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, policy)
    {
        tracing::warn!(error = ?e, "shadow worker runs at normal priority");
    }
}
