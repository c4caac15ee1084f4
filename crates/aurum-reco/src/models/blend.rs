//! A blend of EASE and ALS: each model's scores standardised per user, then mixed by one weight.
//!
//! `score(u, i) = w·(e_ui − μ_e)/σ_e + (1 − w)·(a_ui − μ_a)/σ_a`, where `e` and `a` are the EASE
//! and ALS scores of user `u`, and `μ`, `σ` their mean and standard deviation over the items the
//! user does *not* hold (the candidates; held items carry the largest scores of both models and
//! would otherwise set the scale). A model whose scores are constant for the user adds nothing.
//!
//! Why a blend, and why these two: EASE (a sparse item-item model) and ALS (low-rank factors)
//! make different mistakes, so their agreement ranks better than either alone on MovieLens
//! (BENCHMARKS.md). Raw scores live on unrelated scales (EASE sums regression weights, ALS dot
//! products), and the scales move from user to user with how much they hold, so they are
//! standardised per user before mixing; one weight is then enough, and it is chosen on a
//! validation split like any other hyper-parameter.
//!
//! Why both models are kept whole: serving a user needs both score vectors, and explanations
//! stay exact per component. Each component keeps the [`History`] it was fitted on (the same
//! entries for both; with ALS recency its copy holds the faded confidences), so the stored
//! model holds that history twice; it is small next to the EASE weights. The blend's own
//! [`Recommender::history`] is EASE's (the confidences as given).
//!
//! Recency: each component takes its own `recency_half_life` (on MovieLens they help both,
//! and the blend of the two recency-weighted models is the best ranker measured there).
//!
//! Explanations: both components split their score over the user's held items ("because you
//! hold X"), so the blend's share of held item `x` is `w/σ_e·e_x + (1 − w)/σ_a·a_x`. The shares
//! add up to the blended score plus the user's constant `w·μ_e/σ_e + (1 − w)·μ_a/σ_a`, which is
//! the same for every item and so does not change the ranking (exactly for the EASE part,
//! approximately for the ALS part, as [`Als::explain`] says).
//!
//! Reproducibility is that of the components: EASE is deterministic, ALS is for a given seed.

use serde::{Deserialize, Serialize};

use crate::models::als::{Als, AlsParams};
use crate::models::ease::{Ease, EaseParams};
use crate::recommender::{FitControl, NewUser, Reason, Recommender, top_reasons};
use crate::{History, Interactions, RecoError};

/// The parameters of a blend: each component's own, and the mixing weight.
#[derive(Clone, Debug, PartialEq)]
pub struct BlendParams {
    pub ease: EaseParams,
    pub als: AlsParams,
    /// `w`: the weight of the standardised EASE score; ALS gets `1 − w`. 1 is EASE alone (up
    /// to a per-user affine map), 0 is ALS alone.
    pub ease_weight: f32,
}

impl Default for BlendParams {
    fn default() -> Self {
        BlendParams {
            ease: EaseParams::default(),
            als: AlsParams::default(),
            ease_weight: 0.55,
        }
    }
}

fn check_weight(w: f32) -> Result<(), RecoError> {
    crate::error::check_range("ease_weight", w, 0.0, 1.0)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Blend {
    ease: Ease,
    als: Als,
    ease_weight: f32,
}

/// Mean and standard deviation (population) of `s` over the entries not in `held` (sorted,
/// deduplicated), summed in `f64` in index order.
fn moments(s: &[f32], held: &[u32]) -> (f64, f64) {
    let mut n = 0usize;
    let mut sum = 0f64;
    let mut h = held.iter().peekable();
    for (i, &x) in s.iter().enumerate() {
        if h.next_if(|&&j| j as usize == i).is_some() {
            continue;
        }
        n += 1;
        sum += f64::from(x);
    }
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = sum / n as f64;
    let mut var = 0f64;
    let mut h = held.iter().peekable();
    for (i, &x) in s.iter().enumerate() {
        if h.next_if(|&&j| j as usize == i).is_some() {
            continue;
        }
        let d = f64::from(x) - mean;
        var += d * d;
    }
    (mean, (var / n as f64).sqrt())
}

/// The factor and offset that standardise one component: `x ↦ scale·x − offset`; a component
/// with constant scores gets `(0, 0)`.
fn standardiser(s: &[f32], held: &[u32], weight: f64) -> (f64, f64) {
    let (mean, sd) = moments(s, held);
    if sd > 0.0 && sd.is_finite() && weight > 0.0 {
        (weight / sd, weight * mean / sd)
    } else {
        (0.0, 0.0)
    }
}

/// The blend's name for a component parameter both components have (`ease_regularization`,
/// `als_recency_half_life`); other errors unchanged.
fn prefixed(e: RecoError, component: &str) -> RecoError {
    let RecoError::InvalidParameter { name, reason } = e else {
        return e;
    };
    let name = match (component, name) {
        ("ease", "regularization") => "ease_regularization",
        ("ease", "recency_half_life") => "ease_recency_half_life",
        ("als", "regularization") => "als_regularization",
        ("als", "recency_half_life") => "als_recency_half_life",
        _ => name,
    };
    RecoError::InvalidParameter { name, reason }
}

/// The same users, items and held entries (ALS with recency keeps faded confidences, so the
/// values may differ).
fn same_entries(a: &History, b: &History) -> bool {
    let (ma, mb) = (&a.user_items, &b.user_items);
    a.users == b.users
        && a.items == b.items
        && ma.rows() == mb.rows()
        && (0..ma.rows()).all(|u| ma.row(u).0 == mb.row(u).0)
}

impl Blend {
    /// Fits EASE and ALS on the same interactions (EASE reads presence, ALS the confidences).
    pub fn fit(
        data: &Interactions,
        params: &BlendParams,
        ctl: &FitControl,
    ) -> Result<Self, RecoError> {
        check_weight(params.ease_weight)?;
        let ease = Ease::fit(data, &params.ease, ctl).map_err(|e| prefixed(e, "ease"))?;
        let als = Als::fit(data, &params.als, ctl).map_err(|e| prefixed(e, "als"))?;
        Ok(Blend {
            ease,
            als,
            ease_weight: params.ease_weight,
        })
    }

    /// Two fitted components, mixed by `ease_weight` (for choosing the weight on a validation
    /// split without refitting). Both must have been fitted on the same interactions.
    pub fn from_parts(ease: Ease, als: Als, ease_weight: f32) -> Result<Self, RecoError> {
        check_weight(ease_weight)?;
        if !same_entries(ease.history(), als.history()) {
            return Err(RecoError::Mismatch(
                "the EASE and ALS components were fitted on different interactions".into(),
            ));
        }
        Ok(Blend {
            ease,
            als,
            ease_weight,
        })
    }

    /// The mixing weight of the EASE component.
    pub fn ease_weight(&self) -> f32 {
        self.ease_weight
    }

    /// The same components with another mixing weight.
    pub fn with_ease_weight(mut self, ease_weight: f32) -> Result<Self, RecoError> {
        check_weight(ease_weight)?;
        self.ease_weight = ease_weight;
        Ok(self)
    }

    /// The EASE component.
    pub fn ease(&self) -> &Ease {
        &self.ease
    }

    /// The ALS component.
    pub fn als(&self) -> &Als {
        &self.als
    }

    /// Per-component `(scale, offset)` for a user holding `held`.
    fn standardisers(&self, e: &[f32], a: &[f32], held: &[u32]) -> [(f64, f64); 2] {
        let w = f64::from(self.ease_weight);
        [standardiser(e, held, w), standardiser(a, held, 1.0 - w)]
    }

    fn mix(&self, e: &[f32], a: &[f32], held: &[u32]) -> Vec<f32> {
        let [(se, oe), (sa, oa)] = self.standardisers(e, a, held);
        e.iter()
            .zip(a)
            .map(|(&x, &y)| (se * f64::from(x) - oe + sa * f64::from(y) - oa) as f32)
            .collect()
    }

    /// "Because you hold X": each held item's share of both components, standardised and
    /// weighted as in the score (see the module docs for what they add up to).
    pub fn explain(&self, user: &str, item: &str, n: usize) -> Result<Vec<Reason>, RecoError> {
        let h = self.history();
        let u = h.users.resolve("user", &[user])?[0];
        let held = h.user_items.row(u as usize).0;
        let e = self.ease.score_user(u);
        let a = self.als.score_user(u);
        let [(se, _), (sa, _)] = self.standardisers(&e, &a, held);
        let mut shares: std::collections::BTreeMap<String, f64> = Default::default();
        if se > 0.0 {
            for r in self.ease.explain(user, item, usize::MAX)? {
                *shares.entry(r.because).or_default() += se * f64::from(r.contribution);
            }
        }
        if sa > 0.0 {
            for r in self.als.explain(user, item, usize::MAX)? {
                *shares.entry(r.because).or_default() += sa * f64::from(r.contribution);
            }
        }
        Ok(top_reasons(
            shares.into_iter().map(|(k, v)| (k, v as f32)).collect(),
            n,
        ))
    }
}

impl Recommender for Blend {
    fn kind(&self) -> &'static str {
        "blend"
    }
    fn history(&self) -> &History {
        self.ease.history()
    }
    fn score_user(&self, user: u32) -> Vec<f32> {
        let held = self.history().user_items.row(user as usize).0;
        self.mix(
            &self.ease.score_user(user),
            &self.als.score_user(user),
            held,
        )
    }
    fn score_new_user(&self, user: &NewUser) -> Result<Vec<f32>, RecoError> {
        let mut held = self.history().items.resolve("item", &user.items)?;
        held.sort_unstable();
        held.dedup();
        let e = self.ease.score_new_user(user)?;
        let a = self.als.score_new_user(user)?;
        Ok(self.mix(&e, &a, &held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Filter, InteractionOptions, InteractionRecord, Weighting, decode, encode};

    fn data() -> Interactions {
        let mut r = Vec::new();
        for u in 0..40 {
            let items: &[&str] = match u % 4 {
                0 => &["a", "b", "c"],
                1 => &["a", "b", "d"],
                2 => &["c", "d", "e", "f"],
                _ => &["e", "f", "g"],
            };
            for (k, i) in items.iter().enumerate() {
                if (u + k) % 5 != 0 {
                    r.push(InteractionRecord::new(format!("u{u}"), *i));
                }
            }
        }
        Interactions::build(
            &r,
            &InteractionOptions {
                weighting: Weighting::Linear { alpha: 1.0 },
                rating_threshold: None,
            },
        )
        .unwrap()
    }

    fn params(w: f32) -> BlendParams {
        BlendParams {
            ease: EaseParams {
                regularization: 2.0,
                ..Default::default()
            },
            als: AlsParams {
                factors: 4,
                regularization: 0.5,
                iterations: 5,
                ..Default::default()
            },
            ease_weight: w,
        }
    }

    #[test]
    fn scores_are_the_weighted_standardised_components() {
        let d = data();
        let m = Blend::fit(&d, &params(0.3), &FitControl::default()).unwrap();
        for u in [0u32, 5, 17] {
            let held = d.user_items().row(u as usize).0;
            let e = m.ease().score_user(u);
            let a = m.als().score_user(u);
            let z = |s: &[f32]| {
                let c: Vec<f64> = (0..s.len())
                    .filter(|i| !held.contains(&(*i as u32)))
                    .map(|i| f64::from(s[i]))
                    .collect();
                let mean = c.iter().sum::<f64>() / c.len() as f64;
                let sd =
                    (c.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / c.len() as f64).sqrt();
                s.iter()
                    .map(|&x| (f64::from(x) - mean) / sd)
                    .collect::<Vec<_>>()
            };
            let (ze, za) = (z(&e), z(&a));
            let got = m.score_user(u);
            for i in 0..got.len() {
                let want = 0.3 * ze[i] + 0.7 * za[i];
                assert!((f64::from(got[i]) - want).abs() < 1e-5, "u{u} i{i}");
            }
        }
        // Weight 1 ranks exactly as EASE, weight 0 exactly as ALS.
        let f = Filter::new();
        let only_ease = m.clone().with_ease_weight(1.0).unwrap();
        let only_als = m.clone().with_ease_weight(0.0).unwrap();
        let ids = |r: Vec<crate::Recommendation>| r.into_iter().map(|x| x.item).collect::<Vec<_>>();
        for user in ["u0", "u3", "u6"] {
            assert_eq!(
                ids(only_ease.recommend(user, 3, &f).unwrap()),
                ids(m.ease().recommend(user, 3, &f).unwrap())
            );
            assert_eq!(
                ids(only_als.recommend(user, 3, &f).unwrap()),
                ids(m.als().recommend(user, 3, &f).unwrap())
            );
        }
    }

    #[test]
    fn round_trips_and_explains_with_held_items() {
        let d = data();
        let m = Blend::fit(&d, &params(0.5), &FitControl::default()).unwrap();
        let back: Blend = decode(&encode(&m).unwrap()).unwrap();
        for u in 0..d.users().len() as u32 {
            assert_eq!(m.score_user(u), back.score_user(u));
        }
        let rec = m.recommend("u0", 2, &Filter::new()).unwrap();
        let held: Vec<&str> = d
            .user_items()
            .row(d.users().get("u0").unwrap() as usize)
            .0
            .iter()
            .map(|&i| d.items().id(i))
            .collect();
        assert!(rec.iter().all(|r| !held.contains(&r.item.as_str())));
        let why = m.explain("u0", &rec[0].item, 5).unwrap();
        assert!(!why.is_empty());
        assert!(why.iter().all(|r| held.contains(&r.because.as_str())));
        let new = NewUser {
            items: held.iter().map(|s| s.to_string()).collect(),
            attributes: Vec::new(),
        };
        let rn = m.recommend_new(&new, 2, &Filter::new()).unwrap();
        assert_eq!(rn.len(), 2);
    }

    #[test]
    fn weight_and_components_are_checked() {
        let d = data();
        let e = Blend::fit(&d, &params(1.5), &FitControl::default()).unwrap_err();
        assert!(e.to_string().starts_with("parameter `ease_weight`"), "{e}");
        let mut p = params(0.5);
        p.ease.regularization = 0.0;
        let e = Blend::fit(&d, &p, &FitControl::default()).unwrap_err();
        assert!(e.to_string().contains("`ease_regularization`"), "{e}");
        let mut p = params(0.5);
        p.als.recency_half_life = 0.5;
        let e = Blend::fit(&d, &p, &FitControl::default()).unwrap_err();
        assert!(e.to_string().contains("`als_recency_half_life`"), "{e}");
        let m = Blend::fit(&d, &params(0.5), &FitControl::default()).unwrap();
        assert!(m.clone().with_ease_weight(f32::NAN).is_err());
        let other = Interactions::build(
            &[
                InteractionRecord::new("x", "a"),
                InteractionRecord::new("y", "b"),
            ],
            &InteractionOptions::default(),
        )
        .unwrap();
        let als = Als::fit(&other, &params(0.5).als, &FitControl::default()).unwrap();
        let e = Blend::from_parts(m.ease().clone(), als, 0.5).unwrap_err();
        assert!(matches!(e, RecoError::Mismatch(_)), "{e}");
    }

    #[test]
    fn moments_skip_held_items() {
        let (m, s) = moments(&[10.0, 1.0, 3.0, 99.0], &[0, 3]);
        assert_eq!((m, s), (2.0, 1.0));
        assert_eq!(moments(&[1.0], &[0]), (0.0, 0.0));
    }
}
