//! The training job's evaluation as it was before the table paths, timed: `predict_proba_one`
//! over `Table::row` for the held-out and training rows, then `score_points` over the held-out
//! rows, on the split and fits of `crates/aurum-credit/examples/eval_speed.rs` (the fastest of 11
//! rounds). Built by `bench/eval/before.sh` inside a worktree of that revision, as an example of
//! its `aurum-models` crate; not part of this workspace.
#![allow(clippy::print_stdout)]
use std::error::Error;
use std::path::Path;
use std::time::Instant;

use aurum_core::{CancelToken, ModelKind, NoProgress, Params, Table};
use aurum_models::{FitContext, family};
use credit_data::{load_csv, stratified};

mod credit_data;

fn main() -> Result<(), Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (table, y) = load_csv(&root.join("data/credit/lending_club.csv"), "Class", "bad")?;
    let (train, test) = stratified(&y.y, 20240601);
    let (train_x, train_y) = (table.take(&train), y.take(&train));
    let test_x = table.take(&test);
    for kind in [ModelKind::Gbdt, ModelKind::Scorecard, ModelKind::Logistic] {
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed: 7,
        };
        let model = family(kind).fit(&train_x, &train_y, &Params::new(), &ctx)?;
        let mut times = Vec::new();
        let mut sum = 0.0;
        for _ in 0..11 {
            let t0 = Instant::now();
            let proba = |t: &Table| -> Result<Vec<f64>, Box<dyn Error>> {
                (0..t.n_rows())
                    .map(|i| Ok(model.predict_proba_one(&t.row(i))?))
                    .collect()
            };
            let test_p = proba(&test_x)?;
            let train_p = proba(&train_x)?;
            let scores: Option<Vec<f64>> = (0..test_x.n_rows())
                .map(|i| model.score_points(&test_x.row(i)))
                .collect::<Result<Option<Vec<f64>>, _>>()?;
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            sum += test_p[0] + train_p[0] + scores.map_or(0.0, |s| s[0]);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| lending_club | {kind:?} | row by row before the table paths (f796af3^) | {:.2} ms | check {sum:.3} |",
            times[0]
        );
    }
    Ok(())
}
