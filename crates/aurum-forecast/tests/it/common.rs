//! Shared helpers: the bundled data sets and fixtures.

use std::path::PathBuf;

use aurum_forecast::{CsvOptions, Series, TimeColumn, read_csv};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn data(name: &str) -> Vec<u8> {
    let path = repo_root().join("data/timeseries").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// A column of a bundled CSV as one series.
pub fn series(file: &str, column: &str) -> Series {
    let opts = CsvOptions {
        time: TimeColumn::First,
        value_columns: vec![column.to_string()],
        ..CsvOptions::default()
    };
    read_csv(&data(file), &opts)
        .expect("bundled data parses")
        .remove(0)
        .series
}

pub fn airline() -> Vec<f64> {
    series("airline_passengers.csv", "Passengers").values
}

pub fn log_airline() -> Vec<f64> {
    airline().iter().map(|v| v.ln()).collect()
}

pub fn consumption() -> Vec<f64> {
    series("us_change.csv", "Consumption").values
}

pub fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().expect("number")
}

pub fn fvec(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(f).collect()
}

pub fn assert_rel(name: &str, got: f64, want: f64, tol: f64) {
    let rel = (got - want).abs() / want.abs().max(1e-12);
    assert!(
        rel <= tol,
        "{name}: aurum {got:.10} vs reference {want:.10} (relative difference {rel:.2e} > {tol:.0e})"
    );
}
