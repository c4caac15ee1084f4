//! STL (Cleveland et al. 1990) and MSTL (Bandara et al. 2021) decompositions.
//!
//! The numerics are `stlrs`, a line-by-line port of the reference Fortran STL (the crate
//! `augurs-mstl` wraps too); this module only validates inputs, picks documented defaults and
//! returns plain vectors. Strength measures follow Wang, Smith & Hyndman (2006) as in fpp3 §4.3:
//! `F = max(0, 1 − Var(R) / Var(C + R))`.

use serde::{Deserialize, Serialize};

use crate::error::{ForecastError, check_finite, too_few};

/// STL smoothing options; `None` takes the STL defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StlOptions {
    /// Seasonal smoother span (odd, ≥ 7 recommended); default: the period, made odd.
    pub seasonal_length: Option<usize>,
    /// Trend smoother span (odd); default `⌈1.5 p / (1 − 1.5 / ns)⌉`.
    pub trend_length: Option<usize>,
    /// Robustness iterations against outliers.
    pub robust: bool,
}

/// A decomposition `y = trend + Σ seasonal + remainder`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decomposition {
    /// The seasonal periods, one per seasonal component.
    pub periods: Vec<usize>,
    /// Trend.
    pub trend: Vec<f64>,
    /// One seasonal component per period.
    pub seasonal: Vec<Vec<f64>>,
    /// What is left.
    pub remainder: Vec<f64>,
    /// Strength of the trend, in [0, 1].
    pub trend_strength: f64,
    /// Strength of each seasonal component, in [0, 1].
    pub seasonal_strength: Vec<f64>,
}

fn strength(component: &[f64], remainder: &[f64]) -> f64 {
    let sum: Vec<f64> = component
        .iter()
        .zip(remainder)
        .map(|(a, b)| a + b)
        .collect();
    let vs = crate::stats::variance(&sum);
    if vs <= 0.0 {
        return 0.0;
    }
    (1.0 - crate::stats::variance(remainder) / vs).max(0.0)
}

fn params(opts: &StlOptions) -> stlrs::StlParams {
    let mut p = stlrs::Stl::params();
    if let Some(ns) = opts.seasonal_length {
        p.seasonal_length(ns);
    }
    if let Some(nt) = opts.trend_length {
        p.trend_length(nt);
    }
    p.robust(opts.robust);
    p
}

fn stl_err(e: &stlrs::Error) -> ForecastError {
    ForecastError::InvalidParameter(format!("STL: {e}"))
}

/// STL decomposition with one seasonal period.
///
/// # Errors
///
/// Non-finite values, a period below 2, or fewer than two full periods.
pub fn stl(y: &[f64], period: usize, opts: &StlOptions) -> Result<Decomposition, ForecastError> {
    check_finite(y)?;
    if period < 2 {
        return Err(ForecastError::InvalidParameter(format!(
            "STL needs a seasonal period of at least 2, got {period}"
        )));
    }
    if y.len() < 2 * period {
        return Err(too_few(
            format!("STL with period {period}"),
            2 * period,
            y.len(),
        ));
    }
    let fit = params(opts).fit(y, period).map_err(|e| stl_err(&e))?;
    let (seasonal, trend, remainder, _) = fit.into_parts();
    Ok(Decomposition {
        periods: vec![period],
        trend_strength: strength(&trend, &remainder),
        seasonal_strength: vec![strength(&seasonal, &remainder)],
        trend,
        seasonal: vec![seasonal],
        remainder,
    })
}

/// MSTL decomposition with several seasonal periods (e.g. 24 and 168 for hourly data).
///
/// # Errors
///
/// Non-finite values, no period or one below 2, or fewer than two of the longest period.
pub fn mstl(
    y: &[f64],
    periods: &[usize],
    opts: &StlOptions,
) -> Result<Decomposition, ForecastError> {
    check_finite(y)?;
    let Some(&longest) = periods.iter().max() else {
        return Err(ForecastError::InvalidParameter(
            "MSTL needs at least one period".into(),
        ));
    };
    if periods.iter().any(|p| *p < 2) {
        return Err(ForecastError::InvalidParameter(
            "MSTL periods must be at least 2".into(),
        ));
    }
    if y.len() < 2 * longest {
        return Err(too_few(
            format!("MSTL with period {longest}"),
            2 * longest,
            y.len(),
        ));
    }
    let mut sorted = periods.to_vec();
    sorted.sort_unstable();
    let fit = stlrs::Mstl::params()
        .stl_params(params(opts))
        .fit(y, &sorted)
        .map_err(|e| stl_err(&e))?;
    let (seasonal, trend, remainder) = fit.into_parts();
    Ok(Decomposition {
        periods: sorted,
        trend_strength: strength(&trend, &remainder),
        seasonal_strength: seasonal.iter().map(|s| strength(s, &remainder)).collect(),
        trend,
        seasonal,
        remainder,
    })
}

/// Seasonal strength of `y` at `period` from an STL fit with seasonal window `seasonal_length`;
/// 0 when the series is too short.
pub(crate) fn seasonal_strength(y: &[f64], period: usize, seasonal_length: usize) -> f64 {
    stl(
        y,
        period,
        &StlOptions {
            seasonal_length: Some(seasonal_length),
            ..StlOptions::default()
        },
    )
    .map_or(0.0, |d| d.seasonal_strength[0])
}
