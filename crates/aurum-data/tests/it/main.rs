//! Integration tests for `aurum-data`, as one test binary (one link instead of one per file).
//!
//! `german_credit` checks the crate against the real demo dataset with known answers;
//! `csv_errors` pins the line and column every bad-file error names; `parquet` writes files with
//! the Arrow writer and reads them back; `roundtrip` and `splits` are property tests.

mod csv_errors;
mod german_credit;
mod parquet;
mod roundtrip;
mod splits;
