//! What to fit and how far to forecast, as parameters: the one parser of forecasting options
//! shared by one-shot forecasts, backtests and the registered `forecast` model family.

use crate::{
    ArimaMethod, ArimaOrder, ArimaSpec, AutoArimaSpec, BacktestConfig, CsvOptions, EtsSpec,
    FillPolicy, FittedModel, ForecastError, Forecaster as _, Frequency, ModelSpec, ParsedSeries,
    Pipeline, Score, TimeColumn, Transform,
};

fn bad(field: &str, message: impl Into<String>) -> ForecastError {
    ForecastError::InvalidField {
        field: field.to_string(),
        message: message.into(),
    }
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

/// Candidate model names with their backtest MASE.
pub type Candidates = Vec<(String, Option<f64>)>;

pub fn parse_fill(s: &str) -> Result<FillPolicy, ForecastError> {
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

pub fn parse_frequency(s: &str) -> Result<Frequency, ForecastError> {
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

/// Replaces prices by their simple or log returns (one point shorter).
pub fn to_returns(
    mut parsed: ParsedSeries,
    kind: Option<&str>,
) -> Result<ParsedSeries, ForecastError> {
    let kind = match kind {
        None | Some("none") => return Ok(parsed),
        Some("simple") => crate::ReturnKind::Simple,
        Some("log") => crate::ReturnKind::Log,
        Some(other) => {
            return Err(bad(
                "returns",
                format!("returns `{other}` must be none, simple or log"),
            ));
        }
    };
    let r = crate::returns(&parsed.series.values, kind)?;
    parsed.series.values = r;
    parsed.series.timestamps.remove(0);
    Ok(parsed)
}

pub fn transform(s: &str) -> Result<Transform, ForecastError> {
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
pub fn pipelines(spec: &ForecastSpec, period: usize) -> Result<Vec<Pipeline>, ForecastError> {
    let t = transform(&spec.transform)?;
    let with = |m: ModelSpec| Pipeline {
        model: m,
        transform: t,
        bias_adjust: false,
    };
    Ok(match spec.model.as_str() {
        "auto" => crate::default_candidates(period)
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
            let mut order = ArimaOrder::new(p, d, q);
            if let Some([sp, sd, sq, s]) = spec.seasonal_order {
                order = order.seasonal(sp, sd, sq, s);
            }
            vec![with(ModelSpec::Arima(ArimaSpec {
                order,
                constant: d == 0,
                method: ArimaMethod::CssMl,
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

pub fn check_spec(spec: &ForecastSpec) -> Result<(), ForecastError> {
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
pub fn read_column(
    bytes: &[u8],
    date: String,
    value: String,
    spec: &ForecastSpec,
) -> Result<ParsedSeries, ForecastError> {
    let opts = CsvOptions {
        time: TimeColumn::Named(date),
        value_columns: vec![value],
        fill: parse_fill(&spec.fill)?,
        frequency: spec.frequency.as_deref().map(parse_frequency).transpose()?,
        ..CsvOptions::default()
    };
    let series = crate::read_csv(bytes, &opts)?
        .pop()
        .ok_or_else(|| bad("value_column", "no series found"))?;
    to_returns(series, spec.returns.as_deref())
}

/// Fits the spec on a series, with the season period from the spec or the frequency.
pub fn fit_series(
    spec: &ForecastSpec,
    series: &ParsedSeries,
) -> Result<(FittedModel, Candidates), ForecastError> {
    let period = spec
        .season_period
        .unwrap_or_else(|| series.series.frequency.default_season_period());
    fit(spec, &series.series.values, period)
}

/// Fits the spec on `y` (selecting by backtest for `auto`).
pub fn fit(
    spec: &ForecastSpec,
    y: &[f64],
    period: usize,
) -> Result<(FittedModel, Candidates), ForecastError> {
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
    let selection = crate::select_by_backtest(y, &candidates, &cfg, Score::Mase)?;
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
