//! EASE: embarrassingly shallow autoencoder (Steck 2019), a closed-form item-item linear model.
//!
//! With `X` the binary user×item matrix and `G = XᵀX`, EASE solves
//! `min_B ‖X − XB‖² + λ‖B‖²` subject to `diag(B) = 0`, whose solution is
//! `B = I − P·diagMat(1/diag(P))` with `P = (G + λI)⁻¹`, i.e. `B[i,j] = −P[i,j] / P[j,j]` off
//! the diagonal. A user's score for item `j` is `Σ_{i held} B[i,j]`.
//!
//! Why it is here: on small and medium catalogues it is one of the strongest top-k rankers for
//! implicit feedback (it beat tuned ALS on the MovieLens benchmark, BENCHMARKS.md), it has one
//! hyper-parameter, its fit is deterministic and iteration-free, and, like item-item
//! neighbours, a score is a sum over held items, so it explains itself exactly ("because you
//! hold X").
//!
//! Why a catalogue limit: the fit forms the dense `n×n` Gram matrix and its inverse in `f64`
//! (the Cholesky factor is written over `G`, and the inverse needs `L⁻¹` and `P` besides: about
//! `3·n²·8` bytes at peak, 0.9 GB for 6 000 items, 2.4 GB for 10 000) and costs `O(n³)` time.
//! Catalogues above `max_items` (default [`DEFAULT_MAX_ITEMS`], at most [`MAX_ITEMS_LIMIT`]) are
//! refused with an error naming that parameter rather than exhausting memory.
//!
//! Why the stored model is pruned: the dense `B` (`n²` floats, 144 MB for 6 000 items in
//! binary, ten times that as the JSON the registry stores) is too large to store and load with
//! every model version. Each held item keeps its `neighbours` largest-magnitude weights
//! (negative weights included: they are what pushes "already covered" items down), which on
//! MovieLens lost nothing measurable on the validation split at 50 per item (BENCHMARKS.md).
//!
//! Why recency: on data where customers take products up over time, the next product follows
//! the latest ones more than the earliest. With `recency_half_life` `h > 0` a known user's held
//! item counts with weight `0.5^(r / (h·n))`, where `n` is how many items the user holds and `r`
//! the item's rank from the newest (0 = newest; ties by time broken by the larger item index
//! first), so the weight halves every `h·n` items back. The weights are computed at fit time
//! from the interactions' timestamps (a time column is required) and stored, one per held
//! entry; the learned `B` is unchanged. On the MovieLens validation split this moved NDCG@10
//! from 0.098 to 0.119 (BENCHMARKS.md). A new user (`score_new_user`) has no times, so all
//! their items count 1.
//!
//! Why it is reproducible: `G` is summed in a fixed order from integer counts (exact in `f64`),
//! and faer's blocked Cholesky and triangular inverse split work by tiles, not by thread timing;
//! results may differ in the last bits between CPUs with different SIMD widths.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::{factor, inverse};
use faer::{Mat, Par};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::recommender::{FitControl, NewUser, Reason, Recommender, top_reasons};
use crate::{History, Interactions, RecoError, Recommendation};

/// The default largest catalogue EASE accepts (peak memory about `3·n²·8` bytes: 2.4 GB).
pub const DEFAULT_MAX_ITEMS: usize = 10_000;
/// The largest value `max_items` may take (21.6 GB at peak).
pub const MAX_ITEMS_LIMIT: usize = 30_000;

#[derive(Clone, Debug, PartialEq)]
pub struct EaseParams {
    /// λ, added to the diagonal of the Gram matrix `XᵀX` (counts of co-holding users).
    pub regularization: f32,
    /// Dropout rate `p` of the emphasised denoising variant (EDLAE, Steck 2020): each item's
    /// diagonal also gets `p/(1−p)·G[i,i]`, a penalty proportional to its popularity. 0 is
    /// plain EASE.
    pub dropout: f32,
    /// Weights kept per held item (largest magnitude first); the rest of the dense `B` is dropped.
    pub neighbours: usize,
    /// The largest catalogue accepted (see the module docs for the memory this allows).
    pub max_items: usize,
    /// `h`: a held item `r` places back from the user's newest counts `0.5^(r / (h·n))` (`n`
    /// items held); 0 counts every held item once. Needs timestamps on every interaction.
    pub recency_half_life: f32,
    /// Worker threads; 0 uses rayon's default (one per core).
    pub threads: usize,
}

impl Default for EaseParams {
    fn default() -> Self {
        EaseParams {
            regularization: 500.0,
            dropout: 0.0,
            neighbours: 200,
            max_items: DEFAULT_MAX_ITEMS,
            recency_half_life: 0.0,
            threads: 0,
        }
    }
}

impl EaseParams {
    fn validate(&self) -> Result<(), RecoError> {
        crate::error::check_range("regularization", self.regularization, 1e-3, 1e9)?;
        crate::error::check_range("dropout", self.dropout, 0.0, 0.95)?;
        crate::error::check_count("neighbours", self.neighbours, 1, MAX_ITEMS_LIMIT)?;
        crate::error::check_count("max_items", self.max_items, 1, MAX_ITEMS_LIMIT)?;
        crate::error::check_range("recency_half_life", self.recency_half_life, 0.0, 1e3)?;
        crate::error::check_count("threads", self.threads, 0, 1024)
    }
}

/// Peak bytes the fit allocates for a catalogue of `n` items (three dense `n×n` `f64` matrices).
pub fn fit_memory_bytes(n: usize) -> u64 {
    3 * (n as u64) * (n as u64) * 8
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ease {
    history: History,
    regularization: f32,
    /// Row `i`: the kept weights `B[i, j]` of held item `i`, ordered by item index `j`.
    weights: Vec<Vec<(u32, f32)>>,
    /// With recency: one weight per entry of `history.user_items` (same order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profile: Option<Vec<f32>>,
}

/// `G + λI + p/(1−p)·diagMat(G)` (lower triangle) for the binary user×item matrix: `G[i,j]`
/// counts users holding both.
fn gram(data: &Interactions, reg: f64, dropout: f64) -> Mat<f64> {
    let n = data.items().len();
    let mut g = Mat::<f64>::zeros(n, n);
    let m = data.user_items();
    for u in 0..m.rows() {
        let items = m.row(u).0;
        for (a, &i) in items.iter().enumerate() {
            for &j in &items[..=a] {
                // Columns are sorted ascending, so `i >= j`: the lower triangle.
                g[(i as usize, j as usize)] += 1.0;
            }
        }
    }
    let emphasis = dropout / (1.0 - dropout);
    for i in 0..n {
        g[(i, i)] += reg + emphasis * g[(i, i)];
    }
    g
}

/// Mirrors the lower triangle of `p` into the upper, in tiles so both sides stay in cache.
fn symmetrize(p: &mut Mat<f64>) {
    const T: usize = 64;
    let n = p.nrows();
    for jb in (0..n).step_by(T) {
        for ib in (jb..n).step_by(T) {
            for j in jb..(jb + T).min(n) {
                for i in ib.max(j + 1)..(ib + T).min(n) {
                    p[(j, i)] = p[(i, j)];
                }
            }
        }
    }
}

/// The `keep` entries of `row` (skipping `skip`) with the largest magnitude, by item index.
fn prune(row: &[f32], skip: usize, keep: usize) -> Vec<(u32, f32)> {
    let mut c: Vec<(u32, f32)> = row
        .iter()
        .enumerate()
        .filter(|&(j, w)| j != skip && *w != 0.0 && w.is_finite())
        .map(|(j, &w)| (j as u32, w))
        .collect();
    let cmp = |a: &(u32, f32), b: &(u32, f32)| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0));
    if c.len() > keep && keep > 0 {
        c.select_nth_unstable_by(keep - 1, cmp);
        c.truncate(keep);
    }
    c.sort_unstable_by_key(|x| x.0);
    c
}

impl Ease {
    pub fn fit(
        data: &Interactions,
        params: &EaseParams,
        ctl: &FitControl,
    ) -> Result<Self, RecoError> {
        params.validate()?;
        let profile = data.recency_weights("recency_half_life", params.recency_half_life)?;
        let n = data.items().len();
        if n > params.max_items {
            return Err(RecoError::param(
                "max_items",
                format!(
                    "the catalogue has {n} items, above the limit of {}; EASE holds dense {n}×{n} \
                     f64 matrices (about {:.1} GB at peak); raise max_items (at most \
                     {MAX_ITEMS_LIMIT}) if the machine has the memory, or use item_knn or als",
                    params.max_items,
                    fit_memory_bytes(n) as f64 / 1e9
                ),
            ));
        }
        if n == 0 {
            return Err(RecoError::NoInteractions("no items to fit EASE on".into()));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(params.threads)
            .build()
            .map_err(|e| RecoError::Internal(format!("starting the EASE thread pool: {e}")))?;
        ctl.step("ease", 0.0)?;
        let weights = pool.install(|| -> Result<_, RecoError> {
            let par = match std::num::NonZeroUsize::new(rayon::current_num_threads()) {
                Some(t) if t.get() > 1 => Par::Rayon(t),
                _ => Par::Seq,
            };
            let mut g = gram(
                data,
                f64::from(params.regularization),
                f64::from(params.dropout),
            );
            ctl.step("ease", 0.1)?;
            let mut mem = MemBuffer::new(
                factor::cholesky_in_place_scratch::<f64>(n, par, Default::default())
                    .or(inverse::inverse_scratch::<f64>(n, par)),
            );
            factor::cholesky_in_place(
                g.as_mut(),
                Default::default(),
                par,
                MemStack::new(&mut mem),
                Default::default(),
            )
            .map_err(|e| {
                RecoError::Internal(format!("EASE: XᵀX + λI is not positive definite ({e})"))
            })?;
            ctl.step("ease", 0.5)?;
            let mut p = Mat::<f64>::zeros(n, n);
            inverse::inverse(p.as_mut(), g.as_ref(), par, MemStack::new(&mut mem));
            drop(g);
            drop(mem);
            ctl.step("ease", 0.9)?;
            symmetrize(&mut p);
            let diag: Vec<f64> = (0..n).map(|j| p[(j, j)]).collect();
            if diag.iter().any(|d| !(d.is_finite() && *d > 0.0)) {
                return Err(RecoError::Internal(
                    "EASE: the inverse has a non-positive diagonal".into(),
                ));
            }
            // Row i of B is −(column i of P) ./ diag(P) (P is symmetric), with B[i,i] = 0.
            Ok((0..n)
                .into_par_iter()
                .map(|i| {
                    let col = p.col(i);
                    let row: Vec<f32> = (0..n).map(|j| (-col[j] / diag[j]) as f32).collect();
                    prune(&row, i, params.neighbours)
                })
                .collect::<Vec<_>>())
        })?;
        ctl.step("ease", 1.0)?;
        Ok(Ease {
            history: data.history(),
            regularization: params.regularization,
            weights,
            profile,
        })
    }

    /// The same weights with another recency half-life (0: none), recomputed from `data`, which
    /// must be the interactions the model was fitted on.
    pub fn with_recency(mut self, data: &Interactions, half_life: f32) -> Result<Self, RecoError> {
        crate::error::check_range("recency_half_life", half_life, 0.0, 1e3)?;
        if data.history() != self.history {
            return Err(RecoError::Mismatch(
                "recency weights need the interactions EASE was fitted on".into(),
            ));
        }
        self.profile = data.recency_weights("recency_half_life", half_life)?;
        Ok(self)
    }

    /// The weight each held item of user `u` counts with (all 1 without recency).
    fn held_weights(&self, u: u32) -> (&[u32], Vec<f32>) {
        let m = &self.history.user_items;
        let held = m.row(u as usize).0;
        let w = match &self.profile {
            Some(p) => p[m.row_range(u as usize)].to_vec(),
            None => vec![1.0; held.len()],
        };
        (held, w)
    }

    fn score_held(&self, held: &[u32]) -> Vec<f32> {
        let mut s = vec![0f32; self.history.items.len()];
        for &i in held {
            if let Some(row) = self.weights.get(i as usize) {
                for &(j, w) in row {
                    s[j as usize] += w;
                }
            }
        }
        s
    }

    /// `Σ_x w_x·B[x, ·]` over held items `x` with weights `w_x`.
    fn score_weighted(&self, held: &[u32], weights: &[f32]) -> Vec<f32> {
        let mut s = vec![0f32; self.history.items.len()];
        for (&i, &wi) in held.iter().zip(weights) {
            if let Some(row) = self.weights.get(i as usize) {
                for &(j, w) in row {
                    s[j as usize] += wi * w;
                }
            }
        }
        s
    }

    fn weight(&self, i: u32, j: u32) -> Option<f32> {
        let row = self.weights.get(i as usize)?;
        row.binary_search_by_key(&j, |x| x.0).ok().map(|k| row[k].1)
    }

    /// The `k` items with the largest positive weight from `item` (`B[item, ·]`).
    pub fn similar_items(&self, item: &str, k: usize) -> Result<Vec<Recommendation>, RecoError> {
        let j = self.history.items.resolve("item", &[item])?[0];
        let mut row: Vec<(u32, f32)> = self.weights[j as usize]
            .iter()
            .copied()
            .filter(|&(i, w)| i != j && w > 0.0)
            .collect();
        row.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(row
            .into_iter()
            .take(k)
            .map(|(i, score)| Recommendation {
                item: self.history.items.id(i).to_string(),
                score,
            })
            .collect())
    }

    /// "Because you hold X": the score of `item` for `user` is exactly the sum of `B[x, item]`
    /// (times `x`'s recency weight, when the model has one) over the held items `x`; the
    /// largest shares first (negative ones when `n` reaches them).
    pub fn explain(&self, user: &str, item: &str, n: usize) -> Result<Vec<Reason>, RecoError> {
        let u = self.history.users.resolve("user", &[user])?[0];
        let i = self.history.items.resolve("item", &[item])?[0];
        let (held, rw) = self.held_weights(u);
        let c = held
            .iter()
            .zip(rw)
            .filter_map(|(&j, r)| {
                let w = self.weight(j, i)?;
                Some((self.history.items.id(j).to_string(), r * w))
            })
            .collect();
        Ok(top_reasons(c, n))
    }
}

impl Recommender for Ease {
    fn kind(&self) -> &'static str {
        "ease"
    }
    fn history(&self) -> &History {
        &self.history
    }
    fn score_user(&self, user: u32) -> Vec<f32> {
        if self.profile.is_none() {
            return self.score_held(self.history.user_items.row(user as usize).0);
        }
        let (held, w) = self.held_weights(user);
        self.score_weighted(held, &w)
    }
    fn score_new_user(&self, user: &NewUser) -> Result<Vec<f32>, RecoError> {
        let mut held = self.history.items.resolve("item", &user.items)?;
        held.sort_unstable();
        held.dedup();
        Ok(self.score_held(&held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InteractionOptions, InteractionRecord, Weighting};

    fn data() -> Interactions {
        let pairs = [
            ("a", "x"),
            ("a", "y"),
            ("b", "x"),
            ("b", "y"),
            ("c", "z"),
            ("c", "w"),
            ("d", "x"),
            ("e", "y"),
            ("e", "z"),
        ];
        let r: Vec<_> = pairs
            .iter()
            .map(|(u, i)| InteractionRecord::new(*u, *i))
            .collect();
        Interactions::build(
            &r,
            &InteractionOptions {
                weighting: Weighting::Binary,
                rating_threshold: None,
            },
        )
        .unwrap()
    }

    /// `B` from the textbook formula with a naive Gauss-Jordan inverse in f64.
    fn naive_b(d: &Interactions, reg: f64, dropout: f64) -> Vec<Vec<f64>> {
        let n = d.items().len();
        let mut a = vec![vec![0f64; 2 * n]; n];
        for u in 0..d.users().len() {
            let items = d.user_items().row(u).0;
            for &i in items {
                for &j in items {
                    a[i as usize][j as usize] += 1.0;
                }
            }
        }
        for (i, row) in a.iter_mut().enumerate() {
            row[i] += reg + dropout / (1.0 - dropout) * row[i];
            row[n + i] = 1.0;
        }
        for c in 0..n {
            let piv = a[c][c];
            for x in a[c].iter_mut() {
                *x /= piv;
            }
            for r in 0..n {
                if r != c {
                    let f = a[r][c];
                    let rc = a[c].clone();
                    for (x, y) in a[r].iter_mut().zip(rc) {
                        *x -= f * y;
                    }
                }
            }
        }
        let p: Vec<Vec<f64>> = a.iter().map(|r| r[n..].to_vec()).collect();
        (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| if i == j { 0.0 } else { -p[i][j] / p[j][j] })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn weights_match_the_closed_form() {
        let d = data();
        let p = EaseParams {
            regularization: 0.5,
            neighbours: 10,
            ..Default::default()
        };
        let m = Ease::fit(&d, &p, &FitControl::default()).unwrap();
        let want = naive_b(&d, 0.5, 0.0);
        let edlae = EaseParams {
            dropout: 0.25,
            ..p.clone()
        };
        let e = Ease::fit(&d, &edlae, &FitControl::default()).unwrap();
        let want_e = naive_b(&d, 0.5, 0.25);
        for (i, row) in want_e.iter().enumerate() {
            for (j, &w) in row.iter().enumerate() {
                let got = e.weight(i as u32, j as u32).map_or(0.0, f64::from);
                assert!((got - w).abs() < 1e-5, "EDLAE B[{i},{j}] = {got}, want {w}");
            }
        }
        assert_ne!(want_e, want, "the dropout emphasis changes the weights");
        let n = d.items().len();
        for (i, row) in want.iter().enumerate() {
            for (j, &w) in row.iter().enumerate() {
                let got = m.weight(i as u32, j as u32).map_or(0.0, f64::from);
                assert!((got - w).abs() < 1e-5, "B[{i},{j}] = {got}, want {w}");
            }
            assert_eq!(m.weights[i].len(), n - 1, "dense rows kept whole");
        }
        // d holds x: y (always held with x) outranks z and w.
        let rec = m.recommend("d", 1, &crate::Filter::new()).unwrap();
        assert_eq!(rec[0].item, "y");
        let why = m.explain("d", "y", 3).unwrap();
        assert_eq!(why[0].because, "x");
        assert!((why[0].contribution - rec[0].score).abs() < 1e-6);
    }

    #[test]
    fn recency_weights_held_items_by_rank_from_the_newest() {
        // Every user holds x, y and z; u0 took z last, u1 took x last (u1 ties x and y in time:
        // the larger item index counts as newer).
        let recs = [
            ("u0", "x", 1),
            ("u0", "y", 2),
            ("u0", "z", 3),
            ("u1", "z", 1),
            ("u1", "y", 5),
            ("u1", "x", 5),
            ("u2", "x", 1),
            ("u2", "w", 2),
            ("u3", "z", 1),
            ("u3", "w", 2),
        ];
        let r: Vec<_> = recs
            .iter()
            .map(|(u, i, t)| InteractionRecord::new(*u, *i).at(*t))
            .collect();
        let d = Interactions::build(&r, &InteractionOptions::default()).unwrap();
        let p = EaseParams {
            regularization: 0.5,
            recency_half_life: 0.5,
            neighbours: 10,
            ..Default::default()
        };
        let m = Ease::fit(&d, &p, &FitControl::default()).unwrap();
        let plain = Ease::fit(
            &d,
            &EaseParams {
                recency_half_life: 0.0,
                ..p.clone()
            },
            &FitControl::default(),
        )
        .unwrap();
        assert_eq!(m.weights, plain.weights, "recency does not change B");
        let id = |s: &str| d.items().get(s).unwrap();
        // n = 3, h·n = 1.5: weights 1, 0.5^(1/1.5), 0.5^(2/1.5) from the newest.
        let w = |r: f32| 0.5f32.powf(r / 1.5);
        for (user, newest_first) in [("u0", ["z", "y", "x"]), ("u1", ["y", "x", "z"])] {
            let u = d.users().get(user).unwrap();
            let want: Vec<f32> = (0..d.items().len() as u32)
                .map(|j| {
                    newest_first
                        .iter()
                        .enumerate()
                        .map(|(r, i)| w(r as f32) * m.weight(id(i), j).unwrap_or(0.0))
                        .sum()
                })
                .collect();
            let got = m.score_user(u);
            for (g, x) in got.iter().zip(&want) {
                assert!((g - x).abs() < 1e-6, "{user}: {got:?} vs {want:?}");
            }
            // The explanation's shares add up to the weighted score.
            let why = m.explain(user, "w", 5).unwrap();
            let sum: f32 = why.iter().map(|r| r.contribution).sum();
            assert!((sum - got[id("w") as usize]).abs() < 1e-6, "{why:?}");
        }
        assert_ne!(m.score_user(0), plain.score_user(0));
        let back: Ease = crate::decode(&crate::encode(&m).unwrap()).unwrap();
        for u in 0..4 {
            assert_eq!(back.score_user(u), m.score_user(u));
        }
        // Switching recency off gives the plain model's scores back.
        let off = m.with_recency(&d, 0.0).unwrap();
        assert_eq!(off.score_user(1), plain.score_user(1));
        // Without timestamps the parameter is named.
        let e = Ease::fit(&data(), &p, &FitControl::default()).unwrap_err();
        assert!(
            e.to_string().starts_with("parameter `recency_half_life`"),
            "{e}"
        );
    }

    #[test]
    fn pruning_keeps_the_largest_magnitudes() {
        let row = [0.5, -0.9, 0.1, 0.0, 0.3];
        assert_eq!(prune(&row, 0, 2), vec![(1, -0.9), (4, 0.3)]);
        assert_eq!(prune(&row, 1, 9), vec![(0, 0.5), (2, 0.1), (4, 0.3)]);
    }

    #[test]
    fn catalogue_limit_and_parameters_are_named() {
        let d = data();
        let e = Ease::fit(
            &d,
            &EaseParams {
                max_items: 3,
                ..Default::default()
            },
            &FitControl::default(),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("parameter `max_items`"), "{e}");
        assert!(e.to_string().contains("4 items"), "{e}");
        let e = Ease::fit(
            &d,
            &EaseParams {
                regularization: 0.0,
                ..Default::default()
            },
            &FitControl::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("`regularization`"), "{e}");
        let e = EaseParams {
            max_items: MAX_ITEMS_LIMIT + 1,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("`max_items`"), "{e}");
        assert_eq!(fit_memory_bytes(10_000), 2_400_000_000);
    }
}
