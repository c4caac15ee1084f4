//! Decision flows: `PUT`/`GET /v1/flows/{name}` and `POST /v1/flows/{name}/run`, over
//! `Platform::put_flow`, `get_flow` and `run_flow` (the applicant is converted by the same
//! `records_to_rows` as `/v1` predict).

use std::collections::BTreeMap;

use aurum_service::{FlowDefinition, ModelRef, RankFilter, RecommendRequest};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Authorized, NoQuery, Path, perm};
use crate::middleware::JsonBody;
use crate::routes::recommend::{FiltersIn, ItemOut, items_out, k_of};

/// A flow: a credit model gating a recommender's lending products.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowIn {
    pub credit_model: String,
    /// Default `champion`.
    pub credit_alias: Option<String>,
    pub recommender: String,
    /// Default `champion`.
    pub recommender_alias: Option<String>,
    /// Item categories that are lending, `{"category": ["lending"]}`.
    #[serde(default)]
    pub lending_categories: BTreeMap<String, Vec<String>>,
    /// Item ids that are lending.
    #[serde(default)]
    pub lending_items: Vec<String>,
    /// Decisions that may be offered lending (default `["approve"]`).
    pub offer_lending_on: Option<Vec<String>>,
}

fn flow_out(d: FlowDefinition) -> FlowIn {
    FlowIn {
        credit_model: d.credit_model,
        credit_alias: Some(d.credit_alias),
        recommender: d.recommender,
        recommender_alias: Some(d.recommender_alias),
        lending_categories: d.lending_categories.into_iter().collect(),
        lending_items: d.lending_items,
        offer_lending_on: Some(d.offer_lending_on),
    }
}

/// Create or replace a flow (both models must exist: a binary credit model and a ranking model).
#[utoipa::path(put, path = "/v1/flows/{name}", tag = "recommend", params(("name" = String, Path)),
    request_body = FlowIn,
    responses((status = 200, body = FlowIn), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put(
    State(state): State<AppState>,
    caller: Authorized<perm::ManageModels>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<FlowIn>,
) -> ApiResult<Json<FlowIn>> {
    caller.require_model(&body.credit_model)?;
    caller.require_model(&body.recommender)?;
    let def = FlowDefinition {
        credit_model: body.credit_model,
        credit_alias: body.credit_alias.unwrap_or_else(|| "champion".into()),
        recommender: body.recommender,
        recommender_alias: body.recommender_alias.unwrap_or_else(|| "champion".into()),
        lending_categories: body.lending_categories.into_iter().collect(),
        lending_items: body.lending_items,
        offer_lending_on: body
            .offer_lending_on
            .unwrap_or_else(|| vec!["approve".into()]),
    };
    let def = state.platform.put_flow(&caller.ctx(), &name, def).await?;
    Ok(Json(flow_out(def)))
}

/// A flow's definition.
#[utoipa::path(get, path = "/v1/flows/{name}", tag = "recommend", params(("name" = String, Path)),
    responses((status = 200, body = FlowIn), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _: Authorized<perm::ReadModels>,
    _query: NoQuery,
    Path(name): Path<String>,
) -> ApiResult<Json<FlowIn>> {
    Ok(Json(flow_out(state.platform.get_flow(&name).await?)))
}

/// One applicant through a flow.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowRunIn {
    /// The applicant's credit features, as one `/v1` predict record.
    #[schema(value_type = Object)]
    pub applicant: serde_json::Value,
    /// The customer, when the recommender knows them.
    pub user: Option<String>,
    /// Customer attributes for a customer the recommender does not know.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Offers to return (default 10).
    pub k: Option<i64>,
    #[serde(default)]
    pub filters: FiltersIn,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlowCreditOut {
    pub model: String,
    pub version: u32,
    pub probability: f64,
    pub decision: String,
    pub score: Option<f64>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlowRunOut {
    pub flow: String,
    pub request_id: String,
    pub credit: FlowCreditOut,
    /// Whether lending products could be offered (the decision is one of `offer_lending_on`).
    pub lending_offered: bool,
    pub recommender: String,
    pub recommender_version: u32,
    pub offers: Vec<ItemOut>,
    pub cold_start: bool,
}

/// Score an applicant with the flow's credit model and recommend products; lending products
/// are withheld unless the decision allows them. Both steps are audited under one request id.
#[utoipa::path(post, path = "/v1/flows/{name}/run", tag = "recommend", params(("name" = String, Path)),
    request_body = FlowRunIn,
    responses((status = 200, body = FlowRunOut), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn run(
    State(state): State<AppState>,
    caller: Authorized<perm::Predict>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<FlowRunIn>,
) -> ApiResult<Json<FlowRunOut>> {
    let started = std::time::Instant::now();
    let flow = state.platform.get_flow(&name).await?;
    caller.require_model(&flow.credit_model)?;
    caller.require_model(&flow.recommender)?;
    let k = k_of(body.k)?;
    let credit = state
        .platform
        .resolve(&ModelRef::alias(&flow.credit_model, &flow.credit_alias))
        .await?;
    credit.binary()?;
    let unknown = state.platform.config().server.unknown_fields;
    let mut rows = crate::routes::predict::records_to_rows(
        &credit,
        std::slice::from_ref(&body.applicant),
        "applicant",
        true,
        unknown,
        &state.platform.config().audit.masked_fields,
    )?;
    let row = rows.pop().unwrap_or_default();
    let f = body.filters;
    let offers = RecommendRequest {
        user: body.user,
        attributes: body.attributes.into_iter().collect(),
        k,
        filter: RankFilter {
            include_held: !f.exclude_held.unwrap_or(true),
            include_categories: f.include_categories.into_iter().collect(),
            exclude_categories: f.exclude_categories.into_iter().collect(),
            exclude_items: f.exclude_items,
            allow: None,
        },
        explain: false,
        started: Some(started),
    };
    let out = state
        .platform
        .run_flow(&caller.ctx(), &flow, credit, row, offers)
        .await?;
    let rec = out.credit.records.first();
    Ok(Json(FlowRunOut {
        flow: name,
        request_id: caller.request_id.clone(),
        credit: FlowCreditOut {
            model: out.credit.model,
            version: out.credit.version,
            probability: rec.map_or(f64::NAN, |r| r.probability),
            decision: rec.map_or(String::new(), |r| r.decision.as_str().to_string()),
            score: rec.and_then(|r| r.score),
            reasons: rec
                .map(|r| r.reasons.iter().map(|x| x.code.clone()).collect())
                .unwrap_or_default(),
        },
        lending_offered: out.lending_offered,
        recommender: out.offers.model,
        recommender_version: out.offers.version,
        offers: items_out(out.offers.items, false),
        cold_start: out.offers.cold_start,
    }))
}
