//! One error type for the crate, split by who is at fault.
//!
//! Every variant that comes from the caller's input names where the problem is (the record index
//! and field, the parameter, the unknown ids), so a service can return it unchanged. `code()` is
//! the stable machine code; `is_user_error()` tells the caller's mistakes from our own failures.

use thiserror::Error;

/// How many unknown ids an error message lists before it says "and N more".
const LISTED_IDS: usize = 5;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum RecoError {
    /// A record passed to [`crate::Interactions::build`] is invalid.
    #[error("records[{index}].{field}: {reason}")]
    InvalidRecord {
        index: usize,
        field: &'static str,
        reason: String,
    },
    /// No usable interaction is left (empty input, or every rating below the threshold).
    #[error("no interactions: {0}")]
    NoInteractions(String),
    /// A model, split or metric parameter is out of range.
    #[error("parameter `{name}`: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    /// An attribute table row is invalid.
    #[error("{table}[{index}].{field}: {reason}")]
    InvalidAttribute {
        table: &'static str,
        index: usize,
        field: String,
        reason: String,
    },
    /// Ids that the interactions (or the model) do not know.
    #[error("unknown {kind} id(s) {}", list_ids(.ids))]
    UnknownIds {
        kind: &'static str,
        ids: Vec<String>,
    },
    /// A split needs timestamps that the interactions do not have.
    #[error(
        "user `{user}` has interactions without a timestamp; a time split needs one on every record"
    )]
    MissingTimestamp { user: String },
    /// Train and test (or model and data) were not built over the same id maps.
    #[error("mismatched data: {0}")]
    Mismatch(String),
    /// This model cannot answer this kind of query.
    #[error("{model} cannot {what}")]
    Unsupported {
        model: &'static str,
        what: &'static str,
    },
    /// A stored model could not be read back.
    #[error("bad model artifact: {0}")]
    BadArtifact(String),
    /// The caller's cancel token fired during fitting.
    #[error("fitting was cancelled")]
    Cancelled,
    /// Our own failure (a thread pool could not start, a numeric breakdown).
    #[error("internal error: {0}")]
    Internal(String),
}

fn list_ids(ids: &[String]) -> String {
    let shown: Vec<String> = ids
        .iter()
        .take(LISTED_IDS)
        .map(|id| format!("`{id}`"))
        .collect();
    let more = ids.len().saturating_sub(LISTED_IDS);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

impl RecoError {
    /// A stable machine code per variant.
    pub fn code(&self) -> &'static str {
        match self {
            RecoError::InvalidRecord { .. } => "reco_invalid_record",
            RecoError::NoInteractions(_) => "reco_no_interactions",
            RecoError::InvalidParameter { .. } => "reco_invalid_parameter",
            RecoError::InvalidAttribute { .. } => "reco_invalid_attribute",
            RecoError::UnknownIds { .. } => "reco_unknown_ids",
            RecoError::MissingTimestamp { .. } => "reco_missing_timestamp",
            RecoError::Mismatch(_) => "reco_mismatched_data",
            RecoError::Unsupported { .. } => "reco_unsupported",
            RecoError::BadArtifact(_) => "reco_bad_artifact",
            RecoError::Cancelled => "reco_cancelled",
            RecoError::Internal(_) => "reco_internal",
        }
    }

    /// Whether the caller's input caused the error (as opposed to our own failure).
    pub fn is_user_error(&self) -> bool {
        match self {
            RecoError::InvalidRecord { .. }
            | RecoError::NoInteractions(_)
            | RecoError::InvalidParameter { .. }
            | RecoError::InvalidAttribute { .. }
            | RecoError::UnknownIds { .. }
            | RecoError::MissingTimestamp { .. }
            | RecoError::Mismatch(_)
            | RecoError::Unsupported { .. }
            | RecoError::BadArtifact(_)
            | RecoError::Cancelled => true,
            RecoError::Internal(_) => false,
        }
    }

    pub(crate) fn param(name: &'static str, reason: impl Into<String>) -> Self {
        RecoError::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }
}

/// Checks a parameter that must be finite and inside `[lo, hi]`.
pub(crate) fn check_range(
    name: &'static str,
    value: f32,
    lo: f32,
    hi: f32,
) -> Result<(), RecoError> {
    if value.is_finite() && value >= lo && value <= hi {
        Ok(())
    } else {
        Err(RecoError::param(
            name,
            format!("must be a finite number in [{lo}, {hi}], got {value}"),
        ))
    }
}

/// Checks a count parameter that must be inside `[lo, hi]`.
pub(crate) fn check_count(
    name: &'static str,
    value: usize,
    lo: usize,
    hi: usize,
) -> Result<(), RecoError> {
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(RecoError::param(
            name,
            format!("must be in [{lo}, {hi}], got {value}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_ids_are_listed_with_a_tail() {
        let ids: Vec<String> = (0..7).map(|i| format!("u{i}")).collect();
        let e = RecoError::UnknownIds { kind: "user", ids };
        assert_eq!(
            e.to_string(),
            "unknown user id(s) `u0`, `u1`, `u2`, `u3`, `u4` and 2 more"
        );
        assert_eq!(e.code(), "reco_unknown_ids");
    }

    #[test]
    fn parameter_errors_name_the_parameter() {
        let e = check_range("alpha", f32::NAN, 0.0, 1.0).unwrap_err();
        assert!(e.to_string().starts_with("parameter `alpha`"), "{e}");
        assert!(check_count("factors", 0, 1, 10).is_err());
        assert!(check_count("factors", 10, 1, 10).is_ok());
    }
}
