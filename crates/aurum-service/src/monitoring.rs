//! Drift monitoring of served models that score rows: live inputs and scores counted in the
//! training binning, in time windows, compared with the training population and with the
//! previous window. The score is the binary probability, the predicted class's probability
//! (multiclass and sequence models), the predicted value (regression) or the anomaly score.
//!
//! - **Reference.** Built once per version from the dataset the version was trained on (its
//!   name and SHA-256 are in the version record; a dataset that no longer matches is refused)
//!   by scoring every row with the version itself: `aurum_monitor::Profile::reference`. It is
//!   built on the blocking pool when the version first scores, and kept in
//!   `<data_dir>/monitoring/<model>/v<version>.reference.json` so that a restart does not redo
//!   it. Rows scored while it is being built are buffered (up to [`MAX_PENDING`]) and counted
//!   when it is ready. Imported versions have no training data in aurum and are not monitored.
//! - **Counting.** A request's rows are binned before the window lock is taken; the lock only
//!   adds counts. Only successful predictions are counted.
//! - **Windows.** `monitoring.window_s` long, aligned to the epoch. When a request arrives after
//!   the window ended, the window is closed: compared with the reference and with the previous
//!   closed window, its alerts raised (a `warn` log event `drift alert` with model, version,
//!   feature and PSI; the counter `aurum_drift_alerts_total`; the gauge `aurum_drift_psi`), and
//!   appended to `v<version>.windows.jsonl`. The open window is written to
//!   `v<version>.current.json` at most every [`FLUSH_EVERY`] and on shutdown, and restored at
//!   start if it has not ended.
//! - **Reading.** [`Platform::drift_report`] compares the open window and the closed ones.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aurum_core::Value;
use aurum_monitor::{Comparison, Profile, Thresholds};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::models::LoadedModel;
use crate::platform::join_error;
use crate::{Platform, ServiceError};

/// Rows buffered per version while its reference is being built.
pub const MAX_PENDING: usize = 50_000;
/// How often the open window is written to disk, at most.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);
/// Closed windows kept in memory per version (all are on disk).
const KEEP_CLOSED: usize = 48;

/// Every monitored version of this process.
#[derive(Default)]
pub(crate) struct Monitors {
    by_version: Mutex<HashMap<(String, u32), Arc<VersionMonitor>>>,
}

struct VersionMonitor {
    reference: tokio::sync::OnceCell<Result<Arc<Profile>, String>>,
    started: AtomicBool,
    state: Mutex<WindowState>,
    /// The copy number of the open window last written to disk; held while writing, so that an
    /// older copy (taken before a newer one, written after it) is never the one left on disk.
    written: Mutex<u64>,
}

#[derive(Default)]
struct WindowState {
    pending: Vec<(Vec<Value>, f64)>,
    dropped: u64,
    current: Option<Window>,
    closed: VecDeque<Window>,
    last_flush: Option<Instant>,
    /// Copies of the open window taken for writing, numbered from 1.
    copies: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    profile: Profile,
}

/// One window judged against the reference and the window before it.
#[derive(Clone, Debug, Serialize)]
pub struct WindowDrift {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub open: bool,
    pub rows: u64,
    pub vs_reference: Comparison,
    pub vs_previous: Option<Comparison>,
    /// Features (and `score`) at the alert level against the reference.
    pub alerts: Vec<String>,
}

/// The drift of one version: its reference and its windows, newest first.
#[derive(Clone, Debug, Serialize)]
pub struct DriftReport {
    pub model: String,
    pub version: u32,
    pub reference_rows: u64,
    pub window_s: u64,
    pub psi_watch: f64,
    pub psi_alert: f64,
    pub min_rows: u64,
    /// Rows scored while the reference was being built that did not fit the buffer.
    pub unmonitored_rows: u64,
    pub windows: Vec<WindowDrift>,
}

/// A request's rows made ready for counting before scoring consumes them: binned when the
/// reference exists (no copy of the values), else copied for the buffer.
pub(crate) enum Prepared {
    Binned(Arc<Profile>, Vec<Vec<u32>>),
    Raw(Vec<Vec<Value>>),
}

impl Platform {
    /// `None` when this call is not monitored.
    pub(crate) fn monitor_prepare(
        &self,
        model: &Arc<LoadedModel>,
        rows: &[Vec<Value>],
    ) -> Option<Prepared> {
        if !self.inner.config.monitoring.enabled || model.manifest.dataset_sha256.is_empty() {
            return None;
        }
        let monitor = self.monitor_of(model);
        match monitor.reference.get() {
            Some(Ok(reference)) => Some(Prepared::Binned(
                reference.clone(),
                rows.iter().map(|r| reference.bin_row(r)).collect(),
            )),
            Some(Err(_)) => None,
            None => Some(Prepared::Raw(rows.to_vec())),
        }
    }

    /// Counts a successful call's prepared rows and its scores.
    pub(crate) fn monitor_commit(
        &self,
        model: &Arc<LoadedModel>,
        prepared: Prepared,
        scores: &[f64],
    ) {
        match prepared {
            Prepared::Raw(rows) => self.observe_predictions(model, &rows, scores),
            Prepared::Binned(reference, bins) => {
                let binned: Vec<(Vec<u32>, u32)> = bins
                    .into_iter()
                    .zip(scores)
                    .map(|(b, s)| (b, reference.score_bin(*s)))
                    .collect();
                self.add_binned(model, &reference, &binned);
            }
        }
    }

    fn thresholds(&self) -> Thresholds {
        let m = &self.inner.config.monitoring;
        Thresholds {
            psi_watch: m.psi_watch,
            psi_alert: m.psi_alert,
            min_rows: m.min_rows,
        }
    }

    fn monitoring_dir(&self, model: &str) -> PathBuf {
        self.data_dir().join("monitoring").join(model)
    }

    fn monitor_of(&self, model: &LoadedModel) -> Arc<VersionMonitor> {
        let mut map = self
            .inner
            .monitors
            .by_version
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry((model.name.clone(), model.version))
            .or_insert_with(|| {
                Arc::new(VersionMonitor {
                    reference: tokio::sync::OnceCell::new(),
                    started: AtomicBool::new(false),
                    state: Mutex::new(WindowState::default()),
                    written: Mutex::new(0),
                })
            })
            .clone()
    }

    /// Counts a successful prediction's rows and scores (binary models; called by `predict`).
    pub(crate) fn observe_predictions(
        &self,
        model: &Arc<LoadedModel>,
        rows: &[Vec<Value>],
        scores: &[f64],
    ) {
        if !self.inner.config.monitoring.enabled || model.manifest.dataset_sha256.is_empty() {
            return;
        }
        let monitor = self.monitor_of(model);
        match monitor.reference.get() {
            Some(Ok(reference)) => {
                let binned: Vec<(Vec<u32>, u32)> = rows
                    .iter()
                    .zip(scores)
                    .map(|(r, s)| (reference.bin_row(r), reference.score_bin(*s)))
                    .collect();
                let reference = reference.clone();
                self.add_binned(model, &reference, &binned);
            }
            Some(Err(_)) => {}
            None => {
                {
                    let mut st = monitor.state.lock().unwrap_or_else(|p| p.into_inner());
                    for (r, s) in rows.iter().zip(scores) {
                        if st.pending.len() < MAX_PENDING {
                            st.pending.push((r.clone(), *s));
                        } else {
                            st.dropped += 1;
                        }
                    }
                }
                if !monitor.started.swap(true, Ordering::SeqCst) {
                    let (this, model, monitor) = (self.clone(), model.clone(), monitor.clone());
                    tokio::spawn(async move {
                        let _ = this.reference_of(&model, &monitor).await;
                    });
                }
            }
        }
    }

    fn add_binned(&self, model: &LoadedModel, reference: &Profile, binned: &[(Vec<u32>, u32)]) {
        let monitor = self.monitor_of(model);
        let flush = {
            let mut st = monitor.state.lock().unwrap_or_else(|p| p.into_inner());
            self.roll_window(model, &mut st, reference);
            if let Some(w) = st.current.as_mut() {
                for (bins, score_bin) in binned {
                    w.profile.add_bins(bins);
                    w.profile.add_score_bin(*score_bin);
                }
            }
            let due = st.last_flush.is_none_or(|t| t.elapsed() >= FLUSH_EVERY);
            if due {
                st.last_flush = Some(Instant::now());
                st.copies += 1;
                st.current.clone().map(|w| (st.copies, w))
            } else {
                None
            }
        };
        if let Some((copy, window)) = flush {
            self.write_current(&model.name, model.version, &monitor, copy, &window);
        }
    }

    /// The version's reference, built (or read back) once; buffered rows are counted when it
    /// is ready.
    async fn reference_of(
        &self,
        model: &Arc<LoadedModel>,
        monitor: &Arc<VersionMonitor>,
    ) -> Result<Arc<Profile>, ServiceError> {
        let result = monitor
            .reference
            .get_or_init(|| async {
                match self.build_reference(model).await {
                    Ok(p) => Ok(Arc::new(p)),
                    Err(e) => {
                        tracing::warn!(model = %model.name, version = model.version, error = %e,
                            "drift monitoring unavailable for this version");
                        Err(e.to_string())
                    }
                }
            })
            .await
            .clone();
        let reference = result.map_err(|e| {
            ServiceError::invalid(
                "monitoring_unavailable",
                None,
                format!("drift monitoring: {e}"),
            )
        })?;
        let pending = {
            let mut st = monitor.state.lock().unwrap_or_else(|p| p.into_inner());
            if st.current.is_none() {
                st.current = self.read_current(model, &reference);
            }
            std::mem::take(&mut st.pending)
        };
        if !pending.is_empty() {
            let (rows, scores): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
            self.observe_predictions(model, &rows, &scores);
        }
        Ok(reference)
    }

    async fn build_reference(&self, model: &Arc<LoadedModel>) -> Result<Profile, ServiceError> {
        let path = self
            .monitoring_dir(&model.name)
            .join(format!("v{}.reference.json", model.version));
        if let Ok(text) = fs_err::read_to_string(&path)
            && let Ok(mut p) = serde_json::from_str::<Profile>(&text)
        {
            p.rebuild();
            return Ok(p);
        }
        let record = self
            .inner
            .meta
            .get_version(&model.name, model.version)
            .await?;
        if record.dataset_name.is_empty() {
            return Err(ServiceError::invalid(
                "monitoring_unavailable",
                None,
                "an imported version has no training data in aurum",
            ));
        }
        let dataset = self.dataset_record(&record.dataset_name).await?;
        if dataset.sha256 != record.dataset_sha256 {
            return Err(ServiceError::invalid(
                "monitoring_unavailable",
                None,
                format!(
                    "dataset `{}` is no longer the one version {} was trained on",
                    record.dataset_name, model.version
                ),
            ));
        }
        let table = self.load_dataset(&dataset).await?;
        let m = model.clone();
        let profile = tokio::task::spawn_blocking(move || {
            let schema = m.input_schema().clone();
            let names: Vec<&str> = schema.names().collect();
            let table = table.select(names).map_err(crate::platform::internal)?;
            let rows: Vec<Vec<Value>> = (0..table.n_rows()).map(|i| table.row(i)).collect();
            let scores: Vec<f64> = match m.binary() {
                Ok(b) => b.predict(&rows)?.iter().map(|p| p.probability).collect(),
                Err(_) => m
                    .model
                    .predict_rows(&rows)?
                    .iter()
                    .map(crate::predict::monitored_score)
                    .collect(),
            };
            Ok::<_, ServiceError>(Profile::reference(&schema, &rows, &scores))
        })
        .await
        .map_err(join_error)??;
        if let Err(e) = write_json(&path, &profile) {
            tracing::warn!(error = %e, "cannot store the drift reference");
        }
        tracing::info!(model = %model.name, version = model.version, rows = profile.rows(),
            "drift reference built");
        Ok(profile)
    }

    /// Opens the window for now, closing the current one when it has ended.
    fn roll_window(&self, model: &LoadedModel, st: &mut WindowState, reference: &Profile) {
        let now = Utc::now();
        if st.current.as_ref().is_some_and(|w| now < w.end) {
            return;
        }
        if let Some(ended) = st.current.take() {
            let drift = self.judge(model, &ended, st.closed.front(), reference, false);
            self.raise(model, &drift);
            if let Err(e) = append_line(
                &self
                    .monitoring_dir(&model.name)
                    .join(format!("v{}.windows.jsonl", model.version)),
                &ended,
            ) {
                tracing::warn!(error = %e, "cannot store a closed drift window");
            }
            st.closed.push_front(ended);
            st.closed.truncate(KEEP_CLOSED);
        }
        let len = self.inner.config.monitoring.window_s as i64;
        let start_s = now.timestamp().div_euclid(len) * len;
        let start = Utc.timestamp_opt(start_s, 0).single().unwrap_or(now);
        st.current = Some(Window {
            start,
            end: start + chrono::Duration::seconds(len),
            profile: reference.empty_like(),
        });
    }

    fn judge(
        &self,
        _model: &LoadedModel,
        w: &Window,
        previous: Option<&Window>,
        reference: &Profile,
        open: bool,
    ) -> WindowDrift {
        let t = self.thresholds();
        let vs_reference = w.profile.compare(reference, &t);
        let alerts = vs_reference
            .alerts()
            .into_iter()
            .map(String::from)
            .collect();
        WindowDrift {
            start: w.start,
            end: w.end,
            open,
            rows: w.profile.rows(),
            vs_previous: previous.map(|p| w.profile.compare(&p.profile, &t)),
            vs_reference,
            alerts,
        }
    }

    /// Logs, counts and exposes the alerts of a judged window.
    fn raise(&self, model: &LoadedModel, drift: &WindowDrift) {
        self.raise_gauges_only(model, drift);
        if !drift.alerts.is_empty() {
            let psi_of = |feature: &String| {
                drift
                    .vs_reference
                    .features
                    .iter()
                    .chain(std::iter::once(&drift.vs_reference.score))
                    .find(|f| &f.name == feature)
                    .map_or(f64::NAN, |f| f.psi)
            };
            self.alert(crate::alerts::Alert {
                kind: "drift",
                model: model.name.clone(),
                version: model.version,
                raised_at: chrono::Utc::now(),
                details: serde_json::json!({
                    "window_start": drift.start,
                    "rows": drift.rows,
                    "features": drift.alerts.iter()
                        .map(|f| serde_json::json!({"name": f, "psi": psi_of(f)}))
                        .collect::<Vec<_>>(),
                }),
            });
        }
        for feature in &drift.alerts {
            let psi = drift
                .vs_reference
                .features
                .iter()
                .chain(std::iter::once(&drift.vs_reference.score))
                .find(|f| &f.name == feature)
                .map_or(f64::NAN, |f| f.psi);
            tracing::warn!(model = %model.name, version = model.version, feature = %feature, psi,
                rows = drift.rows, window_start = %drift.start, "drift alert");
            metrics::counter!("aurum_drift_alerts_total", "model" => model.name.clone(),
                "feature" => feature.clone())
            .increment(1);
        }
    }

    /// The drift of `model`'s version: the open window and the closed ones, newest first.
    /// Builds the reference first when needed.
    pub async fn drift_report(
        &self,
        model: &Arc<LoadedModel>,
    ) -> Result<DriftReport, ServiceError> {
        if matches!(
            model.task(),
            aurum_core::Task::Forecast | aurum_core::Task::Ranking
        ) {
            return Err(ServiceError::invalid(
                "monitoring_unavailable",
                None,
                "drift monitoring covers models that score rows (binary, multiclass, regression, anomaly, sequence)",
            ));
        }
        let monitor = self.monitor_of(model);
        monitor.started.store(true, Ordering::SeqCst);
        // Built on its own task: a caller that stops waiting (a request timeout) must not cancel
        // the build half way, or the version would stay unmonitored (predictions leave the build
        // to whoever started it) and each retry would start over.
        let reference = {
            let (this, model, monitor) = (self.clone(), model.clone(), monitor.clone());
            self.detached(async move { this.reference_of(&model, &monitor).await })
                .await?
        };
        let st = monitor.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut windows = Vec::new();
        if let Some(w) = &st.current {
            let drift = self.judge(model, w, st.closed.front(), &reference, true);
            self.raise_gauges_only(model, &drift);
            windows.push(drift);
        }
        for (i, w) in st.closed.iter().enumerate() {
            windows.push(self.judge(model, w, st.closed.get(i + 1), &reference, false));
        }
        let m = &self.inner.config.monitoring;
        Ok(DriftReport {
            model: model.name.clone(),
            version: model.version,
            reference_rows: reference.rows(),
            window_s: m.window_s,
            psi_watch: m.psi_watch,
            psi_alert: m.psi_alert,
            min_rows: m.min_rows,
            unmonitored_rows: st.dropped,
            windows,
        })
    }

    fn raise_gauges_only(&self, model: &LoadedModel, drift: &WindowDrift) {
        let version = model.version.to_string();
        for f in drift
            .vs_reference
            .features
            .iter()
            .chain(std::iter::once(&drift.vs_reference.score))
        {
            metrics::gauge!("aurum_drift_psi", "model" => model.name.clone(),
                "version" => version.clone(), "feature" => f.name.clone())
            .set(f.psi);
        }
    }

    /// Writes copy number `copy` of a version's open window, unless a newer copy was written.
    fn write_current(
        &self,
        name: &str,
        version: u32,
        monitor: &VersionMonitor,
        copy: u64,
        window: &Window,
    ) {
        let mut written = monitor.written.lock().unwrap_or_else(|p| p.into_inner());
        if copy <= *written {
            return;
        }
        let path = self
            .monitoring_dir(name)
            .join(format!("v{version}.current.json"));
        match write_json(&path, window) {
            Ok(()) => *written = copy,
            Err(e) => tracing::warn!(error = %e, "cannot store the open drift window"),
        }
    }

    fn read_current(&self, model: &LoadedModel, reference: &Profile) -> Option<Window> {
        let path = self
            .monitoring_dir(&model.name)
            .join(format!("v{}.current.json", model.version));
        let mut w: Window = serde_json::from_str(&fs_err::read_to_string(path).ok()?).ok()?;
        w.profile.rebuild();
        let same_binning = w.profile.features.len() == reference.features.len();
        (same_binning && Utc::now() < w.end).then_some(w)
    }

    /// Writes every open window to disk (at shutdown).
    pub(crate) fn flush_monitors(&self) {
        let monitors: Vec<((String, u32), Arc<VersionMonitor>)> = self
            .inner
            .monitors
            .by_version
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for ((name, version), monitor) in monitors {
            let current = {
                let mut st = monitor.state.lock().unwrap_or_else(|p| p.into_inner());
                st.copies += 1;
                st.current.clone().map(|w| (st.copies, w))
            };
            if let Some((copy, w)) = current {
                self.write_current(&name, version, &monitor, copy, &w);
            }
        }
    }
}

fn write_json(path: &std::path::Path, value: &impl Serialize) -> std::io::Result<()> {
    crate::flows::write_atomic(
        path,
        &serde_json::to_vec(value).map_err(std::io::Error::other)?,
    )
}

fn append_line(path: &std::path::Path, value: &impl Serialize) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir)?;
    }
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut f = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(&line)?;
    f.sync_data()
}
