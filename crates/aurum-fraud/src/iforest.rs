//! Isolation forest (Liu, Ting & Zhou 2008) for scoring without labels.
//!
//! Why it is here: fraud labels arrive weeks late and a new portfolio has none, so the first
//! model is unsupervised. Anomalies are isolated by fewer random axis-parallel cuts; the score is
//! `s(x) = 2^(−E[h(x)] / c(ψ))`, where `h` is the path length (plus `c(size)` for the points left
//! in an unsplit leaf) and `c(n) = 2·H(n − 1) − 2(n − 1)/n` with `H(i) ≈ ln i + γ` is the average
//! path length of an unsuccessful search in a binary search tree of `n` points. Scores near 1 are
//! anomalies; well below 0.5 normal. Trees are grown from a seeded ChaCha8 stream, so a fit is
//! reproducible on every platform, and the fitted forest is plain serde data.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{FraudError, Result};

const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// `c(n)`: the average path length of an unsuccessful BST search among `n` points.
pub fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        n => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsolationForestParams {
    pub n_trees: usize,
    /// ψ: rows drawn (without replacement) per tree.
    pub sample_size: usize,
    pub seed: u64,
}

impl Default for IsolationForestParams {
    fn default() -> Self {
        IsolationForestParams {
            n_trees: 100,
            sample_size: 256,
            seed: 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Node {
    Split {
        feature: usize,
        threshold: f64,
        left: u32,
        right: u32,
    },
    Leaf {
        size: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IsolationForest {
    pub format_version: u32,
    pub params: IsolationForestParams,
    pub n_features: usize,
    /// `c(ψ)` for the sample size actually used.
    pub c_psi: f64,
    trees: Vec<Vec<Node>>,
}

impl IsolationForest {
    /// Fits on rows of equal length with finite values.
    pub fn fit(rows: &[Vec<f64>], params: &IsolationForestParams) -> Result<IsolationForest> {
        if params.n_trees == 0 {
            return Err(FraudError::input("n_trees", "must be at least 1"));
        }
        if params.sample_size < 2 {
            return Err(FraudError::input(
                "sample_size",
                format!("{} is below 2", params.sample_size),
            ));
        }
        let n_features = check_rows(rows, None)?;
        let psi = params.sample_size.min(rows.len());
        let max_depth = (psi as f64).log2().ceil() as usize;
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let mut trees = Vec::with_capacity(params.n_trees);
        let mut idx: Vec<usize> = (0..rows.len()).collect();
        for _ in 0..params.n_trees {
            // Partial Fisher–Yates: the first ψ entries are a uniform sample without replacement.
            for i in 0..psi {
                let j = rng.random_range(i..idx.len());
                idx.swap(i, j);
            }
            let mut sample = idx[..psi].to_vec();
            let mut nodes = Vec::new();
            grow(
                rows,
                &mut sample,
                0,
                max_depth,
                n_features,
                &mut rng,
                &mut nodes,
            );
            trees.push(nodes);
        }
        Ok(IsolationForest {
            format_version: 1,
            params: params.clone(),
            n_features,
            c_psi: average_path_length(psi),
            trees,
        })
    }

    /// The anomaly score in (0, 1] of one row.
    pub fn score(&self, row: &[f64]) -> Result<f64> {
        if row.len() != self.n_features {
            return Err(FraudError::input(
                "row",
                format!(
                    "has {} values, the forest has {} features",
                    row.len(),
                    self.n_features
                ),
            ));
        }
        if let Some(j) = row.iter().position(|x| !x.is_finite()) {
            return Err(FraudError::input(
                format!("row[{j}]"),
                format!("{} is not finite", row[j]),
            ));
        }
        let mut total = 0.0;
        for tree in &self.trees {
            let (mut at, mut depth) = (0usize, 0.0);
            loop {
                match tree.get(at) {
                    Some(Node::Split {
                        feature,
                        threshold,
                        left,
                        right,
                    }) => {
                        at = if row.get(*feature).is_some_and(|x| x < threshold) {
                            *left as usize
                        } else {
                            *right as usize
                        };
                        depth += 1.0;
                    }
                    Some(Node::Leaf { size }) => {
                        total += depth + average_path_length(*size);
                        break;
                    }
                    None => break,
                }
            }
        }
        let mean = total / self.trees.len().max(1) as f64;
        Ok(if self.c_psi > 0.0 {
            2f64.powf(-mean / self.c_psi)
        } else {
            1.0
        })
    }

    pub fn score_batch(&self, rows: &[Vec<f64>]) -> Result<Vec<f64>> {
        rows.iter().map(|r| self.score(r)).collect()
    }
}

fn check_rows(rows: &[Vec<f64>], width: Option<usize>) -> Result<usize> {
    let Some(first) = rows.first() else {
        return Err(FraudError::input("rows", "is empty"));
    };
    let n = width.unwrap_or(first.len());
    if n == 0 {
        return Err(FraudError::input("rows[0]", "has no features"));
    }
    for (i, r) in rows.iter().enumerate() {
        if r.len() != n {
            return Err(FraudError::input(
                format!("rows[{i}]"),
                format!("has {} values, expected {n}", r.len()),
            ));
        }
        if let Some(j) = r.iter().position(|x| !x.is_finite()) {
            return Err(FraudError::input(
                format!("rows[{i}][{j}]"),
                format!("{} is not finite", r[j]),
            ));
        }
    }
    Ok(n)
}

/// Grows one isolation tree over `sample` (indices into `rows`); returns the node index.
fn grow(
    rows: &[Vec<f64>],
    sample: &mut [usize],
    depth: usize,
    max_depth: usize,
    n_features: usize,
    rng: &mut ChaCha8Rng,
    nodes: &mut Vec<Node>,
) -> u32 {
    let at = nodes.len() as u32;
    nodes.push(Node::Leaf { size: sample.len() });
    if sample.len() <= 1 || depth >= max_depth {
        return at;
    }
    // Features that still vary in this node; a constant node cannot be split further.
    let ranges: Vec<(usize, f64, f64)> = (0..n_features)
        .filter_map(|f| {
            let (lo, hi) = sample
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &i| {
                    (lo.min(rows[i][f]), hi.max(rows[i][f]))
                });
            (hi > lo).then_some((f, lo, hi))
        })
        .collect();
    if ranges.is_empty() {
        return at;
    }
    let (feature, lo, hi) = ranges[rng.random_range(0..ranges.len())];
    let mut threshold = rng.random_range(lo..hi);
    if threshold <= lo {
        threshold = hi; // keeps both sides non-empty when the draw lands on the minimum
    }
    let mut mid = 0;
    for k in 0..sample.len() {
        if rows[sample[k]][feature] < threshold {
            sample.swap(k, mid);
            mid += 1;
        }
    }
    let (l, r) = sample.split_at_mut(mid);
    let left = grow(rows, l, depth + 1, max_depth, n_features, rng, nodes);
    let right = grow(rows, r, depth + 1, max_depth, n_features, rng, nodes);
    nodes[at as usize] = Node::Split {
        feature,
        threshold,
        left,
        right,
    };
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_of_n_matches_the_paper() {
        assert_eq!(average_path_length(1), 0.0);
        assert_eq!(average_path_length(2), 1.0);
        // 2·(ln 255 + γ) − 2·255/256
        assert!(
            (average_path_length(256) - 10.244_770_920_12).abs() < 1e-11,
            "{}",
            average_path_length(256)
        );
    }

    fn cloud() -> Vec<Vec<f64>> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        (0..500)
            .map(|_| vec![rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)])
            .collect()
    }

    #[test]
    fn outliers_score_higher_and_fits_are_reproducible() {
        let rows = cloud();
        let params = IsolationForestParams {
            seed: 3,
            ..Default::default()
        };
        let forest = IsolationForest::fit(&rows, &params).unwrap();
        let inlier = forest.score(&[0.0, 0.0]).unwrap();
        let outlier = forest.score(&[8.0, -8.0]).unwrap();
        assert!(
            outlier > 0.6 && inlier < 0.5 && outlier > inlier,
            "{inlier} {outlier}"
        );
        let again = IsolationForest::fit(&rows, &params).unwrap();
        assert_eq!(again, forest);
        let json = serde_json::to_string(&forest).unwrap();
        let back: IsolationForest = serde_json::from_str(&json).unwrap();
        assert_eq!(back.score(&[8.0, -8.0]).unwrap(), outlier);
    }

    #[test]
    fn bad_input_is_an_error() {
        let params = IsolationForestParams::default();
        assert_eq!(
            IsolationForest::fit(&[], &params).unwrap_err().to_string(),
            "rows: is empty"
        );
        let ragged = vec![vec![1.0, 2.0], vec![1.0]];
        assert_eq!(
            IsolationForest::fit(&ragged, &params)
                .unwrap_err()
                .to_string(),
            "rows[1]: has 1 values, expected 2"
        );
        let nan = vec![vec![1.0], vec![f64::NAN]];
        assert!(
            IsolationForest::fit(&nan, &params)
                .unwrap_err()
                .to_string()
                .starts_with("rows[1][0]")
        );
        let forest = IsolationForest::fit(&cloud(), &params).unwrap();
        assert_eq!(
            forest.score(&[1.0]).unwrap_err().code(),
            "fraud_invalid_input"
        );
        // Constant data: every tree is one leaf; the score is still defined.
        let flat = vec![vec![1.0]; 10];
        let f = IsolationForest::fit(&flat, &params).unwrap();
        assert!(f.score(&[1.0]).unwrap().is_finite());
    }
}
