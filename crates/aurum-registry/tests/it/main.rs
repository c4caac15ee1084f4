//! Integration tests for aurum-registry: one test binary, one module per area.

mod audit;
mod store;
