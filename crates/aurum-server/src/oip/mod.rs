//! The KServe Open Inference Protocol (v2) over REST, so tritonclient and KServe-style gateways
//! can call aurum unmodified.
//!
//! Layout (qdrant's `actix` / `tonic` over `common`):
//! - [`tensor`]: the tensor codec (data types, JSON `data`, raw little-endian bytes);
//! - [`infer`]: the protocol-neutral operations both adapters call (model addressing,
//!   metadata, repository index, tensors → rows → [`aurum_service::Platform::predict`]);
//! - [`binary`]: the binary tensor data extension;
//! - `rest`: the axum handlers and their JSON wire types; [`crate::grpc`] is the gRPC adapter.
//!
//! Errors render as the protocol's `{"error": "..."}` ([`OipError`]), including 401/403 from
//! this module's own authentication layer, which resolves keys exactly as `/v1` does
//! ([`aurum_service::Platform::authenticate`]) but answers in the protocol's format.

pub mod binary;
pub(crate) mod error;
pub mod infer;
mod rest;
pub mod tensor;

use aurum_service::{Principal, ServiceError};
use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use error::{OipError, OipResult, http_status};
pub use rest::{DecodedInfer, decode_infer_request};

use crate::AppState;
use crate::auth::Caller;
use crate::middleware::RequestId;

/// The OpenAPI description of the `/v2` REST routes (merged into `/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        rest::live, rest::ready, rest::server_metadata, rest::model_metadata,
        rest::model_metadata_version, rest::model_ready, rest::model_ready_version, rest::infer,
        rest::infer_version, rest::repository_index, rest::repository_load, rest::repository_unload,
    ),
    components(schemas(error::OipErrorBody)),
    tags((name = "oip", description = "KServe Open Inference Protocol v2 (errors: `{\"error\", \"code\"}`)"))
)]
pub struct OipDoc;

/// The `/v2` routes: health open, everything else behind a bearer key.
pub fn router(state: AppState) -> Router<AppState> {
    let open = Router::new()
        .route("/v2/health/live", get(rest::live))
        .route("/v2/health/ready", get(rest::ready));
    let authed = Router::new()
        .route("/v2", get(rest::server_metadata))
        .route("/v2/models/{name}", get(rest::model_metadata))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(rest::model_metadata_version),
        )
        .route("/v2/models/{name}/ready", get(rest::model_ready))
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(rest::model_ready_version),
        )
        .route("/v2/models/{name}/infer", post(rest::infer))
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(rest::infer_version),
        )
        .route("/v2/repository/index", post(rest::repository_index))
        .route(
            "/v2/repository/models/{name}/load",
            post(rest::repository_load),
        )
        .route(
            "/v2/repository/models/{name}/unload",
            post(rest::repository_unload),
        )
        .route_layer(axum::middleware::from_fn_with_state(state, authenticate));
    open.merge(authed)
}

/// The bearer key from an `Authorization` value (`Bearer KEY`, either case of `bearer`).
pub fn bearer_key(value: &str) -> Option<&str> {
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// Resolves `Authorization: Bearer KEY` to a [`Principal`] (401 in the protocol's format
/// without one); the same keys, cache and checks as the `/v1` layer.
async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let key = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_key);
    let Some(key) = key else {
        return OipError(ServiceError::Unauthenticated(
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
        .authenticate_from(key, client.as_deref())
        .await
    {
        Ok(principal) => {
            if let Some(model) = crate::auth::model_in_path(req.uri().path())
                && let Err(e) = principal.check_model(&model)
            {
                return OipError(e).into_response();
            }
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(e) => OipError(e).into_response(),
    }
}

/// Path parameters, rejecting in the protocol's format (the same checks as
/// [`crate::extract::Path`]).
pub struct OipPath<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for OipPath<T> {
    type Rejection = OipError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| OipPath(p.0))
            .map_err(|r| OipError::from(crate::extract::path_error(r)))
    }
}

/// The authenticated caller, rejecting in the protocol's format.
pub struct OipCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for OipCaller {
    type Rejection = OipError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| OipError(ServiceError::Unauthenticated("missing API key".into())))?;
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        Ok(OipCaller(Caller {
            principal,
            request_id,
        }))
    }
}
