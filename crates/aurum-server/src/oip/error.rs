//! Error rendering for the Open Inference Protocol REST endpoints.
//!
//! The protocol's error body is `{"error": "<message>"}`; aurum adds its stable machine `code`
//! beside it (clients that know only the protocol read `error`). The status comes from
//! [`ErrorClass`] through an exhaustive match, like the `/v1` mapping in [`crate::error`], so a
//! new class forces a decision here too. Internal failures show a generic message and are logged.

use aurum_service::{ErrorClass, ServiceError};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A [`ServiceError`] answered in the protocol's error format.
#[derive(Debug)]
pub struct OipError(pub ServiceError);

impl From<ServiceError> for OipError {
    fn from(e: ServiceError) -> Self {
        OipError(e)
    }
}

impl From<crate::error::ApiError> for OipError {
    fn from(e: crate::error::ApiError) -> Self {
        OipError(e.0)
    }
}

pub type OipResult<T> = Result<T, OipError>;

/// The HTTP status of each error class.
pub fn http_status(class: ErrorClass) -> StatusCode {
    match class {
        ErrorClass::BadRequest => StatusCode::BAD_REQUEST,
        ErrorClass::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorClass::Forbidden => StatusCode::FORBIDDEN,
        ErrorClass::NotFound => StatusCode::NOT_FOUND,
        ErrorClass::Conflict => StatusCode::CONFLICT,
        ErrorClass::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorClass::Timeout => StatusCode::REQUEST_TIMEOUT,
        ErrorClass::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorClass::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorClass::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The protocol's error body, with aurum's stable code beside it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OipErrorBody {
    /// Human-readable explanation (the protocol's field).
    error: String,
    /// Stable machine-readable code, as under `/v1`.
    code: &'static str,
}

impl IntoResponse for OipError {
    fn into_response(self) -> Response {
        let e = self.0;
        let class = e.class();
        if class == ErrorClass::Internal {
            tracing::error!(code = e.code(), error = %e, "internal error");
        }
        let status = http_status(class);
        let body = OipErrorBody {
            error: e.public_message(),
            code: e.code(),
        };
        let retry_after = e.retry_after_s();
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}
