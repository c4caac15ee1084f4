//! Fits a logistic regression on the German credit demo data and writes its credit report.
//!
//! ```text
//! cargo run -p aurum-models --example credit_report -- target/credit-report.html
//! ```
//!
//! Writes the standalone HTML page to the given path (default `target/credit-report.html`) and
//! the JSON report next to it (same name, `.json`). The split is stratified 70/30 with a seeded
//! ChaCha8 generator, so the report is the same on every run. `scripts/render-report.sh` renders
//! the page with headless Chromium into `docs/report-screenshot.png`.

use std::error::Error;
use std::path::PathBuf;

use aurum_core::{BinaryTarget, CancelToken, Column, ColumnData, NoProgress, Params, Table};
use aurum_credit::FitContext;
use aurum_credit::report::{ModelInfo, ReportInput, SplitInfo, SplitMethod, credit_report, html};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

const CSV_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/demo/german_credit.csv"
);
const TARGET: &str = "creditability";
const SEED: u64 = 20240601;
const TEST_FRACTION: f64 = 0.3;

fn main() -> Result<(), Box<dyn Error>> {
    let out = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/credit-report.html"), PathBuf::from);

    let (table, target) = load()?;
    let (train, test) = stratified(&target.y);
    let (train_x, train_y) = (table.take(&train), target.take(&train));
    let (test_x, test_y) = (table.take(&test), target.take(&test));

    let cancel = CancelToken::new();
    let ctx = FitContext {
        progress: &NoProgress,
        cancel: &cancel,
        seed: SEED,
    };
    let model = aurum_credit::fit_binary("logistic", &train_x, &train_y, &Params::new(), &ctx)?;
    let p_train = model.predict_proba_table(&train_x)?;
    let p_test = model.predict_proba_table(&test_x)?;

    // Points on the usual scorecard scale: 600 at odds 50:1 (good:bad), 20 points to double them.
    let factor = 20.0 / 2f64.ln();
    let scores_test = p_test
        .iter()
        .map(|&p| {
            let p = p.clamp(1e-6, 1.0 - 1e-6);
            (600.0 + factor * (((1.0 - p) / p).ln() - 50f64.ln())).round()
        })
        .collect();

    let mut details = model.summary();
    if let Some(map) = details.as_object_mut() {
        map.insert("parameters".into(), model.params());
    }
    let report = credit_report(ReportInput {
        model: ModelInfo {
            name: "german-credit-demo".into(),
            version: "1".into(),
            kind: model.family().into(),
        },
        y_train: train_y.y.clone(),
        p_train,
        y_test: test_y.y.clone(),
        p_test,
        scores_test: Some(scores_test),
        threshold: model.threshold(),
        split: SplitInfo {
            method: SplitMethod::Stratified,
            seed: Some(SEED),
            train_fraction: 1.0 - TEST_FRACTION,
            test_fraction: TEST_FRACTION,
        },
        details,
        features: model.input_schema().names().map(String::from).collect(),
        excluded_columns: Vec::new(),
    })?;

    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(&out, html(&report)).map_err(|e| format!("writing {}: {e}", out.display()))?;
    let json = out.with_extension("json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)
        .map_err(|e| format!("writing {}: {e}", json.display()))?;
    eprintln!(
        "wrote {} and {} (test AUC {:.3}, KS {:.3})",
        out.display(),
        json.display(),
        report.metrics.auc,
        report.metrics.ks
    );
    Ok(())
}

/// Columns whose every value parses as a number become Float, the rest Categorical.
fn load() -> Result<(Table, BinaryTarget), Box<dyn Error>> {
    let mut reader =
        csv::Reader::from_path(CSV_PATH).map_err(|e| format!("opening {CSV_PATH}: {e}"))?;
    let headers: Vec<String> = reader.headers()?.iter().map(String::from).collect();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for record in reader.records() {
        for (col, value) in cells.iter_mut().zip(record?.iter()) {
            col.push(value.to_string());
        }
    }
    let mut columns = Vec::new();
    let mut y = Vec::new();
    for (name, values) in headers.into_iter().zip(cells) {
        if name == TARGET {
            y = values
                .iter()
                .map(|v| if v == "bad" { 1.0 } else { 0.0 })
                .collect();
            continue;
        }
        let numbers: Option<Vec<Option<f64>>> = values
            .iter()
            .map(|v| v.trim().parse::<f64>().ok().map(Some))
            .collect();
        let data = match numbers {
            Some(x) => ColumnData::Float(x),
            None => ColumnData::Categorical(values.into_iter().map(Some).collect()),
        };
        columns.push(Column { name, data });
    }
    let target = BinaryTarget {
        column: TARGET.into(),
        y,
        positive_label: "bad".into(),
        negative_label: "good".into(),
    };
    Ok((Table::new(columns)?, target))
}

/// Each class shuffled with a seeded ChaCha8 and split on its own, so both sides keep the bad
/// rate. Returns `(train, test)` row indices.
fn stratified(y: &[f64]) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in [0.0, 1.0] {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == class).collect();
        idx.shuffle(&mut rng);
        let cut = (idx.len() as f64 * (1.0 - TEST_FRACTION)).round() as usize;
        train.extend_from_slice(&idx[..cut]);
        test.extend_from_slice(&idx[cut..]);
    }
    (train, test)
}
