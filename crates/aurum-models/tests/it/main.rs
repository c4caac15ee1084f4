//! Integration tests of `aurum-models`: one test binary, one module per concern.

mod artifact_fuzz;
mod binning;
mod credit;
mod german_credit;
mod imported;
mod report;
