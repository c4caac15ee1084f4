//! Population drift between a model's training population and what it scores live.
//!
//! A [`Profile`] holds, for every input feature and for the score, counts in a fixed binning
//! chosen once from the reference (training) population: deciles of each numeric feature (dates
//! by their ordinal), the categories of each categorical feature, plus one bin for missing
//! values and, for categoricals, one for categories the reference never had. A live window is
//! an empty copy of the reference's binning ([`Profile::empty_like`]) that rows and scores are
//! counted into ([`Profile::observe_row`], [`Profile::observe_score`]); comparing two profiles
//! ([`Profile::compare`]) gives, per feature and for the score:
//!
//! - the **population stability index**, `Σ (a − e) · ln(a / e)` over bins (shares `a` live,
//!   `e` reference; empty bins count as [`EMPTY_SHARE`] so that the sum stays finite);
//! - for numerics, the **Kolmogorov–Smirnov** statistic on the binned distributions (the largest
//!   gap between the two cumulative shares at the bin edges), a lower bound of the exact KS;
//! - the share of missing values and, for categoricals, of unseen categories;
//! - a [`Level`] from the PSI thresholds (`0.1` watch, `0.25` alert by convention; both
//!   configurable), only when the window has at least `min_rows` rows.
//!
//! Counting is O(log bins) per numeric cell and a hash lookup per categorical cell; there is no
//! IO, no clock and no threads here: the service owns windows, persistence and alerts.

use std::collections::HashMap;

use aurum_core::{ColumnType, Schema, Value};
use serde::{Deserialize, Serialize};

/// The share given to an empty bin in PSI, so that a bin empty on one side contributes a large
/// but finite term.
pub const EMPTY_SHARE: f64 = 1e-4;
/// Quantile bins of a numeric feature (fewer when values repeat).
pub const NUMERIC_BINS: usize = 10;
/// Categories kept by name; the rest of the reference's categories share one bin.
pub const MAX_CATEGORIES: usize = 50;

/// How the cells of one feature are binned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Binning {
    /// Bin `i` holds values in `[edges[i-1], edges[i])`; the first is below `edges[0]`, the last
    /// at or above the last edge. Then one bin for missing values.
    Numeric { edges: Vec<f64> },
    /// One bin per named category, one for the reference's other categories, one for unseen
    /// categories, one for missing values.
    Categorical {
        categories: Vec<String>,
        /// Reference categories beyond the named ones (they go to the "other" bin, not to
        /// "unseen").
        others: Vec<String>,
    },
}

impl Binning {
    fn n_bins(&self) -> usize {
        match self {
            Binning::Numeric { edges } => edges.len() + 2,
            Binning::Categorical { categories, .. } => categories.len() + 3,
        }
    }
}

/// Counts of one feature (or the score) in its binning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureProfile {
    pub name: String,
    pub binning: Binning,
    pub counts: Vec<u64>,
    #[serde(skip)]
    index: HashMap<String, usize>,
}

impl FeatureProfile {
    fn new(name: &str, binning: Binning) -> FeatureProfile {
        let counts = vec![0; binning.n_bins()];
        let mut f = FeatureProfile {
            name: name.to_string(),
            binning,
            counts,
            index: HashMap::new(),
        };
        f.build_index();
        f
    }

    fn build_index(&mut self) {
        self.index.clear();
        if let Binning::Categorical { categories, others } = &self.binning {
            let other = categories.len();
            for (i, c) in categories.iter().enumerate() {
                self.index.insert(c.clone(), i);
            }
            for c in others {
                self.index.insert(c.clone(), other);
            }
        }
    }

    fn missing_bin(&self) -> usize {
        self.counts.len() - 1
    }

    fn unseen_bin(&self) -> Option<usize> {
        matches!(self.binning, Binning::Categorical { .. }).then(|| self.counts.len() - 2)
    }

    /// The bin of a numeric reading (`None` = missing).
    fn numeric_bin(&self, x: Option<f64>) -> usize {
        match (x, &self.binning) {
            (Some(x), Binning::Numeric { edges }) if x.is_finite() => {
                edges.partition_point(|e| *e <= x)
            }
            _ => self.missing_bin(),
        }
    }

    fn observe(&mut self, v: &Value) {
        let bin = self.bin_of(v);
        self.counts[bin] += 1;
    }

    fn bin_of(&self, v: &Value) -> usize {
        match &self.binning {
            Binning::Numeric { .. } => self.numeric_bin(numeric(v)),
            Binning::Categorical { .. } => match category(v) {
                None => self.missing_bin(),
                Some(c) => match self.index.get(c.as_ref()) {
                    Some(i) => *i,
                    None => self.counts.len() - 2,
                },
            },
        }
    }

    /// Rows counted.
    pub fn rows(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn shares(&self) -> Vec<f64> {
        let n = self.rows().max(1) as f64;
        self.counts.iter().map(|c| *c as f64 / n).collect()
    }

    /// Population stability index of `self` (live) against `reference`.
    pub fn psi(&self, reference: &FeatureProfile) -> f64 {
        self.shares()
            .iter()
            .zip(reference.shares())
            .map(|(a, e)| {
                let (a, e) = (a.max(EMPTY_SHARE), e.max(EMPTY_SHARE));
                (a - e) * (a / e).ln()
            })
            .sum()
    }

    /// Binned Kolmogorov–Smirnov statistic over the non-missing values (numerics only).
    pub fn ks(&self, reference: &FeatureProfile) -> Option<f64> {
        if !matches!(self.binning, Binning::Numeric { .. }) {
            return None;
        }
        let present = |f: &FeatureProfile| {
            let m = f.missing_bin();
            let counts = &f.counts[..m];
            let n: u64 = counts.iter().sum();
            (counts.to_vec(), n)
        };
        let ((a, na), (e, ne)) = (present(self), present(reference));
        if na == 0 || ne == 0 {
            return None;
        }
        let (mut ca, mut ce, mut ks) = (0.0, 0.0, 0.0f64);
        for (x, y) in a.iter().zip(&e) {
            ca += *x as f64 / na as f64;
            ce += *y as f64 / ne as f64;
            ks = ks.max((ca - ce).abs());
        }
        Some(ks)
    }

    fn share(&self, bin: Option<usize>) -> f64 {
        match bin {
            Some(b) => self.counts[b] as f64 / self.rows().max(1) as f64,
            None => 0.0,
        }
    }
}

fn numeric(v: &Value) -> Option<f64> {
    match v {
        Value::Date(d) => Some(d.signed_duration_since(epoch()).num_days() as f64),
        Value::DateTime(t) => Some(t.and_utc().timestamp() as f64 / 86_400.0),
        other => other.as_f64().filter(|x| x.is_finite()),
    }
}

fn epoch() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

fn category(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::Null => None,
        Value::Str(s) => Some(std::borrow::Cow::Borrowed(s.as_str())),
        Value::Integer(i) => Some(std::borrow::Cow::Owned(i.to_string())),
        Value::Boolean(b) => Some(std::borrow::Cow::Owned(b.to_string())),
        Value::Float(x) if x.is_finite() => Some(std::borrow::Cow::Owned(x.to_string())),
        Value::Float(_) => None,
        Value::Date(d) => Some(std::borrow::Cow::Owned(d.to_string())),
        Value::DateTime(t) => Some(std::borrow::Cow::Owned(t.to_string())),
    }
}

/// Counts of every feature of a model's input schema, in row order, and of its score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub features: Vec<FeatureProfile>,
    pub score: FeatureProfile,
}

/// The drift of one feature (or the score) of a window against a reference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FeatureDrift {
    pub name: String,
    pub psi: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks: Option<f64>,
    pub missing_share: f64,
    pub reference_missing_share: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unseen_share: Option<f64>,
    pub level: Level,
}

/// How far a distribution moved, by its PSI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Below the watch threshold, or too few rows to tell.
    Stable,
    /// Between the watch and the alert thresholds.
    Watch,
    /// At or above the alert threshold.
    Alert,
}

/// PSI thresholds and the fewest rows a window needs before it is judged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    pub psi_watch: f64,
    pub psi_alert: f64,
    pub min_rows: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            psi_watch: 0.1,
            psi_alert: 0.25,
            min_rows: 200,
        }
    }
}

/// A window against a reference: every feature, then the score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub rows: u64,
    pub features: Vec<FeatureDrift>,
    pub score: FeatureDrift,
}

impl Comparison {
    /// Names of the features (and `score`) at [`Level::Alert`].
    pub fn alerts(&self) -> Vec<&str> {
        self.features
            .iter()
            .chain(std::iter::once(&self.score))
            .filter(|f| f.level == Level::Alert)
            .map(|f| f.name.as_str())
            .collect()
    }
}

impl Profile {
    /// The reference profile of `rows` (aligned to `schema`) and their `scores`: the binning is
    /// chosen from these values and they are counted into it. Text columns are profiled as
    /// categories.
    pub fn reference(schema: &Schema, rows: &[Vec<Value>], scores: &[f64]) -> Profile {
        let features = schema
            .fields
            .iter()
            .enumerate()
            .map(|(j, field)| {
                let binning = match field.ty {
                    ColumnType::Categorical | ColumnType::Text | ColumnType::Boolean => {
                        categorical_binning(rows.iter().filter_map(|r| r.get(j)))
                    }
                    _ => numeric_binning(rows.iter().filter_map(|r| r.get(j).and_then(numeric))),
                };
                let mut f = FeatureProfile::new(&field.name, binning);
                for r in rows {
                    if let Some(v) = r.get(j) {
                        f.observe(v);
                    }
                }
                f
            })
            .collect();
        let mut score = FeatureProfile::new("score", numeric_binning(scores.iter().copied()));
        for s in scores {
            score.observe(&Value::Float(*s));
        }
        Profile { features, score }
    }

    /// The same binning with every count at zero: a new window.
    pub fn empty_like(&self) -> Profile {
        let zero = |f: &FeatureProfile| FeatureProfile::new(&f.name, f.binning.clone());
        Profile {
            features: self.features.iter().map(zero).collect(),
            score: zero(&self.score),
        }
    }

    /// Restores the lookup tables after deserialising.
    pub fn rebuild(&mut self) {
        for f in &mut self.features {
            f.build_index();
        }
        self.score.build_index();
    }

    /// The bin of each feature of `row`, in the reference's binning (for [`Profile::add_bins`]
    /// on a window later: binning needs no lock, counting does).
    pub fn bin_row(&self, row: &[Value]) -> Vec<u32> {
        self.features
            .iter()
            .zip(row)
            .map(|(f, v)| f.bin_of(v) as u32)
            .collect()
    }

    /// The bin of a score.
    pub fn score_bin(&self, score: f64) -> u32 {
        self.score.bin_of(&Value::Float(score)) as u32
    }

    /// Counts a row binned by [`Profile::bin_row`] (bins out of range are ignored).
    pub fn add_bins(&mut self, bins: &[u32]) {
        for (f, b) in self.features.iter_mut().zip(bins) {
            if let Some(c) = f.counts.get_mut(*b as usize) {
                *c += 1;
            }
        }
    }

    /// Counts a score binned by [`Profile::score_bin`].
    pub fn add_score_bin(&mut self, bin: u32) {
        if let Some(c) = self.score.counts.get_mut(bin as usize) {
            *c += 1;
        }
    }

    /// Counts one row (aligned to the schema the reference was built from).
    pub fn observe_row(&mut self, row: &[Value]) {
        for (f, v) in self.features.iter_mut().zip(row) {
            f.observe(v);
        }
    }

    /// Counts one score.
    pub fn observe_score(&mut self, score: f64) {
        self.score.observe(&Value::Float(score));
    }

    /// Rows counted (by the score when scores were counted, else by the first feature).
    pub fn rows(&self) -> u64 {
        let scored = self.score.rows();
        if scored > 0 {
            scored
        } else {
            self.features.first().map_or(0, FeatureProfile::rows)
        }
    }

    /// Adds another window's counts (same binning) into this one.
    pub fn merge(&mut self, other: &Profile) {
        for (a, b) in self
            .features
            .iter_mut()
            .chain(std::iter::once(&mut self.score))
            .zip(other.features.iter().chain(std::iter::once(&other.score)))
        {
            for (x, y) in a.counts.iter_mut().zip(&b.counts) {
                *x += y;
            }
        }
    }

    /// This window against `reference`.
    pub fn compare(&self, reference: &Profile, t: &Thresholds) -> Comparison {
        let rows = self.rows();
        let drift = |live: &FeatureProfile, base: &FeatureProfile| {
            let psi = live.psi(base);
            let level = if live.rows() < t.min_rows {
                Level::Stable
            } else if psi >= t.psi_alert {
                Level::Alert
            } else if psi >= t.psi_watch {
                Level::Watch
            } else {
                Level::Stable
            };
            FeatureDrift {
                name: live.name.clone(),
                psi,
                ks: live.ks(base),
                missing_share: live.share(Some(live.missing_bin())),
                reference_missing_share: base.share(Some(base.missing_bin())),
                unseen_share: live.unseen_bin().map(|b| live.share(Some(b))),
                level,
            }
        };
        Comparison {
            rows,
            features: self
                .features
                .iter()
                .zip(&reference.features)
                .map(|(a, b)| drift(a, b))
                .collect(),
            score: drift(&self.score, &reference.score),
        }
    }
}

/// PSI of `live` values against `reference` values, in the reference's decile binning (used to
/// compare two models' score distributions on the same requests).
pub fn psi_of(reference: &[f64], live: &[f64]) -> f64 {
    let binning = numeric_binning(reference.iter().copied());
    let mut base = FeatureProfile::new("reference", binning.clone());
    let mut other = FeatureProfile::new("live", binning);
    for x in reference {
        base.observe(&Value::Float(*x));
    }
    for x in live {
        other.observe(&Value::Float(*x));
    }
    other.psi(&base)
}

/// Decile edges of the values, deduplicated (a feature with few distinct values gets fewer
/// bins; a constant one gets a single edge).
fn numeric_binning(values: impl Iterator<Item = f64>) -> Binning {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = Vec::new();
    if !v.is_empty() {
        for i in 1..NUMERIC_BINS {
            let e = v[(i * v.len() / NUMERIC_BINS).min(v.len() - 1)];
            if edges.last() != Some(&e) && e > v[0] {
                edges.push(e);
            }
        }
        if edges.is_empty() {
            edges.push(v[0]);
        }
    }
    Binning::Numeric { edges }
}

fn categorical_binning<'a>(values: impl Iterator<Item = &'a Value>) -> Binning {
    let mut freq: HashMap<String, u64> = HashMap::new();
    for v in values {
        if let Some(c) = category(v) {
            *freq.entry(c.into_owned()).or_default() += 1;
        }
    }
    let mut by_freq: Vec<(String, u64)> = freq.into_iter().collect();
    by_freq.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let others = by_freq
        .split_off(by_freq.len().min(MAX_CATEGORIES))
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    Binning::Categorical {
        categories: by_freq.into_iter().map(|(c, _)| c).collect(),
        others,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurum_core::Field;
    use rand::{Rng, SeedableRng};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("amount", ColumnType::Float),
            Field::new("purpose", ColumnType::Categorical),
        ])
        .unwrap()
    }

    fn rows(n: usize, shift: f64, seed: u64, purposes: &[&str]) -> Vec<Vec<Value>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let amount = rng.random::<f64>() * 1000.0 + shift;
                let p = purposes[rng.random_range(0..purposes.len())];
                vec![Value::Float(amount), Value::Str(p.into())]
            })
            .collect()
    }

    #[test]
    fn a_sample_of_the_same_population_is_stable() {
        let reference = rows(5000, 0.0, 1, &["car", "home", "other"]);
        let scores: Vec<f64> = (0..5000).map(|i| i as f64 / 5000.0).collect();
        let base = Profile::reference(&schema(), &reference, &scores);
        let mut live = base.empty_like();
        for (r, s) in rows(1000, 0.0, 2, &["car", "home", "other"])
            .iter()
            .zip(&scores)
        {
            live.observe_row(r);
            live.observe_score(*s * 5.0 % 1.0);
        }
        let c = live.compare(&base, &Thresholds::default());
        assert_eq!(c.rows, 1000);
        assert!(c.alerts().is_empty(), "{c:?}");
        assert!(c.features[0].psi < 0.05, "{c:?}");
        assert!(c.features[0].ks.unwrap() < 0.06, "{c:?}");
    }

    #[test]
    fn a_shifted_feature_and_a_new_category_alert_and_nothing_else_does() {
        let reference = rows(5000, 0.0, 1, &["car", "home"]);
        let base = Profile::reference(&schema(), &reference, &[]);
        let mut live = base.empty_like();
        for r in rows(1000, 400.0, 3, &["car", "home", "crypto"]) {
            live.observe_row(&r);
        }
        let c = live.compare(&base, &Thresholds::default());
        assert_eq!(c.features[0].level, Level::Alert, "{c:?}");
        assert!(c.features[0].ks.unwrap() > 0.3, "{c:?}");
        assert_eq!(c.features[1].level, Level::Alert, "{c:?}");
        assert!(
            (c.features[1].unseen_share.unwrap() - 1.0 / 3.0).abs() < 0.05,
            "{c:?}"
        );
        // Same categories in the same shares: stable.
        let mut same = base.empty_like();
        for r in rows(1000, 0.0, 4, &["car", "home"]) {
            same.observe_row(&r);
        }
        assert!(
            same.compare(&base, &Thresholds::default())
                .alerts()
                .is_empty()
        );
    }

    #[test]
    fn missing_values_are_their_own_bin_and_small_windows_are_not_judged() {
        let reference = rows(1000, 0.0, 1, &["a"]);
        let base = Profile::reference(&schema(), &reference, &[]);
        let mut live = base.empty_like();
        for _ in 0..300 {
            live.observe_row(&[Value::Null, Value::Null]);
        }
        let c = live.compare(&base, &Thresholds::default());
        assert_eq!(c.features[0].missing_share, 1.0);
        assert_eq!(c.features[0].level, Level::Alert);
        let mut small = base.empty_like();
        for _ in 0..10 {
            small.observe_row(&[Value::Null, Value::Null]);
        }
        assert_eq!(
            small.compare(&base, &Thresholds::default()).features[0].level,
            Level::Stable
        );
    }

    #[test]
    fn profiles_round_trip_through_json() {
        let base = Profile::reference(&schema(), &rows(500, 0.0, 1, &["x", "y"]), &[0.5]);
        let text = serde_json::to_string(&base).unwrap();
        let mut back: Profile = serde_json::from_str(&text).unwrap();
        back.rebuild();
        let mut a = back.empty_like();
        let mut b = base.empty_like();
        for r in rows(100, 50.0, 9, &["x", "z"]) {
            a.observe_row(&r);
            b.observe_row(&r);
        }
        assert_eq!(a, b);
    }
}
