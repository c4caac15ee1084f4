//! `POST /v1/models/{name}[/versions/{v} | /aliases/{alias}]/predict`.
//!
//! Records arrive as JSON objects keyed by feature name and are converted against the model's
//! input schema here, at the edge, so every problem names its field: `records[2].age`.

use std::time::Instant;

use aurum_service::types::{CellError, ColumnType, Field, Value, parse_field_cell};
use aurum_service::{LoadedModel, ModelRef, PredictOptions, UnknownFields};
use axum::Json;
use axum::extract::{Request, State};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authorized, Path, perm};
use crate::middleware::{from_json_value, parse_json_value, read_body};
use crate::routes::models::parse_version;
use crate::wire::{
    ContributionOut, ExplanationOut, PredictIn, PredictOut, PredictionOut, ReasonOut,
};

/// Converts one JSON value to a cell of `field` (its type, and its date format if it has one).
fn cell(field: &Field, v: &serde_json::Value, path: &str, masked: bool) -> ApiResult<Value> {
    use serde_json::Value as J;
    let ty = field.ty;
    // A masked (personal) field's value is never echoed.
    let got = || {
        if masked {
            "a value (not shown: a masked field)".to_string()
        } else {
            describe(v)
        }
    };
    let wrong = |expected: &str| {
        ApiError::invalid(
            "invalid_type",
            Some(path),
            format!("`{path}` must be {expected}, got {}", got()),
        )
    };
    Ok(match (ty, v) {
        (_, J::Null) => Value::Null,
        (ColumnType::Float, J::Number(n)) => {
            Value::Float(n.as_f64().ok_or_else(|| wrong("a number"))?)
        }
        (ColumnType::Integer, J::Number(n)) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => {
                let f = n.as_f64().ok_or_else(|| wrong("an integer"))?;
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    Value::Integer(f as i64)
                } else {
                    return Err(wrong("an integer"));
                }
            }
        },
        // Strings go through the dataset cell parser, so a request cell means what the same
        // text meant in the training file: "NA" is missing, "$1,200.00" is 1200, "28-Feb-97" a
        // date.
        (_, J::String(s)) => match parse_field_cell(s, field) {
            Ok(v) => v,
            Err(CellError::NonFinite) => {
                return Err(ApiError::invalid(
                    "non_finite_number",
                    Some(path),
                    format!("`{path}` must be a finite number, got {}", got()),
                ));
            }
            Err(CellError::Invalid { .. }) => match &field.format {
                Some(format) => return Err(wrong(&format!("a date in the format `{format}`"))),
                None => return Err(wrong(expected(ty))),
            },
        },
        (ColumnType::Boolean, J::Bool(b)) => Value::Boolean(*b),
        (ColumnType::Categorical | ColumnType::Text, J::Number(n)) => Value::Str(n.to_string()),
        (ColumnType::Categorical | ColumnType::Text, J::Bool(b)) => Value::Str(b.to_string()),
        (ColumnType::Float, _) => return Err(wrong("a number")),
        (ColumnType::Integer, _) => return Err(wrong("an integer")),
        (ColumnType::Boolean, _) => return Err(wrong("a boolean")),
        (ColumnType::Categorical | ColumnType::Text, _) => return Err(wrong("a string")),
        (ColumnType::Date, _) => return Err(wrong("a date string")),
        (ColumnType::DateTime, _) => return Err(wrong("a date-time string")),
    })
}

/// What a feature of type `ty` takes, for error messages.
fn expected(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Float => "a number",
        ColumnType::Integer => "an integer",
        ColumnType::Boolean => "a boolean",
        ColumnType::Categorical | ColumnType::Text => "a string",
        ColumnType::Date => "a date (2024-02-28, 28-Feb-24, 28-Feb-2024 or 02/28/2024)",
        ColumnType::DateTime => "an RFC 3339 date-time",
    }
}

fn describe(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "null".into(),
        serde_json::Value::Bool(b) => format!("boolean {b}"),
        serde_json::Value::Number(n) => format!("number {n}"),
        serde_json::Value::String(s) if s.len() <= 40 => format!("string {s:?}"),
        serde_json::Value::String(_) => "a string".into(),
        serde_json::Value::Array(_) => "an array".into(),
        serde_json::Value::Object(_) => "an object".into(),
    }
}

/// Converts request records to rows aligned with the model's input schema.
pub fn records_to_rows(
    model: &LoadedModel,
    records: &[serde_json::Value],
    prefix: &str,
    single: bool,
    unknown: UnknownFields,
    masked: &[String],
) -> ApiResult<Vec<Vec<Value>>> {
    // A forecaster or a recommender is refused before its records are read: its own
    // endpoint, not a missing column, is what the caller needs to hear about.
    model.check_scores_rows()?;
    let schema = model.input_schema();
    let mut rows = Vec::with_capacity(records.len());
    for (i, rec) in records.iter().enumerate() {
        let at = if single {
            prefix.to_string()
        } else {
            format!("{prefix}[{i}]")
        };
        if let (UnknownFields::Reject, Some(obj)) = (unknown, rec.as_object())
            && let Some(extra) = obj
                .keys()
                .find(|k| !model.feature_index.contains_key(k.as_str()))
        {
            let path = format!("{at}.{extra}");
            return Err(ApiError::invalid(
                "unknown_field",
                Some(&path),
                format!(
                    "`{path}` is not a feature of {} v{} (the server rejects unknown fields)",
                    model.name, model.version
                ),
            ));
        }
        rows.push(record_to_row(&schema.fields, rec, &at, masked)?);
    }
    Ok(rows)
}

/// Converts one request record, a JSON object of feature values, to a row in the order of
/// `fields`: every field must be present (`null` for an unknown value) and each value is checked
/// against its field's type, strings through the dataset cell parser. `at` names the record in
/// errors (`records[2]`); a value of a `masked` field is never echoed. Keys that are not fields
/// are not looked at ([`records_to_rows`] refuses them first when the server is so configured).
/// The record is untrusted: every way it can be wrong is a 400, never a panic.
pub fn record_to_row(
    fields: &[Field],
    rec: &serde_json::Value,
    at: &str,
    masked: &[String],
) -> ApiResult<Vec<Value>> {
    let obj = rec.as_object().ok_or_else(|| {
        ApiError::invalid(
            "invalid_type",
            Some(at),
            format!(
                "`{at}` must be an object of feature values, got {}",
                describe(rec)
            ),
        )
    })?;
    let mut row = Vec::with_capacity(fields.len());
    for f in fields {
        let path = format!("{at}.{}", f.name);
        let v = obj.get(&f.name).ok_or_else(|| {
            ApiError::invalid(
                "missing_feature",
                Some(&path),
                format!("`{path}` is missing (send null for an unknown value)"),
            )
        })?;
        row.push(cell(f, v, &path, masked.contains(&f.name))?);
    }
    Ok(row)
}

/// The top-level fields of a predict body ([`PredictIn`]).
const PREDICT_FIELDS: [&str; 3] = ["records", "record", "explain"];

async fn predict_with(
    state: AppState,
    caller: Caller,
    target: ModelRef,
    req: Request,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let started = Instant::now();
    let bytes = read_body(req, &state).await?;
    let body = parse_json_value(&bytes)?;
    let unknown = state.platform.config().server.unknown_fields;
    if let (UnknownFields::Reject, Some(obj)) = (unknown, body.as_object())
        && let Some(extra) = obj.keys().find(|k| !PREDICT_FIELDS.contains(&k.as_str()))
    {
        return Err(ApiError::invalid(
            "unknown_field",
            Some(extra),
            format!(
                "`{extra}` is not a predict field (expected {}; the server rejects unknown fields)",
                PREDICT_FIELDS.join(", ")
            ),
        ));
    }
    let body: PredictIn = from_json_value(body)?;
    let (records, prefix, single) = match (body.records, body.record) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "invalid_field",
                Some("records"),
                "send either `records` or `record`, not both",
            ));
        }
        (Some(rs), None) => (rs, "records", false),
        (None, Some(r)) => (vec![r], "record", true),
        (None, None) => {
            return Err(ApiError::invalid(
                "missing_field",
                Some("records"),
                "the body needs `records` (an array of objects) or `record`",
            ));
        }
    };
    if records.is_empty() {
        return Err(ApiError::invalid(
            "empty_batch",
            Some("records"),
            "`records` is empty: send at least one record",
        ));
    }
    let max = state.platform.config().server.max_batch_records;
    if records.len() > max {
        return Err(ApiError::invalid(
            "batch_too_large",
            Some("records"),
            format!(
                "{} records is more than the limit of {max} per request",
                records.len()
            ),
        ));
    }
    let model = state
        .platform
        .resolve_serving(&caller.ctx(), &target)
        .await?;
    match model.task() {
        // A forecaster takes no rows: `binary()` says where it is served before any is read.
        aurum_service::types::Task::Binary | aurum_service::types::Task::Forecast => {
            model.binary()?;
        }
        task => {
            // Regression, multiclass, anomaly: the model's outputs, audited the same way.
            let rows = records_to_rows(
                &model,
                &records,
                prefix,
                single,
                unknown,
                &state.platform.config().audit.masked_fields,
            )?;
            drop(records);
            let out = state
                .platform
                .predict_outputs(&caller.ctx(), model, rows)
                .await?;
            return Ok(Json(serde_json::json!({
                "model": out.model,
                "version": out.version,
                "request_id": caller.request_id,
                "task": task.as_str(),
                "outputs": out.outputs.iter().map(aurum_service::output_json).collect::<Vec<_>>(),
            }))
            .into_response());
        }
    }
    let rows = records_to_rows(
        &model,
        &records,
        prefix,
        single,
        unknown,
        &state.platform.config().audit.masked_fields,
    )?;
    drop(records);
    let out = state
        .platform
        .predict(
            &caller.ctx(),
            model,
            rows,
            PredictOptions {
                explain: body.explain,
                started: Some(started),
            },
        )
        .await?;
    Ok(Json(PredictOut {
        model: out.model,
        version: out.version,
        request_id: caller.request_id.clone(),
        threshold: out.threshold,
        predictions: out
            .records
            .into_iter()
            .map(|r| PredictionOut {
                probability: r.probability,
                label: r.label,
                positive: r.positive,
                score: r.score,
                decision: r.decision.as_str().to_string(),
                reasons: r
                    .reasons
                    .into_iter()
                    .map(|x| ReasonOut {
                        code: x.code,
                        feature: x.feature,
                        text: x.text,
                        contribution: x.contribution,
                    })
                    .collect(),
                explanation: r.explanation.map(|e| ExplanationOut {
                    space: e.space,
                    base_value: e.base_value,
                    contributions: e
                        .contributions
                        .into_iter()
                        .map(|c| ContributionOut {
                            feature: c.feature,
                            contribution: c.contribution,
                        })
                        .collect(),
                }),
            })
            .collect(),
    })
    .into_response())
}

/// Score records with the model's `champion` version.
#[utoipa::path(post, path = "/v1/models/{name}/predict", tag = "predict", params(("name" = String, Path)),
    request_body = PredictIn,
    responses((status = 200, body = PredictOut), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn champion(
    State(state): State<AppState>,
    caller: Authorized<perm::Predict>,
    Path(name): Path<String>,
    req: Request,
) -> ApiResult<axum::response::Response> {
    predict_with(state, caller.0, ModelRef::champion(&name), req).await
}

/// Score records with a specific version.
#[utoipa::path(post, path = "/v1/models/{name}/versions/{version}/predict", tag = "predict",
    params(("name" = String, Path), ("version" = u32, Path)), request_body = PredictIn,
    responses((status = 200, body = PredictOut), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn by_version(
    State(state): State<AppState>,
    caller: Authorized<perm::Predict>,
    Path((name, version)): Path<(String, String)>,
    req: Request,
) -> ApiResult<axum::response::Response> {
    let v = parse_version(&version)?;
    predict_with(state, caller.0, ModelRef::version(&name, v), req).await
}

/// Score records with the version an alias points at.
#[utoipa::path(post, path = "/v1/models/{name}/aliases/{alias}/predict", tag = "predict",
    params(("name" = String, Path), ("alias" = String, Path)), request_body = PredictIn,
    responses((status = 200, body = PredictOut), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn by_alias(
    State(state): State<AppState>,
    caller: Authorized<perm::Predict>,
    Path((name, alias)): Path<(String, String)>,
    req: Request,
) -> ApiResult<axum::response::Response> {
    predict_with(state, caller.0, ModelRef::alias(&name, &alias), req).await
}
