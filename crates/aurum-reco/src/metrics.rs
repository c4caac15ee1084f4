//! Ranking metrics with binary relevance, and [`evaluate`] for a fitted model on a split.
//!
//! Definitions (the ones `implicit.evaluation` and most papers use, spelled out because small
//! differences change the figures):
//! - precision@k = hits in the top k / k;
//! - recall@k = hits in the top k / |relevant|;
//! - AP@k = Σ over hit positions i ≤ k of (hits up to i / i), divided by min(k, |relevant|);
//!   MAP@k is its mean over users;
//! - NDCG@k = DCG / IDCG with DCG = Σ_{i ≤ k, hit} 1/log2(i+1) (1-based i) and IDCG the DCG of
//!   min(k, |relevant|) hits at the top;
//! - catalogue coverage = distinct recommended items / catalogue size;
//! - novelty = mean over every recommended item of −log2 p(i), with p(i) the share of training
//!   users holding i (an item no training user holds counts as held by one, so it stays finite).
//!
//! Users without relevant items are skipped: they carry no information about ranking quality.

use rayon::prelude::*;

use crate::recommender::{Recommender, top_k};
use crate::{Interactions, RecoError};

fn hits<T: PartialEq>(
    recommended: &[T],
    relevant: &[T],
    k: usize,
) -> impl Iterator<Item = (usize, bool)> {
    recommended
        .iter()
        .take(k)
        .enumerate()
        .map(move |(i, r)| (i, relevant.contains(r)))
}

pub fn precision_at_k<T: PartialEq>(recommended: &[T], relevant: &[T], k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    hits(recommended, relevant, k).filter(|h| h.1).count() as f64 / k as f64
}

pub fn recall_at_k<T: PartialEq>(recommended: &[T], relevant: &[T], k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    hits(recommended, relevant, k).filter(|h| h.1).count() as f64 / relevant.len() as f64
}

pub fn average_precision_at_k<T: PartialEq>(recommended: &[T], relevant: &[T], k: usize) -> f64 {
    let denom = k.min(relevant.len());
    if denom == 0 {
        return 0.0;
    }
    let mut found = 0usize;
    let mut sum = 0.0;
    for (i, hit) in hits(recommended, relevant, k) {
        if hit {
            found += 1;
            sum += found as f64 / (i + 1) as f64;
        }
    }
    sum / denom as f64
}

pub fn ndcg_at_k<T: PartialEq>(recommended: &[T], relevant: &[T], k: usize) -> f64 {
    let ideal: f64 = (0..k.min(relevant.len()))
        .map(|i| 1.0 / ((i + 2) as f64).log2())
        .sum();
    if ideal == 0.0 {
        return 0.0;
    }
    let dcg: f64 = hits(recommended, relevant, k)
        .filter(|h| h.1)
        .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
        .sum();
    dcg / ideal
}

/// Distinct recommended items / catalogue size.
pub fn catalogue_coverage(lists: &[Vec<u32>], n_items: usize) -> f64 {
    if n_items == 0 {
        return 0.0;
    }
    let mut seen = vec![false; n_items];
    for &i in lists.iter().flatten() {
        if let Some(s) = seen.get_mut(i as usize) {
            *s = true;
        }
    }
    seen.iter().filter(|&&s| s).count() as f64 / n_items as f64
}

/// Mean self-information `−log2(max(holders(i), 1) / n_users)` over every recommended item.
pub fn novelty(lists: &[Vec<u32>], holders: &[usize], n_users: usize) -> f64 {
    let all: Vec<u32> = lists.iter().flatten().copied().collect();
    if all.is_empty() || n_users == 0 {
        return 0.0;
    }
    let info = |i: u32| {
        let h = holders.get(i as usize).copied().unwrap_or(0).max(1) as f64;
        -(h / n_users as f64).log2()
    };
    all.iter().map(|&i| info(i)).sum::<f64>() / all.len() as f64
}

/// Means over the evaluated users, plus catalogue-level figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub k: usize,
    /// Users with at least one test item.
    pub users: usize,
    pub precision: f64,
    pub recall: f64,
    pub map: f64,
    pub ndcg: f64,
    pub coverage: f64,
    pub novelty: f64,
}

/// Ranks every item for each user with test items, never returning an item the user holds in
/// `train`, and scores the top `k` against `test`. `train` and `test` must come from one split and
/// the model must have been fitted on `train`'s id maps.
pub fn evaluate(
    model: &dyn Recommender,
    train: &Interactions,
    test: &Interactions,
    k: usize,
) -> Result<Evaluation, RecoError> {
    crate::error::check_count("k", k, 1, 100_000)?;
    if !train.same_ids(test) {
        return Err(RecoError::Mismatch(
            "train and test do not share id maps; build both with one split".into(),
        ));
    }
    let h = model.history();
    if h.users != *train.users() || h.items != *train.items() {
        return Err(RecoError::Mismatch(
            "the model was not fitted on these id maps".into(),
        ));
    }
    let users: Vec<usize> = (0..test.users().len())
        .filter(|&u| !test.user_items().row(u).0.is_empty())
        .collect();
    if users.is_empty() {
        return Err(RecoError::NoInteractions(
            "the test set has no user with an item".into(),
        ));
    }
    let per_user: Vec<(Vec<u32>, [f64; 4])> = users
        .par_iter()
        .map(|&u| {
            let scores = model.score_user(u as u32);
            let held = train.user_items().row(u).0;
            let rec: Vec<u32> = top_k(&scores, |i| held.binary_search(&(i as u32)).is_err(), k)
                .into_iter()
                .map(|x| x.0)
                .collect();
            let rel = test.user_items().row(u).0;
            let m = [
                precision_at_k(&rec, rel, k),
                recall_at_k(&rec, rel, k),
                average_precision_at_k(&rec, rel, k),
                ndcg_at_k(&rec, rel, k),
            ];
            (rec, m)
        })
        .collect();
    let n = per_user.len() as f64;
    let mean = |j: usize| per_user.iter().map(|x| x.1[j]).sum::<f64>() / n;
    let lists: Vec<Vec<u32>> = per_user.iter().map(|x| x.0.clone()).collect();
    let holders: Vec<usize> = (0..train.items().len())
        .map(|i| train.item_users().row(i).0.len())
        .collect();
    Ok(Evaluation {
        k,
        users: per_user.len(),
        precision: mean(0),
        recall: mean(1),
        map: mean(2),
        ndcg: mean(3),
        coverage: catalogue_coverage(&lists, train.items().len()),
        novelty: novelty(&lists, &holders, train.users().len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    // Recommended [a, b, c, d, e], relevant {b, d, f}, k = 5: hits at positions 2 and 4.
    const REC: [&str; 5] = ["a", "b", "c", "d", "e"];
    const REL: [&str; 3] = ["b", "d", "f"];

    #[test]
    fn precision_and_recall_hand_computed() {
        assert!(close(precision_at_k(&REC, &REL, 5), 2.0 / 5.0));
        assert!(close(recall_at_k(&REC, &REL, 5), 2.0 / 3.0));
        assert!(close(precision_at_k(&REC, &REL, 2), 1.0 / 2.0));
        assert!(close(recall_at_k(&REC, &REL, 1), 0.0));
    }

    #[test]
    fn map_hand_computed() {
        // (1/2 + 2/4) / min(5, 3)
        assert!(close(
            average_precision_at_k(&REC, &REL, 5),
            (0.5 + 0.5) / 3.0
        ));
        // k = 2: (1/2) / min(2, 3)
        assert!(close(average_precision_at_k(&REC, &REL, 2), 0.25));
    }

    #[test]
    fn ndcg_hand_computed() {
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!(close(ndcg_at_k(&REC, &REL, 5), dcg / idcg));
        // k = 2: IDCG from min(2, 3) = 2 hits.
        assert!(close(
            ndcg_at_k(&REC, &REL, 2),
            (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2())
        ));
        assert!(close(ndcg_at_k(&["x"], &["x"], 10), 1.0));
        assert!(close(ndcg_at_k::<&str>(&["x"], &[], 10), 0.0));
    }

    #[test]
    fn coverage_and_novelty_hand_computed() {
        let lists = vec![vec![0, 1], vec![1, 2]];
        assert!(close(catalogue_coverage(&lists, 4), 0.75));
        // 8 users; item 0 held by 4 (1 bit), item 1 by 2 (2 bits, twice), item 2 by none (3 bits).
        let holders = [4, 2, 0, 8];
        assert!(close(
            novelty(&lists, &holders, 8),
            (1.0 + 2.0 + 2.0 + 3.0) / 4.0
        ));
    }
}
