//! Content-based: items as TF-IDF vectors of their attributes, users as the weighted mean of the
//! vectors of the items they hold.
//!
//! Why: it needs no co-occurrence, so a product nobody holds yet, or a customer with one product,
//! is scored as well as any other; and the score splits exactly over attributes, which is the
//! explanation a customer understands ("fixed rate", "category=savings"). Categorical values
//! count once (one-hot), text tokens by frequency; IDF is scikit-learn's smoothed
//! `ln((1+N)/(1+df)) + 1`, so a value every product has still counts a little; each item vector is
//! L2-normalised so long descriptions do not dominate.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::attributes::feature_names;
use crate::recommender::{FitControl, NewUser, Reason, Recommender, top_reasons};
use crate::{AttributeTable, History, IdMap, Interactions, RecoError};

#[derive(Clone, Debug, PartialEq)]
pub struct ContentParams {
    /// Multiplier of categorical features before normalisation.
    pub categorical_weight: f32,
    /// Multiplier of text-token features before normalisation.
    pub text_weight: f32,
}

impl Default for ContentParams {
    fn default() -> Self {
        ContentParams {
            categorical_weight: 1.0,
            text_weight: 1.0,
        }
    }
}

/// A sparse vector: `(feature, value)` sorted by feature.
pub(crate) type SparseVec = Vec<(u32, f32)>;

/// TF-IDF vectors for `ids` (rows of `table`; missing rows give empty vectors).
pub(crate) fn tfidf(
    table: &AttributeTable,
    ids: &IdMap,
    cat_w: f32,
    text_w: f32,
) -> (IdMap, Vec<SparseVec>) {
    let mut vocab = IdMap::default();
    let mut counts: Vec<HashMap<u32, f32>> = Vec::with_capacity(ids.len());
    for id in ids.ids() {
        let mut c = HashMap::new();
        if let Some(row) = table.get(id) {
            for name in feature_names(row) {
                let w = if name.starts_with("text:") {
                    text_w
                } else {
                    cat_w
                };
                let f = vocab.insert(&name);
                let e = c.entry(f).or_insert(0.0);
                if name.starts_with("text:") || *e == 0.0 {
                    *e += w;
                }
            }
        }
        counts.push(c);
    }
    let mut df = vec![0f32; vocab.len()];
    for c in &counts {
        for &f in c.keys() {
            df[f as usize] += 1.0;
        }
    }
    let n = ids.len() as f32;
    let idf: Vec<f32> = df
        .iter()
        .map(|&d| ((1.0 + n) / (1.0 + d)).ln() + 1.0)
        .collect();
    let vectors = counts
        .into_iter()
        .map(|c| {
            let mut v: SparseVec = c
                .into_iter()
                .map(|(f, tf)| (f, tf * idf[f as usize]))
                .filter(|x| x.1 != 0.0)
                .collect();
            v.sort_unstable_by_key(|x| x.0);
            let norm = v.iter().map(|x| x.1 * x.1).sum::<f32>().sqrt();
            if norm > 0.0 {
                v.iter_mut().for_each(|x| x.1 /= norm);
            }
            v
        })
        .collect();
    (vocab, vectors)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Content {
    history: History,
    features: IdMap,
    item_vectors: Vec<SparseVec>,
}

impl Content {
    /// Fits on the interactions and an item attribute table whose ids the interactions know.
    pub fn fit(
        data: &Interactions,
        items: &AttributeTable,
        params: &ContentParams,
        ctl: &FitControl,
    ) -> Result<Self, RecoError> {
        crate::error::check_range("categorical_weight", params.categorical_weight, 0.0, 1e3)?;
        crate::error::check_range("text_weight", params.text_weight, 0.0, 1e3)?;
        items.check_against(data.items())?;
        ctl.step("content", 0.0)?;
        let (features, item_vectors) = tfidf(
            items,
            data.items(),
            params.categorical_weight,
            params.text_weight,
        );
        ctl.step("content", 1.0)?;
        Ok(Content {
            history: data.history(),
            features,
            item_vectors,
        })
    }

    /// The weighted mean of the held items' vectors, dense over features.
    fn profile(&self, held: &[u32], weights: &[f32]) -> Vec<f32> {
        let mut p = vec![0f32; self.features.len()];
        let total: f32 = weights.iter().sum();
        if total <= 0.0 {
            return p;
        }
        for (&j, &w) in held.iter().zip(weights) {
            for &(f, v) in &self.item_vectors[j as usize] {
                p[f as usize] += w * v / total;
            }
        }
        p
    }

    fn scores(&self, profile: &[f32]) -> Vec<f32> {
        self.item_vectors
            .iter()
            .map(|v| v.iter().map(|&(f, x)| profile[f as usize] * x).sum())
            .collect()
    }

    /// The attributes contributing most to `item`'s score for `user` (profile × item weight).
    pub fn explain(&self, user: &str, item: &str, n: usize) -> Result<Vec<Reason>, RecoError> {
        let u = self.history.users.resolve("user", &[user])?[0];
        let i = self.history.items.resolve("item", &[item])?[0];
        let (held, w) = self.history.user_items.row(u as usize);
        let p = self.profile(held, w);
        let c = self.item_vectors[i as usize]
            .iter()
            .map(|&(f, x)| (self.features.id(f).to_string(), p[f as usize] * x))
            .collect();
        Ok(top_reasons(c, n))
    }
}

impl Recommender for Content {
    fn kind(&self) -> &'static str {
        "content"
    }
    fn history(&self) -> &History {
        &self.history
    }
    fn score_user(&self, user: u32) -> Vec<f32> {
        let (held, w) = self.history.user_items.row(user as usize);
        self.scores(&self.profile(held, w))
    }
    fn score_new_user(&self, user: &NewUser) -> Result<Vec<f32>, RecoError> {
        let held = self.history.items.resolve("item", &user.items)?;
        if held.is_empty() {
            return Err(RecoError::Unsupported {
                model: "content",
                what: "score a new user who holds no known item",
            });
        }
        Ok(self.scores(&self.profile(&held, &vec![1.0; held.len()])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AttributeRow, Filter, InteractionOptions, InteractionRecord};

    fn setup() -> (Interactions, AttributeTable) {
        let r: Vec<_> = [("a", "fixed_mortgage"), ("b", "easy_saver"), ("b", "isa")]
            .iter()
            .map(|(u, i)| InteractionRecord::new(*u, *i))
            .collect();
        let mut r = r;
        r.push(InteractionRecord::new("c", "tracker_mortgage"));
        let data = Interactions::build(&r, &InteractionOptions::default()).unwrap();
        let items = AttributeTable::items(vec![
            AttributeRow::new("fixed_mortgage")
                .with("category", "mortgage")
                .text("fixed rate home loan"),
            AttributeRow::new("tracker_mortgage")
                .with("category", "mortgage")
                .text("tracker rate home loan"),
            AttributeRow::new("easy_saver")
                .with("category", "savings")
                .text("instant access"),
            AttributeRow::new("isa")
                .with("category", "savings")
                .text("tax free"),
        ])
        .unwrap();
        (data, items)
    }

    #[test]
    fn recommends_by_shared_attributes_and_explains() {
        let (data, items) = setup();
        let m = Content::fit(
            &data,
            &items,
            &ContentParams::default(),
            &FitControl::default(),
        )
        .unwrap();
        let rec = m.recommend("a", 1, &Filter::new()).unwrap();
        assert_eq!(rec[0].item, "tracker_mortgage");
        let why = m.explain("a", "tracker_mortgage", 2).unwrap();
        assert_eq!(why[0].because, "category=mortgage");
        let new = NewUser {
            items: vec!["isa".into()],
            ..Default::default()
        };
        assert_eq!(
            m.recommend_new(&new, 1, &Filter::new()).unwrap()[0].item,
            "easy_saver"
        );
    }

    #[test]
    fn tfidf_matches_hand_computation() {
        let (data, items) = setup();
        let (vocab, v) = tfidf(&items, data.items(), 1.0, 1.0);
        // fixed_mortgage: category=mortgage (df 2), fixed (1), rate (2), home (2), loan (2); N = 4.
        let hi = (5f32 / 3.0).ln() + 1.0;
        let lo = (5f32 / 2.0).ln() + 1.0;
        let norm = (4.0 * hi * hi + lo * lo).sqrt();
        let j = data.items().get("fixed_mortgage").unwrap() as usize;
        let fixed = vocab.get("text:fixed").unwrap();
        let got = v[j].iter().find(|x| x.0 == fixed).unwrap().1;
        assert!((got - lo / norm).abs() < 1e-6);
    }

    #[test]
    fn unknown_attribute_ids_are_named() {
        let (data, _) = setup();
        let items =
            AttributeTable::items(vec![AttributeRow::new("ghost").with("category", "x")]).unwrap();
        let e = Content::fit(
            &data,
            &items,
            &ContentParams::default(),
            &FitControl::default(),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "unknown item id(s) `ghost`");
    }
}
