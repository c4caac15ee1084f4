//! PostgreSQL backends for aurum replicas that share one database: the audit log's
//! [`PgAuditStore`] (one hash chain written by every replica).
//!
//! Why a crate of its own: the PostgreSQL driver is only built into binaries that are asked to
//! scale out, and the core crates never learn which database sits under the traits they use
//! (`aurum_registry::audit::AuditStore`).

mod audit;

pub use audit::PgAuditStore;
