//! The one error type of this crate, split by who is at fault.
//!
//! Callers (the service layer, the CLI) must decide per error whether to blame the request or
//! themselves, and must show a stable machine code. Every variant therefore answers
//! [`ModelError::code`] (snake_case, never renamed once released) and
//! [`ModelError::is_user_error`]. Messages never carry internal details such as file paths or
//! solver internals; they name the parameter, feature or row the caller can fix.

/// Everything that can go wrong while validating parameters, fitting, predicting, explaining,
/// saving or loading a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    // ---- the caller's fault -------------------------------------------------------------
    /// A training parameter is not one the model family knows.
    #[error("unknown parameter `{name}` for {model} (allowed: {})", allowed.join(", "))]
    UnknownParam {
        model: &'static str,
        name: String,
        allowed: Vec<&'static str>,
    },

    /// A training parameter has a value outside what the family accepts.
    #[error("{}", param_message(name, value, expected))]
    InvalidParam {
        name: String,
        value: String,
        expected: String,
    },

    /// A value the caller sent for one feature cannot be used (wrong type, NaN, infinite...).
    #[error("invalid value for feature `{feature}`{}: {reason}", row_suffix(*row))]
    InvalidInput {
        feature: String,
        row: Option<usize>,
        reason: String,
    },

    /// A prediction row does not have one value per input feature.
    #[error("row{} has {got} values but the model takes {expected} features", row_suffix(*row))]
    RowLength {
        row: Option<usize>,
        expected: usize,
        got: usize,
    },

    /// The target cannot be used with these features (length mismatch, values other than 0/1).
    #[error("invalid target: {reason}")]
    InvalidTarget { reason: String },

    /// Too few rows, or only one class, to fit a model.
    #[error("not enough data to fit a model: {reason}")]
    NotEnoughData { reason: String },

    /// No feature column survived preprocessing (every column was text, a date, or empty).
    #[error("no usable feature columns: {reason}")]
    NoUsableFeatures { reason: String },

    /// The caller cancelled the work through its `CancelToken`.
    #[error("cancelled")]
    Cancelled,

    /// No registered family answers to this name.
    #[error("unknown model family `{name}` (known families: {known})")]
    UnknownFamily { name: String, known: String },

    /// The operation does not apply to models of this task (forecasting a credit model,
    /// scoring rows with a forecaster).
    #[error("{family} is a {task} model: {operation} does not apply to it")]
    WrongTask {
        family: String,
        task: aurum_core::Task,
        operation: &'static str,
    },

    // ---- stored artifacts ---------------------------------------------------------------
    /// The payload does not hash to the SHA-256 recorded in the manifest.
    #[error("artifact is corrupt: payload SHA-256 is {actual} but the manifest records {expected}")]
    ArtifactCorrupt { expected: String, actual: String },

    /// The artifact was written by a newer (or unknown) aurum artifact format.
    #[error("artifact format version {found} is newer than this aurum supports ({supported})")]
    UnsupportedFormatVersion { found: u64, supported: u32 },

    /// The bytes are not a readable aurum artifact (bad magic, truncated, undecodable).
    #[error("invalid artifact: {reason}")]
    InvalidArtifact { reason: String },

    // ---- our own failure ----------------------------------------------------------------
    /// The optimiser produced non-finite numbers.
    #[error("numerical failure while fitting: {reason}")]
    Numerical { reason: String },

    /// A model's output is not what its task promises (an imported graph's "probability"
    /// outside [0, 1]): the version is wrong, not the request. Its message is shown to the
    /// caller, who needs it to fix the import.
    #[error("the model's output `{output}` is invalid: {reason}")]
    BadOutput { output: String, reason: String },

    /// A fitted model could not be serialised.
    #[error("could not serialise the model: {reason}")]
    Serialization { reason: String },
}

fn row_suffix(row: Option<usize>) -> String {
    row.map_or_else(String::new, |r| format!(" (row {r})"))
}

/// `invalid value `v` for parameter `p`: expected …`; without a value (a required parameter,
/// or a family's own sentence about it) `invalid parameter `p`: …`, not an empty quote.
fn param_message(name: &str, value: &str, expected: &str) -> String {
    if value.is_empty() {
        format!("invalid parameter `{name}`: {expected}")
    } else {
        format!("invalid value `{value}` for parameter `{name}`: expected {expected}")
    }
}

impl ModelError {
    /// A stable snake_case machine code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::UnknownParam { .. } => "unknown_param",
            ModelError::InvalidParam { .. } => "invalid_param",
            ModelError::InvalidInput { .. } => "invalid_input",
            ModelError::RowLength { .. } => "row_length_mismatch",
            ModelError::InvalidTarget { .. } => "invalid_target",
            ModelError::NotEnoughData { .. } => "not_enough_data",
            ModelError::NoUsableFeatures { .. } => "no_usable_features",
            ModelError::Cancelled => "cancelled",
            ModelError::UnknownFamily { .. } => "unknown_family",
            ModelError::WrongTask { .. } => "wrong_task",
            ModelError::ArtifactCorrupt { .. } => "artifact_corrupt",
            ModelError::UnsupportedFormatVersion { .. } => "unsupported_format_version",
            ModelError::InvalidArtifact { .. } => "invalid_artifact",
            ModelError::Numerical { .. } => "numerical_failure",
            ModelError::BadOutput { .. } => "model_output_invalid",
            ModelError::Serialization { .. } => "serialization_failed",
        }
    }

    /// Whether the caller can fix this by changing what it sent (parameters, rows, data, or by
    /// not cancelling).
    ///
    /// Artifact errors count as *not* the caller's fault: artifacts are read back from our own
    /// store, so a corrupt one is our failure. A service that imports artifacts uploaded by a user
    /// should map these codes to a client error itself.
    pub fn is_user_error(&self) -> bool {
        match self {
            ModelError::UnknownParam { .. }
            | ModelError::InvalidParam { .. }
            | ModelError::InvalidInput { .. }
            | ModelError::RowLength { .. }
            | ModelError::InvalidTarget { .. }
            | ModelError::NotEnoughData { .. }
            | ModelError::NoUsableFeatures { .. }
            | ModelError::Cancelled
            | ModelError::UnknownFamily { .. }
            | ModelError::WrongTask { .. } => true,
            ModelError::ArtifactCorrupt { .. }
            | ModelError::UnsupportedFormatVersion { .. }
            | ModelError::InvalidArtifact { .. }
            | ModelError::Numerical { .. }
            | ModelError::BadOutput { .. }
            | ModelError::Serialization { .. } => false,
        }
    }

    /// The same error attributed to prediction row `row` (for batch calls).
    pub fn at_row(self, row: usize) -> Self {
        match self {
            ModelError::InvalidInput {
                feature, reason, ..
            } => ModelError::InvalidInput {
                feature,
                row: Some(row),
                reason,
            },
            ModelError::RowLength { expected, got, .. } => ModelError::RowLength {
                row: Some(row),
                expected,
                got,
            },
            other => other,
        }
    }

    pub fn invalid_param(
        name: &str,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        ModelError::InvalidParam {
            name: name.to_string(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    pub fn invalid_artifact(reason: impl Into<String>) -> Self {
        ModelError::InvalidArtifact {
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_of_each() -> Vec<ModelError> {
        vec![
            ModelError::UnknownParam {
                model: "logistic",
                name: "x".into(),
                allowed: vec!["a"],
            },
            ModelError::invalid_param("lambda", "-1", "a number >= 0"),
            ModelError::InvalidInput {
                feature: "age".into(),
                row: None,
                reason: "NaN".into(),
            },
            ModelError::RowLength {
                row: None,
                expected: 2,
                got: 1,
            },
            ModelError::InvalidTarget { reason: "r".into() },
            ModelError::NotEnoughData { reason: "r".into() },
            ModelError::NoUsableFeatures { reason: "r".into() },
            ModelError::Cancelled,
            ModelError::UnknownFamily {
                name: "x".into(),
                known: "gbdt".into(),
            },
            ModelError::WrongTask {
                family: "ets".into(),
                task: aurum_core::Task::Forecast,
                operation: "row scoring",
            },
            ModelError::ArtifactCorrupt {
                expected: "a".into(),
                actual: "b".into(),
            },
            ModelError::UnsupportedFormatVersion {
                found: 7,
                supported: 1,
            },
            ModelError::invalid_artifact("r"),
            ModelError::Numerical { reason: "r".into() },
            ModelError::BadOutput {
                output: "o".into(),
                reason: "r".into(),
            },
            ModelError::Serialization { reason: "r".into() },
        ]
    }

    #[test]
    fn codes_are_unique_snake_case() {
        let errors = one_of_each();
        let mut codes: Vec<_> = errors.iter().map(ModelError::code).collect();
        for c in &codes {
            assert!(
                c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{c}"
            );
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
    }

    #[test]
    fn fault_split() {
        let user: Vec<_> = one_of_each()
            .into_iter()
            .filter(ModelError::is_user_error)
            .map(|e| e.code())
            .collect();
        assert_eq!(
            user,
            [
                "unknown_param",
                "invalid_param",
                "invalid_input",
                "row_length_mismatch",
                "invalid_target",
                "not_enough_data",
                "no_usable_features",
                "cancelled",
                "unknown_family",
                "wrong_task"
            ]
        );
    }

    #[test]
    fn messages_name_what_to_fix() {
        let e = ModelError::UnknownParam {
            model: "logistic",
            name: "lamda".into(),
            allowed: vec!["lambda", "penalty"],
        };
        assert_eq!(
            e.to_string(),
            "unknown parameter `lamda` for logistic (allowed: lambda, penalty)"
        );
        assert_eq!(
            ModelError::invalid_param("lambda", -1, "a positive number").to_string(),
            "invalid value `-1` for parameter `lambda`: expected a positive number"
        );
        // Without a value, no empty quote before a family's own sentence.
        assert_eq!(
            ModelError::invalid_param("max_items", "", "the catalogue has 3 items").to_string(),
            "invalid parameter `max_items`: the catalogue has 3 items"
        );
        let e = ModelError::InvalidInput {
            feature: "age".into(),
            row: None,
            reason: "is NaN".into(),
        }
        .at_row(3);
        assert_eq!(
            e.to_string(),
            "invalid value for feature `age` (row 3): is NaN"
        );
        let e = ModelError::UnsupportedFormatVersion {
            found: 7,
            supported: 1,
        };
        assert_eq!(
            e.to_string(),
            "artifact format version 7 is newer than this aurum supports (1)"
        );
    }
}
