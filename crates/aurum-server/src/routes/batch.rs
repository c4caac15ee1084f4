//! `/v1/batch-jobs`: score an imported dataset in the background, follow it, cancel it,
//! download the scored file.
//!
//! The permission is `training` (analyst or admin), not `predict`: a batch job reads a stored
//! dataset and copies its `keep` columns into the output, which a client key may not read.

use aurum_service::ModelRef;
use aurum_service::batch::{BatchJob, BatchJobRequest, FileFormat};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authorized, NoQuery, Path, Query, perm};
use crate::middleware::JsonBody;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchJobIn {
    /// Registered model name.
    pub model: String,
    /// Version to score with; by default the `alias` (or `champion`).
    #[serde(default)]
    pub version: Option<u32>,
    /// Alias to score with (default `champion`); not with `version`.
    #[serde(default)]
    pub alias: Option<String>,
    /// An imported dataset holding every feature of the model.
    pub dataset: String,
    /// `csv` (default), `parquet` or `jsonl`.
    #[serde(default)]
    pub output_format: Option<String>,
    /// Add each row's per-feature contributions.
    #[serde(default)]
    pub explain: bool,
    /// Dataset columns copied to the output before the scores (ids).
    #[serde(default)]
    pub keep: Vec<String>,
    /// Also write a `prediction` audit record per 256 rows, as `/v1` predict would.
    #[serde(default)]
    pub audit_rows: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResultOut {
    pub rows_read: u64,
    pub rows_scored: u64,
    pub rows_refused: u64,
    /// The batch input hash recorded in the `batch_prediction` audit record.
    pub input_sha256: String,
    pub output_sha256: String,
    pub output_bytes: u64,
    pub errors_sha256: String,
    pub audit_seq: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchJobOut {
    pub id: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    pub model: String,
    /// The version that scored (or scores) the dataset.
    pub version: Option<u32>,
    pub dataset: String,
    pub output_format: String,
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// Fraction of the dataset's rows read, in `[0, 1]`.
    pub progress: f64,
    pub stage: String,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub created_by: String,
    /// Once succeeded: the row counts and hashes.
    pub result: Option<BatchResultOut>,
    /// Once succeeded: where to download the scored file.
    pub output_url: Option<String>,
}

impl From<&BatchJob> for BatchJobOut {
    fn from(b: &BatchJob) -> Self {
        let j = &b.job;
        let params: serde_json::Value =
            serde_json::from_str(&j.params_json).unwrap_or(serde_json::Value::Null);
        let succeeded = b.result.is_some();
        BatchJobOut {
            id: j.id.clone(),
            state: j.state.as_str().to_string(),
            model: j.model.clone(),
            version: params["version"].as_u64().map(|v| v as u32),
            dataset: j.dataset.clone(),
            output_format: b.output_format.as_str().to_string(),
            params,
            progress: if succeeded { 1.0 } else { j.progress },
            stage: j.stage.clone(),
            error: j.error.clone(),
            created_at: j.created_at.to_rfc3339(),
            started_at: j.started_at.map(|t| t.to_rfc3339()),
            finished_at: j.finished_at.map(|t| t.to_rfc3339()),
            created_by: j.created_by.clone(),
            result: b.result.as_ref().map(|r| BatchResultOut {
                rows_read: r.rows_read,
                rows_scored: r.rows_scored,
                rows_refused: r.rows_refused,
                input_sha256: r.input_sha256.clone(),
                output_sha256: r.output_sha256.clone(),
                output_bytes: r.output_bytes,
                errors_sha256: r.errors_sha256.clone(),
                audit_seq: r.audit_seq,
            }),
            output_url: succeeded.then(|| format!("/v1/batch-jobs/{}/output", j.id)),
        }
    }
}

/// Submit a batch job: score an imported dataset with a model version in the background. The
/// model, the dataset and its columns are checked at once; poll `GET /v1/batch-jobs/{id}`.
#[utoipa::path(post, path = "/v1/batch-jobs", tag = "batch", request_body = BatchJobIn,
    responses((status = 202, body = BatchJobOut), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn submit(
    State(state): State<AppState>,
    caller: Authorized<perm::Training>,
    JsonBody(body): JsonBody<BatchJobIn>,
) -> ApiResult<(StatusCode, Json<BatchJobOut>)> {
    caller.require_model(&body.model)?;
    let model = match (body.version, body.alias) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "invalid_field",
                Some("version"),
                "send either `version` or `alias`, not both",
            ));
        }
        (Some(v), None) => ModelRef::version(&body.model, v),
        (None, Some(a)) => ModelRef::alias(&body.model, &a),
        (None, None) => ModelRef::champion(&body.model),
    };
    let format = body.output_format.as_deref().unwrap_or("csv");
    let output_format = FileFormat::from_name(format).ok_or_else(|| {
        ApiError::invalid(
            "invalid_field",
            Some("output_format"),
            format!("`output_format` must be csv, parquet or jsonl, got {format:?}"),
        )
    })?;
    let req = BatchJobRequest {
        model,
        dataset: body.dataset,
        output_format,
        explain: body.explain,
        keep: body.keep,
        audit_rows: body.audit_rows,
    };
    let job = state.platform.submit_batch_job(&caller.ctx(), req).await?;
    let job = state.platform.get_batch_job(&job.id).await?;
    Ok((StatusCode::ACCEPTED, Json(BatchJobOut::from(&job))))
}

/// A batch job's state, progress and, once succeeded, its row counts and hashes.
#[utoipa::path(get, path = "/v1/batch-jobs/{id}", tag = "batch", params(("id" = String, Path)),
    responses((status = 200, body = BatchJobOut), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _: Authorized<perm::Training>,
    _query: NoQuery,
    Path(id): Path<String>,
) -> ApiResult<Json<BatchJobOut>> {
    Ok(Json(BatchJobOut::from(
        &state.platform.get_batch_job(&id).await?,
    )))
}

/// Cancel a queued or running batch job (409 when it already finished).
#[utoipa::path(post, path = "/v1/batch-jobs/{id}/cancel", tag = "batch", params(("id" = String, Path)),
    responses((status = 200, body = BatchJobOut), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Authorized<perm::Training>,
    Path(id): Path<String>,
) -> ApiResult<Json<BatchJobOut>> {
    Ok(Json(BatchJobOut::from(
        &state.platform.cancel_batch_job(&caller.ctx(), &id).await?,
    )))
}

/// Download the scored file of a succeeded batch job (409 before it has succeeded), streamed.
#[utoipa::path(get, path = "/v1/batch-jobs/{id}/output", tag = "batch", params(("id" = String, Path)),
    responses((status = 200, description = "The scored file in the job's output format",
               content((String = "text/csv"), (Vec<u8> = "application/vnd.apache.parquet"),
                       (String = "application/x-ndjson"))),
              (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn output(
    State(state): State<AppState>,
    _: Authorized<perm::Training>,
    _query: NoQuery,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (path, format) = state.platform.batch_job_output(&id).await?;
    let content_type = match format {
        FileFormat::Csv => "text/csv",
        FileFormat::Parquet => "application/vnd.apache.parquet",
        FileFormat::JsonLines => "application/x-ndjson",
    };
    stream_file(&path, content_type, &format!("{id}.{}", format.as_str())).await
}

/// A batch job's error file (CSV: `line`, `column`, `code`, `message` of every refused row), once
/// the job has succeeded (409 before), streamed.
#[utoipa::path(get, path = "/v1/batch-jobs/{id}/errors", tag = "batch", params(("id" = String, Path)),
    responses((status = 200, description = "The refused rows as CSV", content((String = "text/csv"))),
              (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn errors(
    State(state): State<AppState>,
    _: Authorized<perm::Training>,
    _query: NoQuery,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let path = state.platform.batch_job_errors(&id).await?;
    stream_file(&path, "text/csv", &format!("{id}.errors.csv")).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// How many of the most recent batch jobs (1–1000, default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchJobList {
    pub batch_jobs: Vec<BatchJobOut>,
}

/// The most recent batch jobs, newest first.
#[utoipa::path(get, path = "/v1/batch-jobs", tag = "batch", params(ListParams),
    responses((status = 200, body = BatchJobList)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _: Authorized<perm::Training>,
    Query(q): Query<ListParams>,
) -> ApiResult<Json<BatchJobList>> {
    let jobs = state
        .platform
        .list_batch_jobs(crate::extract::list_limit(q.limit, 100, 1000)?)
        .await?;
    Ok(Json(BatchJobList {
        batch_jobs: jobs.iter().map(BatchJobOut::from).collect(),
    }))
}

/// Streams the file at `path` as an attachment named `filename`.
async fn stream_file(
    path: &std::path::Path,
    content_type: &'static str,
    filename: &str,
) -> ApiResult<Response> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await.map_err(|e| {
        ApiError(aurum_service::ServiceError::Internal(format!(
            "cannot open {filename}: {e}"
        )))
    })?;
    let stream = futures_util::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let disposition = format!("attachment; filename=\"{filename}\"");
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    if let Ok(v) = header::HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
