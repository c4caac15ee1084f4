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
//!   when it is ready. Imported versions have no training data in aurum and are not monitored;
//!   a build that failed for another reason (the registry or the dataset's store unreachable)
//!   is tried again by the next prediction after [`REFERENCE_RETRY`], or by a drift request.
//! - **Counting.** A request's rows are binned before the window lock is taken; the lock only
//!   adds counts. Only successful predictions are counted. Nothing is written on the request's
//!   path.
//! - **Windows, shared by every process.** `monitoring.window_s` long, aligned to the epoch.
//!   Each process counts into its own copy of a window and stores it in the registry under its
//!   own writer id (the process instance) every `monitoring.flush_ms`, when the window ends and
//!   at shutdown; a window's population is the sum of its writers' counts. So replicas on one
//!   database (or processes on one data directory) never overwrite or double each other's
//!   counts, a restart loses at most the last interval, and every process reports the same
//!   windows. A writer's copies are numbered, and the registry never replaces a copy with an
//!   older one.
//! - **Judging.** Once a window has ended and every process has had two flush intervals to store
//!   its last counts, the first process to claim it in the registry judges the summed window
//!   against the reference and the previous window and raises its alerts, once for all
//!   processes: a `warn` log event `drift alert` with model, version, feature and PSI; the
//!   counter `aurum_drift_alerts_total`; the gauge `aurum_drift_psi`; the platform's alert sink.
//!   Windows are judged by the processes that serve the version.
//! - **Reading.** [`Platform::drift_report`] sums the stored windows (this process's own from
//!   memory, which is newer) and judges each against the reference and the window before it.
//! - **Earlier files.** Releases before the shared windows kept them in
//!   `v<version>.windows.jsonl` and `v<version>.current.json`; they are imported once (as the
//!   writer [`LEGACY_WRITER`], the closed ones marked judged) and renamed `*.imported`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aurum_core::Value;
use aurum_monitor::{Comparison, Profile, Thresholds};
use aurum_registry::DriftCountsRecord;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::models::LoadedModel;
use crate::platform::{Inner, join_error};
use crate::{Platform, ServiceError};

/// Rows buffered per version while its reference is being built.
pub const MAX_PENDING: usize = 50_000;
/// How long predictions leave a version unmonitored after its reference could not be built for
/// a reason that may pass, before they try again.
pub const REFERENCE_RETRY: Duration = Duration::from_secs(60);
/// Closed windows a drift report shows (every window stays in the registry).
const KEEP_CLOSED: usize = 48;
/// The writer id of windows imported from the files of earlier releases.
pub const LEGACY_WRITER: &str = "local-files";

/// Every monitored version of this process.
#[derive(Default)]
pub(crate) struct Monitors {
    by_version: Mutex<HashMap<(String, u32), Arc<VersionMonitor>>>,
}

struct VersionMonitor {
    name: String,
    version: u32,
    reference: tokio::sync::OnceCell<Arc<Profile>>,
    /// A build of the reference is running (or predictions must not start one).
    started: AtomicBool,
    /// The last failed build of the reference.
    failed: Mutex<Option<Failure>>,
    state: Mutex<WindowState>,
    /// Held while this process stores its counts, so that copies reach the registry one
    /// storing at a time.
    storing: tokio::sync::Mutex<()>,
    /// The files of earlier releases were imported (or there were none).
    legacy_done: AtomicBool,
}

/// Why a reference could not be built, when, and whether trying again can help.
#[derive(Clone, Debug)]
struct Failure {
    at: Instant,
    message: String,
    /// An imported version or a changed dataset: no retry.
    permanent: bool,
}

impl VersionMonitor {
    /// Predictions may count rows (buffered until a reference is built) or start a build: no
    /// build has failed, or the last failure may have passed.
    fn may_build(&self) -> bool {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_none_or(|f| !f.permanent && f.at.elapsed() >= REFERENCE_RETRY)
    }
}

#[derive(Default)]
struct WindowState {
    pending: Vec<(Vec<Value>, f64)>,
    dropped: u64,
    /// This process's counts of the open window.
    current: Option<Window>,
    /// `current` changed since its last copy was taken for storing.
    dirty: bool,
    /// This process's windows that ended, with their copy numbers, not yet stored.
    ended: Vec<(u64, Window)>,
    /// Copies taken for storing, numbered from 1.
    copies: u64,
}

impl WindowState {
    /// Moves the open window to `ended` once it is over.
    fn close_if_ended(&mut self, now: DateTime<Utc>) {
        if self.current.as_ref().is_some_and(|w| now >= w.end)
            && let Some(w) = self.current.take()
        {
            self.copies += 1;
            self.ended.push((self.copies, w));
            self.dirty = false;
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    profile: Profile,
}

/// A window's counts as the registry keeps them: the bins of every feature, in the reference's
/// binning and order, and of the score.
#[derive(Debug, Serialize, Deserialize)]
struct StoredCounts {
    features: Vec<Vec<u64>>,
    score: Vec<u64>,
}

impl StoredCounts {
    fn of(profile: &Profile) -> StoredCounts {
        StoredCounts {
            features: profile.features.iter().map(|f| f.counts.clone()).collect(),
            score: profile.score.counts.clone(),
        }
    }

    /// Adds these counts to `into` (the reference's binning); `false`, adding nothing, when
    /// they do not fit it.
    fn add_to(&self, into: &mut Profile) -> bool {
        let fits = self.features.len() == into.features.len()
            && self
                .features
                .iter()
                .zip(&into.features)
                .all(|(c, f)| c.len() == f.counts.len())
            && self.score.len() == into.score.counts.len();
        if fits {
            for (c, f) in self.features.iter().zip(&mut into.features) {
                for (x, y) in f.counts.iter_mut().zip(c) {
                    *x += y;
                }
            }
            for (x, y) in into.score.counts.iter_mut().zip(&self.score) {
                *x += y;
            }
        }
        fits
    }
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
    /// Rows this process scored while the reference was being built that did not fit the
    /// buffer, or whose build failed.
    pub unmonitored_rows: u64,
    pub windows: Vec<WindowDrift>,
}

/// A request's rows made ready for counting before scoring consumes them: binned when the
/// reference exists (no copy of the values), else copied for the buffer.
pub(crate) enum Prepared {
    Binned(Arc<Profile>, Vec<Vec<u32>>),
    Raw(Vec<Vec<Value>>),
}

/// Sums stored counts (and this process's own windows from memory, which replace its stored
/// copies) into one window per start, oldest first. Counts that do not fit the reference's
/// binning are left out with a warning.
fn sum_windows(
    reference: &Profile,
    stored: &[DriftCountsRecord],
    own: &[Window],
    own_writer: &str,
) -> Vec<Window> {
    let mut windows: BTreeMap<i64, Window> = BTreeMap::new();
    fn slot<'a>(
        windows: &'a mut BTreeMap<i64, Window>,
        reference: &Profile,
        start: i64,
        end: i64,
    ) -> Option<&'a mut Window> {
        let s = Utc.timestamp_opt(start, 0).single()?;
        let e = Utc.timestamp_opt(end, 0).single()?;
        Some(windows.entry(start).or_insert_with(|| Window {
            start: s,
            end: e,
            profile: reference.empty_like(),
        }))
    }
    let own_starts: HashSet<i64> = own.iter().map(|w| w.start.timestamp()).collect();
    for c in stored {
        if c.writer == own_writer && own_starts.contains(&c.window_start) {
            continue;
        }
        let Some(w) = slot(&mut windows, reference, c.window_start, c.window_end) else {
            continue;
        };
        let added = serde_json::from_str::<StoredCounts>(&c.counts)
            .is_ok_and(|counts| counts.add_to(&mut w.profile));
        if !added {
            tracing::warn!(model = %c.model, version = c.version, writer = %c.writer,
                window_start = c.window_start, "stored drift counts do not fit the reference; left out");
        }
    }
    for w in own {
        if let Some(into) = slot(
            &mut windows,
            reference,
            w.start.timestamp(),
            w.end.timestamp(),
        ) {
            into.profile.merge(&w.profile);
        }
    }
    windows.into_values().collect()
}

/// Starts the task that stores this process's counts and judges closed windows every
/// `monitoring.flush_ms` (when called inside a tokio runtime). It stops when the platform is
/// dropped.
pub(crate) fn spawn(platform: &Platform) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if !platform.inner.config.monitoring.enabled {
        return;
    }
    let every = Duration::from_millis(platform.inner.config.monitoring.flush_ms);
    let weak: std::sync::Weak<Inner> = Arc::downgrade(&platform.inner);
    handle.spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(inner) = weak.upgrade() else { return };
            let platform = Platform { inner };
            for monitor in platform.monitors() {
                platform.store_counts(&monitor).await;
                platform.judge_closed(&monitor).await;
            }
        }
    });
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
            Some(reference) => Some(Prepared::Binned(
                reference.clone(),
                rows.iter().map(|r| reference.bin_row(r)).collect(),
            )),
            None if monitor.may_build() => Some(Prepared::Raw(rows.to_vec())),
            None => None,
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
                    name: model.name.clone(),
                    version: model.version,
                    reference: tokio::sync::OnceCell::new(),
                    started: AtomicBool::new(false),
                    failed: Mutex::new(None),
                    state: Mutex::new(WindowState::default()),
                    storing: tokio::sync::Mutex::new(()),
                    legacy_done: AtomicBool::new(false),
                })
            })
            .clone()
    }

    fn monitors(&self) -> Vec<Arc<VersionMonitor>> {
        self.inner
            .monitors
            .by_version
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
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
        if let Some(reference) = monitor.reference.get() {
            let binned: Vec<(Vec<u32>, u32)> = rows
                .iter()
                .zip(scores)
                .map(|(r, s)| (reference.bin_row(r), reference.score_bin(*s)))
                .collect();
            let reference = reference.clone();
            self.add_binned(model, &reference, &binned);
            return;
        }
        if !monitor.may_build() {
            return;
        }
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

    /// Adds binned rows to this process's open window (opening it, and setting the ended one
    /// aside for storing, as time goes). Memory only: the periodic task stores the counts.
    fn add_binned(&self, model: &LoadedModel, reference: &Profile, binned: &[(Vec<u32>, u32)]) {
        let monitor = self.monitor_of(model);
        let mut st = monitor.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Utc::now();
        st.close_if_ended(now);
        let w = st.current.get_or_insert_with(|| {
            let len = self.inner.config.monitoring.window_s as i64;
            let start_s = now.timestamp().div_euclid(len) * len;
            let start = Utc.timestamp_opt(start_s, 0).single().unwrap_or(now);
            Window {
                start,
                end: start + chrono::Duration::seconds(len),
                profile: reference.empty_like(),
            }
        });
        for (bins, score_bin) in binned {
            w.profile.add_bins(bins);
            w.profile.add_score_bin(*score_bin);
        }
        st.dirty = true;
    }

    /// The version's reference, built (or read back) once; buffered rows are counted when it
    /// is ready. A failed build is remembered (see [`REFERENCE_RETRY`]) and its buffered rows
    /// counted as unmonitored.
    async fn reference_of(
        &self,
        model: &Arc<LoadedModel>,
        monitor: &Arc<VersionMonitor>,
    ) -> Result<Arc<Profile>, ServiceError> {
        let built = monitor
            .reference
            .get_or_try_init(|| async { self.build_reference(model).await.map(Arc::new) })
            .await
            .cloned();
        let reference = match built {
            Ok(reference) => reference,
            Err(e) => {
                let permanent = matches!(
                    e,
                    ServiceError::Invalid { .. } | ServiceError::NotFound { .. }
                );
                tracing::warn!(model = %model.name, version = model.version, error = %e,
                    permanent, "drift monitoring unavailable for this version");
                *monitor.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Failure {
                    at: Instant::now(),
                    message: e.to_string(),
                    permanent,
                });
                {
                    let mut st = monitor.state.lock().unwrap_or_else(|p| p.into_inner());
                    st.dropped += st.pending.len() as u64;
                    st.pending = Vec::new();
                }
                monitor.started.store(false, Ordering::SeqCst);
                return Err(if permanent {
                    unavailable(&e.to_string())
                } else {
                    e
                });
            }
        };
        *monitor.failed.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let pending = {
            let mut st = monitor.state.lock().unwrap_or_else(|p| p.into_inner());
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

    /// Stores this process's counts that changed: the windows that ended (kept for the next
    /// round when the registry refuses them) and a copy of the open one.
    async fn store_counts(&self, monitor: &VersionMonitor) {
        let _storing = monitor.storing.lock().await;
        if monitor.reference.get().is_none() {
            return;
        }
        let copies = {
            let mut st = monitor.state.lock().unwrap_or_else(|p| p.into_inner());
            st.close_if_ended(Utc::now());
            let mut copies = std::mem::take(&mut st.ended);
            if st.dirty
                && let Some(w) = st.current.clone()
            {
                st.copies += 1;
                copies.push((st.copies, w));
                st.dirty = false;
            }
            copies
        };
        let mut unstored = Vec::new();
        for (copy, w) in copies {
            let record = DriftCountsRecord {
                model: monitor.name.clone(),
                version: monitor.version,
                window_start: w.start.timestamp(),
                window_end: w.end.timestamp(),
                writer: self.inner.instance.clone(),
                seq: copy as i64,
                rows: w.profile.rows(),
                counts: serde_json::to_string(&StoredCounts::of(&w.profile)).unwrap_or_default(),
            };
            if let Err(e) = self.inner.meta.put_drift_counts(&record).await {
                tracing::warn!(model = %monitor.name, version = monitor.version, error = %e,
                    "cannot store drift counts; kept for the next try");
                unstored.push((copy, w));
            }
        }
        if !unstored.is_empty() {
            let mut st = monitor.state.lock().unwrap_or_else(|p| p.into_inner());
            for (copy, w) in unstored {
                if st.current.as_ref().is_some_and(|c| c.start == w.start) {
                    st.dirty = true;
                } else {
                    st.ended.push((copy, w));
                }
            }
        }
    }

    /// Judges every window of the version that ended at least two flush intervals ago (every
    /// process has stored its last counts of it by then) and that no process has claimed,
    /// raising its alerts once.
    async fn judge_closed(&self, monitor: &VersionMonitor) {
        let Some(reference) = monitor.reference.get() else {
            return;
        };
        self.import_legacy_windows(monitor, reference).await;
        let m = &self.inner.config.monitoring;
        let grace = chrono::Duration::milliseconds(2 * m.flush_ms as i64);
        let now = Utc::now();
        let since = now.timestamp() - (KEEP_CLOSED as i64 + 2) * m.window_s as i64;
        let meta = &self.inner.meta;
        let (name, version) = (&monitor.name, monitor.version);
        let listed = async {
            let stored = meta.list_drift_counts(name, version, since).await?;
            let claimed = meta
                .list_drift_claims(name, version, since - m.window_s as i64)
                .await?;
            Ok::<_, aurum_registry::RegistryError>((stored, claimed))
        };
        let (stored, claimed) = match listed.await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(model = %name, version, error = %e, "cannot read drift windows");
                return;
            }
        };
        let claimed: HashSet<i64> = claimed.into_iter().collect();
        let windows = sum_windows(reference, &stored, &[], "");
        for (i, w) in windows.iter().enumerate() {
            let start = w.start.timestamp();
            if claimed.contains(&start) || now < w.end + grace {
                continue;
            }
            match meta
                .claim_drift_window(name, version, start, &self.inner.instance)
                .await
            {
                Ok(true) => {
                    let previous = i.checked_sub(1).map(|j| &windows[j]);
                    let drift = self.judge(w, previous, reference, false);
                    self.raise(name, version, &drift);
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(model = %name, version, error = %e,
                    "cannot claim a closed drift window"),
            }
        }
    }

    /// Imports the window files of an earlier release once (see the module docs); on a failure
    /// the files stay and the next round tries again.
    async fn import_legacy_windows(&self, monitor: &VersionMonitor, reference: &Profile) {
        if monitor.legacy_done.swap(true, Ordering::SeqCst) {
            return;
        }
        let dir = self.monitoring_dir(&monitor.name);
        let closed_file = dir.join(format!("v{}.windows.jsonl", monitor.version));
        let current_file = dir.join(format!("v{}.current.json", monitor.version));
        // Closed windows (judged already) and the open one, summed by start.
        let mut windows: BTreeMap<i64, (Window, bool)> = BTreeMap::new();
        let mut read = |text: &str, closed: bool| {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match serde_json::from_str::<Window>(line) {
                    Ok(w) => match windows.entry(w.start.timestamp()) {
                        std::collections::btree_map::Entry::Occupied(mut e) => {
                            e.get_mut().0.profile.merge(&w.profile);
                            e.get_mut().1 |= closed;
                        }
                        std::collections::btree_map::Entry::Vacant(e) => {
                            e.insert((w, closed));
                        }
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "unreadable drift window in an earlier file; skipped")
                    }
                }
            }
        };
        let files: Vec<PathBuf> = [(&closed_file, true), (&current_file, false)]
            .into_iter()
            .filter_map(|(path, closed)| {
                let text = fs_err::read_to_string(path).ok()?;
                read(&text, closed);
                Some(path.clone())
            })
            .collect();
        if files.is_empty() {
            return;
        }
        let mut imported = 0;
        for (start, (w, closed)) in &windows {
            let counts = StoredCounts::of(&w.profile);
            if !counts.add_to(&mut reference.empty_like()) {
                tracing::warn!(model = %monitor.name, version = monitor.version, window_start = start,
                    "a drift window of an earlier file does not fit the reference; skipped");
                continue;
            }
            let record = DriftCountsRecord {
                model: monitor.name.clone(),
                version: monitor.version,
                window_start: *start,
                window_end: w.end.timestamp(),
                writer: LEGACY_WRITER.into(),
                seq: 1,
                rows: w.profile.rows(),
                counts: serde_json::to_string(&counts).unwrap_or_default(),
            };
            let stored = async {
                self.inner.meta.put_drift_counts(&record).await?;
                if *closed {
                    self.inner
                        .meta
                        .claim_drift_window(&record.model, record.version, *start, LEGACY_WRITER)
                        .await?;
                }
                Ok::<_, aurum_registry::RegistryError>(())
            };
            if let Err(e) = stored.await {
                tracing::warn!(model = %monitor.name, version = monitor.version, error = %e,
                    "cannot import the drift windows of an earlier file; trying again later");
                monitor.legacy_done.store(false, Ordering::SeqCst);
                return;
            }
            imported += 1;
        }
        for path in files {
            let mut done = path.clone().into_os_string();
            done.push(".imported");
            match fs_err::rename(&path, &done) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(error = %e, "cannot rename an imported drift file"),
            }
        }
        tracing::info!(model = %monitor.name, version = monitor.version, windows = imported,
            "imported the drift windows of an earlier release");
    }

    fn judge(
        &self,
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
    fn raise(&self, name: &str, version: u32, drift: &WindowDrift) {
        self.raise_gauges_only(name, version, drift);
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
                model: name.to_string(),
                version,
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
            tracing::warn!(model = %name, version, feature = %feature, psi,
                rows = drift.rows, window_start = %drift.start, "drift alert");
            metrics::counter!("aurum_drift_alerts_total", "model" => name.to_string(),
                "feature" => feature.clone())
            .increment(1);
        }
    }

    /// The drift of `model`'s version: every window stored by any process (this process's own
    /// from memory), newest first. Builds the reference first when needed.
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
        let permanent = monitor
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .filter(|f| f.permanent);
        if let Some(f) = permanent {
            return Err(unavailable(&f.message));
        }
        monitor.started.store(true, Ordering::SeqCst);
        // Built on its own task: a caller that stops waiting (a request timeout) must not cancel
        // the build half way, or the version would stay unmonitored (predictions leave the build
        // to whoever started it) and each retry would start over.
        let reference = {
            let (this, model, monitor) = (self.clone(), model.clone(), monitor.clone());
            self.detached(async move { this.reference_of(&model, &monitor).await })
                .await?
        };
        self.import_legacy_windows(&monitor, &reference).await;
        // No copy is on its way to the registry (out of memory, not yet stored) while the
        // report reads both.
        let _storing = monitor.storing.lock().await;
        let (own, dropped) = {
            let st = monitor.state.lock().unwrap_or_else(|p| p.into_inner());
            let own: Vec<Window> = st
                .ended
                .iter()
                .map(|(_, w)| w.clone())
                .chain(st.current.clone())
                .collect();
            (own, st.dropped)
        };
        let m = &self.inner.config.monitoring;
        let now = Utc::now();
        let since = now.timestamp() - (KEEP_CLOSED as i64 + 1) * m.window_s as i64;
        let stored = self
            .inner
            .meta
            .list_drift_counts(&model.name, model.version, since)
            .await?;
        let all = sum_windows(&reference, &stored, &own, &self.inner.instance);
        let skip = all.len().saturating_sub(KEEP_CLOSED + 1);
        let mut windows = Vec::new();
        for i in (skip..all.len()).rev() {
            let w = &all[i];
            let open = now < w.end;
            let drift = self.judge(w, i.checked_sub(1).map(|j| &all[j]), &reference, open);
            if open {
                self.raise_gauges_only(&model.name, model.version, &drift);
            }
            windows.push(drift);
        }
        Ok(DriftReport {
            model: model.name.clone(),
            version: model.version,
            reference_rows: reference.rows(),
            window_s: m.window_s,
            psi_watch: m.psi_watch,
            psi_alert: m.psi_alert,
            min_rows: m.min_rows,
            unmonitored_rows: dropped,
            windows,
        })
    }

    fn raise_gauges_only(&self, name: &str, version: u32, drift: &WindowDrift) {
        let version = version.to_string();
        for f in drift
            .vs_reference
            .features
            .iter()
            .chain(std::iter::once(&drift.vs_reference.score))
        {
            metrics::gauge!("aurum_drift_psi", "model" => name.to_string(),
                "version" => version.clone(), "feature" => f.name.clone())
            .set(f.psi);
        }
    }

    /// Stores every version's counts (at shutdown).
    pub(crate) async fn flush_monitors(&self) {
        for monitor in self.monitors() {
            self.store_counts(&monitor).await;
        }
    }
}

/// The answer for a version whose drift cannot be monitored.
fn unavailable(why: &str) -> ServiceError {
    ServiceError::invalid(
        "monitoring_unavailable",
        None,
        format!("drift monitoring: {why}"),
    )
}

fn write_json(path: &std::path::Path, value: &impl Serialize) -> std::io::Result<()> {
    crate::flows::write_atomic(
        path,
        &serde_json::to_vec(value).map_err(std::io::Error::other)?,
    )
}
