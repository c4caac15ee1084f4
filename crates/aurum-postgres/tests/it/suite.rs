//! The shared `MetadataStore` suite (the one the SQLite store passes), on PostgreSQL.

aurum_registry::metadata_store_suite!(super::support::fixture());
