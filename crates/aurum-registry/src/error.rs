//! The registry's one error type.
//!
//! Variants are split by who is at fault: the caller's input ([`RegistryError::is_user_error`] is
//! `true`: unknown names, conflicts, illegal transitions, invalid names) or our own failure (the
//! database, the disk, a corrupt artifact or row). Every variant has a stable snake_case
//! [`RegistryError::code`] that the server maps to an HTTP status and a gRPC code in one place;
//! messages name the resource but never carry internal details such as SQL text.

use std::fmt;

use crate::metadata::JobState;

/// Shorthand for results in this crate.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// The kind of resource a [`RegistryError::NotFound`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entity {
    Model,
    Version,
    Dataset,
    Job,
    Key,
    Alias,
    Artifact,
}

impl Entity {
    /// The lowercase noun used in messages (`"model"`, `"version"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Model => "model",
            Entity::Version => "version",
            Entity::Dataset => "dataset",
            Entity::Job => "job",
            Entity::Key => "key",
            Entity::Alias => "alias",
            Entity::Artifact => "artifact",
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in the metadata store or the artifact store.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The named resource does not exist. For versions the name is `model@vN`, for aliases
    /// `model@alias`.
    #[error("{kind} `{name}` not found")]
    NotFound { kind: Entity, name: String },

    /// The request contradicts what is stored (a duplicate name, a different hash under the same
    /// name, archiving an aliased version).
    #[error("{0}")]
    Conflict(String),

    /// A training job cannot move from its current state to the requested one.
    #[error("job `{id}` cannot go from {from} to {to}")]
    InvalidTransition {
        id: String,
        from: JobState,
        to: JobState,
    },

    /// A user-chosen name (dataset, model, alias, key) is malformed.
    #[error("invalid name `{name}`: {reason}")]
    InvalidName { name: String, reason: String },

    /// An artifact key is not a safe relative path.
    #[error("invalid artifact key `{key}`: {reason}")]
    InvalidArtifactKey { key: String, reason: &'static str },

    /// A field other than a name is malformed (a hash that is not hex, a progress outside 0..=1).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// Archived versions cannot receive an alias.
    #[error("version {version} of model `{model}` is archived")]
    ArchivedVersion { model: String, version: u32 },

    /// The stored artifact's SHA-256 differs from the one recorded for it: it was corrupted or
    /// tampered with, and its bytes are not returned.
    #[error("artifact `{key}` is corrupt: expected sha256 {expected}, found {actual}")]
    ArtifactCorrupt {
        key: String,
        expected: String,
        actual: String,
    },

    /// A stored row holds a value this build cannot read (an unknown state, a bad timestamp).
    #[error("corrupt registry record: {0}")]
    CorruptRecord(String),

    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),

    /// A filesystem error; produced through `fs_err`, so the message names the path.
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),

    /// An encrypted artifact that none of the configured keys can open: its key id is not
    /// configured, or the key under that id is not the one it was written with.
    #[error("artifact `{key}` cannot be decrypted: {reason}")]
    ArtifactDecrypt { key: String, reason: String },

    /// A failure with no better home: a blocking task that panicked, a hashing library error.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RegistryError {
    pub(crate) fn not_found(kind: Entity, name: impl Into<String>) -> Self {
        RegistryError::NotFound {
            kind,
            name: name.into(),
        }
    }

    /// A stable machine-readable code, part of the public API (clients match on it).
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::NotFound { kind, .. } => match kind {
                Entity::Model => "model_not_found",
                Entity::Version => "version_not_found",
                Entity::Dataset => "dataset_not_found",
                Entity::Job => "job_not_found",
                Entity::Key => "key_not_found",
                Entity::Alias => "alias_not_found",
                Entity::Artifact => "artifact_not_found",
            },
            RegistryError::Conflict(_) => "conflict",
            RegistryError::InvalidTransition { .. } => "invalid_job_transition",
            RegistryError::InvalidName { .. } => "invalid_name",
            RegistryError::InvalidArtifactKey { .. } => "invalid_artifact_key",
            RegistryError::InvalidInput(_) => "invalid_input",
            RegistryError::ArchivedVersion { .. } => "version_archived",
            RegistryError::ArtifactCorrupt { .. } => "artifact_corrupt",
            RegistryError::CorruptRecord(_) => "corrupt_record",
            RegistryError::Database(_) => "database_error",
            RegistryError::Migration(_) => "migration_error",
            RegistryError::Io(_) => "io_error",
            RegistryError::ArtifactDecrypt { .. } => "artifact_decrypt_failed",
            RegistryError::Internal(_) => "internal_error",
        }
    }

    /// Whether the caller's request is at fault (4xx) rather than the registry (5xx).
    pub fn is_user_error(&self) -> bool {
        match self {
            RegistryError::NotFound { .. }
            | RegistryError::Conflict(_)
            | RegistryError::InvalidTransition { .. }
            | RegistryError::InvalidName { .. }
            | RegistryError::InvalidArtifactKey { .. }
            | RegistryError::InvalidInput(_)
            | RegistryError::ArchivedVersion { .. } => true,
            RegistryError::ArtifactCorrupt { .. }
            | RegistryError::CorruptRecord(_)
            | RegistryError::Database(_)
            | RegistryError::Migration(_)
            | RegistryError::Io(_)
            | RegistryError::ArtifactDecrypt { .. }
            | RegistryError::Internal(_) => false,
        }
    }
}

/// Validates a user-chosen name with [`aurum_core::validate_name`].
pub fn check_name(name: &str) -> Result<()> {
    aurum_core::validate_name(name).map_err(|e| match e {
        aurum_core::SchemaError::InvalidName { name, reason } => RegistryError::InvalidName {
            name,
            reason: reason.to_string(),
        },
        other => RegistryError::InvalidName {
            name: name.to_string(),
            reason: other.to_string(),
        },
    })
}

/// Validates a lowercase hex SHA-256 digest.
pub fn check_sha256(what: &str, value: &str) -> Result<()> {
    if value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        Ok(())
    } else {
        Err(RegistryError::InvalidInput(format!(
            "{what} must be 64 lowercase hex characters (a SHA-256 digest), got `{value}`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_and_user_errors_are_classified() {
        let e = RegistryError::not_found(Entity::Version, "m@v3");
        assert_eq!(e.code(), "version_not_found");
        assert!(e.is_user_error());
        assert_eq!(e.to_string(), "version `m@v3` not found");
        let e = RegistryError::ArtifactCorrupt {
            key: "k".into(),
            expected: "a".into(),
            actual: "b".into(),
        };
        assert_eq!(e.code(), "artifact_corrupt");
        assert!(!e.is_user_error());
    }

    #[test]
    fn names_and_hashes_are_checked() {
        assert!(check_name("credit-v1").is_ok());
        let err = check_name("../x").unwrap_err();
        assert_eq!(err.code(), "invalid_name");
        assert!(check_sha256("sha", &"a".repeat(64)).is_ok());
        assert!(check_sha256("sha", &"A".repeat(64)).is_err());
        assert!(check_sha256("sha", "abc").is_err());
    }
}
