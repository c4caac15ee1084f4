//! Rolling-origin benchmark of `auto` on one real series as it is (no fill): aurum's `auto` and
//! each of its candidates, with fit times. Driven by `bench/forecast/series.sh`, which runs
//! statsforecast on the same origins; prints one JSON object per model.
//!
//! ```sh
//! cargo run -p aurum-forecast --example series_bench -- FILE DATE VALUE HORIZON WINDOWS [PERIODS]
//! ```
//!
//! `PERIODS` is a comma-separated list (default: the frequency's). The windows are `HORIZON`
//! apart and the last ends at the last observation; MASE pools |e| / Q_w over every window, `Q_w`
//! the in-sample seasonal-naive MAE (first period) of the window's training data. When the first
//! period is above `MAX_DIRECT_SEASON`, MSTL + auto-ARIMA, which `auto` does not consider there,
//! is also backtested for reference (`"candidate": false`). Times are wall seconds and, on Linux,
//! the CPU seconds of this (single-threaded) process, which a shared machine stretches less.

use std::time::Instant;

use aurum_forecast::spec::{
    ForecastSpec, MAX_DIRECT_SEASON, fit, periods_for, pipelines, read_column,
};
use aurum_forecast::{BacktestConfig, FittedModel, ForecastError, Forecaster, backtest};

type BoxError = Box<dyn std::error::Error>;

/// CPU seconds this thread has run (Linux `/proc/self/schedstat`, nanoseconds on the CPU);
/// `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// CPU seconds since `start`.
fn cpu_since(start: Option<f64>) -> Option<f64> {
    Some(cpu_seconds()? - start?)
}

/// One JSON line on standard output.
fn emit(v: &serde_json::Value) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{v}")
}

struct Auto<'a> {
    spec: &'a ForecastSpec,
    periods: &'a [usize],
}

impl Forecaster for Auto<'_> {
    fn fit(&self, y: &[f64]) -> Result<FittedModel, ForecastError> {
        fit(self.spec, y, self.periods).map(|(m, _)| m)
    }
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, date, value, horizon, windows, rest @ ..] = args.as_slice() else {
        return Err("usage: series_bench FILE DATE VALUE HORIZON WINDOWS [PERIODS]".into());
    };
    let horizon: usize = horizon.parse()?;
    let windows: usize = windows.parse()?;
    let bytes = std::fs::read(file)?;
    let mut spec = ForecastSpec {
        horizon,
        ..ForecastSpec::default()
    };
    if let Some(p) = rest.first() {
        spec.season_periods = p
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<usize>, _>>()?;
    }
    let series = read_column(&bytes, date.clone(), value.clone(), &spec)?;
    let periods = periods_for(&spec, &series);
    let y = &series.series.values;
    let cfg = BacktestConfig {
        horizon,
        step: horizon,
        windows,
        levels: vec![80.0, 95.0],
        season_period: periods[0],
    };
    eprintln!(
        "{}: {} points, frequency {}, periods {periods:?}",
        value,
        y.len(),
        series.series.frequency
    );
    let started = Instant::now();
    let cpu = cpu_seconds();
    let auto = backtest(
        y,
        &Auto {
            spec: &spec,
            periods: &periods,
        },
        "auto",
        &cfg,
    )?;
    let auto_s = started.elapsed().as_secs_f64();
    let auto_cpu = cpu_since(cpu);
    let chosen = fit(&spec, y, &periods)?.0.describe();
    emit(
        &serde_json::json!({"model": "auto", "chosen_on_full_series": chosen,
            "mase": auto.metrics.mase, "seconds": auto_s, "cpu_seconds": auto_cpu, "windows": windows, "horizon": horizon,
            "points": y.len(), "periods": periods}),
    )?;
    let mut models: Vec<(_, bool)> = pipelines(&spec, &periods)?
        .into_iter()
        .map(|c| (c, true))
        .collect();
    if periods[0] > MAX_DIRECT_SEASON {
        let reference = ForecastSpec {
            model: "mstl_arima".into(),
            ..spec.clone()
        };
        models.extend(
            pipelines(&reference, &periods)?
                .into_iter()
                .map(|c| (c, false)),
        );
    }
    for (c, candidate) in models {
        let started = Instant::now();
        let cpu = cpu_seconds();
        let r = backtest(y, &c, &c.name(), &cfg);
        let s = started.elapsed().as_secs_f64();
        let cpu = cpu_since(cpu);
        match r {
            Ok(r) => emit(
                &serde_json::json!({"model": c.name(), "mase": r.metrics.mase,
                "seconds": s, "cpu_seconds": cpu, "candidate": candidate}),
            )?,
            Err(e) => emit(
                &serde_json::json!({"model": c.name(), "error": e.to_string(),
                "seconds": s, "cpu_seconds": cpu, "candidate": candidate}),
            )?,
        }
    }
    Ok(())
}
