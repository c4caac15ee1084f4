//! Recommendation routes: `POST /v1/models/{name}/recommend` and
//! `POST /v1/models/{name}/similar-items`, over `Platform::recommend` and
//! `Platform::similar_items` (audited there, like predictions).

use std::collections::BTreeMap;

use aurum_service::{MAX_K, ModelRef, RankFilter, RankedItem, RecommendRequest};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authorized, Path, perm};
use crate::middleware::JsonBody;

/// Which items may be recommended. Unknown fields are refused.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FiltersIn {
    /// Leave out items the user already holds (default true).
    #[serde(default)]
    pub exclude_held: Option<bool>,
    /// Only items whose attribute takes one of the values, e.g. `{"category": ["savings"]}`.
    #[serde(default)]
    pub include_categories: BTreeMap<String, Vec<String>>,
    /// Never items whose attribute takes one of the values.
    #[serde(default)]
    pub exclude_categories: BTreeMap<String, Vec<String>>,
    /// Never these items.
    #[serde(default)]
    pub exclude_items: Vec<String>,
}

/// A recommendation request: a known `user`, or `attributes` for a new customer (both: the
/// attributes are used when the user is unknown).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendIn {
    #[serde(default)]
    pub user: Option<String>,
    /// User attributes the model was trained with, e.g. `{"job": "student"}`.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// How many items (1 to 100; default 10).
    #[serde(default)]
    pub k: Option<i64>,
    #[serde(default)]
    pub filters: FiltersIn,
    /// Return the reasons behind each item.
    #[serde(default)]
    pub explain: bool,
    /// A version; default: the `champion` alias.
    #[serde(default)]
    pub version: Option<u32>,
    /// An alias, instead of `version`.
    #[serde(default)]
    pub alias: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReasonOut {
    pub because: String,
    pub contribution: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemOut {
    pub item: String,
    pub score: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<ReasonOut>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecommendOut {
    pub model: String,
    pub version: u32,
    pub items: Vec<ItemOut>,
    /// The algorithm that answered (`reco_als`'s `als`), or `segment_popularity` /
    /// `popularity` for a new customer answered by the popularity fallback.
    pub source: String,
    pub cold_start: bool,
    pub audit_seq: Option<u64>,
    pub input_sha256: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimilarIn {
    pub item: String,
    /// How many items (1 to 100; default 10).
    #[serde(default)]
    pub k: Option<i64>,
    #[serde(default)]
    pub version: Option<u32>,
    #[serde(default)]
    pub alias: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SimilarOut {
    pub model: String,
    pub version: u32,
    pub item: String,
    pub items: Vec<ItemOut>,
    pub audit_seq: Option<u64>,
    pub input_sha256: String,
}

pub(crate) fn k_of(k: Option<i64>) -> Result<usize, ApiError> {
    let k = k.unwrap_or(10);
    if k < 1 || k > MAX_K as i64 {
        return Err(ApiError::invalid(
            "invalid_field",
            Some("k"),
            format!("k must be between 1 and {MAX_K}, got {k}"),
        ));
    }
    Ok(k as usize)
}

fn target(name: &str, version: Option<u32>, alias: Option<&str>) -> Result<ModelRef, ApiError> {
    match (version, alias) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "invalid_field",
            Some("alias"),
            "give `version` or `alias`, not both",
        )),
        (Some(v), None) => Ok(ModelRef::version(name, v)),
        (None, Some(a)) => Ok(ModelRef::alias(name, a)),
        (None, None) => Ok(ModelRef::champion(name)),
    }
}

pub(crate) fn items_out(items: Vec<RankedItem>, reasons: bool) -> Vec<ItemOut> {
    items
        .into_iter()
        .map(|i| ItemOut {
            item: i.item,
            score: i.score,
            reasons: reasons.then(|| {
                i.reasons
                    .into_iter()
                    .map(|r| ReasonOut {
                        because: r.because,
                        contribution: r.contribution,
                    })
                    .collect()
            }),
        })
        .collect()
}

/// Recommend items for a customer with a ranking model.
#[utoipa::path(post, path = "/v1/models/{name}/recommend", tag = "recommend", params(("name" = String, Path)),
    request_body = RecommendIn,
    responses((status = 200, body = RecommendOut), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn recommend(
    State(state): State<AppState>,
    caller: Authorized<perm::Predict>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<RecommendIn>,
) -> ApiResult<Json<RecommendOut>> {
    let started = std::time::Instant::now();
    let k = k_of(body.k)?;
    let model = state
        .platform
        .resolve(&target(&name, body.version, body.alias.as_deref())?)
        .await?;
    let f = body.filters;
    let req = RecommendRequest {
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
        explain: body.explain,
        started: Some(started),
    };
    let out = state.platform.recommend(&caller.ctx(), model, req).await?;
    Ok(Json(RecommendOut {
        model: out.model,
        version: out.version,
        items: items_out(out.items, body.explain),
        source: out.source,
        cold_start: out.cold_start,
        audit_seq: out.audit_seq,
        input_sha256: out.input_sha256,
    }))
}

/// Items most similar to an item, with a ranking model.
#[utoipa::path(post, path = "/v1/models/{name}/similar-items", tag = "recommend", params(("name" = String, Path)),
    request_body = SimilarIn,
    responses((status = 200, body = SimilarOut), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn similar_items(
    State(state): State<AppState>,
    caller: Authorized<perm::Predict>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<SimilarIn>,
) -> ApiResult<Json<SimilarOut>> {
    let k = k_of(body.k)?;
    let model = state
        .platform
        .resolve(&target(&name, body.version, body.alias.as_deref())?)
        .await?;
    let out = state
        .platform
        .similar_items(&caller.ctx(), model, &body.item, k)
        .await?;
    Ok(Json(SimilarOut {
        model: out.model,
        version: out.version,
        item: out.item,
        items: items_out(out.items, false),
        audit_seq: out.audit_seq,
        input_sha256: out.input_sha256,
    }))
}
