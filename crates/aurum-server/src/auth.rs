//! Bearer-key authentication and the role → permission matrix.
//!
//! The middleware resolves `Authorization: Bearer KEY` to a [`Principal`] (401 without one) and
//! stores it in the request; handlers state the permission they need with [`Caller::require`]
//! (403 when the role lacks it). The matrix lives in one function, [`allows`], so it can be read
//! and tested as a table.

use aurum_service::{CallContext, Principal, Role, ServiceError};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;
use crate::middleware::RequestId;

/// What an endpoint needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Import and read datasets.
    Datasets,
    /// Submit, read and cancel training jobs.
    Training,
    /// Read models, versions, aliases and the OpenAPI document.
    ReadModels,
    /// Move aliases and archive versions.
    ManageModels,
    /// Call predict.
    Predict,
    /// Read and verify the audit log.
    ReadAudit,
    /// Create, list and revoke API keys.
    ManageKeys,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Datasets => "datasets",
            Permission::Training => "training",
            Permission::ReadModels => "read_models",
            Permission::ManageModels => "manage_models",
            Permission::Predict => "predict",
            Permission::ReadAudit => "read_audit",
            Permission::ManageKeys => "manage_keys",
        }
    }
}

/// The role matrix: admin may do everything; analyst works with data, training, the registry and
/// reads the audit log; client predicts and reads model metadata.
pub fn allows(role: Role, p: Permission) -> bool {
    match role {
        Role::Admin => true,
        Role::Analyst => matches!(
            p,
            Permission::Datasets
                | Permission::Training
                | Permission::ReadModels
                | Permission::ManageModels
                | Permission::ReadAudit
        ),
        Role::Client => matches!(p, Permission::Predict | Permission::ReadModels),
    }
}

fn needed_role(p: Permission) -> &'static str {
    match p {
        Permission::Datasets
        | Permission::Training
        | Permission::ManageModels
        | Permission::ReadAudit => "analyst or admin",
        Permission::ReadModels => "client, analyst or admin",
        Permission::Predict => "client or admin",
        Permission::ManageKeys => "admin",
    }
}

/// Resolves the bearer key; rejects with 401 before any handler runs.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(key) = header.and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
    }) else {
        return ApiError(ServiceError::Unauthenticated(
            "missing API key: send `Authorization: Bearer <key>`".into(),
        ))
        .into_response();
    };
    let client = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    match state
        .platform
        .authenticate_from(key.trim(), client.as_deref())
        .await
    {
        Ok(principal) => {
            if let Some(model) = model_in_path(req.uri().path())
                && let Err(e) = principal.check_model(&model)
            {
                return ApiError(e).into_response();
            }
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(e) => ApiError(e).into_response(),
    }
}

/// The model a `/v1/models/{name}…`, `/v2/models/{name}…` or `/v2/repository/models/{name}…` path
/// names, percent-decoded as the
/// router will decode it, so that a key's scope is checked once for every model route.
pub fn model_in_path(path: &str) -> Option<String> {
    let rest = path
        .strip_prefix("/v1/models/")
        .or_else(|| path.strip_prefix("/v2/models/"))
        .or_else(|| path.strip_prefix("/v2/repository/models/"))?;
    let segment = rest.split('/').next().filter(|s| !s.is_empty())?;
    Some(
        percent_encoding::percent_decode_str(segment)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// The authenticated caller, extracted in handlers.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    pub request_id: String,
}

impl Caller {
    /// 403 unless the caller's role has `p`.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if allows(self.principal.role, p) {
            Ok(())
        } else {
            Err(ApiError(ServiceError::Forbidden {
                key: self.principal.name.clone(),
                role: self.principal.role.as_str(),
                needed: needed_role(p),
            }))
        }
    }

    /// 403 `key_out_of_scope` unless the key's scope covers `model`.
    pub fn require_model(&self, model: &str) -> Result<(), ApiError> {
        self.principal.check_model(model).map_err(ApiError)
    }

    pub fn ctx(&self) -> CallContext {
        CallContext {
            actor: self.principal.name.clone(),
            request_id: Some(self.request_id.clone()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError(ServiceError::Unauthenticated("missing API key".into())))?;
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        Ok(Caller {
            principal,
            request_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_routes_name_their_model() {
        assert_eq!(
            model_in_path("/v1/models/credit-a/predict").as_deref(),
            Some("credit-a")
        );
        assert_eq!(
            model_in_path("/v2/models/fraud/infer").as_deref(),
            Some("fraud")
        );
        assert_eq!(
            model_in_path("/v1/models/cr%65dit").as_deref(),
            Some("credit")
        );
        assert_eq!(
            model_in_path("/v2/repository/models/m/load").as_deref(),
            Some("m")
        );
        assert_eq!(model_in_path("/v1/models"), None);
        assert_eq!(model_in_path("/v1/models/"), None);
        assert_eq!(model_in_path("/v1/datasets/x"), None);
    }

    #[test]
    fn matrix() {
        use Permission::*;
        let all = [
            Datasets,
            Training,
            ReadModels,
            ManageModels,
            Predict,
            ReadAudit,
            ManageKeys,
        ];
        for p in all {
            assert!(allows(Role::Admin, p));
        }
        let analyst: Vec<_> = all.iter().filter(|p| allows(Role::Analyst, **p)).collect();
        assert_eq!(
            analyst,
            [&Datasets, &Training, &ReadModels, &ManageModels, &ReadAudit]
        );
        let client: Vec<_> = all.iter().filter(|p| allows(Role::Client, **p)).collect();
        assert_eq!(client, [&ReadModels, &Predict]);
    }
}
