//! Integration tests for aurum-postgres against a real PostgreSQL (`AURUM_TEST_DATABASE_URL`,
//! an admin URL); each test creates and drops its own database, so they run in parallel.

mod audit;
mod postgres;
mod suite;
mod support;
