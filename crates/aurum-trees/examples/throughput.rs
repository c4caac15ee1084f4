//! Prediction throughput on the 200-tree × 20-feature fixtures (LightGBM 15 leaves, XGBoost depth
//! 4), single thread, plus TreeSHAP per-row latency.
//!
//! ```text
//! cargo run --release -p aurum-trees --example throughput
//! ```
//!
//! A plain `Instant` loop rather than criterion: the figure that matters is rows per second
//! over a large batch, and it keeps the crate free of a benchmark-only dependency tree.
#![allow(clippy::print_stdout)]

use std::time::Instant;

/// This process's CPU time (user + system) in seconds, from /proc (Linux; 10 ms resolution).
/// The build machine is shared, so wall time overstates the cost; both are reported.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of stat(5), counted after the `(comm)` field: indices 11 and 12 here.
    (ticks(11) + ticks(12)) / 100.0
}

use aurum_trees::TreeModel;

fn rows(n_rows: usize, n_features: usize) -> Vec<f64> {
    // Deterministic pseudo-random values in the fixtures' range, ~5 % NaN.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..n_rows * n_features)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            if u < 0.05 { f64::NAN } else { (u - 0.5) * 8.0 }
        })
        .collect()
}

fn bench(name: &str, model: &TreeModel) {
    let n_features = model.n_features();
    let n_rows = 200_000;
    let data = rows(n_rows, n_features);
    let mut out = vec![0.0; n_rows];
    model.predict_batch(&data, n_features, &mut out).unwrap(); // warm up
    let mut best = f64::INFINITY;
    let cpu0 = cpu_seconds();
    let runs = 10;
    for _ in 0..runs {
        let start = Instant::now();
        model.predict_batch(&data, n_features, &mut out).unwrap();
        best = best.min(start.elapsed().as_secs_f64());
    }
    let cpu = (cpu_seconds() - cpu0) / runs as f64;
    let checksum: f64 = out.iter().sum();

    let start = Instant::now();
    let mut row_sum = 0.0;
    for row in data.chunks_exact(n_features).take(20_000) {
        row_sum += model.predict(row).unwrap();
    }
    let per_row = start.elapsed().as_secs_f64() / 20_000.0;

    // One row through the batch entry point (what a single-row request runs).
    let start = Instant::now();
    let mut one = [0.0];
    let mut batch1_sum = 0.0;
    for row in data.chunks_exact(n_features).take(20_000) {
        model.predict_batch(row, n_features, &mut one).unwrap();
        batch1_sum += one[0];
    }
    let per_batch1 = start.elapsed().as_secs_f64() / 20_000.0;

    let start = Instant::now();
    let mut phi_sum = 0.0;
    for row in data.chunks_exact(n_features).take(2_000) {
        phi_sum += model.contributions(row).unwrap()[0];
    }
    let shap = start.elapsed().as_secs_f64() / 2_000.0;
    println!(
        "{name}: {} trees x {n_features} features: predict_batch {:.2} M rows/s per core by CPU time \
         ({:.0} ns/row), {:.2} M rows/s best wall ({:.0} ns/row); \
         predict (one row) {:.0} ns; predict_batch of one row {:.0} ns; contributions {:.1} µs/row  [checksums {checksum:.3} {row_sum:.3} {batch1_sum:.3} {phi_sum:.3}]",
        model.n_trees(),
        n_rows as f64 / cpu / 1e6,
        cpu / n_rows as f64 * 1e9,
        n_rows as f64 / best / 1e6,
        best / n_rows as f64 * 1e9,
        per_row * 1e9,
        per_batch1 * 1e9,
        shap * 1e6,
    );
}

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
    let lgb = std::fs::read_to_string(format!("{dir}lgb_binary.txt")).unwrap();
    bench("lightgbm", &TreeModel::from_lightgbm_text(&lgb).unwrap());
    let xgb = std::fs::read(format!("{dir}xgb_binary.json")).unwrap();
    bench("xgboost", &TreeModel::from_xgboost_json(&xgb).unwrap());
}
