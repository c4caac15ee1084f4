//! End to end on the German credit data (UCI Statlog, 1000 applicants, 30% `bad`): fit a
//! logistic regression on a stratified 70/30 split, check held-out ranking power, and check that
//! the artifact round trip, tamper detection and the unseen-category rule hold on real data.
use crate::{ModelKind, decode_artifact_with, family};

use std::sync::OnceLock;

use aurum_contract::{ManifestInput, encode_artifact};
use aurum_core::{
    BinaryTarget, CancelToken, Column, ColumnData, NoProgress, Params, Table, Value, sha256_hex,
};
use aurum_credit::metrics::evaluate_binary;
use aurum_credit::{BinaryClassifier, FitContext, ModelError};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

pub(crate) const CSV_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/demo/german_credit.csv"
);
const TARGET: &str = "creditability";

pub(crate) struct Split {
    pub(crate) train: Table,
    pub(crate) train_y: BinaryTarget,
    pub(crate) test: Table,
    pub(crate) test_y: BinaryTarget,
}

/// Columns whose every value parses as a number become Float, the rest Categorical.
fn load() -> (Table, BinaryTarget) {
    let mut reader = csv::Reader::from_path(CSV_PATH).expect("open german_credit.csv");
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for record in reader.records() {
        let record = record.unwrap();
        for (col, value) in cells.iter_mut().zip(record.iter()) {
            col.push(value.to_string());
        }
    }
    let mut columns = Vec::new();
    let mut y = Vec::new();
    for (name, values) in headers.into_iter().zip(cells) {
        if name == TARGET {
            y = values
                .iter()
                .map(|v| if v == "bad" { 1.0 } else { 0.0 })
                .collect();
            continue;
        }
        let numbers: Option<Vec<Option<f64>>> = values
            .iter()
            .map(|v| v.trim().parse::<f64>().ok().map(Some))
            .collect();
        let data = match numbers {
            Some(x) => ColumnData::Float(x),
            None => ColumnData::Categorical(values.into_iter().map(Some).collect()),
        };
        columns.push(Column { name, data });
    }
    let target = BinaryTarget {
        column: TARGET.into(),
        y,
        positive_label: "bad".into(),
        negative_label: "good".into(),
    };
    (Table::new(columns).unwrap(), target)
}

/// Stratified 70/30: each class is shuffled with a seeded ChaCha8 and split 70/30 on its own.
pub(crate) fn split() -> &'static Split {
    static SPLIT: OnceLock<Split> = OnceLock::new();
    SPLIT.get_or_init(|| {
        let (table, target) = load();
        let mut rng = ChaCha8Rng::seed_from_u64(20240601);
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for class in [0.0, 1.0] {
            let mut idx: Vec<usize> = (0..target.len())
                .filter(|&i| target.y[i] == class)
                .collect();
            idx.shuffle(&mut rng);
            let cut = (idx.len() as f64 * 0.7).round() as usize;
            train.extend_from_slice(&idx[..cut]);
            test.extend_from_slice(&idx[cut..]);
        }
        Split {
            train: table.take(&train),
            train_y: target.take(&train),
            test: table.take(&test),
            test_y: target.take(&test),
        }
    })
}

fn fit_with(params: &Params) -> Box<dyn BinaryClassifier> {
    let s = split();
    let cancel = CancelToken::new();
    let ctx = FitContext {
        progress: &NoProgress,
        cancel: &cancel,
        seed: 7,
    };
    family(ModelKind::Logistic)
        .fit(&s.train, &s.train_y, params, &ctx)
        .unwrap()
}

fn model() -> &'static dyn BinaryClassifier {
    static MODEL: OnceLock<Box<dyn BinaryClassifier>> = OnceLock::new();
    MODEL.get_or_init(|| fit_with(&Params::new())).as_ref()
}

fn test_rows() -> Vec<Vec<Value>> {
    let t = &split().test;
    (0..t.n_rows()).map(|i| t.row(i)).collect()
}

#[test]
fn split_is_stratified() {
    let s = split();
    assert_eq!(s.train.n_rows(), 700);
    assert_eq!(s.test.n_rows(), 300);
    assert_eq!(s.train_y.y.iter().sum::<f64>(), 210.0);
    assert_eq!(s.test_y.y.iter().sum::<f64>(), 90.0);
}

#[test]
fn held_out_auc_beats_070() {
    let s = split();
    let m = model();
    let p = m.predict_proba_table(&s.test).unwrap();
    let metrics = evaluate_binary(&s.test_y.y, &p, m.threshold());
    let auc = metrics["auc"];
    assert!(auc > 0.70, "held-out AUC {auc}");
    assert!(metrics["log_loss"] < 0.6, "{metrics:?}");
    // Seven numeric columns, thirteen categorical ones; nothing dropped.
    assert_eq!(m.input_schema().len(), 20);
    assert_eq!(m.summary()["converged"], true);
    assert_eq!(m.summary()["dropped_columns"], serde_json::json!([]));

    let l1 = fit_with(
        &[("penalty", "l1"), ("lambda", "0.01")]
            .map(|(k, v)| (k.into(), v.into()))
            .into(),
    );
    let p1 = l1.predict_proba_table(&s.test).unwrap();
    let auc1 = evaluate_binary(&s.test_y.y, &p1, 0.5)["auc"];
    assert!(auc1 > 0.70, "L1 held-out AUC {auc1}");
    assert!(l1.summary()["nonzero_coefficients"].as_u64().unwrap() < 61);
}

#[test]
fn row_and_table_paths_agree() {
    let m = model();
    let p_table = m.predict_proba_table(&split().test).unwrap();
    let preds = m.predict(&test_rows()).unwrap();
    for (a, b) in p_table.iter().zip(&preds) {
        assert_eq!(*a, b.probability);
    }
}

#[test]
fn explanations_add_up_on_real_rows() {
    let m = model();
    for row in test_rows().iter().take(50) {
        let e = m.explain(row).unwrap();
        assert_eq!(e.contributions.len(), 20);
        let p = m.predict_proba_one(row).unwrap();
        let total = e.base_value + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
        assert!(
            (total - (p / (1.0 - p)).ln()).abs() < 1e-9,
            "{total} vs {p}"
        );
    }
}

fn artifact() -> (aurum_contract::Manifest, Vec<u8>) {
    let s = split();
    let m = model();
    let p = m.predict_proba_table(&s.test).unwrap();
    let info = ManifestInput {
        metrics: evaluate_binary(&s.test_y.y, &p, m.threshold()),
        dataset_sha256: sha256_hex(&std::fs::read(CSV_PATH).unwrap()),
        target: TARGET.into(),
        date_formats: Default::default(),
    };
    encode_artifact(info, m).unwrap()
}

#[test]
fn artifact_round_trip_predicts_identically() {
    let (manifest, bytes) = artifact();
    let (back, loaded) = decode_artifact_with(&bytes).unwrap();
    assert_eq!(back, manifest);
    assert_eq!(loaded.input_schema(), model().input_schema());
    let rows = test_rows();
    assert_eq!(
        loaded.predict(&rows).unwrap(),
        model().predict(&rows).unwrap()
    );
    assert_eq!(
        loaded.explain(&rows[0]).unwrap(),
        model().explain(&rows[0]).unwrap()
    );
}

#[test]
fn tampered_payload_is_refused() {
    let (_, bytes) = artifact();
    let mut tampered = bytes.clone();
    let i = tampered.len() - 100;
    tampered[i] = tampered[i].wrapping_add(1);
    let err = decode_artifact_with(&tampered).unwrap_err();
    assert!(matches!(err, ModelError::ArtifactCorrupt { .. }), "{err}");
    assert!(!err.is_user_error());
}

#[test]
fn unseen_category_and_unexpected_missing_do_not_fail() {
    let m = model();
    let schema = m.input_schema();
    let purpose = schema.index_of("purpose").unwrap();
    let housing = schema.index_of("housing").unwrap();
    let age = schema.index_of("age_in_years").unwrap();
    let mut row = test_rows()[0].clone();
    row[purpose] = Value::Str("time machine".into());
    row[housing] = Value::Null;
    row[age] = Value::Null;
    let p = m.predict(std::slice::from_ref(&row)).unwrap()[0].probability;
    assert!(p > 0.0 && p < 1.0);
    let e = m.explain(&row).unwrap();
    let total = e.base_value + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
    assert!((total - (p / (1.0 - p)).ln()).abs() < 1e-9);

    // A wrong type, though, is an error naming the feature.
    row[age] = Value::Str("forty".into());
    let err = m.predict(&[row]).unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    assert!(err.to_string().contains("`age_in_years` (row 0)"), "{err}");
}
