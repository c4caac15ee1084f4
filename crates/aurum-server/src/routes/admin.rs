//! `/v1/keys` (admin) and `/v1/audit` (admin, analyst).

use aurum_service::Role;
use aurum_service::types::AuditQuery;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authorized, NoQuery, Path, Query, perm};
use crate::middleware::JsonBody;
use crate::wire::{AuditList, AuditOut, BrokenOut, KeyIn, KeyList, KeyOut, VerifyOut};

/// Create an API key. The key is in the response once and never again.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = KeyIn,
    responses((status = 201, body = KeyOut), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Authorized<perm::ManageKeys>,
    JsonBody(body): JsonBody<KeyIn>,
) -> ApiResult<(StatusCode, Json<KeyOut>)> {
    let role: Role = body.role.parse().map_err(|_| {
        ApiError::invalid(
            "invalid_field",
            Some("role"),
            format!("role `{}` must be admin, analyst or client", body.role),
        )
    })?;
    let expires_at = body
        .expires_at
        .as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| {
                    ApiError::invalid(
                        "invalid_expiry",
                        Some("expires_at"),
                        format!("expires_at `{t}` is not an RFC 3339 instant: {e}"),
                    )
                })
        })
        .transpose()?;
    let policy = aurum_service::KeyPolicy {
        expires_at,
        scopes: body.scopes,
        rate_limit_per_s: body.rate_limit_per_s,
    };
    let (record, plaintext) = state
        .platform
        .create_key_with_policy(&caller.ctx(), &body.name, role, policy)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyOut::from_record(&record, Some(plaintext))),
    ))
}

/// List API keys (never their secrets).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses((status = 200, body = KeyList)),
    security(("bearer" = [])))]
pub async fn list_keys(
    State(state): State<AppState>,
    _: Authorized<perm::ManageKeys>,
    _query: NoQuery,
) -> ApiResult<Json<KeyList>> {
    let keys = state.platform.list_keys().await?;
    Ok(Json(KeyList {
        keys: keys.iter().map(|k| KeyOut::from_record(k, None)).collect(),
    }))
}

/// Revoke an API key by name or id.
#[utoipa::path(delete, path = "/v1/keys/{name}", tag = "keys", params(("name" = String, Path)),
    responses((status = 200, body = KeyOut), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Authorized<perm::ManageKeys>,
    Path(name): Path<String>,
) -> ApiResult<Json<KeyOut>> {
    let record = state.platform.revoke_key(&caller.ctx(), &name).await?;
    Ok(Json(KeyOut::from_record(&record, None)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only records with a sequence number greater than this.
    pub after: Option<u64>,
    /// At most this many records (default 100, max 1000).
    pub limit: Option<u32>,
    /// Only this event type, e.g. `prediction`, `alias.move`.
    pub event: Option<String>,
    /// Only records about this model.
    pub model: Option<String>,
    /// Return the last `tail` records instead (ignores the other filters).
    pub tail: Option<u32>,
}

/// Read audit records in sequence order.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditList)), security(("bearer" = [])))]
pub async fn audit(
    State(state): State<AppState>,
    _: Authorized<perm::ReadAudit>,
    Query(q): Query<AuditParams>,
) -> ApiResult<Json<AuditList>> {
    let records = match q.tail {
        Some(n) => state.platform.audit_tail(n.min(1000) as usize).await?,
        None => {
            state
                .platform
                .audit_list(AuditQuery {
                    after_seq: q.after.unwrap_or(0),
                    limit: q.limit.unwrap_or(100).min(1000),
                    event: q.event,
                    model: q.model,
                })
                .await?
        }
    };
    Ok(Json(AuditList {
        records: records
            .iter()
            .map(|r| AuditOut::opened(r, &state.platform))
            .collect(),
    }))
}

/// Verify the whole audit hash chain and its signed anchor; names the first broken record, or a
/// truncated or rewritten log.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", responses((status = 200, body = VerifyOut)),
    security(("bearer" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    _: Authorized<perm::ReadAudit>,
    _query: NoQuery,
) -> ApiResult<Json<VerifyOut>> {
    let r = state.platform.audit_verify().await?;
    Ok(Json(VerifyOut {
        ok: r.ok,
        records_checked: r.records_checked,
        first_broken: r.first_broken.map(|b| BrokenOut {
            seq: b.seq,
            reason: b.reason.to_string(),
        }),
        anchor_seq: r.anchor.map(|a| a.seq),
        anchor_problem: r.anchor_problem.map(|p| p.to_string()),
    }))
}
