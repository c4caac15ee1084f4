//! The one error type of this crate, split by who is at fault.
//!
//! Model files come from outside (a data scientist's LightGBM or XGBoost run), so every parse
//! error names where the problem is — a line and field of a LightGBM text model, a JSON path of an
//! XGBoost model — and never panics. [`TreeError::code`] gives a stable snake_case machine code
//! and [`TreeError::is_user_error`] says whether the caller can fix it.

/// Everything that can go wrong while loading, storing or evaluating a tree model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    // ---- the caller's fault -------------------------------------------------------------
    /// The model file is malformed. `location` is a line and field (LightGBM text) or a JSON
    /// path (XGBoost JSON).
    #[error("invalid {format} model at {location}: {reason}")]
    Parse {
        format: &'static str,
        location: String,
        reason: String,
    },

    /// The model file is well formed but uses something this crate does not evaluate
    /// (multiclass, linear trees, DART, an objective without a known link...).
    #[error("unsupported {format} model: {what}")]
    Unsupported { format: &'static str, what: String },

    /// A prediction row does not have one value per model feature.
    #[error("row has {got} values but the model takes {expected} features")]
    RowLength { expected: usize, got: usize },

    /// The buffers handed to a batch prediction do not describe whole rows.
    #[error("invalid batch: {reason}")]
    BatchShape { reason: String },

    // ---- stored artifacts ---------------------------------------------------------------
    /// The stored model was written by a newer (or unknown) format version.
    #[error(
        "stored tree model format version {found} is not supported (this aurum reads {supported})"
    )]
    UnsupportedFormatVersion { found: u64, supported: u32 },

    /// The stored bytes are not a readable tree model.
    #[error("invalid stored tree model: {reason}")]
    InvalidStored { reason: String },

    // ---- our own failure ----------------------------------------------------------------
    /// The model could not be serialised.
    #[error("could not serialise the tree model: {reason}")]
    Serialization { reason: String },
}

impl TreeError {
    /// A stable snake_case machine code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            TreeError::Parse { .. } => "invalid_tree_model",
            TreeError::Unsupported { .. } => "unsupported_tree_model",
            TreeError::RowLength { .. } => "row_length_mismatch",
            TreeError::BatchShape { .. } => "invalid_batch",
            TreeError::UnsupportedFormatVersion { .. } => "unsupported_format_version",
            TreeError::InvalidStored { .. } => "invalid_artifact",
            TreeError::Serialization { .. } => "serialization_failed",
        }
    }

    /// Whether the caller can fix this by changing what it sent.
    ///
    /// Stored-model errors are *not* the caller's fault: stored models are read back from our own
    /// artifact store, so a corrupt one is our failure.
    pub fn is_user_error(&self) -> bool {
        match self {
            TreeError::Parse { .. }
            | TreeError::Unsupported { .. }
            | TreeError::RowLength { .. }
            | TreeError::BatchShape { .. } => true,
            TreeError::UnsupportedFormatVersion { .. }
            | TreeError::InvalidStored { .. }
            | TreeError::Serialization { .. } => false,
        }
    }
}
