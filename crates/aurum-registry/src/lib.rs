//! Model registry, artifact store, API keys, training-job records and the hash-chained audit log,
//! over SQLite and local disk here; the PostgreSQL and object-store implementations of the same
//! traits live in `aurum-postgres` and `aurum-objstore`.
//!
//! Why this crate exists: everything aurum must remember between restarts lives here, behind two
//! object-safe traits, so that the service layer composes `Arc<dyn MetadataStore>` and
//! `Arc<dyn ArtifactStore>` and never learns which database or disk sits underneath.
//!
//! - [`MetadataStore`]: datasets, registered models and their numbered versions,
//!   aliases (`champion`, `challenger`, ...) with a move history, training jobs and API keys.
//!   Implemented by [`SqliteStore`] here and by `PgStore` in `aurum-postgres`.
//! - [`ArtifactStore`]: model bytes by key, written atomically and read back through
//!   [`get_verified`], which refuses bytes whose SHA-256 differs from the registered
//!   one. Implemented by [`LocalArtifactStore`].
//! - [`audit`]: the append-only, hash-chained audit log.
//! - [`backend`]: validation, key material and timestamp format shared with metadata stores
//!   implemented in other crates (PostgreSQL), so that every backend returns identical records.
//! - `testing` (cargo feature `testing`): the behaviour suite every [`MetadataStore`] must pass,
//!   run against each backend by its own tests.
//!
//! The public API is flat: every type is re-exported here and the modules stay private.
//!
//! The crate knows nothing about HTTP or wire formats: records are plain Rust types without
//! `Serialize`, and errors carry a stable [`RegistryError::code`] for the server to map.

mod artifact;
pub mod atomic_file;
pub mod audit;
pub mod backend;
pub mod encrypted;
mod error;
mod keys;
mod metadata;
mod private_file;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use artifact::{ArtifactStore, LocalArtifactStore, MAX_KEY_LEN, get_verified, validate_key};
pub use encrypted::{EncryptedArtifactStore, EncryptionKeys};
pub use error::{Entity, RegistryError, Result};
pub use keys::{StoredKeyHash, digests_equal, key_digest, parse_key_id, verify_argon2};
pub use metadata::{
    AliasHistoryRecord, AliasMove, AliasRecord, ConsoleSessionRecord, DatasetRecord,
    DriftCountsRecord, INTERRUPTED_AFTER_REGISTRATION, INTERRUPTED_JOB_ERROR, JobRecord, JobState,
    KeyCredential, KeyPolicy, KeyRecord, LATEST_KEY_EXPIRY, MetadataStore, ModelRecord, NewDataset,
    NewJob, NewVersion, OutcomeRecord, Role, ShadowRecord, VersionRecord, check_job_open,
    check_not_last_admin,
};
pub use sqlite::{SqliteStore, shadow_path as sqlite_shadow_path};
