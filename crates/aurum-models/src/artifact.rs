//! The versioned artifact: one self-describing byte blob per trained model.
//!
//! Why one blob: an artifact is copied between stores, downloaded, attached to tickets and
//! audited long after training. Keeping the manifest (what the model is, what it was trained on,
//! how well it did) together with the payload (the family's own serialisation) means neither can
//! be lost or swapped without the other, and the SHA-256 in the manifest pins the payload.
//!
//! Layout, format version 1:
//!
//! ```text
//! AURUM-ARTIFACT\n                 15 bytes of magic
//! <u64 little-endian>              length of the manifest JSON in bytes
//! <manifest JSON>                  a `Manifest`, UTF-8
//! <payload>                        the rest: `FittedModel::payload()` bytes
//! ```
//!
//! Decoding refuses, with a specific error and never a panic: wrong magic or truncated data
//! ([`ModelError::InvalidArtifact`]); a `format_version` newer than [`FORMAT_VERSION`]
//! ([`ModelError::UnsupportedFormatVersion`], read before the rest of the manifest so that a newer
//! layout still gets this clear message); a payload whose SHA-256 differs from the manifest's
//! ([`ModelError::ArtifactCorrupt`]); and a payload the family cannot load or that disagrees with
//! its manifest ([`ModelError::InvalidArtifact`]). A future format version comes with a reader for
//! the old one here (or a clear refusal), never a silent reinterpretation.

use std::collections::BTreeMap;

use aurum_core::{AURUM_VERSION, ColumnType, Metrics, ModelKind, Schema, Task, sha256_hex};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{FittedModel, ModelError, family};

/// The first bytes of every artifact.
pub const MAGIC: &[u8] = b"AURUM-ARTIFACT\n";
/// The artifact format version this crate writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

const LEN_BYTES: usize = 8;

/// What an artifact says about its model. Stored as JSON inside the artifact; the registry may
/// copy it into its own rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    pub model_kind: ModelKind,
    pub task: Task,
    /// The raw feature columns prediction rows are aligned to.
    pub input_schema: Schema,
    /// Canonical typed parameters ([`crate::ModelFamily::validate_params`]).
    pub params: serde_json::Value,
    /// Held-out evaluation figures (every value finite).
    pub metrics: Metrics,
    /// SHA-256 of the training dataset as ingested.
    pub dataset_sha256: String,
    /// Name of the target column.
    pub target: String,
    pub positive_label: String,
    pub negative_label: String,
    pub threshold: f64,
    /// The aurum version that wrote the artifact.
    pub aurum_version: String,
    /// When the model was trained (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
    /// SHA-256 of the payload bytes (lowercase hex).
    pub payload_sha256: String,
}

/// The manifest fields the model cannot tell about itself; [`encode_artifact`] fills in the rest
/// (kind, task, schema, params, labels, threshold, versions, time, payload hash).
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestInput {
    /// Held-out evaluation figures; every value must be finite.
    pub metrics: Metrics,
    pub dataset_sha256: String,
    /// Name of the target column.
    pub target: String,
    /// The explicit date formats of the training dataset's columns (column → chrono format).
    /// Those of the model's date features are written into the manifest's input schema, so a
    /// served string cell is parsed with the layout the training file used.
    pub date_formats: BTreeMap<String, String>,
}

/// `schema` with the explicit format of each date or datetime field that has one.
fn with_date_formats(schema: &Schema, formats: &BTreeMap<String, String>) -> Schema {
    let fields = schema
        .fields
        .iter()
        .map(|f| {
            let mut f = f.clone();
            if matches!(f.ty, ColumnType::Date | ColumnType::DateTime)
                && let Some(format) = formats.get(&f.name)
            {
                f.format = Some(format.clone());
            }
            f
        })
        .collect();
    Schema { fields }
}

/// Whether two schemas have the same columns and types, in order (formats aside: they live only
/// in the manifest's copy).
fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.fields.len() == b.fields.len()
        && a.fields
            .iter()
            .zip(&b.fields)
            .all(|(x, y)| x.name == y.name && x.ty == y.ty)
}

/// Serialises `model` with its manifest into one artifact blob, stamped with the current time.
pub fn encode_artifact(
    input: ManifestInput,
    model: &dyn FittedModel,
) -> Result<(Manifest, Vec<u8>), ModelError> {
    encode_artifact_at(input, model, Utc::now())
}

/// [`encode_artifact`] with an explicit creation time (for reproducible artifacts and tests).
pub fn encode_artifact_at(
    input: ManifestInput,
    model: &dyn FittedModel,
    created_at: DateTime<Utc>,
) -> Result<(Manifest, Vec<u8>), ModelError> {
    if let Some((k, v)) = input.metrics.iter().find(|(_, v)| !v.is_finite()) {
        return Err(ModelError::Serialization {
            reason: format!("metric `{k}` is {v}; only finite metrics can be stored"),
        });
    }
    let payload = model.payload()?;
    let (positive, negative) = model.labels();
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        model_kind: model.kind(),
        task: model.kind().task(),
        input_schema: with_date_formats(model.input_schema(), &input.date_formats),
        params: model.params(),
        metrics: input.metrics,
        dataset_sha256: input.dataset_sha256,
        target: input.target,
        positive_label: positive.to_string(),
        negative_label: negative.to_string(),
        threshold: model.threshold(),
        aurum_version: AURUM_VERSION.to_string(),
        created_at,
        payload_sha256: sha256_hex(&payload),
    };
    let json = serde_json::to_vec(&manifest).map_err(|e| ModelError::Serialization {
        reason: e.to_string(),
    })?;
    let mut out = Vec::with_capacity(MAGIC.len() + LEN_BYTES + json.len() + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&payload);
    Ok((manifest, out))
}

/// Splits an artifact into its manifest and payload bytes, checking magic, length and version but
/// not the payload hash.
fn split(bytes: &[u8]) -> Result<(Manifest, &[u8]), ModelError> {
    let rest = bytes.strip_prefix(MAGIC).ok_or_else(|| {
        ModelError::invalid_artifact("not an aurum artifact (missing AURUM-ARTIFACT header)")
    })?;
    let (len, rest) = rest
        .split_first_chunk::<LEN_BYTES>()
        .ok_or_else(|| ModelError::invalid_artifact("truncated before the manifest length"))?;
    let len = u64::from_le_bytes(*len);
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= rest.len())
        .ok_or_else(|| {
            ModelError::invalid_artifact(format!(
                "truncated: the manifest is {len} bytes but only {} remain",
                rest.len()
            ))
        })?;
    let (json, payload) = rest.split_at(len);
    let value: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| ModelError::invalid_artifact(format!("manifest is not JSON: {e}")))?;
    match value
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
    {
        Some(v) if v == u64::from(FORMAT_VERSION) => {}
        Some(v) if v > u64::from(FORMAT_VERSION) => {
            return Err(ModelError::UnsupportedFormatVersion {
                found: v,
                supported: FORMAT_VERSION,
            });
        }
        Some(v) => {
            return Err(ModelError::invalid_artifact(format!(
                "unknown format version {v}"
            )));
        }
        None => {
            return Err(ModelError::invalid_artifact(
                "manifest has no format_version",
            ));
        }
    }
    let manifest: Manifest = serde_json::from_value(value)
        .map_err(|e| ModelError::invalid_artifact(format!("manifest: {e}")))?;
    Ok((manifest, payload))
}

/// Reads only the manifest (for listings); the payload is neither hashed nor loaded.
pub fn read_manifest(bytes: &[u8]) -> Result<Manifest, ModelError> {
    split(bytes).map(|(m, _)| m)
}

/// Verifies and loads an artifact written by [`encode_artifact`].
pub fn decode_artifact(bytes: &[u8]) -> Result<(Manifest, Box<dyn FittedModel>), ModelError> {
    let (manifest, payload) = split(bytes)?;
    let actual = sha256_hex(payload);
    if actual != manifest.payload_sha256 {
        return Err(ModelError::ArtifactCorrupt {
            expected: manifest.payload_sha256,
            actual,
        });
    }
    let model = family(manifest.model_kind).load_payload(payload)?;
    let disagree = |what: &str| {
        Err(ModelError::invalid_artifact(format!(
            "manifest and payload disagree on the {what}"
        )))
    };
    if manifest.task != manifest.model_kind.task() || model.kind() != manifest.model_kind {
        return disagree("model kind");
    }
    if !same_columns(model.input_schema(), &manifest.input_schema) {
        return disagree("input schema");
    }
    if model.threshold() != manifest.threshold {
        return disagree("threshold");
    }
    if model.labels()
        != (
            manifest.positive_label.as_str(),
            manifest.negative_label.as_str(),
        )
    {
        return disagree("labels");
    }
    if model.params() != manifest.params {
        return disagree("parameters");
    }
    Ok((manifest, model))
}

#[cfg(test)]
mod tests {
    use aurum_core::{
        BinaryTarget, CancelToken, Column, ColumnData, NoProgress, Params, Table, Value,
    };

    use super::*;
    use crate::FitContext;

    fn model() -> Box<dyn FittedModel> {
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
        model: &dyn FittedModel,
    ) -> Result<(Manifest, Vec<u8>), ModelError> {
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
        assert_eq!(manifest.format_version, 1);
        assert_eq!(manifest.aurum_version, AURUM_VERSION);
        assert_eq!(manifest.positive_label, "bad");
        let json = serde_json::to_value(&manifest).unwrap();
        assert_eq!(json["created_at"], "2025-01-02T03:04:05Z");
        assert_eq!(json["model_kind"], "logistic");
        let (back, loaded) = decode_artifact(&bytes).unwrap();
        assert_eq!(back, manifest);
        assert_eq!(read_manifest(&bytes).unwrap(), manifest);
        let row = [Value::Float(2.5), Value::Str("b".into())];
        assert_eq!(
            loaded.predict_proba_one(&row).unwrap(),
            m.predict_proba_one(&row).unwrap()
        );
    }

    #[test]
    fn refusals() {
        let (_, bytes) = encode(info(), model().as_ref()).unwrap();
        let code = |b: &[u8]| decode_artifact(b).unwrap_err().code();

        assert_eq!(code(b"PK\x03\x04"), "invalid_artifact");
        assert_eq!(code(&bytes[..10]), "invalid_artifact");
        assert_eq!(code(&bytes[..20]), "invalid_artifact");
        assert_eq!(code(&bytes[..100]), "invalid_artifact");
        // Truncating the payload changes its hash.
        assert_eq!(code(&bytes[..bytes.len() - 1]), "artifact_corrupt");

        let newer = with_manifest(&bytes, |v| v["format_version"] = 7.into());
        let e = decode_artifact(&newer).unwrap_err();
        assert_eq!(
            e.to_string(),
            "artifact format version 7 is newer than this aurum supports (1)"
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
        let e = decode_artifact(&other_threshold).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid artifact: manifest and payload disagree on the threshold"
        );
        let unknown_kind = with_manifest(&bytes, |v| v["model_kind"] = "xgboost".into());
        assert_eq!(code(&unknown_kind), "invalid_artifact");
    }

    #[test]
    fn non_finite_metrics_are_not_stored() {
        let mut i = info();
        i.metrics.insert("auc".into(), f64::NAN);
        let e = encode(i, model().as_ref()).unwrap_err();
        assert_eq!(e.code(), "serialization_failed");
    }
}
