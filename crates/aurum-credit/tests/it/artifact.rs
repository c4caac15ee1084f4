use aurum_core::{BinaryTarget, CancelToken, Column, ColumnData, NoProgress, Params, Table, Value};

use aurum_contract::artifact::{
    MAGIC, Manifest, ManifestInput, decode_artifact, encode_artifact_at, read_manifest,
};
use aurum_contract::{BinaryClassifier, FittedModel, ModelError};
use aurum_core::{AURUM_VERSION, sha256_hex};
use aurum_credit::FitContext;

use crate::{ModelKind, family};

fn model() -> Box<dyn BinaryClassifier> {
    let t = Table::new(vec![
        Column {
            name: "x".into(),
            data: ColumnData::Float(vec![Some(1.0), Some(2.0), Some(3.0), Some(4.0)]),
        },
        Column {
            name: "c".into(),
            data: ColumnData::Categorical(
                ["a", "b", "a", "b"]
                    .iter()
                    .map(|s| Some(s.to_string()))
                    .collect(),
            ),
        },
    ])
    .unwrap();
    let y = BinaryTarget {
        column: "y".into(),
        y: vec![0.0, 1.0, 0.0, 1.0],
        positive_label: "bad".into(),
        negative_label: "good".into(),
    };
    let cancel = CancelToken::new();
    let ctx = FitContext {
        progress: &NoProgress,
        cancel: &cancel,
        seed: 1,
    };
    family(ModelKind::Logistic)
        .fit(&t, &y, &Params::new(), &ctx)
        .unwrap()
}

fn info() -> ManifestInput {
    ManifestInput {
        metrics: [("auc".to_string(), 0.75)].into_iter().collect(),
        dataset_sha256: sha256_hex(b"data"),
        target: "y".into(),
        date_formats: Default::default(),
    }
}

fn encode(
    input: ManifestInput,
    model: &dyn BinaryClassifier,
) -> Result<(Manifest, Vec<u8>), ModelError> {
    let model: &dyn FittedModel = model;
    encode_artifact_at(input, model, "2025-01-02T03:04:05Z".parse().unwrap())
}

/// Rewrites the manifest JSON of an artifact with `edit`, keeping the payload.
fn with_manifest(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let len = u64::from_le_bytes(bytes[15..23].try_into().unwrap()) as usize;
    let mut v: serde_json::Value = serde_json::from_slice(&bytes[23..23 + len]).unwrap();
    edit(&mut v);
    let json = serde_json::to_vec(&v).unwrap();
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[23 + len..]);
    out
}

#[test]
fn round_trip() {
    let m = model();
    let (manifest, bytes) = encode(info(), m.as_ref()).unwrap();
    assert!(bytes.starts_with(b"AURUM-ARTIFACT\n"));
    assert_eq!(manifest.format_version, 2);
    assert_eq!(manifest.aurum_version, AURUM_VERSION);
    assert_eq!(manifest.positive_label.as_deref(), Some("bad"));
    let json = serde_json::to_value(&manifest).unwrap();
    assert_eq!(json["created_at"], "2025-01-02T03:04:05Z");
    assert_eq!(json["family"], "logistic");
    let (back, loaded) = decode_artifact(&bytes, &aurum_credit::families()).unwrap();
    assert_eq!(back, manifest);
    assert_eq!(read_manifest(&bytes).unwrap(), manifest);
    let row = [Value::Float(2.5), Value::Str("b".into())];
    assert_eq!(
        loaded.as_binary().unwrap().predict_proba_one(&row).unwrap(),
        m.predict_proba_one(&row).unwrap()
    );
}

#[test]
fn refusals() {
    let (_, bytes) = encode(info(), model().as_ref()).unwrap();
    let code = |b: &[u8]| {
        decode_artifact(b, &aurum_credit::families())
            .unwrap_err()
            .code()
    };

    assert_eq!(code(b"PK\x03\x04"), "invalid_artifact");
    assert_eq!(code(&bytes[..10]), "invalid_artifact");
    assert_eq!(code(&bytes[..20]), "invalid_artifact");
    assert_eq!(code(&bytes[..100]), "invalid_artifact");
    // Truncating the payload changes its hash.
    assert_eq!(code(&bytes[..bytes.len() - 1]), "artifact_corrupt");

    let newer = with_manifest(&bytes, |v| v["format_version"] = 7.into());
    let e = decode_artifact(&newer, &aurum_credit::families()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "artifact format version 7 is newer than this aurum supports (2)"
    );
    // Even when the rest of the manifest is unreadable to us.
    let newer = with_manifest(&bytes, |v| *v = serde_json::json!({"format_version": 9}));
    assert_eq!(code(&newer), "unsupported_format_version");
    let zero = with_manifest(&bytes, |v| v["format_version"] = 0.into());
    assert_eq!(code(&zero), "invalid_artifact");

    let mut tampered = bytes.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 0x01;
    assert_eq!(code(&tampered), "artifact_corrupt");

    let other_threshold = with_manifest(&bytes, |v| v["threshold"] = 0.9.into());
    let e = decode_artifact(&other_threshold, &aurum_credit::families()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid artifact: manifest and payload disagree on the threshold"
    );
    let unknown_kind = with_manifest(&bytes, |v| v["family"] = "xgboost".into());
    assert_eq!(code(&unknown_kind), "invalid_artifact");
}

#[test]
fn format_1_manifests_are_still_read() {
    let (_, bytes) = encode(info(), model().as_ref()).unwrap();
    let v1 = with_manifest(&bytes, |v| {
        v["format_version"] = 1.into();
        let family = v["family"].take();
        v.as_object_mut().unwrap().remove("family");
        v["model_kind"] = family;
    });
    let (manifest, _) = decode_artifact(&v1, &aurum_credit::families()).unwrap();
    assert_eq!(manifest.family, "logistic");
    assert_eq!(manifest.format_version, 1);
}

#[test]
fn an_unregistered_family_is_refused_by_name() {
    let (_, bytes) = encode(info(), model().as_ref()).unwrap();
    let e = decode_artifact(&bytes, &aurum_contract::Families::new()).unwrap_err();
    assert_eq!(e.code(), "unknown_family");
}

#[test]
fn non_finite_metrics_are_not_stored() {
    let mut i = info();
    i.metrics.insert("auc".into(), f64::NAN);
    let e = encode(i, model().as_ref()).unwrap_err();
    assert_eq!(e.code(), "serialization_failed");
}
