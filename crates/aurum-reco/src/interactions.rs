//! Interaction records → sparse user×item and item×user matrices with id maps.
//!
//! Why compressed sparse rows in both orientations: every model here walks either a user's items
//! (ALS user step, scoring, filters) or an item's users (ALS item step, item-item similarity,
//! random walks). Holding both (twice the memory of one) keeps each of those walks a contiguous
//! slice instead of a scan, which is what `implicit` does with `user_items` and its transpose.
//!
//! Why the weighting lives here and not in the models: implicit-feedback models (ALS, BPR,
//! item-item) read the matrix values as *confidence*; deciding how counts or ratings become
//! confidence (Hu, Koren & Volinsky's `1 + α·r`, or `1 + α·ln(1 + r/ε)`) is a data decision made
//! once, so every model fitted on the same [`Interactions`] sees the same numbers.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::RecoError;

/// A bijection between external string ids and dense indices `0..len`, in first-seen order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct IdMap {
    ids: Vec<String>,
    index: HashMap<String, u32>,
}

impl From<Vec<String>> for IdMap {
    fn from(ids: Vec<String>) -> Self {
        let index = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i as u32))
            .collect();
        IdMap { ids, index }
    }
}

impl From<IdMap> for Vec<String> {
    fn from(map: IdMap) -> Self {
        map.ids
    }
}

impl IdMap {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    pub fn get(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }
    /// The id of an index. Panics only on an index this map did not hand out.
    pub fn id(&self, index: u32) -> &str {
        &self.ids[index as usize]
    }
    pub fn ids(&self) -> &[String] {
        &self.ids
    }
    pub(crate) fn insert(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.push(id.to_string());
        self.index.insert(id.to_string(), i);
        i
    }
    /// Indices of `ids`, or an error listing every id this map does not know.
    pub fn resolve<S: AsRef<str>>(
        &self,
        kind: &'static str,
        ids: &[S],
    ) -> Result<Vec<u32>, RecoError> {
        let mut out = Vec::with_capacity(ids.len());
        let mut unknown = Vec::new();
        for id in ids {
            match self.get(id.as_ref()) {
                Some(i) => out.push(i),
                None => unknown.push(id.as_ref().to_string()),
            }
        }
        if unknown.is_empty() {
            Ok(out)
        } else {
            Err(RecoError::UnknownIds { kind, ids: unknown })
        }
    }
}

/// A compressed sparse row matrix of `f32` with sorted column indices per row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Csr {
    rows: usize,
    cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<f32>,
}

impl Csr {
    /// Builds from `(row, col, value)` triplets; duplicates must already be merged.
    pub(crate) fn from_triplets(rows: usize, cols: usize, mut t: Vec<(u32, u32, f32)>) -> Csr {
        t.sort_unstable_by_key(|&(r, c, _)| (r, c));
        let mut indptr = vec![0usize; rows + 1];
        for &(r, _, _) in &t {
            indptr[r as usize + 1] += 1;
        }
        for r in 0..rows {
            indptr[r + 1] += indptr[r];
        }
        let indices = t.iter().map(|&(_, c, _)| c).collect();
        let data = t.iter().map(|&(_, _, v)| v).collect();
        Csr {
            rows,
            cols,
            indptr,
            indices,
            data,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }
    /// Column indices and values of one row (empty for a row out of range).
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        if r >= self.rows {
            return (&[], &[]);
        }
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        (&self.indices[a..b], &self.data[a..b])
    }
    /// The entry range of one row, for arrays aligned with the entries.
    pub(crate) fn row_range(&self, r: usize) -> std::ops::Range<usize> {
        self.indptr[r]..self.indptr[r + 1]
    }
    pub fn contains(&self, r: usize, c: u32) -> bool {
        self.row(r).0.binary_search(&c).is_ok()
    }
    pub fn transpose(&self) -> Csr {
        let mut t = Vec::with_capacity(self.nnz());
        for r in 0..self.rows {
            let (cols, vals) = self.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                t.push((c, r as u32, v));
            }
        }
        Csr::from_triplets(self.cols, self.rows, t)
    }
    pub(crate) fn data(&self) -> &[f32] {
        &self.data
    }
    pub(crate) fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
    pub(crate) fn indices(&self) -> &[u32] {
        &self.indices
    }
}

/// One raw interaction: who, what, how much, when.
#[derive(Clone, Debug, PartialEq)]
pub struct InteractionRecord {
    pub user: String,
    pub item: String,
    /// A count or rating. `None` counts as one event.
    pub weight: Option<f32>,
    /// Seconds (any monotone clock); needed only for time-based splits.
    pub timestamp: Option<i64>,
}

impl InteractionRecord {
    pub fn new(user: impl Into<String>, item: impl Into<String>) -> Self {
        InteractionRecord {
            user: user.into(),
            item: item.into(),
            weight: None,
            timestamp: None,
        }
    }
    pub fn weight(mut self, weight: f32) -> Self {
        self.weight = Some(weight);
        self
    }
    pub fn at(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }
}

/// How the summed value `r` of a (user, item) pair becomes the matrix entry (the confidence).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Weighting {
    /// Every present pair is 1.
    Binary,
    /// `1 + alpha · r` (Hu, Koren & Volinsky 2008, eq. 6).
    Linear { alpha: f32 },
    /// `1 + alpha · ln(1 + r / epsilon)` (Hu, Koren & Volinsky 2008, eq. 7), for heavy-tailed counts.
    Log { alpha: f32, epsilon: f32 },
}

/// Options for [`Interactions::build`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InteractionOptions {
    pub weighting: Weighting,
    /// Explicit ratings: keep records with `weight >= threshold` as positives, each counting one
    /// event (so `r` is the number of positive records for the pair). Every record must then
    /// carry a weight.
    pub rating_threshold: Option<f32>,
}

impl Default for InteractionOptions {
    fn default() -> Self {
        InteractionOptions {
            weighting: Weighting::Linear { alpha: 1.0 },
            rating_threshold: None,
        }
    }
}

impl InteractionOptions {
    fn validate(&self) -> Result<(), RecoError> {
        match self.weighting {
            Weighting::Binary => {}
            Weighting::Linear { alpha } => {
                crate::error::check_range("weighting.alpha", alpha, 0.0, 1e6)?
            }
            Weighting::Log { alpha, epsilon } => {
                crate::error::check_range("weighting.alpha", alpha, 0.0, 1e6)?;
                if !(epsilon.is_finite() && epsilon > 0.0) {
                    return Err(RecoError::param(
                        "weighting.epsilon",
                        format!("must be finite and > 0, got {epsilon}"),
                    ));
                }
            }
        }
        if let Some(t) = self.rating_threshold
            && !t.is_finite()
        {
            return Err(RecoError::param(
                "rating_threshold",
                format!("must be finite, got {t}"),
            ));
        }
        Ok(())
    }

    fn confidence(&self, r: f32) -> f32 {
        match self.weighting {
            Weighting::Binary => 1.0,
            Weighting::Linear { alpha } => 1.0 + alpha * r,
            Weighting::Log { alpha, epsilon } => 1.0 + alpha * (1.0 + r / epsilon).ln(),
        }
    }
}

/// The user×item interaction matrix (values are confidences), its transpose, the id maps, and
/// the latest timestamp of every entry when all records had one.
#[derive(Clone, Debug, PartialEq)]
pub struct Interactions {
    users: IdMap,
    items: IdMap,
    user_items: Csr,
    item_users: Csr,
    /// Aligned with `user_items` entries.
    timestamps: Option<Vec<i64>>,
}

impl Interactions {
    /// Validates and aggregates records. Duplicate (user, item) pairs are summed (their latest
    /// timestamp kept) before the weighting is applied.
    pub fn build(
        records: &[InteractionRecord],
        options: &InteractionOptions,
    ) -> Result<Interactions, RecoError> {
        options.validate()?;
        let mut users = IdMap::default();
        let mut items = IdMap::default();
        let mut pairs: HashMap<(u32, u32), (f32, Option<i64>)> = HashMap::new();
        let mut all_timed = true;
        let bad = |index, field, reason: &str| RecoError::InvalidRecord {
            index,
            field,
            reason: reason.to_string(),
        };
        for (index, rec) in records.iter().enumerate() {
            if rec.user.trim().is_empty() {
                return Err(bad(index, "user", "must not be empty"));
            }
            if rec.item.trim().is_empty() {
                return Err(bad(index, "item", "must not be empty"));
            }
            let value = match (rec.weight, options.rating_threshold) {
                (Some(w), _) if !w.is_finite() => {
                    return Err(bad(index, "weight", &format!("must be finite, got {w}")));
                }
                (Some(w), None) if w < 0.0 => {
                    return Err(bad(
                        index,
                        "weight",
                        &format!("must be >= 0 for implicit feedback, got {w}"),
                    ));
                }
                (None, Some(_)) => {
                    return Err(bad(
                        index,
                        "weight",
                        "a rating is required when rating_threshold is set",
                    ));
                }
                (Some(w), Some(t)) => {
                    if w < t {
                        continue;
                    }
                    1.0
                }
                (Some(w), None) => w,
                (None, None) => 1.0,
            };
            if value == 0.0 {
                continue;
            }
            all_timed &= rec.timestamp.is_some();
            let u = users.insert(&rec.user);
            let i = items.insert(&rec.item);
            let e = pairs.entry((u, i)).or_insert((0.0, None));
            e.0 += value;
            e.1 = match (e.1, rec.timestamp) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        if pairs.is_empty() {
            let why = if records.is_empty() {
                "no records"
            } else {
                "every record was dropped (zero weight or below rating_threshold)"
            };
            return Err(RecoError::NoInteractions(why.to_string()));
        }
        let mut t: Vec<(u32, u32, f32, i64)> = pairs
            .into_iter()
            .map(|((u, i), (r, ts))| (u, i, options.confidence(r), ts.unwrap_or(0)))
            .collect();
        t.sort_unstable_by_key(|&(u, i, _, _)| (u, i));
        let timestamps = all_timed.then(|| t.iter().map(|x| x.3).collect());
        let user_items = Csr::from_triplets(
            users.len(),
            items.len(),
            t.iter().map(|x| (x.0, x.1, x.2)).collect(),
        );
        Ok(Interactions::from_parts(
            users, items, user_items, timestamps,
        ))
    }

    /// Assembles from parts that already agree (used by splits: same id maps, fewer entries).
    pub(crate) fn from_parts(
        users: IdMap,
        items: IdMap,
        user_items: Csr,
        timestamps: Option<Vec<i64>>,
    ) -> Interactions {
        let item_users = user_items.transpose();
        Interactions {
            users,
            items,
            user_items,
            item_users,
            timestamps,
        }
    }

    pub fn users(&self) -> &IdMap {
        &self.users
    }
    pub fn items(&self) -> &IdMap {
        &self.items
    }
    pub fn user_items(&self) -> &Csr {
        &self.user_items
    }
    pub fn item_users(&self) -> &Csr {
        &self.item_users
    }
    /// Latest timestamp per `user_items` entry, when every record had one.
    pub fn timestamps(&self) -> Option<&[i64]> {
        self.timestamps.as_deref()
    }
    pub fn nnz(&self) -> usize {
        self.user_items.nnz()
    }
    /// Whether `other` uses the same user and item index spaces (e.g. a train/test pair).
    pub fn same_ids(&self, other: &Interactions) -> bool {
        self.users == other.users && self.items == other.items
    }

    /// Per-entry recency weights (aligned with [`Interactions::user_items`]): a user's held
    /// item `r` places back from their newest (0 = newest; ties in time: the larger item index
    /// counts as newer) weighs `0.5^(r / (h·n))` with `n` the items the user holds, so the
    /// weight halves every `h·n` items back. `None` when `half_life` is 0. Without timestamps
    /// the error names `param`.
    pub fn recency_weights(
        &self,
        param: &'static str,
        half_life: f32,
    ) -> Result<Option<Vec<f32>>, RecoError> {
        crate::error::check_range(param, half_life, 0.0, 1e3)?;
        if half_life == 0.0 {
            return Ok(None);
        }
        let Some(ts) = self.timestamps() else {
            return Err(RecoError::param(
                param,
                "recency weighting needs a timestamp on every interaction (set time_column), or 0",
            ));
        };
        let m = &self.user_items;
        let mut out = vec![0f32; m.nnz()];
        let mut order = Vec::new();
        for u in 0..m.rows() {
            let range = m.row_range(u);
            let cols = m.row(u).0;
            let t = &ts[range.clone()];
            let n = cols.len();
            order.clear();
            order.extend(0..n);
            order.sort_unstable_by_key(|&j| (std::cmp::Reverse(t[j]), std::cmp::Reverse(cols[j])));
            let scale = half_life * n as f32;
            for (r, &j) in order.iter().enumerate() {
                out[range.start + j] = 0.5f32.powf(r as f32 / scale);
            }
        }
        Ok(Some(out))
    }

    /// The same interactions with every confidence `c` replaced by `1 + (c − 1)·w`, `w` the
    /// entry's [`Interactions::recency_weights`]: the preference part of the confidence fades
    /// with age. Unchanged when `half_life` is 0.
    pub fn with_recent_confidence(
        &self,
        param: &'static str,
        half_life: f32,
    ) -> Result<Interactions, RecoError> {
        let Some(w) = self.recency_weights(param, half_life)? else {
            return Ok(self.clone());
        };
        let m = &self.user_items;
        let mut t = Vec::with_capacity(m.nnz());
        for u in 0..m.rows() {
            let range = m.row_range(u);
            let (cols, vals) = m.row(u);
            for ((&c, &v), &wi) in cols.iter().zip(vals).zip(&w[range]) {
                t.push((u as u32, c, 1.0 + (v - 1.0) * wi));
            }
        }
        Ok(Interactions::from_parts(
            self.users.clone(),
            self.items.clone(),
            Csr::from_triplets(m.rows(), m.cols(), t),
            self.timestamps.clone(),
        ))
    }

    /// What a fitted model keeps: the id maps and the user×item matrix.
    pub fn history(&self) -> History {
        History {
            users: self.users.clone(),
            items: self.items.clone(),
            user_items: self.user_items.clone(),
        }
    }
}

/// The part of [`Interactions`] a fitted model stores to answer queries by id and to exclude
/// what a user already holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub users: IdMap,
    pub items: IdMap,
    pub user_items: Csr,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(u: &str, i: &str, w: f32, t: i64) -> InteractionRecord {
        InteractionRecord::new(u, i).weight(w).at(t)
    }

    #[test]
    fn duplicates_are_summed_and_weighted() {
        let records = vec![
            rec("a", "x", 2.0, 1),
            rec("a", "x", 1.0, 5),
            rec("b", "y", 1.0, 3),
        ];
        let opts = InteractionOptions {
            weighting: Weighting::Linear { alpha: 2.0 },
            rating_threshold: None,
        };
        let m = Interactions::build(&records, &opts).unwrap();
        assert_eq!(m.users().len(), 2);
        assert_eq!(m.nnz(), 2);
        let (cols, vals) = m.user_items().row(0);
        assert_eq!(cols, &[0]);
        assert_eq!(vals, &[1.0 + 2.0 * 3.0]);
        assert_eq!(m.timestamps().unwrap(), &[5, 3]);
        assert_eq!(m.item_users().row(1).0, &[1]);
    }

    #[test]
    fn log_weighting_and_rating_threshold() {
        let records = vec![
            rec("a", "x", 5.0, 1),
            rec("a", "y", 3.5, 1),
            rec("b", "x", 4.0, 2),
        ];
        let opts = InteractionOptions {
            weighting: Weighting::Log {
                alpha: 1.0,
                epsilon: 1.0,
            },
            rating_threshold: Some(4.0),
        };
        let m = Interactions::build(&records, &opts).unwrap();
        assert_eq!(m.items().len(), 1, "y is below the threshold");
        let v = m.user_items().row(0).1[0];
        assert!((v - (1.0 + 2f32.ln())).abs() < 1e-6);
    }

    #[test]
    fn bad_records_name_index_and_field() {
        let opts = InteractionOptions::default();
        let e =
            Interactions::build(&[rec("a", "x", 1.0, 0), rec("", "x", 1.0, 0)], &opts).unwrap_err();
        assert_eq!(e.to_string(), "records[1].user: must not be empty");
        let e = Interactions::build(&[rec("a", "x", f32::NAN, 0)], &opts).unwrap_err();
        assert!(e.to_string().starts_with("records[0].weight"), "{e}");
        let e = Interactions::build(&[rec("a", "x", -1.0, 0)], &opts).unwrap_err();
        assert_eq!(e.code(), "reco_invalid_record");
        let thr = InteractionOptions {
            rating_threshold: Some(4.0),
            ..opts
        };
        let e = Interactions::build(&[InteractionRecord::new("a", "x")], &thr).unwrap_err();
        assert!(e.to_string().contains("rating_threshold"), "{e}");
        let e = Interactions::build(&[rec("a", "x", 1.0, 0)], &thr).unwrap_err();
        assert_eq!(e.code(), "reco_no_interactions");
        let bad = InteractionOptions {
            weighting: Weighting::Log {
                alpha: 1.0,
                epsilon: 0.0,
            },
            rating_threshold: None,
        };
        let e = Interactions::build(&[rec("a", "x", 1.0, 0)], &bad).unwrap_err();
        assert!(e.to_string().contains("weighting.epsilon"), "{e}");
    }

    #[test]
    fn missing_timestamp_drops_the_time_column() {
        let m = Interactions::build(
            &[rec("a", "x", 1.0, 0), InteractionRecord::new("b", "x")],
            &InteractionOptions::default(),
        )
        .unwrap();
        assert!(m.timestamps().is_none());
    }

    #[test]
    fn id_map_round_trips_through_serde() {
        let mut m = IdMap::default();
        m.insert("a");
        m.insert("b");
        let back: IdMap = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back.get("b"), Some(1));
        let e = back.resolve("item", &["a", "zz"]).unwrap_err();
        assert_eq!(e.to_string(), "unknown item id(s) `zz`");
    }
}
