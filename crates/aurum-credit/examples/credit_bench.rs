//! Credit-model benchmark, aurum side: GBDT, scorecard and logistic regression on German credit
//! (UCI Statlog, 1000 rows, 30 % `bad`) and Lending Club (R modeldata, 9857 rows, 5 % `bad`).
//!
//! ```text
//! cargo build --release -p aurum-models --example credit_bench
//! target/release/examples/credit_bench [OUT_DIR]      # default target/credit-bench
//! ```
//!
//! Each data set is split 70/30, stratified, with a seeded ChaCha8 generator (the split of the
//! `credit` integration tests). The test-row indices (0-based data rows of the CSV) go to
//! `OUT_DIR/split_<dataset>.json`, which `bench/credit/lgbm_bench.py` reads so LightGBM and
//! optbinning train and score on exactly the same rows. Every model is fitted three times; the
//! fit time is the median wall time of the three `ModelFamily::fit` calls (data loading,
//! splitting and scoring not included), and the AUCs are those of the last fit (fits are seeded,
//! so all three are the same model). Results are printed as a table and as JSON lines (also
//! written to `OUT_DIR/aurum.jsonl`). Fits are single-threaded by design. `bench/credit/run.sh`
//! runs both sides and prints the side-by-side table.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use aurum_core::{BinaryTarget, CancelToken, NoProgress, Params, Table};
use aurum_credit::metrics::auc;
use aurum_credit::{BinaryClassifier, FitContext, ModelFamily};
use credit_data::{load_csv, stratified};

mod credit_data;

const SPLIT_SEED: u64 = 20240601;
const FIT_SEED: u64 = 7;
const REPEATS: usize = 3;

struct Dataset {
    name: &'static str,
    /// Relative to the workspace root.
    csv: &'static str,
    target: &'static str,
    positive: &'static str,
}

const DATASETS: &[Dataset] = &[
    Dataset {
        name: "german_credit",
        csv: "data/demo/german_credit.csv",
        target: "creditability",
        positive: "bad",
    },
    Dataset {
        name: "lending_club",
        csv: "data/credit/lending_club.csv",
        target: "Class",
        positive: "bad",
    },
];

/// The setting matched on the LightGBM side (`lgbm_bench.py`, "comparable").
const GBDT_COMPARABLE: &[(&str, &str)] = &[
    ("n_estimators", "300"),
    ("learning_rate", "0.05"),
    ("max_depth", "5"),
    ("early_stopping_rounds", "30"),
    ("validation_fraction", "0.2"),
];

struct Row {
    dataset: &'static str,
    model: String,
    params: serde_json::Value,
    /// Trees kept (GBDT only).
    n_trees: Option<u64>,
    /// Characteristics with points (scorecard only).
    n_selected: Option<u64>,
    test_auc: f64,
    train_auc: f64,
    fit_s: f64,
    fit_runs_s: Vec<f64>,
}

fn main() -> Result<(), Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::env::args()
        .nth(1)
        .map_or_else(|| root.join("target/credit-bench"), PathBuf::from);
    std::fs::create_dir_all(&out)?;

    let mut rows = Vec::new();
    for ds in DATASETS {
        let (table, target) = load_csv(&root.join(ds.csv), ds.target, ds.positive)?;
        let (train, test) = stratified(&target.y, SPLIT_SEED);
        let split = serde_json::json!({
            "dataset": ds.name,
            "csv": ds.csv,
            "target": ds.target,
            "positive": ds.positive,
            "seed": SPLIT_SEED,
            "n_rows": target.len(),
            "test_rows": test,
        });
        std::fs::write(
            out.join(format!("split_{}.json", ds.name)),
            serde_json::to_vec(&split)?,
        )?;
        let (train_x, train_y) = (table.take(&train), target.take(&train));
        let (test_x, test_y) = (table.take(&test), target.take(&test));

        let comparable: Params = GBDT_COMPARABLE
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let gbdt = aurum_credit::gbdt::GbdtFamily;
        // aurum's GBDT defaults are the comparable setting; fit it once if they still coincide.
        let mut runs = vec![("gbdt (defaults)", "gbdt", Params::new())];
        if gbdt.validate_params(&comparable)? == gbdt.validate_params(&Params::new())? {
            runs[0].0 = "gbdt (defaults = comparable)";
        } else {
            runs.push(("gbdt (comparable)", "gbdt", comparable));
        }
        runs.push(("scorecard (defaults)", "scorecard", Params::new()));
        runs.push(("logistic (defaults)", "logistic", Params::new()));

        for (label, kind, params) in runs {
            let mut times = Vec::with_capacity(REPEATS);
            let mut model: Option<Box<dyn BinaryClassifier>> = None;
            for _ in 0..REPEATS {
                let cancel = CancelToken::new();
                let ctx = FitContext {
                    progress: &NoProgress,
                    cancel: &cancel,
                    seed: FIT_SEED,
                };
                let t0 = Instant::now();
                let m = aurum_credit::fit_binary(kind, &train_x, &train_y, &params, &ctx)?;
                times.push(t0.elapsed().as_secs_f64());
                model = Some(m);
            }
            let m = model.ok_or("no fit")?;
            let score = |x: &Table, y: &BinaryTarget| -> Result<f64, Box<dyn Error>> {
                let p = m.predict_proba_table(x)?;
                auc(&y.y, &p).ok_or_else(|| "AUC undefined".into())
            };
            let mut sorted = times.clone();
            sorted.sort_by(f64::total_cmp);
            rows.push(Row {
                dataset: ds.name,
                model: format!("aurum {label}"),
                params: m.params(),
                n_trees: m.summary()["trees"].as_u64(),
                n_selected: m.summary()["with_points"].as_u64(),
                test_auc: score(&test_x, &test_y)?,
                train_auc: score(&train_x, &train_y)?,
                fit_s: sorted[sorted.len() / 2],
                fit_runs_s: times,
            });
        }
    }

    println!("| dataset | model | test AUC | train AUC | fit time s (median of {REPEATS}) |");
    println!("|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.4} | {:.4} | {:.3} |",
            r.dataset, r.model, r.test_auc, r.train_auc, r.fit_s
        );
    }
    let mut jsonl = std::fs::File::create(out.join("aurum.jsonl"))?;
    for r in &rows {
        let mut line = serde_json::json!({
            "dataset": r.dataset,
            "model": r.model,
            "test_auc": r.test_auc,
            "train_auc": r.train_auc,
            "fit_s": r.fit_s,
            "fit_runs_s": r.fit_runs_s,
            "params": r.params,
        });
        if let Some(n) = r.n_trees {
            line["n_trees"] = n.into();
        }
        if let Some(n) = r.n_selected {
            line["n_selected"] = n.into();
        }
        let line = line.to_string();
        println!("{line}");
        writeln!(jsonl, "{line}")?;
    }
    Ok(())
}
