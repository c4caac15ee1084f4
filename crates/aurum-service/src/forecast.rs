//! Forecasting as a service: one-shot forecasts of a series given in the request, STL/MSTL
//! decomposition, and registered forecasting models (fitted on an imported dataset, versioned in
//! the registry with their data window, forecast with optional new observations that update the
//! state without refitting).
//!
//! Series from requests go through exactly the same ingest as files (`aurum_forecast::read_csv`),
//! so the time-index checks (monotonic, duplicates), frequency inference and the explicit fill
//! policy behave identically whatever the source.

use aurum_core::{ModelKind, validate_name};
use aurum_forecast::{
    AutoArimaSpec, BacktestConfig, CsvOptions, EtsSpec, FillPolicy, FittedModel, Forecaster,
    Frequency, ModelSpec, ParsedSeries, Pipeline, Score, StlOptions, TimeColumn, Transform,
};
use aurum_registry::{NewVersion, VersionRecord, get_verified};

use crate::platform::{internal, join_error};
use crate::{CallContext, Platform, ServiceError};

/// A series given in a request: timestamps (ISO dates or date-times) and values (`None` =
/// missing, handled by the fill policy).
#[derive(Clone, Debug, Default)]
pub struct SeriesInput {
    pub timestamps: Vec<String>,
    pub values: Vec<Option<f64>>,
}

/// What to fit and how far to forecast.
#[derive(Clone, Debug)]
pub struct ForecastSpec {
    /// `auto` (backtest selection), `auto_arima`, `arima`, `ets`, `naive`, `seasonal_naive`,
    /// `drift`, `mean` or `moving_average`.
    pub model: String,
    pub horizon: usize,
    /// Interval levels in percent (default 80 and 95).
    pub levels: Vec<f64>,
    /// Seasonal period; default from the frequency (12 monthly, 4 quarterly, 5 business-daily, …).
    pub season_period: Option<usize>,
    /// `(p, d, q)` for `arima`.
    pub order: Option<[usize; 3]>,
    /// `(P, D, Q, s)` for `arima`.
    pub seasonal_order: Option<[usize; 4]>,
    /// Window for `moving_average`.
    pub window: Option<usize>,
    /// `none`, `log` or `box_cox` (λ by Guerrero).
    pub transform: String,
    /// `none` (missing values and gaps are errors), `ffill`, `linear`, `zero` or `drop`.
    pub fill: String,
    /// Frequency override (`daily`, `business_daily`, `weekly`, `monthly`, `quarterly`, `yearly`).
    pub frequency: Option<String>,
    /// For market series: model `simple` or `log` returns of the prices instead of the prices.
    pub returns: Option<String>,
}

impl Default for ForecastSpec {
    fn default() -> Self {
        ForecastSpec {
            model: "auto".into(),
            horizon: 12,
            levels: vec![80.0, 95.0],
            season_period: None,
            order: None,
            seasonal_order: None,
            window: None,
            transform: "none".into(),
            fill: "none".into(),
            frequency: None,
            returns: None,
        }
    }
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

/// Candidate model names with their backtest MASE.
type Candidates = Vec<(String, Option<f64>)>;

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

fn parse_fill(s: &str) -> Result<FillPolicy, ServiceError> {
    Ok(match s {
        "none" => FillPolicy::None,
        "ffill" => FillPolicy::Ffill,
        "linear" => FillPolicy::Linear,
        "zero" => FillPolicy::Zero,
        "drop" => FillPolicy::Drop,
        other => {
            return Err(bad(
                "fill",
                format!("fill policy `{other}` must be none, ffill, linear, zero or drop"),
            ));
        }
    })
}

fn parse_frequency(s: &str) -> Result<Frequency, ServiceError> {
    Ok(match s {
        "daily" => Frequency::Daily,
        "business_daily" | "business" => Frequency::BusinessDaily,
        "weekly" => Frequency::Weekly,
        "monthly" => Frequency::Monthly,
        "quarterly" => Frequency::Quarterly,
        "yearly" | "annual" => Frequency::Yearly,
        other => {
            return Err(bad(
                "frequency",
                format!(
                    "frequency `{other}` must be daily, business_daily, weekly, monthly, quarterly or yearly"
                ),
            ));
        }
    })
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
    to_returns(series, spec.returns.as_deref())
}

/// Replaces prices by their simple or log returns (one point shorter).
fn to_returns(mut parsed: ParsedSeries, kind: Option<&str>) -> Result<ParsedSeries, ServiceError> {
    let kind = match kind {
        None | Some("none") => return Ok(parsed),
        Some("simple") => aurum_forecast::ReturnKind::Simple,
        Some("log") => aurum_forecast::ReturnKind::Log,
        Some(other) => {
            return Err(bad(
                "returns",
                format!("returns `{other}` must be none, simple or log"),
            ));
        }
    };
    let r = aurum_forecast::returns(&parsed.series.values, kind)?;
    parsed.series.values = r;
    parsed.series.timestamps.remove(0);
    Ok(parsed)
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

fn transform(s: &str) -> Result<Transform, ServiceError> {
    Ok(match s {
        "none" => Transform::None,
        "log" => Transform::Log,
        "box_cox" | "boxcox" => Transform::BoxCox { lambda: None },
        other => {
            return Err(bad(
                "transform",
                format!("transform `{other}` must be none, log or box_cox"),
            ));
        }
    })
}

/// The candidates a spec asks for: one pipeline, or several for `auto`.
fn pipelines(spec: &ForecastSpec, period: usize) -> Result<Vec<Pipeline>, ServiceError> {
    let t = transform(&spec.transform)?;
    let with = |m: ModelSpec| Pipeline {
        model: m,
        transform: t,
        bias_adjust: false,
    };
    Ok(match spec.model.as_str() {
        "auto" => aurum_forecast::default_candidates(period)
            .into_iter()
            .map(|mut p| {
                p.transform = t;
                p
            })
            .collect(),
        "auto_arima" => vec![with(ModelSpec::AutoArima(AutoArimaSpec {
            period,
            ..AutoArimaSpec::default()
        }))],
        "ets" => vec![with(ModelSpec::Ets(EtsSpec {
            period,
            trend: None,
            season: None,
        }))],
        "naive" => vec![with(ModelSpec::Naive)],
        "seasonal_naive" => vec![with(ModelSpec::SeasonalNaive { period })],
        "drift" => vec![with(ModelSpec::Drift)],
        "mean" => vec![with(ModelSpec::Mean)],
        "moving_average" => {
            let window = spec
                .window
                .ok_or_else(|| bad("window", "moving_average needs `window`"))?;
            vec![with(ModelSpec::MovingAverage { window })]
        }
        "arima" => {
            let [p, d, q] = spec
                .order
                .ok_or_else(|| bad("order", "arima needs `order` [p, d, q]"))?;
            let mut order = aurum_forecast::ArimaOrder::new(p, d, q);
            if let Some([sp, sd, sq, s]) = spec.seasonal_order {
                order = order.seasonal(sp, sd, sq, s);
            }
            vec![with(ModelSpec::Arima(aurum_forecast::ArimaSpec {
                order,
                constant: d == 0,
                method: aurum_forecast::ArimaMethod::CssMl,
            }))]
        }
        other => {
            return Err(bad(
                "model",
                format!(
                    "model `{other}` must be auto, auto_arima, arima, ets, naive, seasonal_naive, drift, mean or moving_average"
                ),
            ));
        }
    })
}

fn check_spec(spec: &ForecastSpec) -> Result<(), ServiceError> {
    if spec.horizon == 0 {
        return Err(bad("horizon", "horizon must be at least 1"));
    }
    if spec.horizon > 10_000 {
        return Err(bad("horizon", "horizon must be at most 10000"));
    }
    if let Some(l) = spec.levels.iter().find(|l| !(**l > 0.0 && **l < 100.0)) {
        return Err(bad(
            "levels",
            format!("interval level {l} must be strictly between 0 and 100"),
        ));
    }
    Ok(())
}

/// One column of a CSV file as a checked series (fill policy, frequency, returns applied).
fn read_column(
    bytes: &[u8],
    date: String,
    value: String,
    spec: &ForecastSpec,
) -> Result<ParsedSeries, ServiceError> {
    let opts = CsvOptions {
        time: TimeColumn::Named(date),
        value_columns: vec![value],
        fill: parse_fill(&spec.fill)?,
        frequency: spec.frequency.as_deref().map(parse_frequency).transpose()?,
        ..CsvOptions::default()
    };
    let series = aurum_forecast::read_csv(bytes, &opts)?
        .pop()
        .ok_or_else(|| bad("value_column", "no series found"))?;
    to_returns(series, spec.returns.as_deref())
}

/// Fits the spec on a series, with the season period from the spec or the frequency.
fn fit_series(
    spec: &ForecastSpec,
    series: &ParsedSeries,
) -> Result<(FittedModel, Candidates), ServiceError> {
    let period = spec
        .season_period
        .unwrap_or_else(|| series.series.frequency.default_season_period());
    fit(spec, &series.series.values, period)
}

/// Fits the spec on `y` (selecting by backtest for `auto`).
fn fit(
    spec: &ForecastSpec,
    y: &[f64],
    period: usize,
) -> Result<(FittedModel, Candidates), ServiceError> {
    let candidates = pipelines(spec, period)?;
    if candidates.len() == 1 {
        return Ok((candidates[0].fit(y)?, Vec::new()));
    }
    let horizon = spec.horizon.min(y.len() / 4).max(1);
    let cfg = BacktestConfig {
        horizon,
        step: horizon,
        windows: 3,
        levels: spec.levels.clone(),
        season_period: period,
    };
    let selection = aurum_forecast::select_by_backtest(y, &candidates, &cfg, Score::Mase)?;
    let names = candidates
        .iter()
        .zip(&selection.reports)
        .map(|(c, r)| {
            (
                format!("{:?}", c.model)
                    .split([' ', '(', '{'])
                    .next()
                    .unwrap_or("model")
                    .to_string(),
                r.as_ref().ok().and_then(|r| r.metrics.mase),
            )
        })
        .collect();
    Ok((candidates[selection.best].fit(y)?, names))
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
    /// version of `model`; the artifact holds the fitted model with its data window.
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
        let this = self.clone();
        let ctx = ctx.clone();
        let (model, dataset) = (model.to_string(), dataset.to_string());
        let (date_column, value_column) = (date_column.to_string(), value_column.to_string());
        let alias = alias.map(str::to_string);
        self.detached(async move {
            this.train_forecast_now(
                &ctx,
                &model,
                &dataset,
                &date_column,
                &value_column,
                spec,
                alias.as_deref(),
            )
            .await
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn train_forecast_now(
        &self,
        ctx: &CallContext,
        model: &str,
        dataset: &str,
        date_column: &str,
        value_column: &str,
        spec: ForecastSpec,
        alias: Option<&str>,
    ) -> Result<(VersionRecord, ForecastOutput), ServiceError> {
        validate_name(model)
            .map_err(|e| ServiceError::invalid("invalid_name", Some("model"), e.to_string()))?;
        check_spec(&spec)?;
        let record = self.dataset_record(dataset).await?;
        let key = format!("datasets/{}.{}", record.sha256, record.format);
        if record.format != "csv" {
            return Err(bad(
                "dataset",
                "forecasting models are fitted on CSV datasets",
            ));
        }
        let bytes = get_verified(self.inner.artifacts.as_ref(), &key, &record.sha256).await?;
        let (date, value) = (date_column.to_string(), value_column.to_string());
        let (artifact, out, describe) = tokio::task::spawn_blocking(move || {
            let series = read_column(&bytes, date, value, &spec)?;
            let (fitted, candidates) = fit_series(&spec, &series)?;
            let out = output(&fitted, &series, &spec, candidates)?;
            let stored = StoredForecast {
                format_version: 1,
                frequency: series.series.frequency,
                last_timestamp: *series
                    .series
                    .timestamps
                    .last()
                    .ok_or_else(|| bad("series", "empty"))?,
                model_json: fitted.to_json()?,
            };
            let artifact = serde_json::to_vec(&stored).map_err(internal)?;
            Ok::<_, ServiceError>((artifact, out, fitted.describe()))
        })
        .await
        .map_err(join_error)??;
        let artifact_key = format!("models/{model}/forecast-{}.json", uuid::Uuid::new_v4());
        let artifact_sha256 = aurum_core::sha256_hex(&artifact);
        self.inner.artifacts.put(&artifact_key, artifact).await?;
        let metrics = serde_json::json!({"aicc": out.aicc, "history_points": out.history_points});
        let version = self
            .inner
            .meta
            .create_version(NewVersion {
                model: model.to_string(),
                kind: ModelKind::Forecast,
                artifact_key,
                artifact_sha256: artifact_sha256.clone(),
                dataset_name: dataset.to_string(),
                dataset_sha256: record.sha256.clone(),
                target: value_column.to_string(),
                params_json: serde_json::json!({"model": describe, "date_column": date_column})
                    .to_string(),
                metrics_json: metrics.to_string(),
                aurum_version: aurum_core::AURUM_VERSION.to_string(),
                created_by: ctx.actor.clone(),
                job_id: None,
            })
            .await?;
        self.audit(
            ctx,
            "model.register",
            Some((model, Some(version.version))),
            serde_json::json!({"kind": "forecast", "model": out.model, "dataset_sha256": record.sha256, "artifact_sha256": artifact_sha256}),
        )
        .await?;
        if let Some(alias) = alias {
            validate_name(alias)
                .map_err(|e| ServiceError::invalid("invalid_name", Some("alias"), e.to_string()))?;
            let moved = self
                .inner
                .meta
                .set_alias(model, alias, version.version, &ctx.actor)
                .await?;
            self.audit(
                ctx,
                "alias.move",
                Some((model, Some(version.version))),
                serde_json::json!({"alias": alias, "from": moved.from, "to": moved.to}),
            )
            .await?;
        }
        Ok((version, out))
    }

    /// Forecasts with a registered forecasting model (`version` or the alias's version). New
    /// observations, if given, update the model's state with its parameters fixed; nothing is
    /// stored by this call.
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
        let version = match version {
            Some(v) => v,
            None => self
                .inner
                .meta
                .resolve_alias(model, alias)
                .await?
                .ok_or_else(|| ServiceError::AliasNotFound {
                    model: model.to_string(),
                    alias: alias.to_string(),
                })?,
        };
        let record = self.get_version(model, version).await?;
        if record.kind != ModelKind::Forecast {
            return Err(ServiceError::invalid(
                "wrong_model_kind",
                Some("model"),
                format!(
                    "{model} v{version} is a {} model, not a forecasting model: use /predict",
                    record.kind
                ),
            ));
        }
        if let Some((i, _)) = new_values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(bad(
                &format!("new_values[{i}]"),
                "values must be finite numbers",
            ));
        }
        let bytes = get_verified(
            self.inner.artifacts.as_ref(),
            &record.artifact_key,
            &record.artifact_sha256,
        )
        .await?;
        let n_new = new_values.len();
        let out = tokio::task::spawn_blocking(move || {
            let stored: StoredForecast = serde_json::from_slice(&bytes).map_err(internal)?;
            let mut fitted = FittedModel::from_json(&stored.model_json)?;
            if !new_values.is_empty() {
                fitted.update(&new_values)?;
            }
            let mut last = stored.last_timestamp;
            for _ in 0..n_new {
                last = stored.frequency.next(last);
            }
            let f = fitted.forecast(spec.horizon, &spec.levels)?;
            Ok::<_, ServiceError>(ForecastOutput {
                model: fitted.describe(),
                frequency: stored.frequency.to_string(),
                history_points: 0,
                filled_points: 0,
                timestamps: stored
                    .frequency
                    .future(last, spec.horizon)
                    .iter()
                    .map(ts_string)
                    .collect(),
                mean: f.mean,
                intervals: f
                    .intervals
                    .into_iter()
                    .map(|i| (i.level, i.lower, i.upper))
                    .collect(),
                candidates: Vec::new(),
                aicc: fitted.aicc(),
                last_timestamp: ts_string(&last),
                history: Vec::new(),
            })
        })
        .await
        .map_err(join_error)??;
        self.audit(
            ctx,
            "forecast",
            Some((model, Some(version))),
            serde_json::json!({"horizon": horizon, "new_observations": n_new, "mean": out.mean}),
        )
        .await?;
        Ok((version, out))
    }
}

/// A registered forecasting model's artifact: the fitted model with its data window.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredForecast {
    format_version: u32,
    frequency: Frequency,
    last_timestamp: chrono::NaiveDateTime,
    model_json: String,
}
