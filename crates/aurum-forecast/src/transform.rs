//! Variance-stabilising transforms around any model, and price → return helpers.
//!
//! A model is fitted to `g(y)`; forecasts come back through `g⁻¹`. Because `g` is monotone, the
//! back-transformed interval bounds are exact quantiles of the back-transformed forecast
//! distribution, and the back-transformed point forecast is its *median*. With `bias_adjust` the
//! point forecast is the mean instead (fpp3 §5.6):
//! `g⁻¹(μ)·[1 + σ²_h (1 − λ) / (2 (λ μ + 1)²)]` for Box–Cox, `exp(μ)(1 + σ²_h / 2)` for the log.

use serde::{Deserialize, Serialize};

use crate::error::ForecastError;
use crate::optim::golden_section;

/// A transform to fit the model on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Transform {
    /// The series as is.
    #[default]
    None,
    /// Natural log (Box–Cox with λ = 0); the series must be positive.
    Log,
    /// Box–Cox with a given λ, or λ chosen by Guerrero's method when `lambda` is `None`.
    BoxCox {
        /// λ, or `None` for Guerrero.
        lambda: Option<f64>,
    },
}

/// A transform with λ resolved: `None` is the identity, `Some(0.0)` the log.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolvedTransform {
    /// Box–Cox λ, `None` for the identity.
    pub lambda: Option<f64>,
}

impl Transform {
    /// Resolves λ (running Guerrero's method on `y` with seasonal `period` when asked).
    ///
    /// # Errors
    ///
    /// Non-positive values under a log or Box–Cox transform, or a non-finite λ.
    pub fn resolve(&self, y: &[f64], period: usize) -> Result<ResolvedTransform, ForecastError> {
        let lambda = match self {
            Transform::None => return Ok(ResolvedTransform { lambda: None }),
            Transform::Log => 0.0,
            Transform::BoxCox { lambda: Some(l) } => *l,
            Transform::BoxCox { lambda: None } => {
                check_positive(y)?;
                guerrero(y, period)?
            }
        };
        if !lambda.is_finite() {
            return Err(ForecastError::InvalidParameter(format!(
                "Box–Cox lambda must be finite, got {lambda}"
            )));
        }
        check_positive(y)?;
        Ok(ResolvedTransform {
            lambda: Some(lambda),
        })
    }
}

fn check_positive(y: &[f64]) -> Result<(), ForecastError> {
    match y.iter().position(|v| v.is_nan() || *v <= 0.0) {
        Some(i) => Err(ForecastError::InvalidParameter(format!(
            "log and Box–Cox transforms need positive values; value {i} is {}",
            y[i]
        ))),
        None => Ok(()),
    }
}

impl ResolvedTransform {
    /// The identity.
    pub const IDENTITY: ResolvedTransform = ResolvedTransform { lambda: None };

    /// `g(y)`.
    ///
    /// # Errors
    ///
    /// Non-positive values under a log or Box–Cox transform.
    pub fn apply(&self, y: &[f64]) -> Result<Vec<f64>, ForecastError> {
        match self.lambda {
            None => Ok(y.to_vec()),
            Some(l) => {
                check_positive(y)?;
                Ok(y.iter().map(|v| box_cox(*v, l)).collect())
            }
        }
    }

    /// `g⁻¹(x)`.
    pub fn invert(&self, x: f64) -> f64 {
        match self.lambda {
            None => x,
            Some(l) => inv_box_cox(x, l),
        }
    }

    /// The back-transformed mean of a normal forecast with mean `mu` and variance `var`.
    pub fn mean(&self, mu: f64, var: f64) -> f64 {
        match self.lambda {
            None => mu,
            Some(0.0) => mu.exp() * (1.0 + var / 2.0),
            Some(l) => {
                let base = l * mu + 1.0;
                inv_box_cox(mu, l) * (1.0 + var * (1.0 - l) / (2.0 * base * base))
            }
        }
    }
}

/// Box–Cox transform of a positive value.
pub fn box_cox(y: f64, lambda: f64) -> f64 {
    if lambda == 0.0 {
        y.ln()
    } else {
        (y.powf(lambda) - 1.0) / lambda
    }
}

/// Inverse Box–Cox; values outside the transform's range map to 0.
pub fn inv_box_cox(x: f64, lambda: f64) -> f64 {
    if lambda == 0.0 {
        x.exp()
    } else {
        let base = lambda * x + 1.0;
        if base <= 0.0 {
            if lambda > 0.0 { 0.0 } else { f64::INFINITY }
        } else {
            base.powf(1.0 / lambda)
        }
    }
}

/// Guerrero's (1993) λ as in R's `forecast::BoxCox.lambda(method = "guerrero")`: split the last
/// whole seasons (blocks of `max(period, 2)`) and pick λ in [−1, 2] minimising the coefficient of
/// variation of `sd / mean^(1−λ)` across blocks.
///
/// # Errors
///
/// Fewer than two blocks, or non-positive values.
pub fn guerrero(y: &[f64], period: usize) -> Result<f64, ForecastError> {
    check_positive(y)?;
    let p = period.max(2);
    let blocks = y.len() / p;
    if blocks < 2 {
        return Err(ForecastError::TooFewPoints {
            what: format!("Guerrero's method with blocks of {p}"),
            needed: 2 * p,
            got: y.len(),
        });
    }
    let start = y.len() - blocks * p;
    let stats: Vec<(f64, f64)> = y[start..]
        .chunks(p)
        .map(|c| (crate::stats::mean(c), crate::stats::variance(c).sqrt()))
        .collect();
    let cv = |lam: f64| -> f64 {
        let rat: Vec<f64> = stats.iter().map(|(m, s)| s / m.powf(1.0 - lam)).collect();
        crate::stats::variance(&rat).sqrt() / crate::stats::mean(&rat)
    };
    Ok(golden_section(cv, -1.0, 2.0, 1e-7))
}

/// Which return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnKind {
    /// `p_t / p_{t−1} − 1`.
    Simple,
    /// `ln(p_t / p_{t−1})`.
    Log,
}

/// Returns from prices (one fewer value than prices).
///
/// # Errors
///
/// Fewer than two prices, or a non-positive or non-finite price.
pub fn returns(prices: &[f64], kind: ReturnKind) -> Result<Vec<f64>, ForecastError> {
    if prices.len() < 2 {
        return Err(ForecastError::TooFewPoints {
            what: "returns".into(),
            needed: 2,
            got: prices.len(),
        });
    }
    if let Some(i) = prices
        .iter()
        .position(|p| p.is_nan() || *p <= 0.0 || !p.is_finite())
    {
        return Err(ForecastError::InvalidParameter(format!(
            "returns need positive prices; price {i} is {}",
            prices[i]
        )));
    }
    Ok(prices
        .windows(2)
        .map(|w| match kind {
            ReturnKind::Simple => w[1] / w[0] - 1.0,
            ReturnKind::Log => (w[1] / w[0]).ln(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_cox_roundtrip() {
        for l in [-0.5, 0.0, 0.3, 1.0, 2.0] {
            let y = 3.7;
            assert!((inv_box_cox(box_cox(y, l), l) - y).abs() < 1e-12, "λ = {l}");
        }
    }

    #[test]
    fn returns_by_hand() {
        let r = returns(&[100.0, 110.0, 99.0], ReturnKind::Simple).expect("valid");
        assert!((r[0] - 0.1).abs() < 1e-15 && (r[1] + 0.1).abs() < 1e-15);
        let l = returns(&[100.0, 110.0], ReturnKind::Log).expect("valid");
        assert!((l[0] - 1.1f64.ln()).abs() < 1e-15);
        assert!(returns(&[1.0, 0.0], ReturnKind::Log).is_err());
    }
}
