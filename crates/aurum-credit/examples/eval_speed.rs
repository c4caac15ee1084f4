//! Training-time evaluation speed: the table paths a training job uses (the training rows'
//! `predict_proba_table`, then the held-out rows' PDs and points in one `score_table`, on the
//! rows projected to the model's input schema) against the row-by-row path the job used before
//! (`predict_proba_one` over both splits and `score_points` over the held-out rows, each on a
//! `Table::row`), on the same fitted model and the same rows.
//!
//! ```text
//! cargo run --release -p aurum-credit --example eval_speed
//! ```
//!
//! Lending Club and German credit, split 70/30 as in `credit_bench`; one fit per family with its
//! defaults. Each round runs the table paths on a one-thread rayon pool, then on the global pool
//! (every core, as the job runs them), then the row-by-row path; 11 rounds, and the fastest round
//! of each path is reported (the machine is shared: the fastest round is the one least disturbed).
//! The paths must agree (probabilities and points) to 1e-9 and the one-thread and all-thread
//! table paths bit for bit, or the example fails.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use aurum_core::{CancelToken, NoProgress, Params, Table};
use aurum_credit::{BinaryClassifier, FitContext, ModelError};
use credit_data::{load_csv, stratified};

mod credit_data;

const SPLIT_SEED: u64 = 20240601;
const FIT_SEED: u64 = 7;
const RUNS: usize = 11;

type Run<'a> = Box<dyn FnMut() -> Result<Vec<f64>, Box<dyn Error>> + 'a>;
/// A path's fastest time in seconds and its values.
type Timed = (f64, Vec<f64>);

/// Runs every path once per round, in turn, for `RUNS` rounds (so a noisy neighbour slows all
/// of them alike): the fastest round's seconds of each path (the cost with the least
/// interference) and its values from the last round.
fn interleaved(mut paths: Vec<Run<'_>>) -> Result<Vec<Timed>, Box<dyn Error>> {
    let mut times = vec![Vec::with_capacity(RUNS); paths.len()];
    let mut last = vec![Vec::new(); paths.len()];
    for _ in 0..RUNS {
        for (k, f) in paths.iter_mut().enumerate() {
            let t0 = Instant::now();
            last[k] = f()?;
            times[k].push(t0.elapsed().as_secs_f64());
        }
    }
    Ok(times
        .into_iter()
        .zip(last)
        .map(|(mut t, v)| {
            t.sort_by(f64::total_cmp);
            (t[0], v)
        })
        .collect())
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
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let threads = rayon::current_num_threads();
    println!(
        "| dataset | model | rows scored | batch ms, 1 thread | batch ms, {threads} threads | row-by-row ms | speed-up, 1 thread | speed-up, {threads} threads |"
    );
    println!("|---|---|---|---|---|---|---|---|");
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
            // What the job computes now: the training rows' PDs, then the held-out rows' PDs
            // and points from one pass ([`BinaryClassifier::score_table`]).
            let batch = || -> Result<Vec<f64>, ModelError> {
                let mut p = Vec::with_capacity(n + parts[1].n_rows());
                p.extend(m.predict_proba_table(&parts[0])?);
                let held_out = m.score_table(&parts[1])?;
                p.extend(held_out.pd);
                p.extend(held_out.points.unwrap_or_default());
                Ok(p)
            };
            // The row-by-row path: the same values, one `Vec<Value>` row at a time.
            let rows = || -> Result<Vec<f64>, Box<dyn Error>> {
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
            };
            let timed = interleaved(vec![
                Box::new(|| Ok(one_thread.install(batch)?)),
                Box::new(|| Ok(batch()?)),
                Box::new(rows),
            ])?;
            let [(batch1, pb1), (batch, pb), (rows, pr)] =
                <[_; 3]>::try_from(timed).map_err(|_| "three paths")?;
            if pb1 != pb {
                return Err(format!("{name} {kind}: one thread and all threads differ").into());
            }
            let worst = pb
                .iter()
                .zip(&pr)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            if worst > 1e-9 {
                return Err(format!("{name} {kind:?}: paths differ by {worst:e}").into());
            }
            println!(
                "| {name} | {kind} | {n} | {:.2} | {:.2} | {:.2} | {:.1}× | {:.1}× |",
                batch1 * 1e3,
                batch * 1e3,
                rows * 1e3,
                rows / batch1,
                rows / batch
            );
        }
    }
    Ok(())
}
