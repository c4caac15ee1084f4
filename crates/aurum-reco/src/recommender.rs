//! What every model shares: the [`Recommender`] trait, filters, fit control and stored form.
//!
//! Why the trait asks models only for *scores*: filtering (held items, categories, allow-lists),
//! top-k selection and evaluation are then written once, so "a held item is never returned when
//! excluded" is one code path for eight models instead of eight promises. Models keep the
//! [`History`] they were fitted on so a query by user id can exclude what that user holds.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use aurum_core::{CancelToken, NoProgress, Progress};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{AttributeTable, History, RecoError};

/// Version of the stored envelope written by [`encode`].
pub const FORMAT_VERSION: u32 = 1;

/// One recommended item.
#[derive(Clone, Debug, PartialEq)]
pub struct Recommendation {
    pub item: String,
    pub score: f32,
}

/// Why an item was recommended: a held item (neighbourhood, ALS) or an attribute (content)
/// and its share of the score.
#[derive(Clone, Debug, PartialEq)]
pub struct Reason {
    pub because: String,
    pub contribution: f32,
}

/// A user the model was not fitted on, described by what they hold and who they are.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewUser {
    /// Item ids the user holds (each counts as one positive interaction).
    pub items: Vec<String>,
    /// `(field, value)` attributes, as in a user [`AttributeTable`].
    pub attributes: Vec<(String, String)>,
}

/// Optional progress reporting and cancellation for `fit`.
#[derive(Clone, Copy)]
pub struct FitControl<'a> {
    pub progress: &'a dyn Progress,
    pub cancel: Option<&'a CancelToken>,
}

impl Default for FitControl<'_> {
    fn default() -> Self {
        FitControl {
            progress: &NoProgress,
            cancel: None,
        }
    }
}

impl fmt::Debug for FitControl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FitControl")
            .field("cancel", &self.cancel.map(|c| c.is_cancelled()))
            .finish()
    }
}

impl FitControl<'_> {
    /// Reports progress and fails with `Cancelled` once the token fired.
    pub(crate) fn step(&self, stage: &str, fraction: f64) -> Result<(), RecoError> {
        if self.cancel.is_some_and(|c| c.is_cancelled()) {
            return Err(RecoError::Cancelled);
        }
        self.progress.report(stage, fraction);
        Ok(())
    }
}

type Predicate = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Which items may be returned. [`Filter::new`] excludes the items the user holds (the usual
/// case: do not offer a customer a product they already have); [`Filter::include_held`] turns that off.
#[derive(Clone)]
pub struct Filter {
    exclude_held: bool,
    include: Option<HashSet<String>>,
    exclude: HashSet<String>,
    allow: Option<Predicate>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter::new()
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("exclude_held", &self.exclude_held)
            .field("include", &self.include.as_ref().map(HashSet::len))
            .field("exclude", &self.exclude.len())
            .field("allow", &self.allow.is_some())
            .finish()
    }
}

impl Filter {
    pub fn new() -> Self {
        Filter {
            exclude_held: true,
            include: None,
            exclude: HashSet::new(),
            allow: None,
        }
    }
    /// Also return items the user already holds.
    pub fn include_held(mut self) -> Self {
        self.exclude_held = false;
        self
    }
    /// Only items whose `field` is one of `values` (intersected with earlier includes).
    pub fn include_categories(
        mut self,
        items: &AttributeTable,
        field: &str,
        values: &[&str],
    ) -> Result<Self, RecoError> {
        let ids = items.ids_with(field, values)?;
        self.include = Some(match self.include.take() {
            Some(prev) => prev.intersection(&ids).cloned().collect(),
            None => ids,
        });
        Ok(self)
    }
    /// Never items whose `field` is one of `values`.
    pub fn exclude_categories(
        mut self,
        items: &AttributeTable,
        field: &str,
        values: &[&str],
    ) -> Result<Self, RecoError> {
        self.exclude.extend(items.ids_with(field, values)?);
        Ok(self)
    }
    /// Never these item ids.
    pub fn exclude_items<S: AsRef<str>>(mut self, ids: &[S]) -> Self {
        self.exclude
            .extend(ids.iter().map(|s| s.as_ref().to_string()));
        self
    }
    /// Only items for which `allow(item_id)` is true (e.g. products the customer is eligible for).
    pub fn allow(mut self, allow: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.allow = Some(Arc::new(allow));
        self
    }

    /// A per-item mask: `true` where the item may be returned.
    pub(crate) fn mask(&self, items: &crate::IdMap, held: &[u32]) -> Vec<bool> {
        let mut ok: Vec<bool> = items
            .ids()
            .iter()
            .map(|id| {
                self.include.as_ref().is_none_or(|s| s.contains(id))
                    && !self.exclude.contains(id)
                    && self.allow.as_ref().is_none_or(|f| f(id))
            })
            .collect();
        if self.exclude_held {
            for &i in held {
                if let Some(x) = ok.get_mut(i as usize) {
                    *x = false;
                }
            }
        }
        ok
    }
}

/// The `k` highest scores among allowed, finite entries; ties go to the lower index.
pub(crate) fn top_k(scores: &[f32], allowed: impl Fn(usize) -> bool, k: usize) -> Vec<(u32, f32)> {
    let mut c: Vec<(u32, f32)> = scores
        .iter()
        .enumerate()
        .filter(|&(i, s)| s.is_finite() && allowed(i))
        .map(|(i, &s)| (i as u32, s))
        .collect();
    let cmp = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if c.len() > k && k > 0 {
        c.select_nth_unstable_by(k - 1, cmp);
        c.truncate(k);
    }
    c.sort_unstable_by(cmp);
    c.truncate(k);
    c
}

/// A fitted recommender. Implementors provide scores; ranking and filtering are shared.
pub trait Recommender: Send + Sync {
    /// A short stable name (`als`, `bpr`, …), also the stored `model_kind`.
    fn kind(&self) -> &'static str;
    /// The interactions the model was fitted on (id maps and user×item matrix).
    fn history(&self) -> &History;
    /// One score per item (higher is better) for a user index of [`Recommender::history`].
    fn score_user(&self, user: u32) -> Vec<f32>;
    /// One score per item for a user the model was not fitted on.
    fn score_new_user(&self, _user: &NewUser) -> Result<Vec<f32>, RecoError> {
        Err(RecoError::Unsupported {
            model: self.kind(),
            what: "score a new user",
        })
    }

    /// The top `k` items for a known user id, after `filter`.
    fn recommend(
        &self,
        user: &str,
        k: usize,
        filter: &Filter,
    ) -> Result<Vec<Recommendation>, RecoError> {
        let h = self.history();
        let u = h.users.resolve("user", &[user])?[0];
        let scores = self.score_user(u);
        Ok(rank(h, &scores, h.user_items.row(u as usize).0, k, filter))
    }

    /// The top `k` items for a new user; their `items` count as held for the filter.
    fn recommend_new(
        &self,
        user: &NewUser,
        k: usize,
        filter: &Filter,
    ) -> Result<Vec<Recommendation>, RecoError> {
        let h = self.history();
        let held = h.items.resolve("item", &user.items)?;
        let scores = self.score_new_user(user)?;
        Ok(rank(h, &scores, &held, k, filter))
    }
}

pub(crate) fn rank(
    h: &History,
    scores: &[f32],
    held: &[u32],
    k: usize,
    filter: &Filter,
) -> Vec<Recommendation> {
    let mask = filter.mask(&h.items, held);
    top_k(scores, |i| mask.get(i).copied().unwrap_or(false), k)
        .into_iter()
        .map(|(i, score)| Recommendation {
            item: h.items.id(i).to_string(),
            score,
        })
        .collect()
}

/// Turns `(name, contribution)` pairs into the `n` largest non-zero [`Reason`]s.
pub(crate) fn top_reasons(mut c: Vec<(String, f32)>, n: usize) -> Vec<Reason> {
    c.retain(|(_, v)| v.is_finite() && *v != 0.0);
    c.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    c.into_iter()
        .take(n)
        .map(|(because, contribution)| Reason {
            because,
            contribution,
        })
        .collect()
}

#[derive(Serialize)]
struct EnvelopeOut<'a, M> {
    format_version: u32,
    model_kind: &'a str,
    model: &'a M,
}

#[derive(Deserialize)]
struct EnvelopeIn<M> {
    format_version: u32,
    model_kind: String,
    model: M,
}

/// The stored form of a fitted model: JSON `{format_version, model_kind, model}`.
pub fn encode<M: Recommender + Serialize>(model: &M) -> Result<Vec<u8>, RecoError> {
    serde_json::to_vec(&EnvelopeOut {
        format_version: FORMAT_VERSION,
        model_kind: model.kind(),
        model,
    })
    .map_err(|e| RecoError::Internal(format!("encoding the model: {e}")))
}

/// Reads back [`encode`]'s output, refusing another model kind or a newer format.
pub fn decode<M: Recommender + DeserializeOwned>(bytes: &[u8]) -> Result<M, RecoError> {
    let env: EnvelopeIn<M> =
        serde_json::from_slice(bytes).map_err(|e| RecoError::BadArtifact(e.to_string()))?;
    if env.format_version != FORMAT_VERSION {
        return Err(RecoError::BadArtifact(format!(
            "format_version {} is not supported (this build reads {FORMAT_VERSION})",
            env.format_version
        )));
    }
    if env.model_kind != env.model.kind() {
        return Err(RecoError::BadArtifact(format!(
            "model_kind `{}` stored, `{}` expected",
            env.model_kind,
            env.model.kind()
        )));
    }
    Ok(env.model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_by_score_then_index_and_skips_masked() {
        let s = [0.5, 0.9, 0.9, f32::NAN, 0.1, 0.7];
        assert_eq!(top_k(&s, |_| true, 3), vec![(1, 0.9), (2, 0.9), (5, 0.7)]);
        assert_eq!(top_k(&s, |i| i != 1, 2), vec![(2, 0.9), (5, 0.7)]);
        assert_eq!(top_k(&s, |_| true, 0), vec![]);
        assert_eq!(top_k(&s, |_| true, 99).len(), 5);
    }

    #[test]
    fn filter_mask_combines_rules() {
        let items = crate::IdMap::from(vec![
            "a".to_string(),
            "b".to_string(),
            "c".to_string(),
            "d".to_string(),
        ]);
        let f = Filter::new().exclude_items(&["c"]).allow(|id| id != "d");
        assert_eq!(f.mask(&items, &[0]), vec![false, true, false, false]);
        assert_eq!(
            f.include_held().mask(&items, &[0]),
            vec![true, true, false, false]
        );
    }

    #[test]
    fn reasons_are_largest_first_without_zeros() {
        let c = vec![
            ("x".into(), 0.2),
            ("y".into(), -1.0),
            ("z".into(), 0.5),
            ("w".into(), 0.0),
        ];
        let r = top_reasons(c, 5);
        assert_eq!(
            r.iter().map(|r| r.because.as_str()).collect::<Vec<_>>(),
            vec!["z", "x", "y"]
        );
    }
}
