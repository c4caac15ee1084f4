//! The MSTL forecaster (Bandara, Hyndman & Bergmeir 2021; statsforecast's `MSTL`): the series is
//! decomposed by [`crate::mstl`] into a trend, one seasonal part per period and a remainder; the
//! seasonally adjusted series (trend + remainder) is forecast by a non-seasonal ETS (or
//! auto-ARIMA), each seasonal part by its seasonal naive projection (the last full season
//! repeated), and the forecasts are added. Intervals come from the adjusted-series model alone:
//! the seasonal projections are treated as known, as statsforecast does.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::arima::ArimaFit;
use crate::arima::auto::{AutoArimaSpec, auto_arima};
use crate::decompose::{StlOptions, mstl};
use crate::error::{ForecastError, check_fittable};
use crate::ets::{EtsFit, EtsSpec, fit_ets};

/// Which model forecasts the seasonally adjusted series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MstlTrendModel {
    /// Non-seasonal ETS, components by AICc (the default).
    #[default]
    Ets,
    /// Non-seasonal auto-ARIMA.
    Arima,
}

/// What to fit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MstlSpec {
    /// Seasonal periods (each ≥ 2), e.g. `[288, 2016]` for 5-minute bars.
    pub periods: Vec<usize>,
    /// The model of the seasonally adjusted series.
    #[serde(default)]
    pub trend: MstlTrendModel,
}

/// The adjusted-series model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "fit", rename_all = "snake_case")]
pub enum AdjustedFit {
    /// ETS.
    Ets(EtsFit),
    /// ARIMA.
    Arima(ArimaFit),
}

/// A fitted MSTL forecaster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MstlFit {
    /// The periods, ascending.
    pub periods: Vec<usize>,
    /// Per period, its last full season of the seasonal component (oldest first); the
    /// seasonal naive projection repeats it.
    pub(crate) seasons: Vec<Vec<f64>>,
    /// The model of trend + remainder.
    pub adjusted: AdjustedFit,
}

impl fmt::Display for MstlFit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let periods: Vec<String> = self.periods.iter().map(ToString::to_string).collect();
        let inner = match &self.adjusted {
            AdjustedFit::Ets(e) => e.to_string(),
            AdjustedFit::Arima(a) => a.describe(),
        };
        write!(f, "MSTL[{}] + {inner}", periods.join(","))
    }
}

/// Fits the MSTL forecaster.
///
/// # Errors
///
/// Non-finite values, no period or one below 2, fewer than two of the longest period, or the
/// adjusted-series model's own errors.
pub(crate) fn fit_mstl(y: &[f64], spec: &MstlSpec) -> Result<MstlFit, ForecastError> {
    check_fittable(y)?;
    let d = mstl(y, &spec.periods, &StlOptions::default())?;
    let n = y.len();
    let adjusted: Vec<f64> = (0..n)
        .map(|t| y[t] - d.seasonal.iter().map(|s| s[t]).sum::<f64>())
        .collect();
    let seasons = d
        .periods
        .iter()
        .zip(&d.seasonal)
        .map(|(&p, s)| s[n - p..].to_vec())
        .collect();
    let adjusted = match spec.trend {
        MstlTrendModel::Ets => AdjustedFit::Ets(fit_ets(&adjusted, &EtsSpec::auto(1))?),
        MstlTrendModel::Arima => AdjustedFit::Arima(
            auto_arima(
                &adjusted,
                &AutoArimaSpec {
                    period: 1,
                    ..AutoArimaSpec::default()
                },
            )?
            .best,
        ),
    };
    Ok(MstlFit {
        periods: d.periods,
        seasons,
        adjusted,
    })
}

impl MstlFit {
    fn seasonal_at(&self, step: usize) -> f64 {
        self.seasons
            .iter()
            .map(|s| s[(step - 1) % s.len()])
            .sum::<f64>()
    }

    /// AICc of the adjusted-series model.
    pub fn aicc(&self) -> f64 {
        match &self.adjusted {
            AdjustedFit::Ets(e) => e.aicc,
            AdjustedFit::Arima(a) => a.aicc,
        }
    }

    pub(crate) fn forecast_moments(&self, h: usize) -> (Vec<f64>, Vec<f64>) {
        let (mut mu, var) = match &self.adjusted {
            AdjustedFit::Ets(e) => e.forecast_moments(h),
            AdjustedFit::Arima(a) => a.forecast_moments(h),
        };
        for (i, m) in mu.iter_mut().enumerate() {
            *m += self.seasonal_at(i + 1);
        }
        (mu, var)
    }

    /// New observations are seasonally adjusted with the projected seasonal parts, which then
    /// roll forward; the adjusted-series model absorbs the adjusted values.
    pub(crate) fn update(&mut self, new: &[f64]) -> Result<(), ForecastError> {
        check_fittable(new)?;
        let adjusted: Vec<f64> = new
            .iter()
            .enumerate()
            .map(|(i, y)| y - self.seasonal_at(i + 1))
            .collect();
        for s in &mut self.seasons {
            let p = s.len();
            s.rotate_left(new.len() % p);
        }
        match &mut self.adjusted {
            AdjustedFit::Ets(e) => e.update(&adjusted),
            AdjustedFit::Arima(a) => a.update(&adjusted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_seasons_are_projected_and_added() {
        // Periods 6 and 15 with a gentle trend: the forecast must carry both patterns.
        let n = 15 * 8;
        let y: Vec<f64> = (0..n)
            .map(|t| {
                let t = t as f64;
                10.0 + 0.05 * t
                    + 2.0 * (2.0 * std::f64::consts::PI * t / 6.0).sin()
                    + 4.0 * (2.0 * std::f64::consts::PI * t / 15.0).cos()
            })
            .collect();
        let fit = fit_mstl(
            &y,
            &MstlSpec {
                periods: vec![15, 6],
                trend: MstlTrendModel::Ets,
            },
        )
        .expect("fits");
        assert_eq!(fit.periods, vec![6, 15]);
        let (mu, var) = fit.forecast_moments(30);
        for (i, m) in mu.iter().enumerate() {
            let t = (n + i) as f64;
            let truth = 10.0
                + 0.05 * t
                + 2.0 * (2.0 * std::f64::consts::PI * t / 6.0).sin()
                + 4.0 * (2.0 * std::f64::consts::PI * t / 15.0).cos();
            assert!((m - truth).abs() < 0.5, "step {i}: {m} vs {truth}");
        }
        assert!(var.windows(2).all(|w| w[1] >= w[0] - 1e-12));
        // Updating with the truth keeps forecasts on the pattern.
        let mut f2 = fit.clone();
        let next: Vec<f64> = mu[..7].to_vec();
        f2.update(&next).expect("updates");
        let (mu2, _) = f2.forecast_moments(3);
        assert!((mu2[0] - mu[7]).abs() < 0.3, "{} vs {}", mu2[0], mu[7]);
    }
}
