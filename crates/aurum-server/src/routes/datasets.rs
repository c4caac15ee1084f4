//! `/v1/datasets`: import (raw body or multipart), read with profile, and synthesize rows of
//! one class into a new dataset.

use std::collections::BTreeMap;

use aurum_service::types::ColumnType;
use axum::Json;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authorized, NoQuery, Path, Query, perm};
use crate::middleware::{JsonBody, read_body};
use crate::wire::{DatasetList, DatasetOut, SynthesisJobOut, SynthesizeIn, SynthesizeOut};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// Dataset name (letters, digits, `.`, `_`, `-`). Multipart uploads may send it as a `name` part instead.
    pub name: Option<String>,
    /// Type overrides, `column:type` pairs separated by commas (types: float, integer, boolean,
    /// categorical, date, datetime, text).
    pub types: Option<String>,
    /// Explicit date formats, `column:format` pairs separated by commas, the format in chrono's
    /// strftime syntax (`opened:%d.%m.%Y`). The column is read as a date with that format only;
    /// the format is stored with the dataset and with every model trained on it, so serving
    /// parses the column's string cells the same way. Multipart uploads may send one
    /// `date_format` part per column instead. An unusable format is 400 `invalid_date_format`.
    pub date_format: Option<String>,
}

/// Adds `column:format` pairs (comma-separated) to `out`. A column named twice is an error.
fn parse_date_formats(spec: &str, out: &mut BTreeMap<String, String>) -> ApiResult<()> {
    for pair in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = |message: String| {
            ApiError::invalid("invalid_date_format", Some("date_format"), message)
        };
        let (col, format) = pair
            .split_once(':')
            .map(|(c, f)| (c.trim(), f.trim()))
            .filter(|(c, f)| !c.is_empty() && !f.is_empty())
            .ok_or_else(|| bad(format!("`{pair}` is not `column:format`")))?;
        if out.insert(col.to_string(), format.to_string()).is_some() {
            return Err(bad(format!("column `{col}` has more than one date format")));
        }
    }
    Ok(())
}

fn parse_overrides(spec: Option<&str>) -> ApiResult<BTreeMap<String, ColumnType>> {
    let mut out = BTreeMap::new();
    for pair in spec
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (col, ty) = pair.rsplit_once(':').ok_or_else(|| {
            ApiError::invalid(
                "invalid_field",
                Some("types"),
                format!("`{pair}` is not `column:type`"),
            )
        })?;
        let ty: ColumnType = ty.parse().map_err(|e: aurum_service::types::SchemaError| {
            ApiError::invalid("invalid_field", Some("types"), e.to_string())
        })?;
        out.insert(col.to_string(), ty);
    }
    Ok(out)
}

/// Import a CSV or Parquet dataset.
///
/// The body is the file itself (`text/csv`, `application/octet-stream`, `application/vnd.apache.parquet`)
/// or `multipart/form-data` with a `file` part (and optionally `name`, `types` and `date_format`
/// parts). Date formats (`date_format=opened:%d.%m.%Y`) are stored with the dataset's schema.
/// Importing the same bytes under the same name again returns the existing dataset (200).
#[utoipa::path(post, path = "/v1/datasets", tag = "datasets", params(ImportParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = DatasetOut), (status = 200, body = DatasetOut, description = "already imported"),
              (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
              (status = 413, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn import(
    State(state): State<AppState>,
    caller: Authorized<perm::Datasets>,
    Query(params): Query<ImportParams>,
    req: Request,
) -> ApiResult<(StatusCode, Json<DatasetOut>)> {
    let is_multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let mut name = params.name;
    let mut types = params.types;
    let mut date_formats = BTreeMap::new();
    if let Some(spec) = &params.date_format {
        parse_date_formats(spec, &mut date_formats)?;
    }
    let bytes = if is_multipart {
        let mut mp = Multipart::from_request(req, &state)
            .await
            .map_err(|e| ApiError::invalid("invalid_multipart", None, e.body_text()))?;
        let mut file = None;
        while let Some(field) = mp.next_field().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError(aurum_service::ServiceError::PayloadTooLarge {
                    limit: state.platform.config().server.body_limit_bytes,
                })
            } else {
                ApiError::invalid("invalid_multipart", None, e.body_text())
            }
        })? {
            let part = field.name().unwrap_or("").to_string();
            let data = field
                .bytes()
                .await
                .map_err(|e| ApiError::invalid("invalid_multipart", Some(&part), e.body_text()))?;
            match part.as_str() {
                "file" => file = Some(data.to_vec()),
                "name" => name = Some(String::from_utf8_lossy(&data).trim().to_string()),
                "types" => types = Some(String::from_utf8_lossy(&data).trim().to_string()),
                "date_format" => {
                    parse_date_formats(&String::from_utf8_lossy(&data), &mut date_formats)?;
                }
                other => {
                    return Err(ApiError::invalid(
                        "unknown_field",
                        Some(other),
                        format!(
                            "unexpected multipart part `{other}` (expected file, name, types, \
                             date_format)"
                        ),
                    ));
                }
            }
        }
        file.ok_or_else(|| {
            ApiError::invalid(
                "missing_field",
                Some("file"),
                "multipart body has no `file` part",
            )
        })?
    } else {
        read_body(req, &state).await?.to_vec()
    };
    let name = name.ok_or_else(|| {
        ApiError::invalid(
            "missing_field",
            Some("name"),
            "the dataset needs a name: add `?name=NAME`",
        )
    })?;
    let overrides = parse_overrides(types.as_deref())?;
    let import = state
        .platform
        .import_dataset(&caller.ctx(), &name, bytes, overrides, date_formats)
        .await?;
    let mut out = DatasetOut::from_record(&import.record, true);
    out.created = Some(import.created);
    let status = if import.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(out)))
}

/// List datasets.
#[utoipa::path(get, path = "/v1/datasets", tag = "datasets",
    responses((status = 200, body = DatasetList)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _: Authorized<perm::Datasets>,
    _query: NoQuery,
) -> ApiResult<Json<DatasetList>> {
    let records = state.platform.list_datasets().await?;
    Ok(Json(DatasetList {
        datasets: records
            .iter()
            .map(|r| DatasetOut::from_record(r, false))
            .collect(),
    }))
}

/// A dataset with its schema and column profile.
#[utoipa::path(get, path = "/v1/datasets/{name}", tag = "datasets", params(("name" = String, Path)),
    responses((status = 200, body = DatasetOut), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _: Authorized<perm::Datasets>,
    _query: NoQuery,
    Path(name): Path<String>,
) -> ApiResult<Json<DatasetOut>> {
    let (record, _) = state.platform.get_dataset(&name).await?;
    let mut out = DatasetOut::from_record(&record, true);
    out.lineage = state.platform.dataset_lineage(&name).await?;
    Ok(Json(out))
}

/// Generate rows of one class of a dataset (SMOTE or a tabular VAE) into a new dataset.
///
/// The new dataset holds the source rows then the synthetic rows (only the synthetic rows with
/// `synthetic_only`), is registered like an import, and records its lineage (source, method,
/// parameters, seed), shown by `GET /v1/datasets/{name}`. With `report: true` the answer also
/// carries the utility report (AUC and PR-AUC of one learner trained on real rows, real + SMOTE
/// rows and real + VAE rows, measured on real held-out rows) and the privacy distances. Runs in
/// the request; a VAE with a report takes seconds to minutes. 400 names the field at fault:
/// `target` (`unknown_column`), `class` (`class_absent`, `not_enough_rows`), `rows`
/// (`invalid_rows`), `method` (`unknown_method`), `name` (`invalid_name`).
#[utoipa::path(post, path = "/v1/datasets/{name}/synthesize", tag = "datasets",
    params(("name" = String, Path, description = "the source dataset")), request_body = SynthesizeIn,
    responses((status = 201, body = SynthesizeOut), (status = 200, body = SynthesizeOut, description = "already synthesized (same bytes)"),
              (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn synthesize(
    State(state): State<AppState>,
    caller: Authorized<perm::Datasets>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<SynthesizeIn>,
) -> ApiResult<(StatusCode, Json<SynthesizeOut>)> {
    let req = synthesis_request(body);
    let outcome = state
        .platform
        .synthesize_dataset(&caller.ctx(), &name, req)
        .await?;
    let mut dataset = DatasetOut::from_record(&outcome.import.record, true);
    dataset.created = Some(outcome.import.created);
    let status = if outcome.import.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(SynthesizeOut {
            dataset,
            lineage: serde_json::to_value(&outcome.lineage).unwrap_or_default(),
            report: outcome
                .report
                .as_ref()
                .and_then(|r| serde_json::to_value(r).ok()),
        }),
    ))
}

/// The service's request from the wire body (the seed defaults to 42).
fn synthesis_request(body: SynthesizeIn) -> aurum_service::SynthesisRequest {
    aurum_service::SynthesisRequest {
        name: body.name,
        target: body.target,
        class: body.class.into_string(),
        rows: body.rows,
        method: body.method,
        seed: body.seed.unwrap_or(42),
        synthetic_only: body.synthetic_only,
        report: body.report,
        epochs: body.epochs,
    }
}

/// The same synthesis as `POST /v1/datasets/{name}/synthesize`, as a background job: the
/// request is checked at once (the same 400s, naming the field), then the job is queued under
/// the training concurrency limit and the answer is 202 with the job; poll
/// `GET /v1/synthesis-jobs/{id}` for its stage, progress and, once it succeeded, the new
/// dataset's lineage and report. For a VAE with a report, which takes seconds to minutes.
#[utoipa::path(post, path = "/v1/datasets/{name}/synthesis-jobs", tag = "datasets",
    params(("name" = String, Path, description = "the source dataset")), request_body = SynthesizeIn,
    responses((status = 202, body = SynthesisJobOut), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn submit_synthesis(
    State(state): State<AppState>,
    caller: Authorized<perm::Datasets>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<SynthesizeIn>,
) -> ApiResult<(StatusCode, Json<SynthesisJobOut>)> {
    let job = state
        .platform
        .submit_synthesis_job(&caller.ctx(), &name, synthesis_request(body))
        .await?;
    let job = state.platform.get_synthesis_job(&job.id).await?;
    Ok((StatusCode::ACCEPTED, Json(SynthesisJobOut::from(job))))
}

/// A synthesis job: state, stage and progress; once it succeeded, the new dataset's name
/// (`dataset_created`) with its lineage and report.
#[utoipa::path(get, path = "/v1/synthesis-jobs/{id}", tag = "datasets", params(("id" = String, Path)),
    responses((status = 200, body = SynthesisJobOut), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_synthesis(
    State(state): State<AppState>,
    _: Authorized<perm::Datasets>,
    _query: NoQuery,
    Path(id): Path<String>,
) -> ApiResult<Json<SynthesisJobOut>> {
    Ok(Json(SynthesisJobOut::from(
        state.platform.get_synthesis_job(&id).await?,
    )))
}

/// Cancel a queued or running synthesis job (409 once it finished): it stops at the next
/// training epoch of the VAE or of the report's learners and registers no dataset.
#[utoipa::path(post, path = "/v1/synthesis-jobs/{id}/cancel", tag = "datasets", params(("id" = String, Path)),
    responses((status = 200, body = SynthesisJobOut), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel_synthesis(
    State(state): State<AppState>,
    caller: Authorized<perm::Datasets>,
    Path(id): Path<String>,
) -> ApiResult<Json<SynthesisJobOut>> {
    Ok(Json(SynthesisJobOut::from(
        state
            .platform
            .cancel_synthesis_job(&caller.ctx(), &id)
            .await?,
    )))
}
