//! Artifact decoding is a parser of untrusted bytes: it must answer every input with a value or
//! an error, never a panic, and a model it does accept must be safe to serve.
use crate::{ModelKind, decode_artifact_with, family};

use std::sync::OnceLock;

use aurum_contract::ManifestInput;
use aurum_contract::artifact::{MAGIC, encode_artifact_at};
use aurum_core::{BinaryTarget, CancelToken, Column, ColumnData, NoProgress, Params, Table, Value};
use aurum_credit::{BinaryClassifier, FitContext};
use proptest::prelude::*;

/// The table and target of the fixtures: a numeric column with missing values, a categorical
/// one with a rare level and missing values, and a boolean one.
fn fixture_data() -> (Table, BinaryTarget) {
    let n = 40;
    let x = (0..n)
        .map(|i| {
            if i % 7 == 0 {
                None
            } else {
                Some(i as f64 * 0.5)
            }
        })
        .collect();
    let c = (0..n)
        .map(|i| match i % 5 {
            0 => None,
            1 if i > 30 => Some("rare".to_string()),
            k => Some(format!("level{k}")),
        })
        .collect();
    let b = (0..n).map(|i| Some(i % 3 == 0)).collect();
    let table = Table::new(vec![
        Column {
            name: "x".into(),
            data: ColumnData::Float(x),
        },
        Column {
            name: "c".into(),
            data: ColumnData::Categorical(c),
        },
        Column {
            name: "b".into(),
            data: ColumnData::Boolean(b),
        },
    ])
    .unwrap();
    let target = BinaryTarget {
        column: "y".into(),
        y: (0..n)
            .map(|i| f64::from(u8::from(i % 4 == 0 || i > 34)))
            .collect(),
        positive_label: "bad".into(),
        negative_label: "good".into(),
    };
    (table, target)
}

/// Payloads of the credit families on the fixture data: a scorecard and a small GBDT.
fn credit_payloads() -> &'static [(ModelKind, Vec<u8>)] {
    static PAYLOADS: OnceLock<Vec<(ModelKind, Vec<u8>)>> = OnceLock::new();
    PAYLOADS.get_or_init(|| {
        let (table, target) = fixture_data();
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed: 0,
        };
        let p = |pairs: &[(&str, &str)]| -> Params {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        [
            (
                ModelKind::Scorecard,
                p(&[("iv_min", "0"), ("min_bin_share", "0.1")]),
            ),
            (
                ModelKind::Gbdt,
                p(&[
                    ("n_estimators", "4"),
                    ("max_depth", "2"),
                    ("min_leaf_weight", "0.5"),
                ]),
            ),
        ]
        .into_iter()
        .map(|(kind, params)| {
            let model = family(kind).fit(&table, &target, &params, &ctx).unwrap();
            (kind, model.payload().unwrap())
        })
        .collect()
    })
}

/// A small model with every kind of encoded column (numeric with indicator, categorical with
/// `__other__` and `__missing__`, boolean) and its artifact.
fn fixture() -> &'static (Vec<u8>, Vec<u8>) {
    static FIXTURE: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let (table, target) = fixture_data();
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed: 0,
        };
        let params: Params = [("min_frequency".to_string(), "2".to_string())].into();
        let model = family(ModelKind::Logistic)
            .fit(&table, &target, &params, &ctx)
            .unwrap();
        let info = ManifestInput {
            metrics: Default::default(),
            dataset_sha256: "0".repeat(64),
            target: "y".into(),
            date_formats: Default::default(),
        };
        let created = "2025-01-01T00:00:00Z".parse().unwrap();
        let (_, bytes) = encode_artifact_at(info, model.as_ref(), created).unwrap();
        (bytes, model.payload().unwrap())
    })
}

/// Serving a model that loaded must not panic either.
fn exercise(model: &dyn BinaryClassifier) {
    let row = vec![
        Value::Float(3.0),
        Value::Str("level2".into()),
        Value::Boolean(true),
    ];
    if row.len() == model.input_schema().len() {
        let _ = model.predict(std::slice::from_ref(&row));
        let _ = model.explain(&row);
    }
    let nulls = vec![Value::Null; model.input_schema().len()];
    let _ = model.predict_proba_one(&nulls);
    let _ = model.explain(&nulls);
    let _ = model.decide(&nulls);
    let _ = model.score_points(&nulls);
    let _ = model.details();
    let _ = model.summary();
}

const JSONISH: &[u8] = b"0123456789-.eE+,:[]{}\" ntfalsu";

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(decode_artifact_with(&bytes).is_err());
        let mut with_magic = MAGIC.to_vec();
        with_magic.extend_from_slice(&bytes);
        prop_assert!(decode_artifact_with(&with_magic).is_err());
    }

    #[test]
    fn mutated_artifacts_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let (bytes, _) = fixture();
        let mut b = bytes.clone();
        for (at, value) in edits {
            let i = at.index(b.len());
            b[i] = value;
        }
        if truncate {
            b.truncate(cut.index(b.len()));
        }
        if let Ok((_, model)) = decode_artifact_with(&b) {
            exercise(model.as_ref());
        }
    }

    /// JSON-preserving edits reach deep into the payload validator (digits, signs, brackets).
    #[test]
    fn mutated_payloads_never_panic(
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..4),
    ) {
        let (_, payload) = fixture();
        let mut p = payload.clone();
        for (at, with) in edits {
            let i = at.index(p.len());
            p[i] = JSONISH[with.index(JSONISH.len())];
        }
        if let Ok(model) = family(ModelKind::Logistic).load_payload(&p) {
            exercise(model.as_ref());
        }
    }

    /// The same for the scorecard and GBDT payloads (binning tables, trees).
    #[test]
    fn mutated_credit_payloads_never_panic(
        which in any::<bool>(),
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..4),
    ) {
        let (kind, payload) = &credit_payloads()[usize::from(which)];
        let mut p = payload.clone();
        for (at, with) in edits {
            let i = at.index(p.len());
            p[i] = JSONISH[with.index(JSONISH.len())];
        }
        if let Ok(model) = family(*kind).load_payload(&p) {
            exercise(model.as_ref());
        }
    }
}

#[test]
fn credit_fixtures_round_trip() {
    for (kind, payload) in credit_payloads() {
        let model = family(*kind).load_payload(payload).unwrap();
        assert_eq!(&model.payload().unwrap(), payload);
        exercise(model.as_ref());
    }
}

#[test]
fn fixture_round_trips() {
    let (bytes, payload) = fixture();
    let (_, model) = decode_artifact_with(bytes).unwrap();
    assert_eq!(&model.payload().unwrap(), payload);
    exercise(model.as_ref());
}
