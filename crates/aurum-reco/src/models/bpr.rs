//! Bayesian personalised ranking (Rendle et al. 2009) fitted by stochastic gradient descent.
//!
//! BPR optimises the order of a held item above a random not-held one directly, rather than
//! reconstructing the matrix as ALS does. It follows `implicit`'s `BayesianPersonalizedRanking`:
//! per epoch `nnz` samples of a (user, held item) entry drawn uniformly, a negative item drawn
//! uniformly and redrawn while the user holds it, an item bias learned as an extra factor whose
//! user side is fixed at 1, and initial factors uniform in `(−0.5, 0.5) / factors`.
//!
//! Why single-threaded: `implicit` runs Hogwild (lock-free racing updates) over threads, which
//! makes a fit depend on scheduling. Here one seeded ChaCha8 stream drives every draw, so a fit
//! is bit-for-bit reproducible; on catalogues of this size an epoch takes milliseconds.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::models::als::dot;
use crate::recommender::{FitControl, Recommender};
use crate::{History, Interactions, RecoError};

#[derive(Clone, Debug, PartialEq)]
pub struct BprParams {
    pub factors: usize,
    pub learning_rate: f32,
    pub regularization: f32,
    pub iterations: usize,
    pub seed: u64,
}

impl Default for BprParams {
    fn default() -> Self {
        BprParams {
            factors: 100,
            learning_rate: 0.01,
            regularization: 0.01,
            iterations: 100,
            seed: 42,
        }
    }
}

impl BprParams {
    fn validate(&self) -> Result<(), RecoError> {
        crate::error::check_count("factors", self.factors, 1, 1024)?;
        crate::error::check_range("learning_rate", self.learning_rate, 1e-9, 10.0)?;
        crate::error::check_range("regularization", self.regularization, 0.0, 1e3)?;
        crate::error::check_count("iterations", self.iterations, 1, 100_000)?;
        Ok(())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bpr {
    history: History,
    /// Row width: factors + 1 (the last column is 1 for users and the bias for items).
    width: usize,
    user_factors: Vec<f32>,
    item_factors: Vec<f32>,
}

impl Bpr {
    pub fn fit(
        data: &Interactions,
        params: &BprParams,
        ctl: &FitControl,
    ) -> Result<Self, RecoError> {
        params.validate()?;
        let m = data.user_items();
        let (n_users, n_items) = (m.rows(), m.cols());
        if n_items < 2 {
            return Err(RecoError::NoInteractions(
                "BPR needs at least two items".into(),
            ));
        }
        let w = params.factors + 1;
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let scale = params.factors as f32;
        let mut init = |n: usize| {
            (0..n * w)
                .map(|_| (rng.random::<f32>() - 0.5) / scale)
                .collect::<Vec<f32>>()
        };
        let mut x = init(n_users);
        let mut y = init(n_items);
        for u in 0..n_users {
            x[u * w + w - 1] = 1.0;
        }
        // Entry index → user, for uniform sampling over entries.
        let mut owner = Vec::with_capacity(m.nnz());
        for u in 0..n_users {
            owner.extend(std::iter::repeat_n(u as u32, m.row(u).0.len()));
        }
        let items = m.indices();
        let (lr, reg) = (params.learning_rate, params.regularization);
        let mut grad_u = vec![0f32; w];
        for epoch in 0..params.iterations {
            ctl.step("bpr", epoch as f64 / params.iterations as f64)?;
            for _ in 0..m.nnz() {
                let e = rng.random_range(0..m.nnz());
                let u = owner[e] as usize;
                let i = items[e] as usize;
                let held = m.row(u).0;
                if held.len() >= n_items {
                    continue;
                }
                let j = loop {
                    let j = rng.random_range(0..n_items as u32);
                    if held.binary_search(&j).is_err() {
                        break j as usize;
                    }
                };
                let (xu, yi, yj) = (
                    &x[u * w..(u + 1) * w],
                    &y[i * w..(i + 1) * w],
                    &y[j * w..(j + 1) * w],
                );
                let z = 1.0 / (1.0 + (dot(xu, yi) - dot(xu, yj)).exp());
                for k in 0..w {
                    grad_u[k] = z * (yi[k] - yj[k]) - reg * xu[k];
                }
                for k in 0..w {
                    let xuk = x[u * w + k];
                    y[i * w + k] += lr * (z * xuk - reg * y[i * w + k]);
                    y[j * w + k] += lr * (-z * xuk - reg * y[j * w + k]);
                }
                // The user's bias column stays 1.
                for k in 0..w - 1 {
                    x[u * w + k] += lr * grad_u[k];
                }
            }
            if y.iter().chain(&x).any(|v| !v.is_finite()) {
                return Err(RecoError::Internal(format!(
                    "BPR factors diverged at epoch {epoch}; lower learning_rate"
                )));
            }
        }
        ctl.step("bpr", 1.0)?;
        Ok(Bpr {
            history: data.history(),
            width: w,
            user_factors: x,
            item_factors: y,
        })
    }
}

impl Recommender for Bpr {
    fn kind(&self) -> &'static str {
        "bpr"
    }
    fn history(&self) -> &History {
        &self.history
    }
    fn score_user(&self, user: u32) -> Vec<f32> {
        let w = self.width;
        let xu = &self.user_factors[user as usize * w..(user as usize + 1) * w];
        self.item_factors
            .chunks_exact(w)
            .map(|yi| dot(xu, yi))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_validated_by_name() {
        let e = BprParams {
            learning_rate: 0.0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("`learning_rate`"), "{e}");
    }
}
