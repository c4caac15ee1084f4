//! One error type for the crate, split by who is at fault.
//!
//! Every variant has a stable machine code ([`FraudError::code`]) so that the service layer can
//! map it to a status without matching on messages, and every message names the field, the
//! feature or the file it is about. Input problems (`is_user_error`) are the caller's; IO and
//! corruption are ours or the disk's.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FraudError {
    /// The spec text is not valid TOML/JSON or has an unknown or mistyped key.
    #[error("feature spec: {0}")]
    SpecSyntax(String),
    /// The spec parsed but one field is wrong; `field` is a path such as `features[3].window`.
    #[error("{field}: {message}")]
    InvalidSpec { field: String, message: String },
    /// An event lacks a field the schema requires.
    #[error("event field `{field}` is missing")]
    MissingField { field: String },
    /// An event field has a value of the wrong type or out of range.
    #[error("event field `{field}`: {message}")]
    InvalidField { field: String, message: String },
    /// An event has a field the schema does not declare.
    #[error(
        "event field `{field}` is not in the schema (declare it under schema.ignore to accept it)"
    )]
    UnknownField { field: String },
    /// The event is older than the latest applied event by more than the tolerance.
    #[error(
        "event field `{field}`: timestamp {timestamp} is {behind_s} s before the latest applied event ({watermark}); the tolerance is {tolerance_s} s"
    )]
    OutOfOrder {
        field: String,
        timestamp: i64,
        watermark: i64,
        behind_s: i64,
        tolerance_s: i64,
    },
    /// The event id was already applied (within the state horizon).
    #[error("event field `{field}`: event id `{id}` was already applied")]
    DuplicateEvent { field: String, id: String },
    /// An event or label was built for a different spec (wrong number of entity keys).
    #[error("event does not match the engine's spec: {0}")]
    SpecMismatch(String),
    /// A model or rule set was given bad parameters or data; `field` names which.
    #[error("{field}: {message}")]
    InvalidInput { field: String, message: String },
    /// The durable state directory cannot be used as it is.
    #[error("state in {}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    /// Another engine (in this process or another) holds the state directory: a directory has
    /// one writer at a time.
    #[error("the state in {} is open in another engine or process; a state directory has one writer", path.display())]
    InUse { path: PathBuf },
    /// A previous write failed after the in-memory state moved; recover from the directory.
    #[error("the engine's durable log failed earlier; recover it from its directory")]
    Poisoned,
    /// The shared state store cannot be reached or did not answer in time (retry later).
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    /// Concurrent writers kept changing the same entities; the call changed nothing.
    #[error("state store: {0}")]
    Contended(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl FraudError {
    /// A stable machine code per variant.
    pub fn code(&self) -> &'static str {
        match self {
            FraudError::SpecSyntax(_) => "fraud_spec_syntax",
            FraudError::InvalidSpec { .. } => "fraud_invalid_spec",
            FraudError::MissingField { .. } => "fraud_missing_field",
            FraudError::InvalidField { .. } => "fraud_invalid_field",
            FraudError::UnknownField { .. } => "fraud_unknown_field",
            FraudError::OutOfOrder { .. } => "fraud_out_of_order",
            FraudError::DuplicateEvent { .. } => "fraud_duplicate_event",
            FraudError::SpecMismatch(_) => "fraud_spec_mismatch",
            FraudError::InvalidInput { .. } => "fraud_invalid_input",
            FraudError::Corrupt { .. } => "fraud_state_corrupt",
            FraudError::InUse { .. } => "fraud_state_in_use",
            FraudError::Poisoned => "fraud_engine_poisoned",
            FraudError::Unavailable(_) => "fraud_state_unavailable",
            FraudError::Contended(_) => "fraud_state_contended",
            FraudError::Io(_) => "fraud_io",
        }
    }

    /// Whether the caller's input caused the error (as opposed to IO or damaged state).
    pub fn is_user_error(&self) -> bool {
        match self {
            FraudError::SpecSyntax(_)
            | FraudError::InvalidSpec { .. }
            | FraudError::MissingField { .. }
            | FraudError::InvalidField { .. }
            | FraudError::UnknownField { .. }
            | FraudError::OutOfOrder { .. }
            | FraudError::DuplicateEvent { .. }
            | FraudError::SpecMismatch(_)
            | FraudError::InvalidInput { .. } => true,
            FraudError::Corrupt { .. }
            | FraudError::InUse { .. }
            | FraudError::Poisoned
            | FraudError::Unavailable(_)
            | FraudError::Contended(_)
            | FraudError::Io(_) => false,
        }
    }

    pub(crate) fn spec(field: impl Into<String>, message: impl Into<String>) -> Self {
        FraudError::InvalidSpec {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn input(field: impl Into<String>, message: impl Into<String>) -> Self {
        FraudError::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, FraudError>;
