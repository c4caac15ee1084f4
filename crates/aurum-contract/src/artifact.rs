//! The versioned artifact: one self-describing byte blob per trained model.
//!
//! Why one blob: an artifact is copied between stores, downloaded, attached to tickets and
//! audited long after training. Keeping the manifest (what the model is, what it was trained on,
//! how well it did) together with the payload (the family's own serialisation) means neither can
//! be lost or swapped without the other, and the SHA-256 in the manifest pins the payload.
//!
//! Layout, format version 2 (version 1, written before the contract was opened to other tasks,
//! is still read: its `model_kind` is the family and its labels and threshold the outputs):
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

use aurum_core::{AURUM_VERSION, ColumnType, FamilyName, Metrics, Schema, Task, sha256_hex};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::text::{TextModel, TextStep};
use crate::{Families, FittedModel, ModelError, OutputSpec};

/// The first bytes of every artifact.
pub const MAGIC: &[u8] = b"AURUM-ARTIFACT\n";
/// The artifact format version this crate writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest artifact format version this crate reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

const LEN_BYTES: usize = 8;

/// What an artifact says about its model. Stored as JSON inside the artifact; the registry may
/// copy it into its own rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    /// The family that fitted (or imported) the model; `model_kind` in format version 1.
    #[serde(alias = "model_kind")]
    pub family: FamilyName,
    pub task: Task,
    /// The raw feature columns prediction rows are aligned to.
    pub input_schema: Schema,
    /// Canonical typed parameters ([`crate::ModelFamily::validate_params`]).
    pub params: serde_json::Value,
    /// Held-out evaluation figures (every value finite).
    pub metrics: Metrics,
    /// SHA-256 of the training dataset as ingested.
    pub dataset_sha256: String,
    /// Name of the target column (empty for unsupervised tasks).
    pub target: String,
    /// Binary models: the label of class 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_label: Option<String>,
    /// Binary models: the label of class 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_label: Option<String>,
    /// Binary models: the probability at or above which the positive label is predicted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Multiclass models: the class labels in output order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// The aurum version that wrote the artifact.
    pub aurum_version: String,
    /// When the model was trained (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
    /// SHA-256 of the payload bytes (lowercase hex).
    pub payload_sha256: String,
    /// The text step in front of the family's model ([`crate::text`]); `input_schema` is then
    /// the raw schema callers send, text columns included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_features: Option<TextStep>,
}

/// The manifest fields the model cannot tell about itself; [`encode_artifact`] fills in the rest
/// (family, task, schema, params, outputs, versions, time, payload hash).
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
    let family = FamilyName::new(model.family()).map_err(|e| ModelError::Serialization {
        reason: e.to_string(),
    })?;
    let (positive_label, negative_label, threshold, classes) = outputs_of(model);
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        family,
        task: model.task(),
        input_schema: with_date_formats(model.input_schema(), &input.date_formats),
        params: model.params(),
        metrics: input.metrics,
        dataset_sha256: input.dataset_sha256,
        target: input.target,
        positive_label,
        negative_label,
        threshold,
        classes,
        aurum_version: AURUM_VERSION.to_string(),
        created_at,
        payload_sha256: sha256_hex(&payload),
        text_features: model.text_step().cloned(),
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
        Some(v) if (u64::from(OLDEST_FORMAT_VERSION)..=u64::from(FORMAT_VERSION)).contains(&v) => {}
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

/// Verifies and loads an artifact written by [`encode_artifact`], with the family of `families`
/// its manifest names.
pub fn decode_artifact(
    bytes: &[u8],
    families: &Families,
) -> Result<(Manifest, Box<dyn FittedModel>), ModelError> {
    let (manifest, payload) = split(bytes)?;
    let actual = sha256_hex(payload);
    if actual != manifest.payload_sha256 {
        return Err(ModelError::ArtifactCorrupt {
            expected: manifest.payload_sha256,
            actual,
        });
    }
    let family = families.get(manifest.family.as_str())?;
    let model = family.load_payload(payload)?;
    let model: Box<dyn FittedModel> = match &manifest.text_features {
        None => model,
        Some(step) => Box::new(TextModel::from_parts(
            step.clone(),
            manifest.input_schema.clone(),
            model,
        )?),
    };
    let disagree = |what: &str| {
        Err(ModelError::invalid_artifact(format!(
            "manifest and payload disagree on the {what}"
        )))
    };
    if manifest.task != family.spec().task
        || model.task() != manifest.task
        || manifest.family != model.family()
    {
        return disagree("model family");
    }
    if !same_columns(model.input_schema(), &manifest.input_schema) {
        return disagree("input schema");
    }
    let (positive_label, negative_label, threshold, classes) = outputs_of(model.as_ref());
    if threshold != manifest.threshold {
        return disagree("threshold");
    }
    if (positive_label, negative_label, classes)
        != (
            manifest.positive_label.clone(),
            manifest.negative_label.clone(),
            manifest.classes.clone(),
        )
    {
        return disagree("labels");
    }
    if model.params() != manifest.params {
        return disagree("parameters");
    }
    Ok((manifest, model))
}

/// The manifest's output fields of `model`: binary labels and threshold, or classes.
type OutputFields = (Option<String>, Option<String>, Option<f64>, Vec<String>);

fn outputs_of(model: &dyn FittedModel) -> OutputFields {
    match model.output_spec() {
        OutputSpec::Binary {
            positive_label,
            negative_label,
            threshold,
        } => (
            Some(positive_label),
            Some(negative_label),
            Some(threshold),
            Vec::new(),
        ),
        OutputSpec::Classes(classes) => (None, None, None, classes),
        OutputSpec::Value | OutputSpec::Anomaly | OutputSpec::Forecast => {
            (None, None, None, Vec::new())
        }
    }
}
