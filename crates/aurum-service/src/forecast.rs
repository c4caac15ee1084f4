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
    ForecastSpec, check_spec, fit_series, parse_fill, parse_frequency, pipelines, read_column,
    to_returns,
};
use aurum_forecast::{
    BacktestConfig, CsvOptions, FittedModel, ParsedSeries, StlOptions, TimeColumn,
};
use aurum_registry::VersionRecord;

use crate::platform::{internal, join_error};
use crate::{CallContext, Platform, ServiceError};

/// A series given in a request: timestamps (ISO dates or date-times) and values (`None` =
/// missing, handled by the fill policy).
#[derive(Clone, Debug, Default)]
pub struct SeriesInput {
    pub timestamps: Vec<String>,
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

/// Turns request values into a checked, regular series via the same CSV ingest as files.
fn series_from_input(
    input: &SeriesInput,
    spec: &ForecastSpec,
) -> Result<ParsedSeries, ServiceError> {
    if input.timestamps.len() != input.values.len() {
        return Err(bad(
            "series.values",
            format!(
                "{} timestamps but {} values",
                input.timestamps.len(),
                input.values.len()
            ),
        ));
    }
    if input.values.is_empty() {
        return Err(bad("series.values", "the series is empty"));
    }
    let mut csv = String::from("timestamp,value\n");
    for (i, (t, v)) in input.timestamps.iter().zip(&input.values).enumerate() {
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
    let opts = CsvOptions {
        time: TimeColumn::Named("timestamp".into()),
        value_columns: vec!["value".into()],
        fill: parse_fill(&spec.fill)?,
        frequency: spec.frequency.as_deref().map(parse_frequency).transpose()?,
        ..CsvOptions::default()
    };
    let mut parsed = aurum_forecast::read_csv(csv.as_bytes(), &opts)?;
    let series = parsed
        .pop()
        .ok_or_else(|| bad("series", "no series in the request"))?;
    Ok(to_returns(series, spec.returns.as_deref())?)
}

/// Rolling-origin backtest figures of one model.
#[derive(Clone, Debug)]
pub struct BacktestOutput {
    pub model: String,
    pub windows: usize,
    pub horizon: usize,
    pub mae: f64,
    pub rmse: f64,
    pub mape: Option<f64>,
    pub smape: Option<f64>,
    pub mase: Option<f64>,
    /// `(level, share of actuals inside the interval)`.
    pub coverage: Vec<(f64, f64)>,
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
    let timestamps = s
        .frequency
        .future(last, spec.horizon)
        .iter()
        .map(ts_string)
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
        last_timestamp: ts_string(&last),
        history: s
            .timestamps
            .iter()
            .map(ts_string)
            .zip(s.values.iter().copied())
            .collect(),
    })
}

impl Platform {
    /// Fits and forecasts a series given in the request; nothing is stored.
    pub async fn forecast_once(
        &self,
        input: SeriesInput,
        spec: ForecastSpec,
    ) -> Result<ForecastOutput, ServiceError> {
        check_spec(&spec)?;
        tokio::task::spawn_blocking(move || {
            let series = series_from_input(&input, &spec)?;
            let (fitted, candidates) = fit_series(&spec, &series)?;
            output(&fitted, &series, &spec, candidates)
        })
        .await
        .map_err(join_error)?
    }

    /// Fits and forecasts one column of a CSV file (the CLI's `aurum forecast`).
    pub async fn forecast_csv(
        &self,
        bytes: Vec<u8>,
        date_column: &str,
        value_column: &str,
        spec: ForecastSpec,
    ) -> Result<ForecastOutput, ServiceError> {
        check_spec(&spec)?;
        let (date, value) = (date_column.to_string(), value_column.to_string());
        tokio::task::spawn_blocking(move || {
            let series = read_column(&bytes, date, value, &spec)?;
            let (fitted, candidates) = fit_series(&spec, &series)?;
            output(&fitted, &series, &spec, candidates)
        })
        .await
        .map_err(join_error)?
    }

    /// Rolling-origin cross-validation of each model named in `models` (as in
    /// [`ForecastSpec::model`], `auto` excluded) on a series given in the request.
    pub async fn backtest(
        &self,
        input: SeriesInput,
        spec: ForecastSpec,
        models: Vec<String>,
        windows: usize,
        step: usize,
    ) -> Result<Vec<BacktestOutput>, ServiceError> {
        check_spec(&spec)?;
        if windows == 0 || windows > 500 {
            return Err(bad("windows", "windows must be between 1 and 500"));
        }
        if step == 0 {
            return Err(bad("step", "step must be at least 1"));
        }
        if models.is_empty() || models.iter().any(|m| m == "auto") {
            return Err(bad(
                "models",
                "name one or more models (auto is not a model)",
            ));
        }
        tokio::task::spawn_blocking(move || {
            let series = series_from_input(&input, &spec)?;
            let period = spec
                .season_period
                .unwrap_or_else(|| series.series.frequency.default_season_period());
            let cfg = BacktestConfig {
                horizon: spec.horizon,
                step,
                windows,
                levels: spec.levels.clone(),
                season_period: period,
            };
            models
                .iter()
                .map(|m| {
                    let one = ForecastSpec {
                        model: m.clone(),
                        ..spec.clone()
                    };
                    let pipeline = pipelines(&one, period)?.remove(0);
                    let r = aurum_forecast::backtest(&series.series.values, &pipeline, m, &cfg)?;
                    Ok(BacktestOutput {
                        model: m.clone(),
                        windows: r.windows.len(),
                        horizon: spec.horizon,
                        mae: r.metrics.mae,
                        rmse: r.metrics.rmse,
                        mape: r.metrics.mape,
                        smape: r.metrics.smape,
                        mase: r.metrics.mase,
                        coverage: r.metrics.coverage,
                    })
                })
                .collect()
        })
        .await
        .map_err(join_error)?
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
            let periods = if periods.is_empty() {
                vec![series.series.frequency.default_season_period()]
            } else {
                periods
            };
            let opts = StlOptions::default();
            let d = if periods.len() == 1 {
                aurum_forecast::stl(&series.series.values, periods[0], &opts)?
            } else {
                aurum_forecast::mstl(&series.series.values, &periods, &opts)?
            };
            Ok(DecompositionOutput {
                timestamps: series.series.timestamps.iter().map(ts_string).collect(),
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
        check_spec(&spec)?;
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
        };
        let (_, version) = self
            .run_training(ctx, req, std::sync::Arc::new(aurum_core::NoProgress))
            .await?;
        let loaded = self.load_version(model, version.version).await?;
        let out = forecast_with(&loaded, &[], spec.horizon, &spec.levels).await?;
        Ok((version, out))
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
        check_spec(&spec)?;
        if let Some((i, _)) = new_values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(bad(
                &format!("new_values[{i}]"),
                "values must be finite numbers",
            ));
        }
        let reference = match version {
            Some(v) => crate::ModelRef::version(model, v),
            None => crate::ModelRef::alias(model, alias),
        };
        let loaded = self.resolve(&reference).await?;
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
