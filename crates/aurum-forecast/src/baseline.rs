//! Benchmark methods with the analytic intervals of fpp3 §5.5 (table 5.2):
//!
//! | method | h-step standard deviation |
//! |---|---|
//! | mean | σ̂ √(1 + 1/T) |
//! | naive | σ̂ √h |
//! | seasonal naive | σ̂ √(k + 1), k = ⌊(h − 1)/m⌋ |
//! | drift | σ̂ √(h (1 + h/(T − 1))) |
//! | moving average (window k) | σ̂_w √(1 + 1/k) |
//!
//! σ̂ is the residual standard deviation of the one-step in-sample residuals,
//! `σ̂² = Σ e² / (K − p)` with `K` residuals and `p` estimated parameters (0 for naive and seasonal
//! naive, 1 for mean and drift). The moving average is the mean method applied to the last `k`
//! observations, so σ̂_w is the sample standard deviation of that window.
//!
//! `update` moves the data window (the last value, the last season, the window) and keeps what was
//! estimated (the mean, the drift slope, σ̂, T) as fitted.

use serde::{Deserialize, Serialize};

use crate::error::{ForecastError, check_fittable, too_few};

/// Which benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BaselineKind {
    /// Mean of all observations.
    Mean,
    /// Last value.
    Naive,
    /// Value one season ago.
    SeasonalNaive {
        /// Season length m.
        period: usize,
    },
    /// Mean of the last `window` values.
    MovingAverage {
        /// Window length k.
        window: usize,
    },
    /// Last value plus the average change.
    Drift,
}

/// A fitted benchmark.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineFit {
    /// Which benchmark.
    pub kind: BaselineKind,
    /// Residual standard deviation σ̂ (for the moving average: of the window).
    pub sigma: f64,
    /// Observations the parameters were estimated from (T).
    pub n: usize,
    /// Mean (mean method) or slope per step (drift); 0 otherwise.
    pub level: f64,
    /// The data window forecasts need: last value, last season, or the moving-average window.
    pub(crate) window: Vec<f64>,
}

fn rss_sigma(residuals: impl Iterator<Item = f64>, n_params: usize) -> f64 {
    let (mut ss, mut k) = (0.0, 0usize);
    for e in residuals {
        ss += e * e;
        k += 1;
    }
    if k > n_params {
        (ss / (k - n_params) as f64).sqrt()
    } else {
        0.0
    }
}

/// Fits a benchmark method.
///
/// # Errors
///
/// Non-finite values, a window or period of 0, or too few observations: 1 for mean, 2 for naive
/// (one residual), m + 1 for seasonal naive, k for a moving average, 3 for drift.
pub fn fit_baseline(y: &[f64], kind: BaselineKind) -> Result<BaselineFit, ForecastError> {
    check_fittable(y)?;
    let n = y.len();
    let fit = match kind {
        BaselineKind::Mean => {
            if n < 2 {
                return Err(too_few("the mean method", 2, n));
            }
            let mean = crate::stats::mean(y);
            BaselineFit {
                kind,
                sigma: rss_sigma(y.iter().map(|v| v - mean), 1),
                n,
                level: mean,
                window: Vec::new(),
            }
        }
        BaselineKind::Naive => {
            if n < 2 {
                return Err(too_few("the naive method", 2, n));
            }
            BaselineFit {
                kind,
                sigma: rss_sigma(y.windows(2).map(|w| w[1] - w[0]), 0),
                n,
                level: 0.0,
                window: vec![y[n - 1]],
            }
        }
        BaselineKind::SeasonalNaive { period } => {
            if period == 0 {
                return Err(ForecastError::InvalidParameter(
                    "seasonal naive needs a period of at least 1".into(),
                ));
            }
            if n < period + 1 {
                return Err(too_few(
                    format!("seasonal naive with period {period}"),
                    period + 1,
                    n,
                ));
            }
            BaselineFit {
                kind,
                sigma: rss_sigma((period..n).map(|t| y[t] - y[t - period]), 0),
                n,
                level: 0.0,
                window: y[n - period..].to_vec(),
            }
        }
        BaselineKind::MovingAverage { window } => {
            if window == 0 {
                return Err(ForecastError::InvalidParameter(
                    "a moving average needs a window of at least 1".into(),
                ));
            }
            if n < window.max(2) {
                return Err(too_few(
                    format!("a moving average with window {window}"),
                    window.max(2),
                    n,
                ));
            }
            let w = y[n - window..].to_vec();
            BaselineFit {
                kind,
                sigma: window_sigma(&w),
                n,
                level: 0.0,
                window: w,
            }
        }
        BaselineKind::Drift => {
            if n < 3 {
                return Err(too_few("the drift method", 3, n));
            }
            let slope = (y[n - 1] - y[0]) / (n - 1) as f64;
            BaselineFit {
                kind,
                sigma: rss_sigma(y.windows(2).map(|w| w[1] - w[0] - slope), 1),
                n,
                level: slope,
                window: vec![y[n - 1]],
            }
        }
    };
    Ok(fit)
}

fn window_sigma(w: &[f64]) -> f64 {
    if w.len() < 2 {
        return 0.0;
    }
    crate::stats::variance(w).sqrt()
}

impl BaselineFit {
    /// Point forecasts and forecast variances for `h` steps.
    pub(crate) fn forecast_moments(&self, h: usize) -> (Vec<f64>, Vec<f64>) {
        let s2 = self.sigma * self.sigma;
        let t = self.n as f64;
        (1..=h)
            .map(|step| {
                let hf = step as f64;
                match self.kind {
                    BaselineKind::Mean => (self.level, s2 * (1.0 + 1.0 / t)),
                    BaselineKind::Naive => (self.window[0], s2 * hf),
                    BaselineKind::SeasonalNaive { period } => {
                        let k = (step - 1) / period;
                        (self.window[(step - 1) % period], s2 * (k as f64 + 1.0))
                    }
                    BaselineKind::MovingAverage { window } => {
                        let sw = window_sigma(&self.window);
                        (
                            crate::stats::mean(&self.window),
                            sw * sw * (1.0 + 1.0 / window as f64),
                        )
                    }
                    BaselineKind::Drift => (
                        self.window[0] + hf * self.level,
                        s2 * hf * (1.0 + hf / (t - 1.0)),
                    ),
                }
            })
            .unzip()
    }

    /// Moves the data window over new observations.
    pub(crate) fn update(&mut self, new: &[f64]) -> Result<(), ForecastError> {
        check_fittable(new)?;
        if new.is_empty() {
            return Ok(());
        }
        match self.kind {
            BaselineKind::Mean => {}
            BaselineKind::Naive | BaselineKind::Drift => self.window = vec![new[new.len() - 1]],
            BaselineKind::SeasonalNaive { period: k }
            | BaselineKind::MovingAverage { window: k } => {
                self.window.extend_from_slice(new);
                let drop = self.window.len() - k;
                self.window.drain(..drop);
                if let BaselineKind::MovingAverage { .. } = self.kind {
                    self.sigma = window_sigma(&self.window);
                }
            }
        }
        Ok(())
    }
}
