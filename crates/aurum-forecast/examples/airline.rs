//! Library tour on the bundled airline data, with fit timings:
//!
//! ```sh
//! cargo run --release -p aurum-forecast --example airline
//! ```
//!
//! Reads `data/timeseries/airline_passengers.csv`, runs auto-ARIMA and auto-ETS on the log series,
//! prints the chosen models, a 12-month forecast with 80 and 95 % intervals, and a rolling-origin
//! comparison of the default candidates.

use std::io::Write;
use std::time::Instant;

use aurum_forecast::{
    AutoArimaSpec, BacktestConfig, CsvOptions, EtsSpec, Forecaster, ModelSpec, Pipeline, Score,
    Transform, default_candidates, read_csv, select_by_backtest,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/timeseries/airline_passengers.csv"
    );
    let bytes = std::fs::read(path)?;
    let parsed = read_csv(&bytes, &CsvOptions::default())?.remove(0);
    let series = parsed.series;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} points, {}", series.len(), series.frequency)?;

    let log = |model| Pipeline {
        model,
        transform: Transform::Log,
        bias_adjust: false,
    };
    let arima = log(ModelSpec::AutoArima(AutoArimaSpec {
        period: 12,
        ..AutoArimaSpec::default()
    }));
    let ets = log(ModelSpec::Ets(EtsSpec::auto(12)));
    for pipeline in [&arima, &ets] {
        let start = Instant::now();
        let runs = 10;
        let mut fitted = pipeline.fit_series(&series)?;
        for _ in 1..runs {
            fitted = pipeline.fit_series(&series)?;
        }
        let per_fit = start.elapsed() / runs;
        writeln!(
            out,
            "{:<12} {:<40} AICc {:>9.3}  fit {:>8.2?}",
            pipeline.name(),
            fitted.describe(),
            fitted.aicc().unwrap_or(f64::NAN),
            per_fit
        )?;
        let fc = fitted.forecast(12, &[80.0, 95.0])?;
        let stamps = fc.timestamps.clone().unwrap_or_default();
        for (i, t) in stamps.iter().enumerate().take(3) {
            writeln!(
                out,
                "  {}  {:>7.1}  80% [{:>6.1}, {:>6.1}]  95% [{:>6.1}, {:>6.1}]",
                t.format("%Y-%m"),
                fc.mean[i],
                fc.intervals[0].lower[i],
                fc.intervals[0].upper[i],
                fc.intervals[1].lower[i],
                fc.intervals[1].upper[i]
            )?;
        }
    }

    let mut candidates = default_candidates(12);
    candidates.push(arima);
    candidates.push(ets);
    let cfg = BacktestConfig {
        horizon: 12,
        step: 6,
        windows: 4,
        season_period: 12,
        ..BacktestConfig::default()
    };
    let start = Instant::now();
    let selection = select_by_backtest(&series.values, &candidates, &cfg, Score::Mase)?;
    writeln!(
        out,
        "backtest of {} candidates in {:.2?}",
        candidates.len(),
        start.elapsed()
    )?;
    for (i, r) in selection.reports.iter().enumerate() {
        match r {
            Ok(rep) => writeln!(
                out,
                "{} {:<20} MASE {:>6.3}  RMSE {:>7.2}  sMAPE {:>6.2}  cover80 {:.2}  cover95 {:.2}",
                if i == selection.best { "*" } else { " " },
                rep.model,
                rep.metrics.mase.unwrap_or(f64::NAN),
                rep.metrics.rmse,
                rep.metrics.smape.unwrap_or(f64::NAN),
                rep.metrics.coverage[0].1,
                rep.metrics.coverage[1].1
            )?,
            Err(e) => writeln!(out, "  {:<20} failed: {e}", candidates[i].name())?,
        }
    }
    Ok(())
}
