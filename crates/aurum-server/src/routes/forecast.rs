//! Forecasting routes: `POST /v1/forecast` (one-shot), `POST /v1/decompose`,
//! `POST /v1/forecast-models` (fit and register) and `POST /v1/models/{name}/forecast`.

use aurum_service::{DecompositionOutput, ForecastOutput, ForecastSpec, SeriesInput};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authorized, Path, perm};
use crate::middleware::JsonBody;

/// A series: timestamps (strictly increasing dates, date-times or integers; omitted: a plain
/// sequence indexed 0, 1, 2, …) and values (`null` = missing, handled by `fill`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesIn {
    #[serde(default)]
    pub timestamps: Option<Vec<TimestampIn>>,
    pub values: Vec<Option<f64>>,
}

/// A timestamp: a date or date-time string (`2024-01-31`, `10/1/2015`, `2024-01-31T09:30:00`,
/// …), or an integer step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TimestampIn {
    Step(i64),
    Text(String),
}

/// One seasonal period or several (`12`, `[288, 2016]`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PeriodsIn {
    One(usize),
    Many(Vec<usize>),
}

/// An intraday trading session, `HH:MM` local to the timestamps; bars run from `open` up to
/// (not including) `close`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionIn {
    pub open: String,
    pub close: String,
}

/// The fields of `SpecIn`, for the unknown-field check.
const SPEC_FIELDS: &[&str] = &[
    "horizon",
    "model",
    "levels",
    "season_period",
    "order",
    "seasonal_order",
    "window",
    "transform",
    "fill",
    "frequency",
    "date_format",
    "holidays",
    "session",
    "returns",
];

/// 400 `unknown_field` naming the first field no forecasting route knows, when the server
/// rejects unknown fields (`server.unknown_fields`).
fn reject_unknown(
    state: &AppState,
    extra: &std::collections::BTreeMap<String, serde_json::Value>,
    own: &[&str],
) -> ApiResult<()> {
    use aurum_service::UnknownFields;
    if state.platform.config().server.unknown_fields == UnknownFields::Ignore {
        return Ok(());
    }
    if let Some(name) = extra.keys().next() {
        let mut expected: Vec<&str> = own.to_vec();
        expected.extend_from_slice(SPEC_FIELDS);
        return Err(ApiError::invalid(
            "unknown_field",
            Some(name),
            format!(
                "`{name}` is not a field of this request (expected {}; the server rejects unknown fields)",
                expected.join(", ")
            ),
        ));
    }
    Ok(())
}

/// How to forecast.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SpecIn {
    /// Steps ahead (≥ 1).
    pub horizon: i64,
    /// `auto` (default: backtest selection), `auto_arima`, `arima`, `ets`, `naive`,
    /// `seasonal_naive`, `drift`, `mean`, `moving_average`.
    #[serde(default)]
    pub model: Option<String>,
    /// Interval levels in percent (default [80, 95]).
    #[serde(default)]
    pub levels: Option<Vec<f64>>,
    /// One period or a list (`[288, 2016]`); default from the frequency.
    #[serde(default)]
    pub season_period: Option<PeriodsIn>,
    /// `[p, d, q]` for `arima`.
    #[serde(default)]
    pub order: Option<[usize; 3]>,
    /// `[P, D, Q, s]` for `arima`.
    #[serde(default)]
    pub seasonal_order: Option<[usize; 4]>,
    #[serde(default)]
    pub window: Option<usize>,
    /// `none` (default), `log` or `box_cox`.
    #[serde(default)]
    pub transform: Option<String>,
    /// `none` (default: missing values and gaps are errors), `ffill`, `linear`, `zero`, `drop`.
    #[serde(default)]
    pub fill: Option<String>,
    /// Default: inferred. Daily series on weekdays are on `trading_days` (the days they skip are
    /// holidays, not gaps); also `daily`, `business_daily` (weekday grid: skipped days are gaps),
    /// `weekly`, `monthly`, `quarterly`, `yearly`, `index`.
    #[serde(default)]
    pub frequency: Option<String>,
    /// `index`, or a chrono format such as `%d/%m/%Y` for day-first dates (US `10/1/2015` and ISO
    /// forms are read without one).
    #[serde(default)]
    pub date_format: Option<String>,
    /// Market holidays (`YYYY-MM-DD`) that forecast labels on trading days or sessions skip.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Intraday session; default: inferred from the bars' usual first and last time of day.
    #[serde(default)]
    pub session: Option<SessionIn>,
    /// Market series: model `simple` or `log` returns of the prices.
    #[serde(default)]
    pub returns: Option<String>,
}

impl SpecIn {
    fn into_spec(self) -> ApiResult<ForecastSpec> {
        if self.horizon <= 0 {
            return Err(ApiError::invalid(
                "invalid_field",
                Some("horizon"),
                format!("horizon must be at least 1, got {}", self.horizon),
            ));
        }
        let d = ForecastSpec::default();
        Ok(ForecastSpec {
            model: self.model.unwrap_or(d.model),
            horizon: self.horizon as usize,
            levels: self.levels.unwrap_or(d.levels),
            season_periods: match self.season_period {
                None => Vec::new(),
                Some(PeriodsIn::One(p)) => vec![p],
                Some(PeriodsIn::Many(ps)) => ps,
            },
            order: self.order,
            seasonal_order: self.seasonal_order,
            window: self.window,
            transform: self.transform.unwrap_or(d.transform),
            fill: self.fill.unwrap_or(d.fill),
            frequency: self.frequency,
            date_format: self.date_format,
            holidays: self.holidays,
            session: self.session.map(|s| (s.open, s.close)),
            returns: self.returns,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ForecastIn {
    pub series: SeriesIn,
    #[serde(flatten)]
    pub spec: SpecIn,
    /// Fields neither of the above knows (rejected unless `server.unknown_fields = "ignore"`).
    #[serde(flatten)]
    #[schema(ignore)]
    pub unknown: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntervalOut {
    pub level: f64,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CandidateOut {
    pub model: String,
    /// Mean MASE over the rolling-origin backtest windows.
    pub backtest_mase: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastOut {
    /// The fitted model, e.g. `ARIMA(0,1,1)(0,1,1)[12]`.
    pub model: String,
    pub frequency: String,
    pub last_timestamp: String,
    pub timestamps: Vec<String>,
    pub mean: Vec<f64>,
    pub intervals: Vec<IntervalOut>,
    pub aicc: Option<f64>,
    /// Points supplied by the fill policy.
    pub filled_points: usize,
    /// With `model = auto`: the candidates and their backtest scores.
    pub candidates: Vec<CandidateOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

pub fn forecast_out(o: ForecastOutput, version: Option<u32>) -> ForecastOut {
    ForecastOut {
        model: o.model,
        frequency: o.frequency,
        last_timestamp: o.last_timestamp,
        timestamps: o.timestamps,
        mean: o.mean,
        intervals: o
            .intervals
            .into_iter()
            .map(|(level, lower, upper)| IntervalOut {
                level,
                lower,
                upper,
            })
            .collect(),
        aicc: o.aicc,
        filled_points: o.filled_points,
        candidates: o
            .candidates
            .into_iter()
            .map(|(model, backtest_mase)| CandidateOut {
                model,
                backtest_mase,
            })
            .collect(),
        version,
    }
}

fn series(s: SeriesIn) -> SeriesInput {
    SeriesInput {
        timestamps: s.timestamps.map(|ts| {
            ts.into_iter()
                .map(|t| match t {
                    TimestampIn::Step(k) => k.to_string(),
                    TimestampIn::Text(s) => s,
                })
                .collect()
        }),
        values: s.values,
    }
}

/// Forecast a series given in the request (nothing is stored).
#[utoipa::path(post, path = "/v1/forecast", tag = "forecast", request_body = ForecastIn,
    responses((status = 200, body = ForecastOut), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn once(
    State(state): State<AppState>,
    _: Authorized<perm::Predict>,
    JsonBody(body): JsonBody<ForecastIn>,
) -> ApiResult<Json<ForecastOut>> {
    reject_unknown(&state, &body.unknown, &["series"])?;
    let spec = body.spec.into_spec()?;
    let out = state
        .platform
        .forecast_once(series(body.series), spec)
        .await?;
    Ok(Json(forecast_out(out, None)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecomposeIn {
    pub series: SeriesIn,
    /// Seasonal periods (one: STL; several: MSTL). Default: from the frequency.
    #[serde(default)]
    pub periods: Vec<usize>,
    #[serde(default)]
    pub fill: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DecomposeOut {
    pub timestamps: Vec<String>,
    pub periods: Vec<usize>,
    pub trend: Vec<f64>,
    /// One seasonal component per period.
    pub seasonal: Vec<Vec<f64>>,
    pub remainder: Vec<f64>,
}

/// STL / MSTL decomposition of a series into trend, seasonal and remainder.
#[utoipa::path(post, path = "/v1/decompose", tag = "forecast", request_body = DecomposeIn,
    responses((status = 200, body = DecomposeOut), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn decompose(
    State(state): State<AppState>,
    _: Authorized<perm::Predict>,
    JsonBody(body): JsonBody<DecomposeIn>,
) -> ApiResult<Json<DecomposeOut>> {
    let d: DecompositionOutput = state
        .platform
        .decompose(
            series(body.series),
            body.periods,
            body.fill.unwrap_or_else(|| "none".into()),
        )
        .await?;
    Ok(Json(DecomposeOut {
        timestamps: d.timestamps,
        periods: d.periods,
        trend: d.trend,
        seasonal: d.seasonal,
        remainder: d.remainder,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ForecastModelIn {
    /// Registered model name (`model` is the forecasting method, as in `/v1/forecast`).
    pub name: String,
    /// An imported CSV dataset.
    pub dataset: String,
    pub date_column: String,
    pub value_column: String,
    #[serde(default)]
    pub alias: Option<String>,
    /// Queue the fit as a training job and answer 202 with the job at once (poll
    /// `GET /v1/training-jobs/{id}`, cancel with `POST /v1/training-jobs/{id}/cancel`).
    #[serde(default, rename = "async")]
    pub run_async: bool,
    #[serde(flatten)]
    pub spec: SpecIn,
}

/// Fit a forecasting model on a dataset's columns and register it as a new version; with
/// `"async": true`, as a background training job (202 with the job).
#[utoipa::path(post, path = "/v1/forecast-models", tag = "forecast", request_body = ForecastModelIn,
    responses((status = 201, body = ForecastOut), (status = 202, body = crate::wire::JobOut), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn register(
    State(state): State<AppState>,
    caller: Authorized<perm::Training>,
    JsonBody(body): JsonBody<ForecastModelIn>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let spec = body.spec.into_spec()?;
    if body.run_async {
        let job = state
            .platform
            .submit_forecast_training(
                &caller.ctx(),
                &body.name,
                &body.dataset,
                &body.date_column,
                &body.value_column,
                spec,
                body.alias.as_deref(),
            )
            .await?;
        return Ok((StatusCode::ACCEPTED, Json(crate::wire::JobOut::from(&job))).into_response());
    }
    let (version, out) = state
        .platform
        .train_forecast(
            &caller.ctx(),
            &body.name,
            &body.dataset,
            &body.date_column,
            &body.value_column,
            spec,
            body.alias.as_deref(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(forecast_out(out, Some(version.version))),
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelForecastIn {
    pub horizon: i64,
    #[serde(default)]
    pub levels: Option<Vec<f64>>,
    /// Observations after the model's data window: they update the state without refitting.
    #[serde(default)]
    pub new_observations: Vec<f64>,
    /// A version; default: the `champion` alias.
    #[serde(default)]
    pub version: Option<u32>,
}

/// Forecast with a registered forecasting model.
#[utoipa::path(post, path = "/v1/models/{name}/forecast", tag = "forecast", params(("name" = String, Path)),
    request_body = ModelForecastIn,
    responses((status = 200, body = ForecastOut), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn by_model(
    State(state): State<AppState>,
    caller: Authorized<perm::Predict>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<ModelForecastIn>,
) -> ApiResult<Json<ForecastOut>> {
    if body.horizon <= 0 {
        return Err(ApiError::invalid(
            "invalid_field",
            Some("horizon"),
            format!("horizon must be at least 1, got {}", body.horizon),
        ));
    }
    let (version, out) = state
        .platform
        .forecast_registered(
            &caller.ctx(),
            &name,
            body.version,
            "champion",
            body.new_observations,
            body.horizon as usize,
            body.levels.unwrap_or_else(|| vec![80.0, 95.0]),
        )
        .await?;
    Ok(Json(forecast_out(out, Some(version))))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BacktestIn {
    pub series: SeriesIn,
    /// Models to evaluate, e.g. `["auto_arima", "ets", "seasonal_naive"]`.
    pub models: Vec<String>,
    /// Number of forecast origins.
    pub windows: usize,
    /// Steps between origins (default: the horizon).
    #[serde(default)]
    pub step: Option<usize>,
    #[serde(flatten)]
    pub spec: SpecIn,
    /// Fields none of the above knows (rejected unless `server.unknown_fields = "ignore"`).
    #[serde(flatten)]
    #[schema(ignore)]
    pub unknown: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CoverageOut {
    pub level: f64,
    /// Share of actuals inside the interval.
    pub coverage: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BacktestModelOut {
    /// The model; `auto/<candidate>` for a candidate `auto` compared at its own origins.
    pub model: String,
    /// Origins evaluated.
    pub windows: usize,
    pub horizon: usize,
    /// `null` when the model could not be evaluated (see `error`).
    pub mae: Option<f64>,
    pub rmse: Option<f64>,
    pub mape: Option<f64>,
    pub smape: Option<f64>,
    pub mase: Option<f64>,
    pub coverage: Vec<CoverageOut>,
    /// For `auto`: the candidate it selects on the whole series.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected: Option<String>,
    /// Why a candidate could not be evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Every origin's forecast against the actuals.
    pub forecasts: Vec<BacktestWindowOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BacktestWindowOut {
    /// The last training timestamp.
    pub origin: String,
    pub timestamps: Vec<String>,
    pub actual: Vec<f64>,
    pub mean: Vec<f64>,
    pub intervals: Vec<IntervalOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BacktestOut {
    pub results: Vec<BacktestModelOut>,
}

/// Rolling-origin cross-validation (windows, horizon, step) of one or more models: MAE, RMSE,
/// MAPE, sMAPE, MASE and interval coverage.
#[utoipa::path(post, path = "/v1/backtest", tag = "forecast", request_body = BacktestIn,
    responses((status = 200, body = BacktestOut), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn backtest(
    State(state): State<AppState>,
    _: Authorized<perm::Predict>,
    JsonBody(body): JsonBody<BacktestIn>,
) -> ApiResult<Json<BacktestOut>> {
    reject_unknown(
        &state,
        &body.unknown,
        &["series", "models", "windows", "step"],
    )?;
    let spec = body.spec.into_spec()?;
    let step = body.step.unwrap_or(spec.horizon);
    let results = state
        .platform
        .backtest(series(body.series), spec, body.models, body.windows, step)
        .await?;
    Ok(Json(BacktestOut {
        results: results
            .into_iter()
            .map(|r| BacktestModelOut {
                model: r.model,
                windows: r.windows_run,
                horizon: r.horizon,
                mae: r.mae.is_finite().then_some(r.mae),
                rmse: r.rmse.is_finite().then_some(r.rmse),
                mape: r.mape,
                smape: r.smape,
                mase: r.mase,
                coverage: r
                    .coverage
                    .into_iter()
                    .map(|(level, coverage)| CoverageOut { level, coverage })
                    .collect(),
                selected: r.selected,
                error: r.error,
                forecasts: r
                    .windows
                    .into_iter()
                    .map(|w| BacktestWindowOut {
                        origin: w.origin,
                        timestamps: w.timestamps,
                        actual: w.actual,
                        mean: w.mean,
                        intervals: w
                            .intervals
                            .into_iter()
                            .map(|(level, lower, upper)| IntervalOut {
                                level,
                                lower,
                                upper,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }))
}
