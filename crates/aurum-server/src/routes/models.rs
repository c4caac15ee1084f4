//! `/v1/models`: registered models, versions with metrics and lineage, aliases.

use std::collections::BTreeMap;

use aurum_service::types::ModelRecord;
use axum::Json;
use axum::extract::State;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authorized, Path, Query, perm};
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
    _: Authorized<perm::ReadModels>,
) -> ApiResult<Json<ModelList>> {
    let mut models = Vec::new();
    for m in state.platform.list_models().await? {
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
