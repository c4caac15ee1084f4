//! `/v1/models`: registered models, versions with metrics and lineage, aliases.

use std::collections::BTreeMap;

use aurum_service::types::ModelRecord;
use axum::Json;
use axum::extract::State;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authorized, NoQuery, Path, Query, perm};
use crate::middleware::JsonBody;
use crate::wire::{
    AliasHistory, AliasIn, AliasMoveOut, AliasOut, ModelList, ModelOut, VersionList, VersionOut,
    schema_out,
};

async fn model_out(state: &AppState, m: &ModelRecord, with_versions: bool) -> ApiResult<ModelOut> {
    let aliases = state.platform.list_aliases(&m.name).await?;
    let versions = if with_versions {
        let vs = state.platform.list_versions(&m.name).await?;
        Some(
            vs.iter()
                .map(|v| VersionOut::from_record(v, &aliases))
                .collect(),
        )
    } else {
        None
    };
    Ok(ModelOut {
        name: m.name.clone(),
        created_at: m.created_at.to_rfc3339(),
        latest_version: (m.latest_version > 0).then_some(m.latest_version),
        aliases: aliases.into_iter().collect::<BTreeMap<_, _>>(),
        versions,
    })
}

/// Registered models with their latest version and aliases.
#[utoipa::path(get, path = "/v1/models", tag = "models", responses((status = 200, body = ModelList)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authorized<perm::ReadModels>,
    _query: NoQuery,
) -> ApiResult<Json<ModelList>> {
    let mut models = Vec::new();
    // A scoped key sees only the models it may use.
    for m in state.platform.list_models().await? {
        if !caller.principal.policy.covers(&m.name) {
            continue;
        }
        models.push(model_out(&state, &m, false).await?);
    }
    Ok(Json(ModelList { models }))
}

/// A registered model with all its versions.
#[utoipa::path(get, path = "/v1/models/{name}", tag = "models", params(("name" = String, Path)),
    responses((status = 200, body = ModelOut), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _: Authorized<perm::ReadModels>,
    _query: NoQuery,
    Path(name): Path<String>,
) -> ApiResult<Json<ModelOut>> {
    let m = state.platform.get_model(&name).await?;
    Ok(Json(model_out(&state, &m, true).await?))
}

/// All versions of a model.
#[utoipa::path(get, path = "/v1/models/{name}/versions", tag = "models", params(("name" = String, Path)),
    responses((status = 200, body = VersionList), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn versions(
    State(state): State<AppState>,
    _: Authorized<perm::ReadModels>,
    _query: NoQuery,
    Path(name): Path<String>,
) -> ApiResult<Json<VersionList>> {
    let aliases = state.platform.list_aliases(&name).await?;
    let vs = state.platform.list_versions(&name).await?;
    Ok(Json(VersionList {
        versions: vs
            .iter()
            .map(|v| VersionOut::from_record(v, &aliases))
            .collect(),
    }))
}

/// One version: metrics, lineage, aliases and input schema.
#[utoipa::path(get, path = "/v1/models/{name}/versions/{version}", tag = "models",
    params(("name" = String, Path), ("version" = u32, Path)),
    responses((status = 200, body = VersionOut), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn version(
    State(state): State<AppState>,
    _: Authorized<perm::ReadModels>,
    _query: NoQuery,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<VersionOut>> {
    let version = parse_version(&version)?;
    let record = state.platform.get_version(&name, version).await?;
    let aliases = state.platform.list_aliases(&name).await?;
    let mut out = VersionOut::from_record(&record, &aliases);
    match state.platform.version_state(&record).await? {
        aurum_service::VersionState::Archived => {}
        aurum_service::VersionState::Failed(reason) => {
            out.status = "failed".into();
            out.status_reason = Some(reason);
        }
        aurum_service::VersionState::Ready
            if state
                .platform
                .families()
                .get(record.kind.as_str())
                .is_ok_and(|f| f.spec().task != aurum_service::types::Task::Binary) => {}
        aurum_service::VersionState::Ready => {
            let loaded = state
                .platform
                .resolve(&aurum_service::ModelRef::version(&name, version))
                .await?;
            out.input_schema = Some(schema_out(loaded.input_schema()));
        }
    }
    Ok(Json(out))
}

pub fn parse_version(s: &str) -> ApiResult<u32> {
    s.parse::<u32>().ok().filter(|v| *v > 0).ok_or_else(|| {
        ApiError::invalid(
            "invalid_version",
            Some("version"),
            format!("`{s}` is not a version number (1, 2, ...)"),
        )
    })
}

/// Point an alias (e.g. `champion`) at a version. The new version is loaded and verified first;
/// requests in flight finish on the version they started with.
#[utoipa::path(put, path = "/v1/models/{name}/aliases/{alias}", tag = "models",
    params(("name" = String, Path), ("alias" = String, Path)), request_body = AliasIn,
    responses((status = 200, body = AliasOut), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_alias(
    State(state): State<AppState>,
    caller: Authorized<perm::ManageModels>,
    Path((name, alias)): Path<(String, String)>,
    JsonBody(body): JsonBody<AliasIn>,
) -> ApiResult<Json<AliasOut>> {
    let previous = state
        .platform
        .set_alias(&caller.ctx(), &name, &alias, body.version)
        .await?;
    Ok(Json(AliasOut {
        model: name,
        alias,
        version: body.version,
        previous_version: previous,
    }))
}

/// Every alias move of a model, oldest first.
#[utoipa::path(get, path = "/v1/models/{name}/aliases", tag = "models", params(("name" = String, Path)),
    responses((status = 200, body = AliasHistory), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn alias_history(
    State(state): State<AppState>,
    _: Authorized<perm::ReadModels>,
    _query: NoQuery,
    Path(name): Path<String>,
) -> ApiResult<Json<AliasHistory>> {
    let history = state.platform.alias_history(&name).await?;
    Ok(Json(AliasHistory {
        model: name,
        history: history.iter().map(AliasMoveOut::from).collect(),
    }))
}

/// Archive a version (it keeps its record and artifact but cannot take an alias).
#[utoipa::path(post, path = "/v1/models/{name}/versions/{version}/archive", tag = "models",
    params(("name" = String, Path), ("version" = u32, Path)),
    responses((status = 200, body = VersionOut), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn archive(
    State(state): State<AppState>,
    caller: Authorized<perm::ManageModels>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<VersionOut>> {
    let version = parse_version(&version)?;
    state
        .platform
        .archive_version(&caller.ctx(), &name, version)
        .await?;
    let record = state.platform.get_version(&name, version).await?;
    Ok(Json(VersionOut::from_record(&record, &[])))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// `json` (default) or `html` (a standalone page with ROC, KS, score-distribution and
    /// calibration plots).
    pub format: Option<String>,
}

/// The evaluation report measured on the held-out split when the version was trained: AUC,
/// Gini, KS and its cut-off, PR-AUC, threshold metrics, Brier score, calibration by decile,
/// lift and gains, confusion matrix, train/test PSI, the overfitting flag, and the model's own
/// tables (WoE binning, points, importance).
#[utoipa::path(get, path = "/v1/models/{name}/versions/{version}/report", tag = "models",
    params(("name" = String, Path), ("version" = u32, Path), ReportParams),
    responses((status = 200, description = "the report as JSON, or HTML with `format=html`"),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn report(
    State(state): State<AppState>,
    _: Authorized<perm::ReadModels>,
    Path((name, version)): Path<(String, String)>,
    Query(q): Query<ReportParams>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let version = parse_version(&version)?;
    let report = state.platform.version_report(&name, version).await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(report).into_response()),
        "html" => {
            Ok(axum::response::Html(aurum_service::types::report_html(&report)).into_response())
        }
        other => Err(ApiError::invalid(
            "invalid_field",
            Some("format"),
            format!("format `{other}` must be `json` or `html`"),
        )),
    }
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// `lightgbm` (text model), `xgboost` (JSON model) or `onnx` (ONNX graph).
    pub format: String,
    /// Label threshold on the probability (default 0.5).
    pub threshold: Option<f64>,
    /// Alias to point at the new version, e.g. `champion`.
    pub alias: Option<String>,
    /// The format's import parameters as `key=value` pairs separated by `;`, e.g.
    /// `features=age,income;labels=bad,good` for an ONNX model.
    pub params: Option<String>,
}

/// `key=value;key=value` into parameters; an entry without `=` is an error naming it.
fn import_params(
    text: Option<&str>,
    threshold: Option<f64>,
) -> Result<aurum_service::types::Params, ApiError> {
    let mut params = aurum_service::types::Params::new();
    if let Some(t) = threshold {
        params.insert("threshold".into(), t.to_string());
    }
    for entry in text
        .unwrap_or_default()
        .split(';')
        .filter(|e| !e.trim().is_empty())
    {
        let (k, v) = entry.split_once('=').ok_or_else(|| {
            ApiError::invalid(
                "invalid_field",
                Some("params"),
                format!("`{entry}` is not key=value"),
            )
        })?;
        params.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(params)
}

/// Import a model trained elsewhere (the body is the model file) as a new version. Its
/// lineage records the SHA-256 of the imported file.
#[utoipa::path(post, path = "/v1/models/{name}/import", tag = "models",
    params(("name" = String, Path), ImportParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = VersionOut), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn import(
    State(state): State<AppState>,
    caller: Authorized<perm::ManageModels>,
    Path(name): Path<String>,
    Query(q): Query<ImportParams>,
    req: axum::extract::Request,
) -> ApiResult<(axum::http::StatusCode, Json<VersionOut>)> {
    let bytes = crate::middleware::read_body(req, &state).await?;
    let version = state
        .platform
        .import_model_with_params(
            &caller.ctx(),
            &name,
            &q.format,
            bytes.to_vec(),
            import_params(q.params.as_deref(), q.threshold)?,
            q.alias.as_deref(),
        )
        .await?;
    let aliases = state.platform.list_aliases(&name).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(VersionOut::from_record(&version, &aliases)),
    ))
}

/// Population drift of a binary version's live inputs and scores against its training
/// population, per time window (newest first, the open window included): PSI per feature and
/// for the score, binned KS for numerics, missing and unseen-category shares, the window before
/// it, and the features at the alert level. The reference is built from the version's training
/// dataset on first use.
#[utoipa::path(get, path = "/v1/models/{name}/versions/{version}/drift", tag = "models",
    params(("name" = String, Path), ("version" = u32, Path)),
    responses((status = 200, description = "the drift report"),
              (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn drift(
    State(state): State<AppState>,
    _: Authorized<perm::ReadModels>,
    _query: NoQuery,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<aurum_service::DriftReport>> {
    let version = parse_version(&version)?;
    let loaded = state
        .platform
        .resolve(&aurum_service::ModelRef::version(&name, version))
        .await?;
    Ok(Json(state.platform.drift_report(&loaded).await?))
}

/// Realised outcomes of past predictions, named by the prediction's request id.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomesIn {
    pub outcomes: Vec<OutcomeJson>,
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeJson {
    /// The `request_id` of the prediction (its response and its audit record carry it).
    pub request_id: String,
    /// The record's position in that request (default 0).
    #[serde(default)]
    pub record: u32,
    /// The realised class label (`"bad"`), or `true`/`false`/`1`/`0` for the positive class.
    #[schema(value_type = Object)]
    pub label: serde_json::Value,
    /// Attributes of the record known with its outcome, by name (strings, numbers or booleans;
    /// at most 16), for example a protected attribute that is not a feature: the fairness route
    /// without `dataset` groups live decisions by them.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OutcomesOut {
    pub recorded: usize,
}

/// Record realised outcomes of past predictions (all or none). Each names the prediction by
/// its request id (and record position); the label is checked against the version's classes.
#[utoipa::path(post, path = "/v1/models/{name}/outcomes", tag = "models",
    params(("name" = String, Path)), request_body = OutcomesIn,
    responses((status = 200, body = OutcomesOut), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn outcomes(
    State(state): State<AppState>,
    caller: Authorized<perm::Predict>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<OutcomesIn>,
) -> ApiResult<Json<OutcomesOut>> {
    let mut list = Vec::with_capacity(body.outcomes.len());
    for (i, o) in body.outcomes.into_iter().enumerate() {
        let label = match &o.label {
            serde_json::Value::String(s) => aurum_service::OutcomeLabel::Class(s.clone()),
            serde_json::Value::Bool(b) => aurum_service::OutcomeLabel::Positive(*b),
            serde_json::Value::Number(n) if n.as_u64() == Some(1) => {
                aurum_service::OutcomeLabel::Positive(true)
            }
            serde_json::Value::Number(n) if n.as_u64() == Some(0) => {
                aurum_service::OutcomeLabel::Positive(false)
            }
            other => {
                return Err(ApiError::invalid(
                    "invalid_label",
                    Some(&format!("outcomes[{i}].label")),
                    format!("label {other} must be a class label, true/false or 1/0"),
                ));
            }
        };
        let mut attributes = std::collections::BTreeMap::new();
        for (name, value) in o.attributes.unwrap_or_default() {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                other => {
                    return Err(ApiError::invalid(
                        "invalid_field",
                        Some(&format!("outcomes[{i}].attributes.{name}")),
                        format!("attribute values are strings, numbers or booleans, not {other}"),
                    ));
                }
            };
            attributes.insert(name, text);
        }
        list.push(aurum_service::OutcomeIn {
            request_id: o.request_id,
            record: o.record,
            label,
            attributes,
        });
    }
    let recorded = state
        .platform
        .record_outcomes(&caller.ctx(), &name, list)
        .await?;
    Ok(Json(OutcomesOut { recorded }))
}

/// A version measured on its realised outcomes: AUC, Gini, KS, bad rate, Brier score and
/// calibration, overall and by scoring day, against the training AUC (`alert` when it falls
/// below `monitoring.auc_alert_ratio` of it).
#[utoipa::path(get, path = "/v1/models/{name}/versions/{version}/performance", tag = "models",
    params(("name" = String, Path), ("version" = u32, Path)),
    responses((status = 200, description = "the performance report"),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn performance(
    State(state): State<AppState>,
    _: Authorized<perm::ReadModels>,
    _query: NoQuery,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<aurum_service::PerformanceReport>> {
    let version = parse_version(&version)?;
    Ok(Json(state.platform.performance(&name, version).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FairnessParams {
    /// An imported dataset with the model's features, the realised target and the attribute.
    /// Without it, the version's live decisions are measured on their recorded outcomes, grouped
    /// by the attribute given with each outcome.
    pub dataset: Option<String>,
    /// The protected attribute: a column of the dataset, or an attribute given with the
    /// outcomes (it need not be a feature).
    pub attribute: String,
    /// For a numeric attribute, comma-separated increasing cut points (`25` → `< 25`, `>= 25`).
    pub cuts: Option<String>,
    /// The realised outcome column (default: the version's target).
    pub target: Option<String>,
}

/// Fairness of a binary version's decisions on a dataset, by the groups of a protected
/// attribute: approval rate and adverse impact ratio (four-fifths rule), true and false positive
/// rates, AUC and calibration per group, and the spreads between groups. Rows are scored without
/// audit records (an evaluation, not decisions). Without `dataset`, the same figures over the
/// version's live decisions whose outcomes were recorded with the attribute.
#[utoipa::path(get, path = "/v1/models/{name}/versions/{version}/fairness", tag = "models",
    params(("name" = String, Path), ("version" = u32, Path), FairnessParams),
    responses((status = 200, description = "the fairness report"),
              (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn fairness(
    State(state): State<AppState>,
    _: Authorized<perm::ReadModels>,
    Path((name, version)): Path<(String, String)>,
    Query(q): Query<FairnessParams>,
) -> ApiResult<Json<aurum_service::FairnessOut>> {
    let version = parse_version(&version)?;
    let cuts = parse_cuts(q.cuts.as_deref())?;
    let loaded = state
        .platform
        .resolve(&aurum_service::ModelRef::version(&name, version))
        .await?;
    match q.dataset {
        Some(dataset) => Ok(Json(
            state
                .platform
                .fairness(&loaded, &dataset, &q.attribute, &cuts, q.target.as_deref())
                .await?,
        )),
        None => {
            if q.target.is_some() {
                return Err(ApiError::invalid(
                    "invalid_field",
                    Some("target"),
                    "`target` names a dataset column: live fairness uses the recorded outcomes",
                ));
            }
            let (out, _) = state
                .platform
                .live_fairness(&loaded, &q.attribute, &cuts)
                .await?;
            Ok(Json(out))
        }
    }
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DocumentParams {
    /// With `attribute`: assess fairness on this dataset.
    pub dataset: Option<String>,
    /// The protected attribute for the fairness section.
    pub attribute: Option<String>,
    /// Cut points of a numeric attribute, comma-separated.
    pub cuts: Option<String>,
    /// `html` (default) or `pdf`.
    pub format: Option<String>,
}

/// The validation document of a binary version (HTML, or PDF with `format=pdf`): purpose and use, data and lineage,
/// methodology and assumptions, performance and stability, fairness, limitations, monitoring
/// plan and approvals, with figures from its report, monitoring and audit log.
#[utoipa::path(get, path = "/v1/models/{name}/versions/{version}/document", tag = "models",
    params(("name" = String, Path), ("version" = u32, Path), DocumentParams),
    responses((status = 200, description = "the document as a standalone HTML page, or a PDF (A4) with `format=pdf`"),
              (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn document(
    State(state): State<AppState>,
    _: Authorized<perm::ReadModels>,
    Path((name, version)): Path<(String, String)>,
    Query(q): Query<DocumentParams>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let version = parse_version(&version)?;
    let pdf = match q.format.as_deref() {
        None | Some("html") => false,
        Some("pdf") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "invalid_field",
                Some("format"),
                format!("`format` must be `html` or `pdf`, got `{other}`"),
            ));
        }
    };
    if q.attribute.is_some() != q.dataset.is_some() {
        return Err(ApiError::invalid(
            "invalid_field",
            Some(if q.attribute.is_some() {
                "dataset"
            } else {
                "attribute"
            }),
            "give both `dataset` and `attribute` for the fairness section, or neither",
        ));
    }
    let cuts = parse_cuts(q.cuts.as_deref())?;
    let opts = aurum_service::DocumentOptions {
        fairness_dataset: q.dataset,
        attribute: q.attribute,
        cuts,
    };
    if pdf {
        let bytes = state
            .platform
            .validation_document_pdf(&name, version, &opts)
            .await?;
        let disposition = format!("inline; filename=\"{name}-v{version}-validation.pdf\"");
        return Ok((
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/pdf".to_string(),
                ),
                (axum::http::header::CONTENT_DISPOSITION, disposition),
            ],
            bytes,
        )
            .into_response());
    }
    Ok(axum::response::Html(
        state
            .platform
            .validation_document(&name, version, &opts)
            .await?,
    )
    .into_response())
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengerIn {
    /// The alias whose version challenges the champion (default `challenger`).
    pub alias: Option<String>,
    /// `shadow` (default): the challenger scores the champion's requests after the answer, its
    /// answers stored and compared, never returned. `split`: it answers `share` of the requests
    /// addressed to the champion.
    #[schema(value_type = Option<String>, example = "shadow")]
    pub mode: Option<String>,
    /// The share of requests shadowed (shadow) or answered by the challenger (split), in
    /// (0, 1]; default 1 for shadow. Required for split.
    pub share: Option<f64>,
}

/// Set a model's challenger: the version behind an alias shadows the champion's predictions
/// (scored after the answer, stored and compared, never returned) or answers a share of its
/// traffic (split).
#[utoipa::path(put, path = "/v1/models/{name}/challenger", tag = "models",
    params(("name" = String, Path)), request_body = ChallengerIn,
    responses((status = 200, description = "the setting"), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_challenger(
    State(state): State<AppState>,
    caller: Authorized<perm::ManageModels>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<ChallengerIn>,
) -> ApiResult<Json<aurum_service::ChallengerConfig>> {
    let alias = body.alias.unwrap_or_else(|| "challenger".into());
    let mode = match body.mode.as_deref() {
        None | Some("shadow") => aurum_service::ChallengerMode::Shadow,
        Some("split") => aurum_service::ChallengerMode::Split,
        Some(other) => {
            return Err(ApiError::invalid(
                "invalid_field",
                Some("mode"),
                format!("`mode` must be `shadow` or `split`, got `{other}`"),
            ));
        }
    };
    let share = match (mode, body.share) {
        (_, Some(share)) => share,
        (aurum_service::ChallengerMode::Shadow, None) => 1.0,
        (aurum_service::ChallengerMode::Split, None) => {
            return Err(ApiError::invalid(
                "missing_field",
                Some("share"),
                "a split needs `share`: the fraction of requests the challenger answers, in (0, 1]",
            ));
        }
    };
    Ok(Json(
        state
            .platform
            .set_challenger(&caller.ctx(), &name, &alias, mode, share)
            .await?,
    ))
}

/// Stop shadowing a model's predictions.
#[utoipa::path(delete, path = "/v1/models/{name}/challenger", tag = "models",
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn clear_challenger(
    State(state): State<AppState>,
    caller: Authorized<perm::ManageModels>,
    Path(name): Path<String>,
) -> ApiResult<axum::http::StatusCode> {
    state
        .platform
        .clear_challenger(&caller.ctx(), &name)
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The challenger setting and the champion/challenger comparison: score distributions, decision
/// agreement, and both AUCs on the records with outcomes.
#[utoipa::path(get, path = "/v1/models/{name}/challenger", tag = "models",
    params(("name" = String, Path)),
    responses((status = 200, description = "the comparison"), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn challenger(
    State(state): State<AppState>,
    _: Authorized<perm::ReadModels>,
    _query: NoQuery,
    Path(name): Path<String>,
) -> ApiResult<Json<aurum_service::ChallengerReport>> {
    Ok(Json(state.platform.challenger_report(&name).await?))
}

/// `cuts=25,40` of the fairness and document routes: comma-separated numbers.
fn parse_cuts(text: Option<&str>) -> Result<Vec<f64>, ApiError> {
    match text {
        None | Some("") => Ok(Vec::new()),
        Some(text) => text
            .split(',')
            .map(|c| {
                c.trim().parse::<f64>().map_err(|_| {
                    ApiError::invalid(
                        "invalid_field",
                        Some("cuts"),
                        format!("cut `{c}` is not a number"),
                    )
                })
            })
            .collect(),
    }
}
