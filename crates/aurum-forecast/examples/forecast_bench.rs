//! Forecast-accuracy and speed benchmark: aurum's auto-ARIMA and auto-ETS against statsforecast's
//! `AutoARIMA` and `AutoETS` on exactly the same tasks. Driven by `bench/forecast/run.sh`; it
//! prints figures and is not a timed test.
//!
//! ```sh
//! cargo build --release -p aurum-forecast --example forecast_bench
//! target/release/examples/forecast_bench tasks OUT   # OUT/tasks.json: the common task list
//! target/release/examples/forecast_bench aurum OUT   # OUT/forecasts_aurum.json
//! target/release/examples/forecast_bench score OUT   # OUT/results.json (both sides' forecasts)
//! ```
//!
//! * `tasks` cuts the shared series in `data/timeseries/` into (id, training values, season
//!   period, horizon, test values, log transform) tasks, plus two rolling-origin backtests, and
//!   writes them once; both sides read that file, so they forecast the same numbers.
//! * `aurum` fits auto-ARIMA and auto-ETS (under a log transform where the task says so) to each
//!   task and forecasts with 80 and 95 % intervals, timing fit + forecast per task; it runs
//!   [`backtest`] on the backtest series.
//! * `score` scores both sides' forecasts with the same code ([`accuracy`] and [`mase_scale`]):
//!   per task MASE (scaled by the in-sample seasonal naive MAE of the task's training values),
//!   sMAPE (%) and interval coverage, then averages over the tasks every model and side
//!   forecast; backtests pool errors over windows, as [`backtest`] does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use aurum_forecast::{
    AutoArimaSpec, BacktestConfig, CsvOptions, EtsSpec, FillPolicy, Forecast, Forecaster,
    ModelSpec, Pipeline, TimeColumn, Transform, accuracy, backtest, mase_scale, read_csv,
};
use serde::{Deserialize, Serialize};

type BoxError = Box<dyn std::error::Error>;

const LEVELS: [f64; 2] = [80.0, 95.0];
const MODELS: [&str; 2] = ["AutoARIMA", "AutoETS"];
const SIDES: [&str; 2] = ["aurum", "statsforecast"];

/// One forecasting task. `log`: both sides fit on ln(y) and back-transform the mean (median) and
/// the interval bounds; accuracy is measured on the original scale.
#[derive(Serialize, Deserialize)]
struct Task {
    id: String,
    group: String,
    period: usize,
    horizon: usize,
    log: bool,
    train: Vec<f64>,
    test: Vec<f64>,
}

/// A rolling-origin backtest: `windows` origins `step` apart, the last ending at the last value
/// (`origins` are training sizes, as in aurum's `backtest` and statsforecast's cutoffs).
#[derive(Serialize, Deserialize)]
struct BacktestTask {
    id: String,
    period: usize,
    log: bool,
    horizon: usize,
    step: usize,
    windows: usize,
    origins: Vec<usize>,
    values: Vec<f64>,
}

#[derive(Serialize, Deserialize)]
struct TaskFile {
    levels: Vec<f64>,
    notes: Vec<String>,
    tasks: Vec<Task>,
    backtests: Vec<BacktestTask>,
}

/// A forecast as both sides write it.
#[derive(Serialize, Deserialize)]
struct Fc {
    mean: Vec<f64>,
    lo80: Vec<f64>,
    hi80: Vec<f64>,
    lo95: Vec<f64>,
    hi95: Vec<f64>,
}

#[derive(Serialize, Deserialize)]
struct TaskResult {
    id: String,
    /// Wall time of fit + forecast.
    seconds: f64,
    /// The chosen model, e.g. `ARIMA(0,1,1)(0,1,1)[12]`.
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    forecast: Option<Fc>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct WindowFc {
    origin: usize,
    forecast: Fc,
}

#[derive(Serialize, Deserialize)]
struct BacktestResult {
    seconds: f64,
    #[serde(default)]
    windows: Vec<WindowFc>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct SideFile {
    side: String,
    versions: BTreeMap<String, String>,
    /// Seconds of the untimed warm-up call per model (statsforecast only).
    #[serde(default)]
    warmup_seconds: BTreeMap<String, f64>,
    /// model → task results, in task order.
    models: BTreeMap<String, Vec<TaskResult>>,
    /// backtest id → model → result.
    backtests: BTreeMap<String, BTreeMap<String, BacktestResult>>,
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(cmd), Some(out)) = (args.get(1), args.get(2)) else {
        return Err("usage: forecast_bench tasks|aurum|score OUT_DIR".into());
    };
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out)?;
    match cmd.as_str() {
        "tasks" => write_tasks(&out),
        "aurum" => run_aurum(&out),
        "score" => score(&out),
        other => Err(format!("unknown command `{other}` (tasks, aurum or score)").into()),
    }
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/timeseries")
}

fn read_columns(
    file: &str,
    time: TimeColumn,
    columns: &[&str],
    fill: FillPolicy,
) -> Result<Vec<Vec<f64>>, BoxError> {
    let path = data_dir().join(file);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let opts = CsvOptions {
        time,
        value_columns: columns.iter().map(|c| (*c).to_string()).collect(),
        fill,
        ..CsvOptions::default()
    };
    Ok(read_csv(&bytes, &opts)?
        .into_iter()
        .map(|p| p.series.values)
        .collect())
}

/// How a series is cut into rolling-origin tasks.
#[derive(Clone, Copy)]
struct Cut {
    period: usize,
    horizon: usize,
    step: usize,
    count: usize,
    log: bool,
}

/// Tasks at training sizes `n − h − k·step` for `k = 0..count` (oldest first).
fn rolling(group: &str, name: &str, y: &[f64], cut: Cut) -> Vec<Task> {
    (0..cut.count)
        .rev()
        .map(|k| {
            let origin = y.len() - cut.horizon - k * cut.step;
            Task {
                id: format!("{name}@{origin}"),
                group: group.to_string(),
                period: cut.period,
                horizon: cut.horizon,
                log: cut.log,
                train: y[..origin].to_vec(),
                test: y[origin..origin + cut.horizon].to_vec(),
            }
        })
        .collect()
}

fn write_tasks(out: &Path) -> Result<(), BoxError> {
    let mut tasks = Vec::new();
    let airline = read_columns(
        "airline_passengers.csv",
        TimeColumn::First,
        &["Passengers"],
        FillPolicy::None,
    )?
    .remove(0);
    // Monthly, origins 72, 78, …, 132 (6 to 11 years of training), 12 months ahead, on log.
    let cut = Cut {
        period: 12,
        horizon: 12,
        step: 6,
        count: 11,
        log: true,
    };
    tasks.extend(rolling("airline", "airline", &airline, cut));

    let change_cols = [
        "Consumption",
        "Income",
        "Production",
        "Savings",
        "Unemployment",
    ];
    let change = read_columns(
        "us_change.csv",
        TimeColumn::First,
        &change_cols,
        FillPolicy::None,
    )?;
    for (name, y) in change_cols.iter().zip(&change) {
        let id = format!("us_change/{name}");
        let cut = Cut {
            period: 4,
            horizon: 8,
            step: 8,
            count: 4,
            log: false,
        };
        tasks.extend(rolling("us_change", &id, y, cut));
    }

    let macro_cols = [
        ("realgdp", true),
        ("cpi", false),
        ("unemp", false),
        ("tbilrate", false),
    ];
    let names: Vec<&str> = macro_cols.iter().map(|(c, _)| *c).collect();
    let macro_data = read_columns(
        "us_macrodata.csv",
        TimeColumn::YearQuarter {
            year: "year".into(),
            quarter: "quarter".into(),
        },
        &names,
        FillPolicy::None,
    )?;
    for ((name, log), y) in macro_cols.iter().zip(&macro_data) {
        let id = format!("us_macrodata/{name}");
        let cut = Cut {
            period: 4,
            horizon: 8,
            step: 8,
            count: 4,
            log: *log,
        };
        tasks.extend(rolling("us_macrodata", &id, y, cut));
    }

    // Trading days (holidays are not gaps): 60 windows of 250 training days + 10 test days,
    // origins 130 days apart so the test stretches are disjoint.
    let msft = read_columns(
        "msft_daily.csv",
        TimeColumn::First,
        &["Close"],
        FillPolicy::Drop,
    )?
    .remove(0);
    for k in (0..60).rev() {
        let end = msft.len() - k * 130;
        let origin = end - 10;
        tasks.push(Task {
            id: format!("msft/Close@{origin}"),
            group: "msft".into(),
            period: 1,
            horizon: 10,
            log: false,
            train: msft[origin - 250..origin].to_vec(),
            test: msft[origin..end].to_vec(),
        });
    }

    let bt = |id: &str, y: &[f64], period, log, horizon, step, windows: usize| BacktestTask {
        id: id.to_string(),
        period,
        log,
        horizon,
        step,
        windows,
        origins: (0..windows)
            .map(|i| y.len() - horizon - (windows - 1 - i) * step)
            .collect(),
        values: y.to_vec(),
    };
    let backtests = vec![
        bt("airline (log)", &airline, 12, true, 12, 12, 6),
        bt("us_change/Consumption", &change[0], 4, false, 4, 4, 10),
    ];
    let notes = vec![
        "airline: monthly, log, h=12, 11 origins 72..132 step 6".to_string(),
        "us_change: 5 columns, quarterly, h=8, 4 origins 8 apart".to_string(),
        "us_macrodata: realgdp (log), cpi, unemp, tbilrate; quarterly, h=8, 4 origins 8 apart"
            .to_string(),
        format!(
            "msft Close: 60 windows of 250 trading days + 10 ahead, origins 130 days apart \
             (of {} days), period 1",
            msft.len()
        ),
    ];
    let file = TaskFile {
        levels: LEVELS.to_vec(),
        notes,
        tasks,
        backtests,
    };
    let path = out.join("tasks.json");
    std::fs::write(&path, serde_json::to_string(&file)?)?;
    eprintln!(
        "wrote {} tasks and {} backtests to {}",
        file.tasks.len(),
        file.backtests.len(),
        path.display()
    );
    Ok(())
}

fn pipeline(model: &str, period: usize, log: bool) -> Pipeline {
    let spec = match model {
        "AutoARIMA" => ModelSpec::AutoArima(AutoArimaSpec {
            period,
            ..AutoArimaSpec::default()
        }),
        _ => ModelSpec::Ets(EtsSpec::auto(period)),
    };
    Pipeline {
        model: spec,
        transform: if log { Transform::Log } else { Transform::None },
        bias_adjust: false,
    }
}

fn to_fc(f: &Forecast) -> Result<Fc, BoxError> {
    let iv = |level: f64| {
        f.interval(level)
            .ok_or_else(|| BoxError::from(format!("no {level} % interval")))
    };
    let (i80, i95) = (iv(80.0)?, iv(95.0)?);
    Ok(Fc {
        mean: f.mean.clone(),
        lo80: i80.lower.clone(),
        hi80: i80.upper.clone(),
        lo95: i95.lower.clone(),
        hi95: i95.upper.clone(),
    })
}

fn read_tasks(out: &Path) -> Result<TaskFile, BoxError> {
    let path = out.join("tasks.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn run_aurum(out: &Path) -> Result<(), BoxError> {
    let file = read_tasks(out)?;
    let mut models = BTreeMap::new();
    for model in MODELS {
        let mut results = Vec::with_capacity(file.tasks.len());
        let mut total = 0.0;
        for task in &file.tasks {
            let p = pipeline(model, task.period, task.log);
            let start = Instant::now();
            let fitted = p.fit(&task.train);
            let fc = fitted
                .as_ref()
                .map_err(ToString::to_string)
                .and_then(|m| m.forecast(task.horizon, &LEVELS).map_err(|e| e.to_string()));
            let seconds = start.elapsed().as_secs_f64();
            total += seconds;
            let (forecast, error) = match fc {
                Ok(f) => (Some(to_fc(&f)?), None),
                Err(e) => (None, Some(e)),
            };
            results.push(TaskResult {
                id: task.id.clone(),
                seconds,
                model: fitted.ok().map(|m| m.describe().replace(" on log", "")),
                forecast,
                error,
            });
        }
        eprintln!(
            "aurum {model:<9}: {} tasks in {total:.3} s",
            file.tasks.len()
        );
        models.insert(model.to_string(), results);
    }

    let mut backtests = BTreeMap::new();
    for bt in &file.backtests {
        let mut per_model = BTreeMap::new();
        for model in MODELS {
            let cfg = BacktestConfig {
                horizon: bt.horizon,
                step: bt.step,
                windows: bt.windows,
                levels: LEVELS.to_vec(),
                season_period: bt.period,
            };
            let p = pipeline(model, bt.period, bt.log);
            let start = Instant::now();
            let report = backtest(&bt.values, &p, &p.name(), &cfg);
            let seconds = start.elapsed().as_secs_f64();
            let result = match report {
                Ok(r) => BacktestResult {
                    seconds,
                    windows: r
                        .windows
                        .iter()
                        .map(|w| {
                            Ok(WindowFc {
                                origin: w.origin,
                                forecast: to_fc(&w.forecast)?,
                            })
                        })
                        .collect::<Result<_, BoxError>>()?,
                    error: None,
                },
                Err(e) => BacktestResult {
                    seconds,
                    windows: Vec::new(),
                    error: Some(e.to_string()),
                },
            };
            eprintln!("aurum {model:<9}: backtest {} in {seconds:.3} s", bt.id);
            per_model.insert(model.to_string(), result);
        }
        backtests.insert(bt.id.clone(), per_model);
    }

    let side = SideFile {
        side: "aurum".into(),
        versions: BTreeMap::from([("aurum".to_string(), aurum_core::AURUM_VERSION.to_string())]),
        warmup_seconds: BTreeMap::new(),
        models,
        backtests,
    };
    std::fs::write(
        out.join("forecasts_aurum.json"),
        serde_json::to_string(&side)?,
    )?;
    Ok(())
}

/// Accuracy of one forecast path (or pooled windows): MASE, sMAPE, coverage 80, coverage 95.
struct Score {
    mase: Option<f64>,
    smape: Option<f64>,
    cov80: f64,
    cov95: f64,
}

fn score_pooled(parts: &[(&[f64], &Fc, f64)]) -> Score {
    let mut actual = Vec::new();
    let mut predicted = Vec::new();
    let mut scales = Vec::new();
    let mut b80 = Vec::new();
    let mut b95 = Vec::new();
    for (y, fc, scale) in parts {
        actual.extend_from_slice(y);
        predicted.extend_from_slice(&fc.mean[..y.len()]);
        scales.extend(std::iter::repeat_n(*scale, y.len()));
        b80.extend(fc.lo80.iter().copied().zip(fc.hi80.iter().copied()));
        b95.extend(fc.lo95.iter().copied().zip(fc.hi95.iter().copied()));
    }
    let m = accuracy(&actual, &predicted, &scales, &[(80.0, b80), (95.0, b95)]);
    Score {
        mase: m.mase,
        smape: m.smape,
        cov80: m.coverage[0].1,
        cov95: m.coverage[1].1,
    }
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { f64::NAN } else { s / n as f64 }
}

fn read_side(out: &Path, side: &str) -> Result<SideFile, BoxError> {
    let path = out.join(format!("forecasts_{side}.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn score(out: &Path) -> Result<(), BoxError> {
    let file = read_tasks(out)?;
    let sides: Vec<SideFile> = SIDES
        .iter()
        .map(|s| read_side(out, s))
        .collect::<Result<_, _>>()?;
    let scale: Vec<Option<f64>> = file
        .tasks
        .iter()
        .map(|t| mase_scale(&t.train, t.period).filter(|s| *s > 0.0))
        .collect();

    // results[side][model][task] = score, when that side forecast that task.
    let mut per_task: BTreeMap<(&str, &str), Vec<Option<Score>>> = BTreeMap::new();
    for side in &sides {
        for model in MODELS {
            let results = side
                .models
                .get(model)
                .ok_or_else(|| format!("{}: no results for {model}", side.side))?;
            if results.len() != file.tasks.len() {
                return Err(format!("{} {model}: wrong number of tasks", side.side).into());
            }
            let scores = file
                .tasks
                .iter()
                .zip(results)
                .zip(&scale)
                .map(|((t, r), s)| {
                    assert_eq!(t.id, r.id, "task order differs");
                    let fc = r.forecast.as_ref()?;
                    let all_finite = [&fc.mean, &fc.lo80, &fc.hi80, &fc.lo95, &fc.hi95]
                        .iter()
                        .all(|v| v.len() == t.horizon && v.iter().all(|x| x.is_finite()));
                    all_finite.then(|| score_pooled(&[(&t.test, fc, s.unwrap_or(0.0))]))
                })
                .collect();
            per_task.insert((side_name(&side.side), model), scores);
        }
    }
    // The common task set: every side and model produced a finite forecast, and MASE is defined.
    let common: Vec<usize> = (0..file.tasks.len())
        .filter(|&i| scale[i].is_some() && per_task.values().all(|v| v[i].is_some()))
        .collect();

    let mut main = Vec::new();
    let mut groups = Vec::new();
    let group_names: Vec<String> = {
        let mut g: Vec<String> = file.tasks.iter().map(|t| t.group.clone()).collect();
        g.dedup();
        g
    };
    for model in MODELS {
        for side in &sides {
            let name = side_name(&side.side);
            let scores = &per_task[&(name, model)];
            let results = &side.models[model];
            let seconds: f64 = results.iter().map(|r| r.seconds).sum();
            let pick = |idx: &[usize], f: &dyn Fn(&Score) -> Option<f64>| {
                mean(idx.iter().filter_map(|&i| scores[i].as_ref().and_then(f)))
            };
            let failed: Vec<&str> = results
                .iter()
                .zip(scores)
                .filter(|(_, s)| s.is_none())
                .map(|(r, _)| r.id.as_str())
                .collect();
            main.push(serde_json::json!({
                "model": model,
                "side": name,
                "tasks_total": file.tasks.len(),
                "tasks_ok": file.tasks.len() - failed.len(),
                "tasks_scored": common.len(),
                "failed": failed,
                "mase": pick(&common, &|s| s.mase),
                "smape": pick(&common, &|s| s.smape),
                "cov80": pick(&common, &|s| Some(s.cov80)),
                "cov95": pick(&common, &|s| Some(s.cov95)),
                "seconds": seconds,
                "ms_per_series": 1e3 * seconds / file.tasks.len() as f64,
                "warmup_seconds": side.warmup_seconds.get(model),
            }));
            for g in &group_names {
                let idx: Vec<usize> = common
                    .iter()
                    .copied()
                    .filter(|&i| &file.tasks[i].group == g)
                    .collect();
                let secs: f64 = file
                    .tasks
                    .iter()
                    .zip(results)
                    .filter(|(t, _)| &t.group == g)
                    .map(|(_, r)| r.seconds)
                    .sum();
                groups.push(serde_json::json!({
                    "group": g,
                    "model": model,
                    "side": name,
                    "tasks": idx.len(),
                    "mase": pick(&idx, &|s| s.mase),
                    "smape": pick(&idx, &|s| s.smape),
                    "cov80": pick(&idx, &|s| Some(s.cov80)),
                    "cov95": pick(&idx, &|s| Some(s.cov95)),
                    "seconds": secs,
                }));
            }
        }
    }

    // Do the two sides choose the same model?
    let mut agreement = Vec::new();
    for model in MODELS {
        let (a, b) = (&sides[0].models[model], &sides[1].models[model]);
        let same = a
            .iter()
            .zip(b)
            .filter(|(x, y)| x.model.is_some() && x.model == y.model)
            .count();
        let mut picks: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for (x, y) in a.iter().zip(b) {
            if let Some(m) = &x.model {
                picks.entry(m.clone()).or_default().0 += 1;
            }
            if let Some(m) = &y.model {
                picks.entry(m.clone()).or_default().1 += 1;
            }
        }
        agreement.push(serde_json::json!({
            "model": model,
            "same": same,
            "tasks": file.tasks.len(),
            "picks": picks,
        }));
    }

    let mut backtests = Vec::new();
    for bt in &file.backtests {
        for model in MODELS {
            for side in &sides {
                let name = side_name(&side.side);
                let r = side
                    .backtests
                    .get(&bt.id)
                    .and_then(|m| m.get(model))
                    .ok_or_else(|| format!("{name}: no backtest {} for {model}", bt.id))?;
                let origins: Vec<usize> = r.windows.iter().map(|w| w.origin).collect();
                if r.error.is_none() && origins != bt.origins {
                    return Err(format!(
                        "{name} {model} {}: origins {origins:?}, expected {:?}",
                        bt.id, bt.origins
                    )
                    .into());
                }
                let parts: Vec<(&[f64], &Fc, f64)> = r
                    .windows
                    .iter()
                    .map(|w| {
                        let train = &bt.values[..w.origin];
                        (
                            &bt.values[w.origin..w.origin + bt.horizon],
                            &w.forecast,
                            mase_scale(train, bt.period).unwrap_or(0.0),
                        )
                    })
                    .collect();
                let s = (!parts.is_empty()).then(|| score_pooled(&parts));
                backtests.push(serde_json::json!({
                    "series": bt.id,
                    "model": model,
                    "side": name,
                    "call": if name == "aurum" { "backtest" } else { "cross_validation" },
                    "windows": bt.windows,
                    "horizon": bt.horizon,
                    "step": bt.step,
                    "origins": bt.origins,
                    "error": r.error,
                    "mase": s.as_ref().and_then(|s| s.mase),
                    "smape": s.as_ref().and_then(|s| s.smape),
                    "cov80": s.as_ref().map(|s| s.cov80),
                    "cov95": s.as_ref().map(|s| s.cov95),
                    "seconds": r.seconds,
                }));
            }
        }
    }

    let mut versions = BTreeMap::new();
    for side in &sides {
        versions.extend(side.versions.clone());
    }
    let results = serde_json::json!({
        "notes": file.notes,
        "tasks_total": file.tasks.len(),
        "tasks_scored": common.len(),
        "versions": versions,
        "main": main,
        "groups": groups,
        "agreement": agreement,
        "backtests": backtests,
    });
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    eprintln!(
        "scored {} of {} tasks on both sides",
        common.len(),
        file.tasks.len()
    );
    Ok(())
}

fn side_name(s: &str) -> &'static str {
    match s {
        "aurum" => "aurum",
        _ => "statsforecast",
    }
}
