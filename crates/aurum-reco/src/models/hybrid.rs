//! Hybrid for cold start: LightFM-style factors over user and item *feature* ids (Kula 2015).
//!
//! Every user is the sum of the embeddings of its features (its own id plus its attributes,
//! weights normalised to sum to one), and likewise every item; the score is `p_u · q_i + b_i`.
//! Because attributes have embeddings of their own, a customer known only by age band and job,
//! or a product known only by its category and description, still has a representation: the
//! identity feature is simply absent. That is what pure collaborative models (ALS, BPR) cannot do.
//!
//! Losses, as LightFM: WARP (sample negatives until one violates the margin; weight the update by
//! `ln ⌊(n−1)/trials⌋`, an estimate of the positive's rank) or BPR. Per-parameter adagrad with the
//! accumulators starting at 1, embeddings uniform in `(−0.5, 0.5)/components`, biases at 0.
//! Single-threaded and driven by one seeded ChaCha8 stream, so fits are reproducible.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::attributes::feature_names;
use crate::models::als::dot;
use crate::recommender::{FitControl, NewUser, Recommender};
use crate::{AttributeTable, History, IdMap, Interactions, RecoError};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum HybridLoss {
    Warp,
    Bpr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HybridParams {
    pub components: usize,
    pub loss: HybridLoss,
    pub learning_rate: f32,
    pub epochs: usize,
    /// WARP: negatives drawn per positive before giving up.
    pub max_sampled: usize,
    /// L2 penalty on the feature embeddings and biases.
    pub regularization: f32,
    pub seed: u64,
}

impl Default for HybridParams {
    fn default() -> Self {
        HybridParams {
            components: 32,
            loss: HybridLoss::Warp,
            learning_rate: 0.05,
            epochs: 30,
            max_sampled: 10,
            regularization: 1e-6,
            seed: 42,
        }
    }
}

impl HybridParams {
    fn validate(&self) -> Result<(), RecoError> {
        crate::error::check_count("components", self.components, 1, 1024)?;
        crate::error::check_range("learning_rate", self.learning_rate, 1e-9, 10.0)?;
        crate::error::check_count("epochs", self.epochs, 1, 100_000)?;
        crate::error::check_count("max_sampled", self.max_sampled, 1, 100_000)?;
        crate::error::check_range("regularization", self.regularization, 0.0, 1e3)
    }
}

/// One side (users or items): feature vocabulary, parameters and adagrad state.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Side {
    vocab: IdMap,
    /// Each entity's `(feature, weight)`, weights summing to one.
    features: Vec<Vec<(u32, f32)>>,
    embeddings: Vec<f32>,
    biases: Vec<f32>,
    emb_acc: Vec<f32>,
    bias_acc: Vec<f32>,
}

fn entity_features(
    vocab: &mut IdMap,
    id: &str,
    attrs: Option<&AttributeTable>,
    grow: bool,
) -> Vec<(u32, f32)> {
    let mut names = vec![format!("id:{id}")];
    if let Some(row) = attrs.and_then(|t| t.get(id)) {
        names.extend(feature_names(row));
    }
    let mut fs: Vec<u32> = names
        .iter()
        .filter_map(|n| {
            if grow {
                Some(vocab.insert(n))
            } else {
                vocab.get(n)
            }
        })
        .collect();
    fs.sort_unstable();
    fs.dedup();
    let w = 1.0 / fs.len().max(1) as f32;
    fs.into_iter().map(|f| (f, w)).collect()
}

impl Side {
    fn build(ids: &IdMap, attrs: Option<&AttributeTable>, d: usize, rng: &mut ChaCha8Rng) -> Side {
        let mut vocab = IdMap::default();
        let features = ids
            .ids()
            .iter()
            .map(|id| entity_features(&mut vocab, id, attrs, true))
            .collect();
        let n = vocab.len();
        let embeddings = (0..n * d)
            .map(|_| (rng.random::<f32>() - 0.5) / d as f32)
            .collect();
        Side {
            vocab,
            features,
            embeddings,
            biases: vec![0.0; n],
            emb_acc: vec![1.0; n * d],
            bias_acc: vec![1.0; n],
        }
    }

    fn repr(&self, feats: &[(u32, f32)], d: usize, out: &mut [f32]) -> f32 {
        out.iter_mut().for_each(|x| *x = 0.0);
        let mut bias = 0.0;
        for &(f, w) in feats {
            let e = &self.embeddings[f as usize * d..(f as usize + 1) * d];
            out.iter_mut().zip(e).for_each(|(o, e)| *o += w * e);
            bias += w * self.biases[f as usize];
        }
        bias
    }

    /// Adagrad step on every feature of an entity: `grad` is d(loss)/d(representation).
    fn update(
        &mut self,
        feats: &[(u32, f32)],
        grad: &[f32],
        grad_bias: Option<f32>,
        d: usize,
        lr: f32,
        reg: f32,
    ) {
        for &(f, w) in feats {
            let f = f as usize;
            let emb = &mut self.embeddings[f * d..(f + 1) * d];
            let acc = &mut self.emb_acc[f * d..(f + 1) * d];
            for ((e, a), gr) in emb.iter_mut().zip(acc.iter_mut()).zip(grad) {
                let g = w * gr + reg * *e;
                *a += g * g;
                *e -= lr * g / a.sqrt();
            }
            if let Some(gb) = grad_bias {
                let g = w * gb + reg * self.biases[f];
                self.bias_acc[f] += g * g;
                self.biases[f] -= lr * g / self.bias_acc[f].sqrt();
            }
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hybrid {
    history: History,
    components: usize,
    users: Side,
    items: Side,
}

impl Hybrid {
    /// Fits on the interactions with optional user and item attribute tables, whose ids must
    /// be known to the interactions (new entities are added later: [`Hybrid::add_items`],
    /// [`Recommender::recommend_new`]).
    pub fn fit(
        data: &Interactions,
        user_attrs: Option<&AttributeTable>,
        item_attrs: Option<&AttributeTable>,
        params: &HybridParams,
        ctl: &FitControl,
    ) -> Result<Self, RecoError> {
        params.validate()?;
        if let Some(t) = user_attrs {
            t.check_against(data.users())?;
        }
        if let Some(t) = item_attrs {
            t.check_against(data.items())?;
        }
        let n_items = data.items().len();
        if n_items < 2 {
            return Err(RecoError::NoInteractions(
                "the hybrid model needs at least two items".into(),
            ));
        }
        let d = params.components;
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let mut users = Side::build(data.users(), user_attrs, d, &mut rng);
        let mut items = Side::build(data.items(), item_attrs, d, &mut rng);
        let m = data.user_items();
        let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(m.nnz());
        for u in 0..m.rows() {
            pairs.extend(m.row(u).0.iter().map(|&i| (u as u32, i)));
        }
        let (lr, reg) = (params.learning_rate, params.regularization);
        let (mut pu, mut qi, mut qj) = (vec![0f32; d], vec![0f32; d], vec![0f32; d]);
        let (mut gu, mut gi) = (vec![0f32; d], vec![0f32; d]);
        for epoch in 0..params.epochs {
            ctl.step("hybrid", epoch as f64 / params.epochs as f64)?;
            pairs.shuffle(&mut rng);
            for &(u, i) in &pairs {
                let held = m.row(u as usize).0;
                if held.len() >= n_items {
                    continue;
                }
                let uf = &users.features[u as usize];
                users.repr(uf, d, &mut pu);
                let bi = items.repr(&items.features[i as usize], d, &mut qi);
                let s_ui = dot(&pu, &qi) + bi;
                // Find a negative and the weight of the update.
                let mut chosen = None;
                for trial in 1..=params.max_sampled {
                    let j = rng.random_range(0..n_items as u32);
                    if held.binary_search(&j).is_ok() {
                        continue;
                    }
                    let bj = items.repr(&items.features[j as usize], d, &mut qj);
                    let s_uj = dot(&pu, &qj) + bj;
                    match params.loss {
                        HybridLoss::Warp if s_uj > s_ui - 1.0 => {
                            let rank = ((n_items - 1) / trial).max(1) as f32;
                            chosen = Some((j, rank.ln()));
                            break;
                        }
                        HybridLoss::Warp => {}
                        HybridLoss::Bpr => {
                            chosen = Some((j, 1.0 / (1.0 + (s_ui - s_uj).exp())));
                            break;
                        }
                    }
                }
                let Some((j, weight)) = chosen.filter(|c| c.1 > 0.0) else {
                    continue;
                };
                // loss = weight · (s_uj − s_ui): d/dp = weight (q_j − q_i), d/dq_i = −weight p, d/dq_j = weight p.
                for k in 0..d {
                    gu[k] = weight * (qj[k] - qi[k]);
                    gi[k] = -weight * pu[k];
                }
                let uf = users.features[u as usize].clone();
                users.update(&uf, &gu, None, d, lr, reg);
                let fi = items.features[i as usize].clone();
                items.update(&fi, &gi, Some(-weight), d, lr, reg);
                gi.iter_mut().for_each(|g| *g = -*g);
                let fj = items.features[j as usize].clone();
                items.update(&fj, &gi, Some(weight), d, lr, reg);
            }
            if items
                .embeddings
                .iter()
                .chain(&users.embeddings)
                .any(|v| !v.is_finite())
            {
                return Err(RecoError::Internal(format!(
                    "hybrid factors diverged at epoch {epoch}; lower learning_rate"
                )));
            }
        }
        ctl.step("hybrid", 1.0)?;
        Ok(Hybrid {
            history: data.history(),
            components: d,
            users,
            items,
        })
    }

    /// Adds items known only by their attributes (a new product), so they can be recommended.
    /// Each row's id must be new and it must have at least one attribute seen in training.
    pub fn add_items(&mut self, new_items: &AttributeTable) -> Result<(), RecoError> {
        let mut staged = Vec::new();
        for (index, row) in new_items.rows().iter().enumerate() {
            let bad = |reason: &str| RecoError::InvalidAttribute {
                table: "item_attributes",
                index,
                field: "id".into(),
                reason: format!("`{}` {reason}", row.id),
            };
            if self.history.items.get(&row.id).is_some() {
                return Err(bad("is already in the catalogue"));
            }
            let feats = entity_features(&mut self.items.vocab, &row.id, Some(new_items), false);
            if feats.is_empty() {
                return Err(bad("has no attribute the model was trained with"));
            }
            staged.push((row.id.clone(), feats));
        }
        for (id, feats) in staged {
            self.history.items.insert(&id);
            self.items.features.push(feats);
        }
        Ok(())
    }

    fn scores(&self, user_feats: &[(u32, f32)]) -> Vec<f32> {
        let d = self.components;
        let mut pu = vec![0f32; d];
        self.users.repr(user_feats, d, &mut pu);
        let mut q = vec![0f32; d];
        self.items
            .features
            .iter()
            .map(|f| self.items.repr(f, d, &mut q) + dot(&pu, &q))
            .collect()
    }
}

impl Recommender for Hybrid {
    fn kind(&self) -> &'static str {
        "hybrid"
    }
    fn history(&self) -> &History {
        &self.history
    }
    fn score_user(&self, user: u32) -> Vec<f32> {
        self.scores(
            self.users
                .features
                .get(user as usize)
                .map_or(&[][..], |f| f.as_slice()),
        )
    }
    /// A new user is the normalised sum of the embeddings of their attributes.
    fn score_new_user(&self, user: &NewUser) -> Result<Vec<f32>, RecoError> {
        let mut fs: Vec<u32> = user
            .attributes
            .iter()
            .filter_map(|(f, v)| self.users.vocab.get(&format!("{f}={v}")))
            .collect();
        fs.sort_unstable();
        fs.dedup();
        if fs.is_empty() {
            return Err(RecoError::Unsupported {
                model: "hybrid",
                what: "score a new user with no attribute seen in training",
            });
        }
        let w = 1.0 / fs.len() as f32;
        Ok(self.scores(&fs.into_iter().map(|f| (f, w)).collect::<Vec<_>>()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_validated_by_name() {
        let e = HybridParams {
            components: 0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("`components`"), "{e}");
    }
}
