//! The credit data sets as the credit examples read them: CSV loading with the `credit`
//! integration tests' typing rule, and their seeded stratified 70/30 split.

use std::error::Error;
use std::path::Path;

use aurum_core::{BinaryTarget, Column, ColumnData, Table};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Share of each class that goes to the training rows.
pub const TRAIN_FRACTION: f64 = 0.7;

/// The loader of the `credit` integration tests: columns whose every non-missing value parses as
/// a number become Float, the rest Categorical; empty cells and `NA` are missing.
pub fn load_csv(
    path: &Path,
    target: &str,
    positive: &str,
) -> Result<(Table, BinaryTarget), Box<dyn Error>> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let headers: Vec<String> = reader.headers()?.iter().map(String::from).collect();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for record in reader.records() {
        for (col, value) in cells.iter_mut().zip(record?.iter()) {
            col.push(value.to_string());
        }
    }
    let missing = |v: &str| v.is_empty() || v == "NA";
    let mut columns = Vec::new();
    let mut y = Vec::new();
    let mut negative = None;
    for (name, values) in headers.into_iter().zip(cells) {
        if name == target {
            negative = values.iter().find(|v| *v != positive).cloned();
            y = values
                .iter()
                .map(|v| f64::from(u8::from(v == positive)))
                .collect();
            continue;
        }
        let numbers: Option<Vec<Option<f64>>> = values
            .iter()
            .map(|v| {
                if missing(v) {
                    Some(None)
                } else {
                    v.parse().ok().map(Some)
                }
            })
            .collect();
        let data = match numbers {
            Some(x) => ColumnData::Float(x),
            None => ColumnData::Categorical(
                values
                    .into_iter()
                    .map(|v| (!missing(&v)).then_some(v))
                    .collect(),
            ),
        };
        columns.push(Column { name, data });
    }
    let negative = negative.ok_or_else(|| format!("{target}: one class only"))?;
    let t = BinaryTarget {
        column: target.into(),
        y,
        positive_label: positive.into(),
        negative_label: negative,
    };
    Ok((Table::new(columns)?, t))
}

/// Stratified split: each class is shuffled with a seeded ChaCha8 and cut at `TRAIN_FRACTION`
/// on its own (the split of the `credit` integration tests). Returns `(train, test)` indices.
pub fn stratified(y: &[f64], seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in [0.0, 1.0] {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == class).collect();
        idx.shuffle(&mut rng);
        let cut = (idx.len() as f64 * TRAIN_FRACTION).round() as usize;
        train.extend_from_slice(&idx[..cut]);
        test.extend_from_slice(&idx[cut..]);
    }
    (train, test)
}
