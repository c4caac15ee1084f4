//! Forecasting as a service: one-shot forecasts of a series given in the request, STL/MSTL
//! decomposition, and registered forecasting models (fitted on an imported dataset, versioned in
//! the registry with their data window, forecast with optional new observations that update the
//! state without refitting).
//!
//! Series from requests go through exactly the same ingest as files (`aurum_forecast::read_csv`),
//! so the time-index checks (monotonic, duplicates), frequency inference and the explicit fill
//! policy behave identically whatever the source.

use aurum_core::FamilyName;
use aurum_forecast::spec::{
    ForecastSpec, check_spec, csv_options, fit_series, periods_for, pipelines, read_column,
    selection_config, to_returns,
};
use aurum_forecast::{BacktestConfig, FittedModel, ForecastError, ParsedSeries, Score, StlOptions};
use aurum_registry::VersionRecord;

use crate::platform::{internal, join_error};
use crate::{CallContext, Platform, ServiceError};

/// A series given in a request: timestamps (dates, date-times or integers; `None` = a plain
/// sequence indexed 0, 1, 2, …) and values (`None` = missing, handled by the fill policy).
#[derive(Clone, Debug, Default)]
pub struct SeriesInput {
    pub timestamps: Option<Vec<String>>,
    pub values: Vec<Option<f64>>,
}

/// A forecast and how it was made.
#[derive(Clone, Debug)]
pub struct ForecastOutput {
    /// The fitted model, e.g. `ARIMA(0,1,1)(0,1,1)[12]`.
    pub model: String,
    pub frequency: String,
    pub history_points: usize,
    /// Points the fill policy supplied (0 with policy `none`).
    pub filled_points: usize,
    pub timestamps: Vec<String>,
    pub mean: Vec<f64>,
    /// `(level, lower, upper)`.
    pub intervals: Vec<(f64, Vec<f64>, Vec<f64>)>,
    /// With `auto`: each candidate and its backtest MASE (`None` if it could not be evaluated).
    pub candidates: Vec<(String, Option<f64>)>,
    pub aicc: Option<f64>,
    /// The last history timestamp.
    pub last_timestamp: String,
    /// The history the model was fitted on (for plots); empty for registered models.
    pub history: Vec<(String, f64)>,
}

/// An STL/MSTL decomposition.
#[derive(Clone, Debug)]
pub struct DecompositionOutput {
    pub timestamps: Vec<String>,
    pub periods: Vec<usize>,
    pub trend: Vec<f64>,
    pub seasonal: Vec<Vec<f64>>,
    pub remainder: Vec<f64>,
}

fn bad(field: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::invalid("invalid_field", Some(field), message)
}

fn ts_string(t: &chrono::NaiveDateTime) -> String {
    if t.time() == chrono::NaiveTime::MIN {
        t.date().to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S").to_string()
    }
}

/// Where a series came from, to name the offending field of an error.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// `series.timestamps` / `series.values` of a request (CSV line `k` is element `k − 2`).
    Request,
    /// Columns of a CSV file.
    File { date: &'a str, value: &'a str },
}

/// A forecasting error with the field it is about, so every caller error carries
/// `details.field`. Our own failures keep their class.
fn forecast_error(e: ForecastError, source: Source<'_>) -> ServiceError {
    if !e.is_user_error() {
        return ServiceError::Forecast(e);
    }
    let at = |what: &str, line: u64| match source {
        Source::Request => format!("series.{what}[{}]", line.saturating_sub(2)),
        Source::File { date, value } => {
            if what == "timestamps" {
                date.to_string()
            } else {
                value.to_string()
            }
        }
    };
    let whole = |what: &str| match source {
        Source::Request => format!("series.{what}"),
        Source::File { date, value } => {
            if what == "timestamps" {
                date.to_string()
            } else {
                value.to_string()
            }
        }
    };
    let field = match &e {
        ForecastError::Csv { .. } | ForecastError::NoData | ForecastError::TooFewPoints { .. } => {
            whole("values")
        }
        ForecastError::MissingColumn { name, .. } => name.clone(),
        ForecastError::BadTimestamp { line, .. }
        | ForecastError::NonMonotonic { line, .. }
        | ForecastError::DuplicateTimestamp { line, .. } => at("timestamps", *line),
        ForecastError::BadValue { line, .. } | ForecastError::MissingValue { line, .. } => {
            at("values", *line)
        }
        ForecastError::Gap { .. } => whole("timestamps"),
        ForecastError::UnknownFrequency { .. } => "frequency".into(),
        ForecastError::NonFinite { index, .. } | ForecastError::ValueTooLarge { index, .. } => {
            match source {
                Source::Request => format!("series.values[{index}]"),
                Source::File { value, .. } => value.to_string(),
            }
        }
        ForecastError::InvalidField { field, .. } => field.clone(),
        ForecastError::InvalidParameter(_) | ForecastError::BadArtifact(_) => "model".into(),
        ForecastError::FitFailed(_) | ForecastError::Cancelled => {
            return ServiceError::Forecast(e);
        }
    };
    ServiceError::Invalid {
        code: e.code(),
        field: Some(field),
        message: e.to_string(),
    }
}

fn req_err(e: ForecastError) -> ServiceError {
    forecast_error(e, Source::Request)
}

/// Cancels its token when dropped: a request whose future is dropped (the client went away, the
/// request timed out) stops its fit, which checks the token inside the optimisers.
struct CancelOnDrop(aurum_core::CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Runs a fit on the blocking pool with a token that the caller's drop cancels.
async fn blocking_fit<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    let token = aurum_core::CancelToken::new();
    let _guard = CancelOnDrop(token.clone());
    tokio::task::spawn_blocking(move || aurum_forecast::with_cancel(&token, f))
        .await
        .map_err(join_error)?
}

/// Turns request values into a checked series via the same CSV ingest as files.
fn series_from_input(
    input: &SeriesInput,
    spec: &ForecastSpec,
) -> Result<ParsedSeries, ServiceError> {
    let steps: Vec<String>;
    let (timestamps, spec) = match &input.timestamps {
        Some(t) => (t, spec.clone()),
        None => {
            steps = (0..input.values.len()).map(|i| i.to_string()).collect();
            let spec = ForecastSpec {
                date_format: Some("index".into()),
                ..spec.clone()
            };
            (&steps, spec)
        }
    };
    if timestamps.len() != input.values.len() {
        return Err(bad(
            "series.values",
            format!(
                "{} timestamps but {} values",
                timestamps.len(),
                input.values.len()
            ),
        ));
    }
    if input.values.is_empty() {
        return Err(bad("series.values", "the series is empty"));
    }
    let mut csv = String::from("timestamp,value\n");
    for (i, (t, v)) in timestamps.iter().zip(&input.values).enumerate() {
        if t.contains([',', '"', '\n', '\r']) {
            return Err(bad(
                &format!("series.timestamps[{i}]"),
                format!("`{t}` is not a timestamp"),
            ));
        }
        match v {
            Some(x) if !x.is_finite() => {
                return Err(bad(
                    &format!("series.values[{i}]"),
                    "values must be finite numbers",
                ));
            }
            Some(x) => csv.push_str(&format!("{t},{x:?}\n")),
            None => csv.push_str(&format!("{t},\n")),
        }
    }
    let opts = csv_options(&spec, "timestamp".into(), "value".into()).map_err(req_err)?;
    let mut parsed = aurum_forecast::read_csv(csv.as_bytes(), &opts).map_err(req_err)?;
    let series = parsed
        .pop()
        .ok_or_else(|| bad("series", "no series in the request"))?;
    to_returns(series, spec.returns.as_deref()).map_err(req_err)
}

/// Rolling-origin backtest figures of one model.
#[derive(Clone, Debug)]
pub struct BacktestOutput {
    pub model: String,
    /// Origins evaluated.
    pub windows_run: usize,
    pub horizon: usize,
    pub mae: f64,
    pub rmse: f64,
    pub mape: Option<f64>,
    pub smape: Option<f64>,
    pub mase: Option<f64>,
    /// `(level, share of actuals inside the interval)`.
    pub coverage: Vec<(f64, f64)>,
    /// For `auto`: the model it selected on the whole series.
    pub selected: Option<String>,
    /// Every forecast origin.
    pub windows: Vec<BacktestWindow>,
    /// Why the model could not be evaluated (then the figures are empty); only for candidates of
    /// `auto`.
    pub error: Option<String>,
}

/// One origin of a backtest: what was forecast and what happened.
#[derive(Clone, Debug)]
pub struct BacktestWindow {
    /// The last training timestamp.
    pub origin: String,
    pub timestamps: Vec<String>,
    pub actual: Vec<f64>,
    pub mean: Vec<f64>,
    /// `(level, lower, upper)`.
    pub intervals: Vec<(f64, Vec<f64>, Vec<f64>)>,
}

fn backtest_output(
    name: &str,
    r: &aurum_forecast::BacktestReport,
    series: &aurum_forecast::Series,
    horizon: usize,
) -> BacktestOutput {
    let label = |i: usize| series.frequency.label(series.timestamps[i]);
    BacktestOutput {
        model: name.to_string(),
        windows_run: r.windows.len(),
        horizon,
        mae: r.metrics.mae,
        rmse: r.metrics.rmse,
        mape: r.metrics.mape,
        smape: r.metrics.smape,
        mase: r.metrics.mase,
        coverage: r.metrics.coverage.clone(),
        selected: None,
        windows: r
            .windows
            .iter()
            .map(|w| BacktestWindow {
                origin: label(w.origin - 1),
                timestamps: (w.origin..w.origin + w.actual.len()).map(label).collect(),
                actual: w.actual.clone(),
                mean: w.forecast.mean.clone(),
                intervals: w
                    .forecast
                    .intervals
                    .iter()
                    .map(|i| (i.level, i.lower.clone(), i.upper.clone()))
                    .collect(),
            })
            .collect(),
        error: None,
    }
}

fn output(
    fitted: &FittedModel,
    series: &ParsedSeries,
    spec: &ForecastSpec,
    candidates: Vec<(String, Option<f64>)>,
) -> Result<ForecastOutput, ServiceError> {
    let f = fitted.forecast(spec.horizon, &spec.levels)?;
    let s = &series.series;
    let last = *s
        .timestamps
        .last()
        .ok_or_else(|| bad("series", "the series is empty"))?;
    let label = |t: &chrono::NaiveDateTime| s.frequency.label(*t);
    let timestamps = s
        .future_timestamps(spec.horizon)
        .iter()
        .map(label)
        .collect();
    Ok(ForecastOutput {
        model: fitted.describe(),
        frequency: s.frequency.to_string(),
        history_points: s.values.len(),
        filled_points: series.report.filled.len(),
        timestamps,
        mean: f.mean,
        intervals: f
            .intervals
            .into_iter()
            .map(|i| (i.level, i.lower, i.upper))
            .collect(),
        candidates,
        aicc: fitted.aicc(),
        last_timestamp: label(&last),
        history: s
            .timestamps
            .iter()
            .map(label)
            .zip(s.values.iter().copied())
            .collect(),
    })
}

/// Fits and forecasts one column of CSV bytes (blocking).
fn forecast_bytes(
    bytes: &[u8],
    date: &str,
    value: &str,
    spec: &ForecastSpec,
) -> Result<ForecastOutput, ServiceError> {
    let source = Source::File { date, value };
    let series = read_column(bytes, date.to_string(), value.to_string(), spec)
        .map_err(|e| forecast_error(e, source))?;
    let (fitted, candidates) = fit_series(spec, &series).map_err(|e| forecast_error(e, source))?;
    output(&fitted, &series, spec, candidates)
}

impl Platform {
    /// Fits and forecasts a series given in the request; nothing is stored.
    pub async fn forecast_once(
        &self,
        input: SeriesInput,
        spec: ForecastSpec,
    ) -> Result<ForecastOutput, ServiceError> {
        check_spec(&spec).map_err(req_err)?;
        blocking_fit(move || {
            let series = series_from_input(&input, &spec)?;
            let (fitted, candidates) = fit_series(&spec, &series).map_err(req_err)?;
            output(&fitted, &series, &spec, candidates)
        })
        .await
    }

    /// Fits and forecasts one column of a CSV file (the CLI's `aurum forecast`).
    pub async fn forecast_csv(
        &self,
        bytes: Vec<u8>,
        date_column: &str,
        value_column: &str,
        spec: ForecastSpec,
    ) -> Result<ForecastOutput, ServiceError> {
        Self::forecast_file(bytes, date_column, value_column, spec).await
    }

    /// [`Platform::forecast_csv`] without a platform: nothing is read from or written to a data
    /// directory, so a one-shot forecast needs no storage.
    pub async fn forecast_file(
        bytes: Vec<u8>,
        date_column: &str,
        value_column: &str,
        spec: ForecastSpec,
    ) -> Result<ForecastOutput, ServiceError> {
        check_spec(&spec).map_err(req_err)?;
        aurum_families::register_forecasters();
        let (date, value) = (date_column.to_string(), value_column.to_string());
        blocking_fit(move || forecast_bytes(&bytes, &date, &value, &spec)).await
    }

    /// Rolling-origin cross-validation of each model named in `models` (as in
    /// [`ForecastSpec::model`]) on a series given in the request, with every window's forecast.
    /// `auto` is evaluated as a whole (selection re-run at every origin) and its candidates are
    /// reported beside it.
    pub async fn backtest(
        &self,
        input: SeriesInput,
        spec: ForecastSpec,
        models: Vec<String>,
        windows: usize,
        step: usize,
    ) -> Result<Vec<BacktestOutput>, ServiceError> {
        check_spec(&spec).map_err(req_err)?;
        if windows == 0 || windows > 500 {
            return Err(bad("windows", "windows must be between 1 and 500"));
        }
        if step == 0 {
            return Err(bad("step", "step must be at least 1"));
        }
        if models.is_empty() {
            return Err(bad("models", "name one or more models"));
        }
        blocking_fit(move || {
            let series = series_from_input(&input, &spec)?;
            let periods = periods_for(&spec, &series);
            let cfg = BacktestConfig {
                horizon: spec.horizon,
                step,
                windows,
                levels: spec.levels.clone(),
                season_period: periods[0],
            };
            let y = &series.series.values;
            let mut out = Vec::new();
            for m in &models {
                let one = ForecastSpec {
                    model: m.clone(),
                    ..spec.clone()
                };
                let candidates = pipelines(&one, &periods).map_err(req_err)?;
                if candidates.len() == 1 {
                    let r =
                        aurum_forecast::backtest(y, &candidates[0], m, &cfg).map_err(req_err)?;
                    out.push(backtest_output(m, &r, &series.series, spec.horizon));
                    continue;
                }
                // `auto`: the whole selection is the model under test.
                let auto = AutoSelect {
                    spec: &one,
                    periods: &periods,
                };
                let r = aurum_forecast::backtest(y, &auto, m, &cfg).map_err(req_err)?;
                let mut o = backtest_output(m, &r, &series.series, spec.horizon);
                let sel_cfg = selection_config(y.len(), spec.horizon, &periods, &spec.levels);
                let selection =
                    aurum_forecast::select_by_backtest(y, &candidates, &sel_cfg, Score::Mase)
                        .map_err(req_err)?;
                o.selected = Some(candidates[selection.best].name());
                out.push(o);
                for (c, r) in candidates.iter().zip(&selection.reports) {
                    let name = format!("{m}/{}", c.name());
                    match r {
                        Ok(r) => {
                            out.push(backtest_output(&name, r, &series.series, sel_cfg.horizon))
                        }
                        Err(e) => out.push(BacktestOutput {
                            model: name,
                            windows_run: 0,
                            horizon: sel_cfg.horizon,
                            mae: f64::NAN,
                            rmse: f64::NAN,
                            mape: None,
                            smape: None,
                            mase: None,
                            coverage: Vec::new(),
                            selected: None,
                            windows: Vec::new(),
                            error: Some(e.to_string()),
                        }),
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// STL (one period) or MSTL (several) decomposition of a series given in the request.
    pub async fn decompose(
        &self,
        input: SeriesInput,
        periods: Vec<usize>,
        fill: String,
    ) -> Result<DecompositionOutput, ServiceError> {
        tokio::task::spawn_blocking(move || {
            let spec = ForecastSpec {
                fill,
                ..ForecastSpec::default()
            };
            let series = series_from_input(&input, &spec)?;
            if let Some(i) = periods.iter().position(|p| *p < 2) {
                return Err(bad(
                    &format!("periods[{i}]"),
                    format!(
                        "a season period must be at least 2 observations, got {}",
                        periods[i]
                    ),
                ));
            }
            let periods = if periods.is_empty() {
                vec![series.series.frequency.default_season_period()]
            } else {
                periods
            };
            let opts = StlOptions::default();
            let d = if periods.len() == 1 {
                aurum_forecast::stl(&series.series.values, periods[0], &opts)
            } else {
                aurum_forecast::mstl(&series.series.values, &periods, &opts)
            }
            .map_err(req_err)?;
            let f = series.series.frequency;
            Ok(DecompositionOutput {
                timestamps: series
                    .series
                    .timestamps
                    .iter()
                    .map(|t| f.label(*t))
                    .collect(),
                periods: d.periods,
                trend: d.trend,
                seasonal: d.seasonal,
                remainder: d.remainder,
            })
        })
        .await
        .map_err(join_error)?
    }

    /// Fits a forecasting model on columns of an imported dataset and registers it as a new
    /// version of `model`, through the same training-job runner, registry path and audit events
    /// as every family (family `forecast`); then forecasts `spec.horizon` steps with it.
    #[allow(clippy::too_many_arguments)]
    pub async fn train_forecast(
        &self,
        ctx: &CallContext,
        model: &str,
        dataset: &str,
        date_column: &str,
        value_column: &str,
        spec: ForecastSpec,
        alias: Option<&str>,
    ) -> Result<(VersionRecord, ForecastOutput), ServiceError> {
        check_spec(&spec).map_err(req_err)?;
        let params = aurum_forecast::family::params_of(date_column, &spec);
        let req = crate::TrainRequest {
            dataset: dataset.to_string(),
            target: value_column.to_string(),
            kind: FamilyName::new(aurum_forecast::family::SPEC.name).map_err(internal)?,
            model: model.to_string(),
            params,
            positive_label: None,
            alias: alias.map(str::to_string),
            date_column: None,
            text_columns: None,
            text_buckets: None,
        };
        let (_, version) = self
            .run_training(ctx, req, std::sync::Arc::new(aurum_core::NoProgress))
            .await?;
        let loaded = self.load_version(model, version.version).await?;
        let out = forecast_with(&loaded, &[], spec.horizon, &spec.levels).await?;
        Ok((version, out))
    }

    /// Queues the fit of [`Platform::train_forecast`] as a background training job and returns
    /// it at once: for long fits (long seasons, `auto` on long series) that would outlast a
    /// request. The job reports progress, and cancelling it stops the fit inside its optimiser.
    #[allow(clippy::too_many_arguments)]
    pub async fn submit_forecast_training(
        &self,
        ctx: &CallContext,
        model: &str,
        dataset: &str,
        date_column: &str,
        value_column: &str,
        spec: ForecastSpec,
        alias: Option<&str>,
    ) -> Result<aurum_registry::JobRecord, ServiceError> {
        check_spec(&spec).map_err(req_err)?;
        let req = crate::TrainRequest {
            dataset: dataset.to_string(),
            target: value_column.to_string(),
            kind: FamilyName::new(aurum_forecast::family::SPEC.name).map_err(internal)?,
            model: model.to_string(),
            params: aurum_forecast::family::params_of(date_column, &spec),
            text_columns: None,
            text_buckets: None,
            positive_label: None,
            alias: alias.map(str::to_string),
            date_column: None,
        };
        self.submit_training(ctx, req).await
    }

    /// Forecasts with a registered forecasting model (`version` or the alias's version), loaded
    /// through the model cache like every version. New observations, if given, update the
    /// model's state with its parameters fixed; nothing is stored by this call.
    #[allow(clippy::too_many_arguments)]
    pub async fn forecast_registered(
        &self,
        ctx: &CallContext,
        model: &str,
        version: Option<u32>,
        alias: &str,
        new_values: Vec<f64>,
        horizon: usize,
        levels: Vec<f64>,
    ) -> Result<(u32, ForecastOutput), ServiceError> {
        let spec = ForecastSpec {
            horizon,
            levels,
            ..ForecastSpec::default()
        };
        check_spec(&spec).map_err(req_err)?;
        if let Some((i, _)) = new_values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(bad(
                &format!("new_observations[{i}]"),
                "values must be finite numbers",
            ));
        }
        if let Some((i, v)) = new_values
            .iter()
            .enumerate()
            .find(|(_, v)| v.abs() > aurum_forecast::MAX_MAGNITUDE)
        {
            return Err(ServiceError::invalid(
                "forecast_value_too_large",
                Some(&format!("new_observations[{i}]")),
                format!(
                    "new_observations[{i}] is {v:e}, too large to fit without overflow: models need \
                     values within ±{:e}",
                    aurum_forecast::MAX_MAGNITUDE
                ),
            ));
        }
        let reference = match version {
            Some(v) => crate::ModelRef::version(model, v),
            None => crate::ModelRef::alias(model, alias),
        };
        let loaded = self.resolve(&reference).await?;
        loaded.check_scoring()?;
        let out = forecast_with(&loaded, &new_values, spec.horizon, &spec.levels).await?;
        let n_new = new_values.len();
        self.audit(
            ctx,
            "forecast",
            Some((model, Some(loaded.version))),
            serde_json::json!({"horizon": horizon, "new_observations": n_new, "mean": out.mean}),
        )
        .await?;
        Ok((loaded.version, out))
    }
}

/// `auto` as one forecaster: selection by backtest on the data it is given, then the winner fitted
/// on all of it.
struct AutoSelect<'a> {
    spec: &'a ForecastSpec,
    periods: &'a [usize],
}

impl aurum_forecast::Forecaster for AutoSelect<'_> {
    fn fit(&self, y: &[f64]) -> Result<FittedModel, ForecastError> {
        aurum_forecast::spec::fit(self.spec, y, self.periods).map(|(m, _)| m)
    }
}

/// A registered forecaster's forecast as the service answers it (on the blocking pool).
async fn forecast_with(
    loaded: &std::sync::Arc<crate::LoadedModel>,
    new_values: &[f64],
    horizon: usize,
    levels: &[f64],
) -> Result<ForecastOutput, ServiceError> {
    loaded.forecaster()?;
    let (m, new_values, levels) = (loaded.clone(), new_values.to_vec(), levels.to_vec());
    tokio::task::spawn_blocking(move || {
        let f = m.forecaster()?.forecast(horizon, &levels, &new_values)?;
        let summary = m.model.summary();
        let candidates = summary["candidates"]
            .as_array()
            .map(|c| {
                c.iter()
                    .map(|x| {
                        (
                            x["model"].as_str().unwrap_or_default().to_string(),
                            x["backtest_mase"].as_f64(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok::<_, ServiceError>(ForecastOutput {
            model: f.model,
            frequency: f.frequency,
            history_points: summary["history_points"].as_u64().unwrap_or(0) as usize,
            filled_points: summary["filled_points"].as_u64().unwrap_or(0) as usize,
            timestamps: f.timestamps.iter().map(ts_string).collect(),
            mean: f.mean,
            intervals: f.intervals,
            candidates,
            aicc: f.aicc,
            last_timestamp: ts_string(&f.last_timestamp),
            history: Vec::new(),
        })
    })
    .await
    .map_err(join_error)?
}
