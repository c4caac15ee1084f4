//! Imported LightGBM / XGBoost models behind the model contract: predictions equal the
//! library's, survive the artifact round trip, and explain additively.
use crate::{ModelKind, decode_artifact_with};

use aurum_contract::{ManifestInput, encode_artifact};
use aurum_core::Value;
use aurum_credit::imported::import_tree_model;

fn fixture(name: &str) -> (Vec<u8>, serde_json::Value) {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aurum-trees/tests/fixtures/"
    );
    let ext = if name.starts_with("lgb") {
        "txt"
    } else {
        "json"
    };
    let model = std::fs::read(format!("{dir}{name}.{ext}")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{dir}{name}.expected.json")).unwrap())
            .unwrap();
    (model, expected)
}

fn rows(expected: &serde_json::Value) -> Vec<Vec<Value>> {
    expected["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().map_or(Value::Null, Value::Float))
                .collect()
        })
        .collect()
}

#[test]
fn imported_models_match_the_library_after_an_artifact_round_trip() {
    for (name, kind) in [
        ("lgb_binary", ModelKind::Lightgbm),
        ("xgb_binary", ModelKind::Xgboost),
    ] {
        let (bytes, expected) = fixture(name);
        let model = import_tree_model(kind.library(), &bytes, 0.5)
            .unwrap()
            .into_binary()
            .unwrap();
        assert_eq!(
            model.input_schema().len(),
            expected["n_features"].as_u64().unwrap() as usize
        );
        let (manifest, artifact) = encode_artifact(
            ManifestInput {
                metrics: Default::default(),
                dataset_sha256: aurum_core::sha256_hex(&bytes),
                target: String::new(),
                date_formats: Default::default(),
            },
            model.as_ref(),
        )
        .unwrap();
        assert_eq!(manifest.family, kind.name());
        let (_, loaded) = decode_artifact_with(&artifact).unwrap();
        let rows = rows(&expected);
        let preds = loaded.predict(&rows).unwrap();
        for (i, (p, want)) in preds
            .iter()
            .zip(expected["predict"].as_array().unwrap())
            .enumerate()
        {
            let want = want.as_f64().unwrap();
            assert!(
                (p.probability - want).abs() <= 1e-6,
                "{name} row {i}: {} vs {want}",
                p.probability
            );
        }
        let e = loaded.explain(&rows[0]).unwrap();
        let sum = e.base_value + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
        let p = preds[0].probability;
        assert!(
            (sum - (p / (1.0 - p)).ln()).abs() < 1e-5,
            "{name}: additive explanation"
        );
    }
}

#[test]
fn regression_models_and_garbage_are_refused_with_a_clear_error() {
    let (bytes, _) = fixture("lgb_regression");
    let err = import_tree_model(ModelKind::Lightgbm.library(), &bytes, 0.5).unwrap_err();
    assert!(err.to_string().contains("binary"), "{err}");
    let err = import_tree_model(ModelKind::Xgboost.library(), b"{not json", 0.5).unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    assert!(import_tree_model(ModelKind::Lightgbm.library(), b"tree\n", 1.5).is_err());
}

/// The serving path's one-pass `assess` gives exactly `decide` and `explain`, for approvals and
/// declines (which carry reasons), with and without the explanation.
#[test]
fn assess_matches_decide_and_explain() {
    for (name, kind) in [
        ("lgb_binary", ModelKind::Lightgbm),
        ("xgb_binary", ModelKind::Xgboost),
    ] {
        let (bytes, expected) = fixture(name);
        let model = import_tree_model(kind.library(), &bytes, 0.5)
            .unwrap()
            .into_binary()
            .unwrap();
        let mut seen = std::collections::HashSet::new();
        for row in rows(&expected) {
            let a = model.assess(&row, true).unwrap();
            assert_eq!(a.decision, model.decide(&row).unwrap(), "{name}");
            assert_eq!(a.explanation, Some(model.explain(&row).unwrap()), "{name}");
            let quiet = model.assess(&row, false).unwrap();
            assert_eq!(quiet.decision, a.decision, "{name}");
            assert_eq!(quiet.explanation, None);
            seen.insert(a.decision.decision);
        }
        assert_eq!(seen.len(), 2, "{name}: {seen:?}");
    }
}

/// The batch path gives `assess` row by row, for every row, with and without the explanation,
/// and names the failing row of a batch.
#[test]
fn assess_batch_matches_assess_row_by_row() {
    for (name, kind) in [
        ("lgb_binary", ModelKind::Lightgbm),
        ("xgb_binary", ModelKind::Xgboost),
        ("lgb_german", ModelKind::Lightgbm),
    ] {
        let (bytes, expected) = fixture(name);
        let model = import_tree_model(kind.library(), &bytes, 0.5)
            .unwrap()
            .into_binary()
            .unwrap();
        let rows = rows(&expected);
        for explain in [false, true] {
            let batch = model.assess_batch(&rows, explain).unwrap();
            assert_eq!(batch.len(), rows.len());
            for (row, b) in rows.iter().zip(&batch) {
                assert_eq!(*b, model.assess(row, explain).unwrap(), "{name}");
            }
        }
        let mut bad = rows.clone();
        bad[3].pop();
        let err = model.assess_batch(&bad, false).unwrap_err();
        assert!(err.to_string().contains("row 3"), "{name}: {err}");
    }
}
