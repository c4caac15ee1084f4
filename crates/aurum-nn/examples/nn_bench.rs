//! The deep-learning benchmark's Rust side (`bench/nn/run.sh` runs it beside PyTorch).
//!
//! `nn_bench mlp <csv> <target> <epochs> <out_dir>`: a stratified 70/30 split (seed 42), the
//! `mlp` trained for exactly `epochs` epochs (no early stopping) on the 70 %, then seconds per
//! epoch, test AUC and single-row latency (`predict_proba_one` from typed values: encoding
//! included). It writes the encoded training and test inputs to `out_dir`, so the reference
//! trains the same architecture on the same numbers.
//!
//! `nn_bench cnn <csv> <epochs> <out_dir>`: a stratified quarter of the digits held out
//! (seed 2024), the `cnn` trained for `epochs` epochs on the rest, then held-out accuracy; the
//! split is written to `out_dir`.
//!
//! Each prints one JSON line.
#![allow(clippy::print_stdout)]

use std::fmt::Write as _;
use std::time::Instant;

use aurum_contract::{BinaryClassifier, FitContext, FittedModel, Output, Params};
use aurum_core::{CancelToken, ClassTarget, NoProgress, Table};
use aurum_nn::tabular::TabularEncoder;
use aurum_nn::{cnn, mlp, train};

fn params(pairs: &[(&str, String)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// ROC-AUC by the fraud metrics' rank statistic (ties count one half).
fn auc(p: &[f64], y: &[f64]) -> f64 {
    aurum_fraud::metrics::roc_auc(p, &y.iter().map(|&v| v > 0.5).collect::<Vec<_>>())
        .expect("both classes in the test rows")
}

fn write_encoded(path: &std::path::Path, enc: &TabularEncoder, table: &Table, y: &[f64]) {
    let rows = enc.encode_table(table).unwrap();
    let mut out = String::new();
    for (r, yi) in rows.iter().zip(y) {
        let mut cells: Vec<String> = r.numeric.iter().map(|x| format!("{x:e}")).collect();
        cells.extend(r.categories.iter().map(ToString::to_string));
        cells.push(yi.to_string());
        writeln!(out, "{}", cells.join(",")).unwrap();
    }
    std::fs::write(path, out).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ctx_cancel = CancelToken::new();
    let ctx = FitContext {
        progress: &NoProgress,
        cancel: &ctx_cancel,
        // The training seed (weights, batch order, dropout); the splits stay fixed. `SEED` sets it
        // so several seeds can be compared with PyTorch's run on the same seed.
        seed: std::env::var("SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(42),
    };
    match args.get(1).map(String::as_str) {
        Some("mlp") => {
            let (csv, target, epochs, out) = (&args[2], &args[3], &args[4], &args[5]);
            let bytes = std::fs::read(csv).unwrap();
            let table = aurum_data::read_csv(&bytes, &Default::default()).unwrap();
            let y = aurum_data::binary_target(&table, target, None).unwrap();
            let table = table.drop_column(target).unwrap();
            let split = aurum_data::stratified_split(&y.y, 0.3, 42).unwrap();
            let (train_t, test_t) = (table.take(&split.train), table.take(&split.test));
            let (train_y, test_y) = (y.take(&split.train), y.take(&split.test));
            let p = mlp::MlpParams::from_params(&params(&[
                ("epochs", epochs.clone()),
                ("patience", "0".into()),
                ("validation_fraction", "0".into()),
            ]))
            .unwrap();
            let model = mlp::fit(&train_t, &train_y, &p, &ctx).unwrap();
            let probs = model.predict_proba_table(&test_t).unwrap();
            let test_auc = auc(&probs, &test_y.y);
            let rows: Vec<_> = (0..test_t.n_rows()).map(|i| test_t.row(i)).collect();
            let mut lat = Vec::new();
            for r in rows.iter().cycle().take(5000) {
                let t = Instant::now();
                std::hint::black_box(model.predict_proba_one(r).unwrap());
                lat.push(t.elapsed().as_secs_f64() * 1e6);
            }
            lat.sort_by(f64::total_cmp);
            // The encoded inputs and the architecture, for the reference implementation.
            let out = std::path::Path::new(out);
            std::fs::create_dir_all(out).unwrap();
            let enc = TabularEncoder::fit(&train_t, 1).unwrap();
            write_encoded(&out.join("train.csv"), &enc, &train_t, &train_y.y);
            write_encoded(&out.join("test.csv"), &enc, &test_t, &test_y.y);
            let summary = model.summary();
            let spec = serde_json::json!({
                "n_numeric": enc.n_numeric(),
                "embeddings": summary["embeddings"],
                "hidden": [64, 32],
                "dropout": 0.1, "learning_rate": 1e-3, "weight_decay": 1e-4,
                "batch_size": 64, "epochs": epochs.parse::<usize>().unwrap(),
            });
            std::fs::write(out.join("spec.json"), spec.to_string()).unwrap();
            println!(
                "{}",
                serde_json::json!({
                    "seconds_per_epoch": model.training_log().seconds_per_epoch,
                    "test_auc": test_auc,
                    "latency_us_p50": lat[lat.len() / 2],
                    "latency_us_p99": lat[lat.len() * 99 / 100],
                    "parameters": summary["parameters"],
                })
            );
        }
        Some("cnn") => {
            let (csv, epochs, out) = (&args[2], &args[3], &args[4]);
            let bytes = std::fs::read(csv).unwrap();
            let table = aurum_data::read_csv(&bytes, &Default::default()).unwrap();
            let target = aurum_data::class_target(&table, "label").unwrap();
            let table = table.drop_column("label").unwrap();
            let mut rng = train::rng(2024);
            let (tr, te) = train::stratified_carve(&target.y, 10, 0.25, &mut rng);
            let train_target = ClassTarget {
                y: tr.iter().map(|&i| target.y[i]).collect(),
                ..target.clone()
            };
            let p = cnn::CnnParams::from_params(&params(&[
                ("height", "8".into()),
                ("width", "8".into()),
                ("epochs", epochs.clone()),
                ("patience", "0".into()),
                ("validation_fraction", "0".into()),
            ]))
            .unwrap();
            let model = cnn::fit(&table.take(&tr), &train_target, &p, &ctx).unwrap();
            let test = table.take(&te);
            let rows: Vec<_> = (0..test.n_rows()).map(|i| test.row(i)).collect();
            let outputs = model.predict_rows(&rows).unwrap();
            let correct = outputs
                .iter()
                .zip(&te)
                .filter(|&(o, &i)| matches!(o, Output::Class { label, .. } if *label == target.classes[target.y[i] as usize]))
                .count();
            let out = std::path::Path::new(out);
            std::fs::create_dir_all(out).unwrap();
            std::fs::write(
                out.join("split.json"),
                serde_json::json!({"train": tr, "test": te}).to_string(),
            )
            .unwrap();
            println!(
                "{}",
                serde_json::json!({
                    "seconds_per_epoch": model.training_log().seconds_per_epoch,
                    "test_accuracy": correct as f64 / te.len() as f64,
                })
            );
        }
        _ => {
            eprintln!(
                "usage: nn_bench mlp <csv> <target> <epochs> <out_dir> | nn_bench cnn <csv> <epochs> <out_dir>"
            );
            std::process::exit(2);
        }
    }
}
