//! Predictions and contributions against the libraries' own outputs on the same rows
//! (scripts/tree-fixtures/make_fixtures.py).

use aurum_trees::{Library, Objective, TreeModel};
use serde_json::Value;

use crate::read_fixture;

struct Expected {
    n_features: usize,
    feature_names: Vec<String>,
    rows: Vec<Vec<f64>>,
    predict: Vec<f64>,
    raw: Vec<f64>,
    contrib: Vec<Vec<f64>>,
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN)) // null = NaN (missing)
        .collect()
}

fn expected(name: &str) -> Expected {
    let v: Value = serde_json::from_str(&read_fixture(&format!("{name}.expected.json"))).unwrap();
    Expected {
        n_features: v["n_features"].as_u64().unwrap() as usize,
        feature_names: v["feature_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect(),
        rows: v["rows"].as_array().unwrap().iter().map(floats).collect(),
        predict: floats(&v["predict"]),
        raw: floats(&v["raw"]),
        contrib: v["contrib"]
            .as_array()
            .unwrap()
            .iter()
            .map(floats)
            .collect(),
    }
}

fn load(name: &str) -> TreeModel {
    if name.starts_with("lgb") {
        TreeModel::from_lightgbm_text(&read_fixture(&format!("{name}.txt"))).unwrap()
    } else {
        TreeModel::from_xgboost_json(read_fixture(&format!("{name}.json")).as_bytes()).unwrap()
    }
}

#[derive(Debug, Default)]
struct Diffs {
    predict: f64,
    raw: f64,
    contrib: f64,
    /// max over rows of |contribution − library| / max(1, Σ|library contributions|): f32 error
    /// grows with the magnitudes summed, not with the (possibly cancelling) margin
    contrib_scaled: f64,
    /// |Σ contributions − predict_raw| / max(1, Σ|library contributions|)
    additivity: f64,
    /// rows whose raw margin equals the library's bit for bit
    raw_exact: usize,
    /// rows whose prediction equals the library's bit for bit
    predict_exact: usize,
    rows: usize,
}

fn compare(name: &str) -> (TreeModel, Diffs) {
    let model = load(name);
    let exp = expected(name);
    assert_eq!(model.n_features(), exp.n_features, "{name}");
    assert_eq!(model.feature_names(), &exp.feature_names[..], "{name}");
    let mut d = Diffs {
        rows: exp.rows.len(),
        ..Diffs::default()
    };
    for (i, row) in exp.rows.iter().enumerate() {
        let raw = model.predict_raw(row).unwrap();
        let p = model.predict(row).unwrap();
        d.raw = d.raw.max((raw - exp.raw[i]).abs());
        d.predict = d.predict.max((p - exp.predict[i]).abs());
        d.raw_exact += usize::from(raw.to_bits() == exp.raw[i].to_bits());
        d.predict_exact += usize::from(p.to_bits() == exp.predict[i].to_bits());
        let phi = model.contributions(row).unwrap();
        assert_eq!(phi.len(), exp.n_features + 1);
        let scale = exp.contrib[i].iter().map(|c| c.abs()).sum::<f64>().max(1.0);
        for (a, b) in phi.iter().zip(&exp.contrib[i]) {
            d.contrib = d.contrib.max((a - b).abs());
            d.contrib_scaled = d.contrib_scaled.max((a - b).abs() / scale);
        }
        d.additivity = d
            .additivity
            .max((phi.iter().sum::<f64>() - raw).abs() / scale);
    }
    // The batch path gives the same numbers as the row path.
    let flat: Vec<f64> = exp.rows.iter().flatten().copied().collect();
    let mut out = vec![0.0; exp.rows.len()];
    model
        .predict_batch(&flat, exp.n_features, &mut out)
        .unwrap();
    for (i, row) in exp.rows.iter().enumerate() {
        assert_eq!(
            out[i].to_bits(),
            model.predict(row).unwrap().to_bits(),
            "{name} row {i}"
        );
    }
    // Every split of a batch into groups of eight, blocks of 64 and the rows left over (one
    // row alone is all left over) gives the same bits.
    for n in [1, 2, 7, 8, 9, 63, 64, 65, 71] {
        let n = n.min(exp.rows.len());
        let mut part = vec![0.0; n];
        model
            .predict_batch(&flat[..n * exp.n_features], exp.n_features, &mut part)
            .unwrap();
        for (i, p) in part.iter().enumerate() {
            assert_eq!(
                p.to_bits(),
                out[i].to_bits(),
                "{name}: batch of {n}, row {i}"
            );
        }
    }
    eprintln!("{name}: {d:?}");
    (model, d)
}

/// LightGBM: everything bit for bit, contributions included (same algorithm, same f64 order).
fn assert_lightgbm(name: &str) -> TreeModel {
    let (model, d) = compare(name);
    assert_eq!(model.library(), Library::LightGbm);
    assert_eq!(d.raw_exact, d.rows, "{name}: {d:?}");
    assert_eq!(d.predict_exact, d.rows, "{name}: {d:?}");
    assert!(d.contrib <= 1e-9, "{name}: {d:?}");
    assert!(d.additivity <= 1e-9, "{name}: {d:?}");
    model
}

/// XGBoost: margins and probabilities bit for bit (f32 sums and sigmoid reproduced); XGBoost
/// computes contributions in f32 and ours are exact f64, so they agree to 1e-6 absolute where
/// the contributions are O(1) (binary) and to f32 precision of the summed magnitudes in general;
/// Σ contributions meets the f32-summed margin to the same precision.
fn assert_xgboost(name: &str) -> TreeModel {
    let (model, d) = compare(name);
    assert_eq!(model.library(), Library::XgBoost);
    assert_eq!(d.raw_exact, d.rows, "{name}: {d:?}");
    assert_eq!(d.predict_exact, d.rows, "{name}: {d:?}");
    assert!(d.contrib_scaled <= 1e-6, "{name}: {d:?}");
    if model.objective() == Objective::Binary {
        assert!(d.contrib <= 1e-6, "{name}: {d:?}");
    }
    assert!(d.additivity <= 1e-6, "{name}: {d:?}");
    model
}

#[test]
fn lightgbm_binary_matches_library() {
    let model = assert_lightgbm("lgb_binary");
    assert_eq!(model.objective(), Objective::Binary);
    assert_eq!(model.n_trees(), 200);
}

#[test]
fn lightgbm_categorical_matches_library() {
    assert_lightgbm("lgb_german");
}

#[test]
fn lightgbm_regression_zero_as_missing_matches_library() {
    let model = assert_lightgbm("lgb_regression");
    assert_eq!(model.objective(), Objective::Regression);
}

#[test]
fn lightgbm_single_leaf_tree_matches_library() {
    let model = assert_lightgbm("lgb_constant");
    let row = [1.0, 2.0, 3.0];
    let phi = model.contributions(&row).unwrap();
    assert_eq!(&phi[..3], &[0.0, 0.0, 0.0]);
    assert_eq!(phi[3], model.predict_raw(&row).unwrap());
}

#[test]
fn xgboost_binary_matches_library() {
    let model = assert_xgboost("xgb_binary");
    assert_eq!(model.objective(), Objective::Binary);
    assert_eq!(model.n_trees(), 200);
}

#[test]
fn xgboost_categorical_matches_library() {
    assert_xgboost("xgb_german");
}

#[test]
fn xgboost_regression_matches_library() {
    let model = assert_xgboost("xgb_regression");
    assert_eq!(model.objective(), Objective::Regression);
}

#[test]
fn xgboost_1_7_model_matches_library() {
    // Pre-2.0 JSON: base_score "3E-1" (a probability), converted to a margin with logit.
    assert_xgboost("xgb17_binary");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    /// Σ contributions = predict_raw on arbitrary rows (NaNs, zeros, out-of-range categories).
    #[test]
    fn contributions_add_up_to_the_margin(seed in proptest::prelude::any::<u64>()) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for name in ["lgb_german", "lgb_regression", "xgb_german", "xgb_binary"] {
            let model = load(name);
            let row: Vec<f64> = (0..model.n_features())
                .map(|_| match rng.random_range(0..6) {
                    0 => f64::NAN,
                    1 => 0.0,
                    2 => f64::from(rng.random_range(-2..12)),
                    _ => rng.random_range(-5.0..5.0) * 10f64.powi(rng.random_range(0..4)),
                })
                .collect();
            let raw = model.predict_raw(&row).unwrap();
            let phi = model.contributions(&row).unwrap();
            let sum: f64 = phi.iter().sum();
            // XGBoost sums its leaves in f32, so the error scales with the magnitudes summed.
            let scale = phi.iter().map(|p| p.abs()).sum::<f64>().max(1.0);
            let tol = if name.starts_with("lgb") { 1e-9 } else { 1e-6 };
            proptest::prop_assert!(
                (sum - raw).abs() <= tol * scale,
                "{name}: {sum} vs {raw}"
            );
        }
    }
}
