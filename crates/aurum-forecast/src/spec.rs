//! What to fit and how far to forecast, as parameters: the one parser of forecasting options
//! shared by one-shot forecasts, backtests and the registered `forecast` model family.

use crate::{
    ArimaMethod, ArimaOrder, ArimaSpec, AutoArimaSpec, BacktestConfig, CsvOptions, EtsSpec,
    FillPolicy, FittedModel, ForecastError, Forecaster as _, Frequency, ModelSpec, MstlSpec,
    MstlTrendModel, ParsedSeries, Pipeline, Score, TimeColumn, Transform,
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
    /// `drift`, `mean` or `moving_average`; or a registered external forecaster
    /// ([`crate::external`]): `lstm`, `lstm:hidden=16,lookback=24`, and `auto+lstm` to add it to
    /// `auto`'s candidates.
    pub model: String,
    pub horizon: usize,
    /// Interval levels in percent (default 80 and 95).
    pub levels: Vec<f64>,
    /// Seasonal periods; empty: from the frequency (12 monthly, 4 quarterly, 5 trading days,
    /// bars per day and per week intraday, …). Single-season models use the first; `mstl` and
    /// `auto` use them all.
    pub season_periods: Vec<usize>,
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
    /// Frequency override (`daily`, `business_daily`, `trading_days`, `weekly`, `monthly`,
    /// `quarterly`, `yearly`, `index`).
    pub frequency: Option<String>,
    /// How timestamps are written when inference cannot tell: `index`, or a chrono format such as
    /// `%d/%m/%Y`.
    pub date_format: Option<String>,
    /// Market holidays (`YYYY-MM-DD`) that forecasts on trading days or sessions skip.
    pub holidays: Vec<String>,
    /// Intraday session `(open, close)` as `HH:MM`, instead of the one inferred from the bars.
    pub session: Option<(String, String)>,
    /// For market series: model `simple` or `log` returns of the prices instead of the prices.
    pub returns: Option<String>,
}

impl Default for ForecastSpec {
    fn default() -> Self {
        ForecastSpec {
            model: "auto".into(),
            horizon: 12,
            levels: vec![80.0, 95.0],
            season_periods: Vec::new(),
            order: None,
            seasonal_order: None,
            window: None,
            transform: "none".into(),
            fill: "none".into(),
            frequency: None,
            date_format: None,
            holidays: Vec::new(),
            session: None,
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
        "trading_days" => Frequency::TradingDays,
        "index" | "steps" => Frequency::Index,
        "weekly" => Frequency::Weekly,
        "monthly" => Frequency::Monthly,
        "quarterly" => Frequency::Quarterly,
        "yearly" | "annual" => Frequency::Yearly,
        other => {
            return Err(bad(
                "frequency",
                format!(
                    "frequency `{other}` must be daily, business_daily, trading_days, weekly, monthly, quarterly, yearly or index"
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

/// The built-in model names `model` accepts; registered external forecasters
/// ([`crate::external`]) add theirs.
pub const BUILT_IN_MODELS: &[&str] = &[
    "auto",
    "auto_arima",
    "arima",
    "ets",
    "mstl",
    "mstl_arima",
    "naive",
    "seasonal_naive",
    "drift",
    "mean",
    "moving_average",
];

/// `auto+lstm+gru` → the registered external candidates `auto` adds (opt-in); `None` for any
/// other model name.
fn auto_extras(model: &str, period: usize) -> Option<Result<Vec<Pipeline>, ForecastError>> {
    let rest = model.strip_prefix("auto+")?;
    Some(
        rest.split('+')
            .map(|name| match crate::external::parse_model(name, period) {
                Some(r) => r.map(|e| Pipeline::from(ModelSpec::External(e))),
                None => Err(bad(
                    "model",
                    format!(
                        "`auto+{rest}`: `{name}` is not a registered external forecaster \
                             (registered: {})",
                        match crate::external::registered_names() {
                            n if n.is_empty() => "none".to_string(),
                            n => n.join(", "),
                        }
                    ),
                )),
            })
            .collect(),
    )
}

/// Longest season the seasonal ETS and ARIMA candidates of `auto` are given. When the first
/// (primary) period is longer — half-hourly bars per day (48), hourly bars per week (168),
/// 5-minute bars per day (288) — `auto` switches to the long-season candidate list (naive,
/// seasonal naive at every period, drift, MSTL + ETS):
///
/// * seasonal ETS carries `m − 1` free seasonal states and its likelihood search grows with them;
///   R's `forecast::ets` ignores seasonality above `m = 24` for that reason;
/// * seasonal ARIMA at lag `m` has a state vector of at least `m + 1`, so each Kalman step costs
///   `O(m²)` and the stepwise search fits dozens of such models. With both at `m = 48`, `auto`
///   had not finished six backtest origins on 4 032 half-hours after half an hour;
///   statsforecast's `AutoARIMA(season_length=48)` is slow on the same series too.
///
/// MSTL handles every period with loess smoothing whose cost does not grow with `m`, and its
/// adjusted series needs only a non-seasonal model. 24 keeps hourly-by-day, monthly, quarterly,
/// weekly and trading-week periods on the direct seasonal models.
pub const MAX_DIRECT_SEASON: usize = 24;

/// `auto`'s candidates when the primary period exceeds [`MAX_DIRECT_SEASON`]: naive, the seasonal
/// naive method at every period, drift, and MSTL on all periods with non-seasonal ETS on the
/// seasonally adjusted series (statsforecast's `MSTL` default).
///
/// MSTL with non-seasonal auto-ARIMA on the adjusted series (`model = "mstl_arima"`) is not a
/// candidate: on 4 032 half-hours it cost 13 times MSTL + ETS per fit, tied with it on the inner
/// backtests (within 0–14 % at each origin, the noise of six one-day windows), and choosing
/// between the two near-ties left `auto` 13 % behind MSTL + ETS on the outer windows
/// (BENCHMARKS.md, the intraday row).
fn long_season_candidates(periods: &[usize]) -> Vec<ModelSpec> {
    let seasonal: Vec<usize> = periods.iter().copied().filter(|p| *p > 1).collect();
    let mut c = vec![ModelSpec::Naive];
    let mut seen = Vec::new();
    for p in &seasonal {
        if !seen.contains(p) {
            seen.push(*p);
            c.push(ModelSpec::SeasonalNaive { period: *p });
        }
    }
    c.push(ModelSpec::Drift);
    c.push(ModelSpec::Mstl(MstlSpec {
        periods: seasonal,
        trend: MstlTrendModel::Ets,
    }));
    c
}

/// The candidates a spec asks for: one pipeline, or several for `auto`. `periods` is never empty;
/// single-season models use the first.
pub fn pipelines(spec: &ForecastSpec, periods: &[usize]) -> Result<Vec<Pipeline>, ForecastError> {
    let t = transform(&spec.transform)?;
    let period = periods.first().copied().unwrap_or(1);
    let with = |m: ModelSpec| Pipeline {
        model: m,
        transform: t,
        bias_adjust: false,
    };
    let mstl = || {
        let periods: Vec<usize> = periods.iter().copied().filter(|p| *p > 1).collect();
        if periods.is_empty() {
            return Err(bad(
                "season_period",
                "mstl needs at least one seasonal period of 2 or more",
            ));
        }
        Ok(ModelSpec::Mstl(MstlSpec {
            periods,
            trend: MstlTrendModel::Ets,
        }))
    };
    let extras = auto_extras(&spec.model, period).transpose()?;
    let model = if extras.is_some() {
        "auto"
    } else {
        spec.model.as_str()
    };
    Ok(match model {
        "auto" => {
            let mut c: Vec<Pipeline> = if period > MAX_DIRECT_SEASON {
                long_season_candidates(periods)
                    .into_iter()
                    .map(with)
                    .collect()
            } else {
                let mut c: Vec<Pipeline> = crate::default_candidates(period)
                    .into_iter()
                    .map(|mut p| {
                        p.transform = t;
                        p
                    })
                    .collect();
                if periods.len() > 1 {
                    c.push(with(mstl()?));
                }
                c
            };
            for mut e in extras.into_iter().flatten() {
                e.transform = t;
                c.push(e);
            }
            c
        }
        "mstl" => vec![with(mstl()?)],
        "mstl_arima" => {
            let ModelSpec::Mstl(mut m) = mstl()? else {
                unreachable!("mstl() builds an MSTL spec")
            };
            m.trend = MstlTrendModel::Arima;
            vec![with(ModelSpec::Mstl(m))]
        }
        "auto_arima" => vec![with(ModelSpec::AutoArima(AutoArimaSpec {
            period,
            ..AutoArimaSpec::default()
        }))],
        "ets" => vec![with(ModelSpec::Ets(EtsSpec::auto(period)))],
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
            if let Some(e) = crate::external::parse_model(other, period) {
                return Ok(vec![with(ModelSpec::External(e?))]);
            }
            return Err(bad(
                "model",
                format!(
                    "model `{other}` must be auto, auto_arima, arima, ets, mstl, mstl_arima, naive, seasonal_naive, drift, mean or moving_average"
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
    if let Some(p) = spec
        .season_periods
        .iter()
        .find(|p| **p == 0 || **p > 100_000)
    {
        return Err(bad(
            "season_period",
            format!("season period {p} must be between 1 and 100000"),
        ));
    }
    if let Some(l) = spec.levels.iter().find(|l| !(**l > 0.0 && **l < 100.0)) {
        return Err(bad(
            "levels",
            format!("interval level {l} must be strictly between 0 and 100"),
        ));
    }
    Ok(())
}

/// The CSV reading options a spec implies for the named time and value columns.
pub fn csv_options(
    spec: &ForecastSpec,
    date: String,
    value: String,
) -> Result<CsvOptions, ForecastError> {
    let holidays = spec
        .holidays
        .iter()
        .enumerate()
        .map(|(i, h)| {
            chrono::NaiveDate::parse_from_str(h.trim(), "%Y-%m-%d").map_err(|_| {
                bad(
                    &format!("holidays[{i}]"),
                    format!("holiday `{h}` must be a date YYYY-MM-DD"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let session = match &spec.session {
        None => None,
        Some((open, close)) => {
            let secs = |s: &str, which: &str| {
                chrono::NaiveTime::parse_from_str(s.trim(), "%H:%M")
                    .map(|t| chrono::Timelike::num_seconds_from_midnight(&t))
                    .map_err(|_| {
                        bad(
                            &format!("session.{which}"),
                            format!("session {which} `{s}` must be a time HH:MM"),
                        )
                    })
            };
            let (o, c) = (secs(open, "open")?, secs(close, "close")?);
            if c <= o {
                return Err(bad(
                    "session.close",
                    format!("session close {close} must be after open {open}"),
                ));
            }
            Some((o, c))
        }
    };
    Ok(CsvOptions {
        time: TimeColumn::Named(date),
        value_columns: vec![value],
        fill: parse_fill(&spec.fill)?,
        frequency: spec.frequency.as_deref().map(parse_frequency).transpose()?,
        date_format: spec.date_format.clone(),
        holidays,
        session,
        ..CsvOptions::default()
    })
}

/// One column of a CSV file as a checked series (fill policy, frequency, returns applied).
pub fn read_column(
    bytes: &[u8],
    date: String,
    value: String,
    spec: &ForecastSpec,
) -> Result<ParsedSeries, ForecastError> {
    let opts = csv_options(spec, date, value)?;
    let series = crate::read_csv(bytes, &opts)?
        .pop()
        .ok_or_else(|| bad("value_column", "no series found"))?;
    to_returns(series, spec.returns.as_deref())
}

/// The seasonal periods for a series: the spec's, or the frequency's defaults.
pub fn periods_for(spec: &ForecastSpec, series: &ParsedSeries) -> Vec<usize> {
    if spec.season_periods.is_empty() {
        series
            .series
            .frequency
            .default_season_periods(series.series.len())
    } else {
        spec.season_periods.clone()
    }
}

/// Fits the spec on a series, with the season periods from the spec or the frequency.
pub fn fit_series(
    spec: &ForecastSpec,
    series: &ParsedSeries,
) -> Result<(FittedModel, Candidates), ForecastError> {
    fit(spec, &series.series.values, &periods_for(spec, series))
}

/// Rolling-origin settings for `auto` selection on `n` points: horizon `h` (at most a quarter of
/// the series), and as many windows as the data allow up to [`SELECTION_WINDOWS`], so the
/// choice does not rest on one or two origins.
pub fn selection_config(
    n: usize,
    horizon: usize,
    periods: &[usize],
    levels: &[f64],
) -> BacktestConfig {
    let period = periods.iter().copied().max().unwrap_or(1).max(1);
    let h = horizon.min(n / 4).max(1);
    // Leave two full seasons (the seasonal models' minimum) before the first origin.
    let room = n.saturating_sub(2 * period + 1);
    let windows = (room / h).clamp(1, SELECTION_WINDOWS);
    BacktestConfig {
        horizon: h,
        step: h,
        windows,
        levels: levels.to_vec(),
        season_period: periods.first().copied().unwrap_or(1),
    }
}

/// Most rolling origins `auto` evaluates each candidate on.
pub const SELECTION_WINDOWS: usize = 6;

/// Fits the spec on `y` (selecting by backtest for `auto`).
pub fn fit(
    spec: &ForecastSpec,
    y: &[f64],
    periods: &[usize],
) -> Result<(FittedModel, Candidates), ForecastError> {
    let candidates = pipelines(spec, periods)?;
    if candidates.len() == 1 {
        return Ok((candidates[0].fit(y)?, Vec::new()));
    }
    let cfg = selection_config(y.len(), spec.horizon, periods, &spec.levels);
    let selection = crate::select_by_backtest(y, &candidates, &cfg, Score::Mase)?;
    let names = candidates
        .iter()
        .zip(&selection.reports)
        .map(|(c, r)| (c.name(), r.as_ref().ok().and_then(|r| r.metrics.mase)))
        .collect();
    Ok((candidates[selection.best].fit(y)?, names))
}
