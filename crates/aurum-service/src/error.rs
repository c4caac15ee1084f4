//! The service layer's error type and its classification.
//!
//! Every failure that can reach a caller is a [`ServiceError`]. Adapters (REST, gRPC, CLI) never
//! inspect variants to decide a status: they call [`ServiceError::class`] (exhaustive, no `_` arm)
//! and [`ServiceError::code`] (a stable machine code that clients may switch on).

use aurum_credit::ModelError;
use aurum_data::DataError;
use aurum_forecast::ForecastError;
use aurum_registry::RegistryError;
use aurum_registry::audit::AuditError;

/// Who is at fault and how an adapter should answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request is malformed or invalid (400).
    BadRequest,
    /// The caller gave no valid credentials (401).
    Unauthenticated,
    /// The caller's role does not allow this (403).
    Forbidden,
    /// A named resource does not exist (404).
    NotFound,
    /// The resource exists but does not answer this method (405).
    MethodNotAllowed,
    /// The request conflicts with the current state (409).
    Conflict,
    /// The request body is over the configured limit (413).
    PayloadTooLarge,
    /// The request took longer than the configured timeout (408).
    Timeout,
    /// The caller sent too many requests of a kind that is limited (429, with `Retry-After`).
    TooManyRequests,
    /// The service cannot answer now, e.g. while starting or stopping (503).
    Unavailable,
    /// Our failure, not the caller's (500). The message shown to the caller is generic.
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A request that fails validation; `field` names the offending field when there is one.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    #[error("{resource} `{name}` not found")]
    NotFound {
        resource: &'static str,
        name: String,
    },
    /// An alias the model does not have; the message says how to set it.
    #[error(
        "alias `{model}@{alias}` not found (set it with PUT /v1/models/{model}/aliases/{alias} or `aurum models alias`)"
    )]
    AliasNotFound { model: String, alias: String },
    #[error("{0}")]
    Conflict(String),
    /// A version that was archived: its record, reports and artifact stay, but it makes no
    /// more decisions (a pinned caller or a batch job naming it is refused).
    #[error(
        "{model} v{version} is archived: it keeps its record and reports but no longer scores; use a current version or an alias"
    )]
    VersionArchived { model: String, version: u32 },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("this operation needs the {needed} role; the key `{key}` has the {role} role")]
    Forbidden {
        key: String,
        role: &'static str,
        needed: &'static str,
    },
    /// The key is valid but past its expiry.
    #[error("the API key `{key}` expired at {expired_at}")]
    KeyExpired { key: String, expired_at: String },
    /// The key's scope does not cover the model the request names.
    #[error("the API key `{key}` is not scoped to the model `{model}`")]
    OutOfScope { key: String, model: String },
    /// The key went over its own request-rate limit.
    #[error("the API key `{key}` is limited to {limit} requests per second; retry shortly")]
    KeyRateLimited { key: String, limit: u32 },
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request did not finish within {ms} ms")]
    Timeout { ms: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// Too many requests of a limited kind (failed authentications from one client, legacy key
    /// checks waiting for the bounded pool); retry after `retry_after_s` seconds.
    #[error("{message}")]
    RateLimited { message: String, retry_after_s: u64 },
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Forecast(#[from] ForecastError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(code: &'static str, field: Option<&str>, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            code,
            field: field.map(String::from),
            message: message.into(),
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            ServiceError::Invalid { .. } => ErrorClass::BadRequest,
            ServiceError::NotFound { .. } | ServiceError::AliasNotFound { .. } => {
                ErrorClass::NotFound
            }
            ServiceError::Conflict(_) | ServiceError::VersionArchived { .. } => {
                ErrorClass::Conflict
            }
            ServiceError::MethodNotAllowed { .. } => ErrorClass::MethodNotAllowed,
            ServiceError::Unauthenticated(_) => ErrorClass::Unauthenticated,
            ServiceError::Forbidden { .. } => ErrorClass::Forbidden,
            ServiceError::KeyExpired { .. } => ErrorClass::Unauthenticated,
            ServiceError::OutOfScope { .. } => ErrorClass::Forbidden,
            ServiceError::KeyRateLimited { .. } => ErrorClass::TooManyRequests,
            ServiceError::PayloadTooLarge { .. } => ErrorClass::PayloadTooLarge,
            ServiceError::Timeout { .. } => ErrorClass::Timeout,
            ServiceError::Unavailable(_) => ErrorClass::Unavailable,
            ServiceError::RateLimited { .. } => ErrorClass::TooManyRequests,
            ServiceError::Data(e) => {
                if e.is_user_error() {
                    ErrorClass::BadRequest
                } else {
                    ErrorClass::Internal
                }
            }
            ServiceError::Model(e) => {
                if e.is_user_error() {
                    ErrorClass::BadRequest
                } else {
                    ErrorClass::Internal
                }
            }
            ServiceError::Registry(e) => registry_class(e),
            ServiceError::Audit(_) => ErrorClass::Internal,
            ServiceError::Forecast(e) => {
                if e.is_user_error() {
                    ErrorClass::BadRequest
                } else {
                    ErrorClass::Internal
                }
            }
            ServiceError::Internal(_) => ErrorClass::Internal,
        }
    }

    /// A stable snake_case machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Invalid { code, .. } => code,
            ServiceError::NotFound { resource, .. } => match *resource {
                "model" => "model_not_found",
                "version" => "version_not_found",
                "alias" => "alias_not_found",
                "dataset" => "dataset_not_found",
                "job" => "job_not_found",
                "key" => "key_not_found",
                "report" => "report_not_found",
                "route" => "route_not_found",
                "flow" => "flow_not_found",
                _ => "not_found",
            },
            ServiceError::AliasNotFound { .. } => "alias_not_found",
            ServiceError::Conflict(_) => "conflict",
            ServiceError::VersionArchived { .. } => "version_archived",
            ServiceError::MethodNotAllowed { .. } => "method_not_allowed",
            ServiceError::Unauthenticated(_) => "unauthenticated",
            ServiceError::Forbidden { .. } => "forbidden",
            ServiceError::KeyExpired { .. } => "key_expired",
            ServiceError::OutOfScope { .. } => "key_out_of_scope",
            ServiceError::KeyRateLimited { .. } => "key_rate_limited",
            ServiceError::PayloadTooLarge { .. } => "payload_too_large",
            ServiceError::Timeout { .. } => "request_timeout",
            ServiceError::Unavailable(_) => "unavailable",
            ServiceError::RateLimited { .. } => "too_many_requests",
            ServiceError::Data(e) => e.code(),
            ServiceError::Model(e) => e.code(),
            ServiceError::Registry(e) => e.code(),
            ServiceError::Audit(_) => "audit_error",
            ServiceError::Forecast(e) => e.code(),
            ServiceError::Internal(_) => "internal",
        }
    }

    /// Seconds a caller should wait before retrying, for errors that say so.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            ServiceError::RateLimited { retry_after_s, .. } => Some(*retry_after_s),
            ServiceError::KeyRateLimited { .. } => Some(1),
            _ => None,
        }
    }

    /// The field the error is about, when there is one: the request's field, a training
    /// parameter as `params.<name>`, the feature a value was refused for, or `target`.
    pub fn field(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match self {
            ServiceError::Invalid { field, .. } => field.as_deref().map(Cow::Borrowed),
            ServiceError::Model(e) => match e {
                ModelError::UnknownParam { name, .. } | ModelError::InvalidParam { name, .. } => {
                    Some(Cow::Owned(format!("params.{name}")))
                }
                ModelError::InvalidInput { feature, .. } => Some(Cow::Borrowed(feature)),
                ModelError::InvalidTarget { .. } => Some(Cow::Borrowed("target")),
                _ => None,
            },
            ServiceError::Data(e) => match e {
                DataError::MissingTarget { .. }
                | DataError::NonBinaryTarget { .. }
                | DataError::SingleClass { .. }
                | DataError::NonNumericTarget { .. }
                | DataError::TooManyClasses { .. } => Some(Cow::Borrowed("target")),
                DataError::UnknownLabel { .. } => Some(Cow::Borrowed("positive_label")),
                // The request's field that named a column the data does not have.
                DataError::UnknownColumn { context, .. } => match *context {
                    "target" => Some(Cow::Borrowed("target")),
                    "type override" => Some(Cow::Borrowed("types")),
                    "date format" => Some(Cow::Borrowed("date_format")),
                    _ => None,
                },
                DataError::InvalidDateFormat { .. } => Some(Cow::Borrowed("date_format")),
                // The file's own column: what a caller fixes in the file.
                DataError::DuplicateHeader { name, .. } => Some(Cow::Borrowed(name)),
                DataError::BadValue { column, .. }
                | DataError::InvalidUtf8 { column, .. }
                | DataError::UnsupportedType { column, .. } => {
                    column.name.as_deref().map(Cow::Borrowed)
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// The message a caller may see: the error text for caller errors, a generic text for ours.
    pub fn public_message(&self) -> String {
        match self.class() {
            ErrorClass::Internal => match self {
                ServiceError::Registry(RegistryError::ArtifactCorrupt { .. }) => {
                    "the model artifact failed its integrity check and was not served".into()
                }
                ServiceError::Registry(RegistryError::ArtifactDecrypt { .. }) => {
                    "a stored artifact cannot be decrypted with the configured keys; see the server log"
                        .into()
                }
                // The version's own defect: its owner needs the words to fix the import.
                ServiceError::Model(e @ ModelError::BadOutput { .. }) => e.to_string(),
                _ => "internal error".into(),
            },
            _ => self.to_string(),
        }
    }
}

/// How each registry failure is answered. Exhaustive: a new variant must be classified here.
fn registry_class(e: &RegistryError) -> ErrorClass {
    match e {
        RegistryError::NotFound { .. } => ErrorClass::NotFound,
        RegistryError::Conflict(_)
        | RegistryError::InvalidTransition { .. }
        | RegistryError::ArchivedVersion { .. } => ErrorClass::Conflict,
        RegistryError::InvalidName { .. } | RegistryError::InvalidInput(_) => {
            ErrorClass::BadRequest
        }
        RegistryError::InvalidArtifactKey { .. }
        | RegistryError::ArtifactCorrupt { .. }
        | RegistryError::CorruptRecord(_)
        | RegistryError::Database(_)
        | RegistryError::Migration(_)
        | RegistryError::Io(_)
        | RegistryError::ArtifactDecrypt { .. }
        | RegistryError::Internal(_) => ErrorClass::Internal,
    }
}
