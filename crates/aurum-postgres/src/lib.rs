//! The registry and the audit log on PostgreSQL, for several aurum replicas sharing one
//! database: [`PgStore`], an implementation of [`aurum_registry::MetadataStore`], and
//! [`PgAuditStore`], an implementation of [`aurum_registry::audit::AuditStore`] (one hash chain
//! written by every replica).
//!
//! Why a separate crate: the PostgreSQL driver, its TLS stack and its migrations are only needed
//! by deployments that run more than one replica; `aurum-registry` stays SQLite-only and every
//! caller keeps holding an `Arc<dyn MetadataStore>` and an `Arc<dyn AuditStore>`. Records,
//! errors and messages are those of [`aurum_registry::SqliteStore`]: both backends pass the same
//! behaviour suite (`aurum_registry::testing`).

mod audit;
mod metadata;

pub use audit::{PgAuditStore, SCHEMA as AUDIT_SCHEMA};
pub use metadata::{CHANGES_CHANNEL, PgStore};
