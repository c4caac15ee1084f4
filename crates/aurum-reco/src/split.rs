//! Train/test splits that keep the id maps, so a model fitted on `train` scores `test` directly.
//!
//! Why per user: a global time cut leaves users with nothing in train (they cannot be scored) or
//! nothing in test (they do not count). Holding out each user's latest fraction is the protocol
//! recommendation papers use for "what will this customer take up next", and leave-k-out is the
//! `implicit` library's `leave_k_out_split` protocol for data without time.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::interactions::Csr;
use crate::{Interactions, RecoError};

/// A train/test pair over the same id maps; no (user, item) entry is in both.
#[derive(Clone, Debug)]
pub struct Split {
    pub train: Interactions,
    pub test: Interactions,
}

/// Holds out each user's latest `test_fraction` of interactions (by timestamp, ties broken by
/// item index). A user with `n` entries gives `round(n · test_fraction)` to test, but always keeps
/// at least one in train, so users with a single interaction stay entirely in train.
pub fn time_split(data: &Interactions, test_fraction: f32) -> Result<Split, RecoError> {
    crate::error::check_range("test_fraction", test_fraction, 0.0, 1.0)?;
    if test_fraction <= 0.0 || test_fraction >= 1.0 {
        return Err(RecoError::param(
            "test_fraction",
            format!("must be strictly between 0 and 1, got {test_fraction}"),
        ));
    }
    let Some(ts) = data.timestamps() else {
        let user = first_user_with_entries(data);
        return Err(RecoError::MissingTimestamp { user });
    };
    split_by(data, |_, range, cols| {
        let n = range.len();
        let held = ((n as f32 * test_fraction).round() as usize).min(n.saturating_sub(1));
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&j| (ts[range.start + j], cols[j]));
        let mut test = vec![false; n];
        for &j in &order[n - held..] {
            test[j] = true;
        }
        test
    })
}

/// Holds out `k` random interactions of every user who has more than `k`; seeded (ChaCha8).
pub fn leave_k_out(data: &Interactions, k: usize, seed: u64) -> Result<Split, RecoError> {
    crate::error::check_count("k", k, 1, usize::MAX)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    split_by(data, |_, range, _| {
        let n = range.len();
        let mut test = vec![false; n];
        if n > k {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut rng);
            for &j in &order[..k] {
                test[j] = true;
            }
        }
        test
    })
}

fn first_user_with_entries(data: &Interactions) -> String {
    (0..data.users().len())
        .find(|&u| !data.user_items().row(u).0.is_empty())
        .map(|u| data.users().id(u as u32).to_string())
        .unwrap_or_default()
}

/// Splits row by row; `choose(user, entry range, columns)` marks the test entries.
fn split_by(
    data: &Interactions,
    mut choose: impl FnMut(usize, std::ops::Range<usize>, &[u32]) -> Vec<bool>,
) -> Result<Split, RecoError> {
    let m = data.user_items();
    let ts = data.timestamps();
    let (mut train, mut test) = (Vec::new(), Vec::new());
    let (mut train_ts, mut test_ts) = (Vec::new(), Vec::new());
    for u in 0..m.rows() {
        let range = m.row_range(u);
        let (cols, vals) = m.row(u);
        let is_test = choose(u, range.clone(), cols);
        for (j, ((&c, &v), t)) in cols.iter().zip(vals).zip(is_test).enumerate() {
            let stamp = ts.map(|ts| ts[range.start + j]);
            if t {
                test.push((u as u32, c, v));
                test_ts.extend(stamp);
            } else {
                train.push((u as u32, c, v));
                train_ts.extend(stamp);
            }
        }
    }
    if test.is_empty() {
        return Err(RecoError::NoInteractions(
            "the split left the test set empty (too few interactions per user)".into(),
        ));
    }
    let part = |t: Vec<(u32, u32, f32)>, stamps: Vec<i64>| {
        let csr = Csr::from_triplets(m.rows(), m.cols(), t);
        Interactions::from_parts(
            data.users().clone(),
            data.items().clone(),
            csr,
            ts.map(|_| stamps),
        )
    };
    Ok(Split {
        train: part(train, train_ts),
        test: part(test, test_ts),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InteractionOptions, InteractionRecord};

    fn data(timed: bool) -> Interactions {
        let mut r = Vec::new();
        for (u, n) in [("a", 5), ("b", 1), ("c", 3)] {
            for i in 0..n {
                let rec = InteractionRecord::new(u, format!("i{i}"));
                r.push(if timed { rec.at(100 - i as i64) } else { rec });
            }
        }
        Interactions::build(&r, &InteractionOptions::default()).unwrap()
    }

    #[test]
    fn time_split_holds_out_each_users_latest() {
        let d = data(true);
        let s = time_split(&d, 0.4).unwrap();
        // a: 5 entries → 2 held out, the latest timestamps are i0 (100) and i1 (99).
        let a = d.users().get("a").unwrap() as usize;
        let held: Vec<&str> = s
            .test
            .user_items()
            .row(a)
            .0
            .iter()
            .map(|&i| d.items().id(i))
            .collect();
        assert_eq!(held, vec!["i0", "i1"]);
        // b has one entry: kept in train. c: round(1.2) = 1 held out.
        let b = d.users().get("b").unwrap() as usize;
        assert!(s.test.user_items().row(b).0.is_empty());
        assert_eq!(s.train.nnz() + s.test.nnz(), d.nnz());
        assert!(s.train.same_ids(&s.test));
    }

    #[test]
    fn time_split_needs_timestamps_and_a_valid_fraction() {
        assert_eq!(
            time_split(&data(false), 0.2).unwrap_err().code(),
            "reco_missing_timestamp"
        );
        let e = time_split(&data(true), 1.0).unwrap_err();
        assert!(e.to_string().contains("test_fraction"), "{e}");
    }

    #[test]
    fn leave_k_out_is_seeded_and_skips_small_users() {
        let d = data(false);
        let s1 = leave_k_out(&d, 2, 7).unwrap();
        let s2 = leave_k_out(&d, 2, 7).unwrap();
        assert_eq!(s1.test.user_items(), s2.test.user_items());
        assert_eq!(
            s1.test.nnz(),
            4,
            "a and c give 2 each, b keeps its only one"
        );
        assert!(leave_k_out(&d, 0, 7).is_err());
    }
}
