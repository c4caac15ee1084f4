//! Cross-cutting request handling: request ids, tracing span, timeout, panic capture, metrics,
//! and the body extractors that turn transport problems into documented 4xx errors.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use aurum_service::ServiceError;
use axum::body::Bytes;
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use aurum_data::json::StrictError;

/// The request id: the caller's `x-request-id` when it is sane, else a new UUID.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

fn sane_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)))
    .then(|| s.to_string())
}

/// Outermost layer: request id, span, timeout, panic capture and request metrics.
/// A request id for a request that did not bring one: a UUID version 7, whose leading bits are
/// the time in milliseconds. Ids of later requests sort after earlier ones, so the tables keyed by
/// request id (shadow scores, outcomes) take new keys at the end of their B-tree instead of at
/// random pages, and a log sorted by request id is in time order. Still unguessable enough for an
/// id (74 random bits); it is never a secret.
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub async fn outer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let rid = req
        .headers()
        .get("x-request-id")
        .and_then(sane_request_id)
        .unwrap_or_else(new_request_id);
    req.extensions_mut().insert(RequestId(rid.clone()));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %rid, method = %method, route = %route);
    let timeout = Duration::from_millis(state.platform.config().server.request_timeout_ms);
    let fut = AssertUnwindSafe(tokio::time::timeout(timeout, next.run(req))).catch_unwind();
    let mut resp = match fut.instrument(span.clone()).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(_elapsed)) => ApiError(ServiceError::Timeout {
            ms: timeout.as_millis() as u64,
        })
        .into_response(),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            span.in_scope(|| tracing::error!(panic = %what, "handler panicked"));
            metrics::counter!("aurum_panics_total").increment(1);
            let body = ErrorBody {
                code: "internal".into(),
                message: format!("internal error (request id {rid})"),
                kind: "internal".into(),
                details: serde_json::json!({"request_id": rid}),
            };
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let status = resp.status().as_u16().to_string();
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!("aurum_http_requests_total", "route" => route.clone(), "method" => method.to_string(), "status" => status).increment(1);
    metrics::histogram!("aurum_http_request_duration_seconds", "route" => route).record(elapsed);
    resp
}

/// A JSON body whose problems become documented errors: 413 `payload_too_large` over the limit,
/// 400 `malformed_json` (with line and column) for bad JSON, 400 `invalid_field` when the JSON
/// does not fit the expected shape (naming the field).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Reads the body within the configured limit.
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map(|l| l.0)
        .unwrap_or(usize::MAX);
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(ServiceError::PayloadTooLarge { limit })
        } else {
            ApiError::invalid("unreadable_body", None, rejection.body_text())
        }
    })
}

/// The configured body limit, stored in request extensions for error messages.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// Parses a JSON body into `T`: 400 `malformed_json` (line and column) when it is not JSON,
/// 400 `duplicate_key` (naming the path) when an object repeats a key, and the errors of
/// [`from_json_value`] when it does not fit `T`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    from_json_value(parse_json_value(bytes)?)
}

/// Parses a JSON body strictly (see [`crate::json`]) without giving it a shape.
pub fn parse_json_value(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::invalid(
            "malformed_json",
            None,
            "request body is empty; expected a JSON object",
        ));
    }
    aurum_data::json::parse_strict(bytes).map_err(|e| match e {
        StrictError::Syntax(e) => ApiError::invalid(
            "malformed_json",
            None,
            format!("request body is not valid JSON: {e}"),
        ),
        StrictError::DuplicateKey(path) => ApiError::invalid(
            "duplicate_key",
            Some(&path),
            format!("`{path}` appears more than once in the same object; send each key once"),
        ),
    })
}

/// Converts a parsed body to `T`: 400 `unknown_field` or `missing_field` naming the field, 400
/// `invalid_field` for a value of the wrong shape.
pub fn from_json_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    let not_an_object = match &value {
        serde_json::Value::Object(_) => None,
        serde_json::Value::Array(_) => Some("an array"),
        serde_json::Value::Null => Some("null"),
        serde_json::Value::Bool(_) => Some("a boolean"),
        serde_json::Value::Number(_) => Some("a number"),
        serde_json::Value::String(_) => Some("a string"),
    };
    // Every body is an object: serde would also read a struct from an array, by position
    // (`["name","client"]` created a key), which no caller means.
    if let Some(got) = not_an_object {
        return Err(ApiError::invalid(
            "invalid_field",
            None,
            format!("invalid request: the body must be a JSON object, not {got}"),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let raw = e.inner().to_string();
        let named = raw
            .split('`')
            .nth(1)
            .filter(|_| raw.starts_with("missing field") || raw.starts_with("unknown field"));
        // serde names the Rust type it wanted (`expected struct AliasIn`); callers see JSON.
        let msg = without_type_names(&raw);
        let join = |name: &str| {
            if path == "." {
                name.to_string()
            } else {
                format!("{path}.{name}")
            }
        };
        let (code, field) = if msg.starts_with("unknown field") {
            // The path already ends at the unknown key (it failed while being read); a missing
            // field's path is the object that lacks it.
            let at_key = |name: &str| {
                if path == name || path.ends_with(&format!(".{name}")) {
                    path.clone()
                } else {
                    join(name)
                }
            };
            ("unknown_field", named.map(at_key))
        } else if msg.starts_with("missing field") {
            ("missing_field", named.map(join))
        } else {
            ("invalid_field", (path != ".").then_some(path.clone()))
        };
        let message = match &field {
            Some(f) if code == "invalid_field" => format!("invalid request: `{f}`: {msg}"),
            _ => format!("invalid request: {msg}"),
        };
        ApiError(ServiceError::Invalid {
            code,
            field,
            message,
        })
    })
}

/// `msg` with serde's Rust type names spelled as JSON: `expected struct Name` as `expected a
/// JSON object`, `expected u32` as `expected a non-negative integer (at most 4294967295)`,
/// `expected i64` as `expected an integer (…)`, `expected f64` as `expected a number`. Only the
/// phrase serde writes at the end of its message is rewritten: a caller's key or value that
/// contains the words stays as sent.
pub(crate) fn without_type_names(msg: &str) -> String {
    // serde's messages end with `, expected <what>` (after a quoted key or value, so a
    // caller's text never ends the message).
    const PHRASE: &str = ", expected ";
    let Some(i) = msg.rfind(PHRASE) else {
        return msg.to_string();
    };
    let (head, what) = msg.split_at(i + PHRASE.len());
    let json = match what.strip_prefix("struct ") {
        Some(name)
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Some("a JSON object".to_string())
        }
        Some(_) => None,
        None => primitive_as_json(what),
    };
    match json {
        Some(json) => format!("{head}{json}"),
        None => msg.to_string(),
    }
}

/// How a caller reads a Rust number type serde names in an error.
fn primitive_as_json(name: &str) -> Option<String> {
    let unsigned = |max: u64| format!("a non-negative integer (at most {max})");
    let signed = |min: i64, max: i64| format!("an integer ({min} to {max})");
    Some(match name {
        "u8" => unsigned(u8::MAX.into()),
        "u16" => unsigned(u16::MAX.into()),
        "u32" => unsigned(u32::MAX.into()),
        "u64" | "usize" => unsigned(u64::MAX),
        "i8" => signed(i8::MIN.into(), i8::MAX.into()),
        "i16" => signed(i16::MIN.into(), i16::MAX.into()),
        "i32" => signed(i32::MIN.into(), i32::MAX.into()),
        "i64" | "isize" => signed(i64::MIN, i64::MAX),
        "f32" | "f64" => "a number".to_string(),
        _ => return None,
    })
}

/// Adds the body limit to the request extensions.
pub async fn body_limit_ext(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    req.extensions_mut()
        .insert(BodyLimit(state.platform.config().server.body_limit_bytes));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::without_type_names;

    #[test]
    fn serde_type_names_are_spelled_as_json() {
        for (raw, want) in [
            (
                "invalid type: sequence, expected struct AliasIn",
                "invalid type: sequence, expected a JSON object",
            ),
            (
                "invalid value: integer `-1`, expected u32",
                "invalid value: integer `-1`, expected a non-negative integer (at most 4294967295)",
            ),
            (
                "invalid type: floating point `1e20`, expected i64",
                "invalid type: floating point `1e20`, expected an integer \
                 (-9223372036854775808 to 9223372036854775807)",
            ),
            (
                "invalid type: string \"x\", expected f64",
                "invalid type: string \"x\", expected a number",
            ),
            // A caller's text is never rewritten: it sits inside quotes, before serde's phrase.
            (
                "unknown field `a, expected u32`, expected one of `name`, `role`",
                "unknown field `a, expected u32`, expected one of `name`, `role`",
            ),
            (
                "missing field `b, expected struct X`",
                "missing field `b, expected struct X`",
            ),
            (
                "invalid type: string \"y, expected f64\", expected a boolean",
                "invalid type: string \"y, expected f64\", expected a boolean",
            ),
        ] {
            assert_eq!(without_type_names(raw), want, "{raw}");
        }
    }
}
