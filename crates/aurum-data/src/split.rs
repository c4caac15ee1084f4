//! Train/test splits.
//!
//! Held-out metrics are only comparable between model versions if the split is reproducible, so
//! every split here is a pure function of its inputs: the random ones use a seeded ChaCha8
//! generator (portable across platforms, unlike `StdRng`, whose algorithm may change), and the
//! time-ordered one uses no randomness at all. Both sides are returned as ascending row indices so
//! that `Table::take` keeps the file order within each side.
//!
//! A split that would leave a side (or, when stratified, a class on a side) empty is an error
//! rather than a degenerate result: a model evaluated on an empty or one-class test set produces
//! metrics that look like numbers but mean nothing.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::DataError;

/// Row indices of the two sides of a split, each ascending, disjoint, together covering all rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

fn check_fraction(fraction: f64) -> Result<(), DataError> {
    if fraction > 0.0 && fraction < 1.0 {
        Ok(())
    } else {
        Err(DataError::InvalidFraction { fraction })
    }
}

/// Number of test rows out of `n`: `round(n × fraction)`, which must leave both sides non-empty.
fn test_size(n: usize, fraction: f64) -> Option<usize> {
    let k = (n as f64 * fraction).round() as usize;
    (k > 0 && k < n).then_some(k)
}

fn sorted(mut train: Vec<usize>, mut test: Vec<usize>) -> Split {
    train.sort_unstable();
    test.sort_unstable();
    Split { train, test }
}

/// A split that keeps each class's share of the rows in both sides.
///
/// Classes are the distinct values of `y`, visited in ascending order. Each class's rows are
/// shuffled with one `ChaCha8Rng` seeded from `seed`, and the first `round(n_class × test_fraction)`
/// go to the test side, so each class's test count is within half a row of its exact share.
///
/// # Errors
///
/// [`DataError::InvalidFraction`] unless `0 < test_fraction < 1`;
/// [`DataError::ClassTooSmall`] when a class would be missing from one side;
/// [`DataError::SplitTooSmall`] for an empty `y`.
pub fn stratified_split(y: &[f64], test_fraction: f64, seed: u64) -> Result<Split, DataError> {
    check_fraction(test_fraction)?;
    if y.is_empty() {
        return Err(DataError::SplitTooSmall {
            rows: 0,
            fraction: test_fraction,
        });
    }
    // Keyed by a total order on the bits (`+ 0.0` folds -0.0 into 0.0).
    let mut classes: BTreeMap<OrdF64, Vec<usize>> = BTreeMap::new();
    for (i, &v) in y.iter().enumerate() {
        classes.entry(OrdF64(v + 0.0)).or_default().push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::with_capacity(y.len()), Vec::new());
    for (class, mut rows) in classes {
        let n = rows.len();
        let k = test_size(n, test_fraction).ok_or_else(|| DataError::ClassTooSmall {
            class: class.0.to_string(),
            count: n,
            fraction: test_fraction,
        })?;
        rows.shuffle(&mut rng);
        test.extend_from_slice(&rows[..k]);
        train.extend_from_slice(&rows[k..]);
    }
    Ok(sorted(train, test))
}

/// A uniformly random split of rows `0..n`, `round(n × test_fraction)` of them to the test side.
///
/// # Errors
///
/// [`DataError::InvalidFraction`]; [`DataError::SplitTooSmall`] when a side would be empty.
pub fn random_split(n: usize, test_fraction: f64, seed: u64) -> Result<Split, DataError> {
    check_fraction(test_fraction)?;
    let k = test_size(n, test_fraction).ok_or(DataError::SplitTooSmall {
        rows: n,
        fraction: test_fraction,
    })?;
    let mut rows: Vec<usize> = (0..n).collect();
    rows.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let test = rows.split_off(n - k);
    Ok(sorted(rows, test))
}

/// An out-of-time split: the `round(n × test_fraction)` rows with the latest `order_key` are the
/// test side.
///
/// `order_key` is any monotone encoding of time (e.g. a Unix timestamp). Rows with equal keys are
/// ordered by row index, so ties at the boundary are split by file order.
///
/// # Errors
///
/// [`DataError::InvalidFraction`]; [`DataError::SplitTooSmall`] when a side would be empty.
pub fn time_ordered_split(order_key: &[i64], test_fraction: f64) -> Result<Split, DataError> {
    check_fraction(test_fraction)?;
    let n = order_key.len();
    let k = test_size(n, test_fraction).ok_or(DataError::SplitTooSmall {
        rows: n,
        fraction: test_fraction,
    })?;
    let mut rows: Vec<usize> = (0..n).collect();
    rows.sort_by_key(|&i| (order_key[i], i));
    let test = rows.split_off(n - k);
    Ok(sorted(rows, test))
}

/// `f64` ordered by `total_cmp`, for use as a map key.
#[derive(Clone, Copy, Debug)]
struct OrdF64(f64);

impl PartialEq for OrdF64 {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}
impl Eq for OrdF64 {}
impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_are_checked() {
        for f in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            assert_eq!(
                random_split(10, f, 1).unwrap_err().code(),
                "invalid_fraction"
            );
            assert_eq!(
                stratified_split(&[0.0, 1.0], f, 1).unwrap_err().code(),
                "invalid_fraction"
            );
            assert_eq!(
                time_ordered_split(&[1, 2], f).unwrap_err().code(),
                "invalid_fraction"
            );
        }
    }

    #[test]
    fn random_split_is_deterministic_and_covering() {
        let a = random_split(100, 0.25, 7).unwrap();
        assert_eq!(a, random_split(100, 0.25, 7).unwrap());
        assert_ne!(a, random_split(100, 0.25, 8).unwrap());
        assert_eq!(a.test.len(), 25);
        let mut all: Vec<usize> = a.train.iter().chain(&a.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(
            random_split(1, 0.5, 0).unwrap_err().code(),
            "split_too_small"
        );
    }

    #[test]
    fn time_ordered_takes_the_latest() {
        let keys = [50, 10, 40, 20, 30];
        let s = time_ordered_split(&keys, 0.4).unwrap();
        assert_eq!(s.test, vec![0, 2]);
        assert_eq!(s.train, vec![1, 3, 4]);
    }

    #[test]
    fn tiny_class_is_an_error() {
        let y = [0.0, 0.0, 0.0, 0.0, 1.0];
        let err = stratified_split(&y, 0.2, 1).unwrap_err();
        assert_eq!(
            err,
            DataError::ClassTooSmall {
                class: "1".into(),
                count: 1,
                fraction: 0.2
            }
        );
    }
}
