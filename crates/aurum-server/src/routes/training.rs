//! `/v1/training-jobs`: submit, read, list and cancel.

use aurum_service::TrainRequest;
use aurum_service::types::FamilyName;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authorized, NoQuery, Path, Query, perm};
use crate::middleware::JsonBody;
use crate::wire::{JobList, JobOut, TrainingJobIn};

/// Submit a training job. It is validated at once (dataset, target, parameters) and runs in the
/// background; poll `GET /v1/training-jobs/{id}`.
#[utoipa::path(post, path = "/v1/training-jobs", tag = "training", request_body = TrainingJobIn,
    responses((status = 202, body = JobOut), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn submit(
    State(state): State<AppState>,
    caller: Authorized<perm::Training>,
    JsonBody(body): JsonBody<TrainingJobIn>,
) -> ApiResult<(StatusCode, Json<JobOut>)> {
    caller.require_model(&body.model)?;
    // Which families exist is the service's answer (`unknown_model_kind` there too).
    let kind: FamilyName = body
        .kind
        .parse()
        .map_err(|e| ApiError::invalid("unknown_model_kind", Some("kind"), format!("{e}")))?;
    let req = TrainRequest {
        dataset: body.dataset,
        target: body.target,
        kind,
        model: body.model,
        params: body
            .params
            .into_iter()
            .map(|(k, v)| (k, v.into_string()))
            .collect(),
        positive_label: body.positive_label,
        alias: body.alias,
        date_column: body.date_column,
        text_columns: body.text_columns,
        text_buckets: body.text_buckets,
    };
    let job = state.platform.submit_training(&caller.ctx(), req).await?;
    Ok((StatusCode::ACCEPTED, Json(JobOut::from(&job))))
}

/// A training job's state, progress and outcome.
#[utoipa::path(get, path = "/v1/training-jobs/{id}", tag = "training", params(("id" = String, Path)),
    responses((status = 200, body = JobOut), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _: Authorized<perm::Training>,
    _query: NoQuery,
    Path(id): Path<String>,
) -> ApiResult<Json<JobOut>> {
    Ok(Json(JobOut::from(&state.platform.get_job(&id).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Most recent jobs first; at most this many (1–1000, default 50).
    pub limit: Option<u32>,
}

/// Recent training jobs.
#[utoipa::path(get, path = "/v1/training-jobs", tag = "training", params(ListParams),
    responses((status = 200, body = JobList)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _: Authorized<perm::Training>,
    Query(q): Query<ListParams>,
) -> ApiResult<Json<JobList>> {
    let jobs = state
        .platform
        .list_jobs(crate::extract::list_limit(q.limit, 50, 1000)?)
        .await?;
    Ok(Json(JobList {
        jobs: jobs.iter().map(JobOut::from).collect(),
    }))
}

/// Cancel a queued or running job (409 when it already finished).
#[utoipa::path(post, path = "/v1/training-jobs/{id}/cancel", tag = "training", params(("id" = String, Path)),
    responses((status = 200, body = JobOut), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Authorized<perm::Training>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobOut>> {
    Ok(Json(JobOut::from(
        &state.platform.cancel_job(&caller.ctx(), &id).await?,
    )))
}
