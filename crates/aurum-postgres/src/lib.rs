//! The registry's metadata store on PostgreSQL: [`PgStore`], an implementation of
//! [`aurum_registry::MetadataStore`] for several aurum replicas sharing one database.
//!
//! Why a separate crate: the PostgreSQL driver, its TLS stack and its migrations are only needed
//! by deployments that run more than one replica; `aurum-registry` stays SQLite-only and every
//! caller keeps holding an `Arc<dyn MetadataStore>`. Records, errors and messages are those of
//! [`aurum_registry::SqliteStore`]: both backends pass the same behaviour suite
//! (`aurum_registry::testing`).

mod metadata;

pub use metadata::{CHANGES_CHANNEL, PgStore};
