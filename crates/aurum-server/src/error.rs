//! The one mapping from service errors to HTTP responses.
//!
//! Status codes come from [`ErrorClass`] through an exhaustive match (no `_` arm): a new class
//! forces a decision here. Bodies are `{code, message, type, details}` where `code` is stable
//! and `details.field` names the offending field when there is one. Internal failures show a
//! generic message; the detail goes to the log with the request id.

use aurum_service::{ErrorClass, ServiceError};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An error as every endpoint returns it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `missing_feature`, `model_not_found`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Error family: `invalid_request`, `auth`, `not_found`, `conflict`, `internal`, `unavailable`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Extra machine-readable context, e.g. `{"field": "records[0].age"}`.
    pub details: serde_json::Value,
}

/// Wraps a [`ServiceError`] so handlers can `?` it into a response.
#[derive(Debug)]
pub struct ApiError(pub ServiceError);

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    pub fn invalid(code: &'static str, field: Option<&str>, message: impl Into<String>) -> Self {
        ApiError(ServiceError::invalid(code, field, message))
    }
}

/// HTTP status and error type for a class.
pub fn status_of(class: ErrorClass) -> (StatusCode, &'static str) {
    match class {
        ErrorClass::BadRequest => (StatusCode::BAD_REQUEST, "invalid_request"),
        ErrorClass::Unauthenticated => (StatusCode::UNAUTHORIZED, "auth"),
        ErrorClass::Forbidden => (StatusCode::FORBIDDEN, "auth"),
        ErrorClass::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        ErrorClass::Conflict => (StatusCode::CONFLICT, "conflict"),
        ErrorClass::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request"),
        ErrorClass::Timeout => (StatusCode::REQUEST_TIMEOUT, "invalid_request"),
        ErrorClass::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, "rate_limit"),
        ErrorClass::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "invalid_request"),
        ErrorClass::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        ErrorClass::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let class = e.class();
        let (status, kind) = status_of(class);
        if class == ErrorClass::Internal {
            tracing::error!(code = e.code(), error = %e, "internal error");
        }
        let mut details = serde_json::Map::new();
        if let Some(field) = e.field() {
            details.insert("field".into(), field.into());
        }
        let body = ErrorBody {
            code: e.code().to_string(),
            message: e.public_message(),
            kind: kind.to_string(),
            details: serde_json::Value::Object(details),
        };
        let retry_after = e.retry_after_s();
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(s) = retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(s),
            );
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
