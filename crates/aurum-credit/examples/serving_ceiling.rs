//! In-process ceilings for the serving benchmark (`bench/serving/run.sh`): how fast one thread
//! can score the benchmark's LightGBM model without any server around it.
//!
//! ```text
//! cargo run --release -p aurum-credit --example serving_ceiling -- MODEL.txt ROWS.f32
//! ```
//!
//! `ROWS.f32` holds little-endian FP32 rows of the model's features (the tensor the benchmark
//! sends). Two figures, each the median of 9 runs of about 0.2 s on one thread, on 256-row
//! batches:
//! - the evaluator: `TreeModel::predict_batch` on the rows widened to f64;
//! - the serving path per row: the imported model's `BinaryClassifier::assess` (PD, score,
//!   decision under the default policy and, for refer and decline, the adverse reasons, which
//!   take a TreeSHAP pass);
//! - the serving path per batch: `BinaryClassifier::assess_batch` on the 256 rows (what
//!   `Platform::predict` calls on each piece of a batch), checked equal to `assess` row by row.
//!
//! The last line is machine-readable:
//! `CEILING <evaluator rows/s> <assess rows/s> <declined share> <assess_batch rows/s>`.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::time::Instant;

use aurum_core::Value;
use aurum_credit::policy::Decision;
use aurum_trees::TreeModel;

const BATCH: usize = 256;
const RUNS: usize = 9;

/// Median rows/s of `f`, which scores one batch of `BATCH` rows per call.
fn rows_per_s(mut f: impl FnMut()) -> f64 {
    // Calls per run so a run lasts about 0.2 s.
    let t0 = Instant::now();
    f();
    let once = t0.elapsed().as_secs_f64().max(1e-7);
    let calls = ((0.2 / once) as usize).max(1);
    let mut rates: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..calls {
                f();
            }
            (calls * BATCH) as f64 / t0.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[RUNS / 2]
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(model_path), Some(rows_path)) = (args.next(), args.next()) else {
        return Err("usage: serving_ceiling MODEL.txt ROWS.f32".into());
    };
    let text = std::fs::read_to_string(&model_path)?;
    let trees = TreeModel::from_lightgbm_text(&text)?;
    let nf = trees.n_features();
    let bytes = std::fs::read(&rows_path)?;
    let given: Vec<f64> = bytes
        .chunks_exact(4)
        .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    if given.len() < nf {
        return Err(format!("{rows_path}: fewer than {nf} values").into());
    }
    // Repeat the given rows to fill one batch.
    let x: Vec<f64> = given[..given.len() / nf * nf]
        .iter()
        .copied()
        .cycle()
        .take(BATCH * nf)
        .collect();
    let mut out = vec![0.0; BATCH];
    let evaluator = rows_per_s(|| {
        trees
            .predict_batch(&x, nf, &mut out)
            .expect("predict_batch");
    });

    let model = aurum_credit::imported::import_tree_model(
        aurum_credit::imported::Library::Lightgbm,
        text.as_bytes(),
        0.5,
    )?
    .into_binary()
    .ok_or("an imported LightGBM model is binary")?;
    let rows: Vec<Vec<Value>> = x
        .chunks_exact(nf)
        .map(|r| r.iter().map(|&v| Value::Float(v)).collect())
        .collect();
    let declined = rows
        .iter()
        .map(|r| {
            model
                .assess(r, false)
                .map(|a| a.decision.decision != Decision::Approve)
        })
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .filter(|d| **d)
        .count() as f64
        / BATCH as f64;
    let assess = rows_per_s(|| {
        for r in &rows {
            std::hint::black_box(model.assess(r, false).expect("assess"));
        }
    });
    let batched = model.assess_batch(&rows, false)?;
    for (r, b) in rows.iter().zip(&batched) {
        if model.assess(r, false)? != *b {
            return Err("assess_batch differs from assess".into());
        }
    }
    let assess_batch = rows_per_s(|| {
        std::hint::black_box(model.assess_batch(&rows, false).expect("assess_batch"));
    });
    println!(
        "evaluator predict_batch, {BATCH}-row batches, one thread: {evaluator:.0} rows/s ({:.0} ns/row)",
        1e9 / evaluator
    );
    println!(
        "imported model assess (serving path per row), one thread: {assess:.0} rows/s ({:.0} ns/row; {:.0} % of rows refer/decline and take reasons)",
        1e9 / assess,
        declined * 100.0
    );
    println!(
        "imported model assess_batch ({BATCH}-row batches), one thread: {assess_batch:.0} rows/s ({:.0} ns/row)",
        1e9 / assess_batch
    );
    println!("CEILING {evaluator:.0} {assess:.0} {declined:.3} {assess_batch:.0}");
    Ok(())
}
