//! The recurrent forecasters' benchmark, Rust side (`bench/nn/recurrent.sh` runs it beside
//! PyTorch).
//!
//! `recurrent_bench <airline|us_change> <epochs> <out_dir> [seed]`: holds out the last `h` points
//! (airline: 12 months, log scale, differenced, lookback 24; us_change consumption: 8 quarters,
//! as it is, lookback 8), trains aurum's `lstm` for exactly `epochs` epochs (no early stopping;
//! the time-ordered validation tail is still carved, as it gives the intervals) on the rest,
//! forecasts `h` steps and scores MASE (in-sample seasonal-naive scale) and interval coverage. It
//! fits aurum's statistical `auto` on the same training values and scores it the same way. It
//! writes `prep.json` to `out_dir` (the working series, scaler, window count and settings), so
//! the PyTorch reference trains the same architecture on the same numbers.
//!
//! Prints one JSON line.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::Instant;

use aurum_core::NoProgress;
use aurum_forecast::spec::ForecastSpec;
use aurum_forecast::{CsvOptions, ExternalModel as _, TimeColumn};
use aurum_nn::recurrent::{Cell, RecurrentParams, fit};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (series, epochs, out, seed) = match args.as_slice() {
        [_, series, epochs, out] => (series, epochs, out, "42"),
        [_, series, epochs, out, seed] => (series, epochs, out, seed.as_str()),
        _ => {
            eprintln!("usage: recurrent_bench <airline|us_change> <epochs> <out_dir> [seed]");
            std::process::exit(2);
        }
    };
    let epochs: usize = epochs.parse().expect("epochs is an integer");
    let (file, column, period, h, log, difference, lookback) = match series.as_str() {
        "airline" => (
            "airline_passengers.csv",
            "Passengers",
            12,
            12,
            true,
            true,
            24,
        ),
        "us_change" => ("us_change.csv", "Consumption", 4, 8, false, false, 8),
        other => panic!("unknown series {other}"),
    };
    let bytes =
        std::fs::read(format!("data/timeseries/{file}")).expect("run from the repository root");
    let opts = CsvOptions {
        time: TimeColumn::First,
        value_columns: vec![column.to_string()],
        ..CsvOptions::default()
    };
    let y = aurum_forecast::read_csv(&bytes, &opts)
        .unwrap()
        .remove(0)
        .series
        .values;
    let (train, test) = y.split_at(y.len() - h);
    let scale = aurum_forecast::mase_scale(train, period).unwrap();
    let mase =
        |p: &[f64]| p.iter().zip(test).map(|(p, a)| (p - a).abs()).sum::<f64>() / h as f64 / scale;
    let coverage = |lo: &[f64], hi: &[f64]| {
        test.iter()
            .zip(lo.iter().zip(hi))
            .filter(|(a, (l, u))| *a >= *l && *a <= *u)
            .count() as f64
            / h as f64
    };

    let options: BTreeMap<String, String> = [
        ("epochs", epochs.to_string()),
        ("patience", "0".into()),
        ("hidden", "32".into()),
        ("lookback", lookback.to_string()),
        ("log", log.to_string()),
        ("difference", difference.to_string()),
        ("seed", seed.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let params = RecurrentParams::from_options(Cell::Lstm, &options).unwrap();
    let started = Instant::now();
    let model = fit(train, &params, period, &NoProgress).unwrap();
    let fit_seconds = started.elapsed().as_secs_f64();
    let f = model.forecast(h, &[80.0, 95.0]).unwrap();
    let (mean, sd) = model.scaler();
    let log_info = model.training_log();

    let auto_spec = ForecastSpec {
        model: "auto".into(),
        horizon: h,
        transform: if log { "log" } else { "none" }.into(),
        ..ForecastSpec::default()
    };
    let started = Instant::now();
    let (auto, _) = aurum_forecast::spec::fit(&auto_spec, train, &[period]).unwrap();
    let auto_seconds = started.elapsed().as_secs_f64();
    let af = auto.forecast(h, &[80.0, 95.0]).unwrap();

    let working: Vec<f64> = if log {
        train.iter().map(|v| v.ln()).collect()
    } else {
        train.to_vec()
    };
    std::fs::create_dir_all(out).unwrap();
    let prep = serde_json::json!({
        "series": series, "seed": seed, "period": period, "h": h, "log": log, "difference": difference,
        "lookback": lookback, "hidden": 32, "epochs": epochs,
        "batch_size": params.optimisation.batch_size,
        "learning_rate": params.optimisation.learning_rate,
        "weight_decay": params.optimisation.weight_decay,
        "dropout": params.optimisation.dropout,
        "mean": mean, "scale": sd, "training_windows": log_info.training_windows,
        "working": working, "test": test, "mase_scale": scale,
    });
    std::fs::write(format!("{out}/prep.json"), prep.to_string()).unwrap();
    println!(
        "{}",
        serde_json::json!({
            "series": series,
            "lstm_mase": mase(&f.mean),
            "lstm_seconds_per_epoch": log_info.seconds_per_epoch,
            "lstm_fit_seconds": fit_seconds,
            "lstm_coverage80": coverage(&f.intervals[0].1, &f.intervals[0].2),
            "lstm_coverage95": coverage(&f.intervals[1].1, &f.intervals[1].2),
            "auto_model": auto.describe(),
            "auto_mase": mase(&af.mean),
            "auto_fit_seconds": auto_seconds,
            "auto_coverage95": coverage(&af.intervals[1].lower, &af.intervals[1].upper),
        })
    );
}
