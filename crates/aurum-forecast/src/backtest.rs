//! Rolling-origin evaluation (time-series cross-validation, fpp3 §5.10) and model selection by
//! backtest score.
//!
//! With `windows = W`, `horizon = h` and `step = s`, the origins are the training sizes
//! `T − h − (W − 1 − i)·s` for `i = 0..W`: the last window ends exactly at the last observation,
//! earlier ones `s` steps apart. Each window refits the model on its training prefix.
//!
//! Metrics pool every (window, step) error (fpp3 §5.8):
//!
//! * MAE = mean |e|, RMSE = √(mean e²);
//! * MAPE = 100 · mean |e / y| (absent when an actual is 0);
//! * sMAPE = 200 · mean |e| / (|y| + |ŷ|) (a term with y = ŷ = 0 counts 0);
//! * MASE = mean |e| / Q_w, with Q_w the in-sample MAE of the seasonal naive method (period m;
//!   naive when m = 1) on window w's training data (absent when some Q_w is 0);
//! * coverage per level: the share of actuals inside the interval.

use serde::{Deserialize, Serialize};

use crate::error::ForecastError;
use crate::model::{Forecast, Forecaster, Pipeline};

/// Rolling-origin settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BacktestConfig {
    /// Steps forecast from each origin.
    pub horizon: usize,
    /// Steps between consecutive origins.
    pub step: usize,
    /// Number of origins.
    pub windows: usize,
    /// Interval levels whose coverage is reported.
    pub levels: Vec<f64>,
    /// Seasonal period for the MASE scale (1 = naive scaling).
    pub season_period: usize,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        Self {
            horizon: 1,
            step: 1,
            windows: 5,
            levels: crate::model::DEFAULT_LEVELS.to_vec(),
            season_period: 1,
        }
    }
}

/// Accuracy over all windows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Errors pooled.
    pub n: usize,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute percentage error (percent).
    pub mape: Option<f64>,
    /// Symmetric MAPE (percent, 0–200).
    pub smape: Option<f64>,
    /// Mean absolute scaled error.
    pub mase: Option<f64>,
    /// (level, share of actuals inside the interval).
    pub coverage: Vec<(f64, f64)>,
}

/// The outcome of one origin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowResult {
    /// Training size (the origin).
    pub origin: usize,
    /// Actual values after the origin.
    pub actual: Vec<f64>,
    /// The forecast made at the origin.
    pub forecast: Forecast,
    /// In-sample seasonal-naive MAE of the training data (the MASE scale).
    pub scale: f64,
}

/// A backtest of one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BacktestReport {
    /// The model's name.
    pub model: String,
    /// Per-origin results.
    pub windows: Vec<WindowResult>,
    /// Pooled accuracy.
    pub metrics: Metrics,
}

/// The metric [`select_by_backtest`] minimises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Score {
    /// MAE.
    Mae,
    /// RMSE.
    Rmse,
    /// MASE (the default: scale-free and defined for series with zeros).
    #[default]
    Mase,
    /// sMAPE.
    Smape,
    /// MAPE.
    Mape,
}

impl Metrics {
    /// The value of `score`, if defined.
    pub fn score(&self, score: Score) -> Option<f64> {
        match score {
            Score::Mae => Some(self.mae),
            Score::Rmse => Some(self.rmse),
            Score::Mase => self.mase,
            Score::Smape => self.smape,
            Score::Mape => self.mape,
        }
    }
}

/// In-sample MAE of the seasonal naive method (naive when `period ≤ 1`); `None` when the series
/// is not longer than the period.
pub fn mase_scale(train: &[f64], period: usize) -> Option<f64> {
    let m = period.max(1);
    if train.len() <= m {
        return None;
    }
    let s: f64 = (m..train.len())
        .map(|t| (train[t] - train[t - m]).abs())
        .sum();
    Some(s / (train.len() - m) as f64)
}

/// Pooled accuracy of forecasts against actuals. `scales[i]` is the MASE scale for pair `i`;
/// `bounds` holds, per level, the (lower, upper) bound for each pair.
pub fn accuracy(
    actual: &[f64],
    predicted: &[f64],
    scales: &[f64],
    bounds: &[(f64, Vec<(f64, f64)>)],
) -> Metrics {
    let n = actual.len();
    let nf = n as f64;
    let errors: Vec<f64> = actual.iter().zip(predicted).map(|(a, p)| a - p).collect();
    let mae = errors.iter().map(|e| e.abs()).sum::<f64>() / nf;
    let rmse = (errors.iter().map(|e| e * e).sum::<f64>() / nf).sqrt();
    let mape = actual.iter().all(|a| *a != 0.0).then(|| {
        100.0
            * errors
                .iter()
                .zip(actual)
                .map(|(e, a)| (e / a).abs())
                .sum::<f64>()
            / nf
    });
    let smape = Some(
        200.0
            * errors
                .iter()
                .zip(actual.iter().zip(predicted))
                .map(|(e, (a, p))| {
                    let d = a.abs() + p.abs();
                    if d == 0.0 { 0.0 } else { e.abs() / d }
                })
                .sum::<f64>()
            / nf,
    );
    let mase = scales.iter().all(|s| *s > 0.0).then(|| {
        errors
            .iter()
            .zip(scales)
            .map(|(e, s)| e.abs() / s)
            .sum::<f64>()
            / nf
    });
    let coverage = bounds
        .iter()
        .map(|(level, b)| {
            let inside = actual
                .iter()
                .zip(b)
                .filter(|(a, (lo, hi))| **a >= *lo && **a <= *hi)
                .count();
            (*level, inside as f64 / nf)
        })
        .collect();
    Metrics {
        n,
        mae,
        rmse,
        mape,
        smape,
        mase,
        coverage,
    }
}

/// Rolling-origin backtest of one model.
///
/// # Errors
///
/// A horizon, step or window count of 0, too little data for the first origin, or the model's
/// own fit errors on a training prefix.
pub fn backtest(
    y: &[f64],
    model: &dyn Forecaster,
    name: &str,
    cfg: &BacktestConfig,
) -> Result<BacktestReport, ForecastError> {
    if cfg.horizon == 0 || cfg.step == 0 || cfg.windows == 0 {
        return Err(ForecastError::InvalidParameter(
            "backtest horizon, step and windows must all be at least 1".into(),
        ));
    }
    let span = cfg.horizon + (cfg.windows - 1) * cfg.step;
    let min_train = cfg.season_period.max(1) + 1;
    if y.len() < span + min_train {
        return Err(ForecastError::TooFewPoints {
            what: format!(
                "a backtest with {} windows of horizon {} and step {}",
                cfg.windows, cfg.horizon, cfg.step
            ),
            needed: span + min_train,
            got: y.len(),
        });
    }
    let mut windows = Vec::with_capacity(cfg.windows);
    for i in 0..cfg.windows {
        let origin = y.len() - cfg.horizon - (cfg.windows - 1 - i) * cfg.step;
        let train = &y[..origin];
        crate::cancel::check()?;
        let fitted = model.fit(train)?;
        let forecast = fitted.forecast(cfg.horizon, &cfg.levels)?;
        windows.push(WindowResult {
            origin,
            actual: y[origin..origin + cfg.horizon].to_vec(),
            forecast,
            scale: mase_scale(train, cfg.season_period).unwrap_or(0.0),
        });
    }
    let mut actual = Vec::new();
    let mut predicted = Vec::new();
    let mut scales = Vec::new();
    let mut bounds: Vec<(f64, Vec<(f64, f64)>)> =
        cfg.levels.iter().map(|l| (*l, Vec::new())).collect();
    for w in &windows {
        actual.extend_from_slice(&w.actual);
        predicted.extend_from_slice(&w.forecast.mean);
        scales.extend(std::iter::repeat_n(w.scale, w.actual.len()));
        for (k, (_, b)) in bounds.iter_mut().enumerate() {
            let iv = &w.forecast.intervals[k];
            b.extend(iv.lower.iter().copied().zip(iv.upper.iter().copied()));
        }
    }
    Ok(BacktestReport {
        model: name.to_string(),
        metrics: accuracy(&actual, &predicted, &scales, &bounds),
        windows,
    })
}

/// The outcome of [`select_by_backtest`].
#[derive(Clone, Debug)]
pub struct Selection {
    /// Index of the winning candidate.
    pub best: usize,
    /// The score it won on: the one asked for, or [`Score::Mae`] when that score is undefined
    /// for every candidate (MASE on a series with a constant training window, MAPE with a zero
    /// actual).
    pub score: Score,
    /// One entry per candidate: its report, or why it could not be evaluated.
    pub reports: Vec<Result<BacktestReport, ForecastError>>,
}

/// Backtests every candidate and picks the lowest `score` (ties: the earlier candidate), or the
/// lowest MAE when `score` is undefined for every candidate that ran ([`Selection::score`] says
/// which). Candidates that fail to fit on some window are reported and skipped.
///
/// # Errors
///
/// [`ForecastError::InvalidParameter`] for an empty candidate list; the first candidate's error
/// when no candidate could be evaluated; [`ForecastError::FitFailed`] when none forecast finite
/// values.
pub fn select_by_backtest(
    y: &[f64],
    candidates: &[Pipeline],
    cfg: &BacktestConfig,
    score: Score,
) -> Result<Selection, ForecastError> {
    if candidates.is_empty() {
        return Err(ForecastError::InvalidParameter(
            "model selection needs at least one candidate".into(),
        ));
    }
    let reports: Vec<Result<BacktestReport, ForecastError>> = candidates
        .iter()
        .map(|c| backtest(y, c, &c.name(), cfg))
        .collect();
    let pick = |score: Score| {
        let mut best: Option<(usize, f64)> = None;
        for (i, r) in reports.iter().enumerate() {
            if let Ok(rep) = r
                && let Some(s) = rep.metrics.score(score)
                && s.is_finite()
                && best.is_none_or(|(_, b)| s < b)
            {
                best = Some((i, s));
            }
        }
        best.map(|(i, _)| (i, score))
    };
    // A scale-free score can be undefined for every candidate alike: MASE when a training window
    // has no in-sample naive error (a constant series), MAPE when an actual is 0. The candidates
    // still forecast the same actuals, so MAE ranks them (a perfect fit wins).
    let best = pick(score).or_else(|| pick(Score::Mae));
    crate::cancel::check()?;
    match best {
        Some((best, score)) => Ok(Selection {
            best,
            score,
            reports,
        }),
        None => match reports.into_iter().find_map(Result::err) {
            Some(e) => Err(e),
            // Every candidate ran, yet none forecast finite values: ours, not the caller's.
            None => Err(ForecastError::FitFailed(format!(
                "no candidate has a finite {score:?} or MAE score"
            ))),
        },
    }
}

/// The default candidates for `auto` selection at seasonal `period`: naive, seasonal naive (when
/// seasonal), drift, ETS, and auto-ARIMA.
pub fn default_candidates(period: usize) -> Vec<Pipeline> {
    use crate::arima::auto::AutoArimaSpec;
    use crate::ets::EtsSpec;
    use crate::model::ModelSpec;
    let mut c: Vec<Pipeline> = vec![ModelSpec::Naive.into()];
    if period > 1 {
        c.push(ModelSpec::SeasonalNaive { period }.into());
    }
    c.push(ModelSpec::Drift.into());
    c.push(ModelSpec::Ets(EtsSpec::auto(period)).into());
    c.push(
        ModelSpec::AutoArima(AutoArimaSpec {
            period,
            ..AutoArimaSpec::default()
        })
        .into(),
    );
    c
}
