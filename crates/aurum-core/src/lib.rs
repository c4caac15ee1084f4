//! Domain types shared by every aurum crate.
//!
//! This crate is the vocabulary of the platform: column types and schemas, cell values, an in-memory
//! columnar [`Table`], model kinds and parameters, predictions and explanations, metrics, and the
//! small cooperative primitives ([`CancelToken`], [`Progress`]) long-running work reports through.
//!
//! Why a separate crate: every layer above (ingest, models, registry, service, server) speaks these
//! types, and none of them may pull IO, async or HTTP into the others. `aurum-core` therefore has no
//! IO, no async runtime and no wire format. Types derive `serde` only where they are *stored*
//! (artifact manifests, registry rows); the HTTP server has its own wire structs.

mod cancel;
mod hash;
mod model;
mod prediction;
mod schema;
mod table;
mod value;

pub use cancel::{CancelToken, NoProgress, Progress};
pub use hash::{Sha256Hex, sha256_hex};
pub use model::{FamilyName, InvalidFamilyName, Params, Task};
pub use prediction::{
    BinaryTarget, ClassTarget, Contribution, Explanation, Metrics, NumericTarget, Prediction,
    Target,
};
pub use schema::{ColumnType, Field, Schema, SchemaError, validate_name};
pub use table::{Column, ColumnData, Table, TableError};
pub use value::Value;

/// The aurum version string recorded in artifacts, registry rows and audit records.
pub const AURUM_VERSION: &str = env!("CARGO_PKG_VERSION");
