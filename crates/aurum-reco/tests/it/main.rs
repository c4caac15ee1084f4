//! Integration tests for aurum-reco: one binary, one module per concern.

mod cold_start;
mod common;
mod evaluation;
mod filters;
mod reproducibility;
