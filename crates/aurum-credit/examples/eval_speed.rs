//! Held-out evaluation speed: the batch path a training job uses (`predict_proba_table` on the
//! rows projected to the model's input schema, then `score_points_table` on the held-out rows
//! for the report) against the row-by-row path it replaced (`predict_proba_one` and
//! `score_points` over `Table::row`), on the same fitted model and the same rows.
//!
//! ```text
//! cargo run --release -p aurum-credit --example eval_speed
//! ```
//!
//! Lending Club and German credit, split 70/30 as in `credit_bench`; one fit per family with its
//! defaults; each path scores the training and the held-out rows (what the job evaluates) and is
//! timed as the median of 7 runs on one thread. Both paths must agree (probabilities and points)
//! to 1e-9, or the example fails. A plain `Instant` loop, as in the other examples.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use aurum_core::{CancelToken, NoProgress, Params, Table};
use aurum_credit::{BinaryClassifier, FitContext};
use credit_data::{load_csv, stratified};

mod credit_data;

const SPLIT_SEED: u64 = 20240601;
const FIT_SEED: u64 = 7;
const RUNS: usize = 7;

fn median_secs(
    mut f: impl FnMut() -> Result<Vec<f64>, Box<dyn Error>>,
) -> Result<(f64, Vec<f64>), Box<dyn Error>> {
    let mut times = Vec::with_capacity(RUNS);
    let mut last = Vec::new();
    for _ in 0..RUNS {
        let t0 = Instant::now();
        last = f()?;
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[RUNS / 2], last))
}

fn main() -> Result<(), Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let sets = [
        (
            "lending_club",
            "data/credit/lending_club.csv",
            "Class",
            "bad",
        ),
        (
            "german_credit",
            "data/demo/german_credit.csv",
            "creditability",
            "bad",
        ),
    ];
    println!("| dataset | model | rows scored | batch ms | row-by-row ms | speed-up |");
    println!("|---|---|---|---|---|---|");
    for (name, csv, target, positive) in sets {
        let (table, y) = load_csv(&root.join(csv), target, positive)?;
        let (train, test) = stratified(&y.y, SPLIT_SEED);
        let (train_x, train_y) = (table.take(&train), y.take(&train));
        let test_x = table.take(&test);
        for kind in ["gbdt", "scorecard", "logistic"] {
            let cancel = CancelToken::new();
            let ctx = FitContext {
                progress: &NoProgress,
                cancel: &cancel,
                seed: FIT_SEED,
            };
            let model = aurum_credit::fit_binary(kind, &train_x, &train_y, &Params::new(), &ctx)?;
            // What the training job scores: both splits, projected to the input schema.
            let inputs: Vec<&str> = model.input_schema().names().collect();
            let parts = [
                train_x.select(inputs.iter().copied())?,
                test_x.select(inputs.iter().copied())?,
            ];
            let n: usize = parts.iter().map(Table::n_rows).sum();
            let m: &dyn BinaryClassifier = model.as_ref();
            // Probabilities of both splits, then the held-out rows' score points (the report's
            // score distribution), as the job computes them.
            let (batch, pb) = median_secs(|| {
                let mut p = Vec::with_capacity(n + parts[1].n_rows());
                for t in &parts {
                    p.extend(m.predict_proba_table(t)?);
                }
                p.extend(m.score_points_table(&parts[1])?.unwrap_or_default());
                Ok(p)
            })?;
            let (rows, pr) = median_secs(|| {
                let mut p = Vec::with_capacity(n + parts[1].n_rows());
                for t in &parts {
                    for i in 0..t.n_rows() {
                        p.push(m.predict_proba_one(&t.row(i))?);
                    }
                }
                for i in 0..parts[1].n_rows() {
                    p.extend(m.score_points(&parts[1].row(i))?);
                }
                Ok(p)
            })?;
            let worst = pb
                .iter()
                .zip(&pr)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            if worst > 1e-9 {
                return Err(format!("{name} {kind:?}: paths differ by {worst:e}").into());
            }
            println!(
                "| {name} | {} | {n} | {:.2} | {:.2} | {:.1}× |",
                kind,
                batch * 1e3,
                rows * 1e3,
                rows / batch
            );
        }
    }
    Ok(())
}
