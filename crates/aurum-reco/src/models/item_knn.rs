//! Item-item neighbourhood: score an item by its similarity to the items the user holds.
//!
//! Why it is here: it is the model a relationship manager can follow ("customers who hold your
//! mortgage also hold…"), it explains itself exactly (the score *is* a sum over held items), and
//! it stays strong on small catalogues. Similarities are the item×user matrix times its
//! transpose, with rows either L2-normalised (cosine) or BM25-weighted (as `implicit`'s
//! `CosineRecommender` and `BM25Recommender`), and only the top `neighbours` per item kept, so
//! scoring a user costs `|held| · neighbours`.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::interactions::Csr;
use crate::recommender::{FitControl, NewUser, Reason, Recommender, top_k, top_reasons};
use crate::{History, Interactions, RecoError, Recommendation};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Similarity {
    Cosine,
    /// BM25 weighting of the item×user matrix (`implicit`'s `bm25_weight`; defaults k1 1.2, b 0.75).
    Bm25 {
        k1: f32,
        b: f32,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ItemKnnParams {
    pub similarity: Similarity,
    /// Neighbours kept per item.
    pub neighbours: usize,
}

impl Default for ItemKnnParams {
    fn default() -> Self {
        ItemKnnParams {
            similarity: Similarity::Cosine,
            neighbours: 50,
        }
    }
}

impl ItemKnnParams {
    fn validate(&self) -> Result<(), RecoError> {
        crate::error::check_count("neighbours", self.neighbours, 1, 100_000)?;
        if let Similarity::Bm25 { k1, b } = self.similarity {
            crate::error::check_range("similarity.k1", k1, 0.0, 1e4)?;
            crate::error::check_range("similarity.b", b, 0.0, 1.0)?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ItemKnn {
    history: History,
    /// Row `j`: the neighbours `i` of item `j` with similarity `S[j, i]`, best first.
    neighbours: Vec<Vec<(u32, f32)>>,
}

/// `implicit.nearest_neighbours.bm25_weight` on an item×user matrix.
fn bm25(item_users: &Csr, k1: f32, b: f32) -> Csr {
    let mut w = item_users.clone();
    let n = item_users.rows().max(1) as f32;
    let mut df = vec![0f32; item_users.cols()];
    for &u in item_users.indices() {
        df[u as usize] += 1.0;
    }
    let idf: Vec<f32> = df.iter().map(|&d| n.ln() - d.ln_1p()).collect();
    let lens: Vec<f32> = (0..w.rows()).map(|r| w.row(r).1.iter().sum()).collect();
    let avg = lens.iter().sum::<f32>() / lens.len().max(1) as f32;
    for (r, len) in lens.iter().enumerate() {
        let norm = (1.0 - b) + b * len / avg.max(f32::MIN_POSITIVE);
        let range = w.row_range(r);
        let cols: Vec<u32> = w.indices()[range.clone()].to_vec();
        for (x, u) in w.data_mut()[range].iter_mut().zip(cols) {
            *x = *x * (k1 + 1.0) / (k1 * norm + *x) * idf[u as usize];
        }
    }
    w
}

fn l2_rows(m: &Csr) -> Csr {
    let mut w = m.clone();
    for r in 0..w.rows() {
        let range = w.row_range(r);
        let norm = w.data()[range.clone()]
            .iter()
            .map(|x| x * x)
            .sum::<f32>()
            .sqrt();
        if norm > 0.0 {
            w.data_mut()[range].iter_mut().for_each(|x| *x /= norm);
        }
    }
    w
}

impl ItemKnn {
    pub fn fit(
        data: &Interactions,
        params: &ItemKnnParams,
        ctl: &FitControl,
    ) -> Result<Self, RecoError> {
        params.validate()?;
        ctl.step("item_knn", 0.0)?;
        let w = match params.similarity {
            Similarity::Cosine => l2_rows(data.item_users()),
            Similarity::Bm25 { k1, b } => bm25(data.item_users(), k1, b),
        };
        let wt = w.transpose();
        let n = w.rows();
        let keep = params.neighbours;
        let neighbours: Vec<Vec<(u32, f32)>> = (0..n)
            .into_par_iter()
            .map_init(
                || (vec![0f32; n], vec![false; n], Vec::<u32>::new()),
                |(acc, seen, touched), a| {
                    let (users, wa) = w.row(a);
                    for (&u, &x) in users.iter().zip(wa) {
                        let (items, wb) = wt.row(u as usize);
                        for (&bi, &y) in items.iter().zip(wb) {
                            if !seen[bi as usize] {
                                seen[bi as usize] = true;
                                touched.push(bi);
                            }
                            acc[bi as usize] += x * y;
                        }
                    }
                    let cand: Vec<f32> = touched.iter().map(|&bi| acc[bi as usize]).collect();
                    let best = top_k(&cand, |j| touched[j] as usize != a && cand[j] > 0.0, keep);
                    let row = best
                        .into_iter()
                        .map(|(j, s)| (touched[j as usize], s))
                        .collect();
                    for &bi in touched.iter() {
                        acc[bi as usize] = 0.0;
                        seen[bi as usize] = false;
                    }
                    touched.clear();
                    row
                },
            )
            .collect();
        ctl.step("item_knn", 1.0)?;
        Ok(ItemKnn {
            history: data.history(),
            neighbours,
        })
    }

    fn score_held(&self, held: &[u32], weights: &[f32]) -> Vec<f32> {
        let mut s = vec![0f32; self.history.items.len()];
        for (&j, &r) in held.iter().zip(weights) {
            for &(i, sim) in &self.neighbours[j as usize] {
                s[i as usize] += r * sim;
            }
        }
        s
    }

    /// The `k` items most similar to `item`.
    pub fn similar_items(&self, item: &str, k: usize) -> Result<Vec<Recommendation>, RecoError> {
        let j = self.history.items.resolve("item", &[item])?[0];
        Ok(self.neighbours[j as usize]
            .iter()
            .take(k)
            .map(|&(i, score)| Recommendation {
                item: self.history.items.id(i).to_string(),
                score,
            })
            .collect())
    }

    /// "Because you hold X": the held items contributing most to `item`'s score for `user`.
    pub fn explain(&self, user: &str, item: &str, n: usize) -> Result<Vec<Reason>, RecoError> {
        let u = self.history.users.resolve("user", &[user])?[0];
        let i = self.history.items.resolve("item", &[item])?[0];
        let (held, r) = self.history.user_items.row(u as usize);
        let c = held
            .iter()
            .zip(r)
            .filter_map(|(&j, &r)| {
                let sim = self.neighbours[j as usize].iter().find(|x| x.0 == i)?.1;
                Some((self.history.items.id(j).to_string(), r * sim))
            })
            .collect();
        Ok(top_reasons(c, n))
    }
}

impl Recommender for ItemKnn {
    fn kind(&self) -> &'static str {
        "item_knn"
    }
    fn history(&self) -> &History {
        &self.history
    }
    fn score_user(&self, user: u32) -> Vec<f32> {
        let (held, r) = self.history.user_items.row(user as usize);
        self.score_held(held, r)
    }
    fn score_new_user(&self, user: &NewUser) -> Result<Vec<f32>, RecoError> {
        let held = self.history.items.resolve("item", &user.items)?;
        Ok(self.score_held(&held, &vec![1.0; held.len()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InteractionOptions, InteractionRecord, Weighting};

    fn data() -> Interactions {
        // x and y are always held together; z goes with w.
        let pairs = [
            ("a", "x"),
            ("a", "y"),
            ("b", "x"),
            ("b", "y"),
            ("c", "z"),
            ("c", "w"),
            ("d", "x"),
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

    #[test]
    fn cosine_similarity_matches_hand_computation() {
        let m = ItemKnn::fit(&data(), &ItemKnnParams::default(), &FitControl::default()).unwrap();
        let s = m.similar_items("x", 5).unwrap();
        // x = {a, b, d}, y = {a, b}: cos = 2 / (√3 · √2).
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].item, "y");
        assert!((s[0].score - 2.0 / (3f32.sqrt() * 2f32.sqrt())).abs() < 1e-6);
        let rec = m.recommend("d", 1, &crate::Filter::new()).unwrap();
        assert_eq!(rec[0].item, "y");
        let why = m.explain("d", "y", 3).unwrap();
        assert_eq!(why[0].because, "x");
    }

    #[test]
    fn bm25_ranks_the_same_pairs_and_validates() {
        let p = ItemKnnParams {
            similarity: Similarity::Bm25 { k1: 1.2, b: 0.75 },
            neighbours: 2,
        };
        let m = ItemKnn::fit(&data(), &p, &FitControl::default()).unwrap();
        assert_eq!(m.similar_items("z", 1).unwrap()[0].item, "w");
        let bad = ItemKnnParams {
            similarity: Similarity::Bm25 { k1: 1.2, b: 2.0 },
            neighbours: 2,
        };
        let e = ItemKnn::fit(&data(), &bad, &FitControl::default()).unwrap_err();
        assert!(e.to_string().contains("similarity.b"), "{e}");
    }
}
