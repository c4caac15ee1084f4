//! TreeSHAP and prediction throughput, old and new side by side in one run, single thread:
//! the libraries' recursion (`contributions_recursive`, what `contributions` did before the
//! tables) against the per-leaf tables (`contributions`, one row at a time, and
//! `contributions_batch`), next to the evaluator (`predict_batch`, `predict`). Also checks that
//! both give the same values on every row measured.
//!
//! ```text
//! cargo run --release -p aurum-trees --example shap_speed [-- extra-lightgbm-model.txt ...]
//! ```
//!
//! Models: the fixtures (LightGBM 200 trees × 15 leaves, XGBoost 200 trees of depth 4, and the
//! German-credit LightGBM and XGBoost models), plus any LightGBM text model named on the command
//! line (for example the serving benchmark's `model.txt`, 200 trees × 31 leaves). Rows are
//! random in the fixtures' range with 5 % missing, so about half of every tree's splits go each
//! way, as for real applicants.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use aurum_trees::TreeModel;

fn rows(n_rows: usize, n_features: usize) -> Vec<f64> {
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

/// Rows per second of `f` over `n` rows: the best of `repeats` timed runs.
fn rate(n: usize, repeats: usize, mut f: impl FnMut() -> f64) -> (f64, f64) {
    let mut best = f64::INFINITY;
    let mut check = 0.0;
    for _ in 0..repeats {
        let start = Instant::now();
        check += f();
        best = best.min(start.elapsed().as_secs_f64());
    }
    (n as f64 / best, check)
}

fn bench(name: &str, model: &TreeModel) {
    let p = model.n_features();
    let start = Instant::now();
    let table_bytes = model.prepare_contributions();
    let build_ms = start.elapsed().as_secs_f64() * 1e3;

    let n_predict = 100_000;
    let data = rows(n_predict, p);
    let mut out = vec![0.0; n_predict];
    let (batch_rate, _) = rate(n_predict, 5, || {
        model.predict_batch(&data, p, &mut out).unwrap();
        out.iter().sum()
    });
    let (predict_rate, _) = rate(20_000, 3, || {
        data.chunks_exact(p)
            .take(20_000)
            .map(|r| model.predict(r).unwrap())
            .sum()
    });

    let n_old = 500;
    let n_new = 10_000;
    let (old_rate, _) = rate(n_old, 3, || {
        data.chunks_exact(p)
            .take(n_old)
            .map(|r| model.contributions_recursive(r).unwrap()[0])
            .sum()
    });
    let (new_rate, _) = rate(n_new, 3, || {
        data.chunks_exact(p)
            .take(n_new)
            .map(|r| model.contributions(r).unwrap()[0])
            .sum()
    });
    let mut phi = vec![0.0; 256 * (p + 1)];
    let (batch_shap_rate, _) = rate(n_new, 3, || {
        let mut s = 0.0;
        for block in data[..n_new * p].chunks(256 * p) {
            let phi = &mut phi[..block.len() / p * (p + 1)];
            model.contributions_batch(block, p, phi).unwrap();
            s += phi[0];
        }
        s
    });

    // Same values: the largest difference over the rows the old path explained.
    let mut max_diff = 0.0_f64;
    for r in data.chunks_exact(p).take(n_old) {
        let old = model.contributions_recursive(r).unwrap();
        let new = model.contributions(r).unwrap();
        for (a, b) in old.iter().zip(&new) {
            max_diff = max_diff.max((a - b).abs());
        }
    }

    println!(
        "| {name} | {} × {p} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1}× | {:.1}× | {:.2} | {:.0} KiB, {:.1} ms | {max_diff:.1e} |",
        model.n_trees(),
        batch_rate,
        predict_rate,
        old_rate,
        new_rate,
        batch_shap_rate,
        new_rate / old_rate,
        batch_shap_rate / old_rate,
        batch_shap_rate / batch_rate,
        table_bytes as f64 / 1024.0,
        build_ms,
    );
}

fn main() {
    println!(
        "| model | trees × features | predict_batch rows/s | predict rows/s | SHAP old (recursion) rows/s | SHAP new (tables) rows/s | SHAP new batch rows/s | new/old | batch/old | SHAP batch / predict_batch | tables, build | max |old − new| |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
    for name in ["lgb_binary", "lgb_german"] {
        let text = std::fs::read_to_string(format!("{dir}{name}.txt")).unwrap();
        bench(name, &TreeModel::from_lightgbm_text(&text).unwrap());
    }
    for name in ["xgb_binary", "xgb_german"] {
        let bytes = std::fs::read(format!("{dir}{name}.json")).unwrap();
        bench(name, &TreeModel::from_xgboost_json(&bytes).unwrap());
    }
    for path in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        bench(&path, &TreeModel::from_lightgbm_text(&text).unwrap());
    }
}
