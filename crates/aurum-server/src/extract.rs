//! Extractors whose rejections go through the one error mapping.
//!
//! axum's own `Path`, `Query` and `Json` reject with `text/plain` bodies that no client can
//! switch on. The wrappers here parse the same way and turn every problem into a documented
//! [`ApiError`] naming the parameter: 400 `invalid_path` and 400 `invalid_query`. (JSON bodies
//! are read by [`crate::middleware::JsonBody`].)
//!
//! [`Authorized`] is the permission check as an extractor. Extractors run in argument order,
//! and a body extractor always runs last, so a handler that takes `Authorized<P>` first answers
//! 403 before it looks at the path, the query string or the body: a caller without the
//! permission learns nothing about what a valid request would look like.

use std::marker::PhantomData;
use std::ops::Deref;

use axum::extract::FromRequestParts;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::auth::{Caller, Permission};
use crate::error::ApiError;

/// Path parameters; a parameter that does not parse is 400 `invalid_path` naming it.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(path_error)
    }
}

/// Maps a path rejection to a documented error naming the parameter.
pub fn path_error(rejection: PathRejection) -> ApiError {
    let PathRejection::FailedToDeserializePathParams(e) = rejection else {
        // Missing path parameters are a routing bug, not the caller's fault.
        return ApiError(aurum_service::ServiceError::Internal(format!(
            "path parameters unavailable: {}",
            rejection.body_text()
        )));
    };
    let (field, message) = match e.kind() {
        ErrorKind::ParseErrorAtKey {
            key,
            value,
            expected_type,
        } => (
            Some(key.as_str()),
            format!("path parameter `{key}` = {value:?} is not a valid {expected_type}"),
        ),
        ErrorKind::ParseErrorAtIndex {
            value,
            expected_type,
            ..
        } => (
            None,
            format!("path segment {value:?} is not a valid {expected_type}"),
        ),
        ErrorKind::InvalidUtf8InPathParam { key } => (
            Some(key.as_str()),
            format!("path parameter `{key}` is not valid UTF-8 after percent-decoding"),
        ),
        _ => (None, format!("invalid path: {}", e.body_text())),
    };
    ApiError::invalid("invalid_path", field, message)
}

/// Query-string parameters; a parameter that does not parse (or a required one that is
/// missing) is 400 `invalid_query` naming it.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or("")).map(Query)
    }
}

/// A list's `limit` query parameter: `default` when absent, else 1 to `max` (400
/// `invalid_query` naming `limit` outside that range, rather than a silent clamp).
pub fn list_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid(
            "invalid_query",
            Some("limit"),
            format!("query parameter `limit` must be between 1 and {max}, got {n}"),
        )),
    }
}

/// For endpoints that take no query parameters: any parameter is 400 `invalid_query` naming it
/// (a misspelt `?limt=5` would otherwise be ignored without a word).
pub struct NoQuery;

impl<S: Send + Sync> FromRequestParts<S> for NoQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        match form_urlencoded::parse(query.as_bytes()).next() {
            None => Ok(NoQuery),
            Some((name, _)) => Err(ApiError::invalid(
                "invalid_query",
                Some(&name),
                format!(
                    "unknown query parameter `{name}`: this endpoint takes no query parameters"
                ),
            )),
        }
    }
}

/// Parses a query string, naming the offending parameter on failure.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // A missing required parameter is reported at the root: take its name from the message.
        let field = if path == "." {
            inner
                .strip_prefix("missing field `")
                .or_else(|| inner.strip_prefix("unknown field `"))
                .and_then(|rest| rest.split('`').next())
                .map(String::from)
        } else {
            Some(path)
        };
        let message = match &field {
            Some(f) if inner.starts_with("missing field") => {
                format!("query parameter `{f}` is required")
            }
            Some(f) if inner.starts_with("unknown field") => {
                format!("unknown query parameter `{f}`: {inner}")
            }
            Some(f) => format!("query parameter `{f}`: {inner}"),
            None => format!("invalid query string: {inner}"),
        };
        ApiError::invalid("invalid_query", field.as_deref(), message)
    })
}

/// A permission an endpoint needs, as a type (see [`Authorized`]).
pub trait Needs: Send + Sync {
    const PERMISSION: Permission;
}

/// Marker types for [`Authorized`], one per [`Permission`].
pub mod perm {
    use super::Needs;
    use crate::auth::Permission;

    macro_rules! needs {
        ($($name:ident),* $(,)?) => {$(
            #[doc = concat!("Needs [`Permission::", stringify!($name), "`].")]
            pub struct $name;
            impl Needs for $name {
                const PERMISSION: Permission = Permission::$name;
            }
        )*};
    }
    needs!(
        Datasets,
        Training,
        ReadModels,
        ManageModels,
        Predict,
        ReadAudit,
        ManageKeys
    );
}

/// The authenticated caller, already checked for the permission `P` (403 otherwise).
pub struct Authorized<P>(pub Caller, PhantomData<P>);

impl<P> Deref for Authorized<P> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<S: Send + Sync, P: Needs> FromRequestParts<S> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(P::PERMISSION)?;
        Ok(Authorized(caller, PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Q {
        format: String,
        limit: Option<u32>,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let e = parse_query::<Q>("format=json&limit=abc").unwrap_err().0;
        assert_eq!(e.code(), "invalid_query");
        assert_eq!(e.field().as_deref(), Some("limit"));
        let e = parse_query::<Q>("limit=3").unwrap_err().0;
        assert_eq!(e.field().as_deref(), Some("format"));
        assert!(e.to_string().contains("required"), "{e}");
        let e = parse_query::<Q>("format=json&=false").unwrap_err().0;
        assert_eq!(
            (e.code(), e.field().as_deref()),
            ("invalid_query", Some(""))
        );
        let ok = parse_query::<Q>("format=json&limit=3").unwrap();
        assert_eq!((ok.format.as_str(), ok.limit), ("json", Some(3)));
    }
}
