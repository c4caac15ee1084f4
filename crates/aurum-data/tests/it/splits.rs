//! Properties of the splits: class shares kept within a row, determinism, disjoint and covering.

use aurum_data::{Split, random_split, stratified_split, time_ordered_split};
use proptest::prelude::*;

fn assert_partition(split: &Split, n: usize) {
    assert!(
        split.train.windows(2).all(|w| w[0] < w[1]),
        "train sorted and unique"
    );
    assert!(
        split.test.windows(2).all(|w| w[0] < w[1]),
        "test sorted and unique"
    );
    let mut all: Vec<usize> = split.train.iter().chain(&split.test).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>(), "disjoint and covering");
}

#[test]
fn stratified_on_an_imbalanced_target() {
    // 1000 rows, 7% positive, positives spread through the file.
    let y: Vec<f64> = (0..1000)
        .map(|i| if i % 100 < 7 { 1.0 } else { 0.0 })
        .collect();
    let split = stratified_split(&y, 0.3, 2024).unwrap();
    assert_partition(&split, y.len());
    let pos_test = split.test.iter().filter(|&&i| y[i] == 1.0).count();
    assert_eq!(pos_test, 21); // round(70 × 0.3)
    assert_eq!(split.test.len(), 300);
    assert_eq!(
        split,
        stratified_split(&y, 0.3, 2024).unwrap(),
        "deterministic for a seed"
    );
    assert_ne!(
        split,
        stratified_split(&y, 0.3, 2025).unwrap(),
        "seed matters"
    );
}

proptest! {
    #[test]
    fn stratified_keeps_class_shares(
        y in prop::collection::vec(prop_oneof![3 => Just(0.0), 1 => Just(1.0)], 10..400),
        fraction in 0.05f64..0.95,
        seed in any::<u64>(),
    ) {
        match stratified_split(&y, fraction, seed) {
            Ok(split) => {
                assert_partition(&split, y.len());
                for class in [0.0, 1.0] {
                    let total = y.iter().filter(|&&v| v == class).count() as f64;
                    if total == 0.0 {
                        continue; // a class absent from y has nothing to split
                    }
                    let in_test = split.test.iter().filter(|&&i| y[i] == class).count() as f64;
                    prop_assert!((in_test - total * fraction).abs() <= 1.0, "class {class}: {in_test} of {total}");
                    prop_assert!(in_test > 0.0 && in_test < total);
                }
                prop_assert_eq!(split, stratified_split(&y, fraction, seed).unwrap());
            }
            Err(e) => prop_assert!(["class_too_small"].contains(&e.code()), "{e}"),
        }
    }

    #[test]
    fn random_and_time_splits_partition(n in 2usize..300, fraction in 0.05f64..0.95, seed in any::<u64>()) {
        if let Ok(split) = random_split(n, fraction, seed) {
            assert_partition(&split, n);
            prop_assert_eq!(split.test.len(), (n as f64 * fraction).round() as usize);
        }
        let keys: Vec<i64> = (0..n as i64).map(|i| (i * 7919) % 1009).collect();
        if let Ok(split) = time_ordered_split(&keys, fraction) {
            assert_partition(&split, n);
            let latest_train = split.train.iter().map(|&i| keys[i]).max().unwrap();
            let earliest_test = split.test.iter().map(|&i| keys[i]).min().unwrap();
            prop_assert!(latest_train <= earliest_test);
        }
    }
}
