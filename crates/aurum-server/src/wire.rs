//! Wire types: the JSON shapes of the REST API.
//!
//! These are deliberately separate from the domain and registry types: a field renamed inside
//! aurum must not silently change the API. Conversions from service types live here.

use std::collections::BTreeMap;

use aurum_service::types::{
    AliasHistoryRecord, AuditRecord, DatasetRecord, JobRecord, KeyRecord, Schema, VersionRecord,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldOut {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

pub fn schema_out(s: &Schema) -> Vec<FieldOut> {
    s.fields
        .iter()
        .map(|f| FieldOut {
            name: f.name.clone(),
            ty: f.ty.as_str().to_string(),
        })
        .collect()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetOut {
    pub name: String,
    /// SHA-256 of the imported bytes: the dataset's identity.
    pub sha256: String,
    pub format: String,
    pub size_bytes: u64,
    pub rows: u64,
    pub columns: u64,
    pub created_at: String,
    pub created_by: String,
    /// Only on import: `false` when the same bytes were already imported under this name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
    pub schema: Vec<FieldOut>,
    /// Per-column profile (type, missing %, distinct count, numeric summary, top values, warnings).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub profile: Option<serde_json::Value>,
    /// Only for a synthesized dataset, on `GET /v1/datasets/{name}`: its lineage (source,
    /// method, parameters, seed) and the synthesis report when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub lineage: Option<serde_json::Value>,
}

impl DatasetOut {
    pub fn from_record(r: &DatasetRecord, with_profile: bool) -> Self {
        let schema: Schema = serde_json::from_str(&r.schema_json).unwrap_or_default();
        DatasetOut {
            name: r.name.clone(),
            sha256: r.sha256.clone(),
            format: r.format.clone(),
            size_bytes: r.size_bytes,
            rows: r.rows,
            columns: r.columns,
            created_at: r.created_at.to_rfc3339(),
            created_by: r.created_by.clone(),
            created: None,
            schema: schema_out(&schema),
            profile: with_profile
                .then(|| serde_json::from_str(&r.profile_json).unwrap_or_default()),
            lineage: None,
        }
    }
}

/// `POST /v1/datasets/{name}/synthesize`: rows of one class generated into a new dataset.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SynthesizeIn {
    /// The target column.
    pub target: String,
    /// The class whose rows are generated, as its cells print (`bad`, `1`, `true`).
    #[schema(value_type = Object)]
    pub class: ParamValue,
    /// Synthetic rows to generate, 1 to 1,000,000.
    pub rows: i64,
    /// `vae` (tabular variational autoencoder) or `smote`.
    pub method: String,
    /// Seed of every random draw (default 42): the same seed gives the same bytes.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The new dataset's name (default `<source>-<method>-<rows>-s<seed>`).
    #[serde(default)]
    pub name: Option<String>,
    /// Only the synthetic rows (default: the source rows, then the synthetic rows).
    #[serde(default)]
    pub synthetic_only: bool,
    /// Also compute the utility and privacy report (fits both generators and three learners).
    #[serde(default)]
    pub report: bool,
    /// VAE training epochs (default 300, with early stopping).
    #[serde(default)]
    pub epochs: Option<usize>,
}

/// A synthesized dataset with its lineage and, when asked for, its report.
#[derive(Debug, Serialize, ToSchema)]
pub struct SynthesizeOut {
    pub dataset: DatasetOut,
    #[schema(value_type = Object)]
    pub lineage: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
}

/// A synthesis job (`POST /v1/datasets/{name}/synthesis-jobs`, `GET /v1/synthesis-jobs/{id}`):
/// the job row (its `dataset` is the source; `model` holds the dataset it creates) and, once
/// it succeeded, the created dataset's name, lineage and report.
#[derive(Debug, Serialize, ToSchema)]
pub struct SynthesisJobOut {
    pub job: JobOut,
    /// The dataset the job creates (or created).
    pub dataset_created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub lineage: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
}

impl From<aurum_service::SynthesisJob> for SynthesisJobOut {
    fn from(j: aurum_service::SynthesisJob) -> Self {
        let (lineage, report) = match j.lineage {
            Some(mut doc) => (
                Some(doc["lineage"].take()),
                Some(doc["report"].take()).filter(|r| !r.is_null()),
            ),
            None => (None, None),
        };
        SynthesisJobOut {
            dataset_created: j.job.model.clone(),
            job: JobOut::from(&j.job),
            lineage,
            report,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetList {
    pub datasets: Vec<DatasetOut>,
}

/// A training parameter value: string, number or boolean.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ParamValue {
    Str(String),
    Num(f64),
    Bool(bool),
}

impl ParamValue {
    pub fn into_string(self) -> String {
        match self {
            ParamValue::Str(s) => s,
            ParamValue::Num(n) => n.to_string(),
            ParamValue::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingJobIn {
    pub dataset: String,
    pub target: String,
    /// Model family, e.g. `logistic`.
    pub kind: String,
    /// Registered model name the new version belongs to.
    pub model: String,
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
    /// Target label treated as the positive (event) class.
    #[serde(default)]
    pub positive_label: Option<String>,
    /// Alias to point at the new version on success, e.g. `champion`.
    #[serde(default)]
    pub alias: Option<String>,
    /// A date column: the held-out split is then time-ordered (latest rows tested).
    #[serde(default)]
    pub date_column: Option<String>,
    /// Free-text columns to use as features (hashed TF-IDF, or the family's own text encoder).
    /// Absent: every text column whose values repeat and whose words recur; `[]`: none.
    #[serde(default)]
    pub text_columns: Option<Vec<String>>,
    /// Hashed TF-IDF buckets per text column (2–256, default 16).
    #[serde(default)]
    pub text_buckets: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobOut {
    pub id: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    pub dataset: String,
    pub target: String,
    pub kind: String,
    pub model: String,
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    pub progress: f64,
    pub stage: String,
    pub error: Option<String>,
    pub version: Option<u32>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub created_by: String,
}

impl From<&JobRecord> for JobOut {
    fn from(j: &JobRecord) -> Self {
        JobOut {
            id: j.id.clone(),
            state: j.state.as_str().to_string(),
            dataset: j.dataset.clone(),
            target: j.target.clone(),
            kind: j.kind.as_str().to_string(),
            model: j.model.clone(),
            params: serde_json::from_str(&j.params_json).unwrap_or_default(),
            progress: j.progress,
            stage: j.stage.clone(),
            error: j.error.clone(),
            version: j.result_version,
            created_at: j.created_at.to_rfc3339(),
            started_at: j.started_at.map(|t| t.to_rfc3339()),
            finished_at: j.finished_at.map(|t| t.to_rfc3339()),
            created_by: j.created_by.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Lineage {
    pub dataset: String,
    pub dataset_sha256: String,
    pub target: String,
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    pub aurum_version: String,
    pub job_id: Option<String>,
    pub artifact_sha256: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionOut {
    pub model: String,
    pub version: u32,
    pub kind: String,
    /// `active` or `archived`; on the single-version endpoint, which checks the artifact,
    /// `failed` when the artifact is missing or fails its SHA-256 check.
    pub status: String,
    /// Why the status is `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub created_at: String,
    pub created_by: String,
    /// Held-out metrics measured when the version was trained.
    #[schema(value_type = Object)]
    pub metrics: serde_json::Value,
    pub lineage: Lineage,
    /// Aliases currently pointing at this version.
    pub aliases: Vec<String>,
    /// Input features the version expects (only on the single-version endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Vec<FieldOut>>,
}

impl VersionOut {
    pub fn from_record(v: &VersionRecord, aliases: &[(String, u32)]) -> Self {
        VersionOut {
            model: v.model.clone(),
            version: v.version,
            kind: v.kind.as_str().to_string(),
            status: if v.is_archived() {
                "archived"
            } else {
                "active"
            }
            .to_string(),
            status_reason: None,
            created_at: v.created_at.to_rfc3339(),
            created_by: v.created_by.clone(),
            metrics: serde_json::from_str(&v.metrics_json).unwrap_or_default(),
            lineage: Lineage {
                dataset: v.dataset_name.clone(),
                dataset_sha256: v.dataset_sha256.clone(),
                target: v.target.clone(),
                params: serde_json::from_str(&v.params_json).unwrap_or_default(),
                aurum_version: v.aurum_version.clone(),
                job_id: v.job_id.clone(),
                artifact_sha256: v.artifact_sha256.clone(),
            },
            aliases: aliases
                .iter()
                .filter(|(_, n)| *n == v.version)
                .map(|(a, _)| a.clone())
                .collect(),
            input_schema: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelOut {
    pub name: String,
    pub created_at: String,
    pub latest_version: Option<u32>,
    /// Alias → version.
    pub aliases: BTreeMap<String, u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<VersionOut>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    pub models: Vec<ModelOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionList {
    pub versions: Vec<VersionOut>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasIn {
    pub version: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AliasOut {
    pub model: String,
    pub alias: String,
    pub version: u32,
    pub previous_version: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AliasMoveOut {
    pub alias: String,
    pub from_version: Option<u32>,
    pub to_version: u32,
    pub moved_by: String,
    pub moved_at: String,
}

impl From<&AliasHistoryRecord> for AliasMoveOut {
    fn from(h: &AliasHistoryRecord) -> Self {
        AliasMoveOut {
            alias: h.alias.clone(),
            from_version: h.from_version,
            to_version: h.to_version,
            moved_by: h.moved_by.clone(),
            moved_at: h.moved_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AliasHistory {
    pub model: String,
    pub history: Vec<AliasMoveOut>,
}

/// A predict request: `records` (one or many) or a single `record`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PredictIn {
    /// Records as JSON objects mapping feature name to value.
    #[schema(value_type = Option<Vec<Object>>)]
    pub records: Option<Vec<serde_json::Value>>,
    /// A single record.
    #[schema(value_type = Option<Object>)]
    pub record: Option<serde_json::Value>,
    /// Return per-feature contributions (log-odds) with each prediction.
    #[serde(default)]
    pub explain: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContributionOut {
    pub feature: String,
    pub contribution: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExplanationOut {
    pub space: String,
    pub base_value: f64,
    pub contributions: Vec<ContributionOut>,
}

/// An adverse-action reason.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReasonOut {
    /// Stable reason code.
    pub code: String,
    /// The input feature behind the reason.
    pub feature: String,
    /// Text for the adverse-action notice.
    pub text: String,
    /// How far the feature moved the applicant toward default: points below the feature's
    /// maximum for scorecards, log-odds against the baseline for other families.
    pub contribution: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PredictionOut {
    /// Probability of the positive class (for credit models: the probability of default, PD).
    pub probability: f64,
    /// Predicted label at the model's threshold.
    pub label: String,
    /// Whether `label` is the positive class.
    pub positive: bool,
    /// Score in points (base score / base odds / points-to-double-odds scaling).
    pub score: Option<f64>,
    /// `approve`, `refer` or `decline` under the version's decision policy.
    pub decision: String,
    /// Up to four adverse-action reasons for refer and decline, most adverse first.
    pub reasons: Vec<ReasonOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<ExplanationOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PredictOut {
    pub model: String,
    pub version: u32,
    pub request_id: String,
    pub threshold: f64,
    pub predictions: Vec<PredictionOut>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyIn {
    pub name: String,
    /// `admin`, `analyst` or `client`.
    pub role: String,
    /// RFC 3339 instant after which the key is refused (`key_expired`); absent = never.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Model names the key may use; a trailing `*` makes a prefix (`credit-*`). Absent or empty
    /// = every model.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Sustained requests per second the key may make (bursts of as many): on each replica, or
    /// in all when the replicas share `registry.limits_url`; absent = unlimited.
    #[serde(default)]
    pub rate_limit_per_s: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyOut {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Empty: every model.
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_s: Option<u32>,
    /// The key itself: returned once, on creation only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl KeyOut {
    pub fn from_record(k: &KeyRecord, key: Option<String>) -> Self {
        KeyOut {
            id: k.id.clone(),
            name: k.name.clone(),
            role: k.role.as_str().to_string(),
            created_at: k.created_at.to_rfc3339(),
            revoked_at: k.revoked_at.map(|t| t.to_rfc3339()),
            expires_at: k.policy.expires_at.map(|t| t.to_rfc3339()),
            scopes: k.policy.scopes.clone(),
            rate_limit_per_s: k.policy.rate_limit_per_s,
            key,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditOut {
    pub seq: u64,
    pub ts: String,
    pub event: String,
    pub actor: String,
    pub request_id: Option<String>,
    pub model: Option<String>,
    pub version: Option<u32>,
    pub input_sha256: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
    /// A prediction's kept inputs when `details.inputs_sealed` holds them encrypted at rest,
    /// opened with the server's keys. Not part of the hashed record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub inputs_unsealed: Option<serde_json::Value>,
}

impl AuditOut {
    /// The record as served, with sealed inputs opened by `platform` when it holds the keys.
    pub fn opened(r: &AuditRecord, platform: &aurum_service::Platform) -> Self {
        let mut out = AuditOut::from(r);
        if r.details.get("inputs_sealed").is_some() {
            match platform.audited_inputs(r) {
                Ok(inputs) => out.inputs_unsealed = inputs,
                Err(e) => {
                    tracing::warn!(seq = r.seq, error = %e, "cannot open an audit record's sealed inputs");
                }
            }
        }
        out
    }
}

impl From<&AuditRecord> for AuditOut {
    fn from(r: &AuditRecord) -> Self {
        AuditOut {
            seq: r.seq,
            ts: r.ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            event: r.event.clone(),
            actor: r.actor.clone(),
            request_id: r.request_id.clone(),
            model: r.model.clone(),
            version: r.version,
            input_sha256: r.input_sha256.clone(),
            details: r.details.clone(),
            prev_hash: r.prev_hash.clone(),
            hash: r.hash.clone(),
            inputs_unsealed: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    pub records: Vec<AuditOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BrokenOut {
    pub seq: u64,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyOut {
    pub ok: bool,
    pub records_checked: u64,
    pub first_broken: Option<BrokenOut>,
    /// The seq the signed anchor covers (absent when there is no authentic anchor).
    pub anchor_seq: Option<u64>,
    /// Truncation, rewrite, or a forged or missing anchor, in words.
    pub anchor_problem: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthOut {
    pub status: String,
}
